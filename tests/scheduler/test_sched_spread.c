/* sched_spread.c: Ray's SPREAD, round-robin over nodes with the request free now. */
#include <string.h>

#include "sched_test.h"

static void test_round_robin(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 4; i++)
        tadd(v, i, TNODE(.cpus = 4));
    sched_options o;
    sched_options_init(&o);
    o.strategy = SCHED_STRATEGY_SPREAD;
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    uint32_t seen[8];
    for (int i = 0; i < 8; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_OK);
        seen[i] = tnum(d.node);
    }
    /* Consecutive decisions visit distinct nodes, cycling through all four. */
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CU_ASSERT_NOT_EQUAL(seen[i], seen[j]);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(seen[i], seen[i + 4]);
    sched_view_free(v);
}

/* With allocation, SPREAD puts one task on each node before doubling up (Ray's
 * test_spread_scheduling_strategy: 4 tasks on 4 nodes land on 4 distinct nodes). */
static void test_spread_with_allocation_skips_full_nodes(void)
{
    sched_view *v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 4; i++)
        tadd(v, i, TNODE(.cpus = i == 2 ? 1 : 2));
    sched_options o;
    sched_options_init(&o);
    o.strategy = SCHED_STRATEGY_SPREAD;
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    int count[4] = {0};
    for (int i = 0; i < 7; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_OK);
        sched_alloc a;
        CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, d.node, &r, &a), 0);
        count[tnum(d.node)]++;
        if (i == 3)
            for (int k = 0; k < 4; k++)
                CU_ASSERT_EQUAL(count[k], 1);
    }
    CU_ASSERT_EQUAL(count[0], 2);
    CU_ASSERT_EQUAL(count[1], 2);
    CU_ASSERT_EQUAL(count[2], 1);
    CU_ASSERT_EQUAL(count[3], 2);
    /* Full: falls back to DEFAULT, which queues (not now). */
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_NOT_NULL(d.node);
    sched_request big = treq(v, 3, 0);
    CU_ASSERT_EQUAL(sched_schedule(v, &big, &o, &rng, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "no node has 3 CPU; largest: 2 CPU"));
    sched_view_free(v);
}

static void test_spread_honours_selector_and_dead_nodes(void)
{
    sched_view *v = sched_view_new(NULL);
    const sched_label a[] = {{"pool", "a"}}, b[] = {{"pool", "b"}};
    for (uint32_t i = 0; i < 6; i++)
        tadd(v, i, TNODE(.cpus = 4, .labels = i % 2 ? a : b, .n_labels = 1));
    sched_node_set_alive(v, tnode(v, 1), 0);
    sched_selector *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse("pool: a", &s, NULL), 0);
    sched_request r = treq(v, 1, 0);
    r.selector = s;
    sched_options o;
    sched_options_init(&o);
    o.strategy = SCHED_STRATEGY_SPREAD;
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    uint32_t prev = 999;
    for (int i = 0; i < 10; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_OK);
        uint32_t n = tnum(d.node);
        CU_ASSERT(n == 3 || n == 5);
        CU_ASSERT_NOT_EQUAL(n, prev);
        prev = n;
    }
    sched_selector_free(s);
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_round_robin),
    UNIT_CASE(test_spread_with_allocation_skips_full_nodes),
    UNIT_CASE(test_spread_honours_selector_and_dead_nodes),
};

int main(void)
{
    return unit_run("sched_spread", cases, UNIT_N(cases));
}
