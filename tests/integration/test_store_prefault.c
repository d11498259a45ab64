/*
 * The object store's first touch, end to end on real local clusters: a raylet faults its
 * store in after start (its log says how much, the blocks of the store's file agree, and
 * the raylet does not map the pages itself), not at all with
 * --object-store-prefault false, and only down to the available-memory floor
 * (object_store_prefault_keep_available). And the one store-put path: a put whose parts
 * overflow is refused with a clear error, a put too large for the store is refused by the
 * store, a large put is written through the store's file (not faulted in through the
 * driver's mapping) and reads back intact, and the bounds check holds for offsets and sizes
 * that wrap around. A driver pre-faults the low part of its own mapping of the store
 * (object_store_client_prefault_mb): up to the limit and no further, not at all at 0, and
 * not at all (puts still intact) where the kernel refuses MADV_POPULATE_WRITE; puts that
 * straddle the pre-faulted part read back intact.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* The store-put path, with the raylet's and the driver's pre-fault off: refusals, and a
 * large put written through the store's file (the driver's own mapping is not faulted in
 * by it). */
static void test_put_path(void)
{
    setenv("RAYC_object_store_client_prefault_mb", "0", 1);
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
    unsetenv("RAYC_object_store_client_prefault_mb");
}

/* Puts and gets size bytes of a pattern (seeded by seed) in two parts; 0 if it reads back
 * intact. */
static int put_roundtrip(size_t size, int seed)
{
    char *buf = malloc(size);
    if (!buf)
        return -1;
    for (size_t k = 0; k < size; k++)
        buf[k] = (char)(k * 131 + (size_t)seed);
    rayc_iov two[2] = {{buf, size / 3}, {buf + size / 3, size - size / 3}};
    rayc_ref ref;
    int rc = -1;
    if (rayc_put_iov(two, 2, &ref) == 0) {
        rayc_object o;
        if (rayc_get(&ref, 1, 60000, &o) == 0) {
            rc = o.size == size && memcmp(o.data, buf, size) == 0 ? 0 : -1;
            rayc_object_release(&o, 1);
        }
        rayc_ref_release(&ref);
    }
    free(buf);
    return rc;
}

/* Waits (up to 60 s) until this process maps at least want bytes of shared memory; the
 * last value seen. */
static int64_t wait_rss_shmem(int64_t want)
{
    int64_t now = rss_shmem(getpid());
    for (int tries = 0; tries < 600 && now < want; tries++) {
        rc_sleep_ms(100);
        now = rss_shmem(getpid());
    }
    return now;
}

/* A driver pre-faults the low part of its mapping up to object_store_client_prefault_mb:
 * with the raylet's own pre-fault off, the driver's allocates the store's pages itself and
 * maps them (its RssShmem), and stops at the limit. Puts that lie below, across and above
 * the pre-faulted part read back intact. */
static void test_driver_prefault_bounded(void)
{
    setenv("RAYC_object_store_client_prefault_mb", "32", 1);
    setenv("RAYC_object_store_prefault_keep_available", "0.02", 1);
    int i;
    const char *flags[] = {"--num-cpus", "1", "--object-store-memory", "96MiB", "--object-store-prefault", "false",
                           NULL};
    CU_ASSERT_EQUAL_FATAL(start(flags, &i), 0);
    int64_t before = rss_shmem(getpid());
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = C.gcs_address;
    CU_ASSERT_EQUAL_FATAL(rayc_init(&opts), 0);
    int64_t mapped = wait_rss_shmem(before + (int64_t)(32 * MiB));
    CU_ASSERT(mapped >= before + (int64_t)(32 * MiB));
    CU_ASSERT(resident_bytes(i) >= 32 * MiB); /* the driver allocated them in the store's file */
    rc_sleep_ms(1500);                        /* it would have gone on by now */
    mapped = rss_shmem(getpid());
    CU_ASSERT(mapped - before <= (int64_t)(36 * MiB));
    CU_ASSERT(resident_bytes(i) <= 36 * MiB);
    /* First fit from the bottom: 24 MiB below the limit, then 40 MiB across it (wherever
     * the first one's space is by then), then 24 MiB and a bit. */
    CU_ASSERT_EQUAL(put_roundtrip(24 * MiB, 1), 0);
    CU_ASSERT_EQUAL(put_roundtrip(40 * MiB, 2), 0);
    CU_ASSERT_EQUAL(put_roundtrip(24 * MiB + 12345, 3), 0);
    rayc_shutdown();
    harness_cluster_destroy(&C);
    unsetenv("RAYC_object_store_client_prefault_mb");
    unsetenv("RAYC_object_store_prefault_keep_available");
}

/* Off: the driver maps nothing of the store by itself. */
static void test_driver_prefault_off(void)
{
    setenv("RAYC_object_store_client_prefault_mb", "0", 1);
    int i;
    const char *flags[] = {"--num-cpus", "1", "--object-store-memory", "96MiB", NULL};
    CU_ASSERT_EQUAL_FATAL(start(flags, &i), 0);
    int64_t before = rss_shmem(getpid());
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = C.gcs_address;
    CU_ASSERT_EQUAL_FATAL(rayc_init(&opts), 0);
    rc_sleep_ms(2000);
    CU_ASSERT(rss_shmem(getpid()) - before <= (int64_t)(4 * MiB));
    CU_ASSERT_EQUAL(put_roundtrip(24 * MiB, 4), 0);
    rayc_shutdown();
    harness_cluster_destroy(&C);
    unsetenv("RAYC_object_store_client_prefault_mb");
}

/* The child of test_driver_prefault_refused (this program run again with
 * --populate-refused <gcs address>): madvise(MADV_POPULATE_WRITE) fails with EINVAL here,
 * as on a kernel older than 5.14, by a seccomp filter; the driver then pre-faults nothing
 * and its puts go through the store's file. Exit status 0 if all held, else the step. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static int populate_refused_child(const char *gcs_address)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_WRITE, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        return 10;
    size_t len = 1 << 20;
    void *probe = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED || madvise(probe, len, MADV_POPULATE_WRITE) == 0 || errno != EINVAL)
        return 11; /* the filter does not refuse it */
    munmap(probe, len);
    setenv("RAYC_object_store_client_prefault_mb", "64", 1);
    int64_t before = rss_shmem(getpid());
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.address = gcs_address;
    if (rayc_init(&opts) != 0)
        return 12;
    rc_sleep_ms(2000);
    int rc = 0;
    if (rss_shmem(getpid()) - before > (int64_t)(4 * MiB))
        rc = 13; /* something faulted the mapping in after all */
    else if (put_roundtrip(40 * MiB, 5) != 0)
        rc = 14;
    rayc_shutdown();
    return rc;
}

static void test_driver_prefault_refused(void)
{
    int i;
    const char *flags[] = {"--num-cpus", "1", "--object-store-memory", "96MiB", NULL};
    CU_ASSERT_EQUAL_FATAL(start(flags, &i), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        char *argv[] = {"test_store_prefault", "--populate-refused", C.gcs_address, NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "populate-refused child: %s %d\n", WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
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
    UNIT_CASE(test_driver_prefault_bounded),
    UNIT_CASE(test_driver_prefault_off),
    UNIT_CASE(test_driver_prefault_refused),
};

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--populate-refused"))
        return populate_refused_child(argv[2]);
    return unit_run("store_prefault", cases, UNIT_N(cases));
}
