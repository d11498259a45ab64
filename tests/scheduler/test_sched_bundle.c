/* sched_bundle.c: placement groups, PACK / SPREAD / STRICT_PACK / STRICT_SPREAD. */
#include <string.h>

#include "rc_err.h"
#include "sched_test.h"

static sched_rng rng;

/* Snapshot of every node's CPU/GPU availability, to check the view is left unchanged. */
static void snapshot(sched_view *v, sched_amount *out)
{
    for (size_t i = 0; i < sched_view_node_count(v); i++) {
        sched_node *n = sched_view_node_at(v, i);
        out[2 * i] = sched_node_available(n, SCHED_CPU);
        out[2 * i + 1] = sched_node_available(n, SCHED_GPU);
    }
}

static int unchanged(sched_view *v, const sched_amount *before)
{
    sched_amount now[64];
    snapshot(v, now);
    return !memcmp(now, before, 2 * sched_view_node_count(v) * sizeof(sched_amount));
}

static sched_status place(sched_view *v, sched_request *b, size_t n, sched_pg_strategy s,
                          sched_node **out, sched_decision *d)
{
    sched_amount before[64];
    snapshot(v, before);
    sched_status st = sched_place_bundles(v, b, n, s, &rng, out, d);
    CU_ASSERT_TRUE(unchanged(v, before)); /* no partial allocation left behind */
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    return st;
}

static int distinct(sched_node **nodes, size_t n)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= nodes[j] == nodes[i];
        count += !seen;
    }
    return count;
}

static void test_pack(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 3; i++)
        tadd(v, i, TNODE(.cpus = 8));
    sched_request b[4];
    for (int i = 0; i < 4; i++)
        b[i] = treq(v, 2, 0);
    sched_node *out[4];
    sched_decision d;
    CU_ASSERT_EQUAL(place(v, b, 4, SCHED_PG_PACK, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 4), 1);
    /* 4 + 4 + 4 CPUs over 4-CPU nodes: as few nodes as possible (3, one bundle each), and
     * earlier bundles count: never two 4-CPU bundles on one node. */
    sched_view *w = sched_view_new(NULL);
    for (uint32_t i = 0; i < 4; i++)
        tadd(w, i, TNODE(.cpus = 6));
    sched_request c[3] = {treq(w, 3, 0), treq(w, 3, 0), treq(w, 3, 0)};
    CU_ASSERT_EQUAL(place(w, c, 3, SCHED_PG_PACK, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 3), 2);
    sched_alloc allocs[3];
    CU_ASSERT_EQUAL(sched_bundles_allocate(w, c, 3, out, allocs), 0);
    sched_bundles_free(w, 3, out, allocs);
    sched_view_free(w);
    sched_view_free(v);
}

static void test_spread(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 4; i++)
        tadd(v, i, TNODE(.cpus = 4));
    sched_request b[4];
    for (int i = 0; i < 4; i++)
        b[i] = treq(v, 1, 0);
    sched_node *out[4];
    sched_decision d;
    CU_ASSERT_EQUAL(place(v, b, 4, SCHED_PG_SPREAD, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 4), 4);
    /* More bundles than nodes: best effort, two per node. */
    sched_view *w = sched_view_new(NULL);
    tadd(w, 0, TNODE(.cpus = 2));
    tadd(w, 1, TNODE(.cpus = 2));
    CU_ASSERT_EQUAL(place(w, b, 4, SCHED_PG_SPREAD, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 4), 2);
    /* Five bundles do not fit now but would on a bigger cluster of these nodes. */
    sched_request five[5] = {b[0], b[0], b[0], b[0], b[0]};
    CU_ASSERT_EQUAL(place(w, five, 5, SCHED_PG_SPREAD, out, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "SPREAD: only 4 of 5 bundles could be placed"));
    sched_view_free(w);
    sched_view_free(v);
}

static void test_strict_pack(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 0, TNODE(.cpus = 8));
    tadd(v, 1, TNODE(.cpus = 8));
    sched_request b[3] = {treq(v, 2, 0), treq(v, 2, 0), treq(v, 2, 0)};
    sched_node *out[3];
    sched_decision d;
    CU_ASSERT_EQUAL(place(v, b, 3, SCHED_PG_STRICT_PACK, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 3), 1);
    /* 12 CPUs on one node can never happen here. */
    sched_request big[3] = {treq(v, 4, 0), treq(v, 4, 0), treq(v, 4, 0)};
    CU_ASSERT_EQUAL(place(v, big, 3, SCHED_PG_STRICT_PACK, out, &d), SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "STRICT_PACK: no node can hold all 3 bundles together "
                                  "({CPU: 12} in total) even when idle");
    /* Fits an idle node, but both are half busy: not now. */
    tset_cpu_used(v, tnode(v, 0), 4);
    tset_cpu_used(v, tnode(v, 1), 4);
    sched_request six[3] = {treq(v, 2, 0), treq(v, 2, 0), treq(v, 2, 0)};
    CU_ASSERT_EQUAL(place(v, six, 3, SCHED_PG_STRICT_PACK, out, &d), SCHED_NOT_NOW);
    /* Half GPUs: two fit one GPU, three never fit a 1-GPU node. */
    sched_view *g = sched_view_new(NULL);
    tadd(g, 0, TNODE(.cpus = 8, .gpus = 1));
    tadd(g, 1, TNODE(.cpus = 8, .gpus = 1));
    sched_request h[3] = {treq(g, 1, 0.5), treq(g, 1, 0.5), treq(g, 1, 0.5)};
    CU_ASSERT_EQUAL(place(g, h, 2, SCHED_PG_STRICT_PACK, out, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(out[0], out[1]);
    CU_ASSERT_EQUAL(place(g, h, 3, SCHED_PG_STRICT_PACK, out, &d), SCHED_NEVER);
    /* PACK of the same three: two on one node, one on the other. */
    CU_ASSERT_EQUAL(place(g, h, 3, SCHED_PG_PACK, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 3), 2);
    sched_alloc allocs[3];
    CU_ASSERT_EQUAL(sched_bundles_allocate(g, h, 3, out, allocs), 0);
    sched_bundles_free(g, 3, out, allocs);
    sched_view_free(g);
    sched_view_free(v);
}

/* Ray keeps STRICT_SPREAD of 4 bundles on 3 nodes pending: "not now", not "never". */
static void test_strict_spread(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 3; i++)
        tadd(v, i, TNODE(.cpus = 8));
    sched_request b[4];
    for (int i = 0; i < 4; i++)
        b[i] = treq(v, 1, 0);
    sched_node *out[4];
    sched_decision d;
    CU_ASSERT_EQUAL(place(v, b, 3, SCHED_PG_STRICT_SPREAD, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 3), 3);
    CU_ASSERT_EQUAL(place(v, b, 4, SCHED_PG_STRICT_SPREAD, out, &d), SCHED_NOT_NOW);
    CU_ASSERT_STRING_EQUAL(d.why, "STRICT_SPREAD needs 4 distinct nodes but only 3 nodes could "
                                  "ever hold its bundles; pending until more nodes join");
    /* A fourth node joins: placed. */
    tadd(v, 3, TNODE(.cpus = 8));
    CU_ASSERT_EQUAL(place(v, b, 4, SCHED_PG_STRICT_SPREAD, out, &d), SCHED_OK);
    CU_ASSERT_EQUAL(distinct(out, 4), 4);
    /* A busy node: enough nodes exist, just not now. */
    tset_cpu_used(v, tnode(v, 3), 8);
    CU_ASSERT_EQUAL(place(v, b, 4, SCHED_PG_STRICT_SPREAD, out, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "STRICT_SPREAD: only 3 of 4 bundles"));
    sched_view_free(v);
}

static void test_never_and_invalid(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 0, TNODE(.cpus = 8));
    tadd(v, 1, TNODE(.cpus = 8));
    sched_request b[2] = {treq(v, 1, 0), treq(v, 1, 1)};
    sched_node *out[2];
    sched_decision d;
    CU_ASSERT_EQUAL(place(v, b, 2, SCHED_PG_PACK, out, &d), SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "PACK bundle 1 {CPU: 1, GPU: 1} can never be placed: no node "
                                  "has 1 GPU; no node has any GPU");
    CU_ASSERT_EQUAL(place(v, b, 0, SCHED_PG_PACK, out, &d), SCHED_INVALID);
    sched_request empty;
    sched_request_init(&empty);
    sched_request e[2] = {b[0], empty};
    CU_ASSERT_EQUAL(place(v, e, 2, SCHED_PG_SPREAD, out, &d), SCHED_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "bundle 1 is empty"));
    CU_ASSERT_EQUAL(place(v, b, 1, (sched_pg_strategy)9, out, &d), SCHED_INVALID);
    CU_ASSERT_STRING_EQUAL(sched_pg_strategy_name(SCHED_PG_STRICT_SPREAD), "STRICT_SPREAD");
    sched_view_free(v);
}

static void test_bundle_label_selectors(void)
{
    sched_view *v = sched_view_new(NULL);
    const sched_label us[] = {{"region", "us"}}, eu[] = {{"region", "eu"}};
    for (uint32_t i = 0; i < 6; i++)
        tadd(v, i, TNODE(.cpus = 8, .labels = i < 3 ? us : eu, .n_labels = 1));
    sched_selector *sus = NULL, *seu = NULL;
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse("region: us", &sus, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse("region: eu", &seu, NULL), 0);
    sched_request b[2] = {treq(v, 1, 0), treq(v, 1, 0)};
    b[0].selector = sus;
    b[1].selector = seu;
    sched_node *out[2];
    sched_decision d;
    for (int s = 0; s < 2; s++) {
        sched_pg_strategy st = s ? SCHED_PG_SPREAD : SCHED_PG_PACK;
        CU_ASSERT_EQUAL(place(v, b, 2, st, out, &d), SCHED_OK);
        CU_ASSERT_STRING_EQUAL(sched_node_label(out[0], "region"), "us");
        CU_ASSERT_STRING_EQUAL(sched_node_label(out[1], "region"), "eu");
    }
    CU_ASSERT_EQUAL(place(v, b, 2, SCHED_PG_STRICT_PACK, out, &d), SCHED_NEVER);
    sched_selector_free(sus);
    sched_selector_free(seu);
    sched_view_free(v);
}

/* GPU bundles go first (Ray's order), so a CPU-heavy bundle can't take the only node that
 * has the GPU's CPUs. */
static void test_scarce_bundles_first(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 0, TNODE(.cpus = 8, .gpus = 1));
    tadd(v, 1, TNODE(.cpus = 8));
    sched_request b[2] = {treq(v, 8, 0), treq(v, 1, 1)};
    for (uint64_t seed = 0; seed < 50; seed++) {
        sched_rng_seed(&rng, seed);
        sched_node *out[2];
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(place(v, b, 2, SCHED_PG_STRICT_SPREAD, out, &d), SCHED_OK);
        CU_ASSERT_EQUAL(tnum(out[1]), 0);
        CU_ASSERT_EQUAL(tnum(out[0]), 1);
    }
    sched_view_free(v);
}

static void test_bundles_allocate_is_all_or_nothing(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 0, TNODE(.cpus = 4));
    tadd(v, 1, TNODE(.cpus = 4));
    sched_request b[3] = {treq(v, 2, 0), treq(v, 2, 0), treq(v, 3, 0)};
    sched_node *nodes[3] = {tnode(v, 0), tnode(v, 1), tnode(v, 0)};
    sched_alloc allocs[3];
    sched_amount before[4];
    snapshot(v, before);
    CU_ASSERT_EQUAL(sched_bundles_allocate(v, b, 3, nodes, allocs), RC_EBUSY);
    CU_ASSERT_TRUE(unchanged(v, before));
    nodes[2] = tnode(v, 1);
    b[2] = treq(v, 2, 0);
    CU_ASSERT_EQUAL(sched_bundles_allocate(v, b, 3, nodes, allocs), 0);
    CU_ASSERT_EQUAL(sched_node_available(tnode(v, 1), SCHED_CPU), 0);
    sched_bundles_free(v, 3, nodes, allocs);
    CU_ASSERT_TRUE(unchanged(v, before));
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_pack),
    UNIT_CASE(test_spread),
    UNIT_CASE(test_strict_pack),
    UNIT_CASE(test_strict_spread),
    UNIT_CASE(test_never_and_invalid),
    UNIT_CASE(test_bundle_label_selectors),
    UNIT_CASE(test_scarce_bundles_first),
    UNIT_CASE(test_bundles_allocate_is_all_or_nothing),
};

int main(void)
{
    sched_rng_seed(&rng, 77);
    return unit_run("sched_bundle", cases, UNIT_N(cases));
}
