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
 *   gcs_rss_pg_churn                  placement groups created and removed against a GCS and
 *                                     one raylet (RAYC_BENCH_PG_CHURN of them, 50,000 by
 *                                     default, 1,000,000 for the full figure): GCS and raylet
 *                                     RSS after the first 10,000 and at the end
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

/* Starts a raylet with cpus CPUs against g (joining with a single-use token, as every node
 * does) and waits for it to be ready. Returns its pid or -1; *ready gets its ready file. */
static pid_t bench__raylet_start(bench_ctx *b, bench__gcs *g, const char *cpus, char *ready, size_t ready_len)
{
    char exe[4200], addr[64], log[128];
    snprintf(exe, sizeof(exe), "%s/rayc-raylet", bench_bin_dir(b));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g->port);
    snprintf(ready, ready_len, "%s/raylet.ready", bench_tmpdir());
    snprintf(log, sizeof(log), "%s/raylet.log", bench_tmpdir());
    Rayc__Rpc__CreateJoinTokenRequest jreq = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    jreq.ttl_seconds = 60;
    jreq.max_uses = 1;
    ProtobufCMessage *jrep = NULL;
    char err[256], token[256] = "", ca[200];
    if (rpc_client_call_sync(gcs_client_rpc(g->gcs), &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &jreq.base,
                             10000, &jrep, err, sizeof(err)) == GRPC_STATUS_OK)
        snprintf(token, sizeof(token), "%s", ((Rayc__Rpc__CreateJoinTokenReply *)jrep)->join_token);
    rpc_msg_free(jrep);
    snprintf(ca, sizeof(ca), "%s/ca.crt", bench_gcs_auth_dir());
    char *argv[] = {exe, "--gcs-address", addr, "--node-ip-address", "127.0.0.1", "--num-cpus", (char *)cpus,
                    "--ready-file", ready, "--join-token", token, "--ca-cert", ca, NULL};
    pid_t raylet = bench_spawn(argv, NULL, log);
    int64_t deadline = rc_mono_ms() + 10000;
    while (rc_mono_ms() < deadline && access(ready, R_OK) != 0)
        rc_sleep_ms(20);
    if (access(ready, R_OK) != 0) {
        fprintf(stderr, "  the raylet did not start (log: %s)\n", log);
        bench_stop(raylet);
        return -1;
    }
    return raylet;
}

void bench_raylet_idle_rss(bench_ctx *b)
{
    bench__gcs g;
    if (bench__gcs_open(&g, b, 0, NULL) < 0) {
        bench__gcs_close(&g);
        return;
    }
    char ready[128];
    pid_t raylet = bench__raylet_start(b, &g, "2", ready, sizeof(ready));
    if (raylet < 0) {
        bench__gcs_close(&g);
        return;
    }
    rc_sleep_ms(2000); /* settle: a few report and subscription rounds */
    bench_report(b, "raylet_idle_rss", (double)bench_rss_kib(raylet) / 1024.0, "MiB", NULL, 0);
    bench_report(b, "gcs_idle_rss", (double)bench_rss_kib(g.pid) / 1024.0, "MiB", NULL, 0);
    bench_stop(raylet);
    remove(ready);
    bench__gcs_close(&g);
}

/* ---- placement-group churn ------------------------------------------------------------ */

/* Groups created and removed by default; RAYC_BENCH_PG_CHURN sets the count (the full
 * figure is 1,000,000). The first RSS sample is taken after BENCH__PG_WARMUP groups. */
#define BENCH__PG_DEFAULT 50000
enum { BENCH__PG_WARMUP = 10000, BENCH__PG_SLOTS = 64 };

#define PGS_SVC (&ray__rpc__placement_group_info_gcs_service__descriptor)

typedef struct bench__churn bench__churn;

typedef struct bench__pg_slot {
    bench__churn *c;
    uint8_t id[RC_PG_ID_SIZE];
    int busy;
} bench__pg_slot;

struct bench__churn {
    bench__gcs *g;
    bench__pg_slot slots[BENCH__PG_SLOTS];
    long total, started, done, failed;
    uint64_t salt;
    pid_t raylet;
    int64_t rss_gcs_warm, rss_raylet_warm;
    int64_t t_start, t_warm;
    char why[256];
};

static void bench__pg_next(bench__pg_slot *s);

static int bench__pg_ok(bench__pg_slot *s, const rpc_status *st, ProtobufCMessage *reply, const char *what)
{
    const char *msg = NULL;
    int status = reply ? gcs_reply_status(reply, &msg) : -1;
    if (st->code == GRPC_STATUS_OK && status == GCS_STATUS_OK)
        return 1;
    s->c->failed++;
    snprintf(s->c->why, sizeof(s->c->why), "%s: code %d status %d %s", what, st->code, status,
             msg ? msg : st->message);
    return 0;
}

static void bench__pg_removed(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    bench__pg_slot *s = arg;
    bench__pg_ok(s, st, reply, "RemovePlacementGroup");
    rpc_msg_free(reply);
    bench__churn *c = s->c;
    c->done++;
    if (c->done == BENCH__PG_WARMUP) {
        c->rss_gcs_warm = bench_rss_kib(c->g->pid);
        c->rss_raylet_warm = bench_rss_kib(c->raylet);
        c->t_warm = rc_mono_ms();
    }
    if (c->done % 100000 == 0)
        fprintf(stderr, "    %ld groups: GCS %.1f MiB, raylet %.1f MiB\n", c->done,
                (double)bench_rss_kib(c->g->pid) / 1024.0, (double)bench_rss_kib(c->raylet) / 1024.0);
    s->busy = 0;
    bench__pg_next(s);
}

static void bench__pg_remove(bench__pg_slot *s)
{
    Ray__Rpc__RemovePlacementGroupRequest req = RAY__RPC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_id.data = s->id;
    req.placement_group_id.len = RC_PG_ID_SIZE;
    if (rpc_client_call(gcs_client_rpc(s->c->g->gcs), PGS_SVC, "RemovePlacementGroup", &req.base, 60000,
                        bench__pg_removed, s) < 0) {
        s->c->failed++;
        s->busy = 0;
    }
}

static void bench__pg_ready(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    bench__pg_slot *s = arg;
    bench__pg_ok(s, st, reply, "WaitPlacementGroupUntilReady");
    rpc_msg_free(reply);
    bench__pg_remove(s); /* placed or not, it goes */
}

static void bench__pg_created(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    bench__pg_slot *s = arg;
    int ok = bench__pg_ok(s, st, reply, "CreatePlacementGroup");
    rpc_msg_free(reply);
    if (!ok) {
        s->c->done++;
        s->busy = 0;
        bench__pg_next(s);
        return;
    }
    Ray__Rpc__WaitPlacementGroupUntilReadyRequest req = RAY__RPC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
    req.placement_group_id.data = s->id;
    req.placement_group_id.len = RC_PG_ID_SIZE;
    if (rpc_client_call(gcs_client_rpc(s->c->g->gcs), PGS_SVC, "WaitPlacementGroupUntilReady", &req.base, 60000,
                        bench__pg_ready, s) < 0)
        bench__pg_remove(s);
}

/* Creates the slot's next group: two bundles of {CPU: 1} (PACK) on the one raylet, so each
 * group brings the raylet eight bundle resource names and takes them away again. */
static void bench__pg_next(bench__pg_slot *s)
{
    bench__churn *c = s->c;
    if (c->started >= c->total)
        return;
    uint64_t n = (uint64_t)c->started++;
    memset(s->id, 0, sizeof(s->id));
    memcpy(s->id, &c->salt, sizeof(c->salt));
    memcpy(s->id + sizeof(c->salt), &n, sizeof(n));
    s->busy = 1;
    Ray__Rpc__Bundle bundles[2], *ptrs[2];
    Ray__Rpc__Bundle__UnitResourcesEntry cpu = RAY__RPC__BUNDLE__UNIT_RESOURCES_ENTRY__INIT, *cpu_p = &cpu;
    cpu.key = "CPU";
    cpu.value = 1;
    for (int i = 0; i < 2; i++) {
        ray__rpc__bundle__init(&bundles[i]);
        bundles[i].unit_resources = &cpu_p;
        bundles[i].n_unit_resources = 1;
        ptrs[i] = &bundles[i];
    }
    Ray__Rpc__PlacementGroupSpec spec = RAY__RPC__PLACEMENT_GROUP_SPEC__INIT;
    spec.placement_group_id.data = s->id;
    spec.placement_group_id.len = RC_PG_ID_SIZE;
    spec.name = "";
    spec.bundles = ptrs;
    spec.n_bundles = 2;
    spec.strategy = RAY__RPC__PLACEMENT_STRATEGY__PACK;
    spec.is_detached = 1;
    Ray__Rpc__CreatePlacementGroupRequest req = RAY__RPC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_spec = &spec;
    if (rpc_client_call(gcs_client_rpc(c->g->gcs), PGS_SVC, "CreatePlacementGroup", &req.base, 60000,
                        bench__pg_created, s) < 0) {
        c->failed++;
        c->done++;
        s->busy = 0;
    }
}

static long bench__pg_count(void)
{
    const char *e = getenv("RAYC_BENCH_PG_CHURN");
    char *end;
    long n = e && *e ? strtol(e, &end, 10) : BENCH__PG_DEFAULT;
    if (e && *e && (*end || n < BENCH__PG_WARMUP)) {
        fprintf(stderr, "  RAYC_BENCH_PG_CHURN=%s: want a count of at least %d; using %d\n", e, BENCH__PG_WARMUP,
                BENCH__PG_DEFAULT);
        n = BENCH__PG_DEFAULT;
    }
    return n;
}

void bench_gcs_rss_pg_churn(bench_ctx *b)
{
    bench__gcs g;
    if (bench__gcs_open(&g, b, 0, NULL) < 0) {
        bench__gcs_close(&g);
        return;
    }
    char ready[128];
    static bench__churn c;
    memset(&c, 0, sizeof(c));
    c.g = &g;
    c.total = bench__pg_count();
    c.salt = (uint64_t)rc_mono_ms() * 2654435761u;
    /* Many CPUs: the GCS counts what it placed as taken until the raylet's next report,
     * so a small node would pace the churn by its report period, not by the work. */
    c.raylet = bench__raylet_start(b, &g, "100000", ready, sizeof(ready));
    if (c.raylet < 0) {
        bench__gcs_close(&g);
        return;
    }
    fprintf(stderr, "  gcs_rss_pg_churn: %ld placement groups (RAYC_BENCH_PG_CHURN; full figure 1000000)\n", c.total);
    c.t_start = rc_mono_ms();
    for (int i = 0; i < BENCH__PG_SLOTS; i++) {
        c.slots[i].c = &c;
        bench__pg_next(&c.slots[i]);
    }
    for (;;) {
        int busy = 0;
        for (int i = 0; i < BENCH__PG_SLOTS; i++)
            busy |= c.slots[i].busy;
        if (!busy)
            break;
        uv_run(&g.loop, UV_RUN_ONCE);
    }
    int64_t elapsed = rc_mono_ms() - c.t_start;
    rc_sleep_ms(2000); /* settle: the raylet returns the last bundles and reports */
    double gcs_end = (double)bench_rss_kib(g.pid) / 1024.0, raylet_end = (double)bench_rss_kib(c.raylet) / 1024.0;
    if (c.failed)
        fprintf(stderr, "  %ld calls failed; last: %s\n", c.failed, c.why);
    if (c.rss_gcs_warm > 0) {
        bench_report(b, "gcs_rss_pg_churn_gcs_10k", (double)c.rss_gcs_warm / 1024.0, "MiB", NULL, 0);
        bench_report(b, "gcs_rss_pg_churn_gcs_end", gcs_end, "MiB", "gcs_rss_pg_churn_gcs_10k",
                     (double)c.rss_gcs_warm / 1024.0);
        bench_report(b, "gcs_rss_pg_churn_raylet_10k", (double)c.rss_raylet_warm / 1024.0, "MiB", NULL, 0);
        bench_report(b, "gcs_rss_pg_churn_raylet_end", raylet_end, "MiB", "gcs_rss_pg_churn_raylet_10k",
                     (double)c.rss_raylet_warm / 1024.0);
    }
    bench_report(b, "gcs_rss_pg_churn_rate", elapsed > 0 ? (double)c.done * 1000.0 / (double)elapsed : 0, "groups/s",
                 NULL, 0);
    bench_stop(c.raylet);
    remove(ready);
    bench__gcs_close(&g);
}
