/*
 * GCS client: connection with cluster-ID handshake, and reply status decoding. See
 * gcs_client.h. Loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "gcs_client.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

enum { GCS__CONNECT_RETRY_MS = 200, GCS__CONNECT_CALL_TIMEOUT_MS = 2000 };

struct gcs_client {
    rpc_ctx *ctx;
    rpc_client *rpc;
    char *address;
    uint8_t cluster_id[RC_CLUSTER_ID_SIZE];
    int have_cluster_id;
    /* connect in progress */
    gcs_connect_cb cb;
    void *cb_arg;
    int64_t deadline_ms;
    uv_timer_t retry;
    int retry_active;
    int connecting;
    int call_in_flight;
    int destroyed;
    char last_error[256];
};

int gcs_client_create(rpc_ctx *ctx, const char *address, gcs_client **out)
{
    rpc_client *rpc;
    int rc = rpc_client_create(ctx, address, NULL, &rpc);
    if (rc < 0)
        return rc;
    gcs_client *gc = RC_NEW(gcs_client);
    gc->ctx = ctx;
    gc->rpc = rpc;
    gc->address = rc_strdup(address);
    uv_timer_init(rpc_ctx_loop(ctx), &gc->retry);
    gc->retry.data = gc;
    *out = gc;
    return 0;
}

static void gcs__connect_finish(gcs_client *gc, int rc, const char *message);

static void gcs__client_closed(uv_handle_t *h)
{
    gcs_client *gc = h->data;
    rc_free(gc->address);
    rc_free(gc);
}

void gcs_client_destroy(gcs_client *gc)
{
    if (!gc || gc->destroyed)
        return;
    gc->destroyed = 1;
    rpc_client_destroy(gc->rpc);
    gc->rpc = NULL;
    uv_timer_stop(&gc->retry);
    /* With a GetClusterId call out, its completion (CANCELLED) finishes the connect and
     * frees the client; otherwise finish here. */
    if (gc->call_in_flight)
        return;
    if (gc->connecting)
        gcs__connect_finish(gc, RC_ECANCELED, "client destroyed");
    else
        uv_close((uv_handle_t *)&gc->retry, gcs__client_closed);
}

rpc_client *gcs_client_rpc(gcs_client *gc)
{
    return gc->rpc;
}

const char *gcs_client_address(const gcs_client *gc)
{
    return gc->address;
}

uv_loop_t *gcs_client_loop(const gcs_client *gc)
{
    return rpc_ctx_loop(gc->ctx);
}

const uint8_t *gcs_client_cluster_id(const gcs_client *gc)
{
    return gc->have_cluster_id ? gc->cluster_id : NULL;
}

void gcs_client_reset_cluster_id(gcs_client *gc)
{
    gc->have_cluster_id = 0;
    rpc_client_set_metadata(gc->rpc, "ray_cluster_id", NULL);
}

int gcs_reply_status(const ProtobufCMessage *reply, const char **message)
{
    if (message)
        *message = "";
    if (!reply)
        return GCS_STATUS_OK;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(reply->descriptor, "status");
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return GCS_STATUS_OK;
    const Ray__Rpc__GcsStatus *st = *(Ray__Rpc__GcsStatus *const *)((const char *)reply + f->offset);
    if (!st)
        return GCS_STATUS_OK;
    if (message && st->message)
        *message = st->message;
    return st->code;
}

static void gcs__connect_finish(gcs_client *gc, int rc, const char *message)
{
    gc->connecting = 0;
    gcs_connect_cb cb = gc->cb;
    gc->cb = NULL;
    if (gc->destroyed) {
        if (cb)
            cb(gc, RC_ECANCELED, "client destroyed", gc->cb_arg);
        uv_close((uv_handle_t *)&gc->retry, gcs__client_closed);
        return;
    }
    if (cb)
        cb(gc, rc, message, gc->cb_arg);
}

static void gcs__try_connect(gcs_client *gc);

static void gcs__retry_fired(uv_timer_t *t)
{
    gcs__try_connect(t->data);
}

static void gcs__got_cluster_id(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs_client *gc = arg;
    gc->call_in_flight = 0;
    if (gc->destroyed) {
        rpc_msg_free(reply);
        gcs__connect_finish(gc, RC_ECANCELED, "client destroyed");
        return;
    }
    if (st->code == GRPC_STATUS_OK) {
        Ray__Rpc__GetClusterIdReply *r = (Ray__Rpc__GetClusterIdReply *)reply;
        if (r->cluster_id.len != RC_CLUSTER_ID_SIZE) {
            rpc_msg_free(reply);
            return gcs__connect_finish(gc, RC_EPROTO, "the GCS answered with a malformed cluster ID");
        }
        memcpy(gc->cluster_id, r->cluster_id.data, RC_CLUSTER_ID_SIZE);
        gc->have_cluster_id = 1;
        char hex[RC_ID_HEX_MAX];
        rpc_client_set_metadata(gc->rpc, "ray_cluster_id", rc_id_hex(gc->cluster_id, RC_CLUSTER_ID_SIZE, hex));
        rpc_msg_free(reply);
        return gcs__connect_finish(gc, 0, "connected");
    }
    rpc_msg_free(reply);
    snprintf(gc->last_error, sizeof(gc->last_error), "%s (%s)", st->message, rpc_code_name(st->code));
    int retryable = st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED;
    if (!retryable) {
        char message[400];
        snprintf(message, sizeof(message), "the GCS at %s refused GetClusterId: %s", gc->address,
                 gc->last_error);
        return gcs__connect_finish(gc, rpc_code_to_rc(st->code), message);
    }
    if (rc_mono_ms() >= gc->deadline_ms) {
        char message[400];
        snprintf(message, sizeof(message), "cannot reach the GCS at %s: %s", gc->address,
                 gc->last_error);
        return gcs__connect_finish(gc, RC_ETIMEDOUT, message);
    }
    uv_timer_start(&gc->retry, gcs__retry_fired, GCS__CONNECT_RETRY_MS, 0);
}

static void gcs__try_connect(gcs_client *gc)
{
    Ray__Rpc__GetClusterIdRequest req = RAY__RPC__GET_CLUSTER_ID_REQUEST__INIT;
    int64_t left = gc->deadline_ms - rc_mono_ms();
    int64_t timeout = left < GCS__CONNECT_CALL_TIMEOUT_MS ? left : GCS__CONNECT_CALL_TIMEOUT_MS;
    if (timeout < 50)
        timeout = 50;
    int rc = rpc_client_call(gc->rpc, &ray__rpc__node_info_gcs_service__descriptor, "GetClusterId",
                             &req.base, timeout, gcs__got_cluster_id, gc);
    gc->call_in_flight = rc == 0;
    if (rc < 0)
        gcs__connect_finish(gc, rc, "cannot start GetClusterId");
}

int gcs_client_connect(gcs_client *gc, int64_t timeout_ms, gcs_connect_cb cb, void *arg)
{
    if (gc->connecting || gc->destroyed)
        return RC_ESTATE;
    gc->connecting = 1;
    gc->cb = cb;
    gc->cb_arg = arg;
    gc->deadline_ms = rc_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    gcs_client_reset_cluster_id(gc);
    gcs__try_connect(gc);
    return 0;
}

typedef struct gcs__sync_connect {
    int done, rc;
    char *err;
    size_t errlen;
} gcs__sync_connect;

static void gcs__sync_connected(gcs_client *gc, int rc, const char *message, void *arg)
{
    (void)gc;
    gcs__sync_connect *s = arg;
    s->done = 1;
    s->rc = rc;
    if (s->err && s->errlen)
        snprintf(s->err, s->errlen, "%s", message);
}

int gcs_client_connect_sync(gcs_client *gc, int64_t timeout_ms, char *err, size_t errlen)
{
    gcs__sync_connect s = {0, 0, err, errlen};
    int rc = gcs_client_connect(gc, timeout_ms, gcs__sync_connected, &s);
    if (rc < 0)
        return rc;
    while (!s.done)
        uv_run(rpc_ctx_loop(gc->ctx), UV_RUN_ONCE);
    return s.rc;
}

const char *gcs_actor_death_text(const Ray__Rpc__ActorDeathCause *dc)
{
    if (!dc)
        return "";
    switch (dc->context_case) {
    case RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT:
        return dc->actor_died_error_context->error_message;
    case RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_CREATION_TASK_FAILURE_CONTEXT:
        return dc->creation_task_failure_context->formatted_exception_string;
    case RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_UNSCHEDULABLE_CONTEXT:
        return dc->actor_unschedulable_context->error_message;
    default:
        return "";
    }
}
