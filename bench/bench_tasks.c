/*
 * Task and object benchmarks under Ray's microbenchmark names (ray_perf.py), each on a
 * local rayc cluster started for the run (a GCS and one raylet with 2 CPUs, as the CI
 * machine has), with the same shapes as Ray's:
 *
 *   single_client_tasks_sync           submit a no-op task, get its 2-byte result, repeat
 *   single_client_tasks_async          submit 1,000, get them all, repeat (tasks/s)
 *   multi_client_tasks_async           the same from 2 driver processes at once (tasks/s)
 *   single_client_put_calls_Plasma_Store  rayc_put of a small value (puts/s)
 *   single_client_get_calls_Plasma_Store  rayc_get of a ready small object (gets/s)
 *   single_client_put_gigabytes        rayc_put of 800 MB (GB/s), vs memcpy of this run
 *   single_client_tasks_and_get_batch  1,000 tasks submitted and got (batches/s)
 *   single_client_wait_1k_refs         rayc_wait on 1,000 finished refs (waits/s)
 *   driver_rss_1m_tasks                the driver's private RSS (RssAnon: the shared-memory
 *                                      store it maps would hide leaks) after 10,000 and after
 *                                      1,000,000 tasks (MiB)
 *   worker_idle_rss                    an idle rayc-worker's RSS (MiB)
 *
 * RPC-bound figures are reported against rpc_echo_sync / rpc_echo_async of the same run;
 * where bench/peers/dask_micro.py can run (Debian's python3-distributed), Dask's figure
 * for the same operation is reported beside it.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_cluster.h"
#include "bench_proc.h"
#include "bench_rpc.h"
#include "rayc.h"
#include "rc_json.h"
#include "rc_time.h"

/* ---- the cluster of this run ---------------------------------------------------------- */

int bench_cluster_init(bench_ctx *b)
{
    if (rayc_is_initialized())
        return 0;
    char lib[4200];
    snprintf(lib, sizeof(lib), "%s/../lib/libbench_functions.so", bench_bin_dir(b));
    setenv("RAYC_CODE_SEARCH_PATH", lib, 1);
    setenv("RAYC_BIN_DIR", bench_bin_dir(b), 1);
    if (!getenv("RAYC_SESSION_ROOT"))
        setenv("RAYC_SESSION_ROOT", bench_tmpdir(), 1);
    rayc_init_options o;
    rayc_init_options_init(&o);
    o.num_cpus = 2;
    o.resources_json = "{\"custom\": 100}"; /* placement_group_create/removal's bundles */
    o.address = getenv("RAYC_BENCH_ADDRESS"); /* an existing cluster, else a local one */
    if (rayc_init(&o) != 0) {
        fprintf(stderr, "  cannot start a local cluster: %s\n", rayc_last_error());
        return -1;
    }
    /* Warm up: start the workers and fill the lease path once. */
    rayc_ref refs[64];
    for (int i = 0; i < 64; i++)
        rayc_submit("noop", NULL, 0, NULL, &refs[i]);
    rayc_object outs[64];
    rayc_get(refs, 64, 60000, outs);
    rayc_object_release(outs, 64);
    for (int i = 0; i < 64; i++)
        rayc_ref_release(&refs[i]);
    atexit(rayc_shutdown);
    return 0;
}

/* ---- Dask, the peer ------------------------------------------------------------------- */

static int dask_done;

/* Runs bench/peers/dask_micro.py once and records its figures as "dask:<name>". */
void bench_run_dask(bench_ctx *b)
{
    if (dask_done)
        return;
    dask_done = 1;
    if (getenv("RAYC_BENCH_NO_PEERS")) /* for profiling rayc alone */
        return;
    char script[4200];
    snprintf(script, sizeof(script), "%s/../../bench/peers/dask_micro.py", bench_bin_dir(b));
    if (access(script, R_OK) != 0 || access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "  (Dask peer not available: %s or /usr/bin/python3 missing)\n", script);
        return;
    }
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' --seconds %.1f 2>%s/dask.log", script,
             (double)bench_duration_ms(b) / 1000.0, bench_tmpdir());
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), p)) {
        rc_json *j;
        if (rc_json_parse(line, strlen(line), &j, NULL, 0) < 0)
            continue;
        const rc_json *name = rc_json_get(j, "name"), *value = rc_json_get(j, "value"), *unit = rc_json_get(j, "unit");
        if (name && value && unit && name->type == RC_JSON_STRING && value->type == RC_JSON_NUMBER) {
            char full[256];
            snprintf(full, sizeof(full), "dask:%s", name->str);
            bench_report(b, full, value->number, unit->str, NULL, 0);
        }
        rc_json_free(j);
    }
    if (pclose(p) != 0)
        fprintf(stderr, "  (the Dask peer failed; see %s/dask.log)\n", bench_tmpdir());
}

void bench_report_vs(bench_ctx *b, const char *name, double value, const char *unit, const char *floor)
{
    bench_report(b, name, value, unit, floor, floor ? bench_floor(b, floor) : 0);
    char dask[256];
    snprintf(dask, sizeof(dask), "dask:%s", name);
    double peer = bench_lookup(b, dask);
    if (peer > 0) {
        char vs[256];
        snprintf(vs, sizeof(vs), "%s_vs_dask", name);
        bench_report(b, vs, value, unit, "dask", peer);
    }
}

const char *bench_cluster_address(char *buf, size_t len)
{
    const char *address = getenv("RAYC_BENCH_ADDRESS");
    if (address)
        return address;
    /* The local cluster's address is in its session. */
    char path[512];
    snprintf(path, sizeof(path), "%s/session_latest/gcs_address", getenv("RAYC_SESSION_ROOT"));
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    const char *got = fgets(buf, (int)len, f) ? buf : NULL;
    fclose(f);
    if (got)
        buf[strcspn(buf, "\n")] = 0;
    return got;
}

/* ---- tasks ---------------------------------------------------------------------------- */

static double bench__tasks_async_rate(int64_t duration_ms)
{
    enum { BATCH = 1000 };
    static rayc_ref refs[BATCH];
    static rayc_object outs[BATCH];
    int64_t n = 0, start = rc_mono_ns(), end = start + duration_ms * 1000000;
    while (rc_mono_ns() < end) {
        for (int i = 0; i < BATCH; i++)
            rayc_submit("noop", NULL, 0, NULL, &refs[i]);
        rayc_get(refs, BATCH, -1, outs);
        rayc_object_release(outs, BATCH);
        for (int i = 0; i < BATCH; i++)
            rayc_ref_release(&refs[i]);
        n += BATCH;
    }
    return (double)n / ((double)(rc_mono_ns() - start) / 1e9);
}

void bench_tasks_sync(bench_ctx *b)
{
    bench_run_dask(b);
    bench_floor(b, "rpc_echo_sync");
    if (bench_cluster_init(b) < 0)
        return;
    int64_t n = 0, start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    while (rc_mono_ns() < end) {
        rayc_ref r;
        rayc_object o;
        rayc_submit("noop", NULL, 0, NULL, &r);
        rayc_get(&r, 1, -1, &o);
        rayc_object_release(&o, 1);
        rayc_ref_release(&r);
        n++;
    }
    bench_report_vs(b, "single_client_tasks_sync", (double)n / ((double)(rc_mono_ns() - start) / 1e9), "tasks/s",
                     "rpc_echo_sync");
}

void bench_tasks_async(bench_ctx *b)
{
    bench_run_dask(b);
    bench_floor(b, "rpc_echo_async");
    if (bench_cluster_init(b) < 0)
        return;
    bench_report_vs(b, "single_client_tasks_async", bench__tasks_async_rate(bench_duration_ms(b)), "tasks/s",
                     "rpc_echo_async");
}

/* `rayc-bench --tasks-client ADDRESS MS`: one of the multi-client drivers. */
int bench_tasks_client(const char *address, int64_t ms)
{
    rayc_init_options o;
    rayc_init_options_init(&o);
    o.address = address;
    if (rayc_init(&o) != 0)
        return 1;
    double rate = bench__tasks_async_rate(ms);
    printf("%.3f\n", rate);
    rayc_shutdown();
    return 0;
}

double bench_clients_total(bench_ctx *b, const char *mode, int clients)
{
    char addr[256];
    const char *address = bench_cluster_address(addr, sizeof(addr));
    if (!address) {
        fprintf(stderr, "  %s: no cluster address\n", mode);
        return -1;
    }
    FILE *pipes[16];
    char cmd[4400];
    for (int i = 0; i < clients && i < 16; i++) {
        snprintf(cmd, sizeof(cmd), "'%s/rayc-bench' %s '%s' %lld", bench_bin_dir(b), mode, address,
                 (long long)bench_duration_ms(b));
        pipes[i] = popen(cmd, "r");
    }
    double total = 0;
    for (int i = 0; i < clients && i < 16; i++) {
        char line[64] = "";
        if (pipes[i] && fgets(line, sizeof(line), pipes[i]))
            total += atof(line);
        if (pipes[i])
            pclose(pipes[i]);
    }
    return total;
}

void bench_multi_client_tasks(bench_ctx *b)
{
    bench_run_dask(b);
    if (bench_cluster_init(b) < 0)
        return;
    double total = bench_clients_total(b, "--tasks-client", 2);
    if (total >= 0)
        bench_report_vs(b, "multi_client_tasks_async", total, "tasks/s", "rpc_echo_async");
}

void bench_tasks_and_get_batch(bench_ctx *b)
{
    bench_run_dask(b);
    if (bench_cluster_init(b) < 0)
        return;
    static rayc_ref refs[1000];
    static rayc_object outs[1000];
    int64_t n = 0, start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    while (rc_mono_ns() < end) {
        for (int i = 0; i < 1000; i++)
            rayc_submit("noop", NULL, 0, NULL, &refs[i]);
        rayc_get(refs, 1000, -1, outs);
        rayc_object_release(outs, 1000);
        for (int i = 0; i < 1000; i++)
            rayc_ref_release(&refs[i]);
        n++;
    }
    bench_report_vs(b, "single_client_tasks_and_get_batch", (double)n / ((double)(rc_mono_ns() - start) / 1e9),
                     "batches/s", NULL);
}

void bench_wait_1k_refs(bench_ctx *b)
{
    bench_run_dask(b);
    if (bench_cluster_init(b) < 0)
        return;
    static rayc_ref refs[1000];
    static uint8_t ready[1000];
    int64_t n = 0, start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    while (rc_mono_ns() < end) {
        for (int i = 0; i < 1000; i++)
            rayc_submit("noop", NULL, 0, NULL, &refs[i]);
        rayc_wait(refs, 1000, 1000, -1, 0, ready);
        for (int i = 0; i < 1000; i++)
            rayc_ref_release(&refs[i]);
        n++;
    }
    bench_report_vs(b, "single_client_wait_1k_refs", (double)n / ((double)(rc_mono_ns() - start) / 1e9), "waits/s",
                     NULL);
}

/* ---- objects -------------------------------------------------------------------------- */

void bench_put_calls(bench_ctx *b)
{
    bench_run_dask(b);
    if (bench_cluster_init(b) < 0)
        return;
    int64_t value = 0, n = 0, start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    while (rc_mono_ns() < end) {
        for (int i = 0; i < 1000; i++) {
            rayc_ref r;
            rayc_put(&value, sizeof(value), &r);
            rayc_ref_release(&r);
        }
        n += 1000;
    }
    bench_report_vs(b, "single_client_put_calls_Plasma_Store", (double)n / ((double)(rc_mono_ns() - start) / 1e9),
                     "puts/s", NULL);
}

void bench_get_calls(bench_ctx *b)
{
    bench_run_dask(b);
    if (bench_cluster_init(b) < 0)
        return;
    int64_t value = 7;
    rayc_ref r;
    rayc_put(&value, sizeof(value), &r);
    int64_t n = 0, start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    while (rc_mono_ns() < end) {
        for (int i = 0; i < 1000; i++) {
            rayc_object o;
            rayc_get(&r, 1, -1, &o);
            rayc_object_release(&o, 1);
        }
        n += 1000;
    }
    rayc_ref_release(&r);
    bench_report_vs(b, "single_client_get_calls_Plasma_Store", (double)n / ((double)(rc_mono_ns() - start) / 1e9),
                     "gets/s", NULL);
}

void bench_put_gigabytes(bench_ctx *b)
{
    bench_run_dask(b);
    if (bench_cluster_init(b) < 0)
        return;
    size_t size = 800u * 1000 * 1000;
    char *buf = malloc(size), *dst = malloc(size);
    if (!buf || !dst) {
        free(buf);
        free(dst);
        return;
    }
    memset(buf, 1, size);
    memset(dst, 0, size);
    /* The peer of this run: plain memcpy of the same size (after one untimed copy: the
     * first touch of fresh pages costs far more than the copy). */
    memcpy(dst, buf, size);
    int64_t start = rc_mono_ns();
    int reps = 0;
    do {
        memcpy(dst, buf, size);
        reps++;
    } while (rc_mono_ns() - start < bench_duration_ms(b) * 1000000 / 2 || reps < 2);
    double memcpy_gbs = (double)size * reps / ((double)(rc_mono_ns() - start) / 1e9) / 1e9;
    free(dst);
    bench_report(b, "memcpy_gigabytes", memcpy_gbs, "GB/s", NULL, 0);
    start = rc_mono_ns();
    reps = 0;
    int failed = 0;
    do {
        rayc_ref r;
        if (rayc_put(buf, size, &r) != 0) {
            fprintf(stderr, "  put of %zu bytes failed: %s\n", size, rayc_last_error());
            failed = 1;
            break;
        }
        rayc_ref_release(&r);
        reps++;
        rc_sleep_ms(0);
    } while (rc_mono_ns() - start < bench_duration_ms(b) * 1000000 || reps < 2);
    double secs = (double)(rc_mono_ns() - start) / 1e9;
    free(buf);
    if (!failed)
        bench_report(b, "single_client_put_gigabytes", (double)size * reps / secs / 1e9, "GB/s", "memcpy_gigabytes",
                     memcpy_gbs);
}

/* ---- memory --------------------------------------------------------------------------- */

void bench_driver_rss(bench_ctx *b)
{
    if (bench_cluster_init(b) < 0)
        return;
    const char *env = getenv("RAYC_BENCH_RSS_TASKS");
    int64_t total = env ? atoll(env) : 1000000;
    if (total < 20000)
        total = 20000;
    static rayc_ref refs[1000];
    static rayc_object outs[1000];
    double rss_10k = 0;
    for (int64_t done = 0; done < total; done += 1000) {
        for (int i = 0; i < 1000; i++)
            rayc_submit("noop", NULL, 0, NULL, &refs[i]);
        rayc_get(refs, 1000, -1, outs);
        rayc_object_release(outs, 1000);
        for (int i = 0; i < 1000; i++)
            rayc_ref_release(&refs[i]);
        if (done + 1000 == 10000)
            rss_10k = (double)bench_rss_anon_kib(getpid()) / 1024.0;
    }
    rc_sleep_ms(500); /* let the last releases land */
    double rss_end = (double)bench_rss_anon_kib(getpid()) / 1024.0;
    bench_report(b, "driver_rss_after_10k_tasks", rss_10k, "MiB", NULL, 0);
    char name[64];
    snprintf(name, sizeof(name), "driver_rss_after_%lldk_tasks", (long long)(total / 1000));
    bench_report(b, name, rss_end, "MiB", "driver_rss_after_10k_tasks", rss_10k);
}

void bench_worker_idle_rss(bench_ctx *b)
{
    if (bench_cluster_init(b) < 0)
        return;
    rc_sleep_ms(1000);
    /* The workers of this machine: processes named rayc-worker. */
    DIR *d = opendir("/proc");
    struct dirent *e;
    double max_mib = 0;
    int n = 0;
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0)
            continue;
        char path[64], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "rayc-worker", 11)) {
            double mib = (double)bench_rss_kib(pid) / 1024.0;
            if (mib > max_mib)
                max_mib = mib;
            n++;
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    if (n)
        bench_report(b, "worker_idle_rss", max_mib, "MiB", NULL, 0);
    else
        fprintf(stderr, "  worker_idle_rss: no rayc-worker process found\n");
}
