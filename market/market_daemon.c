/*
 * rayc-market's rounds (ARCHITECTURE §9). Every round_interval_ms:
 *
 *   1. read the cluster's demand and nodes (AutoscalerStateService.GetClusterResourceState)
 *      and every provider's offers and hosts (list);
 *   2. reconcile: a lease whose host the provider runs is ALLOCATED (billing from then on);
 *      one whose node registered is RAY_RUNNING and gets verified before any work; one that
 *      does not come up within the state's timeout ends in ALLOCATION_TIMEOUT; a node that
 *      died is terminated at its provider (stop paying) and the failure remembered; hosts a
 *      provider runs that no lease accounts for are terminated after a grace period;
 *   3. decide: pending demand, less what existing and coming capacity holds, is packed into
 *      offers (mk_decide: cost per satisfied bundle, gangs all or nothing, within the ledger)
 *      and each chosen host is launched with a single-use join token of its own;
 *   4. drain: a verified host idle past idle_timeout_s while nothing waits is drained
 *      (DrainNode IDLE_TERMINATION, which a busy node rejects) and released just before its
 *      next billing increment; a host whose lease nears its end is drained with PREEMPTION
 *      and its deadline, and a replacement is started ahead when it is busy;
 *   5. report what it does (ReportAutoscalingState, for `rayc status`) and keep its state,
 *      status and offers in the GCS's KV.
 *
 * Nothing is torn down on what cannot be seen: when the GCS or a provider cannot be reached,
 * no lease ends for want of a node or an instance. A lease is written to the GCS before its
 * launch (QUEUED, with its key), so a market killed at any point finds every host again on
 * restart by listing the providers with those keys; hosts with no record are orphans.
 *
 * Loop thread only.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "market_daemon.h"
#include "rayc_auth.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_log.h"

enum {
    MK__CALL_MS = 10000,
    /* A round waits this long for the cluster state; a GCS that does not answer by then
     * counts as unreachable for the round (nothing is torn down on its account). */
    MK__ROUND_CALL_MS = 4000,
    MK__ORPHAN_GRACE_MS = 30000,
    MK__FAILURE_WINDOW_MS = 10 * 60 * 1000, /* failures shown in `rayc status` */
    MK__EXPIRY_LEAD_MAX_S = 60,
    MK__TOKEN_TTL_S = 3600,
};

int64_t mk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const mk__state_names[] = {
#define MK__STATE_NAME(name) #name,
    MK_LEASE_STATES(MK__STATE_NAME)
#undef MK__STATE_NAME
};

const char *mk_state_name(mk_lease_state s)
{
    return s < MK_N_STATES ? mk__state_names[s] : "UNKNOWN";
}

int mk_state_parse(const char *name)
{
    for (int i = 0; i < MK_N_STATES; i++)
        if (!strcmp(mk__state_names[i], name))
            return i;
    return -1;
}

static int mk__live(const mk_lease *l)
{
    return l->state <= MK_RAY_STOPPING;
}

mk_lease *market_find_lease(market *m, const char *id)
{
    for (size_t i = 0; i < m->n_leases; i++)
        if (!strcmp(m->leases[i].id, id))
            return &m->leases[i];
    return NULL;
}

static mk_provider_slot *mk__provider(market *m, const char *name)
{
    for (size_t i = 0; i < m->n_providers; i++)
        if (!strcmp(m->providers[i].p->name, name))
            return &m->providers[i];
    return NULL;
}

static const mk_offer *mk__offer(market *m, const char *provider, const char *id)
{
    mk_provider_slot *s = mk__provider(m, provider);
    for (size_t i = 0; s && i < s->n_offers; i++)
        if (!strcmp(s->offers[i].id, id))
            return &s->offers[i];
    return NULL;
}

void market_log_decision(market *m, const char *fmt, ...)
{
    if (m->n_decisions == MK_MAX_DECISIONS) {
        memmove(m->decisions, m->decisions + 1, sizeof(m->decisions[0]) * (MK_MAX_DECISIONS - 1));
        memmove(m->decision_at, m->decision_at + 1, sizeof(m->decision_at[0]) * (MK_MAX_DECISIONS - 1));
        m->n_decisions--;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->decisions[m->n_decisions], sizeof(m->decisions[0]), fmt, ap);
    va_end(ap);
    m->decision_at[m->n_decisions] = mk_now_ms();
    RC_INFO("market: %s", m->decisions[m->n_decisions]);
    m->n_decisions++;
    m->dirty = 1;
}

void market_record_failure(market *m, const char *provider, const char *offer_id, const char *fmt, ...)
{
    if (m->n_failures == MK_MAX_FAILURES) {
        memmove(m->failures, m->failures + 1, sizeof(m->failures[0]) * (MK_MAX_FAILURES - 1));
        m->n_failures--;
    }
    mk_failure *f = &m->failures[m->n_failures++];
    snprintf(f->provider, sizeof(f->provider), "%s", provider);
    snprintf(f->offer_id, sizeof(f->offer_id), "%s", offer_id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
    va_end(ap);
    f->at_ms = mk_now_ms();
    RC_WARN("market: %s/%s: %s", provider, offer_id, f->reason);
    m->dirty = 1;
}

/* The failure-memory key of a lease's offer. */
static void mk__lease_score_key(const mk_lease *l, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s/%s", l->provider, l->offer_class, l->region);
}

static void mk__score_down(market *m, const mk_lease *l, double weight)
{
    char key[256];
    mk__lease_score_key(l, key, sizeof(key));
    mk_score_add(&m->scores, key, weight, mk_now_ms());
}

void market_end_lease(market *m, mk_lease *l, mk_lease_state final, const char *fmt, ...)
{
    /* Formatted aside first: callers pass l->reason itself as an argument (a drained
     * lease ends with the reason it was drained for), and vsnprintf into its own source
     * is undefined (it left the reason empty). */
    char reason[sizeof(l->reason)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    memcpy(l->reason, reason, sizeof(l->reason));
    int64_t now = mk_now_ms();
    mk_provider_slot *s = mk__provider(m, l->provider);
    if (l->state >= MK_REQUESTED && s) {
        char err[512] = "";
        if (s->p->ops->terminate(s->p, l->id, err, sizeof(err)) < 0) {
            /* Not gone yet: keep the lease live and try again next round. */
            RC_WARN("market: cannot terminate %s at %s yet: %s", l->id, l->provider, err);
            s->reachable = 0;
            snprintf(s->error, sizeof(s->error), "%s", err);
            return;
        }
        /* Gone from this round's listing too, so it is not taken for an orphan. */
        for (size_t i = 0; i < s->n_instances; i++)
            if (!strcmp(s->instances[i].key, l->id))
                s->instances[i] = s->instances[--s->n_instances];
    }
    if (l->state >= MK_ALLOCATED) {
        double run_s = (double)(now - l->allocated_ms) / 1000.0;
        l->spend = mk_lease_spend(l, now);
        mk_ledger_end(&m->ledger, l->price_per_hour, l->billing_increment_s, mk_billed_seconds(run_s, l->billing_increment_s));
    } else {
        mk_ledger_release(&m->ledger, l->price_per_hour, l->billing_increment_s);
    }
    RC_INFO("market: lease %s (%s/%s) %s -> %s: %s; spend $%.4f", l->id, l->provider, l->offer_id,
            mk_state_name(l->state), mk_state_name(final), l->reason, l->spend);
    l->state = final;
    l->ended_ms = now;
    m->dirty = 1;
}

/* ---- persistence -------------------------------------------------------------------------- */

typedef struct mk__put {
    market *m;
    void (*then)(market *m, void *arg, int ok);
    void *arg;
} mk__put;

static void mk__put_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    mk__put *p = arg;
    int ok = st->code == GRPC_STATUS_OK && gcs_reply_status(reply, NULL) == GCS_STATUS_OK;
    if (!ok)
        RC_WARN("market: cannot store its records in the GCS: %s", st->code ? st->message : "refused");
    rpc_msg_free(reply);
    if (p->then)
        p->then(p->m, p->arg, ok);
    rc_free(p);
}

static void mk__kv_put(market *m, const char *key, const rc_buf *value, void (*then)(market *, void *, int),
                       void *arg)
{
    Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    req.value.data = (uint8_t *)(value->data ? value->data : "");
    req.value.len = value->len;
    req.overwrite = 1;
    req.namespace_.data = (uint8_t *)MK_KV_NAMESPACE;
    req.namespace_.len = strlen(MK_KV_NAMESPACE);
    mk__put *p = rc_calloc(1, sizeof(*p));
    p->m = m;
    p->then = then;
    p->arg = arg;
    if (rpc_client_call(gcs_client_rpc(m->gcs), &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut",
                        &req.base, MK__CALL_MS, mk__put_done, p) < 0) {
        if (then)
            then(m, arg, 0);
        rc_free(p);
    }
}

static void mk__persisted(market *m, void *arg, int ok)
{
    (void)arg;
    if (!ok)
        m->dirty = 1;
    else if (m->exit_persisting)
        m->exit_persisted = 1;
}

void market_persist(market *m)
{
    rc_buf b = {0};
    mk_state_to_json(m, &b);
    m->dirty = 0;
    mk__kv_put(m, MK_KV_STATE, &b, mk__persisted, NULL);
    rc_buf_free(&b);
}

static void mk__publish(market *m)
{
    rc_buf b = {0};
    mk_status_to_json(m, &b);
    mk__kv_put(m, MK_KV_STATUS, &b, NULL, NULL);
    rc_buf_clear(&b);
    mk_offers_to_json(m, &b);
    mk__kv_put(m, MK_KV_OFFERS, &b, NULL, NULL);
    rc_buf_free(&b);
}

/* ---- launching ----------------------------------------------------------------------------- */

static mk_lease *mk__new_lease(market *m)
{
    if (m->n_leases == m->cap_leases) {
        m->cap_leases = m->cap_leases ? m->cap_leases * 2 : 16;
        m->leases = rc_realloc(m->leases, m->cap_leases * sizeof(*m->leases));
    }
    mk_lease *l = &m->leases[m->n_leases++];
    memset(l, 0, sizeof(*l));
    uint8_t rnd[4];
    rc_id_random(rnd, sizeof(rnd));
    snprintf(l->id, sizeof(l->id), "lease-%04llx%02x%02x%02x%02x", (unsigned long long)(++m->serial & 0xffff), rnd[0],
             rnd[1], rnd[2], rnd[3]);
    return l;
}

typedef struct mk__launch_ctx {
    market *m;
    char lease_id[24];
} mk__launch_ctx;

static void mk__launch_failed(market *m, mk_lease *l, const char *why)
{
    market_record_failure(m, l->provider, l->offer_id, "launch failed: %s", why);
    mk__score_down(m, l, 1.0);
    market_end_lease(m, l, MK_ALLOCATION_FAILED, "%s", why);
    market_log_decision(m, "%s (%s/%s) failed to launch: %s; the next-cheapest offer is used while this class "
                           "is scored down",
                        l->id, l->provider, l->offer_id, why);
}

static void mk__token_made(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    mk__launch_ctx *c = arg;
    market *m = c->m;
    mk_lease *l = market_find_lease(m, c->lease_id);
    const Rayc__Rpc__CreateJoinTokenReply *r = (const void *)reply;
    const char *msg = NULL;
    if (!l || l->state != MK_QUEUED) {
        /* ended meanwhile */
    } else if (st->code != GRPC_STATUS_OK || gcs_reply_status(reply, &msg) != GCS_STATUS_OK || !r->join_token) {
        l->busy = 0;
        RC_WARN("market: no join token for %s yet: %s", l->id, st->code ? st->message : msg);
    } else {
        l->busy = 0;
        mk_provider_slot *s = mk__provider(m, l->provider);
        const mk_offer *o = mk__offer(m, l->provider, l->offer_id);
        char err[512] = "";
        int rc = RC_ENOENT;
        if (!s || !o) {
            snprintf(err, sizeof(err), "offer %s is no longer offered by %s", l->offer_id, l->provider);
        } else {
            mk_join join = {.gcs_address = gcs_client_address(m->gcs),
                            .join_token = r->join_token,
                            .ca_cert_file = m->ca_file,
                            .ca_cert_pem = m->ca_pem,
                            .lease_id = l->id,
                            .verify_delay_s = m->cfg.verify_time_limit_s * 2 + 1};
            rc = s->p->ops->launch(s->p, o, &join, mk_now_ms(), err, sizeof(err));
        }
        if (rc < 0 && rc == RC_EUNAVAIL && s && !strstr(err, "launch refused")) {
            /* The provider is away: the lease stays QUEUED and is tried again. */
            s->reachable = 0;
            snprintf(s->error, sizeof(s->error), "%s", err);
        } else if (rc < 0) {
            mk__launch_failed(m, l, err);
        } else {
            l->state = MK_REQUESTED;
            l->requested_ms = mk_now_ms();
            m->dirty = 1;
            market_persist(m);
        }
    }
    rpc_msg_free(reply);
    rc_free(c);
}

/* A queued lease gets its single-use join token, then its launch. */
static void mk__launch(market *m, mk_lease *l)
{
    if (l->busy)
        return;
    Rayc__Rpc__CreateJoinTokenRequest req = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__INIT;
    req.ttl_seconds = MK__TOKEN_TTL_S;
    req.max_uses = 1;
    req.require_verification = m->cfg.verify ? 1 : 0;
    Rayc__Rpc__CreateJoinTokenRequest__LabelsEntry e = RAYC__RPC__CREATE_JOIN_TOKEN_REQUEST__LABELS_ENTRY__INIT;
    Rayc__Rpc__CreateJoinTokenRequest__LabelsEntry *ep = &e;
    e.key = MK_LEASE_LABEL;
    e.value = l->id;
    req.labels = &ep;
    req.n_labels = 1;
    mk__launch_ctx *c = rc_calloc(1, sizeof(*c));
    c->m = m;
    snprintf(c->lease_id, sizeof(c->lease_id), "%s", l->id);
    l->busy = 1;
    if (rpc_client_call(gcs_client_rpc(m->gcs), &rayc__rpc__auth_service__descriptor, "CreateJoinToken", &req.base,
                        MK__CALL_MS, mk__token_made, c) < 0) {
        l->busy = 0;
        rc_free(c);
    }
}

/* The lease record reached the GCS: now it may be launched. */
static void mk__queued_stored(market *m, void *arg, int ok)
{
    char *id = arg;
    mk_lease *l = market_find_lease(m, id);
    if (ok && l && l->state == MK_QUEUED)
        mk__launch(m, l);
    rc_free(id);
}

/* ---- demand ---------------------------------------------------------------------------------- */

/* The decision's input, built from the cluster state; everything points into it. */
typedef struct mk__input {
    mk_demand *demands;
    size_t n_demands;
    mk_gang *gangs;
    size_t n_gangs;
    mk_capacity *capacity;
    size_t n_capacity;
    /* storage */
    mk_amount *amounts;
    size_t n_amounts, cap_amounts;
    mk_label_cond *conds;
    size_t n_conds, cap_conds;
    const char **strs;
    size_t n_strs, cap_strs;
    mk_bundle *bundles;
    size_t n_bundles, cap_bundles;
    const Ray__Rpc__Autoscaler__ResourceRequest **demand_src; /* per demand */
    const Ray__Rpc__Autoscaler__GangResourceRequest **gang_src; /* per gang */
    /* synthetic shapes (replacements for expiring leases) */
    char *names;
} mk__input;

/* The arrays grow in chunks allocated up front per call so pointers stay valid: sizes are
 * counted first. */
static void mk__bundle_from(mk__input *in, const Ray__Rpc__Autoscaler__ResourceRequest *r, mk_bundle *out)
{
    out->res = &in->amounts[in->n_amounts];
    out->n_res = 0;
    for (size_t i = 0; i < r->n_resources_bundle; i++) {
        in->amounts[in->n_amounts++] = (mk_amount){r->resources_bundle[i]->key, r->resources_bundle[i]->value};
        out->n_res++;
    }
    out->conds = &in->conds[in->n_conds];
    out->n_conds = 0;
    for (size_t s = 0; s < r->n_label_selectors; s++) {
        const Ray__Rpc__LabelSelector *sel = r->label_selectors[s];
        for (size_t c = 0; c < sel->n_label_constraints; c++) {
            const Ray__Rpc__LabelSelectorConstraint *lc = sel->label_constraints[c];
            mk_label_cond *cond = &in->conds[in->n_conds++];
            cond->key = lc->label_key;
            cond->values = (const char **)&in->strs[in->n_strs];
            cond->n_values = lc->n_label_values;
            for (size_t v = 0; v < lc->n_label_values; v++)
                in->strs[in->n_strs++] = lc->label_values[v];
            cond->negate = lc->operator_ == RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_NOT_IN;
            out->n_conds++;
        }
    }
}

static void mk__count(const Ray__Rpc__Autoscaler__ResourceRequest *r, size_t *amounts, size_t *conds, size_t *strs)
{
    *amounts += r->n_resources_bundle;
    for (size_t s = 0; s < r->n_label_selectors; s++) {
        *conds += r->label_selectors[s]->n_label_constraints;
        for (size_t c = 0; c < r->label_selectors[s]->n_label_constraints; c++)
            *strs += r->label_selectors[s]->label_constraints[c]->n_label_values;
    }
}

static const char *const mk__res_names[] = {"CPU", "GPU", "memory"};

static const Ray__Rpc__Autoscaler__NodeState *mk__node_of(market *m, const mk_lease *l);

/* Whether the cluster state this round read counts a lease's node among the nodes that take
 * work (running or idle, resources reported). Until it does, the lease is capacity on its
 * way, even once it has passed its check here: the state was read before the verdict
 * reached the GCS (which holds an unverified node out as draining), and counting the host
 * neither there nor here leased a duplicate for demand it was about to take. */
static int mk__schedulable(market *m, const mk_lease *l)
{
    const Ray__Rpc__Autoscaler__NodeState *ns = mk__node_of(m, l);
    return ns && ns->n_total_resources > 0 &&
           (ns->status == RAY__RPC__AUTOSCALER__NODE_STATUS__RUNNING ||
            ns->status == RAY__RPC__AUTOSCALER__NODE_STATUS__IDLE);
}

static void mk__input_build(market *m, mk__input *in)
{
    memset(in, 0, sizeof(*in));
    const Ray__Rpc__Autoscaler__ClusterResourceState *cs = m->cluster;
    size_t amounts = 0, conds = 0, strs = 0, bundles = 0;
    for (size_t i = 0; i < cs->n_pending_resource_requests; i++)
        if (cs->pending_resource_requests[i]->request)
            mk__count(cs->pending_resource_requests[i]->request, &amounts, &conds, &strs);
    for (size_t g = 0; g < cs->n_pending_gang_resource_requests; g++)
        for (size_t i = 0; i < cs->pending_gang_resource_requests[g]->n_requests; i++) {
            mk__count(cs->pending_gang_resource_requests[g]->requests[i], &amounts, &conds, &strs);
            bundles++;
        }
    size_t n_nodes = cs->n_node_states;
    for (size_t i = 0; i < n_nodes; i++)
        amounts += cs->node_states[i]->n_available_resources;
    amounts += (m->n_leases + 1) * 3 * 2; /* coming capacity and replacement shapes */
    in->amounts = rc_calloc(amounts + 1, sizeof(*in->amounts));
    in->conds = rc_calloc(conds + 1, sizeof(*in->conds));
    in->strs = rc_calloc(strs + 1, sizeof(*in->strs));
    in->bundles = rc_calloc(bundles + 1, sizeof(*in->bundles));
    in->demands = rc_calloc(cs->n_pending_resource_requests + m->n_leases + 1, sizeof(*in->demands));
    in->demand_src = rc_calloc(cs->n_pending_resource_requests + m->n_leases + 1, sizeof(*in->demand_src));
    in->gangs = rc_calloc(cs->n_pending_gang_resource_requests + 1, sizeof(*in->gangs));
    in->gang_src = rc_calloc(cs->n_pending_gang_resource_requests + 1, sizeof(*in->gang_src));
    in->capacity = rc_calloc(n_nodes + m->n_leases + 1, sizeof(*in->capacity));

    for (size_t i = 0; i < cs->n_pending_resource_requests; i++) {
        const Ray__Rpc__Autoscaler__ResourceRequestByCount *rc = cs->pending_resource_requests[i];
        if (!rc->request || rc->count <= 0)
            continue;
        mk_demand *d = &in->demands[in->n_demands];
        mk__bundle_from(in, rc->request, &d->shape);
        d->count = rc->count;
        in->demand_src[in->n_demands++] = rc->request;
    }
    for (size_t g = 0; g < cs->n_pending_gang_resource_requests; g++) {
        const Ray__Rpc__Autoscaler__GangResourceRequest *gr = cs->pending_gang_resource_requests[g];
        if (!gr->n_requests)
            continue;
        in->gang_src[in->n_gangs] = gr;
        mk_gang *gang = &in->gangs[in->n_gangs++];
        gang->bundles = &in->bundles[in->n_bundles];
        gang->details = gr->details;
        int spread = 1, pack = 1;
        for (size_t i = 0; i < gr->n_requests; i++) {
            const Ray__Rpc__Autoscaler__ResourceRequest *r = gr->requests[i];
            mk__bundle_from(in, r, &in->bundles[in->n_bundles++]);
            int anti = 0, aff = 0;
            for (size_t c = 0; c < r->n_placement_constraints; c++) {
                anti |= r->placement_constraints[c]->anti_affinity != NULL;
                aff |= r->placement_constraints[c]->affinity != NULL;
            }
            spread &= anti;
            pack &= aff;
        }
        gang->n_bundles = gr->n_requests;
        gang->strict_spread = spread;
        gang->strict_pack = pack && gr->n_requests > 1;
    }
    /* Capacity: what alive, schedulable nodes have free now ... */
    for (size_t i = 0; i < n_nodes; i++) {
        const Ray__Rpc__Autoscaler__NodeState *ns = cs->node_states[i];
        if (ns->status != RAY__RPC__AUTOSCALER__NODE_STATUS__RUNNING &&
            ns->status != RAY__RPC__AUTOSCALER__NODE_STATUS__IDLE)
            continue;
        mk_capacity *c = &in->capacity[in->n_capacity++];
        c->res = &in->amounts[in->n_amounts];
        for (size_t k = 0; k < ns->n_available_resources; k++) {
            in->amounts[in->n_amounts++] =
                (mk_amount){ns->available_resources[k]->key, ns->available_resources[k]->value};
            c->n_res++;
        }
    }
    /* ... and what leases on their way will bring (not yet running, or not yet verified). */
    for (size_t i = 0; i < m->n_leases; i++) {
        const mk_lease *l = &m->leases[i];
        int coming = l->state == MK_QUEUED || l->state == MK_REQUESTED || l->state == MK_ALLOCATED ||
                     (l->state == MK_RAY_RUNNING && l->verified >= 0 && !mk__schedulable(m, l));
        if (!coming)
            continue;
        mk_capacity *c = &in->capacity[in->n_capacity++];
        c->res = &in->amounts[in->n_amounts];
        double v[3] = {l->num_cpus, l->num_gpus, l->memory * 1073741824.0};
        for (int k = 0; k < 3; k++)
            if (v[k] > 0) {
                in->amounts[in->n_amounts++] = (mk_amount){mk__res_names[k], v[k]};
                c->n_res++;
            }
    }
    /* A busy host whose lease ends soon needs a successor of its size. */
    for (size_t i = 0; i < m->n_leases; i++) {
        mk_lease *l = &m->leases[i];
        if (l->state != MK_RAY_STOPPING || l->replaced_by[0] || strncmp(l->reason, "lease ends", 10) || l->idle_ms > 0)
            continue;
        mk_demand *d = &in->demands[in->n_demands];
        d->shape.res = &in->amounts[in->n_amounts];
        double v[2] = {l->num_cpus, l->num_gpus};
        for (int k = 0; k < 2; k++)
            if (v[k] > 0) {
                in->amounts[in->n_amounts++] = (mk_amount){mk__res_names[k], v[k]};
                d->shape.n_res++;
            }
        d->count = 1;
        in->demand_src[in->n_demands++] = NULL;
    }
}

static void mk__input_free(mk__input *in)
{
    rc_free(in->amounts);
    rc_free(in->conds);
    rc_free(in->strs);
    rc_free(in->bundles);
    rc_free(in->demands);
    rc_free(in->demand_src);
    rc_free(in->gang_src);
    rc_free(in->gangs);
    rc_free(in->capacity);
}

/* ---- the decision ------------------------------------------------------------------------------ */

typedef struct mk__offers {
    mk_offer *items; /* shallow copies of the providers' offers */
    int *leased;
    size_t n;
} mk__offers;

static void mk__offers_collect(market *m, mk__offers *o)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_providers; i++)
        n += m->providers[i].n_offers;
    o->items = rc_calloc(n + 1, sizeof(*o->items));
    o->leased = rc_calloc(n + 1, sizeof(*o->leased));
    o->n = 0;
    for (size_t i = 0; i < m->n_providers; i++) {
        mk_provider_slot *s = &m->providers[i];
        for (size_t k = 0; k < s->n_offers; k++) {
            o->items[o->n] = s->offers[k];
            for (size_t j = 0; j < m->n_leases; j++) {
                const mk_lease *l = &m->leases[j];
                if (mk__live(l) && !strcmp(l->provider, s->p->name) && !strcmp(l->offer_id, s->offers[k].id))
                    o->leased[o->n]++;
            }
            o->n++;
        }
    }
}

static double mk__perf_cb(const char *offer_class, void *arg)
{
    return mk_perf_get(arg, offer_class);
}

static int mk__class_hosts_cb(const char *offer_class, void *arg)
{
    market *m = arg;
    int n = 0;
    for (size_t i = 0; i < m->n_leases; i++)
        if (mk__live(&m->leases[i]) && m->leases[i].state != MK_RAY_STOPPING &&
            !strcmp(m->leases[i].offer_class, offer_class))
            n++;
    return n;
}

static void mk__shape_text(const mk_bundle *b, rc_buf *out)
{
    rc_buf_putc(out, '{');
    for (size_t i = 0; i < b->n_res; i++)
        rc_buf_printf(out, "%s'%s': %g", i ? ", " : "", b->res[i].name, b->res[i].value);
    rc_buf_putc(out, '}');
}

/* Keeps the infeasible requests for the report and the status. */
static void mk__keep_infeasible(market *m, const mk__input *in, const mk_decision *d)
{
    for (size_t i = 0; i < m->n_infeasible; i++) {
        rpc_msg_free(&m->infeasible[i]->base);
        rc_free(m->infeasible_reasons[i]);
    }
    rc_free(m->infeasible);
    rc_free(m->infeasible_reasons);
    for (size_t i = 0; i < m->n_infeasible_gangs; i++)
        rpc_msg_free(&m->infeasible_gangs[i]->base);
    rc_free(m->infeasible_gangs);
    m->infeasible_gangs = rc_calloc(d->n_infeasible + 1, sizeof(*m->infeasible_gangs));
    m->n_infeasible_gangs = 0;
    m->infeasible = rc_calloc(d->n_infeasible + 1, sizeof(*m->infeasible));
    m->infeasible_reasons = rc_calloc(d->n_infeasible + 1, sizeof(*m->infeasible_reasons));
    m->n_infeasible = 0;
    rc_buf_clear(&m->pending_json);
    rc_buf_putc(&m->pending_json, '[');
    for (size_t i = 0; i < d->n_infeasible; i++) {
        const mk_infeasible *f = &d->infeasible[i];
        const mk_bundle *b = NULL;
        if (f->is_gang && f->index < in->n_gangs)
            b = in->gangs[f->index].n_bundles ? &in->gangs[f->index].bundles[0] : NULL;
        else if (!f->is_gang && f->index < in->n_demands)
            b = &in->demands[f->index].shape;
        rc_buf shape = {0};
        if (b)
            mk__shape_text(b, &shape);
        rc_buf_printf(&m->pending_json, "%s{\"shape\":", i ? "," : "");
        rc_buf_json_str(&m->pending_json, shape.data ? shape.data : "{}", shape.len);
        rc_buf_printf(&m->pending_json, ",\"count\":%lld,\"gang\":%s", (long long)f->count, f->is_gang ? "true" : "false");
        if (f->is_gang && f->index < in->n_gangs) {
            rc_buf_puts(&m->pending_json, ",\"details\":");
            const char *det = in->gangs[f->index].details ? in->gangs[f->index].details : "";
            rc_buf_json_str(&m->pending_json, det, strlen(det));
        }
        rc_buf_puts(&m->pending_json, ",\"reason\":");
        rc_buf_json_str(&m->pending_json, f->reason, strlen(f->reason));
        rc_buf_putc(&m->pending_json, '}');
        rc_buf_free(&shape);
        if (f->is_gang && f->index < in->n_gangs && in->gang_src[f->index]) {
            Ray__Rpc__Autoscaler__GangResourceRequest *g =
                (Ray__Rpc__Autoscaler__GangResourceRequest *)rpc_msg_dup(&in->gang_src[f->index]->base);
            rc_buf det = {0};
            rc_buf_printf(&det, "%s: %s", g->details && g->details[0] ? g->details : "placement group", f->reason);
            rc_free(g->details);
            g->details = rc_strdup(det.data);
            rc_buf_free(&det);
            m->infeasible_gangs[m->n_infeasible_gangs++] = g;
        }
        if (!f->is_gang && f->index < in->n_demands && in->demand_src[f->index]) {
            m->infeasible[m->n_infeasible] =
                (Ray__Rpc__Autoscaler__ResourceRequest *)rpc_msg_dup(&in->demand_src[f->index]->base);
            m->infeasible_reasons[m->n_infeasible] = rc_strdup(f->reason);
            m->n_infeasible++;
        }
    }
    rc_buf_putc(&m->pending_json, ']');
}

static void mk__decide_and_launch(market *m)
{
    mk__input in;
    mk__input_build(m, &in);
    mk__offers offers;
    mk__offers_collect(m, &offers);
    mk_decide_input di = {
        .offers = offers.items,
        .n_offers = offers.n,
        .leased = offers.leased,
        .demands = in.demands,
        .n_demands = in.n_demands,
        .gangs = in.gangs,
        .n_gangs = in.n_gangs,
        .capacity = in.capacity,
        .n_capacity = in.n_capacity,
        .ledger = &m->ledger,
        .scores = &m->scores,
        .config = &m->cfg,
        .performance = mk__perf_cb,
        .performance_arg = m,
        .class_hosts = mk__class_hosts_cb,
        .class_hosts_arg = m,
        .now_ms = mk_now_ms(),
    };
    if (m->have_decision)
        mk_decision_free(&m->last_decision);
    memset(&m->last_decision, 0, sizeof(m->last_decision));
    m->have_decision = 0;
    if (mk_decide(&di, &m->last_decision) < 0) {
        RC_WARN("market: the decision failed");
        goto out;
    }
    m->have_decision = 1;
    m->last_decision_n_offers = offers.n;
    mk_decision *d = &m->last_decision;
    mk__keep_infeasible(m, &in, d);
    for (size_t i = 0; i < d->n_launches && !m->stopping; i++) {
        const mk_launch *ln = &d->launches[i];
        const mk_offer *o = &offers.items[ln->offer];
        char why[256] = "";
        if (mk_ledger_reserve(&m->ledger, o->price_per_hour, o->billing_increment_s, why, sizeof(why)) < 0) {
            market_log_decision(m, "offer %s/%s not launched: %s", o->provider, o->id, why);
            continue;
        }
        mk_lease *l = mk__new_lease(m);
        snprintf(l->provider, sizeof(l->provider), "%s", o->provider);
        snprintf(l->offer_id, sizeof(l->offer_id), "%s", o->id);
        mk_offer_class(o, l->offer_class, sizeof(l->offer_class));
        snprintf(l->region, sizeof(l->region), "%s", o->region ? o->region : "");
        snprintf(l->gpu_name, sizeof(l->gpu_name), "%s", o->gpu_name ? o->gpu_name : "");
        l->num_cpus = o->num_cpus;
        l->num_gpus = o->num_gpus;
        l->gpu_memory = o->gpu_memory;
        l->memory = o->memory;
        l->price_per_hour = o->price_per_hour;
        l->billing_increment_s = o->billing_increment_s;
        l->lease_duration_s = o->lease_duration_s;
        l->state = MK_QUEUED;
        l->queued_ms = mk_now_ms();
        /* The alternatives, cheapest first, with why they were not chosen. */
        rc_buf alt = {0};
        size_t shown = 0;
        for (size_t k = 0; k < offers.n && shown < 4; k++) {
            if (k == ln->offer)
                continue;
            const mk_offer_verdict *v = &d->verdicts[k];
            rc_buf_printf(&alt, "%s%s/%s ($%.3f/h, effective $%.3f): %s", shown ? "; " : "", offers.items[k].provider,
                          offers.items[k].id, offers.items[k].price_per_hour, v->effective_cost,
                          v->why[0] ? v->why : "costs more per satisfied bundle");
            shown++;
        }
        market_log_decision(m, "%s: chose %s/%s (%s, $%.3f/h, effective $%.3f) for %d pending bundle%s; "
                               "alternatives: %s",
                            l->id, o->provider, o->id, l->offer_class, o->price_per_hour, ln->effective_cost,
                            ln->bundles, ln->bundles == 1 ? "" : "s", alt.len ? alt.data : "none");
        rc_buf_free(&alt);
        /* A successor for an expiring busy host. */
        for (size_t j = 0; j + 1 < m->n_leases; j++) {
            mk_lease *old = &m->leases[j];
            if (old->state == MK_RAY_STOPPING && !old->replaced_by[0] && !strncmp(old->reason, "lease ends", 10) &&
                old->idle_ms == 0) {
                snprintf(old->replaced_by, sizeof(old->replaced_by), "%s", l->id);
                break;
            }
        }
        /* Written down before it is launched: a market killed now finds it again. */
        rc_buf b = {0};
        mk_state_to_json(m, &b);
        mk__kv_put(m, MK_KV_STATE, &b, mk__queued_stored, rc_strdup(l->id));
        rc_buf_free(&b);
    }
out:
    rc_free(offers.items);
    rc_free(offers.leased);
    mk__input_free(&in);
}

/* ---- reconciliation ------------------------------------------------------------------------------ */

static const Ray__Rpc__Autoscaler__NodeState *mk__node_of(market *m, const mk_lease *l)
{
    const Ray__Rpc__Autoscaler__ClusterResourceState *cs = m->cluster;
    const Ray__Rpc__Autoscaler__NodeState *found = NULL;
    for (size_t i = 0; cs && i < cs->n_node_states; i++) {
        const Ray__Rpc__Autoscaler__NodeState *ns = cs->node_states[i];
        for (size_t k = 0; k < ns->n_labels; k++)
            if (!strcmp(ns->labels[k]->key, MK_LEASE_LABEL) && !strcmp(ns->labels[k]->value, l->id)) {
                /* A live registration wins over an older dead one. */
                if (!found || ns->status != RAY__RPC__AUTOSCALER__NODE_STATUS__DEAD)
                    found = ns;
            }
    }
    return found;
}

static const mk_instance *mk__instance(const mk_provider_slot *s, const char *key)
{
    for (size_t i = 0; s && i < s->n_instances; i++)
        if (!strcmp(s->instances[i].key, key))
            return &s->instances[i];
    return NULL;
}

static void mk__list_providers(market *m)
{
    for (size_t i = 0; i < m->n_providers; i++) {
        mk_provider_slot *s = &m->providers[i];
        rc_free(s->instances);
        s->instances = NULL;
        s->n_instances = 0;
        char err[512] = "";
        int rc = s->p->ops->list(s->p, &s->instances, &s->n_instances, err, sizeof(err));
        s->listed = rc == 0;
        if (rc < 0) {
            if (s->reachable)
                market_log_decision(m, "provider %s cannot be listed (%s): its hosts are left as they are", s->p->name,
                                    err);
            s->reachable = 0;
            snprintf(s->error, sizeof(s->error), "%s", err);
        } else {
            if (!s->reachable)
                market_log_decision(m, "provider %s is reachable again", s->p->name);
            s->reachable = 1;
            s->error[0] = '\0';
        }
    }
}

/* Hosts a provider runs with no live lease: terminated once they stay so for the grace. */
static void mk__orphans(market *m, int64_t now)
{
    /* Suspects no longer listed are gone by themselves. */
    for (size_t j = 0; j < m->n_orphans;) {
        mk_provider_slot *s = mk__provider(m, m->orphans[j].provider);
        if (!s || (s->listed && !mk__instance(s, m->orphans[j].key)))
            m->orphans[j] = m->orphans[--m->n_orphans];
        else
            j++;
    }
    for (size_t i = 0; i < m->n_providers; i++) {
        mk_provider_slot *s = &m->providers[i];
        if (!s->listed)
            continue;
        for (size_t k = 0; k < s->n_instances; k++) {
            const mk_instance *inst = &s->instances[k];
            mk_lease *l = market_find_lease(m, inst->key);
            if (l && mk__live(l))
                continue;
            size_t j = 0;
            while (j < m->n_orphans && (strcmp(m->orphans[j].key, inst->key) || strcmp(m->orphans[j].provider, s->p->name)))
                j++;
            if (j == m->n_orphans) {
                m->orphans = rc_realloc(m->orphans, (m->n_orphans + 1) * sizeof(*m->orphans));
                mk_orphan *o = &m->orphans[m->n_orphans++];
                snprintf(o->provider, sizeof(o->provider), "%s", s->p->name);
                snprintf(o->key, sizeof(o->key), "%s", inst->key);
                o->first_seen_ms = now;
                market_log_decision(m, "provider %s runs %s, which no lease accounts for: terminated in %lld s unless "
                                       "claimed",
                                    s->p->name, inst->key, (long long)(m->orphan_grace_ms / 1000));
                continue;
            }
            if (now - m->orphans[j].first_seen_ms < m->orphan_grace_ms)
                continue;
            char err[512] = "";
            if (s->p->ops->terminate(s->p, inst->key, err, sizeof(err)) == 0) {
                market_log_decision(m, "orphan %s at %s terminated", inst->key, s->p->name);
                m->orphans[j] = m->orphans[--m->n_orphans];
            }
        }
    }
}

static void mk__drain_done(const rpc_status *st, ProtobufCMessage *reply, void *arg);

typedef struct mk__drain_ctx {
    market *m;
    char lease_id[24];
    int preemption;
    int64_t deadline_ms;
} mk__drain_ctx;

static void mk__drain(market *m, mk_lease *l, int preemption, int64_t deadline_ms, const char *why)
{
    Ray__Rpc__Autoscaler__DrainNodeRequest req = RAY__RPC__AUTOSCALER__DRAIN_NODE_REQUEST__INIT;
    uint8_t id[RC_NODE_ID_SIZE];
    if (rc_id_from_hex(l->node_id, id, sizeof(id)) < 0)
        return;
    req.node_id.data = id;
    req.node_id.len = sizeof(id);
    req.reason = preemption ? RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_PREEMPTION
                            : RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_IDLE_TERMINATION;
    req.reason_message = (char *)why;
    req.deadline_timestamp_ms = deadline_ms;
    mk__drain_ctx *c = rc_calloc(1, sizeof(*c));
    c->m = m;
    snprintf(c->lease_id, sizeof(c->lease_id), "%s", l->id);
    c->preemption = preemption;
    c->deadline_ms = deadline_ms;
    l->busy = 1;
    if (rpc_client_call(gcs_client_rpc(m->gcs), &ray__rpc__autoscaler__autoscaler_state_service__descriptor,
                        "DrainNode", &req.base, MK__CALL_MS, mk__drain_done, c) < 0) {
        l->busy = 0;
        rc_free(c);
    }
}

static void mk__drain_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    mk__drain_ctx *c = arg;
    market *m = c->m;
    mk_lease *l = market_find_lease(m, c->lease_id);
    const Ray__Rpc__Autoscaler__DrainNodeReply *r = (const void *)reply;
    if (l) {
        l->busy = 0;
        if (st->code != GRPC_STATUS_OK) {
            RC_WARN("market: DrainNode for %s failed: %s", l->id, st->message);
        } else if (!r->is_accepted) {
            market_log_decision(m, "%s: idle drain rejected by its node (%s); it stays", l->id,
                                r->rejection_reason_message ? r->rejection_reason_message : "");
        } else if (l->state == MK_RAY_RUNNING) {
            int64_t now = mk_now_ms();
            l->state = MK_RAY_STOPPING;
            if (c->preemption) {
                l->release_at_ms = c->deadline_ms;
                snprintf(l->reason, sizeof(l->reason), "lease ends at its provider");
            } else {
                /* Released just before the next billing increment: the time until then is
                 * paid for anyway. */
                int64_t inc = l->billing_increment_s * 1000, ran = now - l->allocated_ms;
                int64_t margin = inc / 10 < 5000 ? inc / 10 : 5000;
                l->release_at_ms = inc > 0 ? l->allocated_ms + ((ran + inc - 1) / inc) * inc - margin : now;
                if (l->release_at_ms < now)
                    l->release_at_ms = now;
                snprintf(l->reason, sizeof(l->reason), "idle past %llds with nothing pending",
                         (long long)m->cfg.idle_timeout_s);
            }
            market_log_decision(m, "%s drained (%s); released in %lld s", l->id, l->reason,
                                (long long)((l->release_at_ms - now) / 1000));
            m->dirty = 1;
        }
    }
    rpc_msg_free(reply);
    rc_free(c);
}

/* A host's node address, for the challenge, comes from the node table. */
static void mk__nodes_read(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    market *m = arg;
    const Ray__Rpc__GetAllNodeInfoReply *r = (const void *)reply;
    for (size_t i = 0; st->code == GRPC_STATUS_OK && i < r->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[i];
        if (n->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE || n->node_id.len != RC_NODE_ID_SIZE)
            continue;
        char hex[2 * RC_NODE_ID_SIZE + 1];
        rc_id_hex(n->node_id.data, n->node_id.len, hex);
        for (size_t k = 0; k < m->n_leases; k++) {
            mk_lease *l = &m->leases[k];
            if (l->state != MK_RAY_RUNNING || l->verify_running || strcmp(l->node_id, hex))
                continue;
            int64_t now = mk_now_ms();
            if (l->verified == 0 || (l->verified == 1 && l->next_check_ms && now >= l->next_check_ms)) {
                char address[300];
                snprintf(address, sizeof(address), "%s:%d", n->node_manager_address, n->node_manager_port);
                market_verify(m, l, address);
            }
        }
    }
    rpc_msg_free(reply);
}

/* A lease that stayed too long in a state: remembered against its class, ended. */
static void mk__timed_out(market *m, mk_lease *l, const char *what, int64_t limit_s)
{
    market_record_failure(m, l->provider, l->offer_id, "%s within %llds", what, (long long)limit_s);
    mk__score_down(m, l, 1.0);
    market_end_lease(m, l, MK_ALLOCATION_TIMEOUT, "%s within %llds", what, (long long)limit_s);
}

static void mk__reconcile(market *m, int64_t now)
{
    int gcs_seen = m->cluster != NULL;
    int need_nodes = 0;
    for (size_t i = 0; i < m->n_leases; i++) {
        mk_lease *l = &m->leases[i];
        if (!mk__live(l) || l->busy)
            continue;
        mk_provider_slot *s = mk__provider(m, l->provider);
        const mk_instance *inst = s && s->listed ? mk__instance(s, l->id) : NULL;
        const Ray__Rpc__Autoscaler__NodeState *ns = gcs_seen ? mk__node_of(m, l) : NULL;
        l->node_seen = ns != NULL;
        l->node_dead = ns && ns->status == RAY__RPC__AUTOSCALER__NODE_STATUS__DEAD;
        l->idle_ms = ns && ns->status == RAY__RPC__AUTOSCALER__NODE_STATUS__IDLE ? (ns->idle_duration_ms ? ns->idle_duration_ms : 1) : 0;
        if (!s) {
            market_end_lease(m, l, MK_TERMINATED, "its provider %s is no longer configured", l->provider);
            continue;
        }
        switch (l->state) {
        case MK_QUEUED:
            /* Written down but (maybe) never launched: a restart finds it here. */
            if (s->listed && inst) {
                l->state = MK_REQUESTED;
                l->requested_ms = now;
                m->dirty = 1;
            } else if (s->listed) {
                mk__launch(m, l);
            }
            break;
        case MK_REQUESTED:
            if (!s->listed)
                break;
            if (inst && inst->state == MK_INST_FAILED) {
                mk__launch_failed(m, l, inst->error);
            } else if (inst && inst->state == MK_INST_RUNNING) {
                l->state = MK_ALLOCATED;
                l->allocated_ms = now;
                mk_ledger_commit(&m->ledger, l->price_per_hour);
                m->dirty = 1;
            } else if (now - l->requested_ms > m->cfg.launch_timeout_s * 1000) {
                mk__timed_out(m, l, "not allocated", m->cfg.launch_timeout_s);
            }
            break;
        case MK_ALLOCATED:
            if (ns && !l->node_dead) {
                rc_id_hex(ns->node_id.data, ns->node_id.len < RC_NODE_ID_SIZE ? ns->node_id.len : RC_NODE_ID_SIZE,
                          l->node_id);
                l->state = MK_RAY_RUNNING;
                l->running_ms = now;
                m->dirty = 1;
                market_log_decision(m, "%s registered as node %.12s; verifying before it gets work", l->id, l->node_id);
                need_nodes = 1;
            } else if (s->listed && !inst) {
                market_end_lease(m, l, MK_TERMINATED, "the provider no longer lists it");
            } else if (gcs_seen && now - l->allocated_ms > m->cfg.register_timeout_s * 1000) {
                mk__timed_out(m, l, "its raylet never registered", m->cfg.register_timeout_s);
            }
            break;
        case MK_RAY_RUNNING:
        case MK_RAY_STOPPING:
            if (gcs_seen && (l->node_dead || !ns)) {
                if (l->state == MK_RAY_STOPPING) {
                    market_end_lease(m, l, MK_TERMINATED, "drained and gone");
                } else {
                    market_record_failure(m, l->provider, l->offer_id, "host vanished (node %.12s died)", l->node_id);
                    mk__score_down(m, l, 1.0);
                    market_end_lease(m, l, MK_TERMINATED, "vanished: its node died; terminated at the provider");
                    market_log_decision(m, "%s vanished; terminated at %s so it stops costing, replaced while demand "
                                           "remains",
                                        l->id, l->provider);
                }
                break;
            }
            if (s->listed && !inst) {
                market_end_lease(m, l, MK_TERMINATED, "the provider no longer lists it");
                break;
            }
            if (l->state == MK_RAY_STOPPING) {
                if (now >= l->release_at_ms)
                    market_end_lease(m, l, MK_TERMINATED, "%s", l->reason[0] ? l->reason : "released");
                break;
            }
            if (l->verified == -1) {
                market_end_lease(m, l, MK_TERMINATED, "failed verification: %s", l->verification);
                break;
            }
            if (!l->verify_running && (l->verified == 0 || (l->next_check_ms && now >= l->next_check_ms)))
                need_nodes = 1;
            break;
        default:
            break;
        }
    }
    if (need_nodes && m->cfg.verify) {
        Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
        rpc_client_call(gcs_client_rpc(m->gcs), &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                        &req.base, MK__CALL_MS, mk__nodes_read, m);
    }
    if (!m->cfg.verify) {
        for (size_t i = 0; i < m->n_leases; i++)
            if (m->leases[i].state == MK_RAY_RUNNING && m->leases[i].verified == 0) {
                m->leases[i].verified = 1;
                snprintf(m->leases[i].verification, sizeof(m->leases[i].verification), "verification disabled");
            }
    }
}

/* ---- idle and expiring hosts ------------------------------------------------------------------- */

static int mk__class_min(market *m, const char *offer_class)
{
    for (size_t i = 0; i < m->cfg.n_limits; i++)
        if (!strcmp(m->cfg.limits[i].offer_class, offer_class))
            return m->cfg.limits[i].min_hosts;
    return 0;
}

/* Whether l was started as the successor of an expiring lease that still runs, or ended less
 * than an idle timeout ago: it waits, idle, for the work its predecessor holds, so it is not
 * idle in the sense that releases a host (draining it left the work with nowhere to go). */
static int mk__succeeds_live(market *m, const mk_lease *l, int64_t now)
{
    /* While its predecessor runs, and for an idle timeout after it ended: the work it takes
     * over (an actor restarting there) shows as demand only some time after the end. */
    int64_t grace = (m->cfg.idle_timeout_s > 0 ? m->cfg.idle_timeout_s : 0) * 1000;
    for (size_t i = 0; i < m->n_leases; i++) {
        const mk_lease *p = &m->leases[i];
        if (strcmp(p->replaced_by, l->id))
            continue;
        if (p->state == MK_RAY_STOPPING || (p->ended_ms && now - p->ended_ms < grace))
            return 1;
    }
    return 0;
}

static void mk__drains(market *m, int64_t now)
{
    const Ray__Rpc__Autoscaler__ClusterResourceState *cs = m->cluster;
    int nothing_pending = cs && !cs->n_pending_resource_requests && !cs->n_pending_gang_resource_requests;
    for (size_t i = 0; i < m->n_leases; i++) {
        mk_lease *l = &m->leases[i];
        if (l->state != MK_RAY_RUNNING || l->busy || l->verified != 1 || !l->node_seen || l->node_dead)
            continue;
        if (l->lease_duration_s > 0) {
            int64_t end = l->allocated_ms + l->lease_duration_s * 1000;
            int64_t lead = l->lease_duration_s / 2 < MK__EXPIRY_LEAD_MAX_S ? l->lease_duration_s / 2 : MK__EXPIRY_LEAD_MAX_S;
            if (now >= end - lead * 1000) {
                mk__drain(m, l, 1, end, "lease ends at its provider");
                snprintf(l->reason, sizeof(l->reason), "lease ends at its provider");
                continue;
            }
        }
        if (m->cfg.idle_timeout_s >= 0 && l->idle_ms >= m->cfg.idle_timeout_s * 1000 && nothing_pending &&
            !mk__succeeds_live(m, l, now) && mk__class_hosts_cb(l->offer_class, m) > mk__class_min(m, l->offer_class))
            mk__drain(m, l, 0, 0, "idle");
    }
}

/* ---- report --------------------------------------------------------------------------------- */

static void mk__report(market *m, int64_t now)
{
    Ray__Rpc__Autoscaler__AutoscalingState st = RAY__RPC__AUTOSCALER__AUTOSCALING_STATE__INIT;
    st.autoscaler_state_version = ++m->autoscaler_version;
    st.last_seen_cluster_resource_state_version = m->cluster_version;
    Ray__Rpc__Autoscaler__PendingInstance *pi = rc_calloc(m->n_leases + 1, sizeof(*pi));
    Ray__Rpc__Autoscaler__PendingInstance **pip = rc_calloc(m->n_leases + 1, sizeof(*pip));
    Ray__Rpc__Autoscaler__PendingInstanceRequest *pr = rc_calloc(m->n_leases + 1, sizeof(*pr));
    Ray__Rpc__Autoscaler__PendingInstanceRequest **prp = rc_calloc(m->n_leases + 1, sizeof(*prp));
    char (*types)[200] = rc_calloc(m->n_leases + 1, sizeof(*types));
    char (*details)[200] = rc_calloc(m->n_leases + 1, sizeof(*details));
    for (size_t i = 0; i < m->n_leases; i++) {
        mk_lease *l = &m->leases[i];
        snprintf(types[i], sizeof(types[i]), "%s:%s", l->provider, l->offer_id);
        if (l->state == MK_QUEUED) {
            ray__rpc__autoscaler__pending_instance_request__init(&pr[st.n_pending_instance_requests]);
            pr[st.n_pending_instance_requests].instance_type_name = l->offer_class;
            pr[st.n_pending_instance_requests].ray_node_type_name = types[i];
            pr[st.n_pending_instance_requests].count = 1;
            pr[st.n_pending_instance_requests].request_ts = l->queued_ms / 1000;
            prp[st.n_pending_instance_requests] = &pr[st.n_pending_instance_requests];
            st.n_pending_instance_requests++;
        } else if (l->state == MK_REQUESTED || l->state == MK_ALLOCATED ||
                   (l->state == MK_RAY_RUNNING && l->verified == 0)) {
            Ray__Rpc__Autoscaler__PendingInstance *p = &pi[st.n_pending_instances];
            ray__rpc__autoscaler__pending_instance__init(p);
            p->instance_type_name = l->offer_class;
            p->ray_node_type_name = types[i];
            p->instance_id = l->id;
            snprintf(details[i], sizeof(details[i]), "%s",
                     l->state == MK_REQUESTED ? "launching" : l->state == MK_ALLOCATED ? "registering" : "verifying");
            p->details = details[i];
            pip[st.n_pending_instances++] = p;
        }
    }
    st.pending_instances = pip;
    st.pending_instance_requests = prp;
    Ray__Rpc__Autoscaler__FailedInstanceRequest *fr = rc_calloc(m->n_failures + 1, sizeof(*fr));
    Ray__Rpc__Autoscaler__FailedInstanceRequest **frp = rc_calloc(m->n_failures + 1, sizeof(*frp));
    char (*ftypes)[200] = rc_calloc(m->n_failures + 1, sizeof(*ftypes));
    for (size_t i = 0; i < m->n_failures; i++) {
        const mk_failure *f = &m->failures[i];
        if (now - f->at_ms > MK__FAILURE_WINDOW_MS)
            continue;
        Ray__Rpc__Autoscaler__FailedInstanceRequest *x = &fr[st.n_failed_instance_requests];
        ray__rpc__autoscaler__failed_instance_request__init(x);
        snprintf(ftypes[i], sizeof(ftypes[i]), "%s:%s", f->provider, f->offer_id);
        x->instance_type_name = ftypes[i];
        x->ray_node_type_name = ftypes[i];
        x->count = 1;
        x->reason = (char *)f->reason;
        x->failed_ts = f->at_ms / 1000;
        x->start_ts = f->at_ms / 1000;
        frp[st.n_failed_instance_requests++] = x;
    }
    st.failed_instance_requests = frp;
    st.infeasible_resource_requests = m->infeasible;
    st.n_infeasible_resource_requests = m->n_infeasible;
    st.infeasible_gang_resource_requests = m->infeasible_gangs;
    st.n_infeasible_gang_resource_requests = m->n_infeasible_gangs;
    st.rayc_infeasible_reasons = m->infeasible_reasons;
    st.n_rayc_infeasible_reasons = m->n_infeasible;
    Ray__Rpc__Autoscaler__ReportAutoscalingStateRequest req = RAY__RPC__AUTOSCALER__REPORT_AUTOSCALING_STATE_REQUEST__INIT;
    req.autoscaling_state = &st;
    rpc_client_call(gcs_client_rpc(m->gcs), &ray__rpc__autoscaler__autoscaler_state_service__descriptor,
                    "ReportAutoscalingState", &req.base, MK__CALL_MS, rpc_reply_drop, NULL);
    rc_free(pi);
    rc_free(pip);
    rc_free(pr);
    rc_free(prp);
    rc_free(types);
    rc_free(details);
    rc_free(fr);
    rc_free(frp);
    rc_free(ftypes);
}

/* ---- the round ---------------------------------------------------------------------------------- */

/* Ended leases are kept for the status, the newest MK_MAX_ENDED of them. */
static void mk__trim_ended(market *m)
{
    size_t ended = 0;
    for (size_t i = 0; i < m->n_leases; i++)
        ended += !mk__live(&m->leases[i]);
    size_t w = 0;
    for (size_t i = 0; i < m->n_leases; i++) {
        if (!mk__live(&m->leases[i]) && ended > MK_MAX_ENDED && !m->leases[i].busy) {
            ended--;
            continue;
        }
        m->leases[w++] = m->leases[i];
    }
    m->n_leases = w;
}

static void mk__release_all(market *m)
{
    for (size_t i = 0; i < m->n_leases; i++)
        if (mk__live(&m->leases[i]))
            market_end_lease(m, &m->leases[i], MK_TERMINATED, "released by `rayc market stop --release-all`");
}

static void mk__round_state(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    market *m = arg;
    int64_t now = mk_now_ms();
    const Ray__Rpc__Autoscaler__GetClusterResourceStateReply *r = (const void *)reply;
    if (st->code != GRPC_STATUS_OK || !r->cluster_resource_state) {
        if (m->gcs_ok)
            market_log_decision(m, "the GCS cannot be reached (%s): no host is torn down until it can",
                                st->code ? st->message : "empty reply");
        m->gcs_ok = 0;
        snprintf(m->gcs_error, sizeof(m->gcs_error), "%s", st->code ? st->message : "empty reply");
        rpc_msg_free(reply);
        m->round_running = 0;
        return;
    }
    if (!m->gcs_ok)
        market_log_decision(m, "the GCS is reachable");
    m->gcs_ok = 1;
    m->gcs_error[0] = '\0';
    if (m->cluster)
        rpc_msg_free(&m->cluster->base);
    m->cluster = (Ray__Rpc__Autoscaler__ClusterResourceState *)rpc_msg_dup(&r->cluster_resource_state->base);
    rpc_msg_free(reply);
    m->cluster_version = m->cluster->cluster_resource_state_version;

    mk__list_providers(m);
    if (m->release_all) {
        mk__release_all(m);
    } else {
        mk__reconcile(m, now);
        mk__orphans(m, now);
        if (!m->stopping) {
            mk__decide_and_launch(m);
            mk__drains(m, now);
        }
    }
    mk__report(m, now);
    mk__trim_ended(m);
    if (m->dirty)
        market_persist(m);
    mk__publish(m);
    m->round_running = 0;
    if (m->release_all) {
        int live = 0;
        for (size_t i = 0; i < m->n_leases; i++)
            live += mk__live(&m->leases[i]);
        if (!live) {
            RC_INFO("market: every lease released; stopping");
            m->stopping = 1;
        }
    }
}

static void mk__round(uv_timer_t *t)
{
    market *m = t->data;
    if (m->round_running)
        return;
    int64_t now = mk_now_ms();
    for (size_t i = 0; i < m->n_providers; i++) {
        mk_provider_slot *s = &m->providers[i];
        s->p->ops->poll(s->p, now);
        int changed = 0;
        char err[512] = "";
        const mk_offer *offers = NULL;
        size_t n = 0;
        if (s->p->ops->offers(s->p, &offers, &n, &changed, err, sizeof(err)) == 0) {
            s->offers = offers;
            s->n_offers = n;
            if (changed)
                market_log_decision(m, "provider %s: %zu offers read", s->p->name, n);
            if (err[0])
                RC_WARN("market: %s", err);
        } else {
            s->reachable = 0;
            snprintf(s->error, sizeof(s->error), "%s", err);
        }
    }
    Ray__Rpc__Autoscaler__GetClusterResourceStateRequest req =
        RAY__RPC__AUTOSCALER__GET_CLUSTER_RESOURCE_STATE_REQUEST__INIT;
    req.last_seen_cluster_resource_state_version = m->cluster_version;
    m->round_running = 1;
    if (rpc_client_call(gcs_client_rpc(m->gcs), &ray__rpc__autoscaler__autoscaler_state_service__descriptor,
                        "GetClusterResourceState", &req.base, MK__ROUND_CALL_MS, mk__round_state, m) < 0)
        m->round_running = 0;
}

void market_round_now(market *m)
{
    mk__round(&m->timer);
}

/* ---- start ------------------------------------------------------------------------------------ */

static void mk__rebuild_ledger(market *m)
{
    double spent = m->ledger.spent_total;
    mk_ledger_init(&m->ledger, m->cfg.budget_per_hour, m->cfg.budget_total);
    m->ledger.spent_total = spent;
    for (size_t i = 0; i < m->n_leases; i++) {
        const mk_lease *l = &m->leases[i];
        if (!mk__live(l))
            continue;
        char why[256];
        /* Leases recorded before a restart were within the caps when they were made; the
         * ledger takes them even if the config's caps were lowered since. */
        if (mk_ledger_reserve(&m->ledger, l->price_per_hour, l->billing_increment_s, why, sizeof(why)) < 0) {
            m->ledger.reserved_per_hour += l->price_per_hour;
        }
        if (l->state >= MK_ALLOCATED)
            mk_ledger_commit(&m->ledger, l->price_per_hour);
    }
}

int market_start(market *m)
{
    char err[1024];
    m->orphan_grace_ms = MK__ORPHAN_GRACE_MS;
    const char *grace = getenv("RAYC_MARKET_ORPHAN_GRACE_MS");
    if (grace && atoll(grace) >= 0)
        m->orphan_grace_ms = atoll(grace);
    mk_scores_init(&m->scores, m->cfg.failure_half_life_s);
    mk_ledger_init(&m->ledger, m->cfg.budget_per_hour, m->cfg.budget_total);
    m->providers = rc_calloc(m->cfg.n_providers + 1, sizeof(*m->providers));
    for (size_t i = 0; i < m->cfg.n_providers; i++) {
        const mk_provider_config *pc = &m->cfg.providers[i];
        mk_provider *p = NULL;
        int rc;
        if (!strcmp(pc->type, "local"))
            rc = mk_provider_local_create(pc, m->config_dir, m->state_dir, &p, err, sizeof(err));
        else if (!strcmp(pc->type, "ssh"))
            rc = mk_provider_ssh_create(pc, m->config_dir, m->state_dir, &p, err, sizeof(err));
        else {
            snprintf(err, sizeof(err), "provider %s: unknown type \"%s\" (local or ssh)", pc->name, pc->type);
            rc = RC_EINVAL;
        }
        if (rc < 0) {
            RC_ERROR("market: %s", err);
            fprintf(stderr, "rayc-market: %s\n", err);
            return rc;
        }
        m->providers[m->n_providers].p = p;
        m->providers[m->n_providers].reachable = 1;
        m->n_providers++;
    }
    /* What a market before this one left in the GCS. */
    Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    req.key.data = (uint8_t *)MK_KV_STATE;
    req.key.len = strlen(MK_KV_STATE);
    req.namespace_.data = (uint8_t *)MK_KV_NAMESPACE;
    req.namespace_.len = strlen(MK_KV_NAMESPACE);
    ProtobufCMessage *reply = NULL;
    int code = rpc_client_call_sync(gcs_client_rpc(m->gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                                    "InternalKVGet", &req.base, MK__CALL_MS, &reply, err, sizeof(err));
    if (code != GRPC_STATUS_OK) {
        fprintf(stderr, "rayc-market: cannot read its state from the GCS: %s\n", err);
        return RC_EUNAVAIL;
    }
    const Ray__Rpc__InternalKVGetReply *kv = (const void *)reply;
    if (gcs_reply_status(reply, NULL) == GCS_STATUS_OK && kv->value.len) {
        if (mk_state_from_json(m, (const char *)kv->value.data, kv->value.len, err, sizeof(err)) < 0) {
            fprintf(stderr, "rayc-market: its state in the GCS does not parse (%s); refusing to start rather than "
                            "lose track of leased hosts. `rayc kv get market state` shows it; once its hosts are "
                            "released at their providers, `rayc kv del market state` lets a market start afresh\n",
                    err);
            rpc_msg_free(reply);
            return RC_EPARSE;
        }
        size_t live = 0;
        for (size_t i = 0; i < m->n_leases; i++)
            live += mk__live(&m->leases[i]);
        market_log_decision(m, "restarted: %zu live lease%s found in the GCS; they are matched with the providers' "
                               "hosts",
                            live, live == 1 ? "" : "s");
    }
    rpc_msg_free(reply);
    mk__rebuild_ledger(m);
    m->gcs_ok = 1;
    uv_timer_init(m->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, mk__round, 0, (uint64_t)m->cfg.round_interval_ms);
    return 0;
}
