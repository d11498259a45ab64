/* sched_resource.c: fixed point, Ray's validation messages, request building. */
#include <math.h>
#include <string.h>

#include "rc_err.h"
#include "sched_test.h"

static void expect_msg(const char *name, double value, const char *needle)
{
    sched_amount a = 123;
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_amount_from_double(name, value, &a, &err), RC_EINVAL);
    CU_ASSERT_EQUAL(a, 123); /* untouched on failure */
    if (!strstr(err.msg, needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, name)); /* every message names the resource */
}

static void test_amount_validation_messages(void)
{
    expect_msg("CPU", -1, "amount -1 is negative");
    expect_msg("GPU", NAN, "is not a finite number");
    expect_msg("GPU", INFINITY, "amount inf is not a finite number");
    expect_msg("GPU", -INFINITY, "not a finite number");
    expect_msg("GPU", 1.5, "resource quantities >1 must be whole numbers");
    expect_msg("GPU", 1.5, "amount 1.5");
    expect_msg("my_res", 2.25, "resource quantities >1 must be whole numbers");
    expect_msg("CPU", 0.00005, "finer than the 0.0001 precision");
    expect_msg("memory", 1e15, "too large");
}

static void test_amount_conversion(void)
{
    sched_amount a;
    CU_ASSERT_EQUAL(sched_amount_from_double("CPU", 0, &a, NULL), 0);
    CU_ASSERT_EQUAL(a, 0);
    CU_ASSERT_EQUAL(sched_amount_from_double("GPU", 0.5, &a, NULL), 0);
    CU_ASSERT_EQUAL(a, 5000);
    CU_ASSERT_EQUAL(sched_amount_from_double("GPU", 0.0001, &a, NULL), 0);
    CU_ASSERT_EQUAL(a, 1);
    CU_ASSERT_EQUAL(sched_amount_from_double("GPU", 1, &a, NULL), 0);
    CU_ASSERT_EQUAL(a, SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_amount_from_double("CPU", 64, &a, NULL), 0);
    CU_ASSERT_EQUAL(a, 64 * SCHED_UNIT);
    /* 0.1 + 0.2 style doubles land on exact units. */
    CU_ASSERT_EQUAL(sched_amount_from_double("GPU", 0.3, &a, NULL), 0);
    CU_ASSERT_EQUAL(a, 3000);
    CU_ASSERT_EQUAL(sched_amount_from_double("memory", 64 * GIB, &a, NULL), 0);
    CU_ASSERT_EQUAL(a, (sched_amount)(64 * GIB) * SCHED_UNIT);
    /* Ray truncation rule: 0.00015 is accepted (not below one unit). */
    CU_ASSERT_EQUAL(sched_amount_from_double("GPU", 0.00015, &a, NULL), 0);
}

static void test_amount_format(void)
{
    char buf[32];
    CU_ASSERT_STRING_EQUAL(sched_amount_format(0, buf, sizeof(buf)), "0");
    CU_ASSERT_STRING_EQUAL(sched_amount_format(5000, buf, sizeof(buf)), "0.5");
    CU_ASSERT_STRING_EQUAL(sched_amount_format(1, buf, sizeof(buf)), "0.0001");
    CU_ASSERT_STRING_EQUAL(sched_amount_format(160000, buf, sizeof(buf)), "16");
    CU_ASSERT_STRING_EQUAL(sched_amount_format(12500, buf, sizeof(buf)), "1.25");
    CU_ASSERT_STRING_EQUAL(sched_amount_format(-2500, buf, sizeof(buf)), "-0.25");
}

static void test_request_set_keeps_sorted_unique(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_request r;
    sched_request_init(&r);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "zeta", 1, NULL), 0);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "GPU", 0.5, NULL), 0);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "CPU", 2, NULL), 0);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "alpha", 3, NULL), 0);
    CU_ASSERT_EQUAL(r.n, 4);
    for (uint32_t i = 1; i < r.n; i++)
        CU_ASSERT(r.id[i - 1] < r.id[i]);
    CU_ASSERT_EQUAL(r.id[0], SCHED_CPU);
    CU_ASSERT_EQUAL(r.id[1], SCHED_GPU);
    /* Setting again replaces; 0 removes. */
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "CPU", 4, NULL), 0);
    CU_ASSERT_EQUAL(sched_request_get(&r, SCHED_CPU), 4 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "GPU", 0, NULL), 0);
    CU_ASSERT_EQUAL(r.n, 3);
    CU_ASSERT_EQUAL(sched_request_get(&r, SCHED_GPU), 0);
    /* A failed set leaves the request alone. */
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "CPU", -2, &err), RC_EINVAL);
    CU_ASSERT_EQUAL(sched_request_get(&r, SCHED_CPU), 4 * SCHED_UNIT);
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "", 1, &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty"));
    sched_view_free(v);
}

static void test_request_too_many_resources(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_request r;
    sched_request_init(&r);
    char name[16];
    for (int i = 0; i < SCHED_REQ_MAX_RESOURCES; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        CU_ASSERT_EQUAL(sched_request_set(v, &r, name, 1, NULL), 0);
    }
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_request_set(v, &r, "one_more", 1, &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "one_more"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "at most 16"));
    CU_ASSERT_EQUAL(sched_request_set_id(&r, SCHED_CPU, SCHED_UNIT), RC_ERANGE);
    sched_view_free(v);
}

static void test_custom_rejects_predefined_names(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_request r;
    sched_request_init(&r);
    struct {
        const char *name, *hint;
    } cases[] = {{"CPU", "num_cpus"},
                 {"GPU", "num_gpus"},
                 {"memory", "memory option"},
                 {"object_store_memory", "object_store_memory option"}};
    for (size_t i = 0; i < 4; i++) {
        sched_err err = {""};
        CU_ASSERT_EQUAL(sched_request_set_custom(v, &r, cases[i].name, 1, &err), RC_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].hint));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].name));
    }
    CU_ASSERT_EQUAL(r.n, 0);
    CU_ASSERT_EQUAL(sched_request_set_custom(v, &r, "TPU", 4, NULL), 0);
    CU_ASSERT_EQUAL(r.n, 1);
    /* Custom amounts follow the same rules. */
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_request_set_custom(v, &r, "TPU", 1.5, &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "whole numbers"));
    sched_view_free(v);
}

static void test_accelerator_type_request(void)
{
    sched_view *v = sched_view_new(NULL);
    sched_request r;
    sched_request_init(&r);
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &r, "A100", NULL), 0);
    uint32_t id;
    CU_ASSERT_EQUAL(sched_view_resource_id(v, "accelerator_type:A100", &id), 0);
    CU_ASSERT_EQUAL(r.accelerator_id, id);
    CU_ASSERT_EQUAL(sched_request_get(&r, id), SCHED_UNIT / 1000); /* Ray's 0.001 */
    sched_err err = {""};
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &r, "A 100", &err), RC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'A 100'"));
    CU_ASSERT_EQUAL(sched_request_set_accelerator_type(v, &r, "", &err), RC_EINVAL);
    sched_view_free(v);
}

static void test_schedule_rejects_malformed_requests(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 4, .gpus = 2));
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    /* gpu_memory without GPUs. */
    sched_request r = treq(v, 1, 0);
    r.gpu_memory = (uint64_t)(40 * GIB);
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "gpu_memory"));
    CU_ASSERT_PTR_NULL(d.node);
    /* A hand-built request with a fractional GPU amount above 1. */
    sched_request_init(&r);
    r.n = 1;
    r.id[0] = SCHED_GPU;
    r.amount[0] = 15000;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "whole numbers"));
    /* Unsorted ids. */
    sched_request_init(&r);
    r.n = 2;
    r.id[0] = SCHED_GPU;
    r.amount[0] = SCHED_UNIT;
    r.id[1] = SCHED_CPU;
    r.amount[1] = SCHED_UNIT;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "malformed"));
    /* Negative amount. */
    r.n = 1;
    r.id[0] = SCHED_CPU;
    r.amount[0] = -1;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_INVALID);
    sched_view_free(v);
}

static void test_empty_request_runs_anywhere(void)
{
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 1));
    sched_request r;
    sched_request_init(&r);
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, NULL, &rng, &d), SCHED_OK);
    CU_ASSERT_PTR_EQUAL(d.node, tnode(v, 1));
    CU_ASSERT_STRING_EQUAL(d.why, "");
    sched_view_free(v);
}

static const unit_case cases[] = {
    UNIT_CASE(test_amount_validation_messages),
    UNIT_CASE(test_amount_conversion),
    UNIT_CASE(test_amount_format),
    UNIT_CASE(test_request_set_keeps_sorted_unique),
    UNIT_CASE(test_request_too_many_resources),
    UNIT_CASE(test_custom_rejects_predefined_names),
    UNIT_CASE(test_accelerator_type_request),
    UNIT_CASE(test_schedule_rejects_malformed_requests),
    UNIT_CASE(test_empty_request_runs_anywhere),
};

int main(void)
{
    return unit_run("sched_resource", cases, UNIT_N(cases));
}
