/*
 * rayc-market's records as JSON: the state it keeps in the GCS to survive restarts (leases
 * with their keys, states and times, spend, failure memory, measured performance, recent
 * failures and decisions), the status `rayc market status` prints and the offers with their
 * verdicts that `rayc market offers` prints. Also the spend of a lease and the performance
 * of an offer class.
 *
 * Performance: each verification times the challenge; a class's performance is the fastest
 * time seen for it over the latest (1.0 until measured), so a host slower than its class's
 * best costs more per bundle-hour in the decision.
 *
 * Loop thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "market_daemon.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_json.h"

double mk_lease_spend(const mk_lease *l, int64_t now_ms)
{
    if (l->state < MK_ALLOCATED || !l->allocated_ms)
        return 0;
    int64_t end = l->ended_ms ? l->ended_ms : now_ms;
    double run_s = (double)(end - l->allocated_ms) / 1000.0;
    return l->price_per_hour * mk_billed_seconds(run_s < 0 ? 0 : run_s, l->billing_increment_s) / 3600.0;
}

double mk_perf_get(const market *m, const char *offer_class)
{
    for (size_t i = 0; i < m->n_perf; i++)
        if (!strcmp(m->perf[i].offer_class, offer_class))
            return m->perf[i].last_s > 0 ? m->perf[i].best_s / m->perf[i].last_s : 1.0;
    return 1.0;
}

void mk_perf_record(market *m, const char *offer_class, double seconds)
{
    if (seconds <= 0)
        return;
    for (size_t i = 0; i < m->n_perf; i++)
        if (!strcmp(m->perf[i].offer_class, offer_class)) {
            m->perf[i].last_s = seconds;
            if (seconds < m->perf[i].best_s)
                m->perf[i].best_s = seconds;
            return;
        }
    m->perf = rc_realloc(m->perf, (m->n_perf + 1) * sizeof(*m->perf));
    mk_perf *p = &m->perf[m->n_perf++];
    snprintf(p->offer_class, sizeof(p->offer_class), "%s", offer_class);
    p->best_s = p->last_s = seconds;
}

static void mk__str(rc_buf *b, const char *key, const char *value, int comma)
{
    rc_buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
    rc_buf_json_str(b, value ? value : "", value ? strlen(value) : 0);
}

static void mk__lease_json(const mk_lease *l, rc_buf *b, int full, int64_t now)
{
    rc_buf_putc(b, '{');
    mk__str(b, "lease_id", l->id, 0);
    mk__str(b, "provider", l->provider, 1);
    mk__str(b, "offer_id", l->offer_id, 1);
    mk__str(b, "offer_class", l->offer_class, 1);
    mk__str(b, "region", l->region, 1);
    mk__str(b, "state", mk_state_name(l->state), 1);
    mk__str(b, "node_id", l->node_id, 1);
    rc_buf_printf(b, ",\"price_per_hour\":%.6g", l->price_per_hour);
    rc_buf_printf(b, ",\"verified\":%s", l->verified == 1 ? "true" : "false");
    mk__str(b, "verification", l->verification, 1);
    mk__str(b, "reason", l->reason, 1);
    rc_buf_printf(b, ",\"spend\":%.6f", l->ended_ms ? l->spend : mk_lease_spend(l, now));
    if (full) {
        mk__str(b, "gpu_name", l->gpu_name, 1);
        rc_buf_printf(b, ",\"num_cpus\":%.6g,\"num_gpus\":%.6g,\"gpu_memory\":%.6g,\"memory\":%.6g", l->num_cpus,
                      l->num_gpus, l->gpu_memory, l->memory);
        rc_buf_printf(b, ",\"billing_increment_s\":%lld,\"lease_duration_s\":%lld", (long long)l->billing_increment_s,
                      (long long)l->lease_duration_s);
        rc_buf_printf(b,
                      ",\"queued_ms\":%lld,\"requested_ms\":%lld,\"allocated_ms\":%lld,\"running_ms\":%lld,"
                      "\"ended_ms\":%lld,\"next_check_ms\":%lld,\"release_at_ms\":%lld,\"verify_seconds\":%.6g",
                      (long long)l->queued_ms, (long long)l->requested_ms, (long long)l->allocated_ms,
                      (long long)l->running_ms, (long long)l->ended_ms, (long long)l->next_check_ms,
                      (long long)l->release_at_ms, l->verify_seconds);
        rc_buf_printf(b, ",\"verified_state\":%d", l->verified);
        mk__str(b, "replaced_by", l->replaced_by, 1);
    } else {
        rc_buf_printf(b, ",\"started_at\":%lld,\"ended_at\":%lld", (long long)(l->allocated_ms / 1000),
                      (long long)(l->ended_ms / 1000));
    }
    rc_buf_putc(b, '}');
}

/* The recent failures: "at" in unix seconds for the status, "at_ms" for the state. */
static void mk__failures_json(const market *m, rc_buf *b, int ms)
{
    rc_buf_puts(b, "[");
    for (size_t i = 0; i < m->n_failures; i++) {
        const mk_failure *f = &m->failures[i];
        rc_buf_puts(b, i ? ",{" : "{");
        mk__str(b, "provider", f->provider, 0);
        mk__str(b, "offer_id", f->offer_id, 1);
        mk__str(b, "reason", f->reason, 1);
        rc_buf_printf(b, ms ? ",\"at_ms\":%lld}" : ",\"at\":%lld}", (long long)(ms ? f->at_ms : f->at_ms / 1000));
    }
    rc_buf_puts(b, "]");
}

static void mk__decisions_json(const market *m, rc_buf *b)
{
    rc_buf_puts(b, "[");
    for (size_t i = 0; i < m->n_decisions; i++) {
        rc_buf_printf(b, "%s{\"at\":%lld", i ? "," : "", (long long)(m->decision_at[i] / 1000));
        mk__str(b, "text", m->decisions[i], 1);
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "]");
}

void mk_state_to_json(const market *m, rc_buf *b)
{
    int64_t now = mk_now_ms();
    rc_buf_printf(b, "{\"version\":1,\"serial\":%llu,\"spent_total\":%.9g,\"leases\":[",
                  (unsigned long long)m->serial, m->ledger.spent_total);
    for (size_t i = 0; i < m->n_leases; i++) {
        if (i)
            rc_buf_putc(b, ',');
        mk__lease_json(&m->leases[i], b, 1, now);
    }
    rc_buf_puts(b, "],\"scores\":[");
    for (size_t i = 0; i < m->scores.n; i++) {
        rc_buf_puts(b, i ? ",{" : "{");
        mk__str(b, "key", m->scores.items[i].key, 0);
        rc_buf_printf(b, ",\"value\":%.9g,\"at_ms\":%lld}", m->scores.items[i].value,
                      (long long)m->scores.items[i].at_ms);
    }
    rc_buf_puts(b, "],\"perf\":[");
    for (size_t i = 0; i < m->n_perf; i++) {
        rc_buf_puts(b, i ? ",{" : "{");
        mk__str(b, "class", m->perf[i].offer_class, 0);
        rc_buf_printf(b, ",\"best_s\":%.9g,\"last_s\":%.9g}", m->perf[i].best_s, m->perf[i].last_s);
    }
    rc_buf_puts(b, "],\"failures\":");
    mk__failures_json(m, b, 1);
    rc_buf_puts(b, ",\"decisions\":");
    mk__decisions_json(m, b);
    rc_buf_putc(b, '}');
}

/* ---- reading the state back ---------------------------------------------------------------- */

static const char *mk__s(const rc_json *o, const char *key)
{
    const rc_json *v = rc_json_get(o, key);
    return v && v->type == RC_JSON_STRING ? v->str : "";
}

static double mk__n(const rc_json *o, const char *key)
{
    const rc_json *v = rc_json_get(o, key);
    return v && v->type == RC_JSON_NUMBER ? v->number : 0;
}

static void mk__cpy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
}

int mk_state_from_json(market *m, const char *json, size_t len, char *err, size_t errlen)
{
    rc_json *root = NULL;
    if (rc_json_parse(json, len, &root, err, errlen) < 0)
        return RC_EPARSE;
    const rc_json *leases = rc_json_get(root, "leases");
    if (root->type != RC_JSON_OBJECT || !leases || leases->type != RC_JSON_ARRAY) {
        snprintf(err, errlen, "the state is not an object with \"leases\"");
        rc_json_free(root);
        return RC_EPARSE;
    }
    m->serial = (uint64_t)mk__n(root, "serial");
    m->ledger.spent_total = mk__n(root, "spent_total");
    m->leases = rc_calloc(leases->n_items + 16, sizeof(*m->leases));
    m->cap_leases = leases->n_items + 16;
    m->n_leases = 0;
    for (size_t i = 0; i < leases->n_items; i++) {
        const rc_json *o = &leases->items[i];
        int st = mk_state_parse(mk__s(o, "state"));
        if (o->type != RC_JSON_OBJECT || st < 0 || !*mk__s(o, "lease_id"))
            continue;
        mk_lease *l = &m->leases[m->n_leases++];
        mk__cpy(l->id, sizeof(l->id), mk__s(o, "lease_id"));
        mk__cpy(l->provider, sizeof(l->provider), mk__s(o, "provider"));
        mk__cpy(l->offer_id, sizeof(l->offer_id), mk__s(o, "offer_id"));
        mk__cpy(l->offer_class, sizeof(l->offer_class), mk__s(o, "offer_class"));
        mk__cpy(l->region, sizeof(l->region), mk__s(o, "region"));
        mk__cpy(l->gpu_name, sizeof(l->gpu_name), mk__s(o, "gpu_name"));
        mk__cpy(l->node_id, sizeof(l->node_id), mk__s(o, "node_id"));
        mk__cpy(l->verification, sizeof(l->verification), mk__s(o, "verification"));
        mk__cpy(l->reason, sizeof(l->reason), mk__s(o, "reason"));
        mk__cpy(l->replaced_by, sizeof(l->replaced_by), mk__s(o, "replaced_by"));
        l->state = (mk_lease_state)st;
        l->num_cpus = mk__n(o, "num_cpus");
        l->num_gpus = mk__n(o, "num_gpus");
        l->gpu_memory = mk__n(o, "gpu_memory");
        l->memory = mk__n(o, "memory");
        l->price_per_hour = mk__n(o, "price_per_hour");
        l->billing_increment_s = (int64_t)mk__n(o, "billing_increment_s");
        l->lease_duration_s = (int64_t)mk__n(o, "lease_duration_s");
        l->queued_ms = (int64_t)mk__n(o, "queued_ms");
        l->requested_ms = (int64_t)mk__n(o, "requested_ms");
        l->allocated_ms = (int64_t)mk__n(o, "allocated_ms");
        l->running_ms = (int64_t)mk__n(o, "running_ms");
        l->ended_ms = (int64_t)mk__n(o, "ended_ms");
        l->next_check_ms = (int64_t)mk__n(o, "next_check_ms");
        l->release_at_ms = (int64_t)mk__n(o, "release_at_ms");
        l->verify_seconds = mk__n(o, "verify_seconds");
        l->verified = (int)mk__n(o, "verified_state");
        l->spend = mk__n(o, "spend");
    }
    const rc_json *scores = rc_json_get(root, "scores");
    for (size_t i = 0; scores && scores->type == RC_JSON_ARRAY && i < scores->n_items; i++) {
        const rc_json *o = &scores->items[i];
        /* Stored as (value, at): adding at the same instant restores it exactly. */
        mk_score_add(&m->scores, mk__s(o, "key"), mk__n(o, "value"), (int64_t)mk__n(o, "at_ms"));
    }
    const rc_json *perf = rc_json_get(root, "perf");
    for (size_t i = 0; perf && perf->type == RC_JSON_ARRAY && i < perf->n_items; i++) {
        const rc_json *o = &perf->items[i];
        mk_perf_record(m, mk__s(o, "class"), mk__n(o, "best_s"));
        mk_perf_record(m, mk__s(o, "class"), mk__n(o, "last_s"));
    }
    const rc_json *fails = rc_json_get(root, "failures");
    for (size_t i = 0; fails && fails->type == RC_JSON_ARRAY && i < fails->n_items && i < MK_MAX_FAILURES; i++) {
        const rc_json *o = &fails->items[i];
        mk_failure *f = &m->failures[m->n_failures++];
        mk__cpy(f->provider, sizeof(f->provider), mk__s(o, "provider"));
        mk__cpy(f->offer_id, sizeof(f->offer_id), mk__s(o, "offer_id"));
        mk__cpy(f->reason, sizeof(f->reason), mk__s(o, "reason"));
        f->at_ms = (int64_t)mk__n(o, "at_ms");
    }
    const rc_json *dec = rc_json_get(root, "decisions");
    for (size_t i = 0; dec && dec->type == RC_JSON_ARRAY && i < dec->n_items && i < MK_MAX_DECISIONS; i++) {
        mk__cpy(m->decisions[m->n_decisions], sizeof(m->decisions[0]), mk__s(&dec->items[i], "text"));
        m->decision_at[m->n_decisions++] = (int64_t)mk__n(&dec->items[i], "at") * 1000;
    }
    rc_json_free(root);
    return 0;
}

/* ---- status and offers ------------------------------------------------------------------------- */

void mk_status_to_json(const market *m, rc_buf *b)
{
    int64_t now = mk_now_ms();
    double spend_total = m->ledger.spent_total;
    for (size_t i = 0; i < m->n_leases; i++)
        if (m->leases[i].state <= MK_RAY_STOPPING)
            spend_total += mk_lease_spend(&m->leases[i], now);
    rc_buf_printf(b,
                  "{\"budget_per_hour\":%.6g,\"budget_total\":%.6g,\"spend_per_hour\":%.6g,\"reserved_per_hour\":%.6g,"
                  "\"spend_total\":%.6f,\"updated_at\":%lld,\"gcs_reachable\":%s",
                  m->cfg.budget_per_hour, m->cfg.budget_total, m->ledger.committed_per_hour,
                  m->ledger.reserved_per_hour, spend_total, (long long)(now / 1000), m->gcs_ok ? "true" : "false");
    rc_buf_puts(b, ",\"providers\":[");
    for (size_t i = 0; i < m->n_providers; i++) {
        const mk_provider_slot *s = &m->providers[i];
        rc_buf_puts(b, i ? ",{" : "{");
        mk__str(b, "name", s->p->name, 0);
        mk__str(b, "type", s->p->type, 1);
        rc_buf_printf(b, ",\"reachable\":%s,\"offers\":%zu", s->reachable ? "true" : "false", s->n_offers);
        mk__str(b, "error", s->error, 1);
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "],\"leases\":[");
    for (size_t i = 0; i < m->n_leases; i++) {
        if (i)
            rc_buf_putc(b, ',');
        mk__lease_json(&m->leases[i], b, 0, now);
    }
    rc_buf_puts(b, "],\"pending\":");
    if (m->pending_json.len)
        rc_buf_append(b, m->pending_json.data, m->pending_json.len);
    else
        rc_buf_puts(b, "[]");
    rc_buf_puts(b, ",\"failures\":");
    mk__failures_json(m, b, 0);
    rc_buf_puts(b, ",\"failure_memory\":[");
    for (size_t i = 0; i < m->scores.n; i++) {
        rc_buf_puts(b, i ? ",{" : "{");
        mk__str(b, "key", m->scores.items[i].key, 0);
        rc_buf_printf(b, ",\"score\":%.4f}", mk_score_get(&m->scores, m->scores.items[i].key, now));
    }
    rc_buf_puts(b, "],\"verifications\":[");
    int first = 1;
    for (size_t i = 0; i < m->n_leases; i++) {
        const mk_lease *l = &m->leases[i];
        if (!l->verification[0])
            continue;
        rc_buf_puts(b, first ? "{" : ",{");
        first = 0;
        mk__str(b, "lease_id", l->id, 0);
        mk__str(b, "offer_class", l->offer_class, 1);
        rc_buf_printf(b, ",\"passed\":%s,\"seconds\":%.4f", l->verified == 1 ? "true" : "false", l->verify_seconds);
        mk__str(b, "detail", l->verification, 1);
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "],\"decisions\":");
    mk__decisions_json(m, b);
    rc_buf_putc(b, '}');
}

void mk_offers_to_json(const market *m, rc_buf *b)
{
    rc_buf_putc(b, '[');
    size_t k = 0;
    int64_t now = mk_now_ms();
    for (size_t i = 0; i < m->n_providers; i++) {
        const mk_provider_slot *s = &m->providers[i];
        for (size_t j = 0; j < s->n_offers; j++, k++) {
            const mk_offer *o = &s->offers[j];
            char cls[96], key[256];
            mk_offer_class(o, cls, sizeof(cls));
            mk_score_key(o, key, sizeof(key));
            const mk_offer_verdict *v =
                m->have_decision && k < m->last_decision_n_offers ? &m->last_decision.verdicts[k] : NULL;
            rc_buf_puts(b, k ? ",{" : "{");
            mk__str(b, "provider", o->provider, 0);
            mk__str(b, "id", o->id, 1);
            mk__str(b, "class", cls, 1);
            mk__str(b, "gpu_name", o->gpu_name, 1);
            rc_buf_printf(b,
                          ",\"num_gpus\":%.6g,\"gpu_memory\":%.6g,\"num_cpus\":%.6g,\"memory\":%.6g,"
                          "\"price_per_hour\":%.6g,\"billing_increment_s\":%lld",
                          o->num_gpus, o->gpu_memory, o->num_cpus, o->memory, o->price_per_hour,
                          (long long)o->billing_increment_s);
            mk__str(b, "region", o->region, 1);
            rc_buf_printf(b, ",\"reliability\":%.4g,\"performance\":%.4g,\"score\":%.4f", o->reliability,
                          mk_perf_get(m, cls), mk_score_get(&m->scores, key, now));
            if (v) {
                rc_buf_printf(b, ",\"effective_cost\":%.6g,\"eligible\":%s", v->effective_cost,
                              v->eligible ? "true" : "false");
                mk__str(b, "why", v->why, 1);
            }
            rc_buf_putc(b, '}');
        }
    }
    rc_buf_putc(b, ']');
}
