/*
 * market_score.c: failure memory. One score per (provider, offer class, region), decaying
 * exponentially with the configured half-life; each failure adds its weight. A score is
 * stored as (value, at_ms) — its value as of its last change — so it is plain data that
 * rayc-market writes to the GCS and reads back after a restart; decay is applied on read.
 *
 * Invariant: items are sorted by key (strcmp), so lookups are binary searches; the
 * decision reads one score per offer. Pure (time is an argument); single-threaded over its
 * argument.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "market.h"
#include "rc_alloc.h"

void mk_scores_init(mk_scores *s, double half_life_s)
{
    *s = (mk_scores){.half_life_s = half_life_s > 0 ? half_life_s : 600};
}

void mk_scores_free(mk_scores *s)
{
    for (size_t i = 0; i < s->n; i++)
        rc_free(s->items[i].key);
    rc_free(s->items);
    *s = (mk_scores){.half_life_s = s->half_life_s};
}

void mk_score_key(const mk_offer *o, char *out, size_t outlen)
{
    char cls[128];
    mk_offer_class(o, cls, sizeof(cls));
    snprintf(out, outlen, "%s/%s/%s", o->provider ? o->provider : "", cls, o->region ? o->region : "");
}

/* The position of key, or where it would go (*found 0). */
static size_t find(const mk_scores *s, const char *key, int *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->items[mid].key, key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static double decayed(const mk_scores *s, const mk_score *sc, int64_t now_ms)
{
    if (now_ms <= sc->at_ms)
        return sc->value;
    double age_s = (double)(now_ms - sc->at_ms) / 1000.0;
    return sc->value * exp2(-age_s / s->half_life_s);
}

double mk_score_get(const mk_scores *s, const char *key, int64_t now_ms)
{
    if (!s || !s->n)
        return 0;
    int found;
    size_t i = find(s, key, &found);
    return found ? decayed(s, &s->items[i], now_ms) : 0;
}

/* The item for key, inserted (value 0 at at_ms) when new. */
static mk_score *slot(mk_scores *s, const char *key, int64_t at_ms)
{
    int found;
    size_t i = find(s, key, &found);
    if (found)
        return &s->items[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->items = rc_realloc(s->items, s->cap * sizeof(*s->items));
    }
    memmove(&s->items[i + 1], &s->items[i], (s->n - i) * sizeof(*s->items));
    s->items[i] = (mk_score){.key = rc_strdup(key), .value = 0, .at_ms = at_ms};
    s->n++;
    return &s->items[i];
}

void mk_score_add(mk_scores *s, const char *key, double weight, int64_t now_ms)
{
    mk_score *sc = slot(s, key, now_ms);
    double v = decayed(s, sc, now_ms);
    sc->value = v + weight;
    if (now_ms > sc->at_ms)
        sc->at_ms = now_ms;
}

void mk_score_set(mk_scores *s, const char *key, double value, int64_t at_ms)
{
    mk_score *sc = slot(s, key, at_ms);
    sc->value = value;
    sc->at_ms = at_ms;
}
