/* rc_map: behaviour against a reference model, removal during iteration, growth. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rc_map.h"
#include "unit.h"

static void test_put_get_remove(void)
{
    rc_map m = RC_MAP_INIT;
    static int a = 1, b = 2, c = 3;
    CU_ASSERT_PTR_NULL(rc_map_get_str(&m, "x"));
    CU_ASSERT_PTR_NULL(rc_map_put_str(&m, "x", &a));
    CU_ASSERT_PTR_NULL(rc_map_put_str(&m, "y", &b));
    CU_ASSERT_PTR_EQUAL(rc_map_put_str(&m, "x", &c), &a);
    CU_ASSERT_PTR_EQUAL(rc_map_get_str(&m, "x"), &c);
    CU_ASSERT_EQUAL(rc_map_size(&m), 2);
    CU_ASSERT_PTR_EQUAL(rc_map_remove_str(&m, "x"), &c);
    CU_ASSERT_PTR_NULL(rc_map_remove_str(&m, "x"));
    CU_ASSERT_PTR_NULL(rc_map_get_str(&m, "x"));
    CU_ASSERT_EQUAL(rc_map_size(&m), 1);
    /* Binary keys with embedded NULs and the empty key are distinct keys. */
    CU_ASSERT_PTR_NULL(rc_map_put(&m, "a\0b", 3, &a));
    CU_ASSERT_PTR_NULL(rc_map_put(&m, "a\0c", 3, &b));
    CU_ASSERT_PTR_NULL(rc_map_put(&m, "", 0, &c));
    CU_ASSERT_PTR_EQUAL(rc_map_get(&m, "a\0b", 3), &a);
    CU_ASSERT_PTR_EQUAL(rc_map_get(&m, "a\0c", 3), &b);
    CU_ASSERT_PTR_EQUAL(rc_map_get(&m, "", 0), &c);
    rc_map_destroy(&m, NULL);
    CU_ASSERT_EQUAL(rc_map_size(&m), 0);
}

/* Random operations checked against a direct-indexed model over a small key space, so
 * clusters, wrap-around and backward shifts are all exercised. */
static void test_random_against_model(void)
{
    enum { KEYS = 512, OPS = 200000 };
    static intptr_t model[KEYS];
    rc_map m = RC_MAP_INIT;
    memset(model, 0, sizeof(model));
    srand(7);
    for (int op = 0; op < OPS; op++) {
        uint32_t k = (uint32_t)rand() % KEYS;
        intptr_t v = (intptr_t)(rand() % 1000 + 1);
        switch (rand() % 3) {
        case 0:
        case 1: {
            void *old = rc_map_put(&m, &k, sizeof(k), (void *)v);
            CU_ASSERT_EQUAL((intptr_t)old, model[k]);
            model[k] = v;
            break;
        }
        default: {
            void *old = rc_map_remove(&m, &k, sizeof(k));
            CU_ASSERT_EQUAL((intptr_t)old, model[k]);
            model[k] = 0;
        }
        }
    }
    size_t live = 0;
    for (uint32_t k = 0; k < KEYS; k++) {
        CU_ASSERT_EQUAL((intptr_t)rc_map_get(&m, &k, sizeof(k)), model[k]);
        live += model[k] != 0;
    }
    CU_ASSERT_EQUAL(rc_map_size(&m), live);
    rc_map_destroy(&m, NULL);
}

/* Removing every other entry while iterating visits each entry exactly once, whatever the
 * table layout (many seeds, so clusters that wrap around the end are covered). */
static void test_iter_remove_visits_once(void)
{
    for (unsigned seed = 1; seed <= 300; seed++) {
        rc_map m = RC_MAP_INIT;
        srand(seed);
        int n = 5 + rand() % 60;
        static int seen[4096];
        memset(seen, 0, sizeof(seen));
        for (int i = 0; i < n; i++) {
            uint32_t k = (uint32_t)rand() % 4096;
            rc_map_put(&m, &k, sizeof(k), (void *)(intptr_t)(k + 1));
        }
        size_t before = rc_map_size(&m), removed = 0, visited = 0;
        rc_map_iter it = RC_MAP_ITER_INIT;
        const void *key;
        void *val;
        while (rc_map_next(&m, &it, &key, NULL, &val)) {
            uint32_t k;
            memcpy(&k, key, sizeof(k));
            CU_ASSERT_EQUAL(seen[k], 0);
            seen[k]++;
            visited++;
            if (k % 2 == 0) {
                CU_ASSERT_EQUAL((intptr_t)rc_map_iter_remove(&m, &it), (intptr_t)(k + 1));
                removed++;
            }
        }
        CU_ASSERT_EQUAL(visited, before);
        CU_ASSERT_EQUAL(rc_map_size(&m), before - removed);
        rc_map_iter it2 = RC_MAP_ITER_INIT;
        while (rc_map_next(&m, &it2, &key, NULL, NULL)) {
            uint32_t k;
            memcpy(&k, key, sizeof(k));
            CU_ASSERT(k % 2 == 1);
        }
        rc_map_destroy(&m, NULL);
    }
}

static int freed_count;
static void count_free(void *p)
{
    (void)p;
    freed_count++;
}

static void test_destroy_frees_values(void)
{
    rc_map m = RC_MAP_INIT;
    static int v;
    char key[16];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        rc_map_put(&m, key, (size_t)n, &v);
    }
    freed_count = 0;
    rc_map_destroy(&m, count_free);
    CU_ASSERT_EQUAL(freed_count, 1000);
}

static const unit_case cases[] = {
    UNIT_CASE(test_put_get_remove),
    UNIT_CASE(test_random_against_model),
    UNIT_CASE(test_iter_remove_visits_once),
    UNIT_CASE(test_destroy_frees_values),
};

int main(void)
{
    return unit_run("rc_map", cases, UNIT_N(cases));
}
