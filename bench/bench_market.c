/*
 * bench_market.c: the market's decision round (mk_decide) at market scale.
 *
 * A seeded catalogue of 10,000 offers from a few dozen providers (CPU hosts of 8-64 CPUs and
 * GPU hosts of 1-8 A100-40/A100-80/H100/RTX4090/L4, four regions, a zone label, prices that
 * vary per provider, reliability 0.8-1.0, some already leased) and 1,000 pending shapes
 * (CPU tasks, GPU tasks with and without accelerator type, GPU memory or memory, a region
 * selector on some), counts 1-8, plus 20 STRICT_SPREAD/STRICT_PACK gangs and a budget that
 * runs out part way, so every path of a round is timed: grouping, verdicts, gangs, packing,
 * the budget refusing, and infeasible reasons. Built before timing; one figure, ms per round.
 * Main thread only, like every rayc-bench benchmark.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "market.h"
#include "rc_alloc.h"
#include "rc_time.h"

#define N_OFFERS 10000
#define N_SHAPES 1000
#define N_GANGS 20
#define GIB (1024.0 * 1024.0 * 1024.0)

static uint64_t rng = 0x5eed5eedULL;
static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}
static size_t below(size_t n)
{
    return (size_t)(next() % n);
}

typedef struct gpu_kind {
    const char *name;
    double mem, price;
} gpu_kind;
static const gpu_kind kinds[] = {
    {"A100", 40, 1.10}, {"A100", 80, 1.60}, {"H100", 80, 2.49}, {"RTX4090", 24, 0.35}, {"L4", 24, 0.60}};
static const char *const regions[] = {"us-west", "us-east", "eu-west", "ap-south"};
static const char *const zones[] = {"a", "b", "c"};
static const char *const zone_keys[] = {"zone"};

static void make_offers(mk_offer *o, int *leased)
{
    static char ids[N_OFFERS][24], provs[40][16];
    for (int p = 0; p < 40; p++)
        snprintf(provs[p], sizeof(provs[p]), "p%d", p);
    for (int i = 0; i < N_OFFERS; i++) {
        mk_offer *x = &o[i];
        memset(x, 0, sizeof(*x));
        snprintf(ids[i], sizeof(ids[i]), "offer-%05d", i);
        x->id = ids[i];
        size_t prov = below(40);
        x->provider = provs[prov];
        x->region = (char *)regions[below(4)];
        double markup = 0.8 + 0.05 * (double)(prov % 9);
        if (below(10) < 5) {
            static const double cpus[] = {8, 16, 32, 64};
            x->gpu_name = "";
            x->num_cpus = cpus[below(4)];
            x->memory = x->num_cpus * 4;
            x->price_per_hour = x->num_cpus * 0.02 * markup;
        } else {
            static const double counts[] = {1, 2, 4, 8};
            const gpu_kind *k = &kinds[below(5)];
            x->gpu_name = (char *)k->name;
            x->num_gpus = counts[below(4)];
            x->gpu_memory = k->mem;
            x->num_cpus = 8 * x->num_gpus;
            x->memory = 64 * x->num_gpus;
            x->price_per_hour = k->price * x->num_gpus * markup;
        }
        x->price_per_hour = (double)(int64_t)(x->price_per_hour * 100) / 100.0;
        x->billing_increment_s = below(2) ? 60 : 3600;
        x->reliability = 0.8 + 0.01 * (double)below(21);
        x->available = 1 + (int)below(4);
        leased[i] = below(10) == 0 ? 1 : 0;
        x->label_keys = (char **)zone_keys;
        x->label_values = (char **)&zones[below(3)];
        x->n_labels = 1;
    }
}

/* Shapes point into these static pools. */
static mk_amount amounts[N_SHAPES][4];
static mk_label_cond conds[N_SHAPES];
static const char *region_values[4][1];
static char accel_names[5][40];

static void make_demand(mk_demand *d)
{
    for (int r = 0; r < 4; r++)
        region_values[r][0] = regions[r];
    for (int k = 0; k < 5; k++)
        snprintf(accel_names[k], sizeof(accel_names[k]), "accelerator_type:%s", kinds[k].name);
    for (int i = 0; i < N_SHAPES; i++) {
        mk_amount *a = amounts[i];
        size_t n = 0;
        size_t kind = below(10);
        if (kind < 6) {
            a[n++] = (mk_amount){"CPU", (double)(1 + below(16))};
            if (below(2))
                a[n++] = (mk_amount){"memory", (double)(1 + below(32)) * GIB};
        } else {
            a[n++] = (mk_amount){"GPU", (double)(1 << below(3))};
            a[n++] = (mk_amount){"CPU", (double)(1 + below(8))};
            if (below(2))
                a[n++] = (mk_amount){accel_names[below(5)], 0.001};
            else if (below(2))
                a[n++] = (mk_amount){"gpu_memory", below(2) ? 40 : 80};
        }
        d[i].shape.res = a;
        d[i].shape.n_res = n;
        if (below(5) == 0) {
            conds[i] = (mk_label_cond){"ray.io/market-region", region_values[below(4)], 1, below(4) == 0};
            d[i].shape.conds = &conds[i];
            d[i].shape.n_conds = 1;
        }
        d[i].count = 1 + (int64_t)below(8);
    }
}

void bench_market_decide(bench_ctx *b)
{
    mk_offer *offers = rc_calloc(N_OFFERS, sizeof(*offers));
    int *leased = rc_calloc(N_OFFERS, sizeof(int));
    mk_demand *demand = rc_calloc(N_SHAPES, sizeof(*demand));
    make_offers(offers, leased);
    make_demand(demand);
    static const mk_amount gpu1[] = {{"GPU", 1}, {"CPU", 4}};
    mk_bundle bundles[8];
    for (int i = 0; i < 8; i++)
        bundles[i] = (mk_bundle){gpu1, 2, NULL, 0};
    mk_gang gangs[N_GANGS];
    for (int g = 0; g < N_GANGS; g++)
        gangs[g] = (mk_gang){bundles, 2 + (size_t)below(7), g % 2 == 0, g % 2 == 1, "bench"};
    mk_config cfg;
    mk_config_defaults(&cfg);
    mk_scores scores;
    mk_scores_init(&scores, 600);
    char key[256];
    for (int i = 0; i < 200; i++) {
        mk_score_key(&offers[below(N_OFFERS)], key, sizeof(key));
        mk_score_add(&scores, key, 0.1 * (double)below(10), 0);
    }
    mk_ledger ledger;
    mk_ledger_init(&ledger, 1500, 0); /* runs out part way through the demand */
    mk_decide_input in = {.offers = offers, .n_offers = N_OFFERS, .leased = leased, .demands = demand,
                          .n_demands = N_SHAPES, .gangs = gangs, .n_gangs = N_GANGS, .ledger = &ledger,
                          .scores = &scores, .config = &cfg, .now_ms = 60000};
    int64_t budget = bench_duration_ms(b) * 1000000LL, t0 = rc_mono_ns(), t = t0;
    int64_t rounds = 0;
    size_t launches = 0, infeasible = 0;
    do {
        mk_decision d;
        if (mk_decide(&in, &d) < 0) {
            fprintf(stderr, "market_decide: mk_decide failed\n");
            break;
        }
        launches = d.n_launches;
        infeasible = d.n_infeasible;
        mk_decision_free(&d);
        rounds++;
        t = rc_mono_ns();
    } while (t - t0 < budget || rounds < 3);
    fprintf(stderr, "market_decide: %lld rounds, %zu launches and %zu infeasible requests per round\n",
            (long long)rounds, launches, infeasible);
    bench_report(b, "market_decide", (double)(t - t0) / 1e6 / (double)rounds, "ms", NULL, 0);
    mk_scores_free(&scores);
    rc_free(demand);
    rc_free(leased);
    rc_free(offers);
}
