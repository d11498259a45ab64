/*
 * Actor and placement-group benchmarks under Ray's microbenchmark names (ray_perf.py), on
 * the local cluster of bench_tasks.c:
 *
 *   1_1_actor_calls_sync        one caller, one actor: call, get, repeat (calls/s)
 *   1_1_actor_calls_async       one caller, one actor: 1,000 calls, then get them all
 *   1_1_actor_calls_concurrent  the same to an actor with max_concurrency 16
 *   1_n_actor_calls_async       one caller, 4 actors: 1,000 calls spread over them
 *   n_n_actor_calls_async       2 caller processes, each on its own 2 actors
 *   placement_group_create/removal  100 groups of one bundle {custom: 0.001} created,
 *                               waited for and removed (groups/s)
 *
 * Call rates are reported against rpc_echo_sync / rpc_echo_async of the same run (an actor
 * call is one RPC from caller to actor, as an echo is) and against Dask's actors where the
 * Dask peer runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cluster.h"
#include "bench_proc.h"
#include "bench_rpc.h"
#include "rayc.h"
#include "rc_time.h"

static int bench__actor(rayc_actor *out, int max_concurrency, const char *name)
{
    rayc_actor_options o;
    rayc_actor_options_init(&o);
    o.max_concurrency = max_concurrency;
    o.name = name;
    if (rayc_actor_create("BenchActor", NULL, 0, &o, out) != 0) {
        fprintf(stderr, "  cannot create the actor: %s\n", rayc_last_error());
        return -1;
    }
    rayc_ref r;
    rayc_object obj;
    rayc_actor_call(out, "small_value", NULL, 0, NULL, &r);
    rayc_get(&r, 1, 60000, &obj);
    int rc = obj.error ? -1 : 0;
    if (rc)
        fprintf(stderr, "  the actor did not start: %s\n", obj.error_message);
    rayc_object_release(&obj, 1);
    rayc_ref_release(&r);
    return rc;
}

/* Batches of 1,000 calls over n actors for ms milliseconds; calls per second. */
static double bench__calls_async(const rayc_actor *actors, int n, int64_t ms)
{
    enum { BATCH = 1000 };
    static rayc_ref refs[BATCH];
    static rayc_object outs[BATCH];
    int64_t done = 0, start = rc_mono_ns(), end = start + ms * 1000000;
    while (rc_mono_ns() < end) {
        for (int i = 0; i < BATCH; i++)
            rayc_actor_call(&actors[i % n], "small_value", NULL, 0, NULL, &refs[i]);
        rayc_get(refs, BATCH, -1, outs);
        rayc_object_release(outs, BATCH);
        for (int i = 0; i < BATCH; i++)
            rayc_ref_release(&refs[i]);
        done += BATCH;
    }
    return (double)done / ((double)(rc_mono_ns() - start) / 1e9);
}

void bench_actor_calls_sync(bench_ctx *b)
{
    bench_run_dask(b);
    bench_floor(b, "rpc_echo_sync");
    rayc_actor a;
    if (bench_cluster_init(b) < 0 || bench__actor(&a, 1, NULL) < 0)
        return;
    int64_t n = 0, start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    while (rc_mono_ns() < end) {
        rayc_ref r;
        rayc_object o;
        rayc_actor_call(&a, "small_value", NULL, 0, NULL, &r);
        rayc_get(&r, 1, -1, &o);
        rayc_object_release(&o, 1);
        rayc_ref_release(&r);
        n++;
    }
    bench_report_vs(b, "1_1_actor_calls_sync", (double)n / ((double)(rc_mono_ns() - start) / 1e9), "calls/s",
                    "rpc_echo_sync");
    rayc_actor_kill(&a, 1);
}

void bench_actor_calls_async(bench_ctx *b)
{
    bench_run_dask(b);
    bench_floor(b, "rpc_echo_async");
    rayc_actor a;
    if (bench_cluster_init(b) < 0 || bench__actor(&a, 1, NULL) < 0)
        return;
    bench_report_vs(b, "1_1_actor_calls_async", bench__calls_async(&a, 1, bench_duration_ms(b)), "calls/s",
                    "rpc_echo_async");
    rayc_actor_kill(&a, 1);
}

void bench_actor_calls_concurrent(bench_ctx *b)
{
    bench_floor(b, "rpc_echo_async");
    rayc_actor a;
    if (bench_cluster_init(b) < 0 || bench__actor(&a, 16, NULL) < 0)
        return;
    bench_report_vs(b, "1_1_actor_calls_concurrent", bench__calls_async(&a, 1, bench_duration_ms(b)), "calls/s",
                    "rpc_echo_async");
    rayc_actor_kill(&a, 1);
}

void bench_actor_calls_1_n(bench_ctx *b)
{
    enum { N = 4 };
    bench_floor(b, "rpc_echo_async");
    rayc_actor a[N];
    if (bench_cluster_init(b) < 0)
        return;
    for (int i = 0; i < N; i++)
        if (bench__actor(&a[i], 1, NULL) < 0)
            return;
    bench_report_vs(b, "1_n_actor_calls_async", bench__calls_async(a, N, bench_duration_ms(b)), "calls/s",
                    "rpc_echo_async");
    for (int i = 0; i < N; i++)
        rayc_actor_kill(&a[i], 1);
}

/* `rayc-bench --actors-client ADDRESS MS`: one caller of n_n_actor_calls_async, on actors of
 * its own. */
int bench_actors_client(const char *address, int64_t ms)
{
    rayc_init_options o;
    rayc_init_options_init(&o);
    o.address = address;
    if (rayc_init(&o) != 0)
        return 1;
    rayc_actor a[2];
    for (int i = 0; i < 2; i++)
        if (bench__actor(&a[i], 1, NULL) < 0)
            return 1;
    double rate = bench__calls_async(a, 2, ms);
    printf("%.3f\n", rate);
    rayc_shutdown();
    return 0;
}

void bench_actor_calls_n_n(bench_ctx *b)
{
    bench_floor(b, "rpc_echo_async");
    if (bench_cluster_init(b) < 0)
        return;
    double total = bench_clients_total(b, "--actors-client", 2);
    if (total >= 0)
        bench_report_vs(b, "n_n_actor_calls_async", total, "calls/s", "rpc_echo_async");
}

void bench_pg_create_removal(bench_ctx *b)
{
    enum { NUM_PGS = 100 };
    if (bench_cluster_init(b) < 0)
        return;
    rayc_bundle bundle;
    memset(&bundle, 0, sizeof(bundle));
    bundle.resources[0] = (rayc_resource){"custom", 0.001};
    bundle.n_resources = 1;
    static rayc_pg pgs[NUM_PGS];
    int64_t done = 0, start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    while (rc_mono_ns() < end) {
        for (int i = 0; i < NUM_PGS; i++) {
            if (rayc_pg_create(&bundle, 1, RAYC_PG_PACK, NULL, &pgs[i]) != 0) {
                fprintf(stderr, "  placement_group_create: %s\n", rayc_last_error());
                return;
            }
        }
        for (int i = 0; i < NUM_PGS; i++) {
            if (rayc_pg_wait(&pgs[i], 30000) != 0) {
                fprintf(stderr, "  placement_group wait: %s\n", rayc_last_error());
                return;
            }
        }
        for (int i = 0; i < NUM_PGS; i++)
            rayc_pg_remove(&pgs[i]);
        done += NUM_PGS;
    }
    bench_report(b, "placement_group_create/removal", (double)done / ((double)(rc_mono_ns() - start) / 1e9),
                 "groups/s", NULL, 0);
}
