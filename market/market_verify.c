/*
 * Verification of a leased host before it gets work, and random re-checks while it is
 * leased (ARCHITECTURE §9, proto/rayc_market.proto):
 *
 *   1. RunChallenge on the host's raylet (TLS, the certificate must name that node) with a
 *      fresh seed and an order sized to the claimed GPU memory (auth_challenge_order_for_
 *      memory); the call is timed here, not by the host;
 *   2. the answer must come within the time bound (verification.time_limit_s);
 *   3. OpenChallengeRows for rows drawn from a second seed the host never sees before it has
 *      committed; each opened row is recomputed here and its path checked against the root;
 *   4. when the host has NVML, its model, count and memory must match the offer's claim; a
 *      host that claims GPUs must have computed on one (hosts of the local provider are
 *      simulated and exempt);
 *   5. the verdict goes to the GCS (MarketGcsService.SetNodeVerification): a host that
 *      passed becomes schedulable; one that failed never gets work, is released, and its
 *      class scored down.
 *
 * Loop thread only.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth_challenge.h"
#include "market_daemon.h"
#include "rayc_market.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_log.h"

typedef struct mk__verify {
    market *m;
    char lease_id[24];
    char node_id[2 * RC_NODE_ID_SIZE + 1];
    rpc_client *cli;
    uint8_t challenge_id[AUTH_CHALLENGE_ID_SIZE];
    uint8_t seed[AUTH_CHALLENGE_SEED_SIZE];
    uint8_t vseed[AUTH_CHALLENGE_SEED_SIZE];
    uint8_t root[AUTH_CHALLENGE_HASH_SIZE];
    uint32_t n;
    uint32_t rows[64];
    uint32_t k;
    int64_t started_ms;
    double seconds;
    char device[128];
    int recheck;
} mk__verify;

static int mk__ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static void mk__verify_free(mk__verify *v)
{
    if (v->cli)
        rpc_client_destroy(v->cli);
    rc_free(v);
}

/* A lease that failed its check ends once its verdict is at the GCS (or could not get
 * there): releasing the host first let its node die before the GCS took the verdict, so
 * the node table kept saying "pending" for a host that had failed. */
static void mk__end_failed(market *m, const char *lease_id)
{
    mk_lease *l = market_find_lease(m, lease_id);
    if (l)
        l->busy = 0;
    if (l && l->state == MK_RAY_RUNNING && l->verified == -1)
        market_end_lease(m, l, MK_TERMINATED, "failed verification: %s", l->verification);
}

typedef struct mk__verdict_ctx {
    market *m;
    char lease_id[24];
    int passed;
} mk__verdict_ctx;

static void mk__verdict_stored(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    mk__verdict_ctx *c = arg;
    if (st->code != GRPC_STATUS_OK)
        RC_WARN("market: the GCS did not take a verification verdict: %s", st->message);
    rpc_msg_free(reply);
    if (!c->passed)
        mk__end_failed(c->m, c->lease_id);
    rc_free(c);
}

/* Ends a verification: records the verdict on the lease and at the GCS. */
static void mk__verdict(mk__verify *v, int passed, const char *fmt, ...)
{
    market *m = v->m;
    mk_lease *l = market_find_lease(m, v->lease_id);
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (l && l->state == MK_RAY_RUNNING && !strcmp(l->node_id, v->node_id)) {
        l->verify_running = 0;
        l->verify_seconds = v->seconds;
        snprintf(l->verification, sizeof(l->verification), "%s", why);
        int64_t now = mk_now_ms();
        if (passed) {
            l->verified = 1;
            mk_perf_record(m, l->offer_class, v->seconds);
            if (m->cfg.recheck_interval_s > 0) {
                /* Re-checked at a random time within the interval, so a host cannot tell when. */
                uint32_t r;
                rc_id_random(&r, sizeof(r));
                int64_t span = m->cfg.recheck_interval_s * 1000;
                l->next_check_ms = now + span / 2 + (int64_t)(r % (uint32_t)(span / 2 + 1));
            }
            market_log_decision(m, "%s (%s/%s) %s: %s", l->id, l->provider, l->offer_id,
                                v->recheck ? "passed a re-check" : "verified", why);
        } else {
            l->verified = -1;
            market_record_failure(m, l->provider, l->offer_id, "failed verification: %s", why);
            char key[256];
            snprintf(key, sizeof(key), "%s/%s/%s", l->provider, l->offer_class, l->region);
            mk_score_add(&m->scores, key, 2.0, now);
            market_log_decision(m, "%s (%s/%s) failed verification (%s): it gets no work and is released", l->id,
                                l->provider, l->offer_id, why);
        }
        m->dirty = 1;
    }
    Rayc__Rpc__SetNodeVerificationRequest req = RAYC__RPC__SET_NODE_VERIFICATION_REQUEST__INIT;
    uint8_t id[RC_NODE_ID_SIZE];
    if (rc_id_from_hex(v->node_id, id, sizeof(id)) == 0) {
        req.node_id.data = id;
        req.node_id.len = sizeof(id);
        req.passed = passed;
        req.reason = why;
        mk__verdict_ctx *c = rc_calloc(1, sizeof(*c));
        c->m = m;
        c->passed = passed;
        snprintf(c->lease_id, sizeof(c->lease_id), "%s", v->lease_id);
        /* Busy until the verdict is stored: the round leaves the failed lease alone. */
        if (l && !passed && l->verified == -1)
            l->busy = 1;
        if (rpc_client_call(gcs_client_rpc(m->gcs), &rayc__rpc__market_gcs_service__descriptor,
                            "SetNodeVerification", &req.base, 10000, mk__verdict_stored, c) < 0) {
            rc_free(c);
            if (!passed)
                mk__end_failed(m, v->lease_id);
        }
    } else if (!passed) {
        mk__end_failed(m, v->lease_id);
    }
    mk__verify_free(v);
}

/* The host could not be asked (unreachable, refused): tried again next round, unless it
 * answered with nonsense. */
static void mk__verify_abort(mk__verify *v, const char *why)
{
    mk_lease *l = market_find_lease(v->m, v->lease_id);
    if (l)
        l->verify_running = 0;
    RC_WARN("market: cannot verify %s yet: %s", v->lease_id, why);
    mk__verify_free(v);
}

static void mk__opened(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    mk__verify *v = arg;
    const Rayc__Rpc__OpenChallengeRowsReply *r = (const void *)reply;
    const char *msg = NULL;
    if (st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED) {
        mk__verify_abort(v, st->message);
    } else if (st->code != GRPC_STATUS_OK || gcs_reply_status(reply, &msg) != GCS_STATUS_OK) {
        mk__verdict(v, 0, "the host would not open its rows: %s", st->code ? st->message : msg);
    } else if (r->n_openings != v->k) {
        mk__verdict(v, 0, "the host opened %zu rows of the %u asked", r->n_openings, v->k);
    } else {
        char err[256];
        for (size_t i = 0; i < r->n_openings; i++) {
            const Rayc__Rpc__ChallengeRowOpening *o = r->openings[i];
            uint8_t path[AUTH_CHALLENGE_PATH_MAX * AUTH_CHALLENGE_HASH_SIZE];
            if (o->row != v->rows[i] || o->n_path > AUTH_CHALLENGE_PATH_MAX) {
                mk__verdict(v, 0, "the host opened row %u where row %u was asked", o->row, v->rows[i]);
                goto out;
            }
            for (size_t p = 0; p < o->n_path; p++) {
                if (o->path[p].len != AUTH_CHALLENGE_HASH_SIZE) {
                    mk__verdict(v, 0, "row %u's path holds a hash of %zu bytes", o->row, o->path[p].len);
                    goto out;
                }
                memcpy(path + p * AUTH_CHALLENGE_HASH_SIZE, o->path[p].data, AUTH_CHALLENGE_HASH_SIZE);
            }
            if (auth_challenge_verify_opening(v->seed, v->n, v->n, v->root, o->row, o->values.data, o->values.len,
                                              path, o->n_path, err, sizeof(err)) < 0) {
                mk__verdict(v, 0, "%s", err);
                goto out;
            }
        }
        mk__verdict(v, 1, "%u of %u rows checked in an %ux%u product on %s, %.3f s (bound %.1f s)", v->k, v->n, v->n,
                    v->n, v->device, v->seconds, v->m->cfg.verify_time_limit_s);
    }
out:
    rpc_msg_free(reply);
}

static void mk__ran(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    mk__verify *v = arg;
    market *m = v->m;
    v->seconds = (double)(mk_now_ms() - v->started_ms) / 1000.0;
    const Rayc__Rpc__RunChallengeReply *r = (const void *)reply;
    const char *msg = NULL;
    mk_lease *l = market_find_lease(m, v->lease_id);
    if (!l) {
        mk__verify_abort(v, "the lease ended");
    } else if (st->code == GRPC_STATUS_DEADLINE_EXCEEDED) {
        mk__verdict(v, 0, "no answer within %.1f s (the bound is %.1f s)", v->seconds, m->cfg.verify_time_limit_s);
    } else if (st->code == GRPC_STATUS_UNAVAILABLE) {
        mk__verify_abort(v, st->message);
    } else if (st->code != GRPC_STATUS_OK || gcs_reply_status(reply, &msg) != GCS_STATUS_OK) {
        mk__verdict(v, 0, "the challenge was refused: %s", st->code ? st->message : msg);
    } else if (r->merkle_root.len != AUTH_CHALLENGE_HASH_SIZE) {
        mk__verdict(v, 0, "the commitment is %zu bytes, not 32", r->merkle_root.len);
    } else if (v->seconds > m->cfg.verify_time_limit_s) {
        mk__verdict(v, 0, "too slow for its class: %.2f s for an %ux%u product (bound %.1f s)", v->seconds, v->n, v->n,
                    m->cfg.verify_time_limit_s);
    } else {
        mk_provider_slot *s = NULL;
        for (size_t i = 0; i < m->n_providers; i++)
            if (!strcmp(m->providers[i].p->name, l->provider))
                s = &m->providers[i];
        int simulated = s && !strcmp(s->p->type, "local");
        snprintf(v->device, sizeof(v->device), "%s", r->device_used ? r->device_used : "?");
        if (l->num_gpus > 0 && !simulated && strncmp(v->device, "cuda:", 5)) {
            mk__verdict(v, 0, "claims %g GPU(s) but computed on %s", l->num_gpus, v->device);
            goto out;
        }
        if (r->nvml_model && *r->nvml_model && l->gpu_name[0]) {
            if (!mk__ci_contains(r->nvml_model, l->gpu_name)) {
                mk__verdict(v, 0, "claims %s but NVML reports %s", l->gpu_name, r->nvml_model);
                goto out;
            }
            if (r->nvml_count < (uint32_t)l->num_gpus) {
                mk__verdict(v, 0, "claims %g GPUs but NVML reports %u", l->num_gpus, r->nvml_count);
                goto out;
            }
            double gib = (double)r->nvml_memory_bytes / 1073741824.0;
            if (l->gpu_memory > 0 && gib < l->gpu_memory * 0.9) {
                mk__verdict(v, 0, "claims %g GiB per GPU but NVML reports %.1f GiB", l->gpu_memory, gib);
                goto out;
            }
        }
        memcpy(v->root, r->merkle_root.data, AUTH_CHALLENGE_HASH_SIZE);
        rc_id_random(v->vseed, sizeof(v->vseed));
        v->k = m->cfg.verify_spot_checks ? m->cfg.verify_spot_checks : 8;
        if (v->k > 64)
            v->k = 64;
        if (v->k > v->n)
            v->k = v->n;
        auth_challenge_pick_rows(v->vseed, v->n, v->k, v->rows);
        Rayc__Rpc__OpenChallengeRowsRequest req = RAYC__RPC__OPEN_CHALLENGE_ROWS_REQUEST__INIT;
        req.challenge_id.data = v->challenge_id;
        req.challenge_id.len = sizeof(v->challenge_id);
        req.rows = v->rows;
        req.n_rows = v->k;
        if (rpc_client_call(v->cli, &rayc__rpc__challenge_service__descriptor, "OpenChallengeRows", &req.base, 30000,
                            mk__opened, v) < 0)
            mk__verify_abort(v, "cannot call OpenChallengeRows");
    }
out:
    rpc_msg_free(reply);
}

void market_verify(market *m, mk_lease *l, const char *node_address)
{
    mk__verify *v = rc_calloc(1, sizeof(*v));
    v->m = m;
    v->recheck = l->verified == 1;
    snprintf(v->lease_id, sizeof(v->lease_id), "%s", l->id);
    snprintf(v->node_id, sizeof(v->node_id), "%s", l->node_id);
    char peer[2 * RC_NODE_ID_SIZE + 8];
    snprintf(peer, sizeof(peer), "node:%s", l->node_id);
    rpc_client_options opts = {.peer_name = peer};
    if (rpc_client_create(m->rpc, node_address, &opts, &v->cli) < 0) {
        mk__verify_abort(v, "cannot open a channel to the host");
        return;
    }
    rc_id_random(v->challenge_id, sizeof(v->challenge_id));
    rc_id_random(v->seed, sizeof(v->seed));
    v->n = auth_challenge_order_for_memory((uint64_t)(l->gpu_memory * 1073741824.0), m->cfg.verify_n,
                                           m->cfg.verify_n_per_gib);
    if (v->n > AUTH_CHALLENGE_CPU_N_MAX && l->num_gpus <= 0)
        v->n = AUTH_CHALLENGE_CPU_N_MAX;
    Rayc__Rpc__RunChallengeRequest req = RAYC__RPC__RUN_CHALLENGE_REQUEST__INIT;
    req.challenge_id.data = v->challenge_id;
    req.challenge_id.len = sizeof(v->challenge_id);
    req.seed.data = v->seed;
    req.seed.len = sizeof(v->seed);
    req.n = v->n;
    req.device = l->num_gpus > 0 ? "gpu" : "cpu";
    l->verify_running = 1;
    v->started_ms = mk_now_ms();
    /* Waiting past the bound is pointless: a late answer fails anyway. */
    int64_t deadline = (int64_t)(m->cfg.verify_time_limit_s * 1000.0) + 2000;
    if (rpc_client_call(v->cli, &rayc__rpc__challenge_service__descriptor, "RunChallenge", &req.base, deadline,
                        mk__ran, v) < 0)
        mk__verify_abort(v, "cannot call RunChallenge");
}
