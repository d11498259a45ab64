/* sched_label.c: Ray's label selector syntax, expressions, matching, messages. */
#include <string.h>

#include "rc_err.h"
#include "sched_test.h"

static void expect_parse_error(const char *text, const char *needle)
{
    sched_selector *s = (sched_selector *)0x1;
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_selector_parse(text, &s, &err), RC_EINVAL);
    CU_ASSERT_PTR_EQUAL(s, (sched_selector *)0x1); /* nothing stored */
    if (!strstr(err.msg, needle))
        fprintf(stderr, "parse '%s': message '%s' lacks '%s'\n", text, err.msg, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
}

static void roundtrip(const char *text, const char *want)
{
    sched_selector *s = NULL;
    sched_err err = {""};
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse(text, &s, &err), 0);
    char buf[256];
    CU_ASSERT_STRING_EQUAL(sched_selector_format(s, buf, sizeof(buf)), want);
    sched_selector_free(s);
}

static void test_parse_forms(void)
{
    roundtrip("region: us-west", "region: us-west");
    roundtrip("  region :  !us-west ", "region: !us-west");
    roundtrip("region: in(us-west, us-east)", "region: in(us-west,us-east)");
    roundtrip("region: !in(a,b,c), ray.io/accelerator-type: H100",
              "region: !in(a,b,c), ray.io/accelerator-type: H100");
    roundtrip("zone: in(z1)", "zone: z1");
    roundtrip("gpu: exists(), spot: !exists()", "gpu: exists(), spot: !exists()");
    roundtrip("", "");
    sched_selector *s = NULL;
    CU_ASSERT_EQUAL(sched_selector_parse("a: b, c: in(d,e)", &s, NULL), 0);
    CU_ASSERT_EQUAL(sched_selector_count(s), 2);
    sched_selector_free(s);
}

static void test_parse_errors(void)
{
    expect_parse_error("region: in(us, eu", "missing its closing ')'");
    expect_parse_error("region: in()", "needs at least one value");
    expect_parse_error("region: in(a,,b)", "empty value in list");
    expect_parse_error("region", "needs the form key: value");
    expect_parse_error("region: ", "empty value expression");
    expect_parse_error("region: !", "empty value expression");
    expect_parse_error("a: b,", "empty entry");
    expect_parse_error("bad key!: x", "invalid label key 'bad key!'");
    expect_parse_error("Region.Example/zone: x", "prefix before '/'");
    expect_parse_error("zone: us west", "invalid value 'us west' for label 'zone'");
    expect_parse_error("zone: -abc", "invalid value '-abc'");
    expect_parse_error("zone: foo(bar)", "can't parse 'foo(bar)'");
    expect_parse_error("zone: exists(x)", "takes no values");
    expect_parse_error("k: in(a(b))", "unexpected parenthesis");
}

static void test_add_dict_entries_and_expressions(void)
{
    sched_selector *s = sched_selector_new();
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_selector_add(s, "region", "in(us,eu)", &err), 0);
    CU_ASSERT_EQUAL(sched_selector_add(s, "", "x", &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "must not be empty"));
    CU_ASSERT_EQUAL(sched_selector_add(s, "region", NULL, &err), RC_EINVAL);
    const char *vals[] = {"a", "b"};
    CU_ASSERT_EQUAL(sched_selector_add_expr(s, "k", SCHED_LABEL_IN, vals, 0, &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "In needs at least one value"));
    CU_ASSERT_EQUAL(sched_selector_add_expr(s, "k", SCHED_LABEL_NOT_IN, vals, 0, &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NotIn needs at least one value"));
    CU_ASSERT_EQUAL(sched_selector_add_expr(s, "k", SCHED_LABEL_EXISTS, vals, 2, &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Exists takes no values"));
    CU_ASSERT_EQUAL(sched_selector_add_expr(s, "k", SCHED_LABEL_DOES_NOT_EXIST, vals, 1, &err),
                    RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "DoesNotExist takes no values"));
    CU_ASSERT_EQUAL(sched_selector_add_expr(s, "k", (sched_label_op)42, NULL, 0, &err), RC_EINVAL);
    CU_ASSERT_EQUAL(sched_selector_add_expr(s, "k", SCHED_LABEL_NOT_IN, vals, 2, &err), 0);
    CU_ASSERT_EQUAL(sched_selector_count(s), 2);
    char long_name[80];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    CU_ASSERT_EQUAL(sched_selector_add(s, long_name, "x", &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "63 characters"));
    sched_selector_free(s);
}

static void test_matching(void)
{
    sched_view *v = sched_view_new(NULL);
    const sched_label l1[] = {{"region", "us"}, {"zone", "us-1a"}};
    const sched_label l2[] = {{"region", "eu"}};
    sched_node *a = tadd(v, 1, TNODE(.cpus = 1, .labels = l1, .n_labels = 2));
    sched_node *b = tadd(v, 2, TNODE(.cpus = 1, .labels = l2, .n_labels = 1));
    sched_node *c = tadd(v, 3, TNODE(.cpus = 1));
    struct {
        const char *sel;
        int a, b, c;
    } cases[] = {
        {"region: us", 1, 0, 0},
        {"region: !us", 0, 1, 1}, /* NotIn matches nodes without the key, as in Ray */
        {"region: in(us,eu)", 1, 1, 0},
        {"region: !in(us,eu)", 0, 0, 1},
        {"zone: exists()", 1, 0, 0},
        {"zone: !exists()", 0, 1, 1},
        {"region: us, zone: us-1b", 0, 0, 0},
        {"region: in(us,eu), zone: !us-1a", 0, 1, 0},
        {"", 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sched_selector *s = NULL;
        CU_ASSERT_EQUAL_FATAL(sched_selector_parse(cases[i].sel, &s, NULL), 0);
        CU_ASSERT_EQUAL(sched_selector_matches(s, a), cases[i].a);
        CU_ASSERT_EQUAL(sched_selector_matches(s, b), cases[i].b);
        CU_ASSERT_EQUAL(sched_selector_matches(s, c), cases[i].c);
        sched_selector_free(s);
    }
    CU_ASSERT_EQUAL(sched_selector_matches(NULL, c), 1);
    sched_view_free(v);
}

/* A request's label_selector is a hard constraint for every policy. */
static void test_request_selector_filters_default_policy(void)
{
    sched_view *v = sched_view_new(NULL);
    const sched_label us[] = {{"region", "us"}};
    const sched_label eu[] = {{"region", "eu"}};
    for (uint32_t i = 0; i < 20; i++)
        tadd(v, i, TNODE(.cpus = 8, .labels = i % 4 ? us : eu, .n_labels = 1));
    sched_selector *s = NULL;
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse("region: eu", &s, NULL), 0);
    sched_request r = treq(v, 1, 0);
    r.selector = s;
    sched_rng rng;
    sched_rng_seed(&rng, 3);
    for (int k = 0; k < 200; k++) {
        sched_decision d;
        CU_ASSERT_EQUAL_FATAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_OK);
        CU_ASSERT_STRING_EQUAL(sched_node_label(d.node, "region"), "eu");
    }
    sched_selector_free(s);
    CU_ASSERT_EQUAL_FATAL(sched_selector_parse("region: ap", &s, NULL), 0);
    r.selector = s;
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_NEVER);
    CU_ASSERT_STRING_EQUAL(d.why, "no node matches label selector region: ap");
    sched_selector_free(s);
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_parse_forms),
    UNIT_CASE(test_parse_errors),
    UNIT_CASE(test_add_dict_entries_and_expressions),
    UNIT_CASE(test_matching),
    UNIT_CASE(test_request_selector_filters_default_policy),
};

int main(void)
{
    return unit_run("sched_label", cases, UNIT_N(cases));
}
