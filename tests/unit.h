/*
 * A thin layer over CUnit so each test file is a list of cases and one line of main():
 *
 *     static void test_put_get(void) { CU_ASSERT_EQUAL(...); }
 *     static const unit_case cases[] = { UNIT_CASE(test_put_get), ... };
 *     int main(void) { return unit_run("rc_map", cases, UNIT_N(cases)); }
 *
 * unit_run returns non-zero when any assertion failed, which ctest reports.
 */
#ifndef RAYC_TESTS_UNIT_H
#define RAYC_TESTS_UNIT_H

#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdio.h>

typedef struct unit_case {
    const char *name;
    void (*fn)(void);
} unit_case;

#define UNIT_CASE(fn) {#fn, fn}
#define UNIT_N(a) (sizeof(a) / sizeof((a)[0]))

static inline int unit_run(const char *suite_name, const unit_case *cases, size_t n)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        CU_add_test(suite, cases[i].name, cases[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

#endif
