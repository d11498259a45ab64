/* Errors table, IDs, buffers and configuration. */
#include <stdlib.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "unit.h"

static void test_errors(void)
{
    CU_ASSERT(RC_EINVAL < 0);
    CU_ASSERT(RC_EPARSE < RC_EINVAL);
    CU_ASSERT_STRING_EQUAL(rc_strerror(RC_ETIMEDOUT), "timed out");
    CU_ASSERT_STRING_EQUAL(rc_errname(RC_ENOENT), "RC_ENOENT");
    CU_ASSERT_STRING_EQUAL(rc_strerror(0), "success");
    CU_ASSERT_STRING_EQUAL(rc_strerror(-9999), "unknown error");
    /* The public names are the same codes. */
    CU_ASSERT_EQUAL(RAYC_ETIMEDOUT, RC_ETIMEDOUT);
    CU_ASSERT_STRING_EQUAL(rayc_strerror(RAYC_EAUTH), "not authorized");
    CU_ASSERT_STRING_EQUAL(rayc_err_name(RC_EBUDGET), "RAYC_EBUDGET");
}

static void test_ids(void)
{
    unsigned char a[RC_NODE_ID_SIZE], b[RC_NODE_ID_SIZE];
    char hex[RC_ID_HEX_MAX];
    rc_id_random(a, sizeof(a));
    rc_id_hex(a, sizeof(a), hex);
    CU_ASSERT_EQUAL(strlen(hex), 56);
    CU_ASSERT_EQUAL(rc_id_from_hex(hex, b, sizeof(b)), 0);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
    CU_ASSERT_EQUAL(rc_id_from_hex("abc", b, sizeof(b)), RC_EINVAL);
    hex[3] = 'z';
    CU_ASSERT_EQUAL(rc_id_from_hex(hex, b, sizeof(b)), RC_EINVAL);
    memset(b, 0, sizeof(b));
    CU_ASSERT(rc_id_is_zero(b, sizeof(b)));
}

static void test_buf(void)
{
    rc_buf b = RC_BUF_INIT;
    CU_ASSERT_STRING_EQUAL(rc_buf_cstr(&b), "");
    for (int i = 0; i < 1000; i++)
        rc_buf_printf(&b, "%d,", i);
    CU_ASSERT(strncmp(rc_buf_cstr(&b), "0,1,2,", 6) == 0);
    CU_ASSERT_EQUAL(b.len, strlen(b.data));
    rc_buf_clear(&b);
    rc_buf_json_str(&b, "a\"\n\x01", 4);
    CU_ASSERT_STRING_EQUAL(rc_buf_cstr(&b), "\"a\\\"\\n\\u0001\"");
    rc_buf_clear(&b);
    rc_buf_hex(&b, "\x01\xab", 2);
    CU_ASSERT_STRING_EQUAL(rc_buf_cstr(&b), "01ab");
    char *s = rc_buf_detach(&b);
    CU_ASSERT_STRING_EQUAL(s, "01ab");
    rc_free(s);
    CU_ASSERT_PTR_NULL(b.data);
    rc_buf_free(&b);
}

static void test_config(void)
{
    setenv("RAYC_health_check_period_ms", "250", 1);
    setenv("RAYC_health_check_timeout_ms", "bogus", 1);
    rc_config_init();
    CU_ASSERT_EQUAL(rc_cfg.health_check_period_ms, 250);
    CU_ASSERT_EQUAL(rc_cfg.health_check_timeout_ms, 10000); /* bad value ignored */
    CU_ASSERT_STRING_EQUAL(rc_cfg.external_storage_namespace, "default");
    CU_ASSERT_EQUAL(rc_config_set("nope", "1"), RC_ENOENT);
    CU_ASSERT_EQUAL(rc_config_set("health_check_failure_threshold", "x"), RC_EINVAL);

    rc_buf json = RC_BUF_INIT;
    rc_config_to_json(&json);
    CU_ASSERT_PTR_NOT_NULL(strstr(rc_buf_cstr(&json), "\"health_check_period_ms\":250"));
    rc_buf_free(&json);

    /* Values from the GCS apply, except where this process's environment decides. */
    const char *from_gcs = "{\"health_check_period_ms\": 9, \"health_check_failure_threshold\": 2,"
                           " \"external_storage_namespace\": \"ns1\", \"unknown_key\": 1}";
    CU_ASSERT_EQUAL(rc_config_apply_json(from_gcs, strlen(from_gcs)), 0);
    CU_ASSERT_EQUAL(rc_cfg.health_check_period_ms, 250);
    CU_ASSERT_EQUAL(rc_cfg.health_check_failure_threshold, 2);
    CU_ASSERT_STRING_EQUAL(rc_cfg.external_storage_namespace, "ns1");
    CU_ASSERT_EQUAL(rc_config_apply_json("[1]", 3), RC_EPARSE);
    unsetenv("RAYC_health_check_period_ms");
    unsetenv("RAYC_health_check_timeout_ms");
}

static const unit_case cases[] = {
    UNIT_CASE(test_errors),
    UNIT_CASE(test_ids),
    UNIT_CASE(test_buf),
    UNIT_CASE(test_config),
};

int main(void)
{
    return unit_run("rc_misc", cases, UNIT_N(cases));
}
