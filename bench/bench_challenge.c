/*
 * bench_challenge.c: the market's verification challenge (auth_challenge.h) on the CPU, as a
 * raylet answers it and as the verifier checks it, for a few orders n:
 *   market_verify_seconds_commit_n<N>   the product on every core plus its Merkle commitment
 *                                       (what RunChallenge costs a CPU host, without RPC)
 *   market_verify_seconds_spot8_n<N>    recomputing and checking 8 opened rows (what the
 *                                       verifier spends per challenge)
 * Each figure is the mean over as many rounds as fit in the benchmark's duration (at least
 * one). A GPU host's figure comes from its RunChallenge's compute_us, not from here. Main
 * thread only (the kernel starts its own threads).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth_challenge.h"
#include "bench.h"
#include "rc_alloc.h"
#include "rc_time.h"

enum { SPOT_ROWS = 8 };

static int cpu_threads(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : n;
}

static void measure_order(bench_ctx *b, uint32_t n)
{
    uint8_t seed[AUTH_CHALLENGE_SEED_SIZE], vseed[AUTH_CHALLENGE_SEED_SIZE];
    for (int i = 0; i < AUTH_CHALLENGE_SEED_SIZE; i++) {
        seed[i] = (uint8_t)(n + i);
        vseed[i] = (uint8_t)(3 * n + i);
    }
    int32_t *c = rc_malloc((size_t)n * n * sizeof(int32_t));
    uint8_t *leaves = rc_malloc((size_t)n * AUTH_CHALLENGE_HASH_SIZE);
    uint8_t root[AUTH_CHALLENGE_HASH_SIZE], values[4 * 1024], path[AUTH_CHALLENGE_PATH_MAX * AUTH_CHALLENGE_HASH_SIZE];
    auth_merkle *tree = NULL;
    char err[256];
    int threads = cpu_threads();

    int rounds = 0;
    int64_t t0 = rc_mono_ms(), spent = 0;
    do {
        auth_merkle_free(tree);
        tree = NULL;
        if (auth_challenge_product_cpu(seed, n, n, threads, NULL, c, leaves, err, sizeof(err)) < 0 ||
            auth_merkle_build(leaves, n, &tree) < 0) {
            fprintf(stderr, "market_verify_seconds: %s\n", err);
            goto out;
        }
        auth_merkle_root(tree, root);
        rounds++;
        spent = rc_mono_ms() - t0;
    } while (spent < bench_duration_ms(b));
    char name[96];
    snprintf(name, sizeof(name), "market_verify_seconds_commit_n%u", n);
    bench_report(b, name, spent / 1000.0 / rounds, "s", NULL, 0);

    uint32_t rows[SPOT_ROWS];
    rounds = 0;
    t0 = rc_mono_ms();
    do {
        vseed[0]++;
        auth_challenge_pick_rows(vseed, n, SPOT_ROWS, rows);
        for (int k = 0; k < SPOT_ROWS; k++) {
            auth_challenge_row_bytes(c + (size_t)rows[k] * n, n, values);
            int np = auth_merkle_path(tree, rows[k], path, AUTH_CHALLENGE_PATH_MAX);
            if (auth_challenge_verify_opening(seed, n, n, root, rows[k], values, (size_t)n * 4, path, (size_t)np, err,
                                              sizeof(err)) != 0) {
                fprintf(stderr, "market_verify_seconds: %s\n", err);
                goto out;
            }
        }
        rounds++;
        spent = rc_mono_ms() - t0;
    } while (spent < bench_duration_ms(b));
    snprintf(name, sizeof(name), "market_verify_seconds_spot%d_n%u", SPOT_ROWS, n);
    bench_report(b, name, spent / 1000.0 / rounds, "s", NULL, 0);
out:
    auth_merkle_free(tree);
    rc_free(c);
    rc_free(leaves);
}

void bench_market_verify_seconds(bench_ctx *b)
{
    static const uint32_t orders[] = {256, 512, 1024};
    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
        measure_order(b, orders[i]);
}
