/*
 * The local cluster the task and actor benchmarks share (bench_tasks.c): started once per
 * run (a GCS and one raylet with 2 CPUs and {"custom": 100}, as the CI machine has), or
 * RAYC_BENCH_ADDRESS; and the Dask peer's figures (bench/peers/dask_micro.py).
 */
#ifndef RAYC_BENCH_BENCH_CLUSTER_H
#define RAYC_BENCH_BENCH_CLUSTER_H

#include <stddef.h>

#include "bench.h"

/* Starts (once) the cluster and this process as its driver; 0 or -1. */
int bench_cluster_init(bench_ctx *b);
/* The cluster's GCS address (for driver processes of multi-client benchmarks), or NULL. */
const char *bench_cluster_address(char *buf, size_t len);
/* Runs `rayc-bench MODE ADDRESS MS` in clients processes at once (drivers of the multi-client
 * benchmarks, each printing its rate) and returns the sum of their rates, or -1. */
double bench_clients_total(bench_ctx *b, const char *mode, int clients);
/* Runs the Dask peer once per run, recording its figures as "dask:<name>". */
void bench_run_dask(bench_ctx *b);
/* Reports name against the RPC floor figure (if any) and against Dask's (if measured). */
void bench_report_vs(bench_ctx *b, const char *name, double value, const char *unit, const char *floor);

#endif
