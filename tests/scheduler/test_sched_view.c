/* sched_view.c: nodes, validation of node specs, reports, updates, and the index. */
#include <stdlib.h>
#include <string.h>

#include "rc_err.h"
#include "sched_test.h"

static void test_add_find_remove(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *a = tadd(v, 1, TNODE(.cpus = 4));
    sched_node *b = tadd(v, 2, TNODE(.cpus = 8, .gpus = 2));
    CU_ASSERT_EQUAL(sched_view_node_count(v), 2);
    CU_ASSERT_PTR_EQUAL(tnode(v, 1), a);
    CU_ASSERT_PTR_EQUAL(tnode(v, 2), b);
    CU_ASSERT_PTR_NULL(tnode(v, 3));
    CU_ASSERT_EQUAL(sched_node_total(b, SCHED_GPU), 2 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_gpu_count(b), 2);
    CU_ASSERT_EQUAL(sched_node_available(a, SCHED_CPU), 4 * SCHED_UNIT);
    /* Same ID twice. */
    uint8_t id[RC_NODE_ID_SIZE];
    tid(id, 1);
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    CU_ASSERT_EQUAL(sched_view_add_node(v, id, &spec, NULL, NULL), RC_EEXIST);
    sched_view_remove_node(v, a);
    CU_ASSERT_PTR_NULL(tnode(v, 1));
    CU_ASSERT_PTR_EQUAL(tnode(v, 2), b);
    CU_ASSERT_PTR_EQUAL(sched_view_node_at(v, 0), b);
    CU_ASSERT_PTR_NULL(sched_view_node_at(v, 1));
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    sched_view_free(v);
}

static void expect_spec_error(sched_node_spec *spec, const char *needle)
{
    sched_view *v = sched_view_new(NULL);
    uint8_t id[RC_NODE_ID_SIZE];
    tid(id, 9);
    sched_err err = {""};
    sched_node *out = NULL;
    CU_ASSERT_EQUAL(sched_view_add_node(v, id, spec, &out, &err), RC_EINVAL);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(sched_view_node_count(v), 0);
    if (!strstr(err.msg, needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    sched_view_free(v);
}

static void test_node_spec_validation(void)
{
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    sched_named_amount frac_gpu[] = {{"GPU", 1.5}};
    spec.resources = frac_gpu;
    spec.n_resources = 1;
    expect_spec_error(&spec, "whole number of devices");
    sched_named_amount dup[] = {{"CPU", 4}, {"CPU", 8}};
    spec.resources = dup;
    spec.n_resources = 2;
    expect_spec_error(&spec, "'CPU' is listed twice");
    sched_named_amount neg[] = {{"CPU", -4}};
    spec.resources = neg;
    spec.n_resources = 1;
    expect_spec_error(&spec, "'CPU': total -4");
    sched_named_amount many[] = {{"GPU", 64}};
    spec.resources = many;
    expect_spec_error(&spec, "64 GPUs");
    sched_named_amount four[] = {{"GPU", 4}};
    spec.resources = four;
    uint64_t mems[3] = {1, 2, 3};
    spec.gpu_memory = mems;
    spec.n_gpu_memory = 3;
    expect_spec_error(&spec, "lists 3 values for 4 GPUs");
    sched_node_spec_init(&spec);
    sched_label bad_label[] = {{"bad key", "x"}};
    spec.labels = bad_label;
    spec.n_labels = 1;
    expect_spec_error(&spec, "invalid label key 'bad key'");
    sched_label bad_value[] = {{"zone", "a b"}};
    spec.labels = bad_value;
    expect_spec_error(&spec, "invalid value 'a b' for label 'zone'");
    sched_label twice[] = {{"zone", "a"}, {"zone", "b"}};
    spec.labels = twice;
    spec.n_labels = 2;
    expect_spec_error(&spec, "label 'zone' is given twice");
    sched_label price[] = {{"rayc.io/price-per-hour", "cheap"}};
    spec.labels = price;
    spec.n_labels = 1;
    expect_spec_error(&spec, "rayc.io/price-per-hour=cheap is not a number");
    sched_label accel[] = {{"ray.io/accelerator-type", "H100"}};
    spec.labels = accel;
    spec.accelerator_type = "A100";
    expect_spec_error(&spec, "disagrees");
    sched_node_spec_init(&spec);
    spec.price_per_hour = -1;
    expect_spec_error(&spec, "price per hour -1");
}

static void test_accelerator_and_price_from_labels(void)
{
    sched_view *v = sched_view_new(NULL);
    const sched_label labels[] = {{"ray.io/accelerator-type", "H100"},
                                  {"rayc.io/price-per-hour", "2.5"}};
    sched_node *n = tadd(
        v, 1, TNODE(.cpus = 8, .gpus = 8, .labels = labels, .n_labels = 2, .price_from_label = 1));
    CU_ASSERT_STRING_EQUAL(sched_node_accelerator_type(n), "H100");
    CU_ASSERT_DOUBLE_EQUAL(sched_node_price(n), 2.5, 1e-12);
    uint32_t id;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "accelerator_type:H100", &id), 0);
    CU_ASSERT_EQUAL(sched_node_total(n, id), SCHED_UNIT); /* as Ray's raylet adds it */
    /* From the spec: the label is added too. */
    sched_node *m = tadd(v, 2, TNODE(.cpus = 8, .gpus = 1, .accel = "L4", .price = 0.7));
    CU_ASSERT_STRING_EQUAL(sched_node_label(m, "ray.io/accelerator-type"), "L4");
    CU_ASSERT_DOUBLE_EQUAL(sched_node_price(m), 0.7, 1e-12);
    sched_node *o = tadd(v, 3, TNODE(.cpus = 8));
    CU_ASSERT_DOUBLE_EQUAL(sched_node_price(o), 0, 1e-12); /* owned host */
    CU_ASSERT_PTR_NULL(sched_node_accelerator_type(o));
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    sched_view_free(v);
}

static void test_report_available(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *n = tadd(
        v, 1, TNODE(.cpus = 16, .gpus = 4, .mem_gib = 64, .custom = "TPU", .custom_amount = 2));
    CU_ASSERT_DOUBLE_EQUAL(sched_node_utilization(n), 0, 1e-9);
    const sched_named_amount rep[] = {{"CPU", 4}, {"GPU", 2.5}, {"memory", 48 * GIB}, {"bogus", 3}};
    CU_ASSERT_EQUAL(sched_node_report_available(v, n, rep, 4, NULL), 0);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 4 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_GPU), 25000);
    /* Whole free instances first, then one partial. */
    CU_ASSERT_EQUAL(sched_node_gpu_available(n, 0), SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_gpu_available(n, 1), SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_gpu_available(n, 2), 5000);
    CU_ASSERT_EQUAL(sched_node_gpu_available(n, 3), 0);
    uint32_t tpu;
    sched_view_resource_id(v, "TPU", &tpu);
    CU_ASSERT_EQUAL(sched_node_available(n, tpu), 0);              /* not listed: 0 */
    CU_ASSERT_DOUBLE_EQUAL(sched_node_utilization(n), 0.75, 1e-6); /* CPU 12/16 used */
    /* Clamped to totals; bad reports change nothing. */
    const sched_named_amount big[] = {{"CPU", 100}};
    CU_ASSERT_EQUAL(sched_node_report_available(v, n, big, 1, NULL), 0);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 16 * SCHED_UNIT);
    const sched_named_amount bad[] = {{"CPU", 1}, {"GPU", -1}};
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_node_report_available(v, n, bad, 2, &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'GPU'"));
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 16 * SCHED_UNIT);
    /* The cheap path. */
    CU_ASSERT_EQUAL(sched_node_set_available(v, n, tpu, SCHED_UNIT), 0);
    CU_ASSERT_EQUAL(sched_node_available(n, tpu), SCHED_UNIT);
    uint32_t other;
    sched_view_resource_id(v, "other", &other);
    CU_ASSERT_EQUAL(sched_node_set_available(v, n, other, SCHED_UNIT), RC_ENOENT);
    CU_ASSERT_EQUAL(sched_node_set_available(v, n, SCHED_CPU, -5), 0);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 0);
    CU_ASSERT_DOUBLE_EQUAL(sched_node_utilization(n), 1.0, 1e-6);
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    sched_view_free(v);
}

static void test_update_keeps_in_use(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *n = tadd(v, 1, TNODE(.cpus = 8, .gpus = 2));
    sched_request r = treq(v, 3, 0.5);
    sched_alloc a;
    CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, n, &r, &a), 0);
    /* Grow CPUs, keep GPUs, add labels. */
    const sched_named_amount res[] = {{"CPU", 16}, {"GPU", 2}};
    const sched_label labels[] = {{"zone", "z1"}};
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = res;
    spec.n_resources = 2;
    spec.labels = labels;
    spec.n_labels = 1;
    CU_ASSERT_EQUAL(sched_view_update_node(v, n, &spec, NULL), 0);
    CU_ASSERT_PTR_EQUAL(tnode(v, 1), n);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 13 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_GPU), 15000);
    CU_ASSERT_STRING_EQUAL(sched_node_label(n, "zone"), "z1");
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    /* Freeing after the update gives back exactly what was taken. */
    CU_ASSERT_EQUAL(sched_node_free(v, n, &a), 0);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 16 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_GPU), 2 * SCHED_UNIT);
    /* Shrink below what is in use: available floors at 0; GPUs go away. */
    CU_ASSERT_EQUAL_FATAL(sched_node_allocate(v, n, &r, &a), 0);
    const sched_named_amount small[] = {{"CPU", 2}};
    spec.resources = small;
    spec.n_resources = 1;
    spec.labels = NULL;
    spec.n_labels = 0;
    CU_ASSERT_EQUAL(sched_view_update_node(v, n, &spec, NULL), 0);
    CU_ASSERT_EQUAL(sched_node_available(n, SCHED_CPU), 0);
    CU_ASSERT_EQUAL(sched_node_gpu_count(n), 0);
    CU_ASSERT_PTR_NULL(sched_node_label(n, "zone"));
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    /* A bad update leaves the node as it was. */
    const sched_named_amount bad[] = {{"GPU", 0.5}};
    spec.resources = bad;
    CU_ASSERT_EQUAL(sched_view_update_node(v, n, &spec, NULL), RC_EINVAL);
    CU_ASSERT_EQUAL(sched_node_total(n, SCHED_CPU), 2 * SCHED_UNIT);
    sched_view_free(v);
}

static void test_dead_and_draining_nodes_are_skipped(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_node *a = tadd(v, 1, TNODE(.cpus = 4));
    sched_node *b = tadd(v, 2, TNODE(.cpus = 4));
    sched_rng rng;
    sched_rng_seed(&rng, 5);
    sched_request r = treq(v, 1, 0);
    sched_decision d;
    sched_node_set_alive(v, a, 0);
    CU_ASSERT_FALSE(sched_node_is_alive(a));
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_OK);
        CU_ASSERT_PTR_EQUAL(d.node, b);
    }
    sched_node_set_draining(v, b, 1);
    CU_ASSERT_TRUE(sched_node_is_draining(b));
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why,
                           "no alive node in the cluster view (2 known, all dead or draining)");
    sched_node_set_alive(v, a, 1);
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, a);
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    sched_view_free(v);
}

static void test_resource_registry(void)
{
    sched_view *v = sched_view_new(NULL);
    uint32_t id;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "CPU", &id), 0);
    CU_ASSERT_EQUAL(id, SCHED_CPU);
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "object_store_memory", &id), 0);
    CU_ASSERT_EQUAL(id, SCHED_OBJECT_STORE_MEMORY);
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "custom", &id), 0);
    CU_ASSERT(id >= SCHED_N_PREDEFINED);
    uint32_t again;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "custom", &again), 0);
    CU_ASSERT_EQUAL(again, id);
    CU_ASSERT_STRING_EQUAL(sched_view_resource_name(v, id), "custom");
    CU_ASSERT_PTR_NULL(sched_view_resource_name(v, 9999));
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "", &id), RC_EINVAL);
    sched_view_free(v);
}

/* Random adds, removes, updates, liveness flips and reports keep every index invariant,
 * and the candidate list for a custom resource is exactly the nodes having it. */
static void test_index_invariants_under_churn(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_rng rng;
    sched_rng_seed(&rng, 42);
    static const char *zones[] = {"z1", "z2", "z3"};
    static const char *customs[] = {"TPU", "fpga", "node:10.0.0.1"};
    uint32_t next_id = 0;
    for (int step = 0; step < 3000; step++) {
        uint32_t op = sched_rng_below(&rng, 10);
        size_t n = sched_view_node_count(v);
        if (op < 4 || n < 5) {
            sched_label labels[] = {{"zone", zones[sched_rng_below(&rng, 3)]}};
            tnode_opts o =
                TNODE(.cpus = 1 + sched_rng_below(&rng, 32),
                      .gpus = sched_rng_below(&rng, 3) ? 0 : 1 + sched_rng_below(&rng, 8),
                      .labels = labels, .n_labels = sched_rng_below(&rng, 2));
            if (sched_rng_below(&rng, 3) == 0) {
                o.custom = customs[sched_rng_below(&rng, 3)];
                o.custom_amount = 1 + sched_rng_below(&rng, 4);
            }
            tadd(v, next_id++, o);
        } else if (op < 6) {
            sched_view_remove_node(v, sched_view_node_at(v, sched_rng_below(&rng, (uint32_t)n)));
        } else if (op < 7) {
            sched_node *node = sched_view_node_at(v, sched_rng_below(&rng, (uint32_t)n));
            sched_named_amount res[] = {{"CPU", 4}, {customs[sched_rng_below(&rng, 3)], 2}};
            sched_label labels[] = {{"zone", zones[sched_rng_below(&rng, 3)]}};
            sched_node_spec spec;
            sched_node_spec_init(&spec);
            spec.resources = res;
            spec.n_resources = 2;
            spec.labels = labels;
            spec.n_labels = 1;
            CU_ASSERT_EQUAL(sched_view_update_node(v, node, &spec, NULL), 0);
        } else if (op < 8) {
            sched_node *node = sched_view_node_at(v, sched_rng_below(&rng, (uint32_t)n));
            sched_node_set_alive(v, node, (int)sched_rng_below(&rng, 2));
            sched_node_set_draining(v, node, sched_rng_below(&rng, 4) == 0);
        } else {
            sched_node *node = sched_view_node_at(v, sched_rng_below(&rng, (uint32_t)n));
            sched_named_amount rep[] = {{"CPU", sched_rng_below(&rng, 40)},
                                        {"GPU", sched_rng_below(&rng, 90) / 10.0}};
            CU_ASSERT_EQUAL(sched_node_report_available(v, node, rep, 2, NULL), 0);
        }
        if (step % 100 == 0)
            CU_ASSERT_EQUAL_FATAL(tcheck_index(v), 0);
    }
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    /* Label buckets: exactly the nodes with that zone. */
    for (int z = 0; z < 3; z++) {
        char sel[32];
        snprintf(sel, sizeof(sel), "zone: %s", zones[z]);
        sched_selector *s = NULL;
        CU_ASSERT_EQUAL_FATAL(sched_selector_parse(sel, &s, NULL), 0);
        sched_request r;
        sched_request_init(&r);
        r.selector = s;
        const sched__list *l = sched__candidates(v, &r, NULL);
        uint32_t want = 0;
        for (size_t i = 0; i < sched_view_node_count(v); i++)
            want += sched_selector_matches(s, sched_view_node_at(v, i));
        CU_ASSERT_EQUAL(l->n, want);
        for (uint32_t i = 0; i < l->n; i++)
            CU_ASSERT_TRUE(sched_selector_matches(s, l->items[i]));
        sched_selector_free(s);
    }
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_add_find_remove),
    UNIT_CASE(test_node_spec_validation),
    UNIT_CASE(test_accelerator_and_price_from_labels),
    UNIT_CASE(test_report_available),
    UNIT_CASE(test_update_keeps_in_use),
    UNIT_CASE(test_dead_and_draining_nodes_are_skipped),
    UNIT_CASE(test_resource_registry),
    UNIT_CASE(test_index_invariants_under_churn),
};

int main(void)
{
    return unit_run("sched_view", cases, UNIT_N(cases));
}
