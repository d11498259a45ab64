/* sched_cost.c: the COST strategy, cheapest available node, tie-broken by utilization. */
#include <string.h>

#include "sched_test.h"

static void test_cheapest_available_node(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 8, .gpus = 1, .accel = "A100", .price = 1.10));
    tadd(v, 2, TNODE(.cpus = 8, .gpus = 1, .accel = "H100", .price = 2.49));
    tadd(v, 3, TNODE(.cpus = 8, .gpus = 1, .accel = "RTX4090", .price = 0.35));
    tadd(v, 4, TNODE(.cpus = 8, .gpus = 1, .accel = "L4", .price = 0.60));
    sched_options o;
    sched_options_init(&o);
    o.strategy = SCHED_STRATEGY_COST;
    sched_request r = treq(v, 1, 1);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    static const uint32_t want[] = {3, 4, 1, 2};
    for (int i = 0; i < 4; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_OK);
        CU_ASSERT_EQUAL(tnum(d.node), want[i]);
        sched_alloc a;
        CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, d.node, &r, &a), 0);
    }
    /* Everything busy: queue on the cheapest feasible node. */
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_NOT_NOW);
    CU_ASSERT_EQUAL(tnum(d.node), 3);
    /* With an accelerator type only those nodes count, whatever the price. */
    sched_request h = treq(v, 1, 0);
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &h, "H100", NULL), 0);
    CU_ASSERT_EQUAL(sched_schedule(v, &h, &o, &rng, &d), SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 2);
    sched_view_free(v);
}

static void test_equal_price_goes_to_less_utilized(void)
{
    sched_view *v = sched_view_new(NULL);
    tset_cpu_used(v, tadd(v, 1, TNODE(.cpus = 8, .price = 1.0)), 6);
    tset_cpu_used(v, tadd(v, 2, TNODE(.cpus = 8, .price = 1.0)), 2);
    tset_cpu_used(v, tadd(v, 3, TNODE(.cpus = 8, .price = 1.5)), 0);
    sched_options o;
    sched_options_init(&o);
    o.strategy = SCHED_STRATEGY_COST;
    sched_request r = treq(v, 1, 0);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 2);
    /* Market prices come from labels; owned hosts (no label) cost 0 and win. */
    const sched_label l[] = {{"rayc.io/price-per-hour", "0.05"}};
    tadd(v, 4, TNODE(.cpus = 8, .labels = l, .n_labels = 1, .price_from_label = 1));
    CU_ASSERT_EQUAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 4);
    tadd(v, 5, TNODE(.cpus = 8));
    CU_ASSERT_EQUAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 5);
    /* Never. */
    sched_request big = treq(v, 9, 0);
    CU_ASSERT_EQUAL(sched_schedule(v, &big, &o, &rng, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "no node has 9 CPU; largest: 8 CPU"));
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_cheapest_available_node),
    UNIT_CASE(test_equal_price_goes_to_less_utilized),
};

int main(void)
{
    return unit_run("sched_cost", cases, UNIT_N(cases));
}
