/*
 * sched_spread.c: SPREAD, Ray's SpreadSchedulingPolicy.
 *
 * Round-robin: walk the nodes in view order starting at the view's spread index, take the
 * first alive node that has the request free now, and move the index just past it, so
 * consecutive SPREAD tasks land on consecutive nodes. The index lives in the view (Ray
 * keeps it in the policy object), never in a global. If no node has the request free now,
 * fall back to DEFAULT, which says where to queue ("not now") or why it can never run.
 *
 * Ray sorts node IDs on every call to get a stable order; view order is already stable
 * while no node is removed, so we skip the sort. Cost: the walk stops at the first free
 * node, so it is short unless most nodes are full or lack the resources.
 *
 * Single-threaded like the view.
 */
#include "sched_int.h"

sched_status sched__policy_spread(sched_view *v, const sched_request *r, const sched_options *o,
                                  sched_rng *rng, sched_decision *d)
{
    const uint32_t n = v->nodes.n;
    const sched_node *skip = o->avoid_local_node ? o->preferred_node : NULL;
    uint32_t start = n ? v->spread_next % n : 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = start + k;
        if (i >= n)
            i -= n;
        sched_node *node = v->nodes.items[i];
        if (!node->usable || node == skip || !sched__node_fits(node, r, 1))
            continue;
        if (r->selector && !sched_selector_matches(r->selector, node))
            continue;
        v->spread_next = i + 1;
        return sched__ok(d, node);
    }
    return sched__policy_hybrid(v, r, o, rng, d);
}
