/* sched_affinity.c: Ray's NodeAffinitySchedulingStrategy, hard and soft, spill and fail. */
#include <string.h>

#include "sched_test.h"

typedef struct fixture {
    sched_view *v;
    sched_options o;
    sched_rng rng;
} fixture;

static void setup(fixture *f)
{
    f->v = sched_view_new(NULL);
    for (uint32_t i = 1; i <= 4; i++)
        tadd(f->v, i, TNODE(.cpus = 4, .gpus = i == 4 ? 1 : 0));
    sched_options_init(&f->o);
    f->o.strategy = SCHED_STRATEGY_NODE_AFFINITY;
    tid(f->o.affinity_node, 2);
    sched_rng_seed(&f->rng, 17);
}

static sched_status run(fixture *f, const sched_request *r, sched_decision *d)
{
    return sched_schedule(f->v, r, &f->o, &f->rng, d);
}

static void test_hard_affinity(void)
{
    fixture f;
    setup(&f);
    sched_request r = treq(f.v, 2, 0);
    sched_decision d;
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(f.v, 2));
    /* Busy: Ray returns the node and the task queues there. */
    tset_cpu_used(f.v, tnode(f.v, 2), 3);
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(f.v, 2));
    /* Busy with fail_on_unavailable: fail rather than queue. */
    f.o.fail_on_unavailable = 1;
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_UNAVAILABLE);
    CU_ASSERT_PTR_NULL(d.node);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "fail_on_unavailable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "00000002"));
    tset_cpu_used(f.v, tnode(f.v, 2), 0);
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_OK);
    f.o.fail_on_unavailable = 0;
    /* Can never fit there. */
    sched_request g = treq(f.v, 1, 1);
    CU_ASSERT_EQUAL(run(&f, &g, &d), SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "node affinity: node 00000002\xe2\x80\xa6 can never run this: "
                                  "it has no GPU, the request needs 1 GPU");
    /* Dead. */
    sched_node_set_alive(f.v, tnode(f.v, 2), 0);
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "is dead"));
    sched_node_set_alive(f.v, tnode(f.v, 2), 1);
    sched_node_set_draining(f.v, tnode(f.v, 2), 1);
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "is draining"));
    /* Unknown. */
    tid(f.o.affinity_node, 77);
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "0000004d"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "is not in the cluster view"));
    sched_view_free(f.v);
}

static void test_soft_affinity(void)
{
    fixture f;
    setup(&f);
    f.o.affinity_soft = 1;
    sched_request r = treq(f.v, 2, 0);
    sched_decision d;
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(f.v, 2));
    /* Busy without spill: queue on the target, like hard. */
    tset_cpu_used(f.v, tnode(f.v, 2), 3);
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(f.v, 2));
    /* Busy with spill_on_unavailable: DEFAULT elsewhere. */
    f.o.spill_on_unavailable = 1;
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_OK);
        CU_ASSERT_PTR_NOT_EQUAL(d.node, tnode(f.v, 2));
    }
    f.o.spill_on_unavailable = 0;
    /* Dead target: fall back to DEFAULT. */
    tset_cpu_used(f.v, tnode(f.v, 2), 0);
    sched_node_set_alive(f.v, tnode(f.v, 2), 0);
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_OK);
    CU_ASSERT_PTR_NOT_EQUAL(d.node, tnode(f.v, 2));
    sched_node_set_alive(f.v, tnode(f.v, 2), 1);
    /* Infeasible on the target: DEFAULT finds the GPU node. */
    sched_request g = treq(f.v, 1, 1);
    CU_ASSERT_EQUAL(run(&f, &g, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(f.v, 4));
    /* Unknown target and nothing fits anywhere: DEFAULT's "never". */
    tid(f.o.affinity_node, 99);
    sched_request huge = treq(f.v, 100, 0);
    CU_ASSERT_EQUAL(run(&f, &huge, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "no node has 100 CPU"));
    sched_view_free(f.v);
}

/* Ray rejects spill with hard affinity and fail with soft affinity. */
static void test_invalid_flag_combinations(void)
{
    fixture f;
    setup(&f);
    sched_request r = treq(f.v, 1, 0);
    sched_decision d;
    f.o.spill_on_unavailable = 1;
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "spill_on_unavailable requires soft"));
    f.o.spill_on_unavailable = 0;
    f.o.affinity_soft = 1;
    f.o.fail_on_unavailable = 1;
    CU_ASSERT_EQUAL(run(&f, &r, &d), SCHED_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "fail_on_unavailable requires hard"));
    sched_view_free(f.v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_hard_affinity),
    UNIT_CASE(test_soft_affinity),
    UNIT_CASE(test_invalid_flag_combinations),
};

int main(void)
{
    return unit_run("sched_affinity", cases, UNIT_N(cases));
}
