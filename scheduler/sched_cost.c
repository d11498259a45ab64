/*
 * sched_cost.c: COST, price-aware placement (beyond Ray).
 *
 * Nodes carry a price per hour (from the market's rayc.io/price-per-hour label; owned
 * hosts count as 0, their cost is already paid). COST picks the cheapest node that has the
 * request free now; equal prices go to the less utilized node, then the lower NodeID, so
 * the choice is deterministic and fills cheap capacity before touching dear capacity. If
 * no node is free now, it queues on the cheapest feasible node (NOT_NOW); if none could
 * ever hold it, NEVER. The preferred node gets no special treatment: money beats locality
 * here (DEFAULT with cost_weight blends the two instead).
 *
 * Every candidate of the index bucket is examined (no early exit: the cheapest could be
 * anywhere), so this is O(candidates) per decision.
 *
 * Single-threaded like the view.
 */
#include <string.h>

#include "sched_int.h"

static int cheaper(const sched_node *a, const sched_node *b)
{
    if (!b)
        return 1;
    if (a->price != b->price)
        return a->price < b->price;
    if (a->util != b->util)
        return a->util < b->util;
    return memcmp(a->id, b->id, RC_NODE_ID_SIZE) < 0;
}

sched_status sched__policy_cost(sched_view *v, const sched_request *r, const sched_options *o,
                                sched_rng *rng, sched_decision *d)
{
    (void)rng;
    const sched__list *list = sched__candidates(v, r, NULL);
    const sched_node *skip = o->avoid_local_node ? o->preferred_node : NULL;
    sched_node *best_free = NULL, *best_feasible = NULL;
    uint32_t n_feasible = 0;
    for (uint32_t i = 0; i < list->n; i++) {
        sched_node *node = list->items[i];
        if (!node->usable || node == skip)
            continue;
        int avail = sched__node_fits(node, r, 1);
        if (!avail && (best_free || !sched__node_fits(node, r, 0)))
            continue;
        if (r->selector && !sched_selector_matches(r->selector, node))
            continue;
        n_feasible++;
        if (avail) {
            if (cheaper(node, best_free))
                best_free = node;
        } else if (cheaper(node, best_feasible)) {
            best_feasible = node;
        }
    }
    if (best_free)
        return sched__ok(d, best_free);
    if (!n_feasible)
        return sched__refuse_never(v, r, o, NULL, d);
    return sched__explain_not_now(v, r, o->require_available ? NULL : best_feasible, n_feasible, d);
}
