/*
 * rayc-bench harness: the interface every benchmark implements.
 *
 * A benchmark is a function that measures one or more figures and reports each with
 * bench_report. The list of benchmarks is bench_list.h (one BENCH line each). Output: one
 * JSON object per figure on stdout ({"name","value","unit","peer","ratio"}), a human table
 * on stderr. A benchmark that depends on a slower or missing peer reports the peer as NULL.
 * Benchmarks run on the main thread, one at a time; each may start processes and must stop
 * them before it returns.
 */
#ifndef RAYC_BENCH_BENCH_H
#define RAYC_BENCH_BENCH_H

#include <stdint.h>

typedef struct bench_ctx bench_ctx;
typedef void (*bench_fn)(bench_ctx *b);

/* Reports a figure. peer names what value is compared against (another benchmark of this
 * run such as "rpc_echo_sync", or a peer system such as "dask"); NULL for none. The ratio
 * printed is value / peer_value (for "seconds"-like units where lower is better, the
 * harness prints peer_value / value: see bench_lower_is_better). */
void bench_report(bench_ctx *b, const char *name, double value, const char *unit,
                  const char *peer, double peer_value);
/* Looks up a figure already reported in this run (e.g. the RPC floor); 0 if absent. */
double bench_lookup(bench_ctx *b, const char *name);
/* How long a benchmark should measure one figure, in milliseconds (--seconds, default 2 s;
 * shorter with --quick). Benchmarks loop until at least this much time has passed. */
int64_t bench_duration_ms(bench_ctx *b);
/* Path of the directory holding the rayc executables (for starting daemons). */
const char *bench_bin_dir(bench_ctx *b);
/* 1 if unit is one where smaller is better ("s", "ms", "us", "MiB", "%cpu"). */
int bench_lower_is_better(const char *unit);

#endif
