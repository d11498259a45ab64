/*
 * Unit tests of market_config.c and market_offers.c: every field of the config and
 * offers files, defaults, and bad input answered with a negative code and a sentence naming
 * the offer or field (unknown keys, duplicates, wrong types and ranges, and every truncation
 * of a valid file).
 */
#include <string.h>

#include "market.h"
#include "rc_err.h"
#include "unit.h"

static const char full_config[] =
    "{\"budget_per_hour\": 3.0, \"budget_total\": 100.0, \"idle_timeout_s\": 90, \"max_hosts\": 12,"
    " \"classes\": [{\"class\": \"A100x8\", \"min_hosts\": 1, \"max_hosts\": 2}, {\"class\": \"H100\"}],"
    " \"verification\": {\"enabled\": false, \"matrix_n\": 512, \"n_per_gib\": 4, \"spot_checks\": 16,"
    "   \"time_limit_s\": 2.5, \"recheck_interval_s\": 0},"
    " \"failure\": {\"half_life_s\": 300, \"retry_below\": 0.5, \"penalty\": 2},"
    " \"timeouts\": {\"launch_s\": 30, \"register_s\": 45}, \"round_interval_ms\": 250,"
    " \"providers\": [{\"name\": \"lab\", \"type\": \"local\", \"offers\": \"offers.json\"},"
    "   {\"name\": \"own\", \"type\": \"ssh\", \"offers\": \"own.json\", \"user\": \"ray\", \"key\": \"/k\","
    "    \"ssh_options\": \"-p 2222\", \"hosts\": [\"10.0.0.1\", \"10.0.0.2\"]}]}";

static void test_config_full(void)
{
    mk_config c;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(mk_config_parse(full_config, strlen(full_config), &c, err, sizeof(err)), 0);
    CU_ASSERT_DOUBLE_EQUAL(c.budget_per_hour, 3.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.budget_total, 100.0, 0);
    CU_ASSERT_EQUAL(c.idle_timeout_s, 90);
    CU_ASSERT_EQUAL(c.max_hosts, 12);
    CU_ASSERT_EQUAL_FATAL(c.n_limits, 2);
    CU_ASSERT_STRING_EQUAL(c.limits[0].offer_class, "A100x8");
    CU_ASSERT_EQUAL(c.limits[0].min_hosts, 1);
    CU_ASSERT_EQUAL(c.limits[0].max_hosts, 2);
    CU_ASSERT_EQUAL(c.limits[1].min_hosts, 0);
    CU_ASSERT_EQUAL(c.limits[1].max_hosts, -1);
    CU_ASSERT_EQUAL(c.verify, 0);
    CU_ASSERT_EQUAL(c.verify_n, 512);
    CU_ASSERT_EQUAL(c.verify_n_per_gib, 4);
    CU_ASSERT_EQUAL(c.verify_spot_checks, 16);
    CU_ASSERT_DOUBLE_EQUAL(c.verify_time_limit_s, 2.5, 0);
    CU_ASSERT_EQUAL(c.recheck_interval_s, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.failure_half_life_s, 300, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.failure_retry_below, 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.failure_penalty, 2, 0);
    CU_ASSERT_EQUAL(c.launch_timeout_s, 30);
    CU_ASSERT_EQUAL(c.register_timeout_s, 45);
    CU_ASSERT_EQUAL(c.round_interval_ms, 250);
    CU_ASSERT_EQUAL_FATAL(c.n_providers, 2);
    CU_ASSERT_STRING_EQUAL(c.providers[0].name, "lab");
    CU_ASSERT_STRING_EQUAL(c.providers[0].type, "local");
    CU_ASSERT_STRING_EQUAL(c.providers[0].offers, "offers.json");
    CU_ASSERT_STRING_EQUAL(c.providers[1].type, "ssh");
    CU_ASSERT_STRING_EQUAL(c.providers[1].ssh_user, "ray");
    CU_ASSERT_STRING_EQUAL(c.providers[1].ssh_key, "/k");
    CU_ASSERT_STRING_EQUAL(c.providers[1].ssh_options, "-p 2222");
    CU_ASSERT_EQUAL_FATAL(c.providers[1].n_ssh_hosts, 2);
    CU_ASSERT_STRING_EQUAL(c.providers[1].ssh_hosts[1], "10.0.0.2");
    mk_config_free(&c);
}

static void test_config_defaults(void)
{
    const char *j = "{\"budget_per_hour\": 3.0, \"budget_total\": 100.0, \"idle_timeout_s\": 60, "
                    "\"providers\": [{\"name\": \"lab\", \"type\": \"local\", \"offers\": \"offers.json\"}]}";
    mk_config c;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(mk_config_parse(j, strlen(j), &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.max_hosts, -1);
    CU_ASSERT_EQUAL(c.verify, 1);
    CU_ASSERT_EQUAL(c.verify_n, 256);
    CU_ASSERT_EQUAL(c.verify_spot_checks, 8);
    CU_ASSERT_DOUBLE_EQUAL(c.failure_half_life_s, 600, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.failure_retry_below, 0.25, 0);
    CU_ASSERT_EQUAL(c.launch_timeout_s, 60);
    CU_ASSERT_EQUAL(c.round_interval_ms, 1000);
    CU_ASSERT_EQUAL(c.n_limits, 0);
    mk_config_free(&c);
}

static void expect_config_error(const char *json, int code, const char *words)
{
    mk_config c;
    char err[256] = "";
    int rc = mk_config_parse(json, strlen(json), &c, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, code);
    if (!strstr(err, words)) {
        fprintf(stderr, "\n  config %s\n  gave: %s\n  wanted: %s\n", json, err, words);
        CU_FAIL("error message");
    }
    CU_ASSERT_EQUAL(c.n_providers, 0);
}

#define PROV "\"providers\": [{\"name\": \"lab\", \"type\": \"local\", \"offers\": \"o.json\"}]"

static void test_config_errors(void)
{
    expect_config_error("{\"budget_per_hours\": 3, " PROV "}", RC_EINVAL,
                        "config: unknown key \"budget_per_hours\"");
    expect_config_error("{\"budget_per_hour\": -1, " PROV "}", RC_EINVAL,
                        "config: \"budget_per_hour\" must be a number >= 0");
    expect_config_error("{\"budget_per_hour\": \"3\", " PROV "}", RC_EINVAL, "\"budget_per_hour\" must be a number");
    expect_config_error("{\"budget_per_hour\": 1, \"budget_per_hour\": 2, " PROV "}", RC_EINVAL, "appears twice");
    expect_config_error("{\"idle_timeout_s\": 1.5, " PROV "}", RC_EINVAL, "\"idle_timeout_s\" must be a whole number");
    expect_config_error("{\"budget_per_hour\": 1}", RC_EINVAL, "\"providers\" must be a non-empty array");
    expect_config_error("{\"providers\": [{\"name\": \"x\", \"type\": \"cloud\", \"offers\": \"o\"}]}", RC_EINVAL,
                        "providers[0] (\"x\"): \"type\" must be \"local\" or \"ssh\"");
    expect_config_error("{\"providers\": [{\"name\": \"x\", \"type\": \"local\"}]}", RC_EINVAL,
                        "\"offers\" is required");
    expect_config_error("{\"providers\": [{\"name\": \"x\", \"type\": \"ssh\", \"offers\": \"o\"}]}", RC_EINVAL,
                        "\"hosts\" must be a non-empty array");
    expect_config_error("{\"providers\": [{\"name\": \"x\", \"type\": \"local\", \"offers\": \"o\", \"hosts\": "
                        "[\"h\"]}]}",
                        RC_EINVAL, "\"hosts\" is only for providers of type \"ssh\"");
    expect_config_error("{\"providers\": [{\"name\": \"x\", \"type\": \"local\", \"offers\": \"o\"}, {\"name\": "
                        "\"x\", \"type\": \"local\", \"offers\": \"p\"}]}",
                        RC_EINVAL, "provider name \"x\" is used twice");
    expect_config_error("{\"classes\": [{\"class\": \"A100x1\", \"min_hosts\": 3, \"max_hosts\": 2}], " PROV "}",
                        RC_EINVAL, "classes[0]: \"min_hosts\" 3 is above \"max_hosts\" 2");
    expect_config_error("{\"classes\": [{\"class\": \"A\"}, {\"class\": \"A\"}], " PROV "}", RC_EINVAL,
                        "listed twice");
    expect_config_error("{\"verification\": {\"matrix_n\": 4, \"spot_checks\": 8}, " PROV "}", RC_EINVAL,
                        "\"spot_checks\" 8 is more than the 4 rows");
    expect_config_error("{\"verification\": {\"enable\": true}, " PROV "}", RC_EINVAL,
                        "config: \"verification\": unknown key \"enable\"");
    expect_config_error("{\"failure\": {\"half_life_s\": 0}, " PROV "}", RC_EINVAL,
                        "\"failure\": \"half_life_s\" must be a number between");
    expect_config_error("{\"timeouts\": {\"launch_s\": 0}, " PROV "}", RC_EINVAL, "\"launch_s\" must be a whole number");
    expect_config_error("[1, 2]", RC_EINVAL, "config: must be a JSON object");
    expect_config_error("{\"budget_per_hour\": 3,", RC_EPARSE, "config: not valid JSON");
}

/* Every prefix of a valid config is either refused with a message or (the whole) accepted. */
static void test_config_truncations(void)
{
    size_t n = strlen(full_config);
    for (size_t len = 0; len < n; len++) {
        mk_config c;
        char err[256] = "";
        int rc = mk_config_parse(full_config, len, &c, err, sizeof(err));
        CU_ASSERT(rc < 0);
        CU_ASSERT(err[0] != '\0');
    }
}

static const char full_offers[] =
    "[{\"id\": \"a100-x\", \"gpu_name\": \"A100\", \"num_gpus\": 8, \"gpu_memory\": 80, \"num_cpus\": 96,"
    "  \"memory\": 1024, \"price_per_hour\": 12.5, \"billing_increment_s\": 60, \"region\": \"us-west\","
    "  \"reliability\": 0.97, \"lease_duration_s\": 7200, \"behaviour\": \"fake_gpu\", \"available\": 3,"
    "  \"labels\": {\"zone\": \"a\", \"tier\": \"spot\"}},"
    " {\"id\": \"cpu\", \"num_cpus\": 4, \"price_per_hour\": 0.15, \"behaviour\": \"vanish_after_s:30\"}]";

static void test_offers_full(void)
{
    mk_offer *o;
    size_t n;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(mk_offers_parse(full_offers, strlen(full_offers), "lab", &o, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(o[0].id, "a100-x");
    CU_ASSERT_STRING_EQUAL(o[0].provider, "lab");
    CU_ASSERT_STRING_EQUAL(o[0].gpu_name, "A100");
    CU_ASSERT_DOUBLE_EQUAL(o[0].num_gpus, 8, 0);
    CU_ASSERT_DOUBLE_EQUAL(o[0].gpu_memory, 80, 0);
    CU_ASSERT_DOUBLE_EQUAL(o[0].num_cpus, 96, 0);
    CU_ASSERT_DOUBLE_EQUAL(o[0].memory, 1024, 0);
    CU_ASSERT_DOUBLE_EQUAL(o[0].price_per_hour, 12.5, 0);
    CU_ASSERT_EQUAL(o[0].billing_increment_s, 60);
    CU_ASSERT_STRING_EQUAL(o[0].region, "us-west");
    CU_ASSERT_DOUBLE_EQUAL(o[0].reliability, 0.97, 0);
    CU_ASSERT_EQUAL(o[0].lease_duration_s, 7200);
    CU_ASSERT_EQUAL(o[0].behaviour, MK_FAKE_GPU);
    CU_ASSERT_EQUAL(o[0].available, 3);
    CU_ASSERT_EQUAL_FATAL(o[0].n_labels, 2);
    CU_ASSERT_STRING_EQUAL(mk_offer_label(&o[0], "tier"), "spot");
    CU_ASSERT_STRING_EQUAL(mk_offer_label(&o[0], "ray.io/accelerator-type"), "A100");
    CU_ASSERT_STRING_EQUAL(mk_offer_label(&o[0], "ray.io/market-region"), "us-west");
    CU_ASSERT_PTR_NULL(mk_offer_label(&o[0], "nope"));
    char cls[64];
    mk_offer_class(&o[0], cls, sizeof(cls));
    CU_ASSERT_STRING_EQUAL(cls, "A100x8");
    /* Defaults. */
    CU_ASSERT_STRING_EQUAL(o[1].gpu_name, "");
    CU_ASSERT_STRING_EQUAL(o[1].region, "");
    CU_ASSERT_DOUBLE_EQUAL(o[1].reliability, 1, 0);
    CU_ASSERT_EQUAL(o[1].available, 1);
    CU_ASSERT_EQUAL(o[1].billing_increment_s, 0);
    CU_ASSERT_EQUAL(o[1].behaviour, MK_VANISH_AFTER);
    CU_ASSERT_EQUAL(o[1].vanish_after_s, 30);
    CU_ASSERT_PTR_NULL(mk_offer_label(&o[1], "ray.io/accelerator-type"));
    mk_offer_class(&o[1], cls, sizeof(cls));
    CU_ASSERT_STRING_EQUAL(cls, "cpu4");
    mk_offers_free(o, n);
}

static void expect_offers_error(const char *json, int code, const char *message)
{
    mk_offer *o = (mk_offer *)1;
    size_t n = 7;
    char err[256] = "";
    int rc = mk_offers_parse(json, strlen(json), "lab", &o, &n, err, sizeof(err));
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_EQUAL(n, 0);
    if (!strstr(err, message)) {
        fprintf(stderr, "\n  offers %s\n  gave: %s\n  wanted: %s\n", json, err, message);
        CU_FAIL("error message");
    }
}

static void test_offers_errors(void)
{
    expect_offers_error("[{\"id\": \"a100-x\", \"num_cpus\": 8, \"price_per_hour\": -2}]", RC_EINVAL,
                        "offer \"a100-x\": \"price_per_hour\" must be a number >= 0");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8}]", RC_EINVAL, "offer \"a\": \"price_per_hour\" is required");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1}, {\"num_cpus\": 1, "
                        "\"price_per_hour\": 1}]",
                        RC_EINVAL, "offer #2: \"id\" is required");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"prise\": 2}]", RC_EINVAL,
                        "offer \"a\": unknown key \"prise\"");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1}, {\"id\": \"a\", \"num_cpus\": 2, "
                        "\"price_per_hour\": 1}]",
                        RC_EINVAL, "offer id \"a\" appears twice");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"behaviour\": \"evil\"}]",
                        RC_EINVAL, "offer \"a\": \"behaviour\" must be one of");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"behaviour\": "
                        "\"vanish_after_s:x\"}]",
                        RC_EINVAL, "\"behaviour\" must be one of");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"reliability\": 1.5}]", RC_EINVAL,
                        "\"reliability\" must be a number between");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"num_gpus\": 2}]", RC_EINVAL,
                        "\"gpu_name\" is missing");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"billing_increment_s\": 0.5}]",
                        RC_EINVAL, "\"billing_increment_s\" must be a whole number");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"labels\": {\"ray.io/x\": "
                        "\"y\"}}]",
                        RC_EINVAL, "the \"ray.io/\" prefix is reserved");
    expect_offers_error("[{\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1, \"labels\": {\"k\": 1}}]", RC_EINVAL,
                        "label \"k\" must have a string value");
    expect_offers_error("{\"id\": \"a\"}", RC_EINVAL, "must be a JSON array");
    expect_offers_error("[\"a\"]", RC_EINVAL, "offer #1: must be a JSON object");
    expect_offers_error("[{\"id\": ", RC_EPARSE, "not valid JSON");
}

static void test_offers_truncations(void)
{
    size_t n = strlen(full_offers);
    for (size_t len = 0; len < n; len++) {
        mk_offer *o;
        size_t k;
        char err[256] = "";
        CU_ASSERT(mk_offers_parse(full_offers, len, "lab", &o, &k, err, sizeof(err)) < 0);
        CU_ASSERT(err[0] != '\0');
    }
}

static const unit_case cases[] = {
    UNIT_CASE(test_config_full),   UNIT_CASE(test_config_defaults), UNIT_CASE(test_config_errors),
    UNIT_CASE(test_config_truncations), UNIT_CASE(test_offers_full), UNIT_CASE(test_offers_errors),
    UNIT_CASE(test_offers_truncations),
};

int main(void)
{
    return unit_run("market_config", cases, UNIT_N(cases));
}
