/*
 * sched_hybrid.c: DEFAULT, Ray's HybridSchedulingPolicy.
 *
 * Ray's algorithm: a node's score is its critical-resource utilization (the highest of
 * CPU, memory, object store used/total), truncated to 0 below the spread threshold (0.5),
 * so lightly loaded nodes are all equal. Among the feasible nodes that have the resources
 * free now, the preferred (local) node wins if its score is no worse than the best;
 * otherwise one of the k best (score, then NodeID) is chosen at random, k = max(1, 20% of
 * the nodes). If none is free now but some could hold the request, the same choice among
 * those says where to queue ("not now"); if none could ever hold it, "never". Requests
 * without GPUs first try GPU-less nodes that are free now (Ray's scheduler_avoid_gpu_nodes)
 * so GPUs stay free for work that needs them.
 *
 * How it stays fast: candidates come from the view's index (the smallest bucket of nodes
 * whose totals have the requested resources, or whose labels the selector names), and the
 * scan starts at a random position and stops at the first free node scoring 0. Any such
 * node is tied for the best score, so it is a legitimate top-k pick; a random start makes
 * the tie-break random. On a lightly loaded cluster a decision looks at a handful of
 * nodes however many there are. Only when every free candidate is above the threshold
 * (a busy cluster) does it score them all and select the k best with quickselect, O(n)
 * rather than Ray's sort.
 *
 * Deliberate difference from Ray: when fewer than k free nodes score 0, Ray may still pick
 * a busier node from its top k; we take a node scoring 0 whenever one exists. This spreads
 * at least as well and is what the threshold is for.
 *
 * With options.cost_weight > 0 the score gains cost_weight * price / highest price, and
 * every candidate is scored (no early exit unless a node's score is 0 outright).
 *
 * Single-threaded like the view; uses the view's scratch array.
 */
#include <string.h>

#include "sched_int.h"

typedef struct pass_out {
    sched_node *node;    /* chosen: free now when available, else where to queue */
    int available;       /* node has the resources free now */
    uint32_t n_feasible; /* feasible nodes seen when nothing was free (0: none, or not counted) */
} pass_out;

static inline double node_score(const sched_node *n, double threshold, double cost_weight,
                                double max_price)
{
    double s = n->util < threshold ? 0 : n->util;
    if (cost_weight > 0 && max_price > 0)
        s += cost_weight * n->price / max_price;
    return s;
}

static inline int scored_better(const sched__scored *a, const sched__scored *b)
{
    if (a->score != b->score)
        return a->score < b->score;
    return memcmp(a->node->id, b->node->id, RC_NODE_ID_SIZE) < 0;
}

static inline void swap_scored(sched__scored *a, sched__scored *b)
{
    sched__scored t = *a;
    *a = *b;
    *b = t;
}

/* Rearranges c so that c[0..k) are the k best entries (in no particular order). */
static void select_best_k(sched__scored *c, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1, target = k - 1;
    while (lo < hi) {
        swap_scored(&c[lo + (hi - lo) / 2], &c[hi]);
        uint32_t store = lo;
        for (uint32_t i = lo; i < hi; i++)
            if (scored_better(&c[i], &c[hi]))
                swap_scored(&c[i], &c[store++]);
        swap_scored(&c[store], &c[hi]);
        if (store == target)
            return;
        if (store < target)
            lo = store + 1;
        else
            hi = store - 1;
    }
}

sched_node *sched__pick_top_k(sched__scored *cand, uint32_t n, uint32_t k, sched_rng *rng)
{
    if (k < n)
        select_best_k(cand, n, k);
    else
        k = n;
    return cand[sched_rng_below(rng, k)].node;
}

static void hybrid_pass(sched_view *v, const sched_request *r, const sched_options *o,
                        sched_rng *rng, int nongpu_only, int require_available, int count_feasible,
                        pass_out *out)
{
    out->node = NULL;
    out->available = 0;
    out->n_feasible = 0;
    const double threshold = v->cfg.spread_threshold;
    const double w = o->cost_weight;
    const double max_price = w > 0 ? sched__max_price(v) : 0;
    const sched_node *skip = o->avoid_local_node ? o->preferred_node : NULL;
    sched_node *pref = o->avoid_local_node ? NULL : (sched_node *)o->preferred_node;
    int pref_avail = 0, pref_feasible = 0;
    double pref_score = 0;

    if (pref && (!nongpu_only || !pref->n_gpus) && sched__node_usable_for(pref, r)) {
        if (sched__node_fits(pref, r, 1)) {
            pref_avail = pref_feasible = 1;
            pref_score = node_score(pref, threshold, w, max_price);
            if (pref_score <= 0) {
                out->node = pref;
                out->available = 1;
                return;
            }
        } else if (sched__node_fits(pref, r, 0)) {
            pref_feasible = 1;
            pref_score = node_score(pref, threshold, w, max_price);
        }
    }

    const sched__list *list = sched__candidates(v, r, NULL);
    if (nongpu_only && v->nongpu.n < list->n)
        list = &v->nongpu;
    const uint32_t n = list->n;
    if (!n)
        return;
    sched__scratch_reserve(v, n + 1);
    sched__scored *sc = v->scratch;
    uint32_t n_avail = 0;
    const uint32_t start = sched_rng_below(rng, n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = start + k;
        if (i >= n)
            i -= n;
        sched_node *node = list->items[i];
        if (!node->usable || node == pref || node == skip || (nongpu_only && node->n_gpus))
            continue;
        if (!sched__node_fits(node, r, 1))
            continue;
        if (r->selector && !sched_selector_matches(r->selector, node))
            continue;
        double s = node_score(node, threshold, w, max_price);
        if (s <= 0) {
            /* Tied for the best possible score: a top-k member, chosen at random by the
             * random start. It beats the preferred node, whose score is above 0. */
            out->node = node;
            out->available = 1;
            return;
        }
        sc[n_avail].node = node;
        sc[n_avail].score = s;
        n_avail++;
    }
    if (pref_avail) {
        double best = pref_score;
        for (uint32_t i = 0; i < n_avail; i++)
            if (sc[i].score < best)
                best = sc[i].score;
        if (pref_score <= best) {
            out->node = pref;
            out->available = 1;
            return;
        }
        sc[n_avail].node = pref;
        sc[n_avail].score = pref_score;
        n_avail++;
    }
    if (n_avail) {
        out->node = sched__pick_top_k(sc, n_avail, sched__top_k(v), rng);
        out->available = 1;
        return;
    }
    if (!count_feasible)
        return;

    /* Nothing is free now: the refusal path. Which nodes could hold it at all? */
    uint32_t n_feas = 0;
    for (uint32_t i = 0; i < n; i++) {
        sched_node *node = list->items[i];
        if (!node->usable || node == skip || (nongpu_only && node->n_gpus))
            continue;
        if (!sched__node_fits(node, r, 0))
            continue;
        if (r->selector && !sched_selector_matches(r->selector, node))
            continue;
        sc[n_feas].node = node;
        sc[n_feas].score = node_score(node, threshold, w, max_price);
        n_feas++;
    }
    out->n_feasible = n_feas;
    if (!n_feas || require_available)
        return;
    if (pref_feasible) {
        double best = pref_score;
        for (uint32_t i = 0; i < n_feas; i++)
            if (sc[i].score < best)
                best = sc[i].score;
        if (pref_score <= best) {
            out->node = pref;
            return;
        }
    }
    out->node = sched__pick_top_k(sc, n_feas, sched__top_k(v), rng);
}

sched_status sched__policy_hybrid(sched_view *v, const sched_request *r, const sched_options *o,
                                  sched_rng *rng, sched_decision *d)
{
    pass_out p;
    if (v->cfg.avoid_gpu_nodes && v->n_gpu_nodes && v->nongpu.n &&
        !sched_request_get(r, SCHED_GPU)) {
        hybrid_pass(v, r, o, rng, 1, 1, 0, &p);
        if (p.available)
            return sched__ok(d, p.node);
    }
    hybrid_pass(v, r, o, rng, 0, o->require_available, 1, &p);
    if (p.available)
        return sched__ok(d, p.node);
    if (p.n_feasible)
        return sched__explain_not_now(v, r, p.node, p.n_feasible, d);
    return sched__refuse_never(v, r, o, NULL, d);
}
