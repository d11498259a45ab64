/*
 * The closed-loop call driver shared by the RPC and GCS benchmarks, and the echo server
 * that gives the RPC floor. Main thread only.
 */
#ifndef RAYC_BENCH_BENCH_RPC_H
#define RAYC_BENCH_BENCH_RPC_H

#include <stdint.h>

#include "bench.h"
#include "rpc.h"

/* Issues one call whose completion must invoke cb(status, reply, cbarg). Returns 0 or RC_E*. */
typedef int (*bench_issue_fn)(void *ctx, rpc_client_cb cb, void *cbarg);

typedef struct bench_rate_result {
    double per_second;
    uint64_t done;
    uint64_t failed;
} bench_rate_result;

/* Keeps in_flight calls outstanding on loop for duration_ms (after a short warm-up) and
 * returns the completion rate. in_flight 1 is the synchronous pattern. */
bench_rate_result bench_rate(uv_loop_t *loop, int in_flight, int64_t duration_ms, bench_issue_fn issue,
                             void *ctx);

/* `rayc-bench --serve-echo PORTFILE [TLSDIR]`: the echo server process, plaintext or with
 * TLSDIR's ca.crt, server.crt and server.key. Returns an exit status. */
int bench_serve_echo(const char *port_file, const char *tls_dir);
/* The RPC floor of this run (measured now if not yet reported). */
double bench_floor(bench_ctx *b, const char *name);

#endif
