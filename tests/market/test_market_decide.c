/*
 * Unit tests of market_decide.c and market_score.c: the scenarios at the decision
 * level (cheapest packing, budget cap, failure memory, gangs all-or-nothing, capacity,
 * ordering, label selectors, effective cost, host limits, a verdict per offer).
 */
#include <math.h>
#include <string.h>

#include "market.h"
#include "rc_err.h"
#include "unit.h"

#define GIB 1073741824.0

static mk_offer *offers_of(const char *json, size_t *n)
{
    mk_offer *o = NULL;
    char err[256] = "";
    int rc = mk_offers_parse(json, strlen(json), "lab", &o, n, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "\n  offers: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return o;
}

static size_t offer_index(const mk_offer *o, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(o[i].id, id))
            return i;
    CU_FAIL("no such offer");
    return 0;
}

/* Hosts launched on offer id. */
static int launched(const mk_decision *d, const mk_offer *o, const char *id)
{
    int k = 0;
    for (size_t i = 0; i < d->n_launches; i++)
        k += !strcmp(o[d->launches[i].offer].id, id);
    return k;
}

static double launched_price(const mk_decision *d, const mk_offer *o)
{
    double p = 0;
    for (size_t i = 0; i < d->n_launches; i++)
        p += o[d->launches[i].offer].price_per_hour;
    return p;
}

static int starts_with(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix))) {
        fprintf(stderr, "\n  \"%s\" does not start with \"%s\"\n", s, prefix);
        return 0;
    }
    return 1;
}

static int contains(const char *s, const char *part)
{
    if (!strstr(s, part)) {
        fprintf(stderr, "\n  \"%s\" does not contain \"%s\"\n", s, part);
        return 0;
    }
    return 1;
}

static const char three_cpu_offers[] =
    "[{\"id\": \"c2\", \"num_cpus\": 2, \"price_per_hour\": 0.10, \"available\": 3},"
    " {\"id\": \"c4\", \"num_cpus\": 4, \"price_per_hour\": 0.15, \"available\": 3},"
    " {\"id\": \"c8\", \"num_cpus\": 8, \"price_per_hour\": 0.28, \"available\": 3}]";

static const mk_amount cpu4[] = {{"CPU", 4}};

static void test_cheapest_packing(void)
{
    size_t n;
    mk_offer *o = offers_of(three_cpu_offers, &n);
    mk_demand dem = {{cpu4, 1, NULL, 0}, 3};
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 2);
    CU_ASSERT_EQUAL(launched(&d, o, "c8"), 1);
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 1);
    CU_ASSERT_DOUBLE_EQUAL(launched_price(&d, o), 0.43, 1e-9);
    CU_ASSERT_EQUAL(d.n_infeasible, 0);
    int bundles = 0;
    for (size_t i = 0; i < d.n_launches; i++)
        bundles += d.launches[i].bundles;
    CU_ASSERT_EQUAL(bundles, 3);
    /* Every offer has its say. */
    size_t c2 = offer_index(o, n, "c2"), c4 = offer_index(o, n, "c4");
    CU_ASSERT(d.verdicts[c2].eligible);
    CU_ASSERT(contains(d.verdicts[c2].why, "fits no pending shape"));
    CU_ASSERT(contains(d.verdicts[c4].why, "chosen for 1 host"));
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static void test_budget_cap(void)
{
    size_t n;
    mk_offer *o = offers_of(three_cpu_offers, &n);
    mk_demand dem = {{cpu4, 1, NULL, 0}, 3};
    mk_ledger l;
    mk_ledger_init(&l, 0.30, 0);
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1, .ledger = &l};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 1);
    CU_ASSERT_EQUAL(launched(&d, o, "c8"), 1);
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT_EQUAL(d.infeasible[0].is_gang, 0);
    CU_ASSERT_EQUAL(d.infeasible[0].index, 0);
    CU_ASSERT_EQUAL(d.infeasible[0].count, 1);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "budget"));
    /* The caller's ledger is not touched. */
    CU_ASSERT_DOUBLE_EQUAL(l.reserved_per_hour, 0, 0);
    size_t c4 = offer_index(o, n, "c4");
    CU_ASSERT(contains(d.verdicts[c4].why, "over budget"));
    mk_decision_free(&d);

    /* With $0.20/h already committed, even the 8-CPU host is over: offers say so up front. */
    mk_ledger_init(&l, 0.30, 0);
    CU_ASSERT_EQUAL(mk_ledger_reserve(&l, 0.20, 3600, NULL, 0), 0);
    mk_ledger_commit(&l, 0.20);
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 0);
    size_t c8 = offer_index(o, n, "c8");
    CU_ASSERT_FALSE(d.verdicts[c8].eligible);
    CU_ASSERT(starts_with(d.verdicts[c8].why, "not eligible: over budget"));
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT_EQUAL(d.infeasible[0].count, 3);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "budget"));
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static void test_scores_decay(void)
{
    mk_scores s;
    mk_scores_init(&s, 600);
    mk_score_add(&s, "lab/A100x1/us", 1, 1000000);
    CU_ASSERT_DOUBLE_EQUAL(mk_score_get(&s, "lab/A100x1/us", 1000000), 1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mk_score_get(&s, "lab/A100x1/us", 1000000 + 600000), 0.5, 1e-12);
    mk_score_add(&s, "lab/A100x1/us", 2, 1000000 + 600000);
    CU_ASSERT_DOUBLE_EQUAL(mk_score_get(&s, "lab/A100x1/us", 1000000 + 600000), 2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mk_score_get(&s, "lab/other/us", 1000000), 0, 0);
    /* Keys stay sorted whatever the insertion order, so every one is found. */
    const char *keys[] = {"m", "a", "z", "c", "b", "y"};
    for (size_t i = 0; i < 6; i++)
        mk_score_set(&s, keys[i], (double)i + 1, 0);
    for (size_t i = 0; i < 6; i++)
        CU_ASSERT_DOUBLE_EQUAL(mk_score_get(&s, keys[i], 0), (double)i + 1, 0);
    for (size_t i = 1; i < s.n; i++)
        CU_ASSERT(strcmp(s.items[i - 1].key, s.items[i].key) < 0);
    mk_scores_free(&s);
}

static void test_failure_memory(void)
{
    size_t n;
    mk_offer *o = offers_of("[{\"id\": \"c4\", \"num_cpus\": 4, \"price_per_hour\": 0.15, \"region\": \"us\"},"
                            " {\"id\": \"c8\", \"num_cpus\": 8, \"price_per_hour\": 0.28, \"region\": \"us\"}]",
                            &n);
    size_t c4 = offer_index(o, n, "c4");
    mk_demand dem = {{cpu4, 1, NULL, 0}, 1};
    mk_config cfg;
    mk_config_defaults(&cfg); /* half-life 600 s, retry below 0.25, penalty 1 */
    mk_scores s;
    mk_scores_init(&s, cfg.failure_half_life_s);
    int64_t t0 = 1700000000000LL;
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1, .scores = &s,
                          .config = &cfg, .now_ms = t0};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 1);
    mk_decision_free(&d);

    /* The launch failed: c4's class is scored down and the next cheapest is used. */
    char key[256];
    mk_score_key(&o[c4], key, sizeof(key));
    CU_ASSERT_STRING_EQUAL(key, "lab/cpu4/us");
    mk_score_add(&s, key, 1, t0);
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(launched(&d, o, "c8"), 1);
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 0);
    CU_ASSERT_FALSE(d.verdicts[c4].eligible);
    CU_ASSERT(contains(d.verdicts[c4].why, "scored down"));
    CU_ASSERT_DOUBLE_EQUAL(d.verdicts[c4].score, 1, 1e-9);
    mk_decision_free(&d);

    /* Two half-lives later the score is exactly 0.25: not below retry_below yet. */
    in.now_ms = t0 + 1200 * 1000;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 0);
    mk_decision_free(&d);

    /* A second later it is below: eligible again, with the relaunch penalty in its cost. */
    in.now_ms = t0 + 1201 * 1000;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 1);
    CU_ASSERT(d.verdicts[c4].eligible);
    double score = mk_score_get(&s, key, in.now_ms);
    CU_ASSERT(score > 0.24 && score < 0.25);
    CU_ASSERT_DOUBLE_EQUAL(d.verdicts[c4].effective_cost, 0.15 + 0.15 * score, 1e-9);
    mk_decision_free(&d);

    /* When every class that fits is scored down, the demand says so. */
    mk_score_add(&s, "lab/cpu8/us", 2, t0);
    in.now_ms = t0;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 0);
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "failure memory"));
    mk_decision_free(&d);
    mk_scores_free(&s);
    mk_offers_free(o, n);
}

static const mk_amount gpu1[] = {{"GPU", 1}};

static void test_gang_strict_spread(void)
{
    size_t n;
    mk_offer *o = offers_of("[{\"id\": \"a100\", \"gpu_name\": \"A100\", \"num_gpus\": 2, \"num_cpus\": 8,"
                            "  \"price_per_hour\": 1.0, \"available\": 3}]",
                            &n);
    mk_bundle b[4] = {{gpu1, 1, NULL, 0}, {gpu1, 1, NULL, 0}, {gpu1, 1, NULL, 0}, {gpu1, 1, NULL, 0}};
    mk_gang g = {b, 4, 1, 0, "pg-1 STRICT_SPREAD"};
    /* Plain demand after the gang: a failed gang must give back what it took. */
    mk_demand dem = {{gpu1, 1, NULL, 0}, 1};
    mk_decide_input in = {.offers = o, .n_offers = n, .gangs = &g, .n_gangs = 1, .demands = &dem, .n_demands = 1};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 1); /* only for the plain demand */
    for (size_t i = 0; i < d.n_launches; i++)
        CU_ASSERT_EQUAL(d.launches[i].is_gang, 0);
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT_EQUAL(d.infeasible[0].is_gang, 1);
    CU_ASSERT_EQUAL(d.infeasible[0].index, 0);
    CU_ASSERT_EQUAL(d.infeasible[0].count, 4);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "no offer fits"));
    CU_ASSERT(contains(d.infeasible[0].reason, "pg-1"));
    mk_decision_free(&d);
    mk_offers_free(o, n);

    /* A fourth affordable host appears: all four in one decision, one bundle per host. */
    o = offers_of("[{\"id\": \"a100\", \"gpu_name\": \"A100\", \"num_gpus\": 2, \"num_cpus\": 8,"
                  "  \"price_per_hour\": 1.0, \"available\": 3},"
                  " {\"id\": \"a100-b\", \"gpu_name\": \"A100\", \"num_gpus\": 1, \"num_cpus\": 8,"
                  "  \"price_per_hour\": 1.2}]",
                  &n);
    in.offers = o;
    in.n_offers = n;
    in.n_demands = 0;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 4);
    CU_ASSERT_EQUAL(launched(&d, o, "a100"), 3);
    CU_ASSERT_EQUAL(launched(&d, o, "a100-b"), 1);
    for (size_t i = 0; i < d.n_launches; i++) {
        CU_ASSERT_EQUAL(d.launches[i].bundles, 1);
        CU_ASSERT_EQUAL(d.launches[i].is_gang, 1);
    }
    CU_ASSERT_EQUAL(d.n_infeasible, 0);
    mk_decision_free(&d);

    /* Four hosts available but only three affordable: nothing, reason budget. */
    mk_ledger l;
    mk_ledger_init(&l, 3.5, 0);
    in.ledger = &l;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 0);
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "budget"));
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static void test_gang_strict_pack(void)
{
    size_t n;
    mk_offer *o = offers_of("[{\"id\": \"x2\", \"gpu_name\": \"A100\", \"num_gpus\": 2, \"num_cpus\": 16,"
                            "  \"price_per_hour\": 2.0, \"available\": 5},"
                            " {\"id\": \"x4\", \"gpu_name\": \"A100\", \"num_gpus\": 4, \"num_cpus\": 32,"
                            "  \"price_per_hour\": 5.0}]",
                            &n);
    static const mk_amount gpu2[] = {{"GPU", 2}, {"CPU", 4}};
    mk_bundle b[2] = {{gpu2, 2, NULL, 0}, {gpu2, 2, NULL, 0}};
    mk_gang g = {b, 2, 0, 1, "pg-2 STRICT_PACK"};
    mk_decide_input in = {.offers = o, .n_offers = n, .gangs = &g, .n_gangs = 1};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 1);
    CU_ASSERT_EQUAL(launched(&d, o, "x4"), 1);
    CU_ASSERT_EQUAL(d.n_infeasible, 0);
    mk_decision_free(&d);
    /* Without a host that holds both bundles: nothing, though two x2 hosts would hold them. */
    in.n_offers = 1;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 0);
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "no offer fits"));
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static void test_capacity_and_order(void)
{
    size_t n;
    mk_offer *o = offers_of(three_cpu_offers, &n);
    static const mk_amount free8[] = {{"CPU", 8}, {"memory", 32 * GIB}};
    mk_capacity cap = {free8, 2, NULL, NULL, 0};
    /* Fits what is there: nothing launched. */
    mk_demand fits = {{cpu4, 1, NULL, 0}, 2};
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &fits, .n_demands = 1, .capacity = &cap,
                          .n_capacity = 1};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 0);
    CU_ASSERT_EQUAL(d.n_infeasible, 0);
    mk_decision_free(&d);
    /* Largest first: the 8-CPU task takes the free capacity, the small ones share one 4-CPU host. */
    static const mk_amount cpu1[] = {{"CPU", 1}};
    static const mk_amount cpu8[] = {{"CPU", 8}};
    mk_demand dem[2] = {{{cpu1, 1, NULL, 0}, 4}, {{cpu8, 1, NULL, 0}, 1}};
    in.demands = dem;
    in.n_demands = 2;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.n_launches, 1);
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 1);
    CU_ASSERT_EQUAL(d.launches[0].bundles, 4);
    CU_ASSERT_EQUAL(d.launches[0].index, 0);
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static const char gpu_offers[] =
    "[{\"id\": \"h100\", \"gpu_name\": \"H100\", \"num_gpus\": 1, \"gpu_memory\": 80, \"num_cpus\": 16,"
    "  \"memory\": 64, \"price_per_hour\": 0.90, \"region\": \"us\", \"labels\": {\"zone\": \"a\"}},"
    " {\"id\": \"a100-40\", \"gpu_name\": \"A100\", \"num_gpus\": 1, \"gpu_memory\": 40, \"num_cpus\": 16,"
    "  \"memory\": 16, \"price_per_hour\": 1.00, \"region\": \"us\", \"labels\": {\"zone\": \"b\"}},"
    " {\"id\": \"a100-80\", \"gpu_name\": \"A100\", \"num_gpus\": 1, \"gpu_memory\": 80, \"num_cpus\": 16,"
    "  \"memory\": 64, \"price_per_hour\": 1.60, \"region\": \"eu\", \"labels\": {\"zone\": \"a\"}},"
    " {\"id\": \"cpu64\", \"num_cpus\": 64, \"memory\": 256, \"price_per_hour\": 0.50, \"region\": \"us\"}]";

/* The one offer a single bundle of this shape is placed on; NULL when none. */
static const char *placed_on(const mk_offer *o, size_t n, const mk_amount *res, size_t n_res,
                             const mk_label_cond *conds, size_t n_conds)
{
    static char id[64];
    mk_demand dem = {{res, n_res, conds, n_conds}, 1};
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    const char *r = NULL;
    if (d.n_launches == 1) {
        snprintf(id, sizeof(id), "%s", o[d.launches[0].offer].id);
        r = id;
    }
    CU_ASSERT_EQUAL(d.n_launches + d.n_infeasible, 1);
    mk_decision_free(&d);
    return r;
}

static void test_shapes_and_labels(void)
{
    size_t n;
    mk_offer *o = offers_of(gpu_offers, &n);
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, gpu1, 1, NULL, 0), "h100");
    /* A CPU host with many CPUs takes no GPU work. */
    static const mk_amount cpu32[] = {{"CPU", 32}};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, cpu32, 1, NULL, 0), "cpu64");
    static const mk_amount a100[] = {{"GPU", 1}, {"accelerator_type:A100", 0.001}};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, a100, 2, NULL, 0), "a100-40");
    /* memory is in bytes: 32 GiB rules out the 16 GiB host. */
    static const mk_amount a100_mem[] = {{"GPU", 1}, {"accelerator_type:A100", 0.001}, {"memory", 32 * GIB}};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, a100_mem, 3, NULL, 0), "a100-80");
    static const mk_amount a100_gmem[] = {{"GPU", 1}, {"accelerator_type:A100", 0.001}, {"gpu_memory", 80}};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, a100_gmem, 3, NULL, 0), "a100-80");
    static const char *gib80[] = {"80"}, *bytes80[] = {"85899345920"};
    mk_label_cond gm = {"rayc.io/gpu-memory", gib80, 1, 0};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, a100, 2, &gm, 1), "a100-80");
    gm.values = bytes80;
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, a100, 2, &gm, 1), "a100-80");
    static const char *zone_b[] = {"b"}, *us[] = {"us"}, *a100_name[] = {"A100"};
    mk_label_cond zb = {"zone", zone_b, 1, 0};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, gpu1, 1, &zb, 1), "a100-40");
    mk_label_cond not_us = {"ray.io/market-region", us, 1, 1};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, gpu1, 1, &not_us, 1), "a100-80");
    mk_label_cond accel = {"ray.io/accelerator-type", a100_name, 1, 0};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, gpu1, 1, &accel, 1), "a100-40");
    /* Nothing fits: the reason says so. */
    static const mk_amount huge[] = {{"GPU", 8}};
    mk_demand dem = {{huge, 1, NULL, 0}, 2};
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT_EQUAL(d.infeasible[0].count, 2);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "no offer fits"));
    CU_ASSERT(contains(d.infeasible[0].reason, "GPU: 8"));
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static double perf_h100_fast(const char *cls, void *arg)
{
    (void)arg;
    return !strcmp(cls, "H100x1") ? 2.0 : 1.0;
}

static void test_effective_cost_and_ties(void)
{
    size_t n;
    /* $1.00 at reliability 0.5 costs 2.0 effective; $1.50 at 1.0 costs 1.5. */
    mk_offer *o = offers_of("[{\"id\": \"flaky\", \"num_cpus\": 8, \"price_per_hour\": 1.0, \"reliability\": 0.5},"
                            " {\"id\": \"solid\", \"num_cpus\": 8, \"price_per_hour\": 1.5}]",
                            &n);
    static const mk_amount cpu8[] = {{"CPU", 8}};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, cpu8, 1, NULL, 0), "solid");
    mk_offers_free(o, n);
    /* Equal cost: lower id wins, whatever the input order. */
    o = offers_of("[{\"id\": \"b\", \"num_cpus\": 8, \"price_per_hour\": 1.0},"
                  " {\"id\": \"a\", \"num_cpus\": 8, \"price_per_hour\": 1.0}]",
                  &n);
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, cpu8, 1, NULL, 0), "a");
    mk_offers_free(o, n);
    /* Verified performance divides the price. */
    o = offers_of(gpu_offers, &n);
    static const mk_amount gpu_big_mem[] = {{"GPU", 1}, {"gpu_memory", 80}};
    CU_ASSERT_STRING_EQUAL(placed_on(o, n, gpu_big_mem, 2, NULL, 0), "h100");
    mk_demand dem = {{gpu1, 1, NULL, 0}, 1};
    size_t h100 = offer_index(o, n, "h100");
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1,
                          .performance = perf_h100_fast};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_DOUBLE_EQUAL(d.verdicts[h100].effective_cost, 0.45, 1e-9);
    CU_ASSERT_EQUAL(launched(&d, o, "h100"), 1);
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static int cpu8_has_one(const char *cls, void *arg)
{
    (void)arg;
    return !strcmp(cls, "cpu8");
}

static void test_host_limits(void)
{
    size_t n;
    mk_offer *o = offers_of(three_cpu_offers, &n);
    mk_config cfg;
    mk_config_defaults(&cfg);
    cfg.max_hosts = 1;
    mk_demand dem = {{cpu4, 1, NULL, 0}, 4};
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1, .config = &cfg};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(d.n_launches, 1);
    CU_ASSERT_EQUAL_FATAL(d.n_infeasible, 1);
    CU_ASSERT_EQUAL(d.infeasible[0].count, 2);
    CU_ASSERT(starts_with(d.infeasible[0].reason, "max hosts"));
    mk_decision_free(&d);

    /* A class limit: one 8-CPU host at most, the rest on 4-CPU hosts. */
    mk_class_limit lim = {"cpu8", 0, 1};
    cfg.max_hosts = -1;
    cfg.limits = &lim;
    cfg.n_limits = 1;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(launched(&d, o, "c8"), 1);
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 2);
    CU_ASSERT_EQUAL(d.n_infeasible, 0);
    mk_decision_free(&d);

    /* The class already has its host: the offer says why it is out. */
    in.class_hosts = cpu8_has_one;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    size_t c8 = offer_index(o, n, "c8");
    CU_ASSERT_EQUAL(launched(&d, o, "c8"), 0);
    CU_ASSERT_FALSE(d.verdicts[c8].eligible);
    CU_ASSERT(contains(d.verdicts[c8].why, "class at max hosts"));
    CU_ASSERT_EQUAL(launched(&d, o, "c4"), 3);
    mk_decision_free(&d);

    /* min_hosts: a class under its minimum gets a host with no demand at all. */
    mk_class_limit keep = {"cpu2", 1, -1};
    cfg.limits = &keep;
    in.class_hosts = NULL;
    in.n_demands = 0;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.n_launches, 1);
    CU_ASSERT_EQUAL(launched(&d, o, "c2"), 1);
    CU_ASSERT_EQUAL(d.launches[0].bundles, 0);
    mk_decision_free(&d);
    mk_offers_free(o, n);
}

static void test_every_offer_has_a_verdict(void)
{
    size_t n;
    mk_offer *o = offers_of("[{\"id\": \"scored\", \"num_cpus\": 4, \"price_per_hour\": 0.10, \"region\": \"eu\"},"
                            " {\"id\": \"taken\", \"num_cpus\": 4, \"price_per_hour\": 0.11, \"available\": 2},"
                            " {\"id\": \"dear\", \"num_cpus\": 4, \"price_per_hour\": 9.00},"
                            " {\"id\": \"chosen\", \"num_cpus\": 4, \"price_per_hour\": 0.20},"
                            " {\"id\": \"spare\", \"num_cpus\": 4, \"price_per_hour\": 0.30},"
                            " {\"id\": \"gpu\", \"gpu_name\": \"L4\", \"num_gpus\": 1, \"num_cpus\": 4,"
                            "  \"price_per_hour\": 0.40},"
                            " {\"id\": \"limited\", \"num_cpus\": 2, \"price_per_hour\": 0.05, \"available\": 2}]",
                            &n);
    int leased[7] = {0, 2, 0, 0, 0, 0, 1};
    mk_scores s;
    mk_scores_init(&s, 600);
    char key[256];
    mk_score_key(&o[0], key, sizeof(key));
    mk_score_add(&s, key, 1, 0);
    mk_ledger l;
    mk_ledger_init(&l, 5.0, 0);
    mk_config cfg;
    mk_config_defaults(&cfg);
    mk_class_limit lim = {"cpu2", 0, 1};
    cfg.limits = &lim;
    cfg.n_limits = 1;
    mk_demand dem = {{cpu4, 1, NULL, 0}, 1};
    mk_decide_input in = {.offers = o, .n_offers = n, .leased = leased, .demands = &dem, .n_demands = 1,
                          .ledger = &l, .scores = &s, .config = &cfg};
    mk_decision d;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &d), 0);
    CU_ASSERT_EQUAL(launched(&d, o, "chosen"), 1);
    CU_ASSERT(contains(d.verdicts[0].why, "scored down"));
    CU_ASSERT(contains(d.verdicts[1].why, "none available (2 of 2 leased)"));
    CU_ASSERT(contains(d.verdicts[2].why, "over budget"));
    CU_ASSERT(contains(d.verdicts[3].why, "eligible; chosen"));
    CU_ASSERT(contains(d.verdicts[4].why, "eligible; not chosen: cheaper offers"));
    CU_ASSERT(contains(d.verdicts[5].why, "eligible; not chosen: cheaper offers"));
    CU_ASSERT(contains(d.verdicts[6].why, "class at max hosts"));
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(d.verdicts[i].why[0] != '\0');
        CU_ASSERT_EQUAL(d.verdicts[i].eligible, !strncmp(d.verdicts[i].why, "eligible", 8));
    }
    mk_decision_free(&d);
    mk_scores_free(&s);
    mk_offers_free(o, n);
}

/* The same input gives the same decision, and bad pointers are refused. */
static void test_deterministic_and_guarded(void)
{
    size_t n;
    mk_offer *o = offers_of(gpu_offers, &n);
    mk_demand dem[2] = {{{gpu1, 1, NULL, 0}, 3}, {{cpu4, 1, NULL, 0}, 9}};
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = dem, .n_demands = 2};
    mk_decision a, b;
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &a), 0);
    CU_ASSERT_EQUAL_FATAL(mk_decide(&in, &b), 0);
    CU_ASSERT_EQUAL_FATAL(a.n_launches, b.n_launches);
    for (size_t i = 0; i < a.n_launches; i++)
        CU_ASSERT_EQUAL(a.launches[i].offer, b.launches[i].offer);
    mk_decision_free(&a);
    mk_decision_free(&b);
    in.demands = NULL;
    CU_ASSERT_EQUAL(mk_decide(&in, &a), RC_EINVAL);
    CU_ASSERT_EQUAL(mk_decide(NULL, &a), RC_EINVAL);
    mk_offers_free(o, n);
}

static const unit_case cases[] = {
    UNIT_CASE(test_cheapest_packing),  UNIT_CASE(test_budget_cap),          UNIT_CASE(test_scores_decay),
    UNIT_CASE(test_failure_memory),    UNIT_CASE(test_gang_strict_spread),  UNIT_CASE(test_gang_strict_pack),
    UNIT_CASE(test_capacity_and_order), UNIT_CASE(test_shapes_and_labels), UNIT_CASE(test_effective_cost_and_ties),
    UNIT_CASE(test_host_limits),       UNIT_CASE(test_every_offer_has_a_verdict),
    UNIT_CASE(test_deterministic_and_guarded),
};

int main(void)
{
    return unit_run("market_decide", cases, UNIT_N(cases));
}
