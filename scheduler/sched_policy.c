/*
 * sched_policy.c: the policy table, request and option validation in front of it, and the
 * caller-owned random generator the policies draw from.
 *
 * Each strategy is one function in its own file (sched_hybrid.c, sched_spread.c,
 * sched_affinity.c, sched_node_label.c, sched_cost.c) behind sched_schedule_fn. The table
 * is fixed at build time; sched_schedule checks the request and options once so the
 * policies can trust them.
 *
 * The generator is splitmix64: one 64-bit word of state, good statistical quality, and a
 * seed fully determines the stream, which is what makes decisions reproducible (Ray passes
 * its bit generator in for the same reason). Single-threaded like the view.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rc_err.h"
#include "sched_int.h"

void sched_rng_seed(sched_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

uint64_t sched_rng_next(sched_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint32_t sched_rng_below(sched_rng *rng, uint32_t n)
{
    /* Lemire's multiply-shift: the bias is below 2^-32 for any n, far under what a
     * scheduler could notice, and it costs no division. */
    return (uint32_t)(((sched_rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

const char *sched_status_name(sched_status s)
{
    switch (s) {
    case SCHED_OK:
        return "OK";
    case SCHED_NOT_NOW:
        return "NOT_NOW";
    case SCHED_NEVER:
        return "NEVER";
    case SCHED_UNAVAILABLE:
        return "UNAVAILABLE";
    case SCHED_INVALID:
        return "INVALID";
    }
    return "?";
}

void sched_options_init(sched_options *o)
{
    memset(o, 0, sizeof(*o));
    o->strategy = SCHED_STRATEGY_DEFAULT;
}

void sched__why(sched_decision *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof(d->why), fmt, ap);
    va_end(ap);
}

static const sched_policy policies[SCHED_STRATEGY_COUNT] = {
    [SCHED_STRATEGY_DEFAULT] = {"DEFAULT", sched__policy_hybrid},
    [SCHED_STRATEGY_SPREAD] = {"SPREAD", sched__policy_spread},
    [SCHED_STRATEGY_NODE_AFFINITY] = {"NODE_AFFINITY", sched__policy_affinity},
    [SCHED_STRATEGY_NODE_LABEL] = {"NODE_LABEL", sched__policy_node_label},
    [SCHED_STRATEGY_COST] = {"COST", sched__policy_cost},
};

const sched_policy *sched_policy_get(sched_strategy s)
{
    if ((unsigned)s >= SCHED_STRATEGY_COUNT)
        return NULL;
    return &policies[s];
}

static sched_status invalid(sched_decision *d)
{
    d->status = SCHED_INVALID;
    d->node = NULL;
    return SCHED_INVALID;
}

sched_status sched_schedule(sched_view *v, const sched_request *r, const sched_options *o,
                            sched_rng *rng, sched_decision *d)
{
    sched_options defaults;
    if (!o) {
        sched_options_init(&defaults);
        o = &defaults;
    }
    if (sched__request_check(v, r, d->why, sizeof(d->why)))
        return invalid(d);
    const sched_policy *p = sched_policy_get(o->strategy);
    if (!p) {
        sched__why(d, "invalid options: unknown strategy %d", (int)o->strategy);
        return invalid(d);
    }
    if (!isfinite(o->cost_weight) || o->cost_weight < 0) {
        sched__why(d, "invalid options: cost_weight %g must be a finite number >= 0",
                   o->cost_weight);
        return invalid(d);
    }
    if (o->strategy == SCHED_STRATEGY_NODE_AFFINITY) {
        /* Ray's checks: spilling only makes sense when soft, failing only when hard. */
        if (o->spill_on_unavailable && !o->affinity_soft) {
            sched__why(d, "invalid options: spill_on_unavailable requires soft node affinity");
            return invalid(d);
        }
        if (o->fail_on_unavailable && o->affinity_soft) {
            sched__why(d, "invalid options: fail_on_unavailable requires hard node affinity "
                          "(soft=False)");
            return invalid(d);
        }
    }
    if (o->strategy == SCHED_STRATEGY_NODE_LABEL && !sched_selector_count(o->label_hard) &&
        !sched_selector_count(o->label_soft)) {
        sched__why(d, "invalid options: NODE_LABEL strategy needs hard or soft label "
                      "expressions");
        return invalid(d);
    }
    return p->schedule(v, r, o, rng, d);
}
