/*
 * Unit tests of market_ledger.c: reservations against both caps, and a property test that
 * no sequence of reserve / release / commit / renew / end ever lets spend exceed the caps
 * and that the ledger agrees with a model that sums the leases.
 */
#include <math.h>
#include <string.h>

#include "market.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "unit.h"

static void test_reserve_per_hour_cap(void)
{
    mk_ledger l;
    char why[160];
    mk_ledger_init(&l, 0.30, 0);
    CU_ASSERT_EQUAL(mk_ledger_reserve(&l, 0.28, 3600, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(mk_ledger_reserve(&l, 0.15, 3600, why, sizeof(why)), RC_EBUDGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "budget_per_hour"));
    CU_ASSERT_EQUAL(mk_ledger_fits(&l, 0.02, 3600), 1);
    CU_ASSERT_EQUAL(mk_ledger_fits(&l, 0.03, 3600), 0);
    mk_ledger_release(&l, 0.28, 3600);
    CU_ASSERT_DOUBLE_EQUAL(l.reserved_per_hour, 0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(l.reserved_total, 0, 1e-12);
    CU_ASSERT_EQUAL(mk_ledger_reserve(&l, 0.30, 3600, why, sizeof(why)), 0);
}

static void test_reserve_total_cap(void)
{
    mk_ledger l;
    char why[160];
    mk_ledger_init(&l, 0, 1.00);
    /* An hourly increment of a $0.60 host holds $0.60; a second one would need $1.20. */
    CU_ASSERT_EQUAL(mk_ledger_reserve(&l, 0.60, 3600, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(mk_ledger_reserve(&l, 0.60, 3600, why, sizeof(why)), RC_EBUDGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "budget_total"));
    /* Per-minute billing of the same host holds only a minute. */
    CU_ASSERT_EQUAL(mk_ledger_reserve(&l, 0.60, 60, why, sizeof(why)), 0);
    mk_ledger_commit(&l, 0.60);
    CU_ASSERT_DOUBLE_EQUAL(l.committed_per_hour, 0.60, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(l.reserved_per_hour, 0.60, 1e-12);
    /* The hourly lease renews once: $0.60 spent + $0.60 held + $0.01 held > $1.00. */
    CU_ASSERT_EQUAL(mk_ledger_renew(&l, 0.60, 3600, why, sizeof(why)), RC_EBUDGET);
    mk_ledger_end(&l, 0.60, 3600, mk_billed_seconds(10, 3600));
    CU_ASSERT_DOUBLE_EQUAL(l.spent_total, 0.60, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(l.reserved_total, 0.01, 1e-12);
}

static void test_billed_seconds(void)
{
    CU_ASSERT_DOUBLE_EQUAL(mk_billed_seconds(0, 3600), 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(mk_billed_seconds(1, 3600), 3600, 0);
    CU_ASSERT_DOUBLE_EQUAL(mk_billed_seconds(3600, 3600), 3600, 0);
    CU_ASSERT_DOUBLE_EQUAL(mk_billed_seconds(3601, 3600), 7200, 0);
    CU_ASSERT_DOUBLE_EQUAL(mk_billed_seconds(12.2, 0), 13, 0);
    CU_ASSERT_DOUBLE_EQUAL(mk_increment_cost(3.6, 0), 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(mk_increment_cost(3.6, 60), 0.06, 1e-15);
}

/* xorshift64*, seeded: the test's own randomness, so every run checks the same sequences. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

typedef struct lease {
    double price;
    int64_t inc;
    int live; /* 0: reserved, 1: live */
} lease;

static void test_caps_hold_across_cycles(void)
{
    static const double prices[] = {0.10, 0.15, 0.28, 0.35, 1.10, 2.49, 0.03};
    static const int64_t incs[] = {0, 1, 60, 600, 3600};
    int refusals = 0, reservations = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ULL;
        double cap_hour = 0.5 + (double)rng_below(40) / 10.0;
        double cap_total = seed % 3 ? 0.5 + (double)rng_below(100) / 10.0 : 0;
        mk_ledger l;
        mk_ledger_init(&l, cap_hour, cap_total);
        lease leases[256];
        size_t n = 0;
        double spent = 0; /* the model */
        for (int step = 0; step < 2000; step++) {
            size_t op = rng_below(5);
            if (op <= 1 && n < 256) {
                double p = prices[rng_below(RC_ARRAY_LEN(prices))];
                int64_t inc = incs[rng_below(RC_ARRAY_LEN(incs))];
                double ph = 0, held = 0;
                for (size_t i = 0; i < n; i++) {
                    ph += leases[i].price;
                    held += mk_increment_cost(leases[i].price, leases[i].inc);
                }
                int fits = ph + p <= cap_hour + 1e-9 &&
                           (cap_total <= 0 || spent + held + mk_increment_cost(p, inc) <= cap_total + 1e-9);
                int rc = mk_ledger_reserve(&l, p, inc, NULL, 0);
                CU_ASSERT_EQUAL(rc == 0, fits);
                if (rc == 0) {
                    leases[n++] = (lease){p, inc, 0};
                    reservations++;
                } else {
                    refusals++;
                }
            } else if (n > 0) {
                size_t i = rng_below(n);
                lease *e = &leases[i];
                int drop = 0;
                if (!e->live && op == 2) {
                    mk_ledger_release(&l, e->price, e->inc);
                    drop = 1;
                } else if (!e->live) {
                    mk_ledger_commit(&l, e->price);
                    e->live = 1;
                } else if (op == 3) {
                    double inc = mk_increment_cost(e->price, e->inc);
                    if (mk_ledger_renew(&l, e->price, e->inc, NULL, 0) == 0)
                        spent += inc;
                } else {
                    /* Ends within its current increment: billed exactly the increment held. */
                    double billed = mk_billed_seconds(0.5, e->inc);
                    mk_ledger_end(&l, e->price, e->inc, billed);
                    spent += e->price * billed / 3600.0;
                    drop = 1;
                }
                if (drop)
                    leases[i] = leases[--n];
            }
            double ph_live = 0, ph_res = 0, held = 0;
            for (size_t i = 0; i < n; i++) {
                *(leases[i].live ? &ph_live : &ph_res) += leases[i].price;
                held += mk_increment_cost(leases[i].price, leases[i].inc);
            }
            CU_ASSERT(l.committed_per_hour + l.reserved_per_hour <= cap_hour + 1e-9);
            if (cap_total > 0)
                CU_ASSERT(l.spent_total + l.reserved_total <= cap_total + 1e-9);
            CU_ASSERT_DOUBLE_EQUAL(l.committed_per_hour, ph_live, 1e-7);
            CU_ASSERT_DOUBLE_EQUAL(l.reserved_per_hour, ph_res, 1e-7);
            CU_ASSERT_DOUBLE_EQUAL(l.reserved_total, held, 1e-7);
            CU_ASSERT_DOUBLE_EQUAL(l.spent_total, spent, 1e-7);
        }
    }
    /* The sequences must exercise both outcomes, or the property says nothing. */
    CU_ASSERT(refusals > 100);
    CU_ASSERT(reservations > 100);
}

static const unit_case cases[] = {
    UNIT_CASE(test_reserve_per_hour_cap),
    UNIT_CASE(test_reserve_total_cap),
    UNIT_CASE(test_billed_seconds),
    UNIT_CASE(test_caps_hold_across_cycles),
};

int main(void)
{
    return unit_run("market_ledger", cases, UNIT_N(cases));
}
