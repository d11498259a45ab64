/*
 * sched_affinity.c: NODE_AFFINITY, Ray's NodeAffinitySchedulingStrategy.
 *
 * The target node is used when it is alive and could ever hold the request:
 *   - without flags, always (free now: OK; busy: NOT_NOW, queue there, as Ray does);
 *   - with spill_on_unavailable (soft only) or fail_on_unavailable (hard only), only if
 *     the request is free there now.
 * Otherwise:
 *   - hard (soft = 0): NEVER when the node is unknown, dead, draining or too small (the
 *     sentence says which); UNAVAILABLE when it is merely busy and fail_on_unavailable is
 *     set (Ray fails the task instead of queueing it);
 *   - soft: DEFAULT decides, over all nodes.
 * sched_schedule has already rejected the flag combinations Ray rejects.
 *
 * Single-threaded like the view.
 */
#include "sched_int.h"

sched_status sched__policy_affinity(sched_view *v, const sched_request *r, const sched_options *o,
                                    sched_rng *rng, sched_decision *d)
{
    sched_node *target = sched_view_find(v, o->affinity_node);
    int feasible = target && sched__node_usable_for(target, r) && sched__node_fits(target, r, 0);
    if (feasible) {
        int free_now = sched__node_fits(target, r, 1);
        if (free_now)
            return sched__ok(d, target);
        if (!o->spill_on_unavailable && !o->fail_on_unavailable)
            return sched__explain_not_now(v, r, target, 1, d);
    }
    if (o->affinity_soft)
        return sched__policy_hybrid(v, r, o, rng, d);

    char idbuf[RC_ID_HEX_MAX];
    rc_id_hex(o->affinity_node, RC_NODE_ID_SIZE, idbuf);
    d->node = NULL;
    if (feasible) {
        char req[160], who[32];
        sched__fmt_request(v, r, req, sizeof(req));
        d->status = SCHED_UNAVAILABLE;
        sched__why(d,
                   "node affinity: node %s doesn't have %s available now and "
                   "fail_on_unavailable is set",
                   sched__node_short(target, who, sizeof(who)), req);
        return SCHED_UNAVAILABLE;
    }
    d->status = SCHED_NEVER;
    if (!target) {
        sched__why(d, "node affinity: node %s is not in the cluster view", idbuf);
    } else if (!target->alive) {
        sched__why(d, "node affinity: node %s is dead", idbuf);
    } else if (target->draining) {
        sched__why(d, "node affinity: node %s is draining", idbuf);
    } else {
        char because[SCHED_WHY_MAX], who[32];
        sched__explain_node(v, target, r, because, sizeof(because));
        sched__why(d, "node affinity: node %s can never run this: %s",
                   sched__node_short(target, who, sizeof(who)), because);
    }
    return SCHED_NEVER;
}
