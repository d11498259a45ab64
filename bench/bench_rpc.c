/*
 * RPC floor benchmarks: rpc_echo_sync (one call at a time) and rpc_echo_async (64 in
 * flight) between rayc-bench and an echo server in another process, through the same rpc
 * layer every rayc daemon uses but with no rayc logic. Every other RPC-bound figure is
 * reported as a ratio to these.
 *
 * The same echo over rayc's security (rpc_echo_sync_tls, rpc_echo_async_tls): TLS with a
 * CA made for the run, a bearer token checked by the server's ACL on every call, as a
 * driver calls a worker; reported against the plaintext floor of the same run. And the
 * price of a new secure connection (rpc_connect_tls): a fresh channel, its TLS handshake
 * and one call, again and again.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bench_proc.h"
#include "bench_rpc.h"
#include "rayc_bench.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_time.h"

/* ---- driver ------------------------------------------------------------------------- */

typedef struct bench__driver {
    bench_issue_fn issue;
    void *ctx;
    int64_t warm_until_ns, end_ns;
    uint64_t done, failed, outstanding;
    int64_t counted_start_ns, counted_end_ns;
    uint64_t counted;
    char last_error[256];
} bench__driver;

static void bench__completed(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    bench__driver *d = arg;
    d->outstanding--;
    int64_t now = rc_mono_ns();
    if (st->code != GRPC_STATUS_OK) {
        d->failed++;
        snprintf(d->last_error, sizeof(d->last_error), "%s", st->message);
    } else {
        d->done++;
        if (now >= d->warm_until_ns && now < d->end_ns) {
            if (!d->counted_start_ns)
                d->counted_start_ns = now;
            d->counted++;
            d->counted_end_ns = now;
        }
    }
    rpc_msg_free(reply);
    if (now < d->end_ns && d->issue(d->ctx, bench__completed, d) == 0)
        d->outstanding++;
}

bench_rate_result bench_rate(uv_loop_t *loop, int in_flight, int64_t duration_ms, bench_issue_fn issue, void *ctx)
{
    bench__driver d;
    memset(&d, 0, sizeof(d));
    d.issue = issue;
    d.ctx = ctx;
    int64_t now = rc_mono_ns();
    int64_t warm = duration_ms / 10 < 200 ? duration_ms / 10 : 200;
    d.warm_until_ns = now + warm * 1000000;
    d.end_ns = d.warm_until_ns + duration_ms * 1000000;
    for (int i = 0; i < in_flight; i++)
        if (issue(ctx, bench__completed, &d) == 0)
            d.outstanding++;
    while (d.outstanding)
        uv_run(loop, UV_RUN_ONCE);
    bench_rate_result r = {0, d.done, d.failed};
    double secs = (double)(d.counted_end_ns - d.counted_start_ns) / 1e9;
    if (d.counted > 1 && secs > 0)
        r.per_second = (double)(d.counted - 1) / secs;
    if (d.failed)
        fprintf(stderr, "  (%llu calls failed; last: %s)\n", (unsigned long long)d.failed, d.last_error);
    return r;
}

/* ---- echo server -------------------------------------------------------------------- */

static void bench__handle_echo(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    (void)arg;
    const Rayc__Bench__EchoRequest *req = (const void *)request;
    Rayc__Bench__EchoReply reply = RAYC__BENCH__ECHO_REPLY__INIT;
    reply.payload = req->payload;
    rpc_reply(call, &reply.base);
}

static void bench__on_term(uv_signal_t *h, int sig)
{
    (void)sig;
    uv_stop(h->loop);
}

/* The security material of the TLS echo, made once per run under dir: a CA, the server's
 * certificate and a job token (what a worker's server and a driver hold). */
typedef struct bench__pki {
    char *ca_key, *ca_cert, *key, *cert, *token;
} bench__pki;

static void bench__pki_free(bench__pki *p)
{
    rc_free(p->ca_key);
    rc_free(p->ca_cert);
    rc_free(p->key);
    rc_free(p->cert);
    rc_free(p->token);
    memset(p, 0, sizeof(*p));
}

static int bench__pki_make(const char *dir, bench__pki *p)
{
    const char *ips[] = {"127.0.0.1"};
    auth_claims job = {.kind = AUTH_TOKEN_JOB, .job_id = {1, 0, 0, 0}};
    char path[300];
    memset(p, 0, sizeof(*p));
    if (auth_ca_create("rayc-bench CA", 1, &p->ca_key, &p->ca_cert) < 0 ||
        auth_cert_issue(p->ca_key, p->ca_cert, "worker:bench", ips, 1, 1, &p->key, &p->cert) < 0 ||
        auth_token_mint(p->ca_key, &job, &p->token) < 0)
        return -1;
    const char *names[] = {"ca.crt", "server.crt", "server.key"};
    const char *pems[] = {p->ca_cert, p->cert, p->key};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (auth_write_secret(path, pems[i]) < 0)
            return -1;
    }
    return 0;
}

/* Reads the server's half of the PKI from dir. */
static int bench__pki_load(const char *dir, bench__pki *p)
{
    char path[300];
    memset(p, 0, sizeof(*p));
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    int rc = auth_read_file(path, &p->ca_cert);
    snprintf(path, sizeof(path), "%s/server.crt", dir);
    rc = rc < 0 ? rc : auth_read_file(path, &p->cert);
    snprintf(path, sizeof(path), "%s/server.key", dir);
    return rc < 0 ? rc : auth_read_file(path, &p->key);
}

int bench_serve_echo(const char *port_file, const char *tls_dir)
{
    static const rpc_method_handler handlers[] = {{"Echo", bench__handle_echo}, {NULL, NULL}};
    uv_loop_t loop;
    uv_loop_init(&loop);
    rpc_ctx *ctx;
    rpc_server *srv;
    int port;
    bench__pki pki = {0};
    rpc_security sec = {.insecure = 1};
    if (tls_dir) {
        if (bench__pki_load(tls_dir, &pki) < 0)
            return 1;
        sec = (rpc_security){.ca_cert_pem = pki.ca_cert, .cert_pem = pki.cert, .key_pem = pki.key};
    }
    rpc_server_options so = {&sec, 0};
    if (rpc_ctx_create(&loop, &ctx) < 0 || rpc_server_create(ctx, &so, &srv) < 0)
        return 1;
    rpc_server_add_service(srv, &rayc__bench__echo_service__descriptor, handlers, NULL);
    if (rpc_server_listen(srv, "127.0.0.1:0", &port) < 0 || rpc_server_start(srv) < 0)
        return 1;
    FILE *f = fopen(port_file, "w");
    if (!f)
        return 1;
    fprintf(f, "%d\n", port);
    fclose(f);
    uv_signal_t term;
    uv_signal_init(&loop, &term);
    uv_signal_start(&term, bench__on_term, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    rpc_server_destroy(srv);
    rpc_ctx_destroy(ctx);
    uv_close((uv_handle_t *)&term, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    bench__pki_free(&pki);
    return 0;
}

/* ---- benchmarks --------------------------------------------------------------------- */

typedef struct bench__echo {
    rpc_client *cli;
    Rayc__Bench__EchoRequest req;
} bench__echo;

static int bench__issue_echo(void *ctx, rpc_client_cb cb, void *cbarg)
{
    bench__echo *e = ctx;
    return rpc_client_call(e->cli, &rayc__bench__echo_service__descriptor, "Echo", &e->req.base, 10000, cb, cbarg);
}

typedef struct bench__sync_call {
    int done, code;
} bench__sync_call;

static void bench__on_connect_call(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    bench__sync_call *c = arg;
    c->done = 1;
    c->code = st->code;
    rpc_msg_free(reply);
}

/* New channels per second: each one connects, shakes hands and makes one call. */
static double bench__connect_rate(bench_ctx *b, uv_loop_t *loop, rpc_ctx *ctx, const char *target,
                                  const rpc_client_options *co)
{
    Rayc__Bench__EchoRequest req = RAYC__BENCH__ECHO_REQUEST__INIT;
    int64_t start = rc_mono_ns(), end = start + bench_duration_ms(b) * 1000000;
    uint64_t n = 0, failed = 0;
    while (rc_mono_ns() < end) {
        rpc_client *cli;
        if (rpc_client_create(ctx, target, co, &cli) < 0)
            return 0;
        bench__sync_call c = {0, 0};
        if (rpc_client_call(cli, &rayc__bench__echo_service__descriptor, "Echo", &req.base, 10000,
                            bench__on_connect_call, &c) == 0)
            while (!c.done)
                uv_run(loop, UV_RUN_ONCE);
        rpc_client_destroy(cli);
        if (c.done && c.code == GRPC_STATUS_OK)
            n++;
        else
            failed++;
    }
    if (failed)
        fprintf(stderr, "  (rpc_connect_tls: %llu connections failed)\n", (unsigned long long)failed);
    return (double)n / ((double)(rc_mono_ns() - start) / 1e9);
}

/* One echo server process and a client of it: plaintext, or TLS with a token. */
typedef struct bench__echo_peer {
    pid_t pid;
    bench__pki pki;
    uv_loop_t loop;
    rpc_ctx *ctx;
    rpc_client_options co;
    rpc_security sec;
    char target[64];
    bench__echo e;
} bench__echo_peer;

static int bench__echo_open(bench_ctx *b, bench__echo_peer *p, int tls)
{
    char exe[4200], port_file[128], log[128], dir[128];
    memset(p, 0, sizeof(*p));
    snprintf(exe, sizeof(exe), "%s/rayc-bench", bench_bin_dir(b));
    snprintf(port_file, sizeof(port_file), "%s/echo%s.port", bench_tmpdir(), tls ? "_tls" : "");
    snprintf(log, sizeof(log), "%s/echo%s.log", bench_tmpdir(), tls ? "_tls" : "");
    snprintf(dir, sizeof(dir), "%s", bench_tmpdir());
    remove(port_file);
    if (tls && bench__pki_make(dir, &p->pki) < 0) {
        fprintf(stderr, "  rpc_echo_tls: cannot make the benchmark's certificates in %s\n", dir);
        bench__pki_free(&p->pki);
        return -1;
    }
    char *argv[] = {exe, "--serve-echo", port_file, tls ? dir : NULL, NULL};
    p->pid = bench_spawn(argv, NULL, log);
    int port = bench_wait_port_file(port_file, p->pid, 10000);
    if (port < 0) {
        fprintf(stderr, "  rpc_echo: the echo server did not start (see %s)\n", log);
        bench_stop(p->pid);
        bench__pki_free(&p->pki);
        return -1;
    }
    uv_loop_init(&p->loop);
    rpc_ctx_create(&p->loop, &p->ctx);
    snprintf(p->target, sizeof(p->target), "127.0.0.1:%d", port);
    p->sec = tls ? (rpc_security){.ca_cert_pem = p->pki.ca_cert, .token = p->pki.token} : (rpc_security){.insecure = 1};
    p->co = (rpc_client_options){&p->sec, 0, 1};
    rpc_client_create(p->ctx, p->target, &p->co, &p->e.cli);
    rayc__bench__echo_request__init(&p->e.req);
    p->e.req.payload.data = (uint8_t *)"ok";
    p->e.req.payload.len = 2;
    return 0;
}

static double bench__echo_rate(bench__echo_peer *p, int in_flight, int64_t ms)
{
    return bench_rate(&p->loop, in_flight, ms, bench__issue_echo, &p->e).per_second;
}

static void bench__echo_close(bench__echo_peer *p)
{
    rpc_client_destroy(p->e.cli);
    rpc_ctx_destroy(p->ctx);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    bench_stop(p->pid);
    bench__pki_free(&p->pki);
}

/* Measures the plaintext floors with one echo server process. */
static void bench__echo_run(bench_ctx *b, int want_sync, int want_async)
{
    bench__echo_peer p;
    if (bench__echo_open(b, &p, 0) < 0)
        return;
    if (want_sync)
        bench_report(b, "rpc_echo_sync", bench__echo_rate(&p, 1, bench_duration_ms(b)), "calls/s", NULL, 0);
    if (want_async)
        bench_report(b, "rpc_echo_async", bench__echo_rate(&p, 64, bench_duration_ms(b)), "calls/s", NULL, 0);
    bench__echo_close(&p);
}

void bench_rpc_echo_sync(bench_ctx *b)
{
    bench__echo_run(b, 1, 0);
}

void bench_rpc_echo_async(bench_ctx *b)
{
    bench__echo_run(b, 0, 1);
}

static int bench__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { BENCH__TLS_ROUNDS = 5 };

static double bench__median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench__cmp_double);
    return v[n / 2];
}

/* The TLS price, measured so that it is not lost in this machine's drift: a plaintext and a
 * TLS echo server side by side, measured in alternation over several rounds, each figure
 * the median of its rounds and the TLS one reported against the plaintext one of the same
 * rounds. */
void bench_rpc_echo_tls(bench_ctx *b)
{
    bench__echo_peer plain, tls;
    if (bench__echo_open(b, &plain, 0) < 0)
        return;
    if (bench__echo_open(b, &tls, 1) < 0) {
        bench__echo_close(&plain);
        return;
    }
    int64_t ms = bench_duration_ms(b) / BENCH__TLS_ROUNDS;
    ms = ms < 300 ? 300 : ms;
    double sync_plain[BENCH__TLS_ROUNDS], sync_tls[BENCH__TLS_ROUNDS];
    double async_plain[BENCH__TLS_ROUNDS], async_tls[BENCH__TLS_ROUNDS];
    for (int r = 0; r < BENCH__TLS_ROUNDS; r++) {
        sync_plain[r] = bench__echo_rate(&plain, 1, ms);
        sync_tls[r] = bench__echo_rate(&tls, 1, ms);
        async_plain[r] = bench__echo_rate(&plain, 64, ms);
        async_tls[r] = bench__echo_rate(&tls, 64, ms);
    }
    bench_report(b, "rpc_echo_sync_tls", bench__median(sync_tls, BENCH__TLS_ROUNDS), "calls/s",
                 "rpc_echo_sync (same rounds)", bench__median(sync_plain, BENCH__TLS_ROUNDS));
    bench_report(b, "rpc_echo_async_tls", bench__median(async_tls, BENCH__TLS_ROUNDS), "calls/s",
                 "rpc_echo_async (same rounds)", bench__median(async_plain, BENCH__TLS_ROUNDS));
    bench__echo_close(&tls);
    bench__echo_close(&plain);
}

void bench_rpc_connect_tls(bench_ctx *b)
{
    bench__echo_peer p;
    if (bench__echo_open(b, &p, 1) < 0)
        return;
    bench_report(b, "rpc_connect_tls", bench__connect_rate(b, &p.loop, p.ctx, p.target, &p.co), "connections/s",
                 NULL, 0);
    bench__echo_close(&p);
}

double bench_floor(bench_ctx *b, const char *name)
{
    double v = bench_lookup(b, name);
    if (v > 0)
        return v;
    bench__echo_run(b, !strcmp(name, "rpc_echo_sync"), !strcmp(name, "rpc_echo_async"));
    return bench_lookup(b, name);
}
