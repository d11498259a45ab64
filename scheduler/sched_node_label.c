/*
 * sched_node_label.c: NODE_LABEL, Ray's NodeLabelSchedulingStrategy.
 *
 * Hard expressions must match; soft ones are a preference. Ray's order of choice:
 *   1. a node matching hard and soft with the request free now;
 *   2. a node matching hard with the request free now;
 *   3. a node matching hard and soft that could hold it (NOT_NOW, queue there);
 *   4. a node matching hard that could hold it (NOT_NOW);
 * and NEVER when no node matches hard and could ever hold it. Within each class Ray picks
 * at random; we scan from a random position and stop at the first node of class 1, which
 * is a random pick without visiting every node. The request's own label_selector is a hard
 * constraint too.
 *
 * Candidates come from the index: the smallest of the request's resource buckets and the
 * key=value buckets of single-value In constraints (hard ones and the request's).
 *
 * Single-threaded like the view.
 */
#include "sched_int.h"

sched_status sched__policy_node_label(sched_view *v, const sched_request *r, const sched_options *o,
                                      sched_rng *rng, sched_decision *d)
{
    const sched__list *list = sched__candidates(v, r, o->label_hard);
    const sched_node *skip = o->avoid_local_node ? o->preferred_node : NULL;
    const uint32_t n = list->n;
    sched_node *best[4] = {NULL, NULL, NULL, NULL}; /* best[c - 1]: first of class c */
    uint32_t n_feasible = 0;
    const uint32_t start = n ? sched_rng_below(rng, n) : 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = start + k;
        if (i >= n)
            i -= n;
        sched_node *node = list->items[i];
        if (!node->usable || node == skip)
            continue;
        int avail = sched__node_fits(node, r, 1);
        if (!avail && !sched__node_fits(node, r, 0))
            continue;
        if (!sched_selector_matches(o->label_hard, node) ||
            (r->selector && !sched_selector_matches(r->selector, node)))
            continue;
        n_feasible++;
        int soft = sched_selector_matches(o->label_soft, node);
        if (avail && soft)
            return sched__ok(d, node);
        int cls = avail ? 1 : soft ? 2 : 3;
        if (!best[cls])
            best[cls] = node;
    }
    if (best[1])
        return sched__ok(d, best[1]);
    if (!n_feasible)
        return sched__refuse_never(v, r, o, o->label_hard, d);
    sched_node *queue = o->require_available ? NULL : best[2] ? best[2] : best[3];
    return sched__explain_not_now(v, r, queue, n_feasible, d);
}
