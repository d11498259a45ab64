/* rc_json: valid documents, every class of malformed input, and error positions. */
#include <string.h>

#include "rc_err.h"
#include "rc_json.h"
#include "unit.h"

static rc_json *parse_ok(const char *s)
{
    rc_json *v = NULL;
    char err[200] = "";
    int rc = rc_json_parse(s, strlen(s), &v, err, sizeof(err));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return v;
}

static void expect_error(const char *s, const char *fragment)
{
    rc_json *v = (rc_json *)1;
    char err[200] = "";
    CU_ASSERT_EQUAL(rc_json_parse(s, strlen(s), &v, err, sizeof(err)), RC_EPARSE);
    CU_ASSERT_PTR_NULL(v);
    if (!strstr(err, fragment))
        fprintf(stderr, "input %s: error '%s' lacks '%s'\n", s, err, fragment);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, fragment));
}

static void test_object(void)
{
    rc_json *v = parse_ok(" {\"fast_disk\": 1, \"A100\" : 0.5, \"s\":\"a\\\"b\\u00e9\\ud83d\\ude00\","
                          " \"l\": [true, false, null, -1e3], \"o\": {}} ");
    CU_ASSERT_EQUAL(v->type, RC_JSON_OBJECT);
    CU_ASSERT_EQUAL(v->n_items, 5);
    CU_ASSERT_EQUAL(rc_json_get(v, "fast_disk")->number, 1.0);
    CU_ASSERT_EQUAL(rc_json_get(v, "A100")->number, 0.5);
    const rc_json *s = rc_json_get(v, "s");
    CU_ASSERT_STRING_EQUAL(s->str, "a\"b\xc3\xa9\xf0\x9f\x98\x80");
    const rc_json *l = rc_json_get(v, "l");
    CU_ASSERT_EQUAL(l->n_items, 4);
    CU_ASSERT_EQUAL(l->items[0].boolean, 1);
    CU_ASSERT_EQUAL(l->items[2].type, RC_JSON_NULL);
    CU_ASSERT_EQUAL(l->items[3].number, -1000.0);
    CU_ASSERT_EQUAL(rc_json_get(v, "o")->type, RC_JSON_OBJECT);
    CU_ASSERT_PTR_NULL(rc_json_get(v, "missing"));
    rc_json_free(v);
}

static void test_errors(void)
{
    expect_error("", "expected a value");
    expect_error("{\"a\": 1,}", "trailing comma");
    expect_error("{\"a\" 1}", "expected ':'");
    expect_error("{a: 1}", "expected a string key");
    expect_error("{\"a\": 1", "expected ',' or '}'");
    expect_error("[1 2]", "expected ',' or ']'");
    expect_error("\"abc", "unterminated string");
    expect_error("\"a\\qb\"", "unknown escape");
    expect_error("\"\\ud800\"", "unpaired surrogate");
    expect_error("01", "unexpected text");
    expect_error("1.", "expected a digit after '.'");
    expect_error("1e", "expected a digit in exponent");
    expect_error("1e999", "out of range");
    expect_error("tru", "expected a value");
    expect_error("{} {}", "unexpected text");
    expect_error("\"a\nb\"", "control character");
}

static void test_depth_limit(void)
{
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    rc_json *v;
    CU_ASSERT_EQUAL(rc_json_parse(deep, sizeof(deep), &v, NULL, 0), RC_EPARSE);
    v = parse_ok("[[[[[[[[[[1]]]]]]]]]]");
    rc_json_free(v);
}

static void test_error_offset(void)
{
    rc_json *v;
    char err[200];
    const char *s = "{\"GPU\": 1, \"x\": oops}";
    CU_ASSERT_EQUAL(rc_json_parse(s, strlen(s), &v, err, sizeof(err)), RC_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "offset 16"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "oops"));
}

static const unit_case cases[] = {
    UNIT_CASE(test_object),
    UNIT_CASE(test_errors),
    UNIT_CASE(test_depth_limit),
    UNIT_CASE(test_error_offset),
};

int main(void)
{
    return unit_run("rc_json", cases, UNIT_N(cases));
}
