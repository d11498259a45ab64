/*
 * market_ledger.c: the budget ledger. Spend is reserved before a launch and given back if
 * the launch fails, so however often launches are retried the caps hold: per hour, the
 * prices of live and reserved leases; in total, money billed so far plus one billing
 * increment held for every live or reserved lease.
 *
 * Invariant: after any sequence of calls in which every release/commit/end matches an
 * earlier successful reserve, committed + reserved per hour <= budget_per_hour and
 * spent + reserved total <= budget_total (when capped), up to MK_LEDGER_EPS of rounding.
 * Sums are clamped at 0 so that rounding never leaves a negative balance. Pure;
 * single-threaded over its argument.
 */
#include <math.h>
#include <stdio.h>

#include "market.h"
#include "rc_err.h"

/* Dollars of rounding tolerated when comparing against a cap (prices are cents). */
#define MK_LEDGER_EPS 1e-9

void mk_ledger_init(mk_ledger *l, double budget_per_hour, double budget_total)
{
    *l = (mk_ledger){.budget_per_hour = budget_per_hour, .budget_total = budget_total};
}

double mk_increment_cost(double price_per_hour, int64_t billing_increment_s)
{
    int64_t s = billing_increment_s > 0 ? billing_increment_s : 1;
    return price_per_hour * (double)s / 3600.0;
}

static double sub_clamped(double a, double b)
{
    double r = a - b;
    return r < MK_LEDGER_EPS ? 0 : r;
}

static int over_hour(const mk_ledger *l, double price)
{
    return l->budget_per_hour > 0 &&
           l->committed_per_hour + l->reserved_per_hour + price > l->budget_per_hour + MK_LEDGER_EPS;
}

static int over_total(const mk_ledger *l, double increment)
{
    return l->budget_total > 0 && l->spent_total + l->reserved_total + increment > l->budget_total + MK_LEDGER_EPS;
}

int mk_ledger_fits(const mk_ledger *l, double price_per_hour, int64_t billing_increment_s)
{
    return !over_hour(l, price_per_hour) && !over_total(l, mk_increment_cost(price_per_hour, billing_increment_s));
}

int mk_ledger_reserve(mk_ledger *l, double price_per_hour, int64_t billing_increment_s, char *why, size_t whylen)
{
    double inc = mk_increment_cost(price_per_hour, billing_increment_s);
    if (over_hour(l, price_per_hour)) {
        if (why && whylen)
            snprintf(why, whylen, "$%.2f/h more would exceed budget_per_hour $%.2f ($%.2f/h in use or reserved)",
                     price_per_hour, l->budget_per_hour, l->committed_per_hour + l->reserved_per_hour);
        return RC_EBUDGET;
    }
    if (over_total(l, inc)) {
        if (why && whylen)
            snprintf(why, whylen,
                     "a billing increment of $%.4f would exceed budget_total $%.2f ($%.4f spent or held)", inc,
                     l->budget_total, l->spent_total + l->reserved_total);
        return RC_EBUDGET;
    }
    l->reserved_per_hour += price_per_hour;
    l->reserved_total += inc;
    return 0;
}

void mk_ledger_release(mk_ledger *l, double price_per_hour, int64_t billing_increment_s)
{
    l->reserved_per_hour = sub_clamped(l->reserved_per_hour, price_per_hour);
    l->reserved_total = sub_clamped(l->reserved_total, mk_increment_cost(price_per_hour, billing_increment_s));
}

void mk_ledger_commit(mk_ledger *l, double price_per_hour)
{
    l->reserved_per_hour = sub_clamped(l->reserved_per_hour, price_per_hour);
    l->committed_per_hour += price_per_hour;
}

void mk_ledger_end(mk_ledger *l, double price_per_hour, int64_t billing_increment_s, double billed_s)
{
    l->committed_per_hour = sub_clamped(l->committed_per_hour, price_per_hour);
    l->reserved_total = sub_clamped(l->reserved_total, mk_increment_cost(price_per_hour, billing_increment_s));
    if (billed_s > 0)
        l->spent_total += price_per_hour * billed_s / 3600.0;
}

int mk_ledger_renew(mk_ledger *l, double price_per_hour, int64_t billing_increment_s, char *why, size_t whylen)
{
    double inc = mk_increment_cost(price_per_hour, billing_increment_s);
    /* The held increment becomes spent; the next one must fit on top of it. */
    if (over_total(l, inc)) {
        if (why && whylen)
            snprintf(why, whylen,
                     "the next billing increment ($%.4f) would exceed budget_total $%.2f ($%.4f spent or held)",
                     inc, l->budget_total, l->spent_total + l->reserved_total);
        return RC_EBUDGET;
    }
    l->spent_total += inc;
    return 0;
}

double mk_billed_seconds(double run_s, int64_t billing_increment_s)
{
    if (!(run_s > 0))
        return 0;
    double inc = billing_increment_s > 0 ? (double)billing_increment_s : 1.0;
    return ceil(run_s / inc - 1e-9) * inc;
}
