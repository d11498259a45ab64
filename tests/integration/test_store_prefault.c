/*
 * The object store's first touch, end to end on real local clusters: a raylet faults its
 * store in after start (its log says how much, the blocks of the store's file agree, and
 * the raylet does not map the pages itself), not at all with
 * --object-store-prefault false, and only down to the available-memory floor
 * (object_store_prefault_keep_available). And the one store-put path: a put whose parts
 * overflow is refused with a clear error, a put too large for the store is refused by the
 * store, a large put is written through the store's file (not faulted in through the
 * driver's mapping) and reads back intact, and the bounds check holds for offsets and sizes
 * that wrap around.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "rayc.h"
#include "rc_time.h"
#include "unit.h"

#define MiB (1024ull * 1024ull)
#define STORE (96 * MiB)

static harness_cluster C;

static int start(const char *const *flags, int *index)
{
    if (harness_cluster_init(&C, 0) || harness_gcs_start(&C))
        return -1;
    return harness_raylet_start(&C, flags, index);
}

static void store_path(int i, char *out, size_t len)
{
    snprintf(out, len, "/dev/shm/rayc-%s", C.raylets[i].node_id);
}

/* Bytes of raylet i's store that have memory (the allocated blocks of its file). */
static uint64_t resident_bytes(int i)
{
    char path[256];
    store_path(i, path, sizeof(path));
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Shared-memory pages mapped in process pid (RssShmem), in bytes; -1 if unreadable. */
static int64_t rss_shmem(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "RssShmem: %lld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

/* Waits (up to 60 s) for raylet i's pre-fault line; 0 and the bytes, total and the line's
 * tail (from the state on), or -1. */
static int prefault_line(int i, unsigned long long *bytes, unsigned long long *total, char *tail, size_t tlen)
{
    char path[512], line[1024];
    harness_log_path(&C, C.raylets[i].name, path, sizeof(path));
    for (int tries = 0; tries < 600; tries++) {
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f)) {
            const char *at = strstr(line, "object store: pre-faulted ");
            if (!at || sscanf(at, "object store: pre-faulted %llu of %llu bytes", bytes, total) != 2)
                continue;
            const char *paren = strrchr(at, '(');
            snprintf(tail, tlen, "%s", paren ? paren : "");
            fclose(f);
            return 0;
        }
        if (f)
            fclose(f);
        rc_sleep_ms(100);
    }
    return -1;
}

/* On by default: the whole store (the floor set low so a busy host does not stop it). */
static void test_prefault_on_by_default(void)
{
    setenv("RAYC_object_store_prefault_keep_available", "0.02", 1);
    int i;
    const char *flags[] = {"--num-cpus", "1", "--object-store-memory", "96MiB", NULL};
    CU_ASSERT_EQUAL_FATAL(start(flags, &i), 0);
    unsigned long long bytes = 0, total = 0;
    char tail[256] = "";
    CU_ASSERT_EQUAL(prefault_line(i, &bytes, &total, tail, sizeof(tail)), 0);
    CU_ASSERT_EQUAL(total, STORE);
    CU_ASSERT_EQUAL(bytes, STORE);
    CU_ASSERT_PTR_NOT_NULL(strstr(tail, "(done"));
    CU_ASSERT_EQUAL(resident_bytes(i), STORE);
    /* The pages are the file's: the raylet does not keep them mapped itself. */
    int64_t mapped = rss_shmem(C.raylets[i].pid);
    CU_ASSERT(mapped >= 0 && mapped <= (int64_t)(8 * MiB));
    CU_ASSERT(harness_raylet_alive(&C, i));
    harness_cluster_destroy(&C);
    unsetenv("RAYC_object_store_prefault_keep_available");
}

/* Off: nothing beyond jemalloc's own metadata block, however long we look. */
static void test_prefault_off(void)
{
    int i;
    const char *flags[] = {"--num-cpus", "1", "--object-store-memory", "96MiB", "--object-store-prefault", "false",
                           NULL};
    CU_ASSERT_EQUAL_FATAL(start(flags, &i), 0);
    for (int tries = 0; tries < 100 && !harness_log_contains(&C, C.raylets[i].name, "pre-fault off"); tries++)
        rc_sleep_ms(100);
    CU_ASSERT(harness_log_contains(&C, C.raylets[i].name, "object store: pre-fault off"));
    rc_sleep_ms(1000); /* a pre-fault, if one ran, would have shown by now */
    CU_ASSERT(resident_bytes(i) <= 4 * MiB);
    CU_ASSERT(!harness_log_contains(&C, C.raylets[i].name, "object store: pre-faulted"));
    harness_cluster_destroy(&C);
}

/* Bounded by available memory: a floor of all of MemTotal leaves nothing to fault in. */
static void test_prefault_bounded(void)
{
    setenv("RAYC_object_store_prefault_keep_available", "1", 1);
    int i;
    const char *flags[] = {"--num-cpus", "1", "--object-store-memory", "96MiB", NULL};
    CU_ASSERT_EQUAL_FATAL(start(flags, &i), 0);
    unsigned long long bytes = 1, total = 0;
    char tail[256] = "";
    CU_ASSERT_EQUAL(prefault_line(i, &bytes, &total, tail, sizeof(tail)), 0);
    CU_ASSERT_EQUAL(bytes, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(tail, "available-memory floor"));
    CU_ASSERT(resident_bytes(i) <= 4 * MiB);
    harness_cluster_destroy(&C);
    unsetenv("RAYC_object_store_prefault_keep_available");

    /* A bad flag value is refused by name. */
    const char *bad[] = {"--object-store-prefault", "maybe", NULL};
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&C, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&C), 0);
    CU_ASSERT_NOT_EQUAL(harness_raylet_start(&C, bad, &i), 0);
    char path[512];
    snprintf(path, sizeof(path), "raylet%d", C.n_raylets - 1);
    CU_ASSERT(harness_log_contains(&C, path, "--object-store-prefault needs true or false"));
    harness_cluster_destroy(&C);
}

/* The store-put path, with the raylet's pre-fault off: refusals, and a large put written
 * through the store's file (the driver's own mapping is not faulted in by it). */
static void test_put_path(void)
{
    int i;
    const char *flags[] = {"--num-cpus", "1", "--object-store-memory", "96MiB", "--object-store-prefault", "false",
                           NULL};
    CU_ASSERT_EQUAL_FATAL(start(flags, &i), 0);
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = C.gcs_address;
    CU_ASSERT_EQUAL_FATAL(rayc_init(&opts), 0);

    /* Parts whose sizes add up past the address space: refused, nothing copied. */
    static char small[16];
    rayc_iov parts[2] = {{small, SIZE_MAX / 2 + 1}, {small, SIZE_MAX / 2 + 1}};
    rayc_ref ref;
    CU_ASSERT_NOT_EQUAL(rayc_put_iov(parts, 2, &ref), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "add up to more than the address space"));

    /* More than the store holds: the store refuses it, with its sizes. */
    size_t big = 200 * MiB;
    char *buf = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memset(buf, 7, big);
    CU_ASSERT_NOT_EQUAL(rayc_put(buf, big, &ref), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(rayc_last_error(), "cannot store"));

    /* A large put (into the store) reads back intact, in parts. */
    size_t size = 8 * MiB;
    for (size_t k = 0; k < size; k++)
        buf[k] = (char)(k * 31 + 7);
    rayc_iov two[2] = {{buf, size / 2}, {buf + size / 2, size - size / 2}};
    int64_t mapped_before = rss_shmem(getpid());
    CU_ASSERT_EQUAL_FATAL(rayc_put_iov(two, 2, &ref), 0);
    CU_ASSERT(resident_bytes(i) >= size); /* in the store's file... */
    CU_ASSERT(rss_shmem(getpid()) - mapped_before < (int64_t)(size / 2)); /* ...not via our mapping */
    rayc_object o;
    CU_ASSERT_EQUAL_FATAL(rayc_get(&ref, 1, 60000, &o), 0);
    CU_ASSERT_EQUAL(o.size, size);
    CU_ASSERT(o.size == size && memcmp(o.data, buf, size) == 0);
    rayc_object_release(&o, 1);
    rayc_ref_release(&ref);
    free(buf);
    rayc_shutdown();
    harness_cluster_destroy(&C);
}

/* The store-put path's checks, from librayc (core/core_int.h). */
int core_store_span_check(uint64_t store_size, uint64_t offset, uint64_t size);
int core_iov_total(const rayc_iov *parts, size_t n, size_t *total);

static void test_store_put_checks(void)
{
    CU_ASSERT_EQUAL(core_store_span_check(STORE, 0, STORE), 0);
    CU_ASSERT_EQUAL(core_store_span_check(STORE, STORE - 1, 1), 0);
    CU_ASSERT_EQUAL(core_store_span_check(STORE, STORE, 0), 0);
    CU_ASSERT_NOT_EQUAL(core_store_span_check(STORE, STORE - 1, 2), 0);
    CU_ASSERT_NOT_EQUAL(core_store_span_check(STORE, STORE + 1, 0), 0);
    /* offset + size wraps around 2^64 to a small number: still outside. */
    CU_ASSERT_NOT_EQUAL(core_store_span_check(STORE, UINT64_MAX - 10, 100), 0);
    CU_ASSERT_NOT_EQUAL(core_store_span_check(STORE, 100, UINT64_MAX - 10), 0);
    static char b[4];
    rayc_iov ok[3] = {{b, 1}, {NULL, 0}, {b, 3}};
    size_t total = 0;
    CU_ASSERT_EQUAL(core_iov_total(ok, 3, &total), 0);
    CU_ASSERT_EQUAL(total, 4);
    rayc_iov wrap[2] = {{b, SIZE_MAX}, {b, 1}};
    CU_ASSERT_NOT_EQUAL(core_iov_total(wrap, 2, &total), 0);
}

static const unit_case cases[] = {
    UNIT_CASE(test_store_put_checks),
    UNIT_CASE(test_prefault_on_by_default),
    UNIT_CASE(test_prefault_off),
    UNIT_CASE(test_prefault_bounded),
    UNIT_CASE(test_put_path),
};

int main(void)
{
    return unit_run("store_prefault", cases, UNIT_N(cases));
}
