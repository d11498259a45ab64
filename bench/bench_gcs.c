/*
 * GCS benchmarks, each against memory and Redis storage where the issue asks for both:
 *   gcs_kv_put_sync, gcs_kv_get_sync  one call at a time      vs rpc_echo_sync
 *   gcs_kv_get_async                  64 calls in flight      vs rpc_echo_async
 *   gcs_kv_put_async                  64 calls in flight      vs rpc_echo_async
 *   ..._redis                         the same with Redis storage, and (..._vs_redis) against
 *                                     bare hiredis on the same redis-server with as many
 *                                     commands in flight (HSET/HGET into a hash, like the GCS)
 *   gcs_register_1000_nodes           seconds for 1,000 simulated nodes to register, then
 *                                     the GCS's CPU while they report at 1 Hz, and its RSS
 *   raylet_idle_rss                   resident memory of an idle raylet (and of the GCS)
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_proc.h"
#include "bench_rpc.h"
#include "gcs_client.h"
#include "rayc_auth.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rc_ids.h"
#include "rc_time.h"

typedef struct bench__gcs {
    pid_t pid;
    int port;
    uv_loop_t loop;
    rpc_ctx *rpc;
    gcs_client *gcs;
} bench__gcs;

static int bench__gcs_open(bench__gcs *g, bench_ctx *b, int redis_port, char *const env[])
{
    memset(g, 0, sizeof(*g));
    g->pid = bench_start_gcs(bench_bin_dir(b), redis_port, env, &g->port);
    if (g->pid < 0) {
        fprintf(stderr, "  cannot start rayc-gcs (logs in %s)\n", bench_tmpdir());
        return -1;
    }
    if (bench_become_admin(bench_gcs_auth_dir()) < 0) {
        fprintf(stderr, "  cannot read the GCS's CA and admin token in %s\n", bench_gcs_auth_dir());
        return -1;
    }
    uv_loop_init(&g->loop);
    rpc_ctx_create(&g->loop, &g->rpc);
    char addr[64], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g->port);
    gcs_client_create(g->rpc, addr, &g->gcs);
    if (gcs_client_connect_sync(g->gcs, 10000, err, sizeof(err)) < 0) {
        fprintf(stderr, "  %s\n", err);
        return -1;
    }
    return 0;
}

static void bench__gcs_close(bench__gcs *g)
{
    if (g->gcs)
        gcs_client_destroy(g->gcs);
    if (g->rpc)
        rpc_ctx_destroy(g->rpc);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    uv_loop_close(&g->loop);
    bench_stop(g->pid);
}

/* ---- KV ----------------------------------------------------------------------------- */

typedef struct bench__kv {
    bench__gcs *g;
    int put;
    uint64_t n;
    char key[32];
    char value[100];
} bench__kv;

static int bench__issue_kv(void *ctx, rpc_client_cb cb, void *cbarg)
{
    bench__kv *kv = ctx;
    int klen = snprintf(kv->key, sizeof(kv->key), "key%llu", (unsigned long long)(kv->n++ % 1000));
    if (kv->put) {
        Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
        req.namespace_.data = (uint8_t *)"bench";
        req.namespace_.len = 5;
        req.key.data = (uint8_t *)kv->key;
        req.key.len = (size_t)klen;
        req.value.data = (uint8_t *)kv->value;
        req.value.len = sizeof(kv->value);
        req.overwrite = 1;
        return rpc_client_call(gcs_client_rpc(kv->g->gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                               "InternalKVPut", &req.base, 10000, cb, cbarg);
    }
    Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    req.namespace_.data = (uint8_t *)"bench";
    req.namespace_.len = 5;
    req.key.data = (uint8_t *)kv->key;
    req.key.len = (size_t)klen;
    return rpc_client_call(gcs_client_rpc(kv->g->gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                           "InternalKVGet", &req.base, 10000, cb, cbarg);
}

/* The bare hiredis rate of HSET (or HGET) on the same server, depth commands in flight
 * (pipelined; 1 is one command at a time). */
static double bench__hiredis_rate(int port, int set, int depth, int64_t duration_ms)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return 0;
    }
    freeReplyObject(redisCommand(c, "AUTH %s", BENCH_REDIS_PASSWORD));
    char value[100];
    memset(value, 'v', sizeof(value));
    uint64_t n = 0;
    int64_t start = rc_mono_ns(), end = start + duration_ms * 1000000;
    int broken = 0;
    while (!broken && rc_mono_ns() < end) {
        for (int i = 0; i < depth; i++) {
            char key[32];
            snprintf(key, sizeof(key), "peer:key%llu", (unsigned long long)((n + (uint64_t)i) % 1000));
            if (set)
                redisAppendCommand(c, "HSET RAYpeer@KV %s %b", key, value, sizeof(value));
            else
                redisAppendCommand(c, "HGET RAYpeer@KV %s", key);
        }
        for (int i = 0; i < depth; i++) {
            void *r;
            if (redisGetReply(c, &r) != REDIS_OK) {
                broken = 1;
                break;
            }
            freeReplyObject(r);
            n++;
        }
    }
    double secs = (double)(rc_mono_ns() - start) / 1e9;
    redisFree(c);
    return (double)n / secs;
}

/* Runs one KV figure against memory and against Redis storage. */
static void bench__kv_figure(bench_ctx *b, const char *name, int put, int in_flight, const char *floor_name)
{
    double floor = bench_floor(b, floor_name);
    char redis_name[96];
    snprintf(redis_name, sizeof(redis_name), "%s_redis", name);
    bench_redis redis;
    if (bench_redis_start(&redis) < 0) {
        fprintf(stderr, "  %s: cannot start redis-server\n", name);
        return;
    }
    for (int use_redis = 0; use_redis <= 1; use_redis++) {
        bench__gcs g;
        if (bench__gcs_open(&g, b, use_redis ? redis.port : 0, NULL) == 0) {
            bench__kv kv = {&g, put, 0, "", ""};
            memset(kv.value, 'v', sizeof(kv.value));
            if (!put) { /* the keys a get reads must exist */
                bench__kv fill = kv;
                fill.put = 1;
                bench_rate(&g.loop, 16, 100, bench__issue_kv, &fill);
            }
            bench_rate_result r = bench_rate(&g.loop, in_flight, bench_duration_ms(b), bench__issue_kv, &kv);
            bench_report(b, use_redis ? redis_name : name, r.per_second, "calls/s", floor_name, floor);
        }
        bench__gcs_close(&g);
    }
    /* The peer: what a user gets from Redis directly for the same operation, with the same
     * number of operations in flight. */
    char peer[64], vs[128];
    snprintf(peer, sizeof(peer), "redis_%s_%s", put ? "hset" : "hget", in_flight == 1 ? "sync" : "pipelined64");
    double peer_rate = bench__hiredis_rate(redis.port, put, in_flight, bench_duration_ms(b));
    bench_report(b, peer, peer_rate, "calls/s", NULL, 0);
    snprintf(vs, sizeof(vs), "%s_vs_redis", redis_name);
    bench_report(b, vs, bench_lookup(b, redis_name), "calls/s", peer, peer_rate);
    bench_redis_stop(&redis);
}

void bench_gcs_kv_put_sync(bench_ctx *b)
{
    bench__kv_figure(b, "gcs_kv_put_sync", 1, 1, "rpc_echo_sync");
}

void bench_gcs_kv_put_async(bench_ctx *b)
{
    bench__kv_figure(b, "gcs_kv_put_async", 1, 64, "rpc_echo_async");
}

void bench_gcs_kv_get_sync(bench_ctx *b)
{
    bench__kv_figure(b, "gcs_kv_get_sync", 0, 1, "rpc_echo_sync");
}

void bench_gcs_kv_get_async(bench_ctx *b)
{
    bench__kv_figure(b, "gcs_kv_get_async", 0, 64, "rpc_echo_async");
}

/* ---- 1,000 simulated nodes ---------------------------------------------------------- */

enum { BENCH__NODES = 1000 };

typedef struct bench__fleet {
    bench__gcs *g;
    uint8_t ids[BENCH__NODES][RC_NODE_ID_SIZE];
    int registered, failed, reported, outstanding;
    int next_report;
} bench__fleet;

static void bench__registered(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    bench__fleet *f = arg;
    f->outstanding--;
    if (st->code == GRPC_STATUS_OK && gcs_reply_status(reply, NULL) == GCS_STATUS_OK)
        f->registered++;
    else
        f->failed++;
    rpc_msg_free(reply);
}

static void bench__reported(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    bench__fleet *f = arg;
    f->outstanding--;
    if (st->code == GRPC_STATUS_OK && gcs_reply_status(reply, NULL) == GCS_STATUS_OK)
        f->reported++;
    else
        f->failed++;
    rpc_msg_free(reply);
}

/* A node of the simulated fleet: 8 CPUs, 1 GPU, memory, labels, like a market host. */
static void bench__send_node(bench__fleet *f, int i, int report)
{
    static const char *keys[] = {"CPU", "GPU", "memory", "object_store_memory", "node:10.0.0.1"};
    static const double values[] = {8, 1, 32e9, 8e9, 1};
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry e[5], *ep[5];
    for (int k = 0; k < 5; k++) {
        ray__rpc__gcs_node_info__resources_total_entry__init(&e[k]);
        e[k].key = (char *)keys[k];
        e[k].value = values[k] * (report && k == 0 ? 0.5 : 1);
        ep[k] = &e[k];
    }
    Ray__Rpc__GcsNodeInfo__LabelsEntry l = RAY__RPC__GCS_NODE_INFO__LABELS_ENTRY__INIT, *lp = &l;
    l.key = "rayc.io/provider";
    l.value = "bench";
    if (!report) {
        Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
        info.node_id.data = f->ids[i];
        info.node_id.len = RC_NODE_ID_SIZE;
        info.node_manager_address = "10.0.0.1";
        info.node_manager_port = 10000 + i;
        info.n_resources_total = 5;
        info.resources_total = ep;
        info.n_labels = 1;
        info.labels = &lp;
        Ray__Rpc__RegisterNodeRequest req = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
        req.node_info = &info;
        if (rpc_client_call(gcs_client_rpc(f->g->gcs), &ray__rpc__node_info_gcs_service__descriptor, "RegisterNode",
                            &req.base, 30000, bench__registered, f) == 0)
            f->outstanding++;
        return;
    }
    Ray__Rpc__ResourcesData d = RAY__RPC__RESOURCES_DATA__INIT;
    d.node_id.data = f->ids[i];
    d.node_id.len = RC_NODE_ID_SIZE;
    d.n_resources_total = d.n_resources_available = 5;
    d.resources_total = (Ray__Rpc__ResourcesData__ResourcesTotalEntry **)ep;
    d.resources_available = (Ray__Rpc__ResourcesData__ResourcesAvailableEntry **)ep;
    d.n_labels = 1;
    d.labels = (Ray__Rpc__ResourcesData__LabelsEntry **)&lp;
    d.node_manager_address = "10.0.0.1";
    Rayc__Rpc__ReportResourceUsageRequest req = RAYC__RPC__REPORT_RESOURCE_USAGE_REQUEST__INIT;
    req.resources = &d;
    if (rpc_client_call(gcs_client_rpc(f->g->gcs), &rayc__rpc__resource_report_gcs_service__descriptor,
                        "ReportResourceUsage", &req.base, 30000, bench__reported, f) == 0)
        f->outstanding++;
}

static void bench__report_tick(uv_timer_t *t)
{
    bench__fleet *f = t->data;
    /* 10 ms ticks, 10 nodes each: every node reports once per second. */
    for (int k = 0; k < BENCH__NODES / 100; k++) {
        bench__send_node(f, f->next_report, 1);
        f->next_report = (f->next_report + 1) % BENCH__NODES;
    }
}

void bench_gcs_register_1000_nodes(bench_ctx *b)
{
    /* Simulated nodes have no raylet to answer health checks: keep checks away. */
    char *env[] = {"RAYC_health_check_initial_delay_ms=3600000", NULL};
    bench__gcs g;
    static bench__fleet f;
    memset(&f, 0, sizeof(f));
    if (bench__gcs_open(&g, b, 0, env) < 0) {
        bench__gcs_close(&g);
        return;
    }
    f.g = &g;
    for (int i = 0; i < BENCH__NODES; i++)
        rc_id_random(f.ids[i], RC_NODE_ID_SIZE);
    int64_t start = rc_mono_ns();
    for (int i = 0; i < BENCH__NODES; i++)
        bench__send_node(&f, i, 0);
    while (f.outstanding)
        uv_run(&g.loop, UV_RUN_ONCE);
    double secs = (double)(rc_mono_ns() - start) / 1e9;
    if (f.registered != BENCH__NODES)
        fprintf(stderr, "  only %d of %d nodes registered\n", f.registered, BENCH__NODES);
    bench_report(b, "gcs_register_1000_nodes", secs, "s", NULL, 0);

    /* 1 Hz reports from every node, for a measured window. */
    uv_timer_t tick;
    uv_timer_init(&g.loop, &tick);
    tick.data = &f;
    int64_t window_ms = bench_duration_ms(b) < 3000 ? 3000 : bench_duration_ms(b);
    uv_timer_start(&tick, bench__report_tick, 0, 10);
    double cpu0 = bench_cpu_seconds(g.pid);
    int64_t t0 = rc_mono_ns();
    while (rc_mono_ns() - t0 < window_ms * 1000000)
        uv_run(&g.loop, UV_RUN_ONCE);
    double cpu1 = bench_cpu_seconds(g.pid);
    double wall = (double)(rc_mono_ns() - t0) / 1e9;
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    while (f.outstanding)
        uv_run(&g.loop, UV_RUN_ONCE);
    bench_report(b, "gcs_reports_1000_nodes_1hz_cpu", 100.0 * (cpu1 - cpu0) / wall, "%cpu", NULL, 0);
    bench_report(b, "gcs_rss_1000_nodes", (double)bench_rss_kib(g.pid) / 1024.0, "MiB", NULL, 0);
    if (f.failed)
        fprintf(stderr, "  %d calls failed\n", f.failed);
    bench__gcs_close(&g);
}

void bench_raylet_idle_rss(bench_ctx *b)
{
    bench__gcs g;
    if (bench__gcs_open(&g, b, 0, NULL) < 0) {
        bench__gcs_close(&g);
        return;
    }
    char exe[4200], addr[64], ready[128], log[128];
    snprintf(exe, sizeof(exe), "%s/rayc-raylet", bench_bin_dir(b));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g.port);
    snprintf(ready, sizeof(ready), "%s/raylet.ready", bench_tmpdir());
    snprintf(log, sizeof(log), "%s/raylet.log", bench_tmpdir());
    /* The raylet joins as every node does: a single-use join token and the CA. */
    Rayc__Rpc__CreateJoinTokenRequest jreq = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    jreq.ttl_seconds = 60;
    jreq.max_uses = 1;
    ProtobufCMessage *jrep = NULL;
    char err[256], token[256] = "", ca[200];
    if (rpc_client_call_sync(gcs_client_rpc(g.gcs), &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &jreq.base,
                             10000, &jrep, err, sizeof(err)) == GRPC_STATUS_OK)
        snprintf(token, sizeof(token), "%s", ((Rayc__Rpc__CreateJoinTokenReply *)jrep)->join_token);
    rpc_msg_free(jrep);
    snprintf(ca, sizeof(ca), "%s/ca.crt", bench_gcs_auth_dir());
    char *argv[] = {exe, "--gcs-address", addr, "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
                    "--ready-file", ready, "--join-token", token, "--ca-cert", ca, NULL};
    pid_t raylet = bench_spawn(argv, NULL, log);
    int64_t deadline = rc_mono_ms() + 10000;
    while (rc_mono_ms() < deadline && access(ready, R_OK) != 0)
        rc_sleep_ms(20);
    rc_sleep_ms(2000); /* settle: a few report and subscription rounds */
    bench_report(b, "raylet_idle_rss", (double)bench_rss_kib(raylet) / 1024.0, "MiB", NULL, 0);
    bench_report(b, "gcs_idle_rss", (double)bench_rss_kib(g.pid) / 1024.0, "MiB", NULL, 0);
    bench_stop(raylet);
    remove(ready);
    bench__gcs_close(&g);
}
