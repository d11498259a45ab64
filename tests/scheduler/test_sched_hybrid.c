/* sched_hybrid.c: Ray's DEFAULT policy: local preference, threshold, top-k, GPU avoidance. */
#include <string.h>

#include "sched_test.h"

static sched_status run(sched_view *v, const sched_request *r, const sched_options *o,
                        sched_rng *rng, sched_decision *d)
{
    return sched_schedule(v, r, o, rng, d);
}

/* Ray: the local node takes work while its utilization is below the spread threshold. */
static void test_local_node_preferred_below_threshold(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 10; i++)
        tadd(v, i, TNODE(.cpus = 8));
    sched_node *local = tnode(v, 3);
    sched_options o;
    sched_options_init(&o);
    o.preferred_node = local;
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 11);
    sched_decision d;
    /* 4 of 8 CPUs used = 0.5, which is not below the threshold. */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL_FATAL(run(v, &r, &o, &rng, &d), SCHED_OK);
        CU_ASSERT_PTR_EQUAL(d.node, local);
        sched_alloc a;
        CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, d.node, &r, &a), 0);
    }
    CU_ASSERT_DOUBLE_EQUAL(sched_node_utilization(local), 0.5, 1e-6);
    for (int i = 0; i < 50; i++) {
        CU_ASSERT_EQUAL_FATAL(run(v, &r, &o, &rng, &d), SCHED_OK);
        CU_ASSERT_PTR_NOT_EQUAL(d.node, local);
    }
    sched_view_free(v);
}

/* Nodes below the threshold are equal: the choice among them is random, seeded. */
static void test_random_tie_break_among_idle_nodes(void)
{
    sched_view *v = sched_view_new(NULL);
    enum { N = 20 };
    for (uint32_t i = 0; i < N; i++)
        tadd(v, i, TNODE(.cpus = 8));
    /* Some load below the threshold doesn't change anything. */
    tset_cpu_used(v, tnode(v, 0), 3);
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 99);
    int hits[N] = {0};
    for (int i = 0; i < 4000; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(run(v, &r, NULL, &rng, &d), SCHED_OK);
        hits[tnum(d.node)]++;
    }
    for (int i = 0; i < N; i++)
        CU_ASSERT(hits[i] > 80 && hits[i] < 400); /* roughly 200 each */
    sched_view_free(v);
}

/* A busy cluster: every node above the threshold, so Ray's top-k applies exactly: with 10
 * nodes k = max(1, 0.2 * 10) = 2, and only the two least utilized nodes are ever picked. */
static void test_top_k_on_busy_cluster(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 10; i++) {
        sched_node *n = tadd(v, i, TNODE(.cpus = 100));
        tset_cpu_used(v, n, 95 - 4 * i); /* node 9 least used (59%), node 8 next (63%) */
    }
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 5);
    int hits[10] = {0};
    for (int i = 0; i < 1000; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(run(v, &r, NULL, &rng, &d), SCHED_OK);
        hits[tnum(d.node)]++;
    }
    CU_ASSERT_EQUAL(hits[9] + hits[8], 1000);
    CU_ASSERT(hits[9] > 350 && hits[8] > 350);
    /* With top_k_fraction 0 the single least utilized node always wins. */
    sched_view_config cfg;
    sched_view_config_default(&cfg);
    cfg.top_k_fraction = 0;
    sched_view *v1 = sched_view_new(&cfg);
    for (uint32_t i = 0; i < 10; i++)
        tset_cpu_used(v1, tadd(v1, i, TNODE(.cpus = 100)), 95 - 4 * i);
    for (int i = 0; i < 100; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(run(v1, &r, NULL, &rng, &d), SCHED_OK);
        CU_ASSERT_EQUAL(tnum(d.node), 9);
    }
    sched_view_free(v1);
    sched_view_free(v);
}

/* Ray: the preferred node wins when its score is no worse than the best available one. */
static void test_preferred_wins_ties_above_threshold(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 5; i++)
        tset_cpu_used(v, tadd(v, i, TNODE(.cpus = 4)), 3); /* all at 0.75 */
    sched_options o;
    sched_options_init(&o);
    o.preferred_node = tnode(v, 2);
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_OK);
        CU_ASSERT_PTR_EQUAL(d.node, tnode(v, 2));
    }
    /* A strictly less utilized node beats it. */
    tset_cpu_used(v, tnode(v, 4), 2.5);
    CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(v, 4));
    /* avoid_local_node (Ray's force_spillback) never picks it. */
    o.avoid_local_node = 1;
    tset_cpu_used(v, tnode(v, 4), 3);
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_OK);
        CU_ASSERT_PTR_NOT_EQUAL(d.node, tnode(v, 2));
    }
    sched_view_free(v);
}

/* Ray's scheduler_avoid_gpu_nodes: CPU-only work goes to GPU-less nodes while they have
 * room, even when the GPU node is less loaded; falls back to GPU nodes when they don't. */
static void test_gpu_avoidance(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *gpu = tadd(v, 1, TNODE(.cpus = 8, .gpus = 4));
    sched_node *cpu = tadd(v, 2, TNODE(.cpus = 8));
    tset_cpu_used(v, cpu, 6); /* 0.75: above the threshold */
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 7);
    sched_decision d;
    CU_ASSERT_EQUAL(run(v, &r, NULL, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, cpu);
    /* Even the GPU node as preferred (local) node loses to a free CPU-only node. */
    sched_options o;
    sched_options_init(&o);
    o.preferred_node = gpu;
    CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, cpu);
    tset_cpu_used(v, cpu, 8);
    CU_ASSERT_EQUAL(run(v, &r, NULL, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, gpu);
    sched_request g = treq(v, 1, 1);
    tset_cpu_used(v, cpu, 0);
    CU_ASSERT_EQUAL(run(v, &g, NULL, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, gpu);
    /* Turned off: the idle GPU node wins on score. */
    sched_view_config cfg;
    sched_view_config_default(&cfg);
    cfg.avoid_gpu_nodes = 0;
    sched_view *v2 = sched_view_new(&cfg);
    tadd(v2, 1, TNODE(.cpus = 8, .gpus = 4));
    tset_cpu_used(v2, tadd(v2, 2, TNODE(.cpus = 8)), 6);
    sched_request r2 = treq(v2, 1, 0);
    CU_ASSERT_EQUAL(run(v2, &r2, NULL, &rng, &d), SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 1);
    sched_view_free(v2);
    sched_view_free(v);
}

static void test_not_now_queues_on_feasible_node(void)
{
    sched_view *v = sched_view_new(NULL);
    tset_cpu_used(v, tadd(v, 1, TNODE(.cpus = 4)), 4);
    tset_cpu_used(v, tadd(v, 2, TNODE(.cpus = 4)), 4);
    tadd(v, 3, TNODE(.cpus = 1));
    sched_request r = treq(v, 2, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 3);
    sched_decision d;
    /* k = 1 here: equal scores, so the lower NodeID (Ray's tie order) is where it queues. */
    CU_ASSERT_EQUAL(run(v, &r, NULL, &rng, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(v, 1));
    CU_ASSERT_STRING_EQUAL(d.why, "no node has {CPU: 2} free now (2 feasible nodes busy); queue "
                                  "on node 00000001\xe2\x80\xa6");
    /* The preferred node is where it queues when it is feasible and no worse. */
    sched_options o;
    sched_options_init(&o);
    o.preferred_node = tnode(v, 2);
    CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(v, 2));
    o.require_available = 1;
    CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_NULL(d.node);
    /* Spillback from the only node that could ever hold it: keep it local, not "never". */
    sched_options_init(&o);
    sched_request big = treq(v, 4, 0);
    tset_cpu_used(v, tnode(v, 2), 0);
    sched_node_set_alive(v, tnode(v, 1), 0);
    o.preferred_node = tnode(v, 2);
    o.avoid_local_node = 1;
    CU_ASSERT_EQUAL(run(v, &big, &o, &rng, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_NULL(d.node);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "avoid_local_node"));
    sched_view_free(v);
}

static void test_never_when_no_node_fits(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 8));
    tadd(v, 3, TNODE(.cpus = 16));
    sched_request r = treq(v, 64, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 3);
    sched_decision d;
    CU_ASSERT_EQUAL(run(v, &r, NULL, &rng, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NULL(d.node);
    CU_ASSERT_STRING_EQUAL(d.why,
                           "no node has 64 CPU; largest: 16 CPU on node 00000003\xe2\x80\xa6");
    sched_view_free(v);
}

/* Custom resources narrow the candidates to the nodes that have them. */
static void test_custom_resource_only_on_its_nodes(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 50; i++)
        tadd(v, i, TNODE(.cpus = 8, .custom = i % 10 == 0 ? "TPU" : NULL, .custom_amount = 4));
    sched_request r = treq(v, 1, 0);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "TPU", 1, NULL), 0);
    sched_rng rng;
    sched_rng_seed(&rng, 8);
    for (int i = 0; i < 100; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(run(v, &r, NULL, &rng, &d), SCHED_OK);
        CU_ASSERT_EQUAL(tnum(d.node) % 10, 0);
    }
    sched_view_free(v);
}

/* options.cost_weight adds price to the score: the cheap idle node wins. */
static void test_cost_term_in_default(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 8, .price = 3.0));
    tadd(v, 2, TNODE(.cpus = 8, .price = 1.0));
    tadd(v, 3, TNODE(.cpus = 8, .price = 2.0));
    sched_request r = treq(v, 1, 0);
    sched_options o;
    sched_options_init(&o);
    o.cost_weight = 1;
    sched_rng rng;
    sched_rng_seed(&rng, 8);
    sched_decision d;
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_OK);
        CU_ASSERT_EQUAL(tnum(d.node), 2);
    }
    /* Utilization still counts: a loaded cheap node loses to a slightly dearer idle one. */
    tset_cpu_used(v, tnode(v, 2), 7);
    CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 3);
    o.cost_weight = -1;
    CU_ASSERT_EQUAL(run(v, &r, &o, &rng, &d), SCHED_INVALID);
    sched_view_free(v);
}

/* Ray's num_cpus=0 actors: a request for nothing runs on a node whose CPUs are all taken. */
static void test_zero_resource_request_fits_full_node(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *n = tadd(v, 1, TNODE(.cpus = 2));
    tset_cpu_used(v, n, 2);
    sched_request zero = treq(v, 0, 0);
    CU_ASSERT_EQUAL(zero.n, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    CU_ASSERT_EQUAL(run(v, &zero, NULL, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, n);
    sched_request one = treq(v, 1, 0);
    CU_ASSERT_EQUAL(run(v, &one, NULL, &rng, &d), SCHED_NOT_NOW);
    sched_view_free(v);
}

static void test_same_seed_same_decisions(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 30; i++)
        tset_cpu_used(v, tadd(v, i, TNODE(.cpus = 10)), i % 10);
    sched_request r = treq(v, 1, 0);
    uint32_t first[200];
    for (int pass = 0; pass < 2; pass++) {
        sched_rng rng;
        sched_rng_seed(&rng, 1234);
        for (int i = 0; i < 200; i++) {
            sched_decision d;
            CU_ASSERT_EQUAL_FATAL(run(v, &r, NULL, &rng, &d), SCHED_OK);
            if (pass == 0)
                first[i] = tnum(d.node);
            else
                CU_ASSERT_EQUAL(first[i], tnum(d.node));
        }
    }
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_local_node_preferred_below_threshold),
    UNIT_CASE(test_random_tie_break_among_idle_nodes),
    UNIT_CASE(test_top_k_on_busy_cluster),
    UNIT_CASE(test_preferred_wins_ties_above_threshold),
    UNIT_CASE(test_gpu_avoidance),
    UNIT_CASE(test_not_now_queues_on_feasible_node),
    UNIT_CASE(test_never_when_no_node_fits),
    UNIT_CASE(test_custom_resource_only_on_its_nodes),
    UNIT_CASE(test_cost_term_in_default),
    UNIT_CASE(test_zero_resource_request_fits_full_node),
    UNIT_CASE(test_same_seed_same_decisions),
};

int main(void)
{
    return unit_run("sched_hybrid", cases, UNIT_N(cases));
}
