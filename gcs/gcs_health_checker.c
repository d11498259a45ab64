/*
 * GCS health checker: every alive raylet is checked with grpc.health.v1.Health/Check, as
 * Ray does. The first check runs health_check_initial_delay_ms after a node is added; each
 * later one health_check_period_ms after the previous answer (or timeout, after
 * health_check_timeout_ms). After health_check_failure_threshold consecutive failures the
 * node is declared dead with UNEXPECTED_TERMINATION. Detection time is therefore about
 * initial delay (for a new node) + threshold × (period + timeout) at worst, and
 * threshold × period when the raylet's port refuses connections (a killed process).
 *
 * Per-node state is reference-counted by its timer (until uv_close completes) and by the
 * check in flight, so removing a node while a check is out is safe.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "gcs_int.h"
#include "health.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_log.h"

typedef struct gcs__hc_node {
    gcs_health_checker *hc;
    uint8_t id[RC_NODE_ID_SIZE];
    uv_timer_t timer;
    int refs;
    int failures;
    int removed;
    char last_error[256];
} gcs__hc_node;

struct gcs_health_checker {
    gcs_server *gcs;
    rc_map nodes; /* node id -> gcs__hc_node */
    int stopped;
};

static void gcs__hc_unref(gcs__hc_node *n)
{
    if (--n->refs == 0)
        rc_free(n);
}

static void gcs__hc_timer_closed(uv_handle_t *h)
{
    gcs__hc_unref(h->data);
}

static void gcs__hc_fire(uv_timer_t *t);

static void gcs__hc_arm(gcs__hc_node *n, int64_t delay_ms)
{
    uv_timer_start(&n->timer, gcs__hc_fire, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

static void gcs__hc_answered(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs__hc_node *n = arg;
    gcs_health_checker *hc = n->hc;
    int healthy = st->code == GRPC_STATUS_OK &&
                  ((Grpc__Health__V1__HealthCheckResponse *)reply)->status ==
                      GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    if (!healthy)
        snprintf(n->last_error, sizeof(n->last_error), "%s",
                 st->code == GRPC_STATUS_OK ? "raylet reports NOT_SERVING" : st->message);
    rpc_msg_free(reply);
    if (n->removed || hc->stopped) {
        gcs__hc_unref(n);
        return;
    }
    if (healthy) {
        n->failures = 0;
    } else if (++n->failures >= rc_cfg.health_check_failure_threshold) {
        char message[512];
        snprintf(message, sizeof(message),
                 "health check failed: the raylet missed %d consecutive checks (last: %s)",
                 n->failures, n->last_error);
        uint8_t id[RC_NODE_ID_SIZE];
        memcpy(id, n->id, sizeof(id));
        gcs__hc_unref(n);
        gcs_node_mark_dead(hc->gcs->nodes, id, RAY__RPC__NODE_DEATH_INFO__REASON__UNEXPECTED_TERMINATION,
                           message);
        return;
    }
    gcs__hc_arm(n, rc_cfg.health_check_period_ms);
    gcs__hc_unref(n);
}

static void gcs__hc_fire(uv_timer_t *t)
{
    gcs__hc_node *n = t->data;
    gcs_health_checker *hc = n->hc;
    if (n->removed || hc->stopped)
        return;
    /* Every check ends within health_check_timeout_ms (a stopped or cut-off raylet keeps
     * its connection open and answers nothing), and one that cannot even be sent counts as
     * failed: a node whose checks cannot go out must not stay alive forever. */
    rpc_client *cli = gcs_node_raylet_client(hc->gcs->nodes, n->id);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    n->refs++;
    if (!cli || rpc_client_call(cli, &grpc__health__v1__health__descriptor, "Check", &req.base,
                                rc_cfg.health_check_timeout_ms, gcs__hc_answered, n) < 0) {
        rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot send the health check"};
        gcs__hc_answered(&st, NULL, n);
    }
}

void gcs_health_add_node(gcs_health_checker *hc, const uint8_t *id)
{
    if (hc->stopped || rc_map_get(&hc->nodes, id, RC_NODE_ID_SIZE))
        return;
    gcs__hc_node *n = RC_NEW(gcs__hc_node);
    n->hc = hc;
    memcpy(n->id, id, RC_NODE_ID_SIZE);
    n->refs = 1; /* the timer */
    uv_timer_init(hc->gcs->loop, &n->timer);
    n->timer.data = n;
    rc_map_put(&hc->nodes, id, RC_NODE_ID_SIZE, n);
    gcs__hc_arm(n, rc_cfg.health_check_initial_delay_ms);
}

static void gcs__hc_remove(gcs__hc_node *n)
{
    n->removed = 1;
    uv_timer_stop(&n->timer);
    uv_close((uv_handle_t *)&n->timer, gcs__hc_timer_closed);
}

void gcs_health_remove_node(gcs_health_checker *hc, const uint8_t *id)
{
    gcs__hc_node *n = rc_map_remove(&hc->nodes, id, RC_NODE_ID_SIZE);
    if (n)
        gcs__hc_remove(n);
}

gcs_health_checker *gcs_health_checker_new(gcs_server *gcs)
{
    gcs_health_checker *hc = RC_NEW(gcs_health_checker);
    hc->gcs = gcs;
    rc_map_init(&hc->nodes);
    return hc;
}

void gcs_health_checker_shutdown(gcs_health_checker *hc)
{
    if (!hc || hc->stopped)
        return;
    hc->stopped = 1;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&hc->nodes, &it, NULL, NULL, &v)) {
        rc_map_iter_remove(&hc->nodes, &it);
        gcs__hc_remove(v);
    }
}

void gcs_health_checker_free(gcs_health_checker *hc)
{
    if (!hc)
        return;
    gcs_health_checker_shutdown(hc);
    rc_map_destroy(&hc->nodes, NULL);
    rc_free(hc);
}
