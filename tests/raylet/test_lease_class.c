/*
 * LeaseSpec → scheduling class (raylet/lease_class.c), bundle resource names
 * (sched_bundle_name_parse/format) and the worker environment's GPU list (worker_pool_gpu_env,
 * worker_key_init): conversion of every field (placement groups' renamed resources, actor
 * creations placed by their placement resources), canonical class keys, and a sentence for
 * every malformed input. No processes, no I/O.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bundle_manager.h"
#include "lease_int.h"
#include "rc_err.h"
#include "unit.h"
#include "worker_pool.h"

typedef struct res {
    const char *name;
    double amount;
} res;

typedef struct spec_buf {
    Ray__Rpc__LeaseSpec spec;
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry entries[24];
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry *ptrs[24];
} spec_buf;

static Ray__Rpc__LeaseSpec *spec_of(spec_buf *b, const res *rs, size_t n)
{
    ray__rpc__lease_spec__init(&b->spec);
    for (size_t i = 0; i < n; i++) {
        ray__rpc__lease_spec__required_resources_entry__init(&b->entries[i]);
        b->entries[i].key = (char *)rs[i].name;
        b->entries[i].value = rs[i].amount;
        b->ptrs[i] = &b->entries[i];
    }
    b->spec.required_resources = b->ptrs;
    b->spec.n_required_resources = n;
    return &b->spec;
}

static int parse(sched_view *v, const Ray__Rpc__LeaseSpec *spec, lease_class **out, char *err)
{
    return lease__class_parse(v, spec, out, err, 300);
}

static void test_resources_and_accelerator(void)
{
    sched_view *v = sched_view_new(NULL);
    spec_buf b;
    const res rs[] = {{"CPU", 2}, {"GPU", 0.5}, {"accelerator_type:H100", 0.001}, {"fast_disk", 1}, {"zero", 0}};
    lease_class *c;
    char err[300] = "";
    CU_ASSERT_EQUAL_FATAL(parse(v, spec_of(&b, rs, 5), &c, err), 0);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, SCHED_CPU), 2 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, SCHED_GPU), SCHED_UNIT / 2);
    uint32_t accel, disk;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "accelerator_type:H100", &accel), 0);
    CU_ASSERT_EQUAL(c->req.accelerator_id, accel);
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "fast_disk", &disk), 0);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, disk), SCHED_UNIT);
    CU_ASSERT_DOUBLE_EQUAL(c->cpus, 2.0, 1e-9);
    CU_ASSERT_EQUAL(c->n_shape, 4); /* zero amounts are not part of the demand's shape */
    CU_ASSERT_EQUAL(c->opts.strategy, SCHED_STRATEGY_DEFAULT);
    CU_ASSERT_PTR_NULL(c->label_selector);
    lease__class_free(c);
    sched_view_free(v);
}

static void test_keys_are_canonical(void)
{
    spec_buf a, b, d;
    const res r1[] = {{"CPU", 1}, {"GPU", 1}};
    const res r2[] = {{"GPU", 1}, {"CPU", 1}, {"memory", 0}};
    const res r3[] = {{"CPU", 1}, {"GPU", 0.5}};
    rc_buf ka = RC_BUF_INIT, kb = RC_BUF_INIT, kd = RC_BUF_INIT;
    char err[300];
    CU_ASSERT_EQUAL(lease__class_key(spec_of(&a, r1, 2), &ka, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(lease__class_key(spec_of(&b, r2, 3), &kb, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(lease__class_key(spec_of(&d, r3, 2), &kd, err, sizeof(err)), 0);
    CU_ASSERT(ka.len == kb.len && !memcmp(ka.data, kb.data, ka.len)); /* map order does not matter */
    CU_ASSERT(ka.len != kd.len || memcmp(ka.data, kd.data, ka.len));
    /* A strategy makes another class. */
    Ray__Rpc__SpreadSchedulingStrategy spread = RAY__RPC__SPREAD_SCHEDULING_STRATEGY__INIT;
    Ray__Rpc__SchedulingStrategy st = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_SPREAD_SCHEDULING_STRATEGY;
    st.spread_scheduling_strategy = &spread;
    b.spec.scheduling_strategy = &st;
    rc_buf_clear(&kb);
    CU_ASSERT_EQUAL(lease__class_key(&b.spec, &kb, err, sizeof(err)), 0);
    CU_ASSERT(ka.len != kb.len || memcmp(ka.data, kb.data, ka.len));
    rc_buf_free(&ka);
    rc_buf_free(&kb);
    rc_buf_free(&kd);
}

static void test_strategies_and_selectors(void)
{
    sched_view *v = sched_view_new(NULL);
    spec_buf b;
    const res rs[] = {{"CPU", 1}};
    lease_class *c;
    char err[300];
    /* Node affinity. */
    uint8_t node[RC_NODE_ID_SIZE];
    memset(node, 7, sizeof(node));
    Ray__Rpc__NodeAffinitySchedulingStrategy na = RAY__RPC__NODE_AFFINITY_SCHEDULING_STRATEGY__INIT;
    na.node_id.data = node;
    na.node_id.len = sizeof(node);
    na.soft = 1;
    na.spill_on_unavailable = 1;
    Ray__Rpc__SchedulingStrategy st = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_AFFINITY_SCHEDULING_STRATEGY;
    st.node_affinity_scheduling_strategy = &na;
    spec_of(&b, rs, 1)->scheduling_strategy = &st;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(c->opts.strategy, SCHED_STRATEGY_NODE_AFFINITY);
    CU_ASSERT(!memcmp(c->opts.affinity_node, node, sizeof(node)));
    CU_ASSERT(c->opts.affinity_soft && c->opts.spill_on_unavailable && !c->hard_affinity);
    lease__class_free(c);

    /* Node labels: hard and soft expressions of every operator. */
    char *us[] = {"us", "eu"};
    Ray__Rpc__LabelIn in = RAY__RPC__LABEL_IN__INIT;
    in.values = us;
    in.n_values = 2;
    Ray__Rpc__LabelExists ex = RAY__RPC__LABEL_EXISTS__INIT;
    Ray__Rpc__LabelOperator op_in = RAY__RPC__LABEL_OPERATOR__INIT, op_ex = RAY__RPC__LABEL_OPERATOR__INIT;
    op_in.label_operator_case = RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR_LABEL_IN;
    op_in.label_in = &in;
    op_ex.label_operator_case = RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR_LABEL_EXISTS;
    op_ex.label_exists = &ex;
    Ray__Rpc__LabelMatchExpression e1 = RAY__RPC__LABEL_MATCH_EXPRESSION__INIT, e2 = RAY__RPC__LABEL_MATCH_EXPRESSION__INIT;
    e1.key = "region";
    e1.operator_ = &op_in;
    e2.key = "gpu";
    e2.operator_ = &op_ex;
    Ray__Rpc__LabelMatchExpression *hard_list[1] = {&e1}, *soft_list[1] = {&e2};
    Ray__Rpc__LabelMatchExpressions hard = RAY__RPC__LABEL_MATCH_EXPRESSIONS__INIT,
                                    soft = RAY__RPC__LABEL_MATCH_EXPRESSIONS__INIT;
    hard.expressions = hard_list;
    hard.n_expressions = 1;
    soft.expressions = soft_list;
    soft.n_expressions = 1;
    Ray__Rpc__NodeLabelSchedulingStrategy nl = RAY__RPC__NODE_LABEL_SCHEDULING_STRATEGY__INIT;
    nl.hard = &hard;
    nl.soft = &soft;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_LABEL_SCHEDULING_STRATEGY;
    st.node_label_scheduling_strategy = &nl;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(c->opts.strategy, SCHED_STRATEGY_NODE_LABEL);
    char text[160];
    CU_ASSERT_STRING_EQUAL(sched_selector_format(c->label_hard, text, sizeof(text)), "region: in(us,eu)");
    CU_ASSERT_EQUAL(sched_selector_count(c->label_soft), 1);
    lease__class_free(c);

    /* Label selector and rayc extras. */
    b.spec.scheduling_strategy = NULL;
    char *vals[] = {"A100"};
    Ray__Rpc__LabelSelectorConstraint k = RAY__RPC__LABEL_SELECTOR_CONSTRAINT__INIT;
    k.label_key = "ray.io/accelerator-type";
    k.operator_ = RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_NOT_IN;
    k.label_values = vals;
    k.n_label_values = 1;
    Ray__Rpc__LabelSelectorConstraint *ks[1] = {&k};
    Ray__Rpc__LabelSelector sel = RAY__RPC__LABEL_SELECTOR__INIT;
    sel.label_constraints = ks;
    sel.n_label_constraints = 1;
    Rayc__Rpc__SchedulingExtras x = RAYC__RPC__SCHEDULING_EXTRAS__INIT;
    x.cost_strategy = 1;
    x.gpu_memory = 80ull << 30;
    b.spec.label_selector = &sel;
    b.spec.rayc_extras = &x;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(c->opts.strategy, SCHED_STRATEGY_COST);
    CU_ASSERT_EQUAL(c->req.gpu_memory, 80ull << 30);
    CU_ASSERT_PTR_NOT_NULL(c->req.selector);
    CU_ASSERT_STRING_EQUAL(sched_selector_format(c->req.selector, text, sizeof(text)),
                           "ray.io/accelerator-type: !A100");
    CU_ASSERT_PTR_NOT_NULL(c->label_selector); /* kept for the demand report */
    lease__class_free(c);
    sched_view_free(v);
}

static void expect_error(sched_view *v, Ray__Rpc__LeaseSpec *spec, int rc, const char *text)
{
    lease_class *c = NULL;
    char err[300] = "";
    CU_ASSERT_EQUAL(parse(v, spec, &c, err), rc);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, text));
    if (!strstr(err, text))
        fprintf(stderr, "\n    got '%s', wanted '%s'\n", err, text);
}

static void test_malformed(void)
{
    sched_view *v = sched_view_new(NULL);
    spec_buf b;
    expect_error(v, spec_of(&b, (const res[]){{"GPU", 1.5}}, 1), RC_EINVAL, "whole numbers");
    expect_error(v, spec_of(&b, (const res[]){{"CPU", -2}}, 1), RC_EINVAL, "negative");
    expect_error(v, spec_of(&b, (const res[]){{"CPU", NAN}}, 1), RC_EINVAL, "not a finite number");
    expect_error(v, spec_of(&b, (const res[]){{"", 1}}, 1), RC_EINVAL, "is not a resource name");
    expect_error(v, spec_of(&b, (const res[]){{"a\tb", 1}}, 1), RC_EINVAL, "is not a resource name");
    expect_error(v, spec_of(&b, (const res[]){{"accelerator_type:", 0.001}}, 1), RC_EINVAL, "required_resources");
    expect_error(v, spec_of(&b, (const res[]){{"accelerator_type:H100", -1}}, 1), RC_EINVAL, "must be a number >= 0");
    res many[20];
    char names[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof(names[i]), "r%d", i);
        many[i] = (res){names[i], 1};
    }
    expect_error(v, spec_of(&b, many, 17), RC_EINVAL, "required_resources"); /* more than a request holds */

    Ray__Rpc__PlacementGroupSchedulingStrategy pg = RAY__RPC__PLACEMENT_GROUP_SCHEDULING_STRATEGY__INIT;
    Ray__Rpc__SchedulingStrategy st = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY;
    st.placement_group_scheduling_strategy = &pg;
    spec_of(&b, (const res[]){{"CPU", 1}}, 1)->scheduling_strategy = &st;
    expect_error(v, &b.spec, RC_EINVAL, "placement group"); /* no group ID */
    uint8_t pg_id[RC_PG_ID_SIZE] = {1};
    pg.placement_group_id.data = pg_id;
    pg.placement_group_id.len = sizeof(pg_id);
    pg.placement_group_bundle_index = -2;
    expect_error(v, &b.spec, RC_EINVAL, "neither a bundle index nor -1");

    Ray__Rpc__LabelMatchExpression e = RAY__RPC__LABEL_MATCH_EXPRESSION__INIT;
    e.key = "region";
    Ray__Rpc__LabelMatchExpression *list[1] = {&e};
    Ray__Rpc__LabelMatchExpressions hard = RAY__RPC__LABEL_MATCH_EXPRESSIONS__INIT;
    hard.expressions = list;
    hard.n_expressions = 1;
    Ray__Rpc__NodeLabelSchedulingStrategy nl = RAY__RPC__NODE_LABEL_SCHEDULING_STRATEGY__INIT;
    nl.hard = &hard;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_LABEL_SCHEDULING_STRATEGY;
    st.node_label_scheduling_strategy = &nl;
    expect_error(v, &b.spec, RC_EINVAL, "has no operator");
    Ray__Rpc__LabelIn empty_in = RAY__RPC__LABEL_IN__INIT;
    Ray__Rpc__LabelOperator op = RAY__RPC__LABEL_OPERATOR__INIT;
    op.label_operator_case = RAY__RPC__LABEL_OPERATOR__LABEL_OPERATOR_LABEL_IN;
    op.label_in = &empty_in;
    e.operator_ = &op;
    expect_error(v, &b.spec, RC_EINVAL, "node_label_scheduling_strategy.hard");

    b.spec.scheduling_strategy = NULL;
    Rayc__Rpc__SchedulingExtras x = RAYC__RPC__SCHEDULING_EXTRAS__INIT;
    x.cost_weight = -1;
    b.spec.rayc_extras = &x;
    expect_error(v, &b.spec, RC_EINVAL, "cost_weight");
    sched_view_free(v);
}

static void test_gpu_env_and_keys(void)
{
    char buf[64];
    CU_ASSERT_STRING_EQUAL(worker_pool_gpu_env(0, NULL, buf, sizeof(buf)), "");
    CU_ASSERT_STRING_EQUAL(worker_pool_gpu_env(0x5, NULL, buf, sizeof(buf)), "0,2");
    CU_ASSERT_STRING_EQUAL(worker_pool_gpu_env(0x80000000u, "", buf, sizeof(buf)), "31");
    /* The raylet's own CUDA_VISIBLE_DEVICES maps instances to devices, as in Ray. */
    CU_ASSERT_STRING_EQUAL(worker_pool_gpu_env(0x3, "4,6,7", buf, sizeof(buf)), "4,6");
    CU_ASSERT_STRING_EQUAL(worker_pool_gpu_env(0x4, "GPU-aa,GPU-bb,GPU-cc", buf, sizeof(buf)), "GPU-cc");
    CU_ASSERT_STRING_EQUAL(worker_pool_gpu_env(0x6, "5", buf, sizeof(buf)), "1,2"); /* beyond the list: as is */
    worker_key k;
    const uint8_t job[RC_JOB_ID_SIZE] = {0, 0, 0, 1};
    worker_key_init(&k, job, RAY__RPC__LANGUAGE__CPP, 0, 0);
    CU_ASSERT_EQUAL(k.omp_threads, 1);
    worker_key_init(&k, job, RAY__RPC__LANGUAGE__CPP, 0, 0.5);
    CU_ASSERT_EQUAL(k.omp_threads, 1);
    worker_key_init(&k, job, RAY__RPC__LANGUAGE__CPP, 0, 2);
    CU_ASSERT_EQUAL(k.omp_threads, 2);
    worker_key_init(&k, job, RAY__RPC__LANGUAGE__CPP, 0, 2.5);
    CU_ASSERT_EQUAL(k.omp_threads, 3);
    CU_ASSERT_EQUAL(k.language, RAY__RPC__LANGUAGE__CPP);
    worker_key_init(&k, job, RAY__RPC__LANGUAGE__PYTHON, 0, 1);
    CU_ASSERT_EQUAL(k.language, RAY__RPC__LANGUAGE__PYTHON);
    CU_ASSERT(worker_language_supported(RAY__RPC__LANGUAGE__PYTHON));
    CU_ASSERT(worker_language_supported(RAY__RPC__LANGUAGE__CPP));
    CU_ASSERT(!worker_language_supported(RAY__RPC__LANGUAGE__JAVA));
}


/* The amount of name in r (-1 if the view never heard of it). */
static double amount_of(sched_view *v, const sched_request *r, const char *name)
{
    uint32_t id;
    if (sched_view_resource_id(v, name, &id) < 0)
        return -1;
    return (double)sched_request_get(r, id) / (double)SCHED_UNIT;
}

static void test_bundle_names(void)
{
    uint8_t pg[RC_PG_ID_SIZE];
    for (int i = 0; i < RC_PG_ID_SIZE; i++)
        pg[i] = (uint8_t)(0xa0 + i);
    char hex[RC_ID_HEX_MAX], name[400], want[400];
    rc_id_hex(pg, sizeof(pg), hex);
    snprintf(want, sizeof(want), "CPU_group_3_%s", hex);
    CU_ASSERT_STRING_EQUAL(sched_bundle_name_format("CPU", pg, 3, name, sizeof(name)), want);
    snprintf(want, sizeof(want), "GPU_group_%s", hex);
    CU_ASSERT_STRING_EQUAL(sched_bundle_name_format("GPU", pg, -1, name, sizeof(name)), want);

    sched_bundle_name bn;
    snprintf(name, sizeof(name), "CPU_group_12_%s", hex);
    CU_ASSERT_EQUAL_FATAL(sched_bundle_name_parse(name, &bn), 0);
    CU_ASSERT_STRING_EQUAL(bn.base, "CPU");
    CU_ASSERT_EQUAL(bn.index, 12);
    CU_ASSERT(!memcmp(bn.pg_id, pg, sizeof(pg)));
    snprintf(name, sizeof(name), "my_res_group_%s", hex);
    CU_ASSERT_EQUAL_FATAL(sched_bundle_name_parse(name, &bn), 0);
    CU_ASSERT_STRING_EQUAL(bn.base, "my_res");
    CU_ASSERT_EQUAL(bn.index, -1);
    /* A base that itself ends in digits after "_group_" stays the base of a wildcard. */
    snprintf(name, sizeof(name), "bundle_group_0_group_%s", hex);
    CU_ASSERT_EQUAL_FATAL(sched_bundle_name_parse(name, &bn), 0);
    CU_ASSERT_STRING_EQUAL(bn.base, "bundle_group_0");
    CU_ASSERT_EQUAL(bn.index, -1);
    /* Not bundle names. */
    const char *bad[] = {"CPU", "GPU_group_", "CPU_group_1_", "node:127.0.0.1", "CPU_grp_1_a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(sched_bundle_name_parse(bad[i], &bn), RC_EINVAL);
    snprintf(name, sizeof(name), "CPU_group_x1_%s", hex);
    CU_ASSERT_EQUAL(sched_bundle_name_parse(name, &bn), RC_EINVAL);
    snprintf(name, sizeof(name), "CPU_group_1_%.34szz", hex);
    CU_ASSERT_EQUAL(sched_bundle_name_parse(name, &bn), RC_EINVAL);
}

static void test_placement_group_leases(void)
{
    sched_view *v = sched_view_new(NULL);
    uint8_t pg_id[RC_PG_ID_SIZE];
    memset(pg_id, 0x5c, sizeof(pg_id));
    char names[6][400];
    sched_bundle_name_format("CPU", pg_id, 2, names[0], sizeof(names[0]));
    sched_bundle_name_format("CPU", pg_id, -1, names[1], sizeof(names[1]));
    sched_bundle_name_format("GPU", pg_id, 2, names[2], sizeof(names[2]));
    sched_bundle_name_format("GPU", pg_id, -1, names[3], sizeof(names[3]));
    sched_bundle_name_format(BUNDLE_LABEL_RESOURCE, pg_id, 2, names[4], sizeof(names[4]));
    sched_bundle_name_format(BUNDLE_LABEL_RESOURCE, pg_id, -1, names[5], sizeof(names[5]));
    Ray__Rpc__PlacementGroupSchedulingStrategy pg = RAY__RPC__PLACEMENT_GROUP_SCHEDULING_STRATEGY__INIT;
    pg.placement_group_id.data = pg_id;
    pg.placement_group_id.len = sizeof(pg_id);
    pg.placement_group_bundle_index = 2;
    Ray__Rpc__SchedulingStrategy st = RAY__RPC__SCHEDULING_STRATEGY__INIT;
    st.scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY;
    st.placement_group_scheduling_strategy = &pg;
    spec_buf b;
    lease_class *c;
    char err[300] = "";

    /* Plain names are renamed as Ray's owners do: both names for bundle 2, plus the label. */
    spec_of(&b, (const res[]){{"CPU", 2}, {"GPU", 1}}, 2)->scheduling_strategy = &st;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, SCHED_CPU), 0);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, SCHED_GPU), 0);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[0]), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[1]), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[2]), 1, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[3]), 1, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[4]), BUNDLE_LABEL_REQUEST, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[5]), BUNDLE_LABEL_REQUEST, 1e-9);
    CU_ASSERT_EQUAL(c->req.n, 6);
    CU_ASSERT_EQUAL(c->n_shape, 6); /* the demand is what is scheduled */
    CU_ASSERT(c->hold_bundles && c->has_pg && c->pg_index == 2);
    CU_ASSERT_DOUBLE_EQUAL(c->cpus, 2, 1e-9); /* bundle CPUs count for OMP_NUM_THREADS */
    CU_ASSERT_EQUAL(c->opts.strategy, SCHED_STRATEGY_DEFAULT);
    lease__class_free(c);

    /* Names already renamed by the owner stay as they are; nothing at all gets the label. */
    pg.placement_group_bundle_index = -1;
    spec_of(&b, (const res[]){{names[1], 1}}, 1)->scheduling_strategy = &st;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(c->req.n, 2);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[1]), 1, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->req, names[5]), BUNDLE_LABEL_REQUEST, 1e-9);
    lease__class_free(c);
    spec_of(&b, NULL, 0)->scheduling_strategy = &st;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(c->req.n, 1);
    CU_ASSERT_DOUBLE_EQUAL(amount_of(v, &c->hold, names[5]), BUNDLE_LABEL_REQUEST, 1e-9);
    CU_ASSERT(c->hold_bundles);
    lease__class_free(c);

    /* Without a placement group, bundle names are ordinary names (held through bundles). */
    spec_of(&b, (const res[]){{names[0], 1}, {names[1], 1}}, 2);
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT(c->hold_bundles && !c->has_pg);
    CU_ASSERT_EQUAL(c->req.n, 2);
    lease__class_free(c);
    sched_view_free(v);
}

static void test_actor_creation(void)
{
    sched_view *v = sched_view_new(NULL);
    spec_buf b;
    lease_class *c;
    char err[300] = "";
    /* Ray's default actor: placed where a CPU is free, holds nothing. */
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry place = RAY__RPC__LEASE_SPEC__REQUIRED_RESOURCES_ENTRY__INIT;
    place.key = "CPU";
    place.value = 1;
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry *places[1] = {&place};
    spec_of(&b, NULL, 0);
    b.spec.type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    b.spec.required_placement_resources = (Ray__Rpc__LeaseSpec__RequiredPlacementResourcesEntry **)places;
    b.spec.n_required_placement_resources = 1;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT(c->actor);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, SCHED_CPU), SCHED_UNIT);
    CU_ASSERT_EQUAL(c->hold.n, 0);
    CU_ASSERT_EQUAL(c->n_shape, 1);
    CU_ASSERT_DOUBLE_EQUAL(c->cpus, 0, 1e-9);
    lease__class_free(c);
    /* An actor asking for a GPU holds it and is placed by its placement resources. */
    spec_of(&b, (const res[]){{"GPU", 1}}, 1);
    b.spec.type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    b.spec.required_placement_resources = (Ray__Rpc__LeaseSpec__RequiredPlacementResourcesEntry **)places;
    b.spec.n_required_placement_resources = 1;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(sched_request_get(&c->hold, SCHED_GPU), SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, SCHED_GPU), 0);
    lease__class_free(c);
    /* Without placement resources an actor is placed by what it holds. */
    b.spec.n_required_placement_resources = 0;
    CU_ASSERT_EQUAL_FATAL(parse(v, &b.spec, &c, err), 0);
    CU_ASSERT_EQUAL(sched_request_get(&c->req, SCHED_GPU), SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_request_get(&c->hold, SCHED_GPU), SCHED_UNIT);
    lease__class_free(c);
    /* Placement resources are validated like the others. */
    place.value = -1;
    b.spec.n_required_placement_resources = 1;
    CU_ASSERT_EQUAL(parse(v, &b.spec, &c, err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "required_placement_resources"));
    place.value = 1;

    /* Type and placement resources are part of the class. */
    spec_buf t;
    rc_buf ka = RC_BUF_INIT, kb = RC_BUF_INIT;
    spec_of(&t, (const res[]){{"GPU", 1}}, 1);
    CU_ASSERT_EQUAL(lease__class_key(&t.spec, &ka, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(lease__class_key(&b.spec, &kb, err, sizeof(err)), 0);
    CU_ASSERT(ka.len != kb.len || memcmp(ka.data, kb.data, ka.len));
    rc_buf_free(&ka);
    rc_buf_free(&kb);
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_resources_and_accelerator), UNIT_CASE(test_keys_are_canonical),
    UNIT_CASE(test_strategies_and_selectors),  UNIT_CASE(test_malformed),
    UNIT_CASE(test_gpu_env_and_keys),          UNIT_CASE(test_bundle_names),
    UNIT_CASE(test_placement_group_leases),    UNIT_CASE(test_actor_creation),
};

int main(void)
{
    return unit_run("lease_class", cases, UNIT_N(cases));
}
