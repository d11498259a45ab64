/*
 * LocalRayletService, the conversation with the processes of this node over the raylet's
 * unix socket (proto/rayc_raylet.proto): RegisterClient, DisconnectClient,
 * NotifyTaskBlocked, NotifyTaskUnblocked, GetCredentials (raylet_auth.c answers it; only the
 * node's user reaches the socket, whose directory is 0700). The object methods of the same service belong to
 * the object store module, which adds its own handler table.
 *
 * Workers are the pool's (matched by the worker ID on their command line); drivers are
 * kept here, by worker ID, and watched: a driver process that died without disconnecting
 * is treated as disconnected (checked every second while drivers are registered). A
 * driver gone is reported to the GCS (ReportWorkerFailure: its goodbye's exit type, or
 * SYSTEM_ERROR if it died without one); a worker's goodbye is kept for its report.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "raylet_int.h"
#include "rayc_raylet.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

enum { RAYLET__DRIVER_CHECK_MS = 1000 };

void raylet_client_gone(raylet *r, const uint8_t worker_id[RC_WORKER_ID_SIZE])
{
    if (r->leases)
        lease_manager_owner_gone(r->leases, worker_id);
    /* Object store hook: release the client's pins and unsealed objects. */
    if (r->object_hooks.client_gone)
        r->object_hooks.client_gone(r->object_hooks.arg, worker_id);
}

/* d disconnected or died (exit_type and detail say which, for the GCS). */
static void raylet__driver_gone(raylet *r, raylet_driver *d, const char *why, int exit_type, const char *detail)
{
    char hex[RC_ID_HEX_MAX], text[600];
    RC_INFO("raylet: driver %.8s (pid %d) %s", rc_id_hex(d->worker_id, RC_WORKER_ID_SIZE, hex), (int)d->pid, why);
    snprintf(text, sizeof(text), "driver %.8s (pid %d) %s%s%s", hex, (int)d->pid, why, detail && *detail ? ": " : "",
             detail ? detail : "");
    raylet_exit e = {
        .worker_id = d->worker_id,
        .is_driver = 1,
        .pid = d->pid,
        .port = d->port,
        .exit_type = exit_type,
        .exit_detail = text,
        .start_time_ms = d->registered_ms,
    };
    raylet_failures_report(r, &e);
    rc_map_remove(&r->drivers, d->worker_id, RC_WORKER_ID_SIZE);
    uint8_t id[RC_WORKER_ID_SIZE];
    memcpy(id, d->worker_id, RC_WORKER_ID_SIZE);
    rc_free(d);
    raylet_client_gone(r, id);
}

static void raylet__check_drivers(uv_timer_t *t)
{
    raylet *r = t->data;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&r->drivers, &it, NULL, NULL, &v)) {
        raylet_driver *d = v;
        if (d->pid > 0 && kill(d->pid, 0) != 0 && errno == ESRCH) {
            raylet__driver_gone(r, d, "exited without disconnecting", RAY__RPC__WORKER_EXIT_TYPE__SYSTEM_ERROR, NULL);
            it = (rc_map_iter)RC_MAP_ITER_INIT; /* the map changed: look again from the start */
        }
    }
    if (!rc_map_size(&r->drivers))
        uv_timer_stop(t);
}

void raylet_local_start(raylet *r)
{
    rc_map_init(&r->drivers);
    uv_timer_init(r->loop, &r->driver_check_timer);
    r->driver_check_timer.data = r;
}

static void raylet__free_driver(void *v)
{
    rc_free(v);
}

void raylet_local_cleanup(raylet *r)
{
    rc_map_destroy(&r->drivers, raylet__free_driver);
    uv_close((uv_handle_t *)&r->driver_check_timer, NULL);
}

static void handle_register_client(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Rayc__Rpc__RegisterClientRequest *req = (const void *)request;
    if (req->worker_id.len != RC_WORKER_ID_SIZE)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "worker_id holds %zu bytes; a worker ID has %d",
                                req->worker_id.len, RC_WORKER_ID_SIZE);
    if (req->port < 0 || req->port > 65535)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "port %d is not a port number", req->port);
    if (r->state == RAYLET_STOPPING)
        return rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "the raylet is shutting down");
    char err[300];
    if (req->worker_type == RAY__RPC__WORKER_TYPE__DRIVER) {
        if (req->job_id.len != RC_JOB_ID_SIZE)
            return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "a driver registers with its job_id (%d bytes)",
                                    RC_JOB_ID_SIZE);
        raylet_driver *d = rc_map_get(&r->drivers, req->worker_id.data, RC_WORKER_ID_SIZE);
        if (!d) {
            d = RC_NEW(raylet_driver);
            memcpy(d->worker_id, req->worker_id.data, RC_WORKER_ID_SIZE);
            rc_map_put(&r->drivers, d->worker_id, RC_WORKER_ID_SIZE, d);
        }
        memcpy(d->job_id, req->job_id.data, RC_JOB_ID_SIZE);
        d->registered_ms = rc_wall_ms();
        d->pid = req->pid;
        d->port = req->port;
        uv_timer_start(&r->driver_check_timer, raylet__check_drivers, RAYLET__DRIVER_CHECK_MS, RAYLET__DRIVER_CHECK_MS);
        char hex[RC_ID_HEX_MAX];
        RC_INFO("raylet: driver %.8s (pid %d, port %d) registered", rc_id_hex(d->worker_id, RC_WORKER_ID_SIZE, hex),
                (int)d->pid, d->port);
    } else if (req->worker_type == RAY__RPC__WORKER_TYPE__WORKER) {
        int rc = worker_pool_register(r->pool, req->worker_id.data, req->pid, req->port, err, sizeof(err));
        if (rc == RC_ENOENT)
            return rpc_reply_status(call, GRPC_STATUS_NOT_FOUND,
                                    "%s; workers are started by their raylet, drivers register with worker_type DRIVER",
                                    err);
        if (rc < 0)
            return rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION, "%s", err);
    } else {
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "worker_type %d is not served by this raylet",
                                (int)req->worker_type);
    }
    Rayc__Rpc__RegisterClientReply reply = RAYC__RPC__REGISTER_CLIENT_REPLY__INIT;
    reply.node_id.data = r->node_id;
    reply.node_id.len = RC_NODE_ID_SIZE;
    reply.node_ip_address = r->spec.ip;
    reply.node_manager_port = r->port;
    reply.gcs_address = r->opts.gcs_address;
    /* Object store hook: where the node's shared-memory region is. */
    const char *store_path = NULL;
    if (r->object_hooks.describe_store)
        r->object_hooks.describe_store(r->object_hooks.arg, &store_path, &reply.store_size);
    if (store_path)
        reply.store_path = (char *)store_path;
    rpc_reply(call, &reply.base);
}

static void handle_disconnect_client(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Rayc__Rpc__DisconnectClientRequest *req = (const void *)request;
    Rayc__Rpc__DisconnectClientReply reply = RAYC__RPC__DISCONNECT_CLIENT_REPLY__INIT;
    if (req->worker_id.len != RC_WORKER_ID_SIZE)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "worker_id holds %zu bytes; a worker ID has %d",
                                req->worker_id.len, RC_WORKER_ID_SIZE);
    rpc_reply(call, &reply.base);
    raylet_driver *d = rc_map_get(&r->drivers, req->worker_id.data, RC_WORKER_ID_SIZE);
    if (d) {
        raylet__driver_gone(r, d, "disconnected", req->exit_type, req->exit_detail);
        return;
    }
    worker *w = worker_pool_find(r->pool, req->worker_id.data);
    if (!w)
        return;
    raylet_failures_goodbye(r, w->id, req->exit_type, req->exit_detail); /* for its report once reaped */
    RC_INFO("raylet: worker %.8s disconnects (%s)", w->id_hex,
            req->exit_detail && *req->exit_detail ? req->exit_detail : "no detail");
    worker_pool_disconnect(r->pool, w);
    raylet_client_gone(r, req->worker_id.data); /* what it owned and pinned goes */
}

static void raylet__notify_blocked(rpc_call *call, const ProtobufCBinaryData *worker_id, raylet *r, int blocked,
                                   const ProtobufCMessage *reply)
{
    if (worker_id->len != RC_WORKER_ID_SIZE)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "worker_id holds %zu bytes; a worker ID has %d",
                                worker_id->len, RC_WORKER_ID_SIZE);
    worker *w = worker_pool_find(r->pool, worker_id->data);
    if (!w) {
        /* Drivers hold no lease: nothing to lend. */
        if (rc_map_get(&r->drivers, worker_id->data, RC_WORKER_ID_SIZE))
            return rpc_reply(call, reply);
        return rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "no worker or driver with this worker_id is registered here");
    }
    lease_manager_set_blocked(r->leases, w, blocked); /* a worker without a lease has nothing to lend */
    rpc_reply(call, reply);
}

static void handle_notify_task_blocked(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Rayc__Rpc__NotifyTaskBlockedRequest *req = (const void *)request;
    Rayc__Rpc__NotifyTaskBlockedReply reply = RAYC__RPC__NOTIFY_TASK_BLOCKED_REPLY__INIT;
    raylet__notify_blocked(call, &req->worker_id, arg, 1, &reply.base);
}

static void handle_notify_task_unblocked(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Rayc__Rpc__NotifyTaskUnblockedRequest *req = (const void *)request;
    Rayc__Rpc__NotifyTaskUnblockedReply reply = RAYC__RPC__NOTIFY_TASK_UNBLOCKED_REPLY__INIT;
    raylet__notify_blocked(call, &req->worker_id, arg, 0, &reply.base);
}

static void handle_get_credentials(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Rayc__Rpc__GetCredentialsRequest *req = (const void *)request;
    if (req->job_id.len != 0 && req->job_id.len != RC_JOB_ID_SIZE)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                                "job_id holds %zu bytes; a job ID has %d (or leave it empty for no job token)",
                                req->job_id.len, RC_JOB_ID_SIZE);
    if (r->state == RAYLET_STOPPING)
        return rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE, "the raylet is shutting down");
    raylet_auth_credentials(r, call, req->job_id.len ? req->job_id.data : NULL);
}

static void handle_explain_leases(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Rayc__Rpc__ExplainLeasesRequest *req = (const void *)request;
    if (req->n_lease_ids > 4096)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "ask about at most 4096 leases at once, not %zu",
                                req->n_lease_ids);
    Rayc__Rpc__ExplainLeasesReply reply = RAYC__RPC__EXPLAIN_LEASES_REPLY__INIT;
    char **why = rc_calloc(req->n_lease_ids ? req->n_lease_ids : 1, sizeof(*why));
    for (size_t i = 0; i < req->n_lease_ids; i++)
        why[i] = (char *)lease_manager_explain(r->leases, req->lease_ids[i].data, req->lease_ids[i].len);
    reply.why = why;
    reply.n_why = req->n_lease_ids;
    rpc_reply(call, &reply.base);
    rc_free(why);
}

const rpc_method_handler raylet_local_handlers[] = {
    {"RegisterClient", handle_register_client},
    {"DisconnectClient", handle_disconnect_client},
    {"NotifyTaskBlocked", handle_notify_task_blocked},
    {"NotifyTaskUnblocked", handle_notify_task_unblocked},
    {"GetCredentials", handle_get_credentials},
    {"ExplainLeases", handle_explain_leases},
    {NULL, NULL},
};
