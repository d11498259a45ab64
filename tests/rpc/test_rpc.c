/*
 * rpc binding: round trips over TCP and unix sockets, concurrency, every error path
 * (unknown method, malformed bytes, oversized messages, deadlines, unreachable peers,
 * interceptor refusals), cancellation of held calls, and a server restart while calls are
 * in flight. Server and client share one loop and one rpc_ctx; every test ends with an
 * empty loop, so a leaked handle or call shows up as a failed uv_loop_close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcs_service.pb-c.h"
#include "health.pb-c.h"
#include "rayc_bench.pb-c.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rpc.h"
#include "unit.h"

static const ProtobufCServiceDescriptor *echo_svc = &rayc__bench__echo_service__descriptor;

typedef struct fixture {
    uv_loop_t loop;
    rpc_ctx *ctx;
    rpc_server *srv;
    rpc_client *cli;
    int port;
    char addr[128];
    rpc_call *held[64]; /* calls a handler chose not to answer yet */
    int n_held;
    int cancels_seen;
} fixture;

static fixture F;

/* Echo; a payload "hold" parks the call until the test answers it or it is cancelled. */
static void on_held_cancel(rpc_call *call, void *arg)
{
    fixture *f = arg;
    f->cancels_seen++;
    for (int i = 0; i < f->n_held; i++) {
        if (f->held[i] == call) {
            f->held[i] = f->held[--f->n_held];
            break;
        }
    }
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "cancelled while held");
}

static void handle_echo(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    fixture *f = arg;
    const Rayc__Bench__EchoRequest *req = (const Rayc__Bench__EchoRequest *)request;
    if (req->payload.len == 4 && memcmp(req->payload.data, "hold", 4) == 0) {
        f->held[f->n_held++] = call;
        rpc_call_on_cancel(call, on_held_cancel, f);
        return;
    }
    if (req->payload.len == 4 && memcmp(req->payload.data, "meta", 4) == 0) {
        size_t len = 0;
        const char *v = rpc_call_metadata(call, "ray_cluster_id", &len);
        Rayc__Bench__EchoReply reply = RAYC__BENCH__ECHO_REPLY__INIT;
        reply.payload.data = (uint8_t *)(v ? v : "");
        reply.payload.len = v ? len : 0;
        rpc_reply(call, &reply.base);
        return;
    }
    Rayc__Bench__EchoReply reply = RAYC__BENCH__ECHO_REPLY__INIT;
    reply.payload = req->payload;
    rpc_reply(call, &reply.base);
}

static const rpc_method_handler echo_handlers[] = {{"Echo", handle_echo}, {NULL, NULL}};

static void setup(int64_t max_message_size, const char *listen_addr)
{
    memset(&F, 0, sizeof(F));
    rc_config_init();
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&F.loop), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&F.loop, &F.ctx), 0);
    rpc_server_options so = {NULL, max_message_size};
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(F.ctx, &so, &F.srv), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(F.srv, echo_svc, echo_handlers, &F), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(F.srv, listen_addr, &F.port), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_start(F.srv), 0);
    if (strncmp(listen_addr, "unix:", 5) == 0)
        snprintf(F.addr, sizeof(F.addr), "%s", listen_addr);
    else
        snprintf(F.addr, sizeof(F.addr), "127.0.0.1:%d", F.port);
    rpc_client_options co = {NULL, max_message_size, 0};
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, F.addr, &co, &F.cli), 0);
}

static void teardown(void)
{
    rpc_client_destroy(F.cli);
    rpc_server_destroy(F.srv);
    rpc_ctx_destroy(F.ctx);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&F.loop), 0);
}

static int echo_sync(rpc_client *cli, const char *payload, size_t len, int64_t timeout_ms,
                     char *out, size_t outlen, char *err)
{
    Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
    req.payload.data = (uint8_t *)payload;
    req.payload.len = len;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(cli, echo_svc, "Echo", &req.base, timeout_ms, &reply, err,
                                    200);
    if (code == GRPC_STATUS_OK) {
        Rayc__Bench__EchoReply *r = (Rayc__Bench__EchoReply *)reply;
        size_t n = r->payload.len < outlen - 1 ? r->payload.len : outlen - 1;
        if (n)
            memcpy(out, r->payload.data, n);
        out[n] = '\0';
    }
    rpc_msg_free(reply);
    return code;
}

static void test_round_trip_tcp(void)
{
    setup(0, "127.0.0.1:0");
    char out[64], err[200];
    CU_ASSERT(F.port > 0);
    CU_ASSERT_EQUAL(echo_sync(F.cli, "hello", 5, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "hello");
    /* An empty message is a valid message. */
    CU_ASSERT_EQUAL(echo_sync(F.cli, "", 0, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "");
    teardown();
}

static void test_round_trip_unix(void)
{
    char path[128];
    snprintf(path, sizeof(path), "unix:/tmp/rayc-test-rpc-%d.sock", (int)getpid());
    unlink(path + 5);
    setup(0, path);
    char out[64], err[200];
    CU_ASSERT_EQUAL(echo_sync(F.cli, "over unix", 9, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "over unix");
    teardown();
    unlink(path + 5);
}

typedef struct async_state {
    int done, ok, mismatched;
} async_state;

static void on_async_echo(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    async_state *s = arg;
    s->done++;
    if (st->code == GRPC_STATUS_OK) {
        Rayc__Bench__EchoReply *r = (Rayc__Bench__EchoReply *)reply;
        s->ok++;
        if (r->payload.len != sizeof(int))
            s->mismatched++;
    }
    rpc_msg_free(reply);
}

static void test_concurrent_calls(void)
{
    setup(0, "127.0.0.1:0");
    enum { N = 2000 };
    async_state s = {0, 0, 0};
    static int values[N];
    for (int i = 0; i < N; i++) {
        values[i] = i;
        Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
        req.payload.data = (uint8_t *)&values[i];
        req.payload.len = sizeof(int);
        CU_ASSERT_EQUAL(rpc_client_call(F.cli, echo_svc, "Echo", &req.base, 10000, on_async_echo, &s), 0);
    }
    while (s.done < N)
        uv_run(&F.loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(s.ok, N);
    CU_ASSERT_EQUAL(s.mismatched, 0);
    teardown();
}

static void test_unknown_method_and_bad_arguments(void)
{
    setup(0, "127.0.0.1:0");
    char err[200] = "";
    /* A service this server does not serve. */
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(F.cli, &grpc__health__v1__health__descriptor, "Check",
                                    &hreq.base, 5000, &reply, err, sizeof(err));
    CU_ASSERT_EQUAL(code, GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/grpc.health.v1.Health/Check"));
    CU_ASSERT_PTR_NULL(reply);
    /* The client refuses a method that does not exist or a request of the wrong type,
     * without calling back. */
    CU_ASSERT_EQUAL(rpc_client_call(F.cli, echo_svc, "Nope", &hreq.base, 1000, NULL, NULL), RC_EINVAL);
    CU_ASSERT_EQUAL(rpc_client_call(F.cli, echo_svc, "Echo", &hreq.base, 1000, NULL, NULL), RC_EINVAL);
    teardown();
}

static void test_malformed_bytes(void)
{
    setup(0, "127.0.0.1:0");
    char err[200] = "";
    /* Field 1 declared length-delimited with a length running past the end. */
    static const unsigned char truncated[] = {0x0a, 0x7f, 'a', 'b'};
    int code = rpc_client_call_raw_sync(F.cli, "/rayc.bench.EchoService/Echo", truncated,
                                        sizeof(truncated), 5000, err, sizeof(err));
    CU_ASSERT_EQUAL(code, GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "malformed Echo request"));
    /* An unknown field whose number does not fit in 29 bits: protobuf-c reads it but would
     * write it back as another field, so the message is refused. A normal unknown field
     * (number 15) is fine. */
    static const unsigned char wide_tag[] = {0x0a, 0x01, 'x', 0xf8, 0xff, 0xff, 0xff, 0x7f, 0x01};
    code = rpc_client_call_raw_sync(F.cli, "/rayc.bench.EchoService/Echo", wide_tag, sizeof(wide_tag), 5000, err,
                                    sizeof(err));
    CU_ASSERT_EQUAL(code, GRPC_STATUS_INVALID_ARGUMENT);
    static const unsigned char unknown_ok[] = {0x0a, 0x01, 'x', 0x78, 0x01};
    code = rpc_client_call_raw_sync(F.cli, "/rayc.bench.EchoService/Echo", unknown_ok, sizeof(unknown_ok), 5000, err,
                                    sizeof(err));
    CU_ASSERT_EQUAL(code, GRPC_STATUS_OK);
    /* Random garbage: never a crash, always an answer. */
    srand(11);
    for (int i = 0; i < 200; i++) {
        unsigned char junk[64];
        size_t n = (size_t)(rand() % (int)sizeof(junk));
        for (size_t j = 0; j < n; j++)
            junk[j] = (unsigned char)rand();
        code = rpc_client_call_raw_sync(F.cli, "/rayc.bench.EchoService/Echo", junk, n, 5000, err,
                                        sizeof(err));
        CU_ASSERT(code == GRPC_STATUS_OK || code == GRPC_STATUS_INVALID_ARGUMENT);
    }
    /* The server still works. */
    char out[16];
    CU_ASSERT_EQUAL(echo_sync(F.cli, "alive", 5, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    teardown();
}

static void test_oversized_message(void)
{
    setup(0, "127.0.0.1:0");
    /* A second client whose own limit is larger than the server's. */
    rpc_server_destroy(F.srv);
    rpc_server_options so = {NULL, 1024};
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(F.ctx, &so, &F.srv), 0);
    rpc_server_add_service(F.srv, echo_svc, echo_handlers, &F);
    int port;
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(F.srv, "127.0.0.1:0", &port), 0);
    rpc_server_start(F.srv);
    rpc_client *big;
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    rpc_client_options co = {NULL, 1 << 20, 0};
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, addr, &co, &big), 0);
    char *payload = malloc(4096);
    memset(payload, 'x', 4096);
    char out[16], err[200] = "";
    CU_ASSERT_EQUAL(echo_sync(big, payload, 4096, 5000, out, sizeof(out), err),
                    GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_EQUAL(echo_sync(big, payload, 100, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    free(payload);
    rpc_client_destroy(big);
    teardown();
}

static void test_deadline_and_cancel_callback(void)
{
    setup(0, "127.0.0.1:0");
    char out[16], err[200] = "";
    CU_ASSERT_EQUAL(echo_sync(F.cli, "hold", 4, 200, out, sizeof(out), err),
                    GRPC_STATUS_DEADLINE_EXCEEDED);
    /* The server learns that its held call went away. */
    for (int i = 0; i < 200 && F.cancels_seen == 0; i++)
        uv_run(&F.loop, UV_RUN_NOWAIT), usleep(5000);
    CU_ASSERT_EQUAL(F.cancels_seen, 1);
    CU_ASSERT_EQUAL(F.n_held, 0);
    teardown();
}

static void test_unreachable_peer(void)
{
    setup(0, "127.0.0.1:0");
    /* Bind and close a listener to find a port with nobody on it. */
    rpc_server *tmp;
    int port;
    rpc_server_create(F.ctx, NULL, &tmp);
    rpc_server_listen(tmp, "127.0.0.1:0", &port);
    rpc_server_destroy(tmp);
    uv_run(&F.loop, UV_RUN_NOWAIT);
    char addr[64], out[16], err[200] = "";
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    rpc_client *dead;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, addr, NULL, &dead), 0);
    CU_ASSERT_EQUAL(echo_sync(dead, "x", 1, 5000, out, sizeof(out), err), GRPC_STATUS_UNAVAILABLE);
    rpc_client_destroy(dead);
    teardown();
}

static int refuse_wrong_cluster(rpc_call *call, void *arg)
{
    (void)arg;
    size_t len;
    const char *v = rpc_call_metadata(call, "ray_cluster_id", &len);
    if (v && !(len == 3 && memcmp(v, "abc", 3) == 0)) {
        rpc_reply_status(call, GRPC_STATUS_UNAUTHENTICATED, "WrongClusterID");
        return 1;
    }
    return 0;
}

static void test_metadata_and_interceptor(void)
{
    setup(0, "127.0.0.1:0");
    rpc_server_destroy(F.srv);
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(F.ctx, NULL, &F.srv), 0);
    rpc_server_add_service(F.srv, echo_svc, echo_handlers, &F);
    rpc_server_set_interceptor(F.srv, refuse_wrong_cluster, NULL);
    int port;
    rpc_server_listen(F.srv, "127.0.0.1:0", &port);
    rpc_server_start(F.srv);
    rpc_client_destroy(F.cli);
    char addr[64], out[16], err[200] = "";
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    rpc_client_create(F.ctx, addr, NULL, &F.cli);

    CU_ASSERT_EQUAL(echo_sync(F.cli, "meta", 4, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "");
    rpc_client_set_metadata(F.cli, "ray_cluster_id", "abc");
    CU_ASSERT_EQUAL(echo_sync(F.cli, "meta", 4, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "abc");
    rpc_client_set_metadata(F.cli, "ray_cluster_id", "xyz");
    CU_ASSERT_EQUAL(echo_sync(F.cli, "meta", 4, 5000, out, sizeof(out), err),
                    GRPC_STATUS_UNAUTHENTICATED);
    CU_ASSERT_STRING_EQUAL(err, "WrongClusterID");
    rpc_client_set_metadata(F.cli, "ray_cluster_id", NULL);
    CU_ASSERT_EQUAL(echo_sync(F.cli, "meta", 4, 5000, out, sizeof(out), err), GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "");
    teardown();
}

static void count_status(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    int *counts = arg;
    counts[st->code]++;
    counts[17]++;
    rpc_msg_free(reply);
}

static void test_server_restart_with_calls_in_flight(void)
{
    setup(0, "127.0.0.1:0");
    int counts[18] = {0};
    for (int i = 0; i < 10; i++) {
        Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
        req.payload.data = (uint8_t *)"hold";
        req.payload.len = 4;
        rpc_client_call(F.cli, echo_svc, "Echo", &req.base, 10000, count_status, counts);
    }
    while (F.n_held < 10)
        uv_run(&F.loop, UV_RUN_ONCE);
    /* The server goes away with ten calls held: every caller hears about it. */
    rpc_server_destroy(F.srv);
    while (counts[17] < 10)
        uv_run(&F.loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(counts[GRPC_STATUS_OK], 0);
    CU_ASSERT_EQUAL(F.cancels_seen, 10);

    /* A new server on the same port: the same client reconnects. */
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(F.ctx, NULL, &F.srv), 0);
    rpc_server_add_service(F.srv, echo_svc, echo_handlers, &F);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", F.port);
    int port;
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(F.srv, addr, &port), 0);
    CU_ASSERT_EQUAL(port, F.port);
    rpc_server_start(F.srv);
    char out[16], err[200] = "";
    int code = GRPC_STATUS_UNAVAILABLE;
    for (int i = 0; i < 50 && code != GRPC_STATUS_OK; i++) {
        code = echo_sync(F.cli, "back", 4, 2000, out, sizeof(out), err);
        if (code != GRPC_STATUS_OK)
            usleep(100000);
    }
    CU_ASSERT_EQUAL(code, GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(out, "back");
    teardown();
}

static void test_handler_table_names_checked(void)
{
    setup(0, "127.0.0.1:0");
    rpc_server *other;
    rpc_server_create(F.ctx, NULL, &other);
    static const rpc_method_handler bad[] = {{"Echo", handle_echo}, {"Ech0", handle_echo}, {NULL, NULL}};
    CU_ASSERT_EQUAL(rpc_server_add_service(other, echo_svc, bad, NULL), RC_EINVAL);
    rpc_server_destroy(other);
    teardown();
}

static void test_port_in_use_is_refused(void)
{
    setup(0, "127.0.0.1:0");
    rpc_server *second;
    rpc_server_create(F.ctx, NULL, &second);
    CU_ASSERT_EQUAL(rpc_server_listen(second, F.addr, NULL), RC_EIO);
    rpc_server_destroy(second);
    teardown();
}

static void test_client_destroy_cancels(void)
{
    setup(0, "127.0.0.1:0");
    int counts[18] = {0};
    Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
    req.payload.data = (uint8_t *)"hold";
    req.payload.len = 4;
    rpc_client_call(F.cli, echo_svc, "Echo", &req.base, -1, count_status, counts);
    while (F.n_held < 1)
        uv_run(&F.loop, UV_RUN_ONCE);
    rpc_client_destroy(F.cli);
    F.cli = NULL;
    while (counts[17] < 1)
        uv_run(&F.loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(counts[GRPC_STATUS_CANCELLED], 1);
    teardown();
}

/* A callback may destroy its own client (a daemon dropping a peer it just found dead). */
static rpc_client *self_destroying;
static int self_destroy_calls;

static void destroy_own_client(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)st;
    (void)arg;
    self_destroy_calls++;
    rpc_msg_free(reply);
    if (self_destroying) {
        rpc_client_destroy(self_destroying);
        self_destroying = NULL;
    }
}

static void test_callback_destroys_its_client(void)
{
    setup(0, "127.0.0.1:0");
    rpc_client *cli;
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, F.addr, NULL, &cli), 0);
    self_destroying = cli;
    self_destroy_calls = 0;
    Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
    /* Two calls: the first callback destroys the client; the second then ends CANCELLED
     * or OK, and its callback still runs exactly once. */
    CU_ASSERT_EQUAL(rpc_client_call(cli, echo_svc, "Echo", &req.base, 5000, destroy_own_client, NULL), 0);
    CU_ASSERT_EQUAL(rpc_client_call(cli, echo_svc, "Echo", &req.base, 5000, destroy_own_client, NULL), 0);
    while (self_destroy_calls < 2)
        uv_run(&F.loop, UV_RUN_ONCE);
    /* And with the last call in flight being the one whose callback destroys. */
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, F.addr, NULL, &cli), 0);
    self_destroying = cli;
    CU_ASSERT_EQUAL(rpc_client_call(cli, echo_svc, "Echo", &req.base, 5000, destroy_own_client, NULL), 0);
    while (self_destroy_calls < 3)
        uv_run(&F.loop, UV_RUN_ONCE);
    CU_ASSERT_PTR_NULL(self_destroying);
    teardown();
}

static const unit_case cases[] = {
    UNIT_CASE(test_callback_destroys_its_client),
    UNIT_CASE(test_round_trip_tcp),
    UNIT_CASE(test_round_trip_unix),
    UNIT_CASE(test_concurrent_calls),
    UNIT_CASE(test_unknown_method_and_bad_arguments),
    UNIT_CASE(test_malformed_bytes),
    UNIT_CASE(test_oversized_message),
    UNIT_CASE(test_deadline_and_cancel_callback),
    UNIT_CASE(test_unreachable_peer),
    UNIT_CASE(test_metadata_and_interceptor),
    UNIT_CASE(test_server_restart_with_calls_in_flight),
    UNIT_CASE(test_port_in_use_is_refused),
    UNIT_CASE(test_handler_table_names_checked),
    UNIT_CASE(test_client_destroy_cancels),
};

int main(void)
{
    return unit_run("rpc", cases, UNIT_N(cases));
}
