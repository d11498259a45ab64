/*
 * The verification challenge against real raylets (issue 12): a secure GCS and three raylets
 * that joined with join tokens — an honest one, one started with --testing-challenge-corrupt
 * (a host faking its GPU) and one with --testing-challenge-delay-ms (a host too slow for its
 * class). The test process is the admin: it runs RunChallenge and OpenChallengeRows as
 * rayc-market does and checks every opening with auth_challenge_verify_opening. Other
 * principals are refused, malformed requests get INVALID_ARGUMENT, and the raylets keep
 * serving throughout.
 */
#define _GNU_SOURCE
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_challenge.h"
#include "cluster.h"
#include "health.pb-c.h"
#include "node_manager.pb-c.h"
#include "rayc_market.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_time.h"
#include "rpc.h"
#include "unit.h"

enum { HONEST = 0, CORRUPT = 1, SLOW = 2, DELAY_MS = 1500 };

typedef struct suite {
    harness_cluster c;
    uv_loop_t loop;
    rpc_ctx *ctx;
} suite;

static suite S;

static void start(void)
{
    memset(&S, 0, sizeof(S));
    CU_ASSERT_EQUAL_FATAL(harness_cluster_init(&S.c, 0), 0);
    CU_ASSERT_EQUAL_FATAL(harness_gcs_start(&S.c), 0);
    char delay[16];
    snprintf(delay, sizeof(delay), "%d", DELAY_MS);
    const char *honest[] = {"--num-cpus", "1", NULL};
    const char *corrupt[] = {"--num-cpus", "1", "--testing-challenge-corrupt", NULL};
    const char *slow[] = {"--num-cpus", "1", "--testing-challenge-delay-ms", delay, NULL};
    const char *const *flags[] = {honest, corrupt, slow};
    for (int i = 0; i < 3; i++) {
        int idx;
        CU_ASSERT_EQUAL_FATAL(harness_raylet_start(&S.c, flags[i], &idx), 0);
        CU_ASSERT_EQUAL_FATAL(idx, i);
    }
    uv_loop_init(&S.loop);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&S.loop, &S.ctx), 0);
}

static void stop(void)
{
    for (int i = 0; i < S.c.n_raylets; i++) {
        CU_ASSERT(harness_raylet_alive(&S.c, i));
        int dirty = harness_log_contains(&S.c, S.c.raylets[i].name, "Sanitizer") ||
                    harness_log_contains(&S.c, S.c.raylets[i].name, "runtime error");
        CU_ASSERT_FALSE(dirty);
        if (dirty)
            setenv("RAYC_TEST_KEEP_LOGS", "1", 1);
    }
    rpc_ctx_destroy(S.ctx);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    uv_loop_close(&S.loop);
    harness_cluster_destroy(&S.c);
}

static rpc_client *client_as(int raylet, const char *cert, const char *key, const char *token)
{
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", S.c.raylets[raylet].port);
    rpc_security sec = {.ca_cert_pem = S.c.ca_cert, .cert_pem = cert, .key_pem = key, .present_cert = cert != NULL,
                        .token = token};
    rpc_client_options co = {&sec, 0, 0, NULL};
    rpc_client *c = NULL;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(S.ctx, target, &co, &c), 0);
    return c;
}

static rpc_client *admin(int raylet)
{
    return client_as(raylet, NULL, NULL, S.c.admin_token);
}

static int call(rpc_client *cli, const char *method, const ProtobufCMessage *req, ProtobufCMessage **reply,
                char *err)
{
    ProtobufCMessage *r = NULL;
    err[0] = '\0';
    int code = rpc_client_call_sync(cli, &rayc__rpc__challenge_service__descriptor, method, req, 30000, &r, err, 512);
    if (reply)
        *reply = r;
    else
        rpc_msg_free(r);
    return code;
}

typedef struct challenge {
    uint8_t id[AUTH_CHALLENGE_ID_SIZE];
    uint8_t seed[AUTH_CHALLENGE_SEED_SIZE];
    uint32_t n;
    uint8_t root[AUTH_CHALLENGE_HASH_SIZE];
    int64_t compute_us;
    char device_used[64];
} challenge;

static void challenge_request(challenge *ch, uint32_t n, Rayc__Rpc__RunChallengeRequest *req, const char *device)
{
    CU_ASSERT_EQUAL_FATAL(RAND_bytes(ch->id, sizeof(ch->id)), 1);
    CU_ASSERT_EQUAL_FATAL(RAND_bytes(ch->seed, sizeof(ch->seed)), 1);
    ch->n = n;
    rayc__rpc__run_challenge_request__init(req);
    req->challenge_id.data = ch->id;
    req->challenge_id.len = sizeof(ch->id);
    req->seed.data = ch->seed;
    req->seed.len = sizeof(ch->seed);
    req->n = n;
    req->device = (char *)device;
}

/* Runs a challenge of order n; returns the gRPC code (the root etc. in ch on OK). */
static int run_challenge(rpc_client *cli, challenge *ch, uint32_t n, const char *device, char *err)
{
    Rayc__Rpc__RunChallengeRequest req;
    challenge_request(ch, n, &req, device);
    ProtobufCMessage *reply = NULL;
    int code = call(cli, "RunChallenge", &req.base, &reply, err);
    if (code != GRPC_STATUS_OK)
        return code;
    const Rayc__Rpc__RunChallengeReply *r = (const void *)reply;
    CU_ASSERT_PTR_NOT_NULL(r->status);
    if (r->status)
        CU_ASSERT_EQUAL(r->status->code, 0);
    CU_ASSERT_EQUAL(r->merkle_root.len, AUTH_CHALLENGE_HASH_SIZE);
    if (r->merkle_root.len == AUTH_CHALLENGE_HASH_SIZE)
        memcpy(ch->root, r->merkle_root.data, AUTH_CHALLENGE_HASH_SIZE);
    ch->compute_us = r->compute_us;
    snprintf(ch->device_used, sizeof(ch->device_used), "%s", r->device_used ? r->device_used : "");
    rpc_msg_free(reply);
    return code;
}

/* Opens rows (NULL: every row) and verifies each opening; returns how many failed
 * verification (-1 if the open call failed). The first failure's sentence goes to why. */
static int open_and_verify(rpc_client *cli, const challenge *ch, const uint32_t *rows, size_t n_rows, char *why)
{
    uint32_t *all = NULL;
    if (!rows) {
        all = rc_malloc(ch->n * sizeof(uint32_t));
        for (uint32_t i = 0; i < ch->n; i++)
            all[i] = i;
        rows = all;
        n_rows = ch->n;
    }
    Rayc__Rpc__OpenChallengeRowsRequest req = RAYC__RPC__OPEN_CHALLENGE_ROWS_REQUEST__INIT;
    req.challenge_id.data = (uint8_t *)ch->id;
    req.challenge_id.len = sizeof(ch->id);
    req.rows = (uint32_t *)rows;
    req.n_rows = n_rows;
    ProtobufCMessage *reply = NULL;
    char err[512];
    int code = call(cli, "OpenChallengeRows", &req.base, &reply, err);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_OK);
    if (code != GRPC_STATUS_OK) {
        fprintf(stderr, "OpenChallengeRows: %s\n", err);
        rc_free(all);
        return -1;
    }
    const Rayc__Rpc__OpenChallengeRowsReply *r = (const void *)reply;
    CU_ASSERT_EQUAL(r->n_openings, n_rows);
    int failed = 0;
    why[0] = '\0';
    for (size_t i = 0; i < r->n_openings && i < n_rows; i++) {
        const Rayc__Rpc__ChallengeRowOpening *o = r->openings[i];
        CU_ASSERT_EQUAL(o->row, rows[i]);
        uint8_t path[AUTH_CHALLENGE_PATH_MAX * AUTH_CHALLENGE_HASH_SIZE];
        size_t np = o->n_path <= AUTH_CHALLENGE_PATH_MAX ? o->n_path : AUTH_CHALLENGE_PATH_MAX;
        for (size_t h = 0; h < np; h++) {
            CU_ASSERT_EQUAL(o->path[h].len, AUTH_CHALLENGE_HASH_SIZE);
            memcpy(path + h * AUTH_CHALLENGE_HASH_SIZE, o->path[h].data,
                   o->path[h].len == AUTH_CHALLENGE_HASH_SIZE ? AUTH_CHALLENGE_HASH_SIZE : 0);
        }
        char e[256];
        if (auth_challenge_verify_opening(ch->seed, ch->n, ch->n, ch->root, o->row, o->values.data, o->values.len, path,
                                          np, e, sizeof(e)) != 0) {
            if (!failed++)
                snprintf(why, 256, "%s", e);
        }
    }
    rpc_msg_free(reply);
    rc_free(all);
    return failed;
}

/* The raylet still answers its health check. */
static int serves(int raylet)
{
    rpc_client *cli = admin(raylet);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    char err[512];
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(cli, &grpc__health__v1__health__descriptor, "Check", &req.base, 10000, &reply, err,
                                    sizeof(err));
    rpc_msg_free(reply);
    rpc_client_destroy(cli);
    return code == GRPC_STATUS_OK;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_honest_node_passes(void)
{
    rpc_client *cli = admin(HONEST);
    challenge ch;
    char err[512], why[256];
    CU_ASSERT_EQUAL_FATAL(run_challenge(cli, &ch, 64, "cpu", err), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(ch.device_used, "cpu");
    CU_ASSERT(ch.compute_us > 0);
    CU_ASSERT_EQUAL(open_and_verify(cli, &ch, NULL, 0, why), 0);
    /* Opened once, the result is gone: the verifier runs a new challenge for more rows. */
    uint32_t row = 3;
    Rayc__Rpc__OpenChallengeRowsRequest again = RAYC__RPC__OPEN_CHALLENGE_ROWS_REQUEST__INIT;
    again.challenge_id.data = ch.id;
    again.challenge_id.len = sizeof(ch.id);
    again.rows = &row;
    again.n_rows = 1;
    CU_ASSERT_EQUAL(call(cli, "OpenChallengeRows", &again.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no result for that challenge_id"));

    /* The spot checks a verifier draws, on a larger order; device "gpu" answers on the GPU
     * when the host has CUDA and cuBLAS, else on the CPU, and verifies either way. */
    const char *devices[] = {"cpu", "gpu"};
    for (int d = 0; d < 2; d++) {
        CU_ASSERT_EQUAL_FATAL(run_challenge(cli, &ch, 256, devices[d], err), GRPC_STATUS_OK);
        CU_ASSERT(!strcmp(ch.device_used, "cpu") || !strncmp(ch.device_used, "cuda:", 5));
        uint8_t vseed[32];
        uint32_t rows[8];
        CU_ASSERT_EQUAL(RAND_bytes(vseed, sizeof(vseed)), 1);
        CU_ASSERT_EQUAL(auth_challenge_pick_rows(vseed, 256, 8, rows), 0);
        CU_ASSERT_EQUAL(open_and_verify(cli, &ch, rows, 8, why), 0);
    }
    /* Another seed's root is not this one's. */
    challenge other;
    CU_ASSERT_EQUAL_FATAL(run_challenge(cli, &other, 64, "cpu", err), GRPC_STATUS_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(other.root, ch.root, AUTH_CHALLENGE_HASH_SIZE), 0);
    rpc_client_destroy(cli);
}

static void test_corrupt_node_fails(void)
{
    rpc_client *cli = admin(CORRUPT);
    challenge ch;
    char err[512], why[256];
    CU_ASSERT_EQUAL_FATAL(run_challenge(cli, &ch, 64, "cpu", err), GRPC_STATUS_OK);
    int failed = open_and_verify(cli, &ch, NULL, 0, why);
    CU_ASSERT(failed > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "differs from the seeded product"));
    rpc_client_destroy(cli);
}

typedef struct pending {
    int done;
    int code;
    int order; /* completion order */
} pending;

static int completions;

static void on_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    pending *p = arg;
    p->done = 1;
    p->code = st->code;
    p->order = ++completions;
    rpc_msg_free(reply);
}

static void test_slow_node_answers_late_and_keeps_serving(void)
{
    rpc_client *cli = admin(SLOW);
    /* The call takes at least the delay, and the node's own timing says so. */
    challenge ch;
    char err[512], why[256];
    int64_t t0 = rc_mono_ms();
    CU_ASSERT_EQUAL_FATAL(run_challenge(cli, &ch, 64, "cpu", err), GRPC_STATUS_OK);
    CU_ASSERT(rc_mono_ms() - t0 >= DELAY_MS);
    CU_ASSERT(ch.compute_us >= (int64_t)DELAY_MS * 1000);
    CU_ASSERT_EQUAL(open_and_verify(cli, &ch, NULL, 0, why), 0); /* slow, not wrong */

    /* While it computes, the loop serves: a health check and a lease-load query are answered
     * before the challenge, and a second challenge is refused as busy. */
    completions = 0;
    challenge slow;
    Rayc__Rpc__RunChallengeRequest req;
    challenge_request(&slow, 64, &req, "cpu");
    pending run = {0}, health = {0}, load = {0};
    CU_ASSERT_EQUAL_FATAL(rpc_client_call(cli, &rayc__rpc__challenge_service__descriptor, "RunChallenge", &req.base,
                                          30000, on_done, &run),
                          0);
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Ray__Rpc__GetResourceLoadRequest lreq = RAY__RPC__GET_RESOURCE_LOAD_REQUEST__INIT;
    /* Sent after the challenge has reached the node: the second RunChallenge must see it. */
    int64_t until = rc_mono_ms() + 200;
    while (rc_mono_ms() < until)
        uv_run(&S.loop, UV_RUN_NOWAIT);
    CU_ASSERT_EQUAL_FATAL(rpc_client_call(cli, &grpc__health__v1__health__descriptor, "Check", &hreq.base, 30000,
                                          on_done, &health),
                          0);
    CU_ASSERT_EQUAL_FATAL(rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "GetResourceLoad",
                                          &lreq.base, 30000, on_done, &load),
                          0);
    while (!health.done || !load.done)
        uv_run(&S.loop, UV_RUN_ONCE);
    challenge second;
    CU_ASSERT_EQUAL(run_challenge(cli, &second, 64, "cpu", err), GRPC_STATUS_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "a challenge is already running"));
    while (!run.done)
        uv_run(&S.loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(health.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(load.code, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(run.code, GRPC_STATUS_OK);
    CU_ASSERT(health.order < run.order && load.order < run.order);
    rpc_client_destroy(cli);
}

static void test_only_the_admin_may_challenge(void)
{
    char err[512];
    challenge ch;
    /* No credential at all. */
    rpc_client *anon = client_as(HONEST, NULL, NULL, NULL);
    int code = run_challenge(anon, &ch, 64, "cpu", err);
    CU_ASSERT(code == GRPC_STATUS_UNAUTHENTICATED || code == GRPC_STATUS_PERMISSION_DENIED);
    /* A node's certificate (another node of the cluster). */
    uint8_t id[28];
    rc_id_random(id, sizeof(id));
    char cn[80] = "node:";
    rc_id_hex(id, sizeof(id), cn + 5);
    char *key = NULL, *cert = NULL;
    CU_ASSERT_EQUAL_FATAL(harness_issue_cert(&S.c, cn, &key, &cert), 0);
    rpc_client *node = client_as(HONEST, cert, key, NULL);
    CU_ASSERT_EQUAL(run_challenge(node, &ch, 64, "cpu", err), GRPC_STATUS_PERMISSION_DENIED);
    Rayc__Rpc__OpenChallengeRowsRequest open = RAYC__RPC__OPEN_CHALLENGE_ROWS_REQUEST__INIT;
    CU_ASSERT_EQUAL(call(node, "OpenChallengeRows", &open.base, NULL, err), GRPC_STATUS_PERMISSION_DENIED);
    /* A forged admin token. */
    rpc_client *forged = client_as(HONEST, NULL, NULL, "rayc1.e30.AAAA");
    CU_ASSERT_EQUAL(run_challenge(forged, &ch, 64, "cpu", err), GRPC_STATUS_UNAUTHENTICATED);
    rpc_client_destroy(anon);
    rpc_client_destroy(node);
    rpc_client_destroy(forged);
    rc_free(key);
    rc_free(cert);
    CU_ASSERT(serves(HONEST));
}

static void test_garbage_is_refused(void)
{
    rpc_client *cli = admin(HONEST);
    char err[512], why[256];
    /* Bytes that are no message. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99, 0x01};
    CU_ASSERT_EQUAL(rpc_client_call_raw_sync(cli, "/rayc.rpc.ChallengeService/RunChallenge", junk, sizeof(junk), 10000,
                                             err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(rpc_client_call_raw_sync(cli, "/rayc.rpc.ChallengeService/OpenChallengeRows", junk, sizeof(junk),
                                             10000, err, sizeof(err)),
                    GRPC_STATUS_INVALID_ARGUMENT);
    /* Well-formed messages with bad contents. */
    challenge ch;
    Rayc__Rpc__RunChallengeRequest req;
    challenge_request(&ch, 64, &req, "cpu");
    req.challenge_id.len = 3;
    CU_ASSERT_EQUAL(call(cli, "RunChallenge", &req.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "challenge_id must be 16 bytes"));
    challenge_request(&ch, 64, &req, "cpu");
    req.seed.len = 31;
    CU_ASSERT_EQUAL(call(cli, "RunChallenge", &req.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "seed must be 32 bytes"));
    const uint32_t bad_orders[] = {0, 8, 18, 66, 8196, 1u << 31};
    for (size_t i = 0; i < UNIT_N(bad_orders); i++) {
        challenge_request(&ch, bad_orders[i], &req, "cpu");
        CU_ASSERT_EQUAL(call(cli, "RunChallenge", &req.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    }
    challenge_request(&ch, 4096, &req, "cpu");
    CU_ASSERT_EQUAL(call(cli, "RunChallenge", &req.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "CPU kernel"));
    challenge_request(&ch, 64, &req, "tpu");
    CU_ASSERT_EQUAL(call(cli, "RunChallenge", &req.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    /* Opening what was never run, rows out of range, too many rows. */
    uint32_t rows[5000];
    memset(rows, 0, sizeof(rows));
    Rayc__Rpc__OpenChallengeRowsRequest open = RAYC__RPC__OPEN_CHALLENGE_ROWS_REQUEST__INIT;
    uint8_t unknown[16] = {1, 2, 3};
    open.challenge_id.data = unknown;
    open.challenge_id.len = sizeof(unknown);
    open.rows = rows;
    open.n_rows = 1;
    CU_ASSERT_EQUAL(call(cli, "OpenChallengeRows", &open.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    open.challenge_id.len = 15;
    CU_ASSERT_EQUAL(call(cli, "OpenChallengeRows", &open.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL_FATAL(run_challenge(cli, &ch, 64, "cpu", err), GRPC_STATUS_OK);
    open.challenge_id.data = ch.id;
    open.challenge_id.len = sizeof(ch.id);
    rows[0] = 64;
    CU_ASSERT_EQUAL(call(cli, "OpenChallengeRows", &open.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "row 64 does not exist"));
    rows[0] = 0;
    open.n_rows = 5000;
    CU_ASSERT_EQUAL(call(cli, "OpenChallengeRows", &open.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too many rows"));
    open.n_rows = 0;
    CU_ASSERT_EQUAL(call(cli, "OpenChallengeRows", &open.base, NULL, err), GRPC_STATUS_INVALID_ARGUMENT);
    /* Refusals left the commitment alone, and the node serves on. */
    uint32_t some[] = {0, 17, 63};
    CU_ASSERT_EQUAL(open_and_verify(cli, &ch, some, 3, why), 0);
    CU_ASSERT(serves(HONEST));
    rpc_client_destroy(cli);
}

static void test_suite(void)
{
    start();
    test_honest_node_passes();
    test_corrupt_node_fails();
    test_slow_node_answers_late_and_keeps_serving();
    test_only_the_admin_may_challenge();
    test_garbage_is_refused();
    stop();
}

static const unit_case cases[] = {
    UNIT_CASE(test_suite),
};

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rc_config_init();
    return unit_run("challenge", cases, UNIT_N(cases));
}
