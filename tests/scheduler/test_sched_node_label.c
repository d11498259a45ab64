/* sched_node_label.c: Ray's NodeLabelSchedulingStrategy, hard and soft expressions. */
#include <string.h>

#include "sched_test.h"

typedef struct fixture {
    sched_view *v;
    sched_selector *hard, *soft;
    sched_options o;
    sched_rng rng;
} fixture;

/* Nodes 0..11: region us (0-5) / eu (6-11); even nodes are spot instances. */
static void setup(fixture *f, const char *hard, const char *soft)
{
    f->v = sched_view_new(NULL);
    for (uint32_t i = 0; i < 12; i++) {
        sched_label l[2] = {{"region", i < 6 ? "us" : "eu"}, {"spot", "true"}};
        tadd(f->v, i, TNODE(.cpus = 4, .labels = l, .n_labels = i % 2 ? 1 : 2));
    }
    f->hard = f->soft = NULL;
    if (hard)
        CU_ASSERT_EQUAL_FATAL(sched_selector_parse(hard, &f->hard, NULL), 0);
    if (soft)
        CU_ASSERT_EQUAL_FATAL(sched_selector_parse(soft, &f->soft, NULL), 0);
    sched_options_init(&f->o);
    f->o.strategy = SCHED_STRATEGY_NODE_LABEL;
    f->o.label_hard = f->hard;
    f->o.label_soft = f->soft;
    sched_rng_seed(&f->rng, 21);
}

static void teardown(fixture *f)
{
    sched_selector_free(f->hard);
    sched_selector_free(f->soft);
    sched_view_free(f->v);
}

static void test_hard_must_match(void)
{
    fixture f;
    setup(&f, "region: in(eu)", NULL);
    sched_request r = treq(f.v, 1, 0);
    for (int i = 0; i < 100; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(f.v, &r, &f.o, &f.rng, &d), SCHED_OK);
        CU_ASSERT(tnum(d.node) >= 6);
    }
    teardown(&f);
    setup(&f, "spot: !exists(), region: !in(eu)", NULL); /* DoesNotExist and NotIn */
    for (int i = 0; i < 100; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(f.v, &r, &f.o, &f.rng, &d), SCHED_OK);
        CU_ASSERT(tnum(d.node) < 6 && tnum(d.node) % 2 == 1);
    }
    teardown(&f);
}

static void test_soft_is_a_preference(void)
{
    fixture f;
    setup(&f, "region: us", "spot: !exists()");
    sched_request r = treq(f.v, 4, 0);
    int on_demand = 0;
    sched_alloc a;
    /* Three on-demand us nodes (1, 3, 5) are preferred; then the spot ones (0, 2, 4). */
    for (int i = 0; i < 6; i++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(f.v, &r, &f.o, &f.rng, &d), SCHED_OK);
        uint32_t n = tnum(d.node);
        CU_ASSERT(n < 6);
        if (i < 3)
            CU_ASSERT_EQUAL(n % 2, 1);
        on_demand += n % 2;
        CU_ASSERT_EQUAL_FATAL(sched_node_allocate(f.v, d.node, &r, &a), 0);
    }
    CU_ASSERT_EQUAL(on_demand, 3);
    /* All full: queue on a hard+soft match (not now). */
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(f.v, &r, &f.o, &f.rng, &d), SCHED_NOT_NOW);
    CU_ASSERT_PTR_NOT_NULL(d.node);
    CU_ASSERT_EQUAL(tnum(d.node) % 2, 1);
    CU_ASSERT(tnum(d.node) < 6);
    teardown(&f);
}

static void test_never_names_the_expressions(void)
{
    fixture f;
    setup(&f, "region: ap", NULL);
    sched_request r = treq(f.v, 1, 0);
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(f.v, &r, &f.o, &f.rng, &d), SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "no node matches label expressions region: ap");
    teardown(&f);
    setup(&f, "region: eu", NULL);
    sched_request big = treq(f.v, 8, 0);
    CU_ASSERT_EQUAL(sched_schedule(f.v, &big, &f.o, &f.rng, &d), SCHED_NEVER);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "no node matching region: eu has 8 CPU; largest: 4 CPU"));
    /* Neither hard nor soft given: invalid options. */
    f.o.label_hard = NULL;
    CU_ASSERT_EQUAL(sched_schedule(f.v, &r, &f.o, &f.rng, &d), SCHED_INVALID);
    teardown(&f);
}

static const unit_case cases[] = {
    UNIT_CASE(test_hard_must_match),
    UNIT_CASE(test_soft_is_a_preference),
    UNIT_CASE(test_never_names_the_expressions),
};

int main(void)
{
    return unit_run("sched_node_label", cases, UNIT_N(cases));
}
