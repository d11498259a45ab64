/* sched_policy.c: the policy table, the generator, and property tests over every policy:
 * random heterogeneous clusters and random request/free streams where
 *   - allocations never exceed totals and freeing restores exact amounts,
 *   - an OK node really has the request free and satisfies every constraint,
 *   - a request some node could hold is never reported NEVER (checked by brute force,
 *     which also checks the index never hides a node),
 *   - NOT_NOW is only said when no eligible node has the request free,
 *   - the same inputs and seed give the same decisions,
 * and the same for placement groups. */
#include <stdlib.h>
#include <string.h>

#include "rc_err.h"
#include "sched_test.h"

static void test_rng(void)
{
    sched_rng a, b;
    sched_rng_seed(&a, 42);
    sched_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(sched_rng_next(&a), sched_rng_next(&b));
    sched_rng_seed(&b, 43);
    CU_ASSERT_NOT_EQUAL(sched_rng_next(&a), sched_rng_next(&b));
    int hist[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint32_t x = sched_rng_below(&a, 10);
        CU_ASSERT_FATAL(x < 10);
        hist[x]++;
    }
    for (int i = 0; i < 10; i++)
        CU_ASSERT(hist[i] > 9500 && hist[i] < 10500);
    CU_ASSERT_EQUAL(sched_rng_below(&a, 1), 0);
}

static void test_policy_table(void)
{
    static const char *names[] = {"DEFAULT", "SPREAD", "NODE_AFFINITY", "NODE_LABEL", "COST"};
    for (int s = 0; s < SCHED_STRATEGY_COUNT; s++) {
        const sched_policy *p = sched_policy_get((sched_strategy)s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_STRING_EQUAL(p->name, names[s]);
        CU_ASSERT_PTR_NOT_NULL(p->schedule);
    }
    CU_ASSERT_PTR_NULL(sched_policy_get(SCHED_STRATEGY_COUNT));
    CU_ASSERT_PTR_NULL(sched_policy_get((sched_strategy)-1));
    CU_ASSERT_STRING_EQUAL(sched_status_name(SCHED_NOT_NOW), "NOT_NOW");
    CU_ASSERT_STRING_EQUAL(sched_status_name(SCHED_UNAVAILABLE), "UNAVAILABLE");
    sched_view *v = sched_view_new(NULL);
    tadd(v, 1, TNODE(.cpus = 2));
    sched_request r = treq(v, 1, 0);
    sched_options o;
    sched_options_init(&o);
    o.strategy = (sched_strategy)17;
    sched_rng rng;
    sched_rng_seed(&rng, 1);
    sched_decision d;
    CU_ASSERT_EQUAL(sched_schedule(v, &r, &o, &rng, &d), SCHED_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.why, "unknown strategy 17"));
    /* Calling a policy directly through the table works like sched_schedule. */
    sched_options_init(&o);
    CU_ASSERT_EQUAL(sched_policy_get(SCHED_STRATEGY_DEFAULT)->schedule(v, &r, &o, &rng, &d),
                    SCHED_OK);
    CU_ASSERT_EQUAL(tnum(d.node), 1);
    sched_view_free(v);
}

/* ---- random worlds ---- */

static const char *const selectors[] = {
    "region: us", "region: !us",    "region: in(us,eu)", "region: !in(eu,ap)",
    "zone: z1",   "tier: exists()", "tier: !exists()",   "region: eu, zone: !z2",
};
enum { N_SEL = sizeof(selectors) / sizeof(selectors[0]) };

typedef struct world {
    sched_view *v;
    sched_selector *sel[N_SEL];
    uint32_t n_ids; /* node numbers 0..n_ids-1 were used (some removed or dead) */
} world;

static void world_build(world *w, uint64_t seed, uint32_t nodes)
{
    sched_rng g;
    sched_rng_seed(&g, seed);
    w->v = sched_view_new(NULL);
    for (int i = 0; i < N_SEL; i++)
        CU_ASSERT_EQUAL_FATAL(sched_selector_parse(selectors[i], &w->sel[i], NULL), 0);
    static const char *regions[] = {"us", "eu", "ap"}, *zones[] = {"z1", "z2"};
    static const char *accels[] = {"A100", "H100", "L4"};
    static const double gpu_counts[] = {0, 0, 0, 1, 2, 4, 8};
    static const double gib[] = {24, 40, 80};
    for (uint32_t i = 0; i < nodes; i++) {
        sched_label labels[3] = {{"region", regions[sched_rng_below(&g, 3)]},
                                 {"zone", zones[sched_rng_below(&g, 2)]},
                                 {"tier", "gold"}};
        double gpus = gpu_counts[sched_rng_below(&g, 7)];
        tnode_opts o = TNODE(.cpus = 1 + sched_rng_below(&g, 32), .gpus = gpus,
                             .mem_gib = 4 + sched_rng_below(&g, 252), .labels = labels,
                             .n_labels = 2 + sched_rng_below(&g, 2),
                             .price = sched_rng_below(&g, 400) / 100.0);
        if (gpus) {
            o.accel = accels[sched_rng_below(&g, 3)];
            o.gpu_mem = (uint64_t)(gib[sched_rng_below(&g, 3)] * GIB);
        }
        if (sched_rng_below(&g, 5) == 0) {
            o.custom = "TPU";
            o.custom_amount = 1 + sched_rng_below(&g, 4);
        }
        sched_node *n = tadd(w->v, i, o);
        if (sched_rng_below(&g, 12) == 0)
            sched_node_set_alive(w->v, n, 0);
        else if (sched_rng_below(&g, 12) == 0)
            sched_node_set_draining(w->v, n, 1);
    }
    w->n_ids = nodes;
}

static void world_free(world *w)
{
    for (int i = 0; i < N_SEL; i++)
        sched_selector_free(w->sel[i]);
    sched_view_free(w->v);
}

static sched_request random_request(world *w, sched_rng *g)
{
    static const double cpus[] = {0, 0.5, 1, 1, 2, 4, 8, 16, 64};
    static const double gpus[] = {0, 0, 0, 0, 0.25, 0.5, 1, 2, 4, 16};
    static const char *accels[] = {"A100", "H100", "L4", "B200"};
    sched_request r = treq(w->v, cpus[sched_rng_below(g, 9)], gpus[sched_rng_below(g, 10)]);
    if (sched_rng_below(g, 4) == 0)
        sched_request_set(w->v, &r, "memory", (1 + sched_rng_below(g, 128)) * GIB, NULL);
    if (sched_rng_below(g, 8) == 0)
        sched_request_set_custom(w->v, &r, "TPU", 1 + sched_rng_below(g, 3), NULL);
    if (sched_request_get(&r, SCHED_GPU)) {
        if (sched_rng_below(g, 3) == 0)
            sched_request_set_accelerator_type(w->v, &r, accels[sched_rng_below(g, 4)], NULL);
        if (sched_rng_below(g, 4) == 0)
            r.gpu_memory = (uint64_t)((32 + sched_rng_below(g, 64)) * GIB);
    }
    if (sched_rng_below(g, 4) == 0)
        r.selector = w->sel[sched_rng_below(g, N_SEL)];
    return r;
}

static sched_options random_options(world *w, sched_rng *g)
{
    sched_options o;
    sched_options_init(&o);
    o.strategy = (sched_strategy)sched_rng_below(g, SCHED_STRATEGY_COUNT);
    if (sched_rng_below(g, 2))
        o.preferred_node = tnode(w->v, sched_rng_below(g, w->n_ids));
    o.avoid_local_node = sched_rng_below(g, 6) == 0;
    o.require_available = sched_rng_below(g, 6) == 0;
    if (sched_rng_below(g, 6) == 0)
        o.cost_weight = sched_rng_below(g, 3);
    tid(o.affinity_node, sched_rng_below(g, w->n_ids + 2)); /* sometimes unknown */
    o.affinity_soft = (int)sched_rng_below(g, 2);
    if (o.affinity_soft)
        o.spill_on_unavailable = (int)sched_rng_below(g, 2);
    else
        o.fail_on_unavailable = (int)sched_rng_below(g, 2);
    o.label_hard = w->sel[sched_rng_below(g, N_SEL)];
    if (sched_rng_below(g, 2))
        o.label_soft = w->sel[sched_rng_below(g, N_SEL)];
    return o;
}

/* Could node ever run r under o (ignoring current load)? */
static int eligible(const sched_node *n, const sched_request *r, const sched_options *o)
{
    if (!sched_node_is_alive(n) || sched_node_is_draining(n))
        return 0;
    if (r->selector && !sched_selector_matches(r->selector, n))
        return 0;
    if (o->strategy == SCHED_STRATEGY_NODE_LABEL && !sched_selector_matches(o->label_hard, n))
        return 0;
    return 1;
}

static int brute_feasible(world *w, const sched_request *r, const sched_options *o, int avail,
                          int skip_local)
{
    for (size_t i = 0; i < sched_view_node_count(w->v); i++) {
        const sched_node *n = sched_view_node_at(w->v, i);
        if (skip_local && n == o->preferred_node)
            continue;
        if (eligible(n, r, o) && sched__node_fits(n, r, avail))
            return 1;
    }
    return 0;
}

static void check_decision(world *w, const sched_request *r, const sched_options *o,
                           const sched_decision *d)
{
    int affinity = o->strategy == SCHED_STRATEGY_NODE_AFFINITY;
    sched_node *target = affinity ? sched_view_find(w->v, o->affinity_node) : NULL;
    int skip_local = o->avoid_local_node;
    CU_ASSERT(d->status != SCHED_INVALID);
    switch (d->status) {
    case SCHED_OK:
        CU_ASSERT_PTR_NOT_NULL_FATAL(d->node);
        CU_ASSERT_TRUE(eligible(d->node, r, o));
        CU_ASSERT_TRUE(sched__node_fits(d->node, r, 1));
        CU_ASSERT_STRING_EQUAL(d->why, "");
        if (skip_local && !(affinity && d->node == target))
            CU_ASSERT_PTR_NOT_EQUAL(d->node, o->preferred_node);
        if (affinity && !o->affinity_soft)
            CU_ASSERT_PTR_EQUAL(d->node, target);
        break;
    case SCHED_NEVER:
        CU_ASSERT_PTR_NULL(d->node);
        CU_ASSERT(strlen(d->why) > 10);
        if (affinity && !o->affinity_soft) {
            CU_ASSERT_FALSE(target && eligible(target, r, o) && sched__node_fits(target, r, 0));
        } else {
            /* The key property: nothing could ever hold it. */
            if (brute_feasible(w, r, o, 0, 0))
                fprintf(stderr, "feasible request reported NEVER: %s\n", d->why);
            CU_ASSERT_FALSE(brute_feasible(w, r, o, 0, 0));
        }
        break;
    case SCHED_NOT_NOW:
        CU_ASSERT(strlen(d->why) > 10);
        if (d->node) {
            CU_ASSERT_TRUE(eligible(d->node, r, o));
            CU_ASSERT_TRUE(sched__node_fits(d->node, r, 0));
        }
        if (affinity && d->node == target && target) {
            CU_ASSERT_FALSE(sched__node_fits(target, r, 1));
        } else {
            CU_ASSERT_FALSE(brute_feasible(w, r, o, 1, skip_local));
            CU_ASSERT_TRUE(brute_feasible(w, r, o, 0, 0));
        }
        break;
    case SCHED_UNAVAILABLE:
        CU_ASSERT_TRUE(affinity && !o->affinity_soft && o->fail_on_unavailable);
        CU_ASSERT_FALSE(sched__node_fits(target, r, 1));
        break;
    default:
        CU_FAIL("unexpected status");
    }
}

enum { LIVE = 256 };

typedef struct stream_log {
    sched_status status[4000];
    uint32_t node[4000];
    uint64_t why_hash[4000];
} stream_log;

/* Runs a stream of random decisions with allocation and random frees on world w. */
static void run_stream(world *w, uint64_t seed, int ops, stream_log *log)
{
    sched_rng g, rng;
    sched_rng_seed(&g, seed);
    sched_rng_seed(&rng, seed ^ 0x5eed);
    static sched_alloc allocs[LIVE];
    static sched_node *where[LIVE];
    static int live[LIVE];
    memset(live, 0, sizeof(live));
    for (int op = 0; op < ops; op++) {
        uint32_t slot = sched_rng_below(&g, LIVE);
        if (live[slot] && sched_rng_below(&g, 3) == 0) {
            CU_ASSERT_EQUAL_FATAL(sched_node_free(w->v, where[slot], &allocs[slot]), 0);
            live[slot] = 0;
        }
        sched_request r = random_request(w, &g);
        sched_options o = random_options(w, &g);
        sched_decision d;
        sched_status st = sched_schedule(w->v, &r, &o, &rng, &d);
        CU_ASSERT_EQUAL(st, d.status);
        check_decision(w, &r, &o, &d);
        if (log) {
            log->status[op] = st;
            log->node[op] = d.node ? tnum(d.node) : UINT32_MAX;
            log->why_hash[op] = rc_hash_bytes(d.why, st == SCHED_OK ? 0 : strlen(d.why));
        }
        if (st == SCHED_OK && !live[slot]) {
            CU_ASSERT_EQUAL_FATAL(sched_node_allocate(w->v, d.node, &r, &allocs[slot]), 0);
            where[slot] = d.node;
            live[slot] = 1;
        }
        if (op % 250 == 0)
            CU_ASSERT_EQUAL_FATAL(tcheck_index(w->v), 0);
    }
    for (int s = 0; s < LIVE; s++)
        if (live[s])
            CU_ASSERT_EQUAL(sched_node_free(w->v, where[s], &allocs[s]), 0);
}

static void check_all_free(world *w)
{
    for (size_t i = 0; i < sched_view_node_count(w->v); i++) {
        sched_node *n = sched_view_node_at(w->v, i);
        for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++)
            CU_ASSERT_EQUAL(sched_node_available(n, r), sched_node_total(n, r));
        for (uint32_t g = 0; g < sched_node_gpu_count(n); g++)
            CU_ASSERT_EQUAL(sched_node_gpu_available(n, g), SCHED_UNIT);
    }
    CU_ASSERT_EQUAL(tcheck_index(w->v), 0);
}

static void test_property_random_streams(void)
{
    for (uint64_t seed = 1; seed <= 30; seed++) {
        world w;
        world_build(&w, seed, 5 + (uint32_t)(seed * 7 % 60));
        run_stream(&w, seed * 1000, 3000, NULL);
        check_all_free(&w);
        world_free(&w);
    }
}

static void test_property_same_seed_same_decisions(void)
{
    static stream_log a, b;
    world w1, w2;
    world_build(&w1, 99, 40);
    world_build(&w2, 99, 40);
    run_stream(&w1, 4242, 4000, &a);
    run_stream(&w2, 4242, 4000, &b);
    CU_ASSERT_EQUAL(memcmp(a.status, b.status, sizeof(a.status)), 0);
    CU_ASSERT_EQUAL(memcmp(a.node, b.node, sizeof(a.node)), 0);
    CU_ASSERT_EQUAL(memcmp(a.why_hash, b.why_hash, sizeof(a.why_hash)), 0);
    /* And the stream is not trivial: it exercised every outcome but INVALID. */
    int seen[5] = {0};
    for (int i = 0; i < 4000; i++)
        seen[a.status[i]]++;
    CU_ASSERT(seen[SCHED_OK] > 100);
    CU_ASSERT(seen[SCHED_NOT_NOW] > 10);
    CU_ASSERT(seen[SCHED_NEVER] > 10);
    CU_ASSERT(seen[SCHED_UNAVAILABLE] > 0);
    CU_ASSERT_EQUAL(seen[SCHED_INVALID], 0);
    world_free(&w1);
    world_free(&w2);
}

/* ---- placement groups ---- */

static int all_on_one_now(world *w, const sched_request *b, size_t n)
{
    sched_node *nodes[8];
    sched_alloc allocs[8];
    for (size_t i = 0; i < sched_view_node_count(w->v); i++) {
        sched_node *node = sched_view_node_at(w->v, i);
        if (!sched_node_is_alive(node) || sched_node_is_draining(node))
            continue;
        int ok = 1;
        for (size_t k = 0; k < n; k++) {
            nodes[k] = node;
            ok &= !b[k].selector || sched_selector_matches(b[k].selector, node);
        }
        if (ok && !sched_bundles_allocate(w->v, b, n, nodes, allocs)) {
            sched_bundles_free(w->v, n, nodes, allocs);
            return 1;
        }
    }
    return 0;
}

static void test_property_placement_groups(void)
{
    for (uint64_t seed = 1; seed <= 16; seed++) {
        world w;
        world_build(&w, seed + 500, 8 + (uint32_t)(seed * 5));
        sched_rng g, rng;
        sched_rng_seed(&g, seed);
        sched_rng_seed(&rng, seed + 1);
        enum { HELD = 16 };
        sched_alloc held[HELD][8];
        sched_node *held_nodes[HELD][8];
        sched_request held_b[HELD][8];
        size_t held_n[HELD] = {0};
        for (int op = 0; op < 800; op++) {
            size_t n = 1 + sched_rng_below(&g, 6);
            sched_request b[8];
            for (size_t k = 0; k < n; k++) {
                b[k] = random_request(&w, &g);
                if (!b[k].n)
                    sched_request_set(w.v, &b[k], "CPU", 1, NULL);
            }
            sched_pg_strategy s = (sched_pg_strategy)sched_rng_below(&g, 4);
            int one_node_possible = s == SCHED_PG_PACK ? all_on_one_now(&w, b, n) : 0;
            sched_node *out[8];
            sched_decision d;
            sched_status st = sched_place_bundles(w.v, b, n, s, &rng, out, &d);
            CU_ASSERT(st == SCHED_OK || st == SCHED_NOT_NOW || st == SCHED_NEVER);
            if (st == SCHED_OK) {
                for (size_t k = 0; k < n; k++) {
                    CU_ASSERT_TRUE(sched_node_is_alive(out[k]) && !sched_node_is_draining(out[k]));
                    CU_ASSERT_TRUE(!b[k].selector || sched_selector_matches(b[k].selector, out[k]));
                    for (size_t j = 0; j < k; j++) {
                        if (s == SCHED_PG_STRICT_PACK)
                            CU_ASSERT_PTR_EQUAL(out[j], out[k]);
                        if (s == SCHED_PG_STRICT_SPREAD)
                            CU_ASSERT_PTR_NOT_EQUAL(out[j], out[k]);
                    }
                    if (one_node_possible)
                        CU_ASSERT_PTR_EQUAL(out[k], out[0]);
                }
                /* The placement is consistent with availability, bundles sharing a node
                 * included: allocating it all succeeds. Keep some groups as load. */
                int h = (int)sched_rng_below(&g, HELD);
                if (held_n[h])
                    sched_bundles_free(w.v, held_n[h], held_nodes[h], held[h]);
                held_n[h] = 0;
                CU_ASSERT_EQUAL_FATAL(sched_bundles_allocate(w.v, b, n, out, held[h]), 0);
                memcpy(held_nodes[h], out, n * sizeof(out[0]));
                memcpy(held_b[h], b, n * sizeof(b[0]));
                held_n[h] = n;
            } else if (st == SCHED_NEVER) {
                int some_bundle_infeasible = 0;
                sched_options o;
                sched_options_init(&o);
                for (size_t k = 0; k < n; k++)
                    some_bundle_infeasible |= !brute_feasible(&w, &b[k], &o, 0, 0);
                CU_ASSERT_TRUE(some_bundle_infeasible || s == SCHED_PG_STRICT_PACK);
            }
            CU_ASSERT(st == SCHED_OK || strlen(d.why) > 10);
            if (op % 50 == 0)
                CU_ASSERT_EQUAL_FATAL(tcheck_index(w.v), 0);
        }
        for (int h = 0; h < HELD; h++)
            if (held_n[h])
                sched_bundles_free(w.v, held_n[h], held_nodes[h], held[h]);
        check_all_free(&w);
        world_free(&w);
    }
}

static const unit_case cases[] = {
    UNIT_CASE(test_rng),
    UNIT_CASE(test_policy_table),
    UNIT_CASE(test_property_random_streams),
    UNIT_CASE(test_property_same_seed_same_decisions),
    UNIT_CASE(test_property_placement_groups),
};

int main(void)
{
    return unit_run("sched_policy", cases, UNIT_N(cases));
}
