/*
 * Reference-counted resource names (sched_view.c's registry): a custom name lives while a
 * node, a request entry or a caller holds it, and is freed (its ID reusable) after the last
 * release; a churn of placement-group bundle names leaves the registry as large as it was.
 */
#include "rc_err.h"
#include "sched_test.h"

static int has_name(const sched_view *v, const char *name)
{
    uint32_t id;
    return sched_view_resource_find(v, name, &id) == 0;
}

static void node_with(sched_view *v, uint32_t i, const sched_named_amount *res, size_t n, sched_node **out)
{
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = res;
    spec.n_resources = n;
    uint8_t id[RC_NODE_ID_SIZE];
    tid(id, i);
    sched_node *node = sched_view_find(v, id);
    sched_err e;
    int rc = node ? sched_view_update_node(v, node, &spec, &e) : sched_view_add_node(v, id, &spec, &node, &e);
    CU_ASSERT_EQUAL(rc, 0);
    if (out)
        *out = node;
}

static void test_caller_reference(void)
{
    sched_view *v = sched_view_new(NULL);
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    uint32_t id, again;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "disk", &id), 0);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, id), 1);
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "disk", &again), 0);
    CU_ASSERT_EQUAL(again, id);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, id), 2);
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED + 1);
    sched_view_resource_release(v, id);
    CU_ASSERT_STRING_EQUAL(sched_view_resource_name(v, id), "disk");
    sched_view_resource_release(v, id);
    CU_ASSERT_PTR_NULL(sched_view_resource_name(v, id));
    CU_ASSERT_FALSE(has_name(v, "disk"));
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    /* Extra releases and predefined names are harmless. */
    sched_view_resource_release(v, id);
    sched_view_resource_release(v, SCHED_CPU);
    CU_ASSERT_STRING_EQUAL(sched_view_resource_name(v, SCHED_CPU), "CPU");
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, SCHED_CPU), UINT32_MAX);
    /* The freed ID is handed out again. */
    uint32_t next;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "tpu", &next), 0);
    CU_ASSERT_EQUAL(next, id);
    CU_ASSERT_STRING_EQUAL(sched_view_resource_name(v, next), "tpu");
    sched_view_free(v);
}

/* Freed IDs come back oldest first. */
static void test_free_ids_oldest_first(void)
{
    sched_view *v = sched_view_new(NULL);
    uint32_t a, b, c, x, y;
    sched_view_resource_id(v, "a", &a);
    sched_view_resource_id(v, "b", &b);
    sched_view_resource_id(v, "c", &c);
    sched_view_resource_release(v, b);
    sched_view_resource_release(v, a);
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "x", &x), 0);
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "y", &y), 0);
    CU_ASSERT_EQUAL(x, b);
    CU_ASSERT_EQUAL(y, a);
    sched_view_free(v);
}

static void test_nodes_hold_their_names(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_named_amount r1[] = {{"CPU", 4}, {"disk", 2}, {"fpga", 1}};
    sched_node *n;
    node_with(v, 1, r1, 3, &n);
    uint32_t disk, fpga;
    CU_ASSERT_EQUAL_FATAL(sched_view_resource_find(v, "disk", &disk), 0);
    CU_ASSERT_EQUAL_FATAL(sched_view_resource_find(v, "fpga", &fpga), 0);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, disk), 1);
    /* A second node shares the name. */
    sched_named_amount r2[] = {{"CPU", 2}, {"disk", 1}};
    sched_node *m;
    node_with(v, 2, r2, 2, &m);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, disk), 2);
    /* An update that drops fpga frees it; disk, kept, keeps its ID. */
    sched_named_amount r3[] = {{"CPU", 4}, {"disk", 3}, {"zero", 0}};
    node_with(v, 1, r3, 3, NULL);
    CU_ASSERT_FALSE(has_name(v, "fpga"));
    CU_ASSERT_FALSE(has_name(v, "zero")); /* a zero total is not having it */
    uint32_t disk2;
    CU_ASSERT_EQUAL(sched_view_resource_find(v, "disk", &disk2), 0);
    CU_ASSERT_EQUAL(disk2, disk);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, disk), 2);
    CU_ASSERT_EQUAL(sched_node_total(n, disk), 3 * SCHED_UNIT);
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    sched_view_remove_node(v, m);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, disk), 1);
    sched_view_remove_node(v, n);
    CU_ASSERT_FALSE(has_name(v, "disk"));
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    /* A node refused halfway leaves none of the names it interned. */
    sched_named_amount bad[] = {{"CPU", 4}, {"tmp_a", 1}, {"tmp_b", NAN}};
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = bad;
    spec.n_resources = 3;
    uint8_t id[RC_NODE_ID_SIZE];
    tid(id, 3);
    sched_err e;
    CU_ASSERT_EQUAL(sched_view_add_node(v, id, &spec, NULL, &e), RC_EINVAL);
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    /* An accelerator type's resource is the node's too. */
    sched_node_spec_init(&spec);
    spec.resources = r2;
    spec.n_resources = 2;
    spec.accelerator_type = "A100";
    CU_ASSERT_EQUAL(sched_view_add_node(v, id, &spec, &n, &e), 0);
    CU_ASSERT_TRUE(has_name(v, "accelerator_type:A100"));
    sched_view_remove_node(v, n);
    CU_ASSERT_FALSE(has_name(v, "accelerator_type:A100"));
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    sched_view_free(v);
}

static void test_requests_hold_their_names(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_request r;
    sched_request_init(&r);
    sched_err e;
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "CPU", 1, &e), 0);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "disk", 1, &e), 0);
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &r, "H100", &e), 0);
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED + 2);
    uint32_t disk;
    CU_ASSERT_EQUAL_FATAL(sched_view_resource_find(v, "disk", &disk), 0);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, disk), 1);
    /* Setting it again is the same entry, the same reference. */
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "disk", 2, &e), 0);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, disk), 1);
    /* A copy kept apart takes its own references. */
    sched_request copy = r;
    sched_request_retain(v, &copy);
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, disk), 2);
    sched_request_release(v, &r);
    CU_ASSERT_EQUAL(r.n, 0);
    CU_ASSERT_STRING_EQUAL(sched_view_resource_name(v, disk), "disk");
    /* Removing an entry by name releases it. */
    CU_ASSERT_EQUAL(sched_request_set(v, &copy, "disk", 0, &e), 0);
    CU_ASSERT_FALSE(has_name(v, "disk"));
    CU_ASSERT_TRUE(has_name(v, "accelerator_type:H100"));
    /* Entries set by ID borrow: releasing the request leaves their names alone. */
    uint32_t fpga;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "fpga", &fpga), 0);
    CU_ASSERT_EQUAL(sched_request_set_id(&copy, fpga, SCHED_UNIT), 0);
    sched_request_release(v, &copy);
    CU_ASSERT_FALSE(has_name(v, "accelerator_type:H100"));
    CU_ASSERT_EQUAL(sched_view_resource_refs(v, fpga), 1);
    sched_view_resource_release(v, fpga);
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    /* A refused entry interns nothing that stays. */
    sched_request_init(&r);
    char name[32];
    for (int i = 0; i < SCHED_REQ_MAX_RESOURCES; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        CU_ASSERT_EQUAL(sched_request_set(v, &r, name, 1, &e), 0);
    }
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "one_too_many", 1, &e), RC_EINVAL);
    CU_ASSERT_FALSE(has_name(v, "one_too_many"));
    sched_request_release(v, &r);
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    sched_view_free(v);
}

/* A request whose name was freed under it is refused as malformed, never matched to
 * whatever name took the ID next. */
static void test_stale_id_is_refused(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_named_amount res[] = {{"CPU", 4}, {"old", 1}};
    sched_node *n;
    node_with(v, 1, res, 2, &n);
    uint32_t old;
    CU_ASSERT_EQUAL_FATAL(sched_view_resource_find(v, "old", &old), 0);
    sched_request r;
    sched_request_init(&r);
    CU_ASSERT_EQUAL(sched_request_set_id(&r, old, SCHED_UNIT), 0); /* borrowed */
    sched_view_remove_node(v, n);
    sched_decision d;
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_INVALID);
    sched_view_free(v);
}

/* What a raylet sees per placement group: its node gains the bundle names on commit, a
 * lease asks for them, and they go when the group is removed. 20,000 groups later the
 * registry and its per-ID arrays are as large as after the first few. */
static void test_bundle_churn_is_flat(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_named_amount base[] = {{"CPU", 8}, {"memory", 16 * GIB}};
    sched_node *n;
    node_with(v, 1, base, 2, &n);
    sched_named_amount other[] = {{"CPU", 8}};
    node_with(v, 2, other, 1, NULL);
    uint32_t cap_after_warmup = 0;
    size_t count_after_warmup = 0;
    sched_rng rng;
    sched_rng_seed(&rng, 7);
    for (uint32_t g = 0; g < 20000; g++) {
        char names[4][64];
        snprintf(names[0], sizeof(names[0]), "CPU_group_0_%032x", g);
        snprintf(names[1], sizeof(names[1]), "CPU_group_%032x", g);
        snprintf(names[2], sizeof(names[2]), "bundle_group_0_%032x", g);
        snprintf(names[3], sizeof(names[3]), "bundle_group_%032x", g);
        sched_named_amount with[] = {{"CPU", 8}, {"memory", 16 * GIB}, {names[0], 1}, {names[1], 1},
                                     {names[2], 1000}, {names[3], 1000}};
        node_with(v, 1, with, 6, NULL);
        sched_request r;
        sched_request_init(&r);
        sched_err e;
        CU_ASSERT_EQUAL(sched_request_set(v, &r, names[1], 1, &e), 0);
        CU_ASSERT_EQUAL(sched_request_set(v, &r, names[3], 0.001, &e), 0);
        sched_decision d;
        CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_OK);
        CU_ASSERT_PTR_EQUAL(d.node, n);
        sched_request_release(v, &r);
        node_with(v, 1, base, 2, NULL);
        if (g == 99) {
            cap_after_warmup = v->cap_res_names;
            count_after_warmup = sched_view_resource_count(v);
        }
    }
    CU_ASSERT_EQUAL(sched_view_resource_count(v), count_after_warmup);
    CU_ASSERT_EQUAL(sched_view_resource_count(v), SCHED_N_PREDEFINED);
    CU_ASSERT_EQUAL(v->cap_res_names, cap_after_warmup);
    CU_ASSERT(v->n_res_names <= SCHED_N_PREDEFINED + 4);
    CU_ASSERT_EQUAL(rc_map_size(&v->res_ids), SCHED_N_PREDEFINED);
    CU_ASSERT_EQUAL(tcheck_index(v), 0);
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_caller_reference),
    UNIT_CASE(test_free_ids_oldest_first),
    UNIT_CASE(test_nodes_hold_their_names),
    UNIT_CASE(test_requests_hold_their_names),
    UNIT_CASE(test_stale_id_is_refused),
    UNIT_CASE(test_bundle_churn_is_flat),
};

int main(void)
{
    return unit_run("sched_names", cases, UNIT_N(cases));
}
