/*
 * gcs_revocations: the GCS's revocations, followed by a server of another process
 * (gcs_revocations.h).
 */
#include "gcs_revocations.h"

#include <stdio.h>
#include <string.h>

#include "rayc_auth.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_map.h"

struct gcs_revocations {
    gcs_client *gc;    /* NULL until gcs_revocations_follow */
    uv_timer_t *timer; /* from follow; closed (and freed) by stop */
    rc_map tokens;     /* revoked token ID (string) -> (void *)1 */
    rc_map nodes;      /* revoked node ID (RC_NODE_ID_SIZE bytes) -> (void *)1 */
    int in_flight;     /* a GetRevocations call is out */
    int stopped;
    char refusal[160]; /* the hook's last answer */
};

static const char *gcs__revoked(const rpc_identity *id, void *arg)
{
    gcs_revocations *rv = arg;
    if (id->role == RPC_ROLE_NODE) {
        if (!rc_map_get(&rv->nodes, id->node_id, RC_NODE_ID_SIZE))
            return NULL;
        char hex[RC_ID_HEX_MAX];
        snprintf(rv->refusal, sizeof(rv->refusal), "node %s was revoked by the admin",
                 rc_id_hex(id->node_id, RC_NODE_ID_SIZE, hex));
        return rv->refusal;
    }
    if (!id->token_id[0] || !rc_map_get_str(&rv->tokens, id->token_id))
        return NULL;
    snprintf(rv->refusal, sizeof(rv->refusal),
             "token %.16s was revoked or replaced by the admin (for the admin token: use the new one, "
             "rayc get-auth-token on the head node)",
             id->token_id);
    return rv->refusal;
}

static void gcs__poll(gcs_revocations *rv);

static void gcs__replied(const rpc_status *st, ProtobufCMessage *msg, void *arg)
{
    gcs_revocations *rv = arg;
    rv->in_flight = 0;
    const Rayc__Rpc__GetRevocationsReply *r = (const void *)msg;
    if (rv->stopped || st->code != GRPC_STATUS_OK || !r) {
        if (!rv->stopped && st->code != GRPC_STATUS_OK)
            RC_DEBUG("revocations: GetRevocations failed: %s (the lists stay as they are)", st->message);
        rpc_msg_free(msg);
        return;
    }
    if (!r->unchanged) {
        size_t before_t = rc_map_size(&rv->tokens), before_n = rc_map_size(&rv->nodes);
        for (size_t i = 0; i < r->n_token_ids; i++)
            if (r->token_ids[i] && *r->token_ids[i])
                rc_map_put_str(&rv->tokens, r->token_ids[i], (void *)1);
        for (size_t i = 0; i < r->n_node_ids; i++)
            if (r->node_ids[i].len == RC_NODE_ID_SIZE)
                rc_map_put(&rv->nodes, r->node_ids[i].data, RC_NODE_ID_SIZE, (void *)1);
        if (rc_map_size(&rv->tokens) != before_t || rc_map_size(&rv->nodes) != before_n)
            RC_INFO("revocations: %zu revoked tokens, %zu revoked nodes refused from now on",
                    rc_map_size(&rv->tokens), rc_map_size(&rv->nodes));
    }
    rpc_msg_free(msg);
}

static void gcs__poll(gcs_revocations *rv)
{
    if (rv->stopped || rv->in_flight)
        return;
    Rayc__Rpc__GetRevocationsRequest req = RAYC__RPC__GET_REVOCATIONS_REQUEST__INIT;
    req.known_tokens = (uint32_t)rc_map_size(&rv->tokens);
    req.known_nodes = (uint32_t)rc_map_size(&rv->nodes);
    int64_t timeout = rc_cfg.auth_revocation_poll_ms > 1000 ? rc_cfg.auth_revocation_poll_ms : 1000;
    if (rpc_client_call(gcs_client_rpc(rv->gc), &rayc__rpc__auth_service__descriptor, "GetRevocations", &req.base,
                        timeout, gcs__replied, rv) == 0)
        rv->in_flight = 1;
}

static void gcs__tick(uv_timer_t *t)
{
    gcs__poll(t->data);
}

int gcs_revocations_attach(rpc_server *srv, gcs_revocations **out)
{
    *out = NULL;
    const rpc_security *sec = rpc_security_get();
    if (!sec || sec->insecure || rc_cfg.auth_revocation_poll_ms <= 0)
        return 0;
    gcs_revocations *rv = RC_NEW(gcs_revocations);
    rc_map_init(&rv->tokens);
    rc_map_init(&rv->nodes);
    rpc_server_set_revocation(srv, gcs__revoked, rv);
    *out = rv;
    return 0;
}

void gcs_revocations_follow(gcs_revocations *rv, gcs_client *gc)
{
    if (!rv || rv->stopped || rv->gc)
        return;
    rv->gc = gc;
    rv->timer = RC_NEW(uv_timer_t);
    uv_timer_init(gcs_client_loop(gc), rv->timer);
    rv->timer->data = rv;
    uv_timer_start(rv->timer, gcs__tick, 0, (uint64_t)rc_cfg.auth_revocation_poll_ms);
}

static void gcs__timer_closed(uv_handle_t *h)
{
    rc_free(h);
}

void gcs_revocations_stop(gcs_revocations *rv)
{
    if (!rv || rv->stopped)
        return;
    rv->stopped = 1;
    if (rv->timer)
        uv_close((uv_handle_t *)rv->timer, gcs__timer_closed);
    rv->timer = NULL;
}

void gcs_revocations_free(gcs_revocations *rv)
{
    if (!rv)
        return;
    gcs_revocations_stop(rv);
    rc_map_destroy(&rv->tokens, NULL);
    rc_map_destroy(&rv->nodes, NULL);
    rc_free(rv);
}

void gcs_revocations_counts(const gcs_revocations *rv, size_t *tokens, size_t *nodes)
{
    *tokens = rv ? rc_map_size(&rv->tokens) : 0;
    *nodes = rv ? rc_map_size(&rv->nodes) : 0;
}
