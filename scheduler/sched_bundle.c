/*
 * sched_bundle.c: placement-group bundle placement, Ray's BundleSchedulingPolicy family.
 *
 * Bundles are placed in Ray's priority order (GPU first, then custom resources, object
 * store memory, memory, CPU; larger first; ties by bundle index) so the scarce ones get
 * first pick. A node is scored with Ray's LeastResourceScorer: the sum over requested
 * resources of (available - requested) / available, higher is better (the roomiest node).
 * Each bundle is allocated on its node as it is placed (sched_node_allocate, so GPU
 * instances and gpu_memory count exactly) and later bundles see what earlier ones took;
 * before returning, every trial allocation is given back in reverse order, success or
 * not, so the view is unchanged and nothing partial is ever left behind.
 *
 *   PACK          all bundles on one node if some node can take them all now; otherwise
 *                 Ray's greedy: place the next bundle on the best node, then put every
 *                 remaining bundle that still fits on that same node, and repeat with a
 *                 new node.
 *   SPREAD        each bundle on the best node not yet used by the group; if none is free,
 *                 the best node already used (best effort).
 *   STRICT_PACK   all bundles on one node (each bundle's selector must match it), or fail.
 *   STRICT_SPREAD each bundle on a distinct node, or fail.
 *
 * Candidates for a bundle come from the view's index. Ray scores every node for every
 * bundle; we score at most cfg.bundle_sample nodes that can take the bundle now, visited
 * from a random start (as Kubernetes' percentageOfNodesToScore does), which keeps 8-bundle
 * groups on 1k nodes at tens of thousands of decisions a second. A node that can take the
 * bundle is always found if one exists: sampling limits the scoring, not the search.
 *
 * Refusals (slow path only): NEVER when some bundle fits no usable node's totals (or, for
 * STRICT_PACK, no node could hold the whole group even when idle); otherwise NOT_NOW. That
 * includes STRICT_SPREAD with more bundles than nodes able to hold them: Ray keeps such a
 * group pending until nodes join, and another node of an existing type would do.
 *
 * Single-threaded like the view; uses the view's bundle scratch arrays and node marks.
 */
#include <stdio.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "sched_int.h"

const char *sched_pg_strategy_name(sched_pg_strategy s)
{
    switch (s) {
    case SCHED_PG_PACK:
        return "PACK";
    case SCHED_PG_SPREAD:
        return "SPREAD";
    case SCHED_PG_STRICT_PACK:
        return "STRICT_PACK";
    case SCHED_PG_STRICT_SPREAD:
        return "STRICT_SPREAD";
    }
    return "?";
}

/* One placement attempt's state. */
typedef struct place_ctx {
    sched_view *v;
    const sched_request *bundles;
    size_t n;
    sched_rng *rng;
    uint32_t *order; /* bundle indices, priority order */
    uint32_t *stack; /* bundle indices in the order they were taken */
    uint32_t n_placed;
    uint32_t gen; /* node->mark == gen: used by this group */
} place_ctx;

/* ---- ordering ---- */

/* < 0 if bundle a goes before b in Ray's priority order. */
static int bundle_cmp(const sched_request *a, const sched_request *b)
{
    sched_amount ga = sched_request_get(a, SCHED_GPU), gb = sched_request_get(b, SCHED_GPU);
    if (ga != gb)
        return ga > gb ? -1 : 1;
    /* Custom resources in ascending id order; the one needing more goes first. */
    uint32_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        uint32_t ia = i < a->n ? a->id[i] : UINT32_MAX, ib = j < b->n ? b->id[j] : UINT32_MAX;
        if (ia < SCHED_N_PREDEFINED) {
            i++;
            continue;
        }
        if (ib < SCHED_N_PREDEFINED) {
            j++;
            continue;
        }
        uint32_t id = ia < ib ? ia : ib;
        sched_amount va = ia == id ? a->amount[i] : 0, vb = ib == id ? b->amount[j] : 0;
        if (va != vb)
            return va > vb ? -1 : 1;
        if (ia == id)
            i++;
        if (ib == id)
            j++;
    }
    static const uint32_t rest[] = {SCHED_OBJECT_STORE_MEMORY, SCHED_MEMORY, SCHED_CPU};
    for (size_t k = 0; k < 3; k++) {
        sched_amount va = sched_request_get(a, rest[k]), vb = sched_request_get(b, rest[k]);
        if (va != vb)
            return va > vb ? -1 : 1;
    }
    return 0;
}

/* Stable merge sort of idx[0..n) by bundle_cmp (tmp holds n entries). */
static void sort_bundles(const sched_request *bundles, uint32_t *idx, uint32_t *tmp, size_t n)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = bundle_cmp(&bundles[idx[j]], &bundles[idx[i]]) < 0 ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof(*idx));
    }
}

/* ---- scoring and trial allocation ---- */

/* Ray's LeastResourceScorer over amounts (ids, amounts, count); -1 if it doesn't fit. */
static double least_resource_score(const sched_node *node, const uint32_t *ids,
                                   const sched_amount *amounts, uint32_t count)
{
    double score = 0;
    for (uint32_t i = 0; i < count; i++) {
        sched_amount avail = sched_node_available(node, ids[i]);
        if (avail < amounts[i])
            return -1;
        if (avail > 0)
            score += (double)(avail - amounts[i]) / (double)avail;
    }
    return score;
}

static int take(place_ctx *c, uint32_t b, sched_node *node)
{
    if (sched_node_allocate(c->v, node, &c->bundles[b], &c->v->b_allocs[b]))
        return 0;
    c->v->b_nodes[b] = node;
    c->stack[c->n_placed++] = b;
    return 1;
}

/* Gives back the allocations above stack depth `depth`, newest first. Strategies mark the
 * nodes they commit to (node->mark = gen) themselves, so trials leave no marks behind. */
static void rollback(place_ctx *c, uint32_t depth)
{
    while (c->n_placed > depth) {
        uint32_t b = c->stack[--c->n_placed];
        sched_node_free(c->v, c->v->b_nodes[b], &c->v->b_allocs[b]);
        c->v->b_nodes[b] = NULL;
    }
}

static int bundle_ok_on(const sched_request *r, const sched_node *node)
{
    return node->usable && (!r->selector || sched_selector_matches(r->selector, node));
}

/* The best node for bundle b: among unused nodes (used = 0) or among nodes the group
 * already uses (used = 1). NULL if none can take it now. */
static sched_node *best_node(place_ctx *c, uint32_t b, int used)
{
    sched_view *v = c->v;
    const sched_request *r = &c->bundles[b];
    sched_node *best = NULL;
    double best_score = -1;
    if (used) {
        for (uint32_t k = 0; k < c->n_placed; k++) {
            sched_node *node = v->b_nodes[c->stack[k]];
            if (!bundle_ok_on(r, node) || !sched__node_fits(node, r, 1))
                continue;
            double s = least_resource_score(node, r->id, r->amount, r->n);
            if (s > best_score) {
                best = node;
                best_score = s;
            }
        }
        return best;
    }
    const sched__list *list = sched__candidates(v, r, NULL);
    const uint32_t n = list->n, sample = v->cfg.bundle_sample;
    if (!n)
        return NULL;
    uint32_t start = sched_rng_below(c->rng, n), seen = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = start + k;
        if (i >= n)
            i -= n;
        sched_node *node = list->items[i];
        if (node->mark == c->gen || !sched__node_fits(node, r, 1) || !bundle_ok_on(r, node))
            continue;
        double s = least_resource_score(node, r->id, r->amount, r->n);
        if (s > best_score) {
            best = node;
            best_score = s;
        }
        if (sample && ++seen >= sample)
            break;
    }
    return best;
}

enum { AGG_MAX = 64 };

typedef struct aggregate {
    uint32_t n;
    int complete; /* 0 if more than AGG_MAX distinct resources: no pre-check */
    uint32_t id[AGG_MAX];
    sched_amount amount[AGG_MAX];
} aggregate;

static void aggregate_bundles(const sched_request *bundles, size_t n, aggregate *agg)
{
    agg->n = 0;
    agg->complete = 1;
    for (size_t b = 0; b < n; b++) {
        const sched_request *r = &bundles[b];
        for (uint32_t i = 0; i < r->n; i++) {
            uint32_t k = 0;
            while (k < agg->n && agg->id[k] != r->id[i])
                k++;
            if (k == agg->n) {
                if (agg->n == AGG_MAX) {
                    agg->complete = 0;
                    continue;
                }
                agg->id[k] = r->id[i];
                agg->amount[k] = 0;
                agg->n++;
            }
            sched_amount s = agg->amount[k] + r->amount[i];
            agg->amount[k] = s > SCHED_AMOUNT_MAX * 8 ? SCHED_AMOUNT_MAX * 8 : s;
        }
    }
}

/* Takes every bundle on node in priority order; on failure gives them back. */
static int take_all(place_ctx *c, sched_node *node)
{
    uint32_t depth = c->n_placed;
    for (size_t k = 0; k < c->n; k++) {
        uint32_t b = c->order[k];
        if (!bundle_ok_on(&c->bundles[b], node) || !take(c, b, node)) {
            rollback(c, depth);
            return 0;
        }
    }
    return 1;
}

/* The best node that can take the whole group now, with the group taken on it; NULL if
 * none. The aggregate is a cheap pre-check that rejects most nodes before the exact trial
 * (GPU instances can make a group that fits in sum fail in detail). */
static sched_node *place_all_on_one(place_ctx *c)
{
    sched_view *v = c->v;
    aggregate agg;
    aggregate_bundles(c->bundles, c->n, &agg);
    const sched__list *list = sched__candidates(v, &c->bundles[c->order[0]], NULL);
    const uint32_t n = list->n, sample = v->cfg.bundle_sample;
    if (!n)
        return NULL;
    sched_node *best = NULL;
    double best_score = -1;
    uint32_t start = sched_rng_below(c->rng, n), seen = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = start + k;
        if (i >= n)
            i -= n;
        sched_node *node = list->items[i];
        if (!node->usable || node->mark == c->gen)
            continue;
        double s = least_resource_score(node, agg.id, agg.amount, agg.n);
        if (s < 0 && agg.complete)
            continue;
        if (!take_all(c, node))
            continue;
        rollback(c, c->n_placed - (uint32_t)c->n);
        if (s > best_score || !best) {
            best = node;
            best_score = s;
        }
        if (sample && ++seen >= sample)
            break;
    }
    if (best && !take_all(c, best))
        best = NULL; /* cannot happen: the trial just succeeded on an unchanged view */
    return best;
}

/* ---- strategies; each returns 1 when every bundle is placed ---- */

static int place_pack(place_ctx *c)
{
    if (place_all_on_one(c))
        return 1;
    for (size_t k = 0; k < c->n; k++) {
        uint32_t b = c->order[k];
        if (c->v->b_nodes[b])
            continue;
        sched_node *node = best_node(c, b, 0);
        if (!node || !take(c, b, node))
            return 0;
        node->mark = c->gen;
        for (size_t j = k + 1; j < c->n; j++) {
            uint32_t o = c->order[j];
            if (!c->v->b_nodes[o] && bundle_ok_on(&c->bundles[o], node))
                take(c, o, node);
        }
    }
    return 1;
}

static int place_spread(place_ctx *c, int strict)
{
    for (size_t k = 0; k < c->n; k++) {
        uint32_t b = c->order[k];
        sched_node *node = best_node(c, b, 0);
        if (!node && !strict)
            node = best_node(c, b, 1);
        if (!node || !take(c, b, node))
            return 0;
        node->mark = c->gen;
    }
    return 1;
}

/* ---- refusal path ---- */

/* Could node hold all bundles if it were idle? Simulated on a copy with everything free. */
static int fits_all_when_idle(sched_view *v, const sched_node *node, const sched_request *bundles,
                              size_t n)
{
    sched_node idle = *node;
    idle.res = rc_memdup(node->res, node->n_res * sizeof(*node->res));
    idle.gpu_avail = rc_memdup(node->gpu_avail, node->n_gpus * sizeof(*node->gpu_avail));
    for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++)
        idle.avail[r] = idle.total[r];
    for (uint32_t i = 0; i < idle.n_res; i++)
        idle.res[i].avail = idle.res[i].total;
    for (uint32_t i = 0; i < idle.n_gpus; i++)
        idle.gpu_avail[i] = SCHED_UNIT;
    int ok = 1;
    for (size_t b = 0; b < n && ok; b++) {
        sched_alloc a;
        ok = (!bundles[b].selector || sched_selector_matches(bundles[b].selector, node)) &&
             !sched_node_allocate(v, &idle, &bundles[b], &a);
    }
    rc_free(idle.res);
    rc_free(idle.gpu_avail);
    return ok;
}

static int bundle_feasible_somewhere(sched_view *v, const sched_request *r)
{
    const sched__list *list = sched__candidates(v, r, NULL);
    for (uint32_t i = 0; i < list->n; i++)
        if (bundle_ok_on(r, list->items[i]) && sched__node_fits(list->items[i], r, 0))
            return 1;
    return 0;
}

static sched_status refuse(sched_view *v, const sched_request *bundles, size_t n,
                           sched_pg_strategy strategy, uint32_t placed, sched_decision *d)
{
    char req[160];
    d->node = NULL;
    for (size_t b = 0; b < n; b++) {
        if (bundle_feasible_somewhere(v, &bundles[b]))
            continue;
        sched_decision inner;
        sched__explain_never(v, &bundles[b], NULL, &inner);
        sched__fmt_request(v, &bundles[b], req, sizeof(req));
        d->status = SCHED_NEVER;
        sched__why(d, "%s bundle %zu %s can never be placed: %s", sched_pg_strategy_name(strategy),
                   b, req, inner.why);
        return SCHED_NEVER;
    }
    if (strategy == SCHED_PG_STRICT_PACK) {
        int any = 0;
        for (uint32_t i = 0; i < v->nodes.n && !any; i++)
            any = v->nodes.items[i]->usable && fits_all_when_idle(v, v->nodes.items[i], bundles, n);
        if (!any) {
            aggregate agg;
            aggregate_bundles(bundles, n, &agg);
            sched_request total;
            sched_request_init(&total);
            for (uint32_t k = 0; k < agg.n && k < SCHED_REQ_MAX_RESOURCES; k++)
                sched_request_set_id(&total, agg.id[k], agg.amount[k]);
            sched__fmt_request(v, &total, req, sizeof(req));
            d->status = SCHED_NEVER;
            sched__why(d,
                       "STRICT_PACK: no node can hold all %zu bundles together (%s in total) "
                       "even when idle",
                       n, req);
            return SCHED_NEVER;
        }
    }
    d->status = SCHED_NOT_NOW;
    if (strategy == SCHED_PG_STRICT_SPREAD) {
        uint32_t able = 0;
        for (uint32_t i = 0; i < v->nodes.n; i++) {
            const sched_node *node = v->nodes.items[i];
            for (size_t b = 0; b < n; b++) {
                if (bundle_ok_on(&bundles[b], node) && sched__node_fits(node, &bundles[b], 0)) {
                    able++;
                    break;
                }
            }
        }
        if (able < n) {
            sched__why(d,
                       "STRICT_SPREAD needs %zu distinct nodes but only %u node%s could ever "
                       "hold its bundles; pending until more nodes join",
                       n, able, able == 1 ? "" : "s");
            return SCHED_NOT_NOW;
        }
    }
    sched__why(d,
               "%s: only %u of %zu bundles could be placed with the resources free now; "
               "every bundle fits some node's totals, so the group waits",
               sched_pg_strategy_name(strategy), placed, n);
    return SCHED_NOT_NOW;
}

/* ---- entry points ---- */

static void reserve_bundle_scratch(sched_view *v, size_t n)
{
    if (n <= v->b_cap)
        return;
    uint32_t cap = v->b_cap ? v->b_cap : 16;
    while (cap < n)
        cap *= 2;
    v->b_allocs = rc_realloc(v->b_allocs, cap * sizeof(*v->b_allocs));
    v->b_nodes = rc_realloc(v->b_nodes, cap * sizeof(*v->b_nodes));
    v->b_order = rc_realloc(v->b_order, 3 * (size_t)cap * sizeof(*v->b_order));
    v->b_cap = cap;
}

static uint32_t next_gen(sched_view *v)
{
    if (++v->mark_gen == 0) {
        for (uint32_t i = 0; i < v->nodes.n; i++)
            v->nodes.items[i]->mark = 0;
        v->mark_gen = 1;
    }
    return v->mark_gen;
}

sched_status sched_place_bundles(sched_view *v, const sched_request *bundles, size_t n,
                                 sched_pg_strategy strategy, sched_rng *rng, sched_node **nodes_out,
                                 sched_decision *d)
{
    d->node = NULL;
    d->status = SCHED_INVALID;
    if (n == 0 || n > UINT32_MAX / 4) {
        sched__why(d, "invalid placement group: it needs at least one bundle");
        return SCHED_INVALID;
    }
    if ((unsigned)strategy > SCHED_PG_STRICT_SPREAD) {
        sched__why(d, "invalid placement group: unknown strategy %d", (int)strategy);
        return SCHED_INVALID;
    }
    for (size_t b = 0; b < n; b++) {
        char why[SCHED_WHY_MAX];
        if (sched__request_check(v, &bundles[b], why, sizeof(why))) {
            sched__why(d, "bundle %zu: %s", b, why);
            return SCHED_INVALID;
        }
        if (!bundles[b].n) {
            /* Ray: "Bundles cannot be an empty dictionary or resources with only 0". */
            sched__why(d,
                       "invalid placement group: bundle %zu is empty; every bundle needs a "
                       "resource with a non-zero amount",
                       b);
            return SCHED_INVALID;
        }
    }
    reserve_bundle_scratch(v, n);
    place_ctx c = {v, bundles, n, rng, v->b_order, v->b_order + n, 0, next_gen(v)};
    for (size_t b = 0; b < n; b++) {
        c.order[b] = (uint32_t)b;
        v->b_nodes[b] = NULL;
    }
    sort_bundles(bundles, c.order, v->b_order + 2 * n, n);

    int ok;
    switch (strategy) {
    case SCHED_PG_PACK:
        ok = place_pack(&c);
        break;
    case SCHED_PG_SPREAD:
        ok = place_spread(&c, 0);
        break;
    case SCHED_PG_STRICT_PACK:
        ok = place_all_on_one(&c) != NULL;
        break;
    default:
        ok = place_spread(&c, 1);
        break;
    }
    uint32_t placed = c.n_placed;
    if (ok)
        memcpy(nodes_out, v->b_nodes, n * sizeof(*nodes_out));
    rollback(&c, 0);
    if (ok) {
        d->status = SCHED_OK;
        d->why[0] = '\0';
        return SCHED_OK;
    }
    return refuse(v, bundles, n, strategy, placed, d);
}

int sched_bundles_allocate(sched_view *v, const sched_request *bundles, size_t n,
                           sched_node *const *nodes, sched_alloc *allocs)
{
    for (size_t i = 0; i < n; i++) {
        if (sched_node_allocate(v, nodes[i], &bundles[i], &allocs[i])) {
            while (i-- > 0)
                sched_node_free(v, nodes[i], &allocs[i]);
            return RC_EBUSY;
        }
    }
    return 0;
}

void sched_bundles_free(sched_view *v, size_t n, sched_node *const *nodes,
                        const sched_alloc *allocs)
{
    for (size_t i = n; i-- > 0;)
        sched_node_free(v, nodes[i], &allocs[i]);
}
