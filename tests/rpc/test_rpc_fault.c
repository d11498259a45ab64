/*
 * rpc fault injection (testing_rpc_delay_us, testing_rpc_failure, testing_rpc_drop): off by
 * default; applied per method at the configured rates; failures answer UNAVAILABLE, drops
 * DEADLINE_EXCEEDED at the caller's deadline, delays hold both directions; the server runs
 * exactly the requests that were sent; a client destroyed with injected calls held ends
 * them. One loop serves and calls (TCP on 127.0.0.1), and every test ends with a loop that
 * closes, so a leaked timer shows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.pb-c.h"
#include "rayc_bench.pb-c.h"
#include "rc_config.h"
#include "rpc.h"
#include "unit.h"

static const ProtobufCServiceDescriptor *echo_svc = &rayc__bench__echo_service__descriptor;
static const ProtobufCServiceDescriptor *health_svc = &grpc__health__v1__health__descriptor;

typedef struct fixture {
    uv_loop_t loop;
    rpc_ctx *ctx;
    rpc_server *srv;
    rpc_client *cli;
    int echo_served, check_served;
} fixture;

static fixture F;

static void handle_echo(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    fixture *f = arg;
    const Rayc__Bench__EchoRequest *req = (const Rayc__Bench__EchoRequest *)request;
    f->echo_served++;
    Rayc__Bench__EchoReply reply = RAYC__BENCH__ECHO_REPLY__INIT;
    reply.payload = req->payload;
    rpc_reply(call, &reply.base);
}

static void handle_check(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    (void)request;
    fixture *f = arg;
    f->check_served++;
    Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    reply.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_reply(call, &reply.base);
}

static const rpc_method_handler echo_handlers[] = {{"Echo", handle_echo}, {NULL, NULL}};
static const rpc_method_handler health_handlers[] = {{"Check", handle_check}, {NULL, NULL}};

/* Starts a server and a client with the given settings (NULL: left at the default). */
static void setup(const char *delay, const char *failure, const char *drop)
{
    memset(&F, 0, sizeof(F));
    rc_config_init();
    static int64_t seed = 1000;
    char seed_text[32];
    snprintf(seed_text, sizeof(seed_text), "%lld", (long long)++seed);
    CU_ASSERT_EQUAL(rc_config_set("testing_rpc_seed", seed_text), 0);
    if (delay)
        CU_ASSERT_EQUAL(rc_config_set("testing_rpc_delay_us", delay), 0);
    if (failure)
        CU_ASSERT_EQUAL(rc_config_set("testing_rpc_failure", failure), 0);
    if (drop)
        CU_ASSERT_EQUAL(rc_config_set("testing_rpc_drop", drop), 0);
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&F.loop), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_ctx_create(&F.loop, &F.ctx), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_create(F.ctx, NULL, &F.srv), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(F.srv, echo_svc, echo_handlers, &F), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_add_service(F.srv, health_svc, health_handlers, &F), 0);
    int port = 0;
    CU_ASSERT_EQUAL_FATAL(rpc_server_listen(F.srv, "127.0.0.1:0", &port), 0);
    CU_ASSERT_EQUAL_FATAL(rpc_server_start(F.srv), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    CU_ASSERT_EQUAL_FATAL(rpc_client_create(F.ctx, addr, NULL, &F.cli), 0);
}

static void teardown(void)
{
    rpc_client_destroy(F.cli);
    rpc_server_destroy(F.srv);
    rpc_ctx_destroy(F.ctx);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&F.loop), 0);
    rc_config_init();
}

typedef struct outcome {
    int done;
    int by_code[17];
} outcome;

static void count(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    outcome *o = arg;
    o->done++;
    if ((unsigned)st->code < 17)
        o->by_code[st->code]++;
    rpc_msg_free(reply);
}

/* n Echo and n Check calls, all in flight at once; waits until every one has ended. */
static void call_both(int n, int64_t timeout_ms, outcome *echo, outcome *check)
{
    memset(echo, 0, sizeof(*echo));
    memset(check, 0, sizeof(*check));
    for (int i = 0; i < n; i++) {
        Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
        req.payload.data = (uint8_t *)"x";
        req.payload.len = 1;
        CU_ASSERT_EQUAL(rpc_client_call(F.cli, echo_svc, "Echo", &req.base, timeout_ms, count, echo), 0);
        Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        CU_ASSERT_EQUAL(rpc_client_call(F.cli, health_svc, "Check", &hreq.base, timeout_ms, count, check), 0);
    }
    while (echo->done < n || check->done < n)
        uv_run(&F.loop, UV_RUN_ONCE);
}

static rpc_fault_stats stats_since(const rpc_fault_stats *before)
{
    rpc_fault_stats now;
    rpc_fault_stats_get(&now);
    now.delayed -= before->delayed;
    now.failed_request -= before->failed_request;
    now.failed_response -= before->failed_response;
    now.failed_in_flight -= before->failed_in_flight;
    now.dropped_request -= before->dropped_request;
    now.dropped_response -= before->dropped_response;
    return now;
}

static void test_off_by_default(void)
{
    setup(NULL, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(rc_cfg.testing_rpc_failure, "");
    CU_ASSERT_STRING_EQUAL(rc_cfg.testing_rpc_drop, "");
    CU_ASSERT_STRING_EQUAL(rc_cfg.testing_rpc_delay_us, "");
    rpc_fault_stats before;
    rpc_fault_stats_get(&before);
    outcome echo, check;
    call_both(300, 10000, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_OK], 300);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], 300);
    rpc_fault_stats d = stats_since(&before);
    CU_ASSERT_EQUAL(d.delayed + d.failed_request + d.failed_response + d.failed_in_flight +
                        d.dropped_request + d.dropped_response, 0);
    teardown();
}

static void test_failure_rates_per_method(void)
{
    /* Echo: 30% of requests never sent, 20% of replies lost; Check untouched. */
    setup(NULL, "EchoService.Echo=-1:30:20", NULL);
    rpc_fault_stats before;
    rpc_fault_stats_get(&before);
    enum { N = 1000 };
    outcome echo, check;
    call_both(N, 10000, &echo, &check);
    rpc_fault_stats d = stats_since(&before);
    printf("\n  failures: %d of %d Echo calls (%llu requests, %llu replies)\n",
           echo.by_code[GRPC_STATUS_UNAVAILABLE], N, (unsigned long long)d.failed_request,
           (unsigned long long)d.failed_response);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], N);
    CU_ASSERT_EQUAL(F.check_served, N);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_UNAVAILABLE] + echo.by_code[GRPC_STATUS_OK], N);
    CU_ASSERT_EQUAL((uint64_t)echo.by_code[GRPC_STATUS_UNAVAILABLE], d.failed_request + d.failed_response);
    /* 30% ± 6 and 20% ± 6 (binomial sd ~1.5% and ~1.3% at N = 1000). */
    CU_ASSERT(d.failed_request >= 240 && d.failed_request <= 360);
    CU_ASSERT(d.failed_response >= 140 && d.failed_response <= 260);
    /* The server ran exactly the requests that were sent (a lost reply was served). */
    CU_ASSERT_EQUAL((uint64_t)F.echo_served, N - d.failed_request);
    teardown();
}

static void test_max_failures_then_clean(void)
{
    setup(NULL, "rayc.bench.EchoService.Echo=3:100:0", NULL);
    outcome echo, check;
    call_both(20, 10000, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_UNAVAILABLE], 3);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_OK], 17);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], 20);
    teardown();
}

static void test_wildcard_and_method_entry(void)
{
    /* Every method fails its request, except Check whose own entry injects nothing; Ray's
     * "Service.grpc_client.Method" spelling is understood. */
    setup(NULL, "*=-1:100:0,Health.grpc_client.Check=-1:0:0", NULL);
    outcome echo, check;
    call_both(50, 10000, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_UNAVAILABLE], 50);
    CU_ASSERT_EQUAL(F.echo_served, 0);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], 50);
    teardown();
}

static void test_in_flight_failure(void)
{
    setup(NULL, "Echo=-1:0:0:100", NULL);
    outcome echo, check;
    call_both(20, 10000, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_UNAVAILABLE], 20);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], 20);
    /* The requests were sent: the server runs them all. */
    for (int i = 0; i < 2000 && F.echo_served < 20; i++)
        uv_run(&F.loop, UV_RUN_NOWAIT);
    while (F.echo_served < 20)
        uv_run(&F.loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(F.echo_served, 20);
    teardown();
}

static void test_drops_end_at_the_deadline(void)
{
    /* Check: 10% of requests and 10% of replies lost; Echo untouched. */
    setup(NULL, NULL, "Check=10:10");
    rpc_fault_stats before;
    rpc_fault_stats_get(&before);
    enum { N = 500 };
    outcome echo, check;
    uint64_t t0 = uv_hrtime();
    call_both(N, 5000, &echo, &check);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000;
    rpc_fault_stats d = stats_since(&before);
    printf("\n  drops: %d of %d Check calls (%llu requests, %llu replies)\n",
           check.by_code[GRPC_STATUS_DEADLINE_EXCEEDED], N, (unsigned long long)d.dropped_request,
           (unsigned long long)d.dropped_response);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_OK], N);
    CU_ASSERT_EQUAL((uint64_t)check.by_code[GRPC_STATUS_DEADLINE_EXCEEDED],
                    d.dropped_request + d.dropped_response);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK] + check.by_code[GRPC_STATUS_DEADLINE_EXCEEDED], N);
    CU_ASSERT(d.dropped_request >= 25 && d.dropped_request <= 80);
    CU_ASSERT(d.dropped_response >= 25 && d.dropped_response <= 80);
    CU_ASSERT_EQUAL((uint64_t)F.check_served, N - d.dropped_request);
    /* A dropped call ends no sooner than its deadline. */
    CU_ASSERT(took_ms >= 4990);
    teardown();

    /* Without a deadline a drop is a broken connection: UNAVAILABLE, at once. */
    setup(NULL, NULL, "Echo=100:0");
    call_both(5, -1, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_UNAVAILABLE], 5);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], 5);
    teardown();
}

static void test_delay_each_direction(void)
{
    /* 30-40 ms each way on Check: a round trip of at least 60 ms; Echo undelayed. */
    setup("Health.Check=30000:40000", NULL, NULL);
    rpc_fault_stats before;
    rpc_fault_stats_get(&before);
    char err[200] = "";
    for (int i = 0; i < 5; i++) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        ProtobufCMessage *reply = NULL;
        uint64_t t0 = uv_hrtime();
        CU_ASSERT_EQUAL(rpc_client_call_sync(F.cli, health_svc, "Check", &req.base, 10000, &reply, err,
                                             sizeof(err)),
                        GRPC_STATUS_OK);
        uint64_t ms = (uv_hrtime() - t0) / 1000000;
        CU_ASSERT(ms >= 60);
        rpc_msg_free(reply);
    }
    outcome echo, check;
    call_both(10, 10000, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_OK], 10);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], 10);
    CU_ASSERT_EQUAL(stats_since(&before).delayed, 15);
    /* A delay longer than the deadline is a timeout. */
    call_both(3, 20, &echo, &check);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_DEADLINE_EXCEEDED], 3);
    teardown();
}

static void test_destroy_ends_held_calls(void)
{
    setup("Echo=500000:500000", NULL, "Check=0:100");
    outcome echo = {0}, check = {0};
    for (int i = 0; i < 5; i++) {
        Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
        CU_ASSERT_EQUAL(rpc_client_call(F.cli, echo_svc, "Echo", &req.base, 10000, count, &echo), 0);
        Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        CU_ASSERT_EQUAL(rpc_client_call(F.cli, health_svc, "Check", &hreq.base, 10000, count, &check), 0);
    }
    /* Let the Check calls reach the server and their replies be dropped. */
    while (F.check_served < 5)
        uv_run(&F.loop, UV_RUN_ONCE);
    rpc_client_destroy(F.cli);
    F.cli = NULL;
    while (echo.done < 5 || check.done < 5)
        uv_run(&F.loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_CANCELLED], 5);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_CANCELLED], 5);
    CU_ASSERT_EQUAL(F.echo_served, 0);
    teardown();
}

static void test_bad_settings_and_intra_node(void)
{
    /* Malformed entries are ignored; the good one still applies. */
    setup(NULL, "Echo=abc,Check,=1:2:3,Check=-1:100:0", NULL);
    outcome echo, check;
    call_both(10, 10000, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_OK], 10);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_UNAVAILABLE], 10);
    teardown();
    /* Calls within the host are spared when asked. */
    setup(NULL, "*=-1:100:0", NULL);
    CU_ASSERT_EQUAL(rc_config_set("testing_rpc_failure_avoid_intra_node_failures", "1"), 0);
    call_both(10, 10000, &echo, &check);
    CU_ASSERT_EQUAL(echo.by_code[GRPC_STATUS_OK], 10);
    CU_ASSERT_EQUAL(check.by_code[GRPC_STATUS_OK], 10);
    teardown();
}

static const unit_case cases[] = {
    UNIT_CASE(test_off_by_default),
    UNIT_CASE(test_failure_rates_per_method),
    UNIT_CASE(test_max_failures_then_clean),
    UNIT_CASE(test_wildcard_and_method_entry),
    UNIT_CASE(test_in_flight_failure),
    UNIT_CASE(test_drops_end_at_the_deadline),
    UNIT_CASE(test_delay_each_direction),
    UNIT_CASE(test_destroy_ends_held_calls),
    UNIT_CASE(test_bad_settings_and_intra_node),
};

int main(void)
{
    return unit_run("rpc_fault", cases, UNIT_N(cases));
}
