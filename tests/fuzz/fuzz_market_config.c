/*
 * fuzz_market_config: mk_config_parse and mk_offers_parse on arbitrary bytes (a market
 * config and an offers file come from the admin's disk and from providers).
 *
 * Invariants checked: a refusal is a negative code with a NUL-terminated, non-empty message
 * and an empty result; an accepted config has at least one provider, each named and typed;
 * accepted offers have unique non-empty ids, non-negative prices and reliability in (0, 1],
 * and feed mk_decide (one round against a demand for one CPU) without error, with a verdict
 * for every offer. One thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "market.h"

static void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_market_config: %s\n", what);
    abort();
}

static void check_refusal(int rc, const char *err, size_t errlen)
{
    if (rc >= 0)
        return;
    if (!memchr(err, '\0', errlen) || !err[0])
        fuzz_fail("a refusal without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    mk_config c;
    int rc = mk_config_parse((const char *)data, size, &c, err, sizeof(err));
    check_refusal(rc, err, sizeof(err));
    if (rc < 0 && c.n_providers)
        fuzz_fail("a refused config left providers behind");
    if (rc == 0) {
        if (!c.n_providers)
            fuzz_fail("an accepted config without providers");
        for (size_t i = 0; i < c.n_providers; i++)
            if (!c.providers[i].name || !c.providers[i].type || !c.providers[i].offers)
                fuzz_fail("a provider without name, type or offers");
        mk_config_free(&c);
    }

    mk_offer *o;
    size_t n;
    rc = mk_offers_parse((const char *)data, size, "fuzz", &o, &n, err, sizeof(err));
    check_refusal(rc, err, sizeof(err));
    if (rc < 0) {
        if (o || n)
            fuzz_fail("refused offers left a result");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!o[i].id[0] || o[i].price_per_hour < 0 || !(o[i].reliability > 0 && o[i].reliability <= 1))
            fuzz_fail("an accepted offer breaks its invariants");
        for (size_t j = 0; j < i && n < 64; j++)
            if (!strcmp(o[i].id, o[j].id))
                fuzz_fail("duplicate offer ids accepted");
    }
    static const mk_amount cpu1[] = {{"CPU", 1}};
    mk_demand dem = {{cpu1, 1, NULL, 0}, 3};
    mk_decide_input in = {.offers = o, .n_offers = n, .demands = &dem, .n_demands = 1};
    mk_decision d;
    if (mk_decide(&in, &d) < 0)
        fuzz_fail("mk_decide refused parsed offers");
    for (size_t i = 0; i < n; i++)
        if (!d.verdicts[i].why[0])
            fuzz_fail("an offer without a verdict");
    mk_decision_free(&d);
    mk_offers_free(o, n);
    return 0;
}
