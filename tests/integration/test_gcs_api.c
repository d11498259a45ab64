/*
 * GCS RPC semantics against a real rayc-gcs (and, where a case needs one, real raylets),
 * every case run twice: with memory storage and with Redis storage on a private
 * redis-server. Covered: internal KV (put/overwrite/added, get, multi-get, exists, keys by
 * prefix with glob characters, delete and delete by prefix, namespaces, the reserved
 * "@namespace_" prefix, binary and 8 MiB values, GetInternalConfig), jobs (ID counter,
 * validation, filters, finishing, restart), nodes (validation, selectors, filters, limits,
 * CheckAlive, unregistering, dead IDs, the bound on dead records, cluster ID across
 * restarts), the cluster-ID check, the resource view (a real raylet's totals, reports with
 * demand summed by shape), pub/sub (through gcs_subscriber and the raw long-poll protocol)
 * and DrainNode of a real raylet.
 *
 * The test talks to the GCS the way raylets and tools do: gcs_client_connect_sync, then
 * rpc_client_call_sync, checking the gRPC status and the GcsStatus inside the reply. Fake
 * nodes are registered by the test itself; the GCS would health-check them to death, so
 * every case starts the GCS with a first health check far in the future.
 *
 * Some cases put several calls in flight at once (put-if-absent races, job IDs handed out
 * concurrently, an unregistration racing a registration): with Redis every mutation waits
 * on storage, and ordering bugs show only then. A case that fails pins down a GCS bug; its
 * comment says what the right behaviour is and why (Ray's, where Ray defines it).
 *
 * One global fixture (A), main thread only. A case that stops on a fatal assertion leaves
 * its cluster up; the next case (or main) tears it down, so no daemon outlives its case
 * for long and none outlives the test.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "common.pb-c.h"
#include "gcs.pb-c.h"
#include "gcs_client.h"
#include "gcs_service.pb-c.h"
#include "node_manager.pb-c.h"
#include "pubsub.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rc_config.h"
#include "rc_ids.h"
#include "rc_json.h"
#include "rc_time.h"
#include "unit.h"

enum { CALL_TIMEOUT_MS = 10000, CONNECT_TIMEOUT_MS = 10000 };

#define NODE_SVC (&ray__rpc__node_info_gcs_service__descriptor)
#define JOB_SVC (&ray__rpc__job_info_gcs_service__descriptor)
#define KV_SVC (&ray__rpc__internal_kvgcs_service__descriptor)
#define RES_SVC (&ray__rpc__node_resource_info_gcs_service__descriptor)
#define PUBSUB_SVC (&ray__rpc__internal_pub_sub_gcs_service__descriptor)
#define REPORT_SVC (&rayc__rpc__resource_report_gcs_service__descriptor)

typedef struct api {
    harness_cluster c;
    uv_loop_t loop;
    rpc_ctx *ctx;
    gcs_client *gc;
    uv_timer_t timer; /* run_until's deadline */
    int up;           /* a cluster and a loop exist */
} api;

static api A;

/* ---- fixture ------------------------------------------------------------------------ */

static void api_down(void)
{
    if (!A.up)
        return;
    A.up = 0;
    if (A.gc)
        gcs_client_destroy(A.gc);
    A.gc = NULL;
    if (A.ctx)
        rpc_ctx_destroy(A.ctx);
    A.ctx = NULL;
    uv_close((uv_handle_t *)&A.timer, NULL);
    uv_run(&A.loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&A.loop), 0);
    harness_cluster_destroy(&A.c);
}

/* (Re)connects A.gc to the GCS: asks its cluster ID, which later calls then carry. */
static int api_connect(void)
{
    char err[300] = "";
    int rc = gcs_client_connect_sync(A.gc, CONNECT_TIMEOUT_MS, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "connect: %s\n", err);
    return rc;
}

/* Starts a GCS with the chosen storage and connects to it. Returns 0 or an RC_E*. */
static int api_up(int use_redis)
{
    api_down();
    memset(&A, 0, sizeof(A));
    rc_config_init();
    /* Fake nodes registered by the cases have no raylet behind them. */
    setenv("RAYC_health_check_initial_delay_ms", "600000", 1);
    int rc = harness_cluster_init(&A.c, use_redis);
    A.up = 1;
    uv_loop_init(&A.loop);
    uv_timer_init(&A.loop, &A.timer);
    if (rc == 0)
        rc = harness_gcs_start(&A.c);
    if (rc == 0)
        rc = rpc_ctx_create(&A.loop, &A.ctx);
    if (rc == 0)
        rc = gcs_client_create(A.ctx, A.c.gcs_address, &A.gc);
    if (rc == 0)
        rc = api_connect();
    return rc;
}

/* Kills the GCS with SIGKILL (nothing gets flushed), starts it again on the same port and
 * storage, and reconnects. */
static int api_restart_gcs(void)
{
    harness_gcs_kill(&A.c, SIGKILL);
    int rc = harness_gcs_start(&A.c);
    return rc ? rc : api_connect();
}

static void run_case(void (*body)(void), int use_redis)
{
    int rc = api_up(use_redis);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc == 0)
        body();
    api_down();
}

/* Defines test_<fn>_memory and test_<fn>_redis. */
#define BOTH(fn)                                                                               \
    static void test_##fn##_memory(void) { run_case(fn, 0); }                                  \
    static void test_##fn##_redis(void) { run_case(fn, 1); }
#define BOTH_CASES(fn) UNIT_CASE(test_##fn##_memory), UNIT_CASE(test_##fn##_redis)

/* ---- loop helpers ------------------------------------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag is non-zero or ms have passed; returns *flag != 0. */
static int run_until(const int *flag, int ms)
{
    int expired = 0;
    A.timer.data = &expired;
    uv_timer_start(&A.timer, on_deadline, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(&A.loop, UV_RUN_ONCE);
    uv_timer_stop(&A.timer);
    return *flag != 0;
}

/* ---- call helpers ------------------------------------------------------------------- */

/* Calls method expecting gRPC OK. Returns the reply (free with rpc_msg_free) and its
 * GcsStatus code in *code, or NULL (and *code -1) after recording a failure. */
static ProtobufCMessage *gcs_call(const ProtobufCServiceDescriptor *svc, const char *method,
                                  const ProtobufCMessage *req, int *code)
{
    ProtobufCMessage *reply = NULL;
    char err[300] = "";
    int st = rpc_client_call_sync(gcs_client_rpc(A.gc), svc, method, req, CALL_TIMEOUT_MS, &reply,
                                  err, sizeof(err));
    *code = -1;
    if (st != GRPC_STATUS_OK) {
        fprintf(stderr, "%s: gRPC %s: %s\n", method, rpc_code_name(st), err);
        CU_FAIL("gRPC status is not OK");
        return NULL;
    }
    *code = gcs_reply_status(reply, NULL);
    return reply;
}

#define CALL(svc, method, req, code, type) ((type *)gcs_call((svc), (method), &(req).base, (code)))

/* The GcsStatus code of a call whose reply is not needed (-1 if the call failed). */
static int gcs_code(const ProtobufCServiceDescriptor *svc, const char *method, const ProtobufCMessage *req)
{
    int code;
    rpc_msg_free(gcs_call(svc, method, req, &code));
    return code;
}

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

#define STR(s) bin((s), strlen(s))

static int bin_eq(ProtobufCBinaryData b, const void *p, size_t n)
{
    return b.len == n && (n == 0 || memcmp(b.data, p, n) == 0);
}

/* An asynchronous call in flight, for cases that need several at once. */
typedef struct pending {
    int done;
    int status;              /* gRPC */
    int code;                /* GcsStatus, -1 without a reply */
    ProtobufCMessage *reply; /* freed by pending_free */
} pending;

static void on_pending(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    pending *p = arg;
    p->done = 1;
    p->status = st->code;
    p->code = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, NULL) : -1;
    p->reply = reply;
}

/* Waits for n calls to end; 1 if all did within CALL_TIMEOUT_MS each. */
static int pending_wait(pending *p, int n)
{
    int all = 1;
    for (int i = 0; i < n; i++)
        all &= run_until(&p[i].done, CALL_TIMEOUT_MS);
    return all;
}

static void pending_free(pending *p, int n)
{
    for (int i = 0; i < n; i++) {
        rpc_msg_free(p[i].reply);
        p[i].reply = NULL;
    }
}

/* ---- KV helpers --------------------------------------------------------------------- */

static int kv_put(ProtobufCBinaryData ns, ProtobufCBinaryData key, ProtobufCBinaryData value,
                  int overwrite, int *added)
{
    Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    req.namespace_ = ns;
    req.key = key;
    req.value = value;
    req.overwrite = overwrite;
    int code;
    Ray__Rpc__InternalKVPutReply *r = CALL(KV_SVC, "InternalKVPut", req, &code, Ray__Rpc__InternalKVPutReply);
    if (added)
        *added = r ? r->added : -1;
    rpc_msg_free((ProtobufCMessage *)r);
    return code;
}

/* Gets a value into out (up to *len bytes; *len gets its length). */
static int kv_get(ProtobufCBinaryData ns, ProtobufCBinaryData key, void *out, size_t *len)
{
    Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    req.namespace_ = ns;
    req.key = key;
    int code;
    Ray__Rpc__InternalKVGetReply *r = CALL(KV_SVC, "InternalKVGet", req, &code, Ray__Rpc__InternalKVGetReply);
    size_t cap = *len;
    *len = 0;
    if (r && code == GCS_STATUS_OK) {
        *len = r->value.len;
        if (r->value.len) /* an empty value may have no data pointer */
            memcpy(out, r->value.data, r->value.len < cap ? r->value.len : cap);
    }
    rpc_msg_free((ProtobufCMessage *)r);
    return code;
}

/* 1 if ns/key holds exactly value (a NUL-terminated string). */
static int kv_holds(const char *ns, const char *key, const char *value)
{
    char buf[256];
    size_t len = sizeof(buf);
    return kv_get(STR(ns), STR(key), buf, &len) == GCS_STATUS_OK && len == strlen(value) &&
           memcmp(buf, value, len) == 0;
}

static int kv_exists(ProtobufCBinaryData ns, ProtobufCBinaryData key, int *code)
{
    Ray__Rpc__InternalKVExistsRequest req = RAY__RPC__INTERNAL_KVEXISTS_REQUEST__INIT;
    req.namespace_ = ns;
    req.key = key;
    Ray__Rpc__InternalKVExistsReply *r =
        CALL(KV_SVC, "InternalKVExists", req, code, Ray__Rpc__InternalKVExistsReply);
    int exists = r ? r->exists : -1;
    rpc_msg_free((ProtobufCMessage *)r);
    return exists;
}

static int kv_del(ProtobufCBinaryData ns, ProtobufCBinaryData key, int by_prefix, int *code)
{
    Ray__Rpc__InternalKVDelRequest req = RAY__RPC__INTERNAL_KVDEL_REQUEST__INIT;
    req.namespace_ = ns;
    req.key = key;
    req.del_by_prefix = by_prefix;
    Ray__Rpc__InternalKVDelReply *r = CALL(KV_SVC, "InternalKVDel", req, code, Ray__Rpc__InternalKVDelReply);
    int n = r ? r->deleted_num : -1;
    rpc_msg_free((ProtobufCMessage *)r);
    return n;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys of ns under prefix, sorted and joined with '|' into out ("" if none; "ERR" if
 * the call failed). Keys here are text. */
static const char *kv_keys(const char *ns, const char *prefix, char *out, size_t outlen)
{
    Ray__Rpc__InternalKVKeysRequest req = RAY__RPC__INTERNAL_KVKEYS_REQUEST__INIT;
    req.namespace_ = STR(ns);
    req.prefix = STR(prefix);
    int code;
    Ray__Rpc__InternalKVKeysReply *r = CALL(KV_SVC, "InternalKVKeys", req, &code, Ray__Rpc__InternalKVKeysReply);
    snprintf(out, outlen, "ERR");
    if (!r || code != GCS_STATUS_OK) {
        rpc_msg_free((ProtobufCMessage *)r);
        return out;
    }
    char **keys = calloc(r->n_results + 1, sizeof(*keys));
    for (size_t i = 0; i < r->n_results; i++) {
        keys[i] = calloc(1, r->results[i].len + 1);
        if (r->results[i].len)
            memcpy(keys[i], r->results[i].data, r->results[i].len);
    }
    qsort(keys, r->n_results, sizeof(*keys), by_str);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n_results; i++) {
        used += (size_t)snprintf(out + used, used < outlen ? outlen - used : 0, "%s%s", i ? "|" : "", keys[i]);
        free(keys[i]);
    }
    free(keys);
    rpc_msg_free((ProtobufCMessage *)r);
    return out;
}

/* ---- node helpers ------------------------------------------------------------------- */

/* Registers a node with no raylet behind it (port: any number; nothing listens there). */
static int register_fake_node(const uint8_t *id, size_t id_len, const char *name, const char *ip, int port)
{
    Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry cpu = RAY__RPC__GCS_NODE_INFO__RESOURCES_TOTAL_ENTRY__INIT;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res[1] = {&cpu};
    cpu.key = "CPU";
    cpu.value = 4;
    info.node_id = bin(id, id_len);
    info.node_manager_address = (char *)ip;
    info.node_manager_port = port;
    info.node_name = (char *)name;
    info.resources_total = res;
    info.n_resources_total = 1;
    Ray__Rpc__RegisterNodeRequest req = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    req.node_info = &info;
    return gcs_code(NODE_SVC, "RegisterNode", &req.base);
}

static int unregister_node(const uint8_t *id, const char *reason_message)
{
    Ray__Rpc__NodeDeathInfo death = RAY__RPC__NODE_DEATH_INFO__INIT;
    death.reason = RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION;
    death.reason_message = (char *)reason_message;
    Ray__Rpc__UnregisterNodeRequest req = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
    req.node_id = bin(id, RC_NODE_ID_SIZE);
    req.node_death_info = reason_message ? &death : NULL;
    return gcs_code(NODE_SVC, "UnregisterNode", &req.base);
}

/* GetAllNodeInfo with one node_id selector; free with rpc_msg_free. */
static Ray__Rpc__GetAllNodeInfoReply *get_node(const uint8_t *id)
{
    /* (the generated NodeSelector initializer trips -Wmissing-braces; the function does not) */
    Ray__Rpc__GetAllNodeInfoRequest__NodeSelector sel;
    ray__rpc__get_all_node_info_request__node_selector__init(&sel);
    Ray__Rpc__GetAllNodeInfoRequest__NodeSelector *sels[1] = {&sel};
    sel.node_selector_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_ID;
    sel.node_id = bin(id, RC_NODE_ID_SIZE);
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    req.node_selectors = sels;
    req.n_node_selectors = 1;
    int code;
    return CALL(NODE_SVC, "GetAllNodeInfo", req, &code, Ray__Rpc__GetAllNodeInfoReply);
}

/* The state of node id: ALIVE/DEAD, or -1 if the GCS does not list it. */
static int node_state(const uint8_t *id, Ray__Rpc__NodeDeathInfo__Reason *reason, char *message, size_t mlen)
{
    Ray__Rpc__GetAllNodeInfoReply *r = get_node(id);
    int state = -1;
    if (r && r->n_node_info_list == 1) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[0];
        state = (int)n->state;
        if (reason)
            *reason = n->death_info ? n->death_info->reason : RAY__RPC__NODE_DEATH_INFO__REASON__UNSPECIFIED;
        if (message)
            snprintf(message, mlen, "%s",
                     n->death_info && n->death_info->reason_message ? n->death_info->reason_message : "");
    }
    rpc_msg_free((ProtobufCMessage *)r);
    return state;
}

static void node_id_of_raylet(int i, uint8_t *id)
{
    CU_ASSERT_EQUAL(rc_id_from_hex(A.c.raylets[i].node_id, id, RC_NODE_ID_SIZE), 0);
}

/* The cluster ID the GCS reports (RC_CLUSTER_ID_SIZE bytes into id); returns its length. */
static size_t get_cluster_id(uint8_t *id)
{
    Ray__Rpc__GetClusterIdRequest req = RAY__RPC__GET_CLUSTER_ID_REQUEST__INIT;
    int code;
    Ray__Rpc__GetClusterIdReply *r = CALL(NODE_SVC, "GetClusterId", req, &code, Ray__Rpc__GetClusterIdReply);
    size_t len = r ? r->cluster_id.len : 0;
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (r && len == RC_CLUSTER_ID_SIZE)
        memcpy(id, r->cluster_id.data, len);
    rpc_msg_free((ProtobufCMessage *)r);
    return len;
}

/* ---- KV ----------------------------------------------------------------------------- */

static void kv_put_get(void)
{
    int added;
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("k"), STR("v1"), 0, &added), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(added, 1);
    CU_ASSERT(kv_holds("ns", "k", "v1"));
    /* overwrite=false keeps the old value and says nothing was added */
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("k"), STR("v2"), 0, &added), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(added, 0);
    CU_ASSERT(kv_holds("ns", "k", "v1"));
    /* overwrite=true replaces it, still not "added" (the key existed) */
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("k"), STR("v3"), 1, &added), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(added, 0);
    CU_ASSERT(kv_holds("ns", "k", "v3"));
    /* a new key with overwrite=true is added */
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("k2"), STR(""), 1, &added), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(added, 1);
    CU_ASSERT(kv_holds("ns", "k2", ""));
    char buf[16];
    size_t len = sizeof(buf);
    CU_ASSERT_EQUAL(kv_get(STR("ns"), STR("missing"), buf, &len), GCS_STATUS_NOT_FOUND);
    CU_ASSERT_EQUAL(len, 0);
}
BOTH(kv_put_get)

/* Puts with overwrite=false racing on one new key: exactly one is added (Redis HSETNX,
 * memory in order), and the key holds that one's value. */
enum { PUTTERS = 16 };

static void kv_concurrent_put_if_absent(void)
{
    static pending puts[PUTTERS];
    static char values[PUTTERS][8];
    memset(puts, 0, sizeof(puts));
    for (int i = 0; i < PUTTERS; i++) {
        snprintf(values[i], sizeof(values[i]), "v%d", i);
        Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
        req.namespace_ = STR("race");
        req.key = STR("once");
        req.value = STR(values[i]);
        CU_ASSERT_EQUAL(rpc_client_call(gcs_client_rpc(A.gc), KV_SVC, "InternalKVPut", &req.base, CALL_TIMEOUT_MS,
                                        on_pending, &puts[i]),
                        0);
    }
    CU_ASSERT(pending_wait(puts, PUTTERS));
    int added = 0, winner = -1;
    for (int i = 0; i < PUTTERS; i++) {
        CU_ASSERT_EQUAL(puts[i].code, GCS_STATUS_OK);
        if (puts[i].reply && ((Ray__Rpc__InternalKVPutReply *)puts[i].reply)->added) {
            added++;
            winner = i;
        }
    }
    CU_ASSERT_EQUAL(added, 1);
    if (winner >= 0)
        CU_ASSERT(kv_holds("race", "once", values[winner]));
    pending_free(puts, PUTTERS);
}
BOTH(kv_concurrent_put_if_absent)

static void kv_multi_get(void)
{
    CU_ASSERT_EQUAL(kv_put(STR("m"), STR("a"), STR("1"), 1, NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_put(STR("m"), STR("b"), STR("2"), 1, NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_put(STR("other"), STR("c"), STR("3"), 1, NULL), GCS_STATUS_OK);
    ProtobufCBinaryData keys[4] = {STR("a"), STR("missing"), STR("b"), STR("c")};
    Ray__Rpc__InternalKVMultiGetRequest req = RAY__RPC__INTERNAL_KVMULTI_GET_REQUEST__INIT;
    req.namespace_ = STR("m");
    req.keys = keys;
    req.n_keys = 4;
    int code;
    Ray__Rpc__InternalKVMultiGetReply *r =
        CALL(KV_SVC, "InternalKVMultiGet", req, &code, Ray__Rpc__InternalKVMultiGetReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (!r)
        return;
    /* only a and b: "missing" does not exist and c lives in another namespace */
    CU_ASSERT_EQUAL(r->n_results, 2);
    int seen_a = 0, seen_b = 0;
    for (size_t i = 0; i < r->n_results; i++) {
        const Ray__Rpc__MapFieldEntry *e = r->results[i];
        seen_a += bin_eq(e->key, "a", 1) && bin_eq(e->value, "1", 1);
        seen_b += bin_eq(e->key, "b", 1) && bin_eq(e->value, "2", 1);
    }
    CU_ASSERT_EQUAL(seen_a, 1);
    CU_ASSERT_EQUAL(seen_b, 1);
    rpc_msg_free((ProtobufCMessage *)r);
    /* no keys at all: an empty answer */
    req.n_keys = 0;
    r = CALL(KV_SVC, "InternalKVMultiGet", req, &code, Ray__Rpc__InternalKVMultiGetReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (r)
        CU_ASSERT_EQUAL(r->n_results, 0);
    rpc_msg_free((ProtobufCMessage *)r);
}
BOTH(kv_multi_get)

/* Ray answers MultiGet from a map (absl::flat_hash_map<key, value>): a key asked for twice
 * is still one result. */
static void kv_multi_get_duplicate_keys(void)
{
    CU_ASSERT_EQUAL(kv_put(STR("m"), STR("a"), STR("1"), 1, NULL), GCS_STATUS_OK);
    ProtobufCBinaryData keys[3] = {STR("a"), STR("a"), STR("a")};
    Ray__Rpc__InternalKVMultiGetRequest req = RAY__RPC__INTERNAL_KVMULTI_GET_REQUEST__INIT;
    req.namespace_ = STR("m");
    req.keys = keys;
    req.n_keys = 3;
    int code;
    Ray__Rpc__InternalKVMultiGetReply *r =
        CALL(KV_SVC, "InternalKVMultiGet", req, &code, Ray__Rpc__InternalKVMultiGetReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (r) {
        if (r->n_results != 1)
            fprintf(stderr, "MultiGet of one key asked 3 times: %zu results\n", r->n_results);
        CU_ASSERT_EQUAL(r->n_results, 1);
    }
    rpc_msg_free((ProtobufCMessage *)r);
}
BOTH(kv_multi_get_duplicate_keys)

/* Values far beyond gRPC's default 4 MiB message limit (rayc raises it) and any Redis
 * reply buffer, both ways. */
static void kv_large_value(void)
{
    size_t n = 8u << 20;
    uint8_t *big = malloc(n);
    rc_id_random(big, n);
    int added;
    CU_ASSERT_EQUAL(kv_put(STR("big"), STR("k"), bin(big, n), 1, &added), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(added, 1);
    uint8_t *out = malloc(n);
    size_t len = n;
    CU_ASSERT_EQUAL(kv_get(STR("big"), STR("k"), out, &len), GCS_STATUS_OK);
    CU_ASSERT(len == n && memcmp(out, big, n) == 0);
    free(out);
    free(big);
}
BOTH(kv_large_value)

static void kv_exists_keys_del(void)
{
    /* Redis-backed key listing uses glob patterns: these keys must still match literally. */
    static const char *const keys[] = {"a*b", "a?c", "a[x]", "a\\d", "abc", "ab", "b"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CU_ASSERT_EQUAL(kv_put(STR("g"), STR(keys[i]), STR("v"), 1, NULL), GCS_STATUS_OK);
    int code;
    CU_ASSERT_EQUAL(kv_exists(STR("g"), STR("a*b"), &code), 1);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_exists(STR("g"), STR("a*"), &code), 0);
    CU_ASSERT_EQUAL(kv_exists(STR("g"), STR("axb"), &code), 0);
    CU_ASSERT_EQUAL(kv_exists(STR("other"), STR("abc"), &code), 0);

    char out[512];
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "", out, sizeof(out)), "a*b|a?c|a[x]|a\\d|ab|abc|b");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "a", out, sizeof(out)), "a*b|a?c|a[x]|a\\d|ab|abc");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "a*", out, sizeof(out)), "a*b");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "a?", out, sizeof(out)), "a?c");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "a[", out, sizeof(out)), "a[x]");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "a[x", out, sizeof(out)), "a[x]");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "a\\", out, sizeof(out)), "a\\d");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "ab", out, sizeof(out)), "ab|abc");
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "zz", out, sizeof(out)), "");

    /* single delete: 1, then 0 for the key that is gone */
    CU_ASSERT_EQUAL(kv_del(STR("g"), STR("b"), 0, &code), 1);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_del(STR("g"), STR("b"), 0, &code), 0);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_exists(STR("g"), STR("b"), &code), 0);
    /* delete by prefix: glob characters are literal here too */
    CU_ASSERT_EQUAL(kv_del(STR("g"), STR("a*"), 1, &code), 1);
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "", out, sizeof(out)), "a?c|a[x]|a\\d|ab|abc");
    CU_ASSERT_EQUAL(kv_del(STR("g"), STR("ab"), 1, &code), 2);
    CU_ASSERT_EQUAL(kv_del(STR("g"), STR("a"), 1, &code), 3);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(kv_keys("g", "", out, sizeof(out)), "");
    CU_ASSERT_EQUAL(kv_del(STR("g"), STR("a"), 1, &code), 0);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
}
BOTH(kv_exists_keys_del)

static void kv_namespaces(void)
{
    CU_ASSERT_EQUAL(kv_put(STR("ns1"), STR("k"), STR("one"), 1, NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_put(STR("ns2"), STR("k"), STR("two"), 1, NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_put(STR(""), STR("k"), STR("none"), 1, NULL), GCS_STATUS_OK);
    /* a namespace that is a prefix of another is still its own */
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("1:k"), STR("tricky"), 1, NULL), GCS_STATUS_OK);
    CU_ASSERT(kv_holds("ns1", "k", "one"));
    CU_ASSERT(kv_holds("ns2", "k", "two"));
    CU_ASSERT(kv_holds("", "k", "none"));
    CU_ASSERT(kv_holds("ns", "1:k", "tricky"));
    char out[256];
    CU_ASSERT_STRING_EQUAL(kv_keys("ns1", "", out, sizeof(out)), "k");
    CU_ASSERT_STRING_EQUAL(kv_keys("ns", "", out, sizeof(out)), "1:k");
    /* the empty namespace lists its own keys, not every namespace's */
    CU_ASSERT_STRING_EQUAL(kv_keys("", "k", out, sizeof(out)), "k");
    int code;
    CU_ASSERT_EQUAL(kv_del(STR("ns1"), STR("k"), 0, &code), 1);
    CU_ASSERT_EQUAL(kv_exists(STR("ns1"), STR("k"), &code), 0);
    CU_ASSERT(kv_holds("ns2", "k", "two"));
    CU_ASSERT(kv_holds("", "k", "none"));
    /* deleting by an empty prefix in the empty namespace leaves other namespaces alone */
    CU_ASSERT_EQUAL(kv_del(STR(""), STR(""), 1, &code), 1);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    CU_ASSERT(kv_holds("ns2", "k", "two"));
    CU_ASSERT(kv_holds("ns", "1:k", "tricky"));
    CU_ASSERT_EQUAL(kv_exists(STR(""), STR("k"), &code), 0);

    /* Namespaces with glob characters (Redis lists keys with a MATCH pattern) are literal
     * too: "a*" is not a pattern that takes in "ab" or "a*b". */
    static const char *const globby[] = {"a*", "ab", "a*b", "a?", "a[", "[a]"};
    for (size_t i = 0; i < sizeof(globby) / sizeof(globby[0]); i++)
        CU_ASSERT_EQUAL(kv_put(STR(globby[i]), STR("key"), STR(globby[i]), 1, NULL), GCS_STATUS_OK);
    for (size_t i = 0; i < sizeof(globby) / sizeof(globby[0]); i++) {
        CU_ASSERT_STRING_EQUAL(kv_keys(globby[i], "", out, sizeof(out)), "key");
        CU_ASSERT(kv_holds(globby[i], "key", globby[i]));
    }
    CU_ASSERT_EQUAL(kv_del(STR("a*"), STR(""), 1, &code), 1);
    CU_ASSERT_EQUAL(kv_del(STR("a["), STR("k"), 1, &code), 1);
    CU_ASSERT(kv_holds("ab", "key", "ab"));
    CU_ASSERT(kv_holds("a*b", "key", "a*b"));
    CU_ASSERT(kv_holds("a?", "key", "a?"));
    CU_ASSERT(kv_holds("[a]", "key", "[a]"));
}
BOTH(kv_namespaces)

static void kv_reserved_prefix(void)
{
    ProtobufCBinaryData bad = STR("@namespace_x:y");
    int added = -2, code;
    CU_ASSERT_EQUAL(kv_put(STR("ns"), bad, STR("v"), 1, &added), GCS_STATUS_KEY_ERROR);
    CU_ASSERT_EQUAL(kv_put(STR(""), bad, STR("v"), 1, &added), GCS_STATUS_KEY_ERROR);
    char buf[8];
    size_t len = sizeof(buf);
    CU_ASSERT_EQUAL(kv_get(STR("ns"), bad, buf, &len), GCS_STATUS_KEY_ERROR);
    kv_exists(STR("ns"), bad, &code);
    CU_ASSERT_EQUAL(code, GCS_STATUS_KEY_ERROR);
    kv_del(STR("ns"), bad, 0, &code);
    CU_ASSERT_EQUAL(code, GCS_STATUS_KEY_ERROR);
    ProtobufCBinaryData keys[2] = {STR("fine"), bad};
    Ray__Rpc__InternalKVMultiGetRequest req = RAY__RPC__INTERNAL_KVMULTI_GET_REQUEST__INIT;
    req.namespace_ = STR("ns");
    req.keys = keys;
    req.n_keys = 2;
    CU_ASSERT_EQUAL(gcs_code(KV_SVC, "InternalKVMultiGet", &req.base), GCS_STATUS_KEY_ERROR);
    /* Refused means not stored: the raw key would otherwise alias namespace x's "y". */
    CU_ASSERT_EQUAL(kv_exists(STR("x"), STR("y"), &code), 0);
    /* "@namespace" without the underscore is an ordinary key */
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("@namespace"), STR("ok"), 1, &added), GCS_STATUS_OK);
    CU_ASSERT(kv_holds("ns", "@namespace", "ok"));
}
BOTH(kv_reserved_prefix)

static void kv_binary(void)
{
    static const uint8_t key[] = {'k', 0, 0xff, '\n', 0, 'z'};
    static const uint8_t value[] = {0, 1, 2, 0, 0xfe, 0xff, 0, '\r', '\n'};
    static const uint8_t ns[] = {'n', 0, 's'};
    int added;
    CU_ASSERT_EQUAL(kv_put(bin(ns, sizeof(ns)), bin(key, sizeof(key)), bin(value, sizeof(value)), 1, &added),
                    GCS_STATUS_OK);
    CU_ASSERT_EQUAL(added, 1);
    uint8_t out[64];
    size_t len = sizeof(out);
    CU_ASSERT_EQUAL(kv_get(bin(ns, sizeof(ns)), bin(key, sizeof(key)), out, &len), GCS_STATUS_OK);
    CU_ASSERT(len == sizeof(value) && memcmp(out, value, sizeof(value)) == 0);
    /* the key truncated at its first NUL is another key */
    len = sizeof(out);
    CU_ASSERT_EQUAL(kv_get(bin(ns, sizeof(ns)), bin(key, 1), out, &len), GCS_STATUS_NOT_FOUND);
    /* so is the namespace truncated at its NUL */
    len = sizeof(out);
    CU_ASSERT_EQUAL(kv_get(bin(ns, 1), bin(key, sizeof(key)), out, &len), GCS_STATUS_NOT_FOUND);
    int code;
    CU_ASSERT_EQUAL(kv_exists(bin(ns, sizeof(ns)), bin(key, sizeof(key)), &code), 1);

    Ray__Rpc__InternalKVKeysRequest kreq = RAY__RPC__INTERNAL_KVKEYS_REQUEST__INIT;
    kreq.namespace_ = bin(ns, sizeof(ns));
    kreq.prefix = bin(key, 2); /* "k\0" */
    Ray__Rpc__InternalKVKeysReply *kr = CALL(KV_SVC, "InternalKVKeys", kreq, &code, Ray__Rpc__InternalKVKeysReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (kr) {
        CU_ASSERT_EQUAL(kr->n_results, 1);
        if (kr->n_results == 1)
            CU_ASSERT(bin_eq(kr->results[0], key, sizeof(key)));
    }
    rpc_msg_free((ProtobufCMessage *)kr);

    ProtobufCBinaryData keys[1] = {bin(key, sizeof(key))};
    Ray__Rpc__InternalKVMultiGetRequest mreq = RAY__RPC__INTERNAL_KVMULTI_GET_REQUEST__INIT;
    mreq.namespace_ = bin(ns, sizeof(ns));
    mreq.keys = keys;
    mreq.n_keys = 1;
    Ray__Rpc__InternalKVMultiGetReply *mr =
        CALL(KV_SVC, "InternalKVMultiGet", mreq, &code, Ray__Rpc__InternalKVMultiGetReply);
    if (mr) {
        CU_ASSERT_EQUAL(mr->n_results, 1);
        if (mr->n_results == 1) {
            CU_ASSERT(bin_eq(mr->results[0]->key, key, sizeof(key)));
            CU_ASSERT(bin_eq(mr->results[0]->value, value, sizeof(value)));
        }
    }
    rpc_msg_free((ProtobufCMessage *)mr);
    CU_ASSERT_EQUAL(kv_del(bin(ns, sizeof(ns)), bin(key, sizeof(key)), 0, &code), 1);
    CU_ASSERT_EQUAL(kv_exists(bin(ns, sizeof(ns)), bin(key, sizeof(key)), &code), 0);
}
BOTH(kv_binary)

static void kv_internal_config(void)
{
    Ray__Rpc__GetInternalConfigRequest req = RAY__RPC__GET_INTERNAL_CONFIG_REQUEST__INIT;
    int code;
    Ray__Rpc__GetInternalConfigReply *r =
        CALL(KV_SVC, "GetInternalConfig", req, &code, Ray__Rpc__GetInternalConfigReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (!r || !r->config) {
        CU_FAIL("no config");
        rpc_msg_free((ProtobufCMessage *)r);
        return;
    }
    rc_json *j = NULL;
    char err[200];
    CU_ASSERT_EQUAL(rc_json_parse(r->config, strlen(r->config), &j, err, sizeof(err)), 0);
    if (j) {
        CU_ASSERT_EQUAL(j->type, RC_JSON_OBJECT);
        const rc_json *period = rc_json_get(j, "health_check_period_ms");
        CU_ASSERT(period && period->type == RC_JSON_NUMBER && period->number > 0);
        /* the GCS's own setting (from its environment) is what it hands out */
        const rc_json *delay = rc_json_get(j, "health_check_initial_delay_ms");
        CU_ASSERT(delay && delay->type == RC_JSON_NUMBER && delay->number == 600000);
        rc_json_free(j);
    }
    rpc_msg_free((ProtobufCMessage *)r);
}
BOTH(kv_internal_config)

/* ---- jobs --------------------------------------------------------------------------- */

static int next_job_id(void)
{
    Ray__Rpc__GetNextJobIDRequest req = RAY__RPC__GET_NEXT_JOB_IDREQUEST__INIT;
    int code;
    Ray__Rpc__GetNextJobIDReply *r = CALL(JOB_SVC, "GetNextJobID", req, &code, Ray__Rpc__GetNextJobIDReply);
    int id = r && code == GCS_STATUS_OK ? r->job_id : -1;
    rpc_msg_free((ProtobufCMessage *)r);
    return id;
}

/* Ray's JobID::FromInt: the number's bytes in the host's (little-endian) order. */
static void job_id_bytes(int n, uint8_t id[RC_JOB_ID_SIZE])
{
    uint32_t v = (uint32_t)n;
    memcpy(id, &v, RC_JOB_ID_SIZE);
}

static int add_job(const uint8_t *id, size_t id_len, const char *entrypoint, const char *submission_id)
{
    Ray__Rpc__JobConfig__MetadataEntry meta = RAY__RPC__JOB_CONFIG__METADATA_ENTRY__INIT;
    Ray__Rpc__JobConfig__MetadataEntry *metas[1] = {&meta};
    meta.key = "job_submission_id";
    meta.value = (char *)submission_id;
    Ray__Rpc__JobConfig config = RAY__RPC__JOB_CONFIG__INIT;
    config.ray_namespace = "test";
    config.metadata = metas;
    config.n_metadata = submission_id ? 1 : 0;
    Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
    data.job_id = bin(id, id_len);
    data.driver_ip_address = "127.0.0.1";
    data.driver_pid = 4242;
    data.entrypoint = (char *)entrypoint;
    data.config = &config;
    Ray__Rpc__AddJobRequest req = RAY__RPC__ADD_JOB_REQUEST__INIT;
    req.data = &data;
    return gcs_code(JOB_SVC, "AddJob", &req.base);
}

/* GetAllJobInfo with an optional limit (< 0: none) and id filter (NULL: none). */
static Ray__Rpc__GetAllJobInfoReply *all_jobs(int limit, const char *filter)
{
    Ray__Rpc__GetAllJobInfoRequest req = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    if (limit >= 0) {
        req._limit_case = RAY__RPC__GET_ALL_JOB_INFO_REQUEST___LIMIT_LIMIT;
        req.limit = limit;
    }
    if (filter) {
        req._job_or_submission_id_case =
            RAY__RPC__GET_ALL_JOB_INFO_REQUEST___JOB_OR_SUBMISSION_ID_JOB_OR_SUBMISSION_ID;
        req.job_or_submission_id = (char *)filter;
    }
    int code;
    Ray__Rpc__GetAllJobInfoReply *r = CALL(JOB_SVC, "GetAllJobInfo", req, &code, Ray__Rpc__GetAllJobInfoReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    return r;
}

static size_t count_jobs(int limit, const char *filter)
{
    Ray__Rpc__GetAllJobInfoReply *r = all_jobs(limit, filter);
    size_t n = r ? r->n_job_info_list : (size_t)-1;
    rpc_msg_free((ProtobufCMessage *)r);
    return n;
}

static int mark_finished(const uint8_t *id, size_t len)
{
    Ray__Rpc__MarkJobFinishedRequest req = RAY__RPC__MARK_JOB_FINISHED_REQUEST__INIT;
    req.job_id = bin(id, len);
    return gcs_code(JOB_SVC, "MarkJobFinished", &req.base);
}

static void job_next_id(void)
{
    CU_ASSERT_EQUAL(next_job_id(), 1);
    CU_ASSERT_EQUAL(next_job_id(), 2);
    CU_ASSERT_EQUAL(next_job_id(), 3);
    /* many at once: each number handed out once */
    enum { ASKERS = 16 };
    static pending asks[ASKERS];
    memset(asks, 0, sizeof(asks));
    for (int i = 0; i < ASKERS; i++) {
        Ray__Rpc__GetNextJobIDRequest req = RAY__RPC__GET_NEXT_JOB_IDREQUEST__INIT;
        CU_ASSERT_EQUAL(rpc_client_call(gcs_client_rpc(A.gc), JOB_SVC, "GetNextJobID", &req.base, CALL_TIMEOUT_MS,
                                        on_pending, &asks[i]),
                        0);
    }
    CU_ASSERT(pending_wait(asks, ASKERS));
    int seen[4 + ASKERS] = {0};
    for (int i = 0; i < ASKERS; i++) {
        int id = asks[i].reply ? ((Ray__Rpc__GetNextJobIDReply *)asks[i].reply)->job_id : -1;
        CU_ASSERT(id >= 4 && id < 4 + ASKERS);
        if (id >= 4 && id < 4 + ASKERS)
            seen[id]++;
    }
    for (int id = 4; id < 4 + ASKERS; id++)
        CU_ASSERT_EQUAL(seen[id], 1);
    pending_free(asks, ASKERS);
    CU_ASSERT_EQUAL(next_job_id(), 4 + ASKERS);
}
BOTH(job_next_id)

static void job_add_validation(void)
{
    uint8_t id[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(add_job(id, 3, "short", NULL), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(add_job(id, 8, "long", NULL), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(add_job(id, 0, "none", NULL), GCS_STATUS_INVALID_ARGUMENT);
    Ray__Rpc__AddJobRequest req = RAY__RPC__ADD_JOB_REQUEST__INIT; /* no data at all */
    CU_ASSERT_EQUAL(gcs_code(JOB_SVC, "AddJob", &req.base), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(mark_finished(id, 5), GCS_STATUS_INVALID_ARGUMENT);
    /* a fair-share weight that is not a finite number >= 0 */
    double bad_weights[] = {-1, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad_weights) / sizeof(bad_weights[0]); i++) {
        Ray__Rpc__JobConfig config = RAY__RPC__JOB_CONFIG__INIT;
        config.rayc_weight = bad_weights[i];
        Ray__Rpc__JobTableData data = RAY__RPC__JOB_TABLE_DATA__INIT;
        data.job_id = bin(id, 4);
        data.config = &config;
        Ray__Rpc__AddJobRequest bad = RAY__RPC__ADD_JOB_REQUEST__INIT;
        bad.data = &data;
        CU_ASSERT_EQUAL(gcs_code(JOB_SVC, "AddJob", &bad.base), GCS_STATUS_INVALID_ARGUMENT);
    }
    /* nothing was stored by the refused calls */
    CU_ASSERT_EQUAL(count_jobs(-1, NULL), 0);
}
BOTH(job_add_validation)

static void job_lifecycle(void)
{
    uint8_t j1[4], j2[4], j3[4];
    job_id_bytes(1, j1);
    job_id_bytes(2, j2);
    job_id_bytes(3, j3);
    CU_ASSERT_EQUAL(add_job(j1, 4, "python a.py", NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(add_job(j2, 4, "python b.py", "raysubmit_b"), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(add_job(j3, 4, "python c.py", NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(count_jobs(-1, NULL), 3);
    CU_ASSERT_EQUAL(count_jobs(2, NULL), 2);
    CU_ASSERT_EQUAL(count_jobs(0, NULL), 0);
    CU_ASSERT_EQUAL(count_jobs(10, NULL), 3);
    CU_ASSERT_EQUAL(count_jobs(-1, "02000000"), 1);
    CU_ASSERT_EQUAL(count_jobs(-1, "raysubmit_b"), 1);
    CU_ASSERT_EQUAL(count_jobs(-1, "09000000"), 0);
    /* a negative limit is refused */
    Ray__Rpc__GetAllJobInfoRequest neg = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    neg._limit_case = RAY__RPC__GET_ALL_JOB_INFO_REQUEST___LIMIT_LIMIT;
    neg.limit = -1;
    CU_ASSERT_NOT_EQUAL(gcs_code(JOB_SVC, "GetAllJobInfo", &neg.base), GCS_STATUS_OK);

    Ray__Rpc__GetAllJobInfoReply *r = all_jobs(-1, "02000000");
    uint64_t start = 0;
    if (r && r->n_job_info_list == 1) {
        const Ray__Rpc__JobTableData *j = r->job_info_list[0];
        CU_ASSERT(bin_eq(j->job_id, j2, 4));
        CU_ASSERT_FALSE(j->is_dead);
        CU_ASSERT(j->start_time > 0); /* set by the GCS when the driver leaves it 0 */
        CU_ASSERT_EQUAL(j->driver_pid, 4242);
        CU_ASSERT(j->entrypoint && strcmp(j->entrypoint, "python b.py") == 0);
        start = j->start_time;
    }
    rpc_msg_free((ProtobufCMessage *)r);

    CU_ASSERT_EQUAL(mark_finished(j2, 4), GCS_STATUS_OK);
    r = all_jobs(-1, "02000000");
    if (r && r->n_job_info_list == 1) {
        const Ray__Rpc__JobTableData *j = r->job_info_list[0];
        CU_ASSERT_TRUE(j->is_dead);
        CU_ASSERT(j->end_time > 0 && j->end_time >= start);
        CU_ASSERT_EQUAL(j->start_time, start);
        CU_ASSERT(j->entrypoint && strcmp(j->entrypoint, "python b.py") == 0);
    } else {
        CU_FAIL("job 2 is not listed");
    }
    rpc_msg_free((ProtobufCMessage *)r);
    /* the others are untouched */
    r = all_jobs(-1, "01000000");
    if (r && r->n_job_info_list == 1)
        CU_ASSERT_FALSE(r->job_info_list[0]->is_dead);
    rpc_msg_free((ProtobufCMessage *)r);
    /* finishing twice is harmless */
    CU_ASSERT_EQUAL(mark_finished(j2, 4), GCS_STATUS_OK);
    uint8_t unknown[4];
    job_id_bytes(77, unknown);
    CU_ASSERT_EQUAL(mark_finished(unknown, 4), GCS_STATUS_NOT_FOUND);
}
BOTH(job_lifecycle)

/* 1 if job n is listed, with is_dead in *dead. */
static int job_listed(int n, int *dead)
{
    char hex[RC_ID_HEX_MAX];
    uint8_t id[4];
    job_id_bytes(n, id);
    rc_id_hex(id, 4, hex);
    Ray__Rpc__GetAllJobInfoReply *r = all_jobs(-1, hex);
    int listed = r && r->n_job_info_list == 1;
    if (listed && dead)
        *dead = r->job_info_list[0]->is_dead;
    rpc_msg_free((ProtobufCMessage *)r);
    return listed;
}

/* Finished jobs are bounded (maximum_gcs_finished_job_cached_count): the ones that finished
 * first go, from memory and from storage; running jobs stay whatever their number. */
static void job_finished_eviction(void)
{
    setenv("RAYC_maximum_gcs_finished_job_cached_count", "2", 1);
    int rc = api_restart_gcs();
    unsetenv("RAYC_maximum_gcs_finished_job_cached_count");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    uint8_t id[4];
    for (int n = 1; n <= 7; n++) {
        job_id_bytes(n, id);
        CU_ASSERT_EQUAL(add_job(id, 4, "python churn.py", NULL), GCS_STATUS_OK);
    }
    /* Finish 4, 2, 6, 1 in that order; 3, 5 and 7 keep running. */
    const int order[] = {4, 2, 6, 1};
    for (size_t i = 0; i < 4; i++) {
        job_id_bytes(order[i], id);
        CU_ASSERT_EQUAL(mark_finished(id, 4), GCS_STATUS_OK);
        rc_sleep_ms(3); /* distinct end times: a reloading GCS orders by them */
    }
    CU_ASSERT_EQUAL(count_jobs(-1, NULL), 5);
    int dead = -1;
    CU_ASSERT_FALSE(job_listed(4, NULL));
    CU_ASSERT_FALSE(job_listed(2, NULL));
    CU_ASSERT_TRUE(job_listed(6, &dead) && dead);
    CU_ASSERT_TRUE(job_listed(1, &dead) && dead);
    for (int n = 3; n <= 7; n += 2)
        CU_ASSERT_TRUE(job_listed(n, &dead) && !dead);
    /* An evicted job is unknown now, as any job never seen. */
    job_id_bytes(4, id);
    CU_ASSERT_EQUAL(mark_finished(id, 4), GCS_STATUS_NOT_FOUND);
    if (!A.c.use_redis)
        return;
    /* A write answered after the deletions were sent (one connection, in order) means
     * Redis has done them: a GCS with the default bound finds what this one kept. */
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("fence"), STR("x"), 1, NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(api_restart_gcs(), 0);
    CU_ASSERT_EQUAL(count_jobs(-1, NULL), 5);
    CU_ASSERT_FALSE(job_listed(2, NULL));
    /* A GCS started with a smaller bound drops the earliest finished of what it loads. */
    setenv("RAYC_maximum_gcs_finished_job_cached_count", "1", 1);
    rc = api_restart_gcs();
    unsetenv("RAYC_maximum_gcs_finished_job_cached_count");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(count_jobs(-1, NULL), 4);
    CU_ASSERT_FALSE(job_listed(6, NULL));
    CU_ASSERT_TRUE(job_listed(1, &dead) && dead);
}
BOTH(job_finished_eviction)

/* Redis: jobs and the counter survive a SIGKILL of the GCS. Memory: the new GCS starts a
 * new cluster with neither. */
static void job_restart(void)
{
    CU_ASSERT_EQUAL(next_job_id(), 1);
    CU_ASSERT_EQUAL(next_job_id(), 2);
    uint8_t j1[4], j2[4];
    job_id_bytes(1, j1);
    job_id_bytes(2, j2);
    CU_ASSERT_EQUAL(add_job(j1, 4, "one", NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(add_job(j2, 4, "two", NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(mark_finished(j1, 4), GCS_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(api_restart_gcs(), 0);
    if (!A.c.use_redis) {
        CU_ASSERT_EQUAL(count_jobs(-1, NULL), 0);
        CU_ASSERT_EQUAL(next_job_id(), 1);
        return;
    }
    CU_ASSERT_EQUAL(count_jobs(-1, NULL), 2);
    Ray__Rpc__GetAllJobInfoReply *r = all_jobs(-1, "01000000");
    CU_ASSERT(r && r->n_job_info_list == 1 && r->job_info_list[0]->is_dead);
    rpc_msg_free((ProtobufCMessage *)r);
    r = all_jobs(-1, "02000000");
    CU_ASSERT(r && r->n_job_info_list == 1 && !r->job_info_list[0]->is_dead);
    rpc_msg_free((ProtobufCMessage *)r);
    CU_ASSERT_EQUAL(next_job_id(), 3);
    /* and the restored table still takes updates */
    CU_ASSERT_EQUAL(mark_finished(j2, 4), GCS_STATUS_OK);
}
BOTH(job_restart)

/* ---- nodes -------------------------------------------------------------------------- */

static void node_register_validation(void)
{
    uint8_t id[32];
    rc_id_random(id, sizeof(id));
    CU_ASSERT_EQUAL(register_fake_node(id, 27, "n", "127.0.0.1", 1234), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(register_fake_node(id, 29, "n", "127.0.0.1", 1234), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(register_fake_node(id, 0, "n", "127.0.0.1", 1234), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(register_fake_node(id, RC_NODE_ID_SIZE, "n", NULL, 1234), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(register_fake_node(id, RC_NODE_ID_SIZE, "n", "", 1234), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(register_fake_node(id, RC_NODE_ID_SIZE, "n", "127.0.0.1", 0), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(register_fake_node(id, RC_NODE_ID_SIZE, "n", "127.0.0.1", -5), GCS_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(register_fake_node(id, RC_NODE_ID_SIZE, "n", "127.0.0.1", 65536), GCS_STATUS_INVALID_ARGUMENT);
    Ray__Rpc__RegisterNodeRequest empty = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    CU_ASSERT_EQUAL(gcs_code(NODE_SVC, "RegisterNode", &empty.base), GCS_STATUS_INVALID_ARGUMENT);
    /* none of them got in */
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    int code;
    Ray__Rpc__GetAllNodeInfoReply *r = CALL(NODE_SVC, "GetAllNodeInfo", req, &code, Ray__Rpc__GetAllNodeInfoReply);
    if (r) {
        CU_ASSERT_EQUAL(r->n_node_info_list, 0);
        CU_ASSERT_EQUAL(r->total, 0);
    }
    rpc_msg_free((ProtobufCMessage *)r);
    /* the same node, well formed, is accepted; port 65535 is a port */
    CU_ASSERT_EQUAL(register_fake_node(id, RC_NODE_ID_SIZE, "n", "127.0.0.1", 65535), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(node_state(id, NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE);
}
BOTH(node_register_validation)

static size_t list_nodes(const Ray__Rpc__GetAllNodeInfoRequest *req, int64_t *total, int64_t *filtered)
{
    int code;
    Ray__Rpc__GetAllNodeInfoReply *r =
        (Ray__Rpc__GetAllNodeInfoReply *)gcs_call(NODE_SVC, "GetAllNodeInfo", &req->base, &code);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    size_t n = r ? r->n_node_info_list : (size_t)-1;
    if (total)
        *total = r ? r->total : -1;
    if (filtered)
        *filtered = r ? r->num_filtered : -1;
    rpc_msg_free((ProtobufCMessage *)r);
    return n;
}

static void node_queries(void)
{
    uint8_t ids[3][RC_NODE_ID_SIZE];
    static const char *const names[3] = {"n0", "n1", "n2"};
    static const char *const ips[3] = {"127.0.0.1", "127.0.0.2", "127.0.0.2"};
    for (int i = 0; i < 3; i++) {
        rc_id_random(ids[i], RC_NODE_ID_SIZE);
        CU_ASSERT_EQUAL(register_fake_node(ids[i], RC_NODE_ID_SIZE, names[i], ips[i], 40000 + i), GCS_STATUS_OK);
    }
    int64_t total, filtered;
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    CU_ASSERT_EQUAL(list_nodes(&req, &total, &filtered), 3);
    CU_ASSERT_EQUAL(total, 3);
    CU_ASSERT_EQUAL(filtered, 0);

    Ray__Rpc__GetAllNodeInfoRequest__NodeSelector sel, sel2;
    ray__rpc__get_all_node_info_request__node_selector__init(&sel);
    ray__rpc__get_all_node_info_request__node_selector__init(&sel2);
    Ray__Rpc__GetAllNodeInfoRequest__NodeSelector *sels[2] = {&sel, &sel2};
    req.node_selectors = sels;
    req.n_node_selectors = 1;
    sel.node_selector_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_ID;
    sel.node_id = bin(ids[1], RC_NODE_ID_SIZE);
    CU_ASSERT_EQUAL(list_nodes(&req, &total, &filtered), 1);
    CU_ASSERT_EQUAL(total, 3);
    CU_ASSERT_EQUAL(filtered, 2);
    sel.node_selector_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_NAME;
    sel.node_name = "n2";
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 1);
    sel.node_name = "nope";
    CU_ASSERT_EQUAL(list_nodes(&req, &total, &filtered), 0);
    CU_ASSERT_EQUAL(filtered, 3);
    sel.node_selector_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_IP_ADDRESS;
    sel.node_ip_address = "127.0.0.2";
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 2);
    /* selectors are alternatives: node n0 by name or any node on 127.0.0.2 */
    req.n_node_selectors = 2;
    sel2.node_selector_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__NODE_SELECTOR__NODE_SELECTOR_NODE_NAME;
    sel2.node_name = "n0";
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 3);
    req.n_node_selectors = 0;

    req._limit_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST___LIMIT_LIMIT;
    req.limit = 1;
    CU_ASSERT_EQUAL(list_nodes(&req, &total, NULL), 1);
    CU_ASSERT_EQUAL(total, 3);
    req.limit = 2;
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 2);
    req._limit_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST___LIMIT__NOT_SET;

    CU_ASSERT_EQUAL(unregister_node(ids[0], "test says bye"), GCS_STATUS_OK);
    req._state_filter_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST___STATE_FILTER_STATE_FILTER;
    req.state_filter = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    CU_ASSERT_EQUAL(list_nodes(&req, &total, NULL), 2);
    CU_ASSERT_EQUAL(total, 3);
    req.state_filter = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD;
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 1);
    /* a filter and a selector together: dead nodes on 127.0.0.2, of which there are none */
    req.n_node_selectors = 1;
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 0);

    /* CheckAlive answers per ID, in order; a malformed ID is simply not alive */
    ProtobufCBinaryData check[4] = {bin(ids[0], RC_NODE_ID_SIZE), bin(ids[1], RC_NODE_ID_SIZE),
                                    bin(ids[2], 5), bin(ids[2], RC_NODE_ID_SIZE)};
    Ray__Rpc__CheckAliveRequest creq = RAY__RPC__CHECK_ALIVE_REQUEST__INIT;
    creq.node_ids = check;
    creq.n_node_ids = 4;
    int code;
    Ray__Rpc__CheckAliveReply *cr = CALL(NODE_SVC, "CheckAlive", creq, &code, Ray__Rpc__CheckAliveReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (cr) {
        CU_ASSERT_EQUAL_FATAL(cr->n_raylet_alive, 4);
        CU_ASSERT_FALSE(cr->raylet_alive[0]);
        CU_ASSERT_TRUE(cr->raylet_alive[1]);
        CU_ASSERT_FALSE(cr->raylet_alive[2]);
        CU_ASSERT_TRUE(cr->raylet_alive[3]);
        CU_ASSERT(cr->ray_version && cr->ray_version[0]);
    }
    rpc_msg_free((ProtobufCMessage *)cr);
}
BOTH(node_queries)

static void node_unregister(void)
{
    uint8_t a[RC_NODE_ID_SIZE], b[RC_NODE_ID_SIZE];
    rc_id_random(a, sizeof(a));
    rc_id_random(b, sizeof(b));
    CU_ASSERT_EQUAL(register_fake_node(a, sizeof(a), "a", "127.0.0.1", 40001), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(register_fake_node(b, sizeof(b), "b", "127.0.0.1", 40002), GCS_STATUS_OK);
    /* registering an alive node again (a raylet after a GCS restart) refreshes it */
    CU_ASSERT_EQUAL(register_fake_node(a, sizeof(a), "a", "127.0.0.1", 40001), GCS_STATUS_OK);

    CU_ASSERT_EQUAL(unregister_node(a, "maintenance window 42"), GCS_STATUS_OK);
    Ray__Rpc__GetAllNodeInfoReply *r = get_node(a);
    if (r && r->n_node_info_list == 1) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[0];
        CU_ASSERT_EQUAL(n->state, RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n->death_info);
        CU_ASSERT_EQUAL(n->death_info->reason, RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION);
        CU_ASSERT_STRING_EQUAL(n->death_info->reason_message, "maintenance window 42");
        CU_ASSERT(n->end_time_ms > 0 && n->end_time_ms >= n->start_time_ms);
    } else {
        CU_FAIL("node a is not listed");
    }
    rpc_msg_free((ProtobufCMessage *)r);
    /* without a death info: still an expected termination */
    CU_ASSERT_EQUAL(unregister_node(b, NULL), GCS_STATUS_OK);
    Ray__Rpc__NodeDeathInfo__Reason reason = RAY__RPC__NODE_DEATH_INFO__REASON__UNSPECIFIED;
    CU_ASSERT_EQUAL(node_state(b, &reason, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    CU_ASSERT_EQUAL(reason, RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION);
    /* unregistering again is harmless and changes nothing */
    CU_ASSERT_EQUAL(unregister_node(a, "second time"), GCS_STATUS_OK);
    char message[128];
    CU_ASSERT_EQUAL(node_state(a, NULL, message, sizeof(message)), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    CU_ASSERT_STRING_EQUAL(message, "maintenance window 42");
    /* a dead node ID cannot come back */
    CU_ASSERT_NOT_EQUAL(register_fake_node(a, sizeof(a), "a", "127.0.0.1", 40001), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(node_state(a, NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    ProtobufCBinaryData check[1] = {bin(a, sizeof(a))};
    Ray__Rpc__CheckAliveRequest creq = RAY__RPC__CHECK_ALIVE_REQUEST__INIT;
    creq.node_ids = check;
    creq.n_node_ids = 1;
    int code;
    Ray__Rpc__CheckAliveReply *cr = CALL(NODE_SVC, "CheckAlive", creq, &code, Ray__Rpc__CheckAliveReply);
    if (cr && cr->n_raylet_alive == 1)
        CU_ASSERT_FALSE(cr->raylet_alive[0]);
    rpc_msg_free((ProtobufCMessage *)cr);
    /* an ID the GCS never saw: nothing to do, and it does not appear */
    uint8_t never[RC_NODE_ID_SIZE];
    rc_id_random(never, sizeof(never));
    CU_ASSERT_EQUAL(unregister_node(never, "who?"), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(node_state(never, NULL, NULL, 0), -1);
}
BOTH(node_unregister)

/* Dead records are bounded (maximum_gcs_dead_node_cached_count): the oldest go, from
 * memory and from storage. */
static void node_dead_eviction(void)
{
    setenv("RAYC_maximum_gcs_dead_node_cached_count", "2", 1);
    int rc = api_restart_gcs();
    unsetenv("RAYC_maximum_gcs_dead_node_cached_count");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    uint8_t ids[4][RC_NODE_ID_SIZE], alive[RC_NODE_ID_SIZE];
    rc_id_random(alive, RC_NODE_ID_SIZE);
    CU_ASSERT_EQUAL(register_fake_node(alive, RC_NODE_ID_SIZE, "stays", "127.0.0.1", 40000), GCS_STATUS_OK);
    for (int i = 0; i < 4; i++) {
        rc_id_random(ids[i], RC_NODE_ID_SIZE);
        CU_ASSERT_EQUAL(register_fake_node(ids[i], RC_NODE_ID_SIZE, "mortal", "127.0.0.1", 40001 + i), GCS_STATUS_OK);
    }
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(unregister_node(ids[i], "bye"), GCS_STATUS_OK);
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    req._state_filter_case = RAY__RPC__GET_ALL_NODE_INFO_REQUEST___STATE_FILTER_STATE_FILTER;
    req.state_filter = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD;
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 2);
    CU_ASSERT_EQUAL(node_state(ids[0], NULL, NULL, 0), -1);
    CU_ASSERT_EQUAL(node_state(ids[1], NULL, NULL, 0), -1);
    CU_ASSERT_EQUAL(node_state(ids[2], NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    CU_ASSERT_EQUAL(node_state(ids[3], NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    CU_ASSERT_EQUAL(node_state(alive, NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE);
    if (!A.c.use_redis)
        return;
    /* A write answered after the evictions were sent (one connection, in order) means
     * Redis has done them. */
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("fence"), STR("x"), 1, NULL), GCS_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(api_restart_gcs(), 0); /* default bound again: storage decides */
    CU_ASSERT_EQUAL(list_nodes(&req, NULL, NULL), 2);
    CU_ASSERT_EQUAL(node_state(ids[0], NULL, NULL, 0), -1);
    CU_ASSERT_EQUAL(node_state(ids[3], NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
}
BOTH(node_dead_eviction)

/* UnregisterNode and, right behind it, RegisterNode of the same node, both in flight at
 * once (with Redis both wait on storage); done for several nodes together so the calls
 * overlap on any machine. Whatever the GCS decides, it must decide once: each node is
 * listed once, in the state its registration's answer implies, CheckAlive agrees, and a
 * restarted GCS (Redis) reloads the same state. */
enum { RACERS = 8 };

static void node_unregister_register_race(void)
{
    static uint8_t ids[RACERS][RC_NODE_ID_SIZE];
    static pending unreg[RACERS], reg[RACERS]; /* static: callbacks may outlive a failed case */
    for (int i = 0; i < RACERS; i++) {
        rc_id_random(ids[i], RC_NODE_ID_SIZE);
        CU_ASSERT_EQUAL_FATAL(register_fake_node(ids[i], RC_NODE_ID_SIZE, "racer", "127.0.0.1", 40001 + i),
                              GCS_STATUS_OK);
    }
    memset(unreg, 0, sizeof(unreg));
    memset(reg, 0, sizeof(reg));
    rpc_client *cli = gcs_client_rpc(A.gc);
    for (int i = 0; i < RACERS; i++) {
        Ray__Rpc__UnregisterNodeRequest ureq = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
        ureq.node_id = bin(ids[i], RC_NODE_ID_SIZE);
        CU_ASSERT_EQUAL(
            rpc_client_call(cli, NODE_SVC, "UnregisterNode", &ureq.base, CALL_TIMEOUT_MS, on_pending, &unreg[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        Ray__Rpc__GcsNodeInfo info = RAY__RPC__GCS_NODE_INFO__INIT;
        info.node_id = bin(ids[i], RC_NODE_ID_SIZE);
        info.node_manager_address = "127.0.0.1";
        info.node_manager_port = 40001 + i;
        info.node_name = "racer";
        Ray__Rpc__RegisterNodeRequest rreq = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
        rreq.node_info = &info;
        CU_ASSERT_EQUAL(
            rpc_client_call(cli, NODE_SVC, "RegisterNode", &rreq.base, CALL_TIMEOUT_MS, on_pending, &reg[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        CU_ASSERT(run_until(&unreg[i].done, CALL_TIMEOUT_MS));
        CU_ASSERT(run_until(&reg[i].done, CALL_TIMEOUT_MS));
        CU_ASSERT_EQUAL(unreg[i].status, GRPC_STATUS_OK);
        CU_ASSERT_EQUAL(reg[i].status, GRPC_STATUS_OK);
    }
    pending_free(unreg, RACERS);
    pending_free(reg, RACERS);

    int states[RACERS];
    size_t twice = 0;
    for (int i = 0; i < RACERS; i++) {
        Ray__Rpc__GetAllNodeInfoReply *r = get_node(ids[i]);
        size_t listed = r ? r->n_node_info_list : 0;
        states[i] = listed ? (int)r->node_info_list[0]->state : -1;
        if (listed != 1 && twice++ == 0) {
            fprintf(stderr, "node_unregister_register_race (%s): node listed %zu times (register answered %d), states:",
                    A.c.use_redis ? "redis" : "memory", listed, reg[i].code);
            for (size_t k = 0; k < listed; k++)
                fprintf(stderr, " %s", r->node_info_list[k]->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE
                                           ? "ALIVE" : "DEAD");
            fprintf(stderr, "\n");
        }
        rpc_msg_free((ProtobufCMessage *)r);
        /* an accepted registration left the node alive; a refused one left it dead */
        if (listed == 1)
            CU_ASSERT_EQUAL(states[i], reg[i].code == GCS_STATUS_OK ? RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE
                                                                    : RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
        ProtobufCBinaryData check[1] = {bin(ids[i], RC_NODE_ID_SIZE)};
        Ray__Rpc__CheckAliveRequest creq = RAY__RPC__CHECK_ALIVE_REQUEST__INIT;
        creq.node_ids = check;
        creq.n_node_ids = 1;
        int code;
        Ray__Rpc__CheckAliveReply *cr = CALL(NODE_SVC, "CheckAlive", creq, &code, Ray__Rpc__CheckAliveReply);
        int alive = cr && cr->n_raylet_alive == 1 && cr->raylet_alive[0];
        rpc_msg_free((ProtobufCMessage *)cr);
        CU_ASSERT_EQUAL(alive, states[i] == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE);
    }
    if (twice)
        fprintf(stderr, "node_unregister_register_race: %zu of %d nodes listed other than once\n", twice, RACERS);
    CU_ASSERT_EQUAL(twice, 0);
    if (!A.c.use_redis)
        return;
    CU_ASSERT_EQUAL_FATAL(api_restart_gcs(), 0);
    for (int i = 0; i < RACERS; i++)
        CU_ASSERT_EQUAL(node_state(ids[i], NULL, NULL, 0), states[i]);
}
BOTH(node_unregister_register_race)

/* GetClusterId, and what a SIGKILL of the GCS does to the cluster identity and tables. */
static void node_cluster_id_restart(void)
{
    uint8_t before[RC_CLUSTER_ID_SIZE], after[RC_CLUSTER_ID_SIZE];
    CU_ASSERT_EQUAL_FATAL(get_cluster_id(before), RC_CLUSTER_ID_SIZE);
    CU_ASSERT(memcmp(before, gcs_client_cluster_id(A.gc), RC_CLUSTER_ID_SIZE) == 0);
    uint8_t alive[RC_NODE_ID_SIZE], dead[RC_NODE_ID_SIZE];
    rc_id_random(alive, sizeof(alive));
    rc_id_random(dead, sizeof(dead));
    CU_ASSERT_EQUAL(register_fake_node(alive, sizeof(alive), "alive", "127.0.0.1", 40001), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(register_fake_node(dead, sizeof(dead), "dead", "127.0.0.1", 40002), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(unregister_node(dead, "gone before the restart"), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(kv_put(STR("ns"), STR("k"), STR("kept"), 1, NULL), GCS_STATUS_OK);

    CU_ASSERT_EQUAL_FATAL(api_restart_gcs(), 0);
    CU_ASSERT_EQUAL_FATAL(get_cluster_id(after), RC_CLUSTER_ID_SIZE);
    if (!A.c.use_redis) {
        CU_ASSERT(memcmp(before, after, RC_CLUSTER_ID_SIZE) != 0);
        CU_ASSERT_EQUAL(node_state(alive, NULL, NULL, 0), -1);
        char buf[8];
        size_t len = sizeof(buf);
        CU_ASSERT_EQUAL(kv_get(STR("ns"), STR("k"), buf, &len), GCS_STATUS_NOT_FOUND);
        return;
    }
    CU_ASSERT(memcmp(before, after, RC_CLUSTER_ID_SIZE) == 0);
    CU_ASSERT_EQUAL(node_state(alive, NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE);
    char message[128] = "";
    CU_ASSERT_EQUAL(node_state(dead, NULL, message, sizeof(message)), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    CU_ASSERT_STRING_EQUAL(message, "gone before the restart");
    /* the dead ID is still refused by the restarted GCS */
    CU_ASSERT_NOT_EQUAL(register_fake_node(dead, sizeof(dead), "dead", "127.0.0.1", 40002), GCS_STATUS_OK);
    CU_ASSERT(kv_holds("ns", "k", "kept"));
}
BOTH(node_cluster_id_restart)

/* ---- cluster-ID check --------------------------------------------------------------- */

static void cluster_id_check(void)
{
    rpc_client *other;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(A.ctx, A.c.gcs_address, NULL, &other), 0);
    uint8_t wrong[RC_CLUSTER_ID_SIZE];
    char hex[RC_ID_HEX_MAX], err[300];
    rc_id_random(wrong, sizeof(wrong));
    rpc_client_set_metadata(other, "ray_cluster_id", rc_id_hex(wrong, sizeof(wrong), hex));

    ProtobufCMessage *reply = NULL;
    Ray__Rpc__InternalKVPutRequest put = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    put.namespace_ = STR("ns");
    put.key = STR("k");
    put.value = STR("from another cluster");
    put.overwrite = 1;
    int st = rpc_client_call_sync(other, KV_SVC, "InternalKVPut", &put.base, CALL_TIMEOUT_MS, &reply, err, sizeof(err));
    CU_ASSERT_EQUAL(st, GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "WrongClusterID"));
    rpc_msg_free(reply);
    reply = NULL;
    Ray__Rpc__GetAllNodeInfoRequest nodes = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    st = rpc_client_call_sync(other, NODE_SVC, "GetAllNodeInfo", &nodes.base, CALL_TIMEOUT_MS, &reply, err,
                              sizeof(err));
    CU_ASSERT_EQUAL(st, GRPC_STATUS_UNAUTHENTICATED);
    rpc_msg_free(reply);
    reply = NULL;
    /* the refused write did not happen */
    int code;
    CU_ASSERT_EQUAL(kv_exists(STR("ns"), STR("k"), &code), 0);

    /* GetClusterId is how a client learns the ID: always allowed */
    Ray__Rpc__GetClusterIdRequest idreq = RAY__RPC__GET_CLUSTER_ID_REQUEST__INIT;
    st = rpc_client_call_sync(other, NODE_SVC, "GetClusterId", &idreq.base, CALL_TIMEOUT_MS, &reply, err, sizeof(err));
    CU_ASSERT_EQUAL(st, GRPC_STATUS_OK);
    if (reply) {
        const Ray__Rpc__GetClusterIdReply *r = (const void *)reply;
        CU_ASSERT(bin_eq(r->cluster_id, gcs_client_cluster_id(A.gc), RC_CLUSTER_ID_SIZE));
    }
    rpc_msg_free(reply);
    reply = NULL;

    /* the right ID passes; so does no ID at all, as with Ray */
    rpc_client_set_metadata(other, "ray_cluster_id", rc_id_hex(gcs_client_cluster_id(A.gc), RC_CLUSTER_ID_SIZE, hex));
    st = rpc_client_call_sync(other, KV_SVC, "InternalKVPut", &put.base, CALL_TIMEOUT_MS, &reply, err, sizeof(err));
    CU_ASSERT_EQUAL(st, GRPC_STATUS_OK);
    rpc_msg_free(reply);
    reply = NULL;
    rpc_client_set_metadata(other, "ray_cluster_id", NULL);
    st = rpc_client_call_sync(other, NODE_SVC, "GetAllNodeInfo", &nodes.base, CALL_TIMEOUT_MS, &reply, err,
                              sizeof(err));
    CU_ASSERT_EQUAL(st, GRPC_STATUS_OK);
    rpc_msg_free(reply);
    rpc_client_destroy(other);
}
BOTH(cluster_id_check)

/* ---- resources ---------------------------------------------------------------------- */

/* Value of key in a map<string,double> (entries share one layout), or -1 if absent. */
static double map_value(void *const *entries, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const Ray__Rpc__TotalResources__ResourcesTotalEntry *e = entries[i];
        if (e->key && strcmp(e->key, key) == 0)
            return e->value;
    }
    return -1;
}

static const char *label_value(void *const *entries, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const Ray__Rpc__ResourcesData__LabelsEntry *e = entries[i];
        if (e->key && strcmp(e->key, key) == 0)
            return e->value;
    }
    return NULL;
}

static void resources_real_raylet(void)
{
    static const char *const flags[] = {"--num-cpus", "3", "--num-gpus", "2", "--accelerator-type", "A100",
                                        "--gpu-memory", "40GiB", "--resources", "{\"fast_disk\": 1}", NULL};
    int idx;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&A.c, flags, &idx), 0);
    uint8_t id[RC_NODE_ID_SIZE];
    node_id_of_raylet(idx, id);

    int code;
    Ray__Rpc__GetAllTotalResourcesRequest treq = RAY__RPC__GET_ALL_TOTAL_RESOURCES_REQUEST__INIT;
    Ray__Rpc__GetAllTotalResourcesReply *tr =
        CALL(RES_SVC, "GetAllTotalResources", treq, &code, Ray__Rpc__GetAllTotalResourcesReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    int found = 0;
    for (size_t i = 0; tr && i < tr->n_resources_list; i++) {
        const Ray__Rpc__TotalResources *t = tr->resources_list[i];
        if (!bin_eq(t->node_id, id, sizeof(id)))
            continue;
        found++;
        void *const *m = (void *const *)t->resources_total;
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, t->n_resources_total, "CPU"), 3, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, t->n_resources_total, "GPU"), 2, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, t->n_resources_total, "fast_disk"), 1, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, t->n_resources_total, "accelerator_type:A100"), 1, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, t->n_resources_total, "node:127.0.0.1"), 1, 1e-9);
        CU_ASSERT(map_value(m, t->n_resources_total, "memory") > 0);
    }
    CU_ASSERT_EQUAL(found, 1);
    rpc_msg_free((ProtobufCMessage *)tr);

    /* nothing runs on the node: all of it is available */
    Ray__Rpc__GetAllAvailableResourcesRequest areq = RAY__RPC__GET_ALL_AVAILABLE_RESOURCES_REQUEST__INIT;
    Ray__Rpc__GetAllAvailableResourcesReply *ar =
        CALL(RES_SVC, "GetAllAvailableResources", areq, &code, Ray__Rpc__GetAllAvailableResourcesReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    found = 0;
    for (size_t i = 0; ar && i < ar->n_resources_list; i++) {
        const Ray__Rpc__AvailableResources *a = ar->resources_list[i];
        if (!bin_eq(a->node_id, id, sizeof(id)))
            continue;
        found++;
        void *const *m = (void *const *)a->resources_available;
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, a->n_resources_available, "CPU"), 3, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, a->n_resources_available, "GPU"), 2, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(map_value(m, a->n_resources_available, "fast_disk"), 1, 1e-9);
    }
    CU_ASSERT_EQUAL(found, 1);
    rpc_msg_free((ProtobufCMessage *)ar);

    Ray__Rpc__GetAllResourceUsageRequest ureq = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    Ray__Rpc__GetAllResourceUsageReply *ur =
        CALL(RES_SVC, "GetAllResourceUsage", ureq, &code, Ray__Rpc__GetAllResourceUsageReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    found = 0;
    if (ur && ur->resource_usage_data) {
        const Ray__Rpc__ResourceUsageBatchData *b = ur->resource_usage_data;
        for (size_t i = 0; i < b->n_batch; i++) {
            const Ray__Rpc__ResourcesData *d = b->batch[i];
            if (!bin_eq(d->node_id, id, sizeof(id)))
                continue;
            found++;
            CU_ASSERT_DOUBLE_EQUAL(map_value((void *const *)d->resources_total, d->n_resources_total, "CPU"), 3, 1e-9);
            CU_ASSERT_DOUBLE_EQUAL(map_value((void *const *)d->resources_total, d->n_resources_total, "GPU"), 2, 1e-9);
            void *const *avail = (void *const *)d->resources_available;
            CU_ASSERT_DOUBLE_EQUAL(map_value(avail, d->n_resources_available, "fast_disk"), 1, 1e-9);
            const char *acc = label_value((void *const *)d->labels, d->n_labels, "ray.io/accelerator-type");
            CU_ASSERT(acc && strcmp(acc, "A100") == 0);
            const char *nid = label_value((void *const *)d->labels, d->n_labels, "ray.io/node-id");
            CU_ASSERT(nid && strcmp(nid, A.c.raylets[idx].node_id) == 0);
        }
        /* no demand anywhere */
        if (b->resource_load_by_shape)
            CU_ASSERT_EQUAL(b->resource_load_by_shape->n_resource_demands, 0);
    }
    CU_ASSERT_EQUAL(found, 1);
    rpc_msg_free((ProtobufCMessage *)ur);
}
BOTH(resources_real_raylet)

/* A ResourceDemand with shape {k[i]: v[i]} (in the order given) and counts. Everything
 * lives in d's storage. */
typedef struct demand {
    Ray__Rpc__ResourceDemand d;
    Ray__Rpc__ResourceDemand__ShapeEntry e[3];
    Ray__Rpc__ResourceDemand__ShapeEntry *p[3];
    Ray__Rpc__LabelSelector sel;
    Ray__Rpc__LabelSelector *selp[1];
    Ray__Rpc__LabelSelectorConstraint con;
    Ray__Rpc__LabelSelectorConstraint *conp[1];
    char *values[1];
} demand;

static void demand_init(demand *x, const char *k0, double v0, const char *k1, double v1, uint64_t ready,
                        uint64_t infeasible, int64_t backlog, const char *region)
{
    memset(x, 0, sizeof(*x));
    ray__rpc__resource_demand__init(&x->d);
    const char *keys[2] = {k0, k1};
    double vals[2] = {v0, v1};
    for (int i = 0; i < 2 && keys[i]; i++) {
        ray__rpc__resource_demand__shape_entry__init(&x->e[i]);
        x->e[i].key = (char *)keys[i];
        x->e[i].value = vals[i];
        x->p[i] = &x->e[i];
        x->d.n_shape++;
    }
    x->d.shape = x->p;
    x->d.num_ready_requests_queued = ready;
    x->d.num_infeasible_requests_queued = infeasible;
    x->d.backlog_size = backlog;
    if (region) {
        ray__rpc__label_selector__init(&x->sel);
        ray__rpc__label_selector_constraint__init(&x->con);
        x->con.label_key = "region";
        x->con.operator_ = RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_IN;
        x->values[0] = (char *)region;
        x->con.label_values = x->values;
        x->con.n_label_values = 1;
        x->conp[0] = &x->con;
        x->sel.label_constraints = x->conp;
        x->sel.n_label_constraints = 1;
        x->selp[0] = &x->sel;
        x->d.label_selectors = x->selp;
        x->d.n_label_selectors = 1;
    }
}

static int report(const uint8_t *id, size_t id_len, demand *demands, size_t n, double cpu_available)
{
    Ray__Rpc__ResourceDemand *ptrs[4];
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &demands[i].d;
    Ray__Rpc__ResourceLoad load = RAY__RPC__RESOURCE_LOAD__INIT;
    load.resource_demands = ptrs;
    load.n_resource_demands = n;
    Ray__Rpc__ResourcesData__ResourcesAvailableEntry avail = RAY__RPC__RESOURCES_DATA__RESOURCES_AVAILABLE_ENTRY__INIT;
    Ray__Rpc__ResourcesData__ResourcesAvailableEntry *availp[1] = {&avail};
    avail.key = "CPU";
    avail.value = cpu_available;
    Ray__Rpc__ResourcesData data = RAY__RPC__RESOURCES_DATA__INIT;
    data.node_id = bin(id, id_len);
    data.resources_available = availp;
    data.n_resources_available = 1;
    data.resource_load_by_shape = &load;
    Rayc__Rpc__ReportResourceUsageRequest req = RAYC__RPC__REPORT_RESOURCE_USAGE_REQUEST__INIT;
    req.resources = &data;
    return gcs_code(REPORT_SVC, "ReportResourceUsage", &req.base);
}

/* The summed demand whose shape is exactly {k0: v0[, k1: v1]} (any order) with (region
 * non-NULL) or without label selectors; NULL if none. */
static const Ray__Rpc__ResourceDemand *find_demand(const Ray__Rpc__ResourceLoad *load, const char *k0, double v0,
                                                  const char *k1, double v1, int with_selector)
{
    size_t want = k1 ? 2 : 1;
    for (size_t i = 0; load && i < load->n_resource_demands; i++) {
        const Ray__Rpc__ResourceDemand *d = load->resource_demands[i];
        if (d->n_shape != want || (d->n_label_selectors > 0) != (with_selector != 0))
            continue;
        void *const *m = (void *const *)d->shape;
        if (map_value(m, d->n_shape, k0) != v0 || (k1 && map_value(m, d->n_shape, k1) != v1))
            continue;
        return d;
    }
    return NULL;
}

static void resources_report_demand(void)
{
    uint8_t a[RC_NODE_ID_SIZE], b[RC_NODE_ID_SIZE], unknown[RC_NODE_ID_SIZE];
    rc_id_random(a, sizeof(a));
    rc_id_random(b, sizeof(b));
    rc_id_random(unknown, sizeof(unknown));
    demand none[1];
    demand_init(&none[0], "CPU", 1, NULL, 0, 1, 0, 0, NULL);
    CU_ASSERT_EQUAL(report(unknown, sizeof(unknown), none, 1, 1), GCS_STATUS_NOT_FOUND);
    CU_ASSERT_EQUAL(report(a, 5, none, 1, 1), GCS_STATUS_INVALID_ARGUMENT);
    Rayc__Rpc__ReportResourceUsageRequest empty = RAYC__RPC__REPORT_RESOURCE_USAGE_REQUEST__INIT;
    CU_ASSERT_EQUAL(gcs_code(REPORT_SVC, "ReportResourceUsage", &empty.base), GCS_STATUS_INVALID_ARGUMENT);

    CU_ASSERT_EQUAL(register_fake_node(a, sizeof(a), "a", "127.0.0.1", 40001), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(register_fake_node(b, sizeof(b), "b", "127.0.0.1", 40002), GCS_STATUS_OK);
    demand da[2], db[3];
    demand_init(&da[0], "CPU", 1, NULL, 0, 2, 0, 1, NULL);
    demand_init(&da[1], "CPU", 1, "GPU", 1, 1, 0, 0, NULL);
    demand_init(&db[0], "CPU", 1, NULL, 0, 3, 1, 2, NULL);
    demand_init(&db[1], "GPU", 1, "CPU", 1, 4, 2, 0, NULL); /* same shape, other key order */
    demand_init(&db[2], "CPU", 1, NULL, 0, 7, 0, 0, "eu");  /* same shape, with a selector */
    CU_ASSERT_EQUAL(report(a, sizeof(a), da, 2, 3.5), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(report(b, sizeof(b), db, 3, 0), GCS_STATUS_OK);

    Ray__Rpc__GetAllResourceUsageRequest ureq = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    int code;
    Ray__Rpc__GetAllResourceUsageReply *ur =
        CALL(RES_SVC, "GetAllResourceUsage", ureq, &code, Ray__Rpc__GetAllResourceUsageReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (ur && ur->resource_usage_data) {
        const Ray__Rpc__ResourceUsageBatchData *batch = ur->resource_usage_data;
        const Ray__Rpc__ResourceLoad *load = batch->resource_load_by_shape;
        CU_ASSERT_PTR_NOT_NULL(load);
        CU_ASSERT_EQUAL(load ? load->n_resource_demands : 0, 3);
        const Ray__Rpc__ResourceDemand *cpu = find_demand(load, "CPU", 1, NULL, 0, 0);
        CU_ASSERT_PTR_NOT_NULL(cpu);
        if (cpu) {
            CU_ASSERT_EQUAL(cpu->num_ready_requests_queued, 5);
            CU_ASSERT_EQUAL(cpu->num_infeasible_requests_queued, 1);
            CU_ASSERT_EQUAL(cpu->backlog_size, 3);
        }
        const Ray__Rpc__ResourceDemand *both = find_demand(load, "CPU", 1, "GPU", 1, 0);
        CU_ASSERT_PTR_NOT_NULL(both);
        if (both) {
            CU_ASSERT_EQUAL(both->num_ready_requests_queued, 5);
            CU_ASSERT_EQUAL(both->num_infeasible_requests_queued, 2);
        }
        const Ray__Rpc__ResourceDemand *eu = find_demand(load, "CPU", 1, NULL, 0, 1);
        CU_ASSERT_PTR_NOT_NULL(eu);
        if (eu)
            CU_ASSERT_EQUAL(eu->num_ready_requests_queued, 7);
        /* each node's own report is in the batch */
        int seen = 0;
        for (size_t i = 0; i < batch->n_batch; i++) {
            const Ray__Rpc__ResourcesData *d = batch->batch[i];
            if (bin_eq(d->node_id, a, sizeof(a))) {
                seen++;
                CU_ASSERT_DOUBLE_EQUAL(
                    map_value((void *const *)d->resources_available, d->n_resources_available, "CPU"), 3.5, 1e-9);
            }
        }
        CU_ASSERT_EQUAL(seen, 1);
    } else {
        CU_FAIL("no resource usage data");
    }
    rpc_msg_free((ProtobufCMessage *)ur);

    /* a newer report replaces the older one; a dead node's demand is gone */
    demand da2[1];
    demand_init(&da2[0], "CPU", 1, NULL, 0, 1, 0, 0, NULL);
    CU_ASSERT_EQUAL(report(a, sizeof(a), da2, 1, 3), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(unregister_node(b, "left"), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(report(b, sizeof(b), db, 3, 0), GCS_STATUS_NOT_FOUND);
    ur = CALL(RES_SVC, "GetAllResourceUsage", ureq, &code, Ray__Rpc__GetAllResourceUsageReply);
    if (ur && ur->resource_usage_data) {
        const Ray__Rpc__ResourceLoad *load = ur->resource_usage_data->resource_load_by_shape;
        CU_ASSERT_EQUAL(load ? load->n_resource_demands : 0, 1);
        const Ray__Rpc__ResourceDemand *cpu = find_demand(load, "CPU", 1, NULL, 0, 0);
        if (cpu)
            CU_ASSERT_EQUAL(cpu->num_ready_requests_queued, 1);
        CU_ASSERT_EQUAL(ur->resource_usage_data->n_batch, 1);
    }
    rpc_msg_free((ProtobufCMessage *)ur);
}
BOTH(resources_report_demand)

/* ---- pub/sub ------------------------------------------------------------------------ */

typedef struct node_events {
    uint8_t id[RC_NODE_ID_SIZE];
    int states[8]; /* GcsNodeState of each message about id, in arrival order */
    char death_message[128];
    int n;
    int subscribed;
} node_events;

static void on_node_message(const Ray__Rpc__PubMessage *m, void *arg)
{
    node_events *ev = arg;
    if (m->channel_type != RAY__RPC__CHANNEL_TYPE__GCS_NODE_INFO_CHANNEL ||
        m->inner_message_case != RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_NODE_INFO_MESSAGE ||
        !bin_eq(m->node_info_message->node_id, ev->id, RC_NODE_ID_SIZE) || ev->n == 8)
        return;
    ev->states[ev->n++] = (int)m->node_info_message->state;
    const Ray__Rpc__NodeDeathInfo *d = m->node_info_message->death_info;
    if (d && d->reason_message)
        snprintf(ev->death_message, sizeof(ev->death_message), "%s", d->reason_message);
}

static void on_node_subscribed(void *arg)
{
    ((node_events *)arg)->subscribed = 1;
}

static void pubsub_node_channel(void)
{
    static node_events ev; /* static: the subscriber may outlive this frame */
    memset(&ev, 0, sizeof(ev));
    rc_id_random(ev.id, sizeof(ev.id));
    gcs_subscriber_callbacks cbs = {on_node_message, on_node_subscribed, &ev};
    gcs_subscriber *sub = gcs_subscriber_new(A.gc, &cbs);
    gcs_subscriber_subscribe(sub, RAY__RPC__CHANNEL_TYPE__GCS_NODE_INFO_CHANNEL, NULL, 0);
    CU_ASSERT(run_until(&ev.subscribed, 5000));
    CU_ASSERT_EQUAL(register_fake_node(ev.id, RC_NODE_ID_SIZE, "watched", "127.0.0.1", 40001), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(unregister_node(ev.id, "watched node leaves"), GCS_STATUS_OK);
    int two = 0;
    for (int64_t i = 0; i < 100 && ev.n < 2; i++)
        run_until(&two, 50);
    CU_ASSERT_EQUAL(ev.n, 2);
    CU_ASSERT_EQUAL(ev.states[0], RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE);
    CU_ASSERT_EQUAL(ev.states[1], RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    CU_ASSERT_STRING_EQUAL(ev.death_message, "watched node leaves");
    /* nothing more about it arrives later */
    run_until(&two, 200);
    CU_ASSERT_EQUAL(ev.n, 2);
    gcs_subscriber_destroy(sub);
}
BOTH(pubsub_node_channel)

/* An asynchronous GcsSubscriberPoll whose reply the test inspects. */
typedef struct poll_call {
    int done;
    int status;
    Ray__Rpc__GcsSubscriberPollReply *reply;
} poll_call;

static void on_polled(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    poll_call *p = arg;
    p->done = 1;
    p->status = st->code;
    p->reply = (Ray__Rpc__GcsSubscriberPollReply *)reply;
}

static void poll_start(poll_call *p, ProtobufCBinaryData sub_id, ProtobufCBinaryData pub_id, int64_t acked)
{
    memset(p, 0, sizeof(*p));
    Ray__Rpc__GcsSubscriberPollRequest req = RAY__RPC__GCS_SUBSCRIBER_POLL_REQUEST__INIT;
    req.subscriber_id = sub_id;
    req.publisher_id = pub_id;
    req.max_processed_sequence_id = acked;
    CU_ASSERT_EQUAL(rpc_client_call(gcs_client_rpc(A.gc), PUBSUB_SVC, "GcsSubscriberPoll", &req.base,
                                    CALL_TIMEOUT_MS, on_polled, p),
                    0);
}

static void poll_free(poll_call *p)
{
    rpc_msg_free((ProtobufCMessage *)p->reply);
    p->reply = NULL;
}

static int publish_job(const uint8_t *job_id, int64_t driver_pid)
{
    Ray__Rpc__JobTableData job = RAY__RPC__JOB_TABLE_DATA__INIT;
    job.job_id = bin(job_id, RC_JOB_ID_SIZE);
    job.driver_pid = driver_pid;
    Ray__Rpc__PubMessage m = RAY__RPC__PUB_MESSAGE__INIT;
    Ray__Rpc__PubMessage *ms[1] = {&m};
    m.channel_type = RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL;
    m.key_id = job.job_id;
    m.inner_message_case = RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_JOB_MESSAGE;
    m.job_message = &job;
    Ray__Rpc__GcsPublishRequest req = RAY__RPC__GCS_PUBLISH_REQUEST__INIT;
    req.pub_messages = ms;
    req.n_pub_messages = 1;
    return gcs_code(PUBSUB_SVC, "GcsPublish", &req.base);
}

/* Subscribes (or, with unsub, unsubscribes) sub_id to channel, for key or (empty) all keys. */
static int command(ProtobufCBinaryData sub_id, Ray__Rpc__ChannelType channel, ProtobufCBinaryData key, int unsub)
{
    Ray__Rpc__SubMessage sm = RAY__RPC__SUB_MESSAGE__INIT;
    Ray__Rpc__UnsubscribeMessage um = RAY__RPC__UNSUBSCRIBE_MESSAGE__INIT;
    Ray__Rpc__Command cmd = RAY__RPC__COMMAND__INIT;
    Ray__Rpc__Command *cmds[1] = {&cmd};
    cmd.channel_type = channel;
    cmd.key_id = key;
    if (unsub) {
        cmd.command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_UNSUBSCRIBE_MESSAGE;
        cmd.unsubscribe_message = &um;
    } else {
        cmd.command_message_one_of_case = RAY__RPC__COMMAND__COMMAND_MESSAGE_ONE_OF_SUBSCRIBE_MESSAGE;
        cmd.subscribe_message = &sm;
    }
    Ray__Rpc__GcsSubscriberCommandBatchRequest req = RAY__RPC__GCS_SUBSCRIBER_COMMAND_BATCH_REQUEST__INIT;
    req.subscriber_id = sub_id;
    req.commands = cmds;
    req.n_commands = 1;
    return gcs_code(PUBSUB_SVC, "GcsSubscriberCommandBatch", &req.base);
}

#define subscribe(sub, channel, key) command((sub), (channel), (key), 0)

static void pubsub_raw_protocol(void)
{
    uint8_t sub_id[RC_UNIQUE_ID_SIZE], stale[RC_UNIQUE_ID_SIZE], pub_id[RC_UNIQUE_ID_SIZE];
    rc_id_random(sub_id, sizeof(sub_id));
    rc_id_random(stale, sizeof(stale));
    /* A poll naming a publisher this GCS is not comes from before a restart: answered at
     * once, with the publisher ID to use from now on. */
    static poll_call p; /* static: a held poll may outlive this frame */
    poll_start(&p, bin(sub_id, sizeof(sub_id)), bin(stale, sizeof(stale)), 99);
    CU_ASSERT(run_until(&p.done, 2000));
    CU_ASSERT_EQUAL_FATAL(p.status, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(p.reply->publisher_id.len, RC_UNIQUE_ID_SIZE);
    CU_ASSERT(memcmp(p.reply->publisher_id.data, stale, sizeof(stale)) != 0);
    CU_ASSERT_EQUAL(p.reply->n_pub_messages, 0);
    memcpy(pub_id, p.reply->publisher_id.data, sizeof(pub_id));
    poll_free(&p);

    CU_ASSERT_EQUAL(subscribe(bin(sub_id, sizeof(sub_id)), RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL, bin(NULL, 0)),
                    GCS_STATUS_OK);
    /* nothing published yet: the poll is held */
    poll_start(&p, bin(sub_id, sizeof(sub_id)), bin(pub_id, sizeof(pub_id)), 0);
    run_until(&p.done, 500);
    CU_ASSERT_EQUAL(p.done, 0);
    uint8_t job1[RC_JOB_ID_SIZE] = {1, 0, 0, 0}, job2[RC_JOB_ID_SIZE] = {2, 0, 0, 0};
    CU_ASSERT_EQUAL(publish_job(job1, 111), GCS_STATUS_OK);
    CU_ASSERT(run_until(&p.done, 2000));
    CU_ASSERT_EQUAL_FATAL(p.status, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(p.reply->n_pub_messages, 1);
    const Ray__Rpc__PubMessage *m = p.reply->pub_messages[0];
    CU_ASSERT_EQUAL(m->channel_type, RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL);
    CU_ASSERT(bin_eq(m->key_id, job1, sizeof(job1)));
    CU_ASSERT(m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_JOB_MESSAGE &&
              m->job_message->driver_pid == 111);
    int64_t seq1 = m->sequence_id;
    CU_ASSERT(seq1 > 0);
    poll_free(&p);

    /* not acknowledged: delivered again */
    poll_start(&p, bin(sub_id, sizeof(sub_id)), bin(pub_id, sizeof(pub_id)), 0);
    CU_ASSERT(run_until(&p.done, 2000));
    CU_ASSERT_EQUAL(p.reply ? p.reply->n_pub_messages : 0, 1);
    poll_free(&p);
    /* acknowledged: not delivered again, the poll waits for news */
    poll_start(&p, bin(sub_id, sizeof(sub_id)), bin(pub_id, sizeof(pub_id)), seq1);
    run_until(&p.done, 500);
    CU_ASSERT_EQUAL(p.done, 0);
    CU_ASSERT_EQUAL(publish_job(job2, 222), GCS_STATUS_OK);
    CU_ASSERT(run_until(&p.done, 2000));
    CU_ASSERT_EQUAL_FATAL(p.status, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(p.reply->n_pub_messages, 1);
    m = p.reply->pub_messages[0];
    CU_ASSERT(bin_eq(m->key_id, job2, sizeof(job2)));
    CU_ASSERT(m->sequence_id > seq1);
    int64_t seq2 = m->sequence_id;
    poll_free(&p);

    /* AddJob publishes on the same channel */
    uint8_t job3[RC_JOB_ID_SIZE] = {3, 0, 0, 0};
    poll_start(&p, bin(sub_id, sizeof(sub_id)), bin(pub_id, sizeof(pub_id)), seq2);
    CU_ASSERT_EQUAL(add_job(job3, sizeof(job3), "published", NULL), GCS_STATUS_OK);
    CU_ASSERT(run_until(&p.done, 2000));
    if (p.reply && p.reply->n_pub_messages == 1) {
        CU_ASSERT(bin_eq(p.reply->pub_messages[0]->key_id, job3, sizeof(job3)));
        CU_ASSERT(p.reply->pub_messages[0]->sequence_id > seq2);
    } else {
        CU_FAIL("AddJob published nothing");
    }
    poll_free(&p);

    /* a subscriber of one key gets only that key's messages */
    uint8_t keyed[RC_UNIQUE_ID_SIZE];
    rc_id_random(keyed, sizeof(keyed));
    CU_ASSERT_EQUAL(
        subscribe(bin(keyed, sizeof(keyed)), RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL, bin(job2, sizeof(job2))),
        GCS_STATUS_OK);
    CU_ASSERT_EQUAL(publish_job(job1, 1), GCS_STATUS_OK);
    CU_ASSERT_EQUAL(publish_job(job2, 2), GCS_STATUS_OK);
    poll_start(&p, bin(keyed, sizeof(keyed)), bin(pub_id, sizeof(pub_id)), 0);
    CU_ASSERT(run_until(&p.done, 2000));
    int64_t seen = 0;
    if (p.reply) {
        CU_ASSERT_EQUAL(p.reply->n_pub_messages, 1);
        if (p.reply->n_pub_messages >= 1) {
            CU_ASSERT(bin_eq(p.reply->pub_messages[0]->key_id, job2, sizeof(job2)));
            seen = p.reply->pub_messages[0]->sequence_id;
        }
    }
    poll_free(&p);
    /* a held poll that its caller gave up on loses nothing: the next poll gets the news */
    static poll_call gone; /* static: see p */
    memset(&gone, 0, sizeof(gone));
    Ray__Rpc__GcsSubscriberPollRequest greq = RAY__RPC__GCS_SUBSCRIBER_POLL_REQUEST__INIT;
    greq.subscriber_id = bin(keyed, sizeof(keyed));
    greq.publisher_id = bin(pub_id, sizeof(pub_id));
    greq.max_processed_sequence_id = seen;
    CU_ASSERT_EQUAL(rpc_client_call(gcs_client_rpc(A.gc), PUBSUB_SVC, "GcsSubscriberPoll", &greq.base, 200,
                                    on_polled, &gone),
                    0);
    CU_ASSERT(run_until(&gone.done, 3000));
    CU_ASSERT_EQUAL(gone.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    rpc_msg_free((ProtobufCMessage *)gone.reply);
    CU_ASSERT_EQUAL(publish_job(job2, 3), GCS_STATUS_OK);
    poll_start(&p, bin(keyed, sizeof(keyed)), bin(pub_id, sizeof(pub_id)), seen);
    CU_ASSERT(run_until(&p.done, 2000));
    CU_ASSERT(p.reply && p.reply->n_pub_messages == 1 && p.reply->pub_messages[0]->job_message &&
              p.reply->pub_messages[0]->job_message->driver_pid == 3);
    if (p.reply && p.reply->n_pub_messages == 1)
        seen = p.reply->pub_messages[0]->sequence_id;
    poll_free(&p);

    /* unsubscribed: nothing more arrives */
    CU_ASSERT_EQUAL(
        command(bin(keyed, sizeof(keyed)), RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL, bin(job2, sizeof(job2)), 1),
        GCS_STATUS_OK);
    CU_ASSERT_EQUAL(publish_job(job2, 4), GCS_STATUS_OK);
    poll_start(&p, bin(keyed, sizeof(keyed)), bin(pub_id, sizeof(pub_id)), seen);
    run_until(&p.done, 500);
    CU_ASSERT_EQUAL(p.done, 0); /* still held when the case ends; api_down cancels it */

    /* a subscriber ID the GCS refuses: empty */
    Ray__Rpc__GcsSubscriberPollRequest bad = RAY__RPC__GCS_SUBSCRIBER_POLL_REQUEST__INIT;
    CU_ASSERT_EQUAL(gcs_code(PUBSUB_SVC, "GcsSubscriberPoll", &bad.base), GCS_STATUS_INVALID_ARGUMENT);
}
BOTH(pubsub_raw_protocol)

/* ---- DrainNode ---------------------------------------------------------------------- */

static void drain_real_raylet(void)
{
    int idx;
    CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&A.c, NULL, &idx), 0);
    uint8_t id[RC_NODE_ID_SIZE];
    node_id_of_raylet(idx, id);
    CU_ASSERT_EQUAL(node_state(id, NULL, NULL, 0), RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE);

    Ray__Rpc__DrainNodeData data = RAY__RPC__DRAIN_NODE_DATA__INIT;
    Ray__Rpc__DrainNodeData *datas[1] = {&data};
    data.node_id = bin(id, sizeof(id));
    Ray__Rpc__DrainNodeRequest req = RAY__RPC__DRAIN_NODE_REQUEST__INIT;
    req.drain_node_data = datas;
    req.n_drain_node_data = 1;
    int code;
    Ray__Rpc__DrainNodeReply *r = CALL(NODE_SVC, "DrainNode", req, &code, Ray__Rpc__DrainNodeReply);
    CU_ASSERT_EQUAL(code, GCS_STATUS_OK);
    if (r) {
        CU_ASSERT_EQUAL(r->n_drain_node_status, 1);
        if (r->n_drain_node_status == 1)
            CU_ASSERT(bin_eq(r->drain_node_status[0]->node_id, id, sizeof(id)));
    }
    rpc_msg_free((ProtobufCMessage *)r);

    CU_ASSERT_EQUAL(harness_raylet_wait_exit(&A.c, idx, 10000), 0);
    Ray__Rpc__NodeDeathInfo__Reason reason = RAY__RPC__NODE_DEATH_INFO__REASON__UNSPECIFIED;
    int state = -1;
    for (int i = 0; i < 50; i++) { /* the unregistration is answered before the exit */
        state = node_state(id, &reason, NULL, 0);
        if (state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD)
            break;
        int never = 0;
        run_until(&never, 100);
    }
    CU_ASSERT_EQUAL(state, RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    CU_ASSERT_EQUAL(reason, RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION);
}
BOTH(drain_real_raylet)

static const unit_case cases[] = {
    BOTH_CASES(kv_put_get),
    BOTH_CASES(kv_concurrent_put_if_absent),
    BOTH_CASES(kv_multi_get),
    BOTH_CASES(kv_multi_get_duplicate_keys),
    BOTH_CASES(kv_large_value),
    BOTH_CASES(kv_exists_keys_del),
    BOTH_CASES(kv_namespaces),
    BOTH_CASES(kv_reserved_prefix),
    BOTH_CASES(kv_binary),
    BOTH_CASES(kv_internal_config),
    BOTH_CASES(job_next_id),
    BOTH_CASES(job_add_validation),
    BOTH_CASES(job_lifecycle),
    BOTH_CASES(job_finished_eviction),
    BOTH_CASES(job_restart),
    BOTH_CASES(node_register_validation),
    BOTH_CASES(node_queries),
    BOTH_CASES(node_unregister),
    BOTH_CASES(node_dead_eviction),
    BOTH_CASES(node_unregister_register_race),
    BOTH_CASES(node_cluster_id_restart),
    BOTH_CASES(cluster_id_check),
    BOTH_CASES(resources_real_raylet),
    BOTH_CASES(resources_report_demand),
    BOTH_CASES(pubsub_node_channel),
    BOTH_CASES(pubsub_raw_protocol),
    BOTH_CASES(drain_real_raylet),
};

int main(void)
{
    int rc = unit_run("gcs_api", cases, UNIT_N(cases));
    api_down(); /* a case stopped by a fatal assertion left its cluster up */
    return rc;
}
