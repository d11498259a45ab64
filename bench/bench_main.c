/*
 * rayc-bench: runs the benchmarks of bench_list.h and prints their figures.
 *
 *   rayc-bench --list                 names and descriptions
 *   rayc-bench [--only A,B] [--seconds S] [--quick]
 *
 * One JSON object per figure on stdout, a table on stderr. Main thread only.
 */
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_rpc.h"

int bench_tasks_client(const char *address, int64_t ms);
int bench_actors_client(const char *address, int64_t ms);
int bench_market_driver(const char *address);
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"

#define BENCH(name, fn, desc) void fn(bench_ctx *b);
#include "bench_list.h"
#undef BENCH

typedef struct bench_def {
    const char *name;
    bench_fn fn;
    const char *desc;
} bench_def;

static const bench_def all_benches[] = {
#define BENCH(name, fn, desc) {#name, fn, desc},
#include "bench_list.h"
#undef BENCH
    {NULL, NULL, NULL},
};

typedef struct bench_figure {
    char *name;
    double value;
} bench_figure;

struct bench_ctx {
    int64_t duration_ms;
    char bin_dir[PATH_MAX];
    bench_figure *figures;
    size_t n_figures;
};

int bench_lower_is_better(const char *unit)
{
    static const char *lower[] = {"s", "ms", "us", "ns", "MiB", "KiB", "%cpu"};
    for (size_t i = 0; i < RC_ARRAY_LEN(lower); i++)
        if (!strcmp(unit, lower[i]))
            return 1;
    return 0;
}

void bench_report(bench_ctx *b, const char *name, double value, const char *unit,
                  const char *peer, double peer_value)
{
    b->figures = rc_realloc(b->figures, (b->n_figures + 1) * sizeof(*b->figures));
    b->figures[b->n_figures].name = rc_strdup(name);
    b->figures[b->n_figures].value = value;
    b->n_figures++;

    int have_peer = peer && peer_value > 0 && isfinite(peer_value);
    double ratio = NAN;
    if (have_peer && value > 0)
        ratio = bench_lower_is_better(unit) ? peer_value / value : value / peer_value;

    rc_buf line = RC_BUF_INIT;
    rc_buf_puts(&line, "{\"name\":");
    rc_buf_json_str(&line, name, strlen(name));
    rc_buf_printf(&line, ",\"value\":%.6g,\"unit\":", value);
    rc_buf_json_str(&line, unit, strlen(unit));
    rc_buf_puts(&line, ",\"peer\":");
    if (have_peer) {
        rc_buf_json_str(&line, peer, strlen(peer));
        rc_buf_printf(&line, ",\"peer_value\":%.6g,\"ratio\":", peer_value);
        if (isfinite(ratio))
            rc_buf_printf(&line, "%.4g", ratio);
        else
            rc_buf_puts(&line, "null");
    } else {
        rc_buf_puts(&line, "null,\"ratio\":null");
    }
    rc_buf_puts(&line, "}\n");
    fputs(rc_buf_cstr(&line), stdout);
    fflush(stdout);
    rc_buf_free(&line);

    if (have_peer)
        fprintf(stderr, "  %-44s %14.6g %-12s  %-24s %12.6g  x%.3f\n", name, value, unit, peer,
                peer_value, ratio);
    else
        fprintf(stderr, "  %-44s %14.6g %-12s\n", name, value, unit);
}

double bench_lookup(bench_ctx *b, const char *name)
{
    for (size_t i = b->n_figures; i-- > 0;)
        if (!strcmp(b->figures[i].name, name))
            return b->figures[i].value;
    return 0;
}

int64_t bench_duration_ms(bench_ctx *b)
{
    return b->duration_ms;
}

const char *bench_bin_dir(bench_ctx *b)
{
    return b->bin_dir;
}

static int selected(const char *only, const char *name)
{
    if (!only)
        return 1;
    size_t n = strlen(name);
    for (const char *p = only; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rayc-bench [--list] [--only NAME[,NAME...]] [--seconds S] [--quick]\n");
}

int main(int argc, char **argv)
{
    bench_ctx ctx = {.duration_ms = 2000};
    const char *only = NULL;
    int list = 0;
    rc_config_init();
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "--serve-echo")) /* the peer of rpc_echo_* */
        return bench_serve_echo(argv[2], argc == 4 ? argv[3] : NULL);
    if (argc == 4 && !strcmp(argv[1], "--tasks-client")) /* a driver of multi_client_tasks_async */
        return bench_tasks_client(argv[2], atoll(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "--actors-client")) /* a caller of n_n_actor_calls_async */
        return bench_actors_client(argv[2], atoll(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "--market-driver")) /* the driver of market_scale_up_latency */
        return bench_market_driver(argv[2]);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            list = 1;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            double s = atof(argv[++i]);
            if (s <= 0) {
                fprintf(stderr, "rayc-bench: --seconds needs a positive number\n");
                return 2;
            }
            ctx.duration_ms = (int64_t)(s * 1000);
        } else if (!strcmp(argv[i], "--quick")) {
            ctx.duration_ms = 300;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "rayc-bench: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (list) {
        for (const bench_def *d = all_benches; d->name; d++)
            printf("%-36s %s\n", d->name, d->desc);
        return 0;
    }
    if (only) {
        /* Every name asked for must exist: a typo must not look like a clean run. */
        char *copy = rc_strdup(only);
        for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
            const bench_def *d = all_benches;
            while (d->name && strcmp(d->name, tok))
                d++;
            if (!d->name) {
                fprintf(stderr, "rayc-bench: no benchmark named '%s' (see --list)\n", tok);
                rc_free(copy);
                return 2;
            }
        }
        rc_free(copy);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        snprintf(ctx.bin_dir, sizeof(ctx.bin_dir), "%s", dirname(self));
    }
    fprintf(stderr, "  %-44s %14s %-12s  %-24s %12s  %s\n", "benchmark", "value", "unit", "peer",
            "peer value", "ratio");
    for (const bench_def *d = all_benches; d->name; d++)
        if (selected(only, d->name))
            d->fn(&ctx);
    for (size_t i = 0; i < ctx.n_figures; i++)
        rc_free(ctx.figures[i].name);
    rc_free(ctx.figures);
    return 0;
}
