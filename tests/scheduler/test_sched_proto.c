/*
 * sched_proto.c's placement-group bundle resource names: R_group_<i>_<pg> and R_group_<pg>
 * built and taken apart, the reserved-name check, and a name's base resource.
 */
#include <stdio.h>
#include <string.h>

#include "rc_err.h"
#include "sched_proto.h"
#include "unit.h"

static void pg_fill(uint8_t pg[RC_PG_ID_SIZE], uint8_t first)
{
    for (int i = 0; i < RC_PG_ID_SIZE; i++)
        pg[i] = (uint8_t)(first + i);
}

static void test_format_and_parse_round_trip(void)
{
    uint8_t pg[RC_PG_ID_SIZE];
    pg_fill(pg, 0x10);
    char hex[RC_ID_HEX_MAX], name[400], want[400];
    rc_id_hex(pg, sizeof(pg), hex);
    snprintf(want, sizeof(want), "CPU_group_0_%s", hex);
    CU_ASSERT_STRING_EQUAL(sched_bundle_name_format("CPU", pg, 0, name, sizeof(name)), want);
    snprintf(want, sizeof(want), "bundle_group_%s", hex);
    CU_ASSERT_STRING_EQUAL(sched_bundle_name_format(SCHED_BUNDLE_LABEL, pg, -1, name, sizeof(name)), want);
    const char *bases[] = {"CPU", "GPU", "memory", "my_res", "a_group_b", "x9"};
    const int64_t indexes[] = {-1, 0, 7, 2147483647};
    for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
        for (size_t k = 0; k < sizeof(indexes) / sizeof(indexes[0]); k++) {
            sched_bundle_name bn;
            sched_bundle_name_format(bases[b], pg, indexes[k], name, sizeof(name));
            CU_ASSERT_EQUAL_FATAL(sched_bundle_name_parse(name, &bn), 0);
            CU_ASSERT_STRING_EQUAL(bn.base, bases[b]);
            CU_ASSERT_EQUAL(bn.index, indexes[k]);
            CU_ASSERT_EQUAL(memcmp(bn.pg_id, pg, sizeof(pg)), 0);
            CU_ASSERT_TRUE(sched_bundle_name_reserved(name));
            CU_ASSERT_TRUE(sched_bundle_name_of(name, bases[b]));
        }
    }
    /* Too small a buffer truncates, never overflows. */
    char small[8];
    CU_ASSERT_EQUAL(strlen(sched_bundle_name_format("CPU", pg, 1, small, sizeof(small))), sizeof(small) - 1);
}

static void test_not_bundle_names(void)
{
    uint8_t pg[RC_PG_ID_SIZE];
    pg_fill(pg, 0xa0);
    char hex[RC_ID_HEX_MAX], name[800];
    rc_id_hex(pg, sizeof(pg), hex);
    sched_bundle_name bn;
    const char *bad[] = {"", "CPU", "GPU_group_", "CPU_group_1_", "node:10.0.0.1", "accelerator_type:A100"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(sched_bundle_name_parse(bad[i], &bn), RC_EINVAL);
    CU_ASSERT_EQUAL(sched_bundle_name_parse(NULL, &bn), RC_EINVAL);
    const char *bad_fmt[] = {"CPU_grp_1_%s", "CPU_group_x1_%s", "_group_%s", "_group_1_%s", "CPU_group_12345678901_%s",
                             "CPU_group_4294967296_%s", "CPU_group_1%s"};
    for (size_t i = 0; i < sizeof(bad_fmt) / sizeof(bad_fmt[0]); i++) {
        snprintf(name, sizeof(name), "%s", bad_fmt[i]);
        char *at = strstr(name, "%s");
        memcpy(at, hex, strlen(hex) + 1); /* the format ends with %s */
        CU_ASSERT_EQUAL(sched_bundle_name_parse(name, &bn), RC_EINVAL);
    }
    snprintf(name, sizeof(name), "CPU_group_1_%.*szz", RC_PG_ID_SIZE * 2 - 2, hex);
    CU_ASSERT_EQUAL(sched_bundle_name_parse(name, &bn), RC_EINVAL);
    /* A base longer than SCHED_BUNDLE_BASE_MAX is refused, not cut. */
    memset(name, 'r', SCHED_BUNDLE_BASE_MAX);
    snprintf(name + SCHED_BUNDLE_BASE_MAX, sizeof(name) - SCHED_BUNDLE_BASE_MAX, "_group_%s", hex);
    CU_ASSERT_EQUAL(sched_bundle_name_parse(name, &bn), RC_EINVAL);
}

static void test_reserved_and_base(void)
{
    CU_ASSERT_FALSE(sched_bundle_name_reserved("CPU"));
    CU_ASSERT_FALSE(sched_bundle_name_reserved("my_group"));
    CU_ASSERT_FALSE(sched_bundle_name_reserved(NULL));
    CU_ASSERT_TRUE(sched_bundle_name_reserved("x_group_y"));
    CU_ASSERT_TRUE(sched_bundle_name_of("CPU", "CPU"));
    CU_ASSERT_TRUE(sched_bundle_name_of("GPU_group_0_abc", "GPU"));
    CU_ASSERT_FALSE(sched_bundle_name_of("CPUX", "CPU"));
    CU_ASSERT_FALSE(sched_bundle_name_of("GPU", "CPU"));
    CU_ASSERT_FALSE(sched_bundle_name_of("CPU_grp_1", "CPU"));
}

static const unit_case cases[] = {
    UNIT_CASE(test_format_and_parse_round_trip),
    UNIT_CASE(test_not_bundle_names),
    UNIT_CASE(test_reserved_and_base),
};

int main(void)
{
    return unit_run("sched_proto", cases, UNIT_N(cases));
}
