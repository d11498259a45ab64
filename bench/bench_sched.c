/*
 * bench_sched.c: scheduler library benchmarks (decisions per second).
 *
 * Each benchmark builds a random heterogeneous cluster (seeded, so runs compare): 60%
 * CPU-only nodes (8-48 CPUs), 40% GPU nodes with 1/2/4/8 GPUs of type A100 (40 or 80 GB),
 * H100, RTX4090 or L4, labels region/zone, market prices. Requests are a fixed realistic
 * mix (mostly small CPU tasks, some fractional and whole GPU tasks, some with accelerator
 * type, GPU memory or memory), drawn from a pool built before timing, each arriving at a
 * random node's raylet (that node is the preferred node).
 *
 * A decision is one schedule() call (or one sched_place_bundles call for a placement
 * group). When it says OK, the work is allocated on the chosen node; the allocation made
 * `window` decisions earlier is freed first, so the cluster sits at a steady load (demand
 * for ~60% of the CPUs or ~80% of the GPUs) and every policy meets busy, idle and full
 * nodes, and GPU requests that must queue (NOT_NOW). Allocation and
 * free are inside the timed loop. Main thread only, like every rayc-bench benchmark.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "rc_alloc.h"
#include "rc_time.h"
#include "rayc_sched.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

typedef struct gpu_type {
    const char *name;
    double mem_gib;
    double price; /* per GPU per hour */
} gpu_type;

static const gpu_type gpu_types[] = {
    {"A100", 40, 1.10},    {"A100", 80, 1.60}, {"H100", 80, 2.49},
    {"RTX4090", 24, 0.35}, {"L4", 24, 0.60},
};

static const char *const regions[] = {"us-west", "us-east", "eu-west", "ap-south"};

static void build_cluster(sched_view *v, uint32_t nodes, sched_rng *g, sched_node **out)
{
    for (uint32_t i = 0; i < nodes; i++) {
        uint8_t id[RC_NODE_ID_SIZE];
        for (int k = 0; k < RC_NODE_ID_SIZE; k += 8) {
            uint64_t x = sched_rng_next(g);
            memcpy(id + k, &x, RC_NODE_ID_SIZE - k < 8 ? RC_NODE_ID_SIZE - k : 8);
        }
        char zone[32], price[32];
        const char *region = regions[sched_rng_below(g, 4)];
        snprintf(zone, sizeof(zone), "%s-%c", region, 'a' + (int)sched_rng_below(g, 3));
        sched_named_amount res[3];
        sched_node_spec spec;
        sched_node_spec_init(&spec);
        uint64_t gpu_mem = 0;
        double node_price;
        if (sched_rng_below(g, 10) < 6) {
            static const double cpus[] = {8, 16, 32, 48};
            double c = cpus[sched_rng_below(g, 4)];
            res[0] = (sched_named_amount){"CPU", c};
            res[1] = (sched_named_amount){"memory", c * 4 * GIB};
            spec.n_resources = 2;
            node_price = c * 0.02;
        } else {
            static const double counts[] = {1, 2, 4, 8};
            const gpu_type *t = &gpu_types[sched_rng_below(g, 5)];
            double n = counts[sched_rng_below(g, 4)];
            res[0] = (sched_named_amount){"CPU", 8 * n};
            res[1] = (sched_named_amount){"memory", 64 * n * GIB};
            res[2] = (sched_named_amount){"GPU", n};
            spec.n_resources = 3;
            spec.accelerator_type = t->name;
            gpu_mem = (uint64_t)(t->mem_gib * GIB);
            spec.gpu_memory = &gpu_mem;
            spec.n_gpu_memory = 1;
            node_price = n * t->price;
        }
        snprintf(price, sizeof(price), "%.2f", node_price);
        sched_label labels[] = {
            {"region", region}, {"zone", zone}, {"rayc.io/price-per-hour", price}};
        spec.resources = res;
        spec.labels = labels;
        spec.n_labels = 3;
        sched_err err;
        if (sched_view_add_node(v, id, &spec, &out[i], &err)) {
            fprintf(stderr, "bench_sched: add node: %s\n", err.msg);
            return;
        }
    }
}

enum { POOL = 4096 };

typedef struct workload {
    sched_view *v;
    sched_node **nodes;
    uint32_t n_nodes;
    sched_request *pool;
    sched_node **pref; /* arriving node for each pool entry */
    sched_selector *sels[6];
    sched_rng rng;
    /* steady load: ring of live allocations */
    uint32_t window;
    sched_alloc *ring;
    sched_node **ring_node;
    uint8_t *ring_live;
} workload;

/* Pool of requests: the realistic mix described at the top. with_selectors adds label
 * selectors to most of them. */
static void build_pool(workload *w, int with_selectors, sched_rng *g)
{
    static const char *sel_text[] = {
        "region: in(us-west,us-east)",
        "region: !ap-south",
        "zone: us-west-a",
        "region: eu-west, zone: !eu-west-c",
        "ray.io/accelerator-type: in(A100,H100)",
        "region: in(us-west,eu-west), ray.io/accelerator-type: !RTX4090",
    };
    for (int i = 0; i < 6; i++)
        sched_selector_parse(sel_text[i], &w->sels[i], NULL);
    for (uint32_t i = 0; i < POOL; i++) {
        sched_request *r = &w->pool[i];
        sched_request_init(r);
        uint32_t kind = sched_rng_below(g, 100);
        if (kind < 40) {
            sched_request_set(w->v, r, "CPU", 1, NULL);
        } else if (kind < 55) {
            sched_request_set(w->v, r, "CPU", 2, NULL);
        } else if (kind < 65) {
            sched_request_set(w->v, r, "CPU", 4, NULL);
            sched_request_set(w->v, r, "memory", 8 * GIB, NULL);
        } else if (kind < 75) {
            sched_request_set(w->v, r, "CPU", 0.5, NULL);
        } else if (kind < 80) {
            sched_request_set(w->v, r, "CPU", 8, NULL);
        } else if (kind < 88) {
            sched_request_set(w->v, r, "CPU", 1, NULL);
            sched_request_set(w->v, r, "GPU", 0.25 * (1 + sched_rng_below(g, 2)), NULL);
        } else if (kind < 94) {
            sched_request_set(w->v, r, "CPU", 4, NULL);
            sched_request_set(w->v, r, "GPU", 1, NULL);
            if (sched_rng_below(g, 2))
                r->gpu_memory = (uint64_t)(60 * GIB);
        } else if (kind < 98) {
            static const char *types[] = {"A100", "H100", "L4"};
            sched_request_set(w->v, r, "CPU", 8, NULL);
            sched_request_set(w->v, r, "GPU", 2, NULL);
            sched_request_set_accelerator_type(w->v, r, types[sched_rng_below(g, 3)], NULL);
        } else {
            sched_request_set(w->v, r, "CPU", 16, NULL);
            sched_request_set(w->v, r, "GPU", 8, NULL);
        }
        if (with_selectors && sched_rng_below(g, 10) < 8)
            r->selector = w->sels[sched_rng_below(g, 6)];
        w->pref[i] = w->nodes[sched_rng_below(g, w->n_nodes)];
    }
}

static void workload_init(workload *w, uint32_t nodes, int with_selectors, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    sched_rng g;
    sched_rng_seed(&g, seed);
    w->v = sched_view_new(NULL);
    w->n_nodes = nodes;
    w->nodes = rc_calloc(nodes, sizeof(*w->nodes));
    build_cluster(w->v, nodes, &g, w->nodes);
    w->pool = rc_calloc(POOL, sizeof(*w->pool));
    w->pref = rc_calloc(POOL, sizeof(*w->pref));
    build_pool(w, with_selectors, &g);
    /* Window: demand for about 60% of the cluster's CPUs or 80% of its GPUs, whichever
     * binds first (GPUs are the contended resource, as on real GPU clusters). */
    double cpu_cap = 0, gpu_cap = 0, cpu_need = 0, gpu_need = 0;
    for (uint32_t i = 0; i < nodes; i++) {
        cpu_cap += (double)sched_node_total(w->nodes[i], SCHED_CPU) / SCHED_UNIT;
        gpu_cap += (double)sched_node_total(w->nodes[i], SCHED_GPU) / SCHED_UNIT;
    }
    for (uint32_t i = 0; i < POOL; i++) {
        cpu_need += (double)sched_request_get(&w->pool[i], SCHED_CPU) / SCHED_UNIT / POOL;
        gpu_need += (double)sched_request_get(&w->pool[i], SCHED_GPU) / SCHED_UNIT / POOL;
    }
    double win = 0.6 * cpu_cap / cpu_need;
    if (gpu_need > 0 && 0.8 * gpu_cap / gpu_need < win)
        win = 0.8 * gpu_cap / gpu_need;
    w->window = win < 16 ? 16 : (uint32_t)win;
    w->ring = rc_calloc(w->window, sizeof(*w->ring));
    w->ring_node = rc_calloc(w->window, sizeof(*w->ring_node));
    w->ring_live = rc_calloc(w->window, 1);
    sched_rng_seed(&w->rng, seed ^ 0xabcdef);
}

static void workload_free(workload *w)
{
    for (int i = 0; i < 6; i++)
        sched_selector_free(w->sels[i]);
    sched_view_free(w->v);
    rc_free(w->nodes);
    rc_free(w->pool);
    rc_free(w->pref);
    rc_free(w->ring);
    rc_free(w->ring_node);
    rc_free(w->ring_live);
}

/* One decision at ring position pos: free what sat there, decide, allocate on OK. */
static inline void step(workload *w, uint64_t i, const sched_options *base)
{
    uint32_t pos = (uint32_t)(i % w->window);
    if (w->ring_live[pos]) {
        sched_node_free(w->v, w->ring_node[pos], &w->ring[pos]);
        w->ring_live[pos] = 0;
    }
    const sched_request *r = &w->pool[i % POOL];
    sched_options o = *base;
    o.preferred_node = w->pref[i % POOL];
    sched_decision d;
    if (sched_schedule(w->v, r, &o, &w->rng, &d) == SCHED_OK &&
        !sched_node_allocate(w->v, d.node, r, &w->ring[pos])) {
        w->ring_node[pos] = d.node;
        w->ring_live[pos] = 1;
    }
}

/* Runs decisions for the harness's duration (after a warm-up that reaches steady load);
 * returns decisions per second. */
static double measure(bench_ctx *b, workload *w, const sched_options *base)
{
    uint64_t i = 0;
    for (; i < 2 * (uint64_t)w->window; i++)
        step(w, i, base);
    int64_t budget = bench_duration_ms(b) * 1000000LL;
    int64_t t0 = rc_mono_ns(), t;
    uint64_t done = 0;
    do {
        for (int k = 0; k < 512; k++)
            step(w, i++, base);
        done += 512;
        t = rc_mono_ns();
    } while (t - t0 < budget);
    return (double)done * 1e9 / (double)(t - t0);
}

static double hybrid_rate(bench_ctx *b, uint32_t nodes)
{
    workload w;
    workload_init(&w, nodes, 0, 1000 + nodes);
    sched_options o;
    sched_options_init(&o);
    double rate = measure(b, &w, &o);
    workload_free(&w);
    return rate;
}

void bench_sched_hybrid_100(bench_ctx *b)
{
    bench_report(b, "sched_hybrid_100_nodes", hybrid_rate(b, 100), "decisions/s", NULL, 0);
}

void bench_sched_hybrid_1k(bench_ctx *b)
{
    bench_report(b, "sched_hybrid_1k_nodes", hybrid_rate(b, 1000), "decisions/s", NULL, 0);
}

void bench_sched_hybrid_10k(bench_ctx *b)
{
    double r10k = hybrid_rate(b, 10000);
    bench_report(b, "sched_hybrid_10k_nodes", r10k, "decisions/s", NULL, 0);
    /* How the rate falls from 100 to 10k nodes (1.0: flat; 0.01: linear in nodes). */
    double r100 = bench_lookup(b, "sched_hybrid_100_nodes");
    if (r100 <= 0)
        r100 = hybrid_rate(b, 100);
    bench_report(b, "sched_hybrid_scaling_10k_vs_100", r10k / r100, "ratio", NULL, 0);
}

void bench_sched_spread_1k(bench_ctx *b)
{
    workload w;
    workload_init(&w, 1000, 0, 77);
    sched_options o;
    sched_options_init(&o);
    o.strategy = SCHED_STRATEGY_SPREAD;
    bench_report(b, "sched_spread_1k_nodes", measure(b, &w, &o), "decisions/s", NULL, 0);
    workload_free(&w);
}

void bench_sched_label_1k(bench_ctx *b)
{
    /* 80% of requests carry a label selector (DEFAULT policy); measured separately, the
     * NodeLabelSchedulingStrategy with hard and soft expressions. Reported: both mixed,
     * alternating decision by decision. */
    workload w;
    workload_init(&w, 1000, 1, 78);
    sched_selector *hard = NULL, *soft = NULL;
    sched_selector_parse("region: in(us-west,us-east,eu-west)", &hard, NULL);
    sched_selector_parse("zone: !us-west-c", &soft, NULL);
    sched_options def, lab;
    sched_options_init(&def);
    sched_options_init(&lab);
    lab.strategy = SCHED_STRATEGY_NODE_LABEL;
    lab.label_hard = hard;
    lab.label_soft = soft;
    uint64_t i = 0;
    for (; i < 2 * (uint64_t)w.window; i++)
        step(&w, i, i & 1 ? &lab : &def);
    int64_t budget = bench_duration_ms(b) * 1000000LL, t0 = rc_mono_ns(), t;
    uint64_t done = 0;
    do {
        for (int k = 0; k < 512; k++, i++)
            step(&w, i, i & 1 ? &lab : &def);
        done += 512;
        t = rc_mono_ns();
    } while (t - t0 < budget);
    bench_report(b, "sched_label_1k_nodes", (double)done * 1e9 / (double)(t - t0), "decisions/s",
                 NULL, 0);
    sched_selector_free(hard);
    sched_selector_free(soft);
    workload_free(&w);
}

void bench_sched_pg_8_bundles_1k(bench_ctx *b)
{
    enum { BUNDLES = 8, GROUPS = 512 };
    workload w;
    workload_init(&w, 1000, 0, 79);
    sched_rng g;
    sched_rng_seed(&g, 80);
    /* Groups: 8 bundles of 1-4 CPUs, a quarter of them with a GPU; strategies PACK 40%,
     * SPREAD 30%, STRICT_PACK 15%, STRICT_SPREAD 15%. */
    sched_request *groups = rc_calloc((size_t)GROUPS * BUNDLES, sizeof(*groups));
    sched_pg_strategy strat[GROUPS];
    for (int k = 0; k < GROUPS; k++) {
        uint32_t s = sched_rng_below(&g, 100);
        strat[k] = s < 40   ? SCHED_PG_PACK
                   : s < 70 ? SCHED_PG_SPREAD
                   : s < 85 ? SCHED_PG_STRICT_PACK
                            : SCHED_PG_STRICT_SPREAD;
        int gpu = sched_rng_below(&g, 4) == 0;
        for (int j = 0; j < BUNDLES; j++) {
            sched_request *r = &groups[k * BUNDLES + j];
            sched_request_init(r);
            sched_request_set(w.v, r, "CPU", 1 + sched_rng_below(&g, 4), NULL);
            if (gpu)
                sched_request_set(w.v, r, "GPU", 1, NULL);
        }
    }
    /* Steady load: keep the last `live` placed groups allocated. */
    enum { LIVE = 64 };
    sched_alloc(*allocs)[BUNDLES] = rc_calloc(LIVE, sizeof(*allocs));
    sched_node *(*where)[BUNDLES] = rc_calloc(LIVE, sizeof(*where));
    int held[LIVE] = {0};
    uint64_t i = 0, done = 0;
    int64_t budget = bench_duration_ms(b) * 1000000LL, t0 = 0, t;
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1)
            t0 = rc_mono_ns();
        do {
            for (int k = 0; k < 64; k++, i++) {
                uint32_t pos = (uint32_t)(i % LIVE);
                if (held[pos]) {
                    sched_bundles_free(w.v, BUNDLES, where[pos], allocs[pos]);
                    held[pos] = 0;
                }
                int grp = (int)(i % GROUPS);
                sched_decision d;
                if (sched_place_bundles(w.v, &groups[grp * BUNDLES], BUNDLES, strat[grp], &w.rng,
                                        where[pos], &d) == SCHED_OK &&
                    !sched_bundles_allocate(w.v, &groups[grp * BUNDLES], BUNDLES, where[pos],
                                            allocs[pos])) {
                    held[pos] = 1;
                }
            }
            if (phase == 1)
                done += 64;
            t = rc_mono_ns();
        } while (phase == 1 ? t - t0 < budget : i < 4 * LIVE);
    }
    bench_report(b, "sched_pg_8_bundles_1k_nodes", (double)done * 1e9 / (double)(t - t0),
                 "decisions/s", NULL, 0);
    rc_free(allocs);
    rc_free(where);
    rc_free(groups);
    workload_free(&w);
}
