/*
 * object_store_rpc: the store's RPC face. rayc.rpc.LocalRayletService's object methods
 * (CreateObject, SealObject, AbortObject, GetObjects, ReleaseObjects) for the node's
 * workers and drivers, and NodeManagerService.PinObjectIDs for owners.
 *
 * Every request is checked before the store sees it: IDs must be 28 bytes, the worker ID
 * must not be the raylet's reserved all-zero ID, timeouts -1 or more. Store errors map to
 * gRPC codes: RC_EEXIST -> ALREADY_EXISTS, RC_ENOSPC -> RESOURCE_EXHAUSTED, RC_ENOENT ->
 * NOT_FOUND, RC_ESTATE -> FAILED_PRECONDITION (sealing a sealed object, releasing what the
 * worker does not hold), RC_EAUTH -> PERMISSION_DENIED (sealing or aborting another
 * worker's object), RC_EINVAL -> INVALID_ARGUMENT. The message always names the object.
 *
 * A GetObjects call that must wait is held until the store answers it; if the caller goes
 * away first the get is cancelled (its pins go). A get abandoned by the store (the worker
 * disconnected, or the raylet is stopping) is answered UNAVAILABLE.
 *
 * Loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "node_manager.pb-c.h"
#include "object_store.h"
#include "rayc_raylet.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_ids.h"

/* 0 if id is a well-formed ID of size bytes; else answers INVALID_ARGUMENT and returns -1.
 * A worker ID must also not be the reserved all-zero one. */
static int rpc__check_id(rpc_call *call, const ProtobufCBinaryData *id, size_t size,
                         const char *what, int is_worker)
{
    if (id->len != size) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "%s: %s must be %zu bytes, got %zu",
                         rpc_call_method(call), what, size, id->len);
        return -1;
    }
    if (is_worker && rc_id_is_zero(id->data, size)) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "%s: the all-zero worker ID is reserved for the raylet",
                         rpc_call_method(call));
        return -1;
    }
    return 0;
}

/* Answers a seal or abort error. */
static void rpc__reply_creator_error(rpc_call *call, int rc, const uint8_t *id)
{
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(id, RC_OBJECT_ID_SIZE, hex);
    const char *verb = strcmp(rpc_call_method(call), "SealObject") == 0 ? "seal" : "abort";
    switch (rc) {
    case RC_ENOENT:
        rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "cannot %s object %s: not in this node's store",
                         verb, hex);
        break;
    case RC_ESTATE:
        rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION,
                         "cannot %s object %s: it is already sealed", verb, hex);
        break;
    case RC_EAUTH:
        rpc_reply_status(call, GRPC_STATUS_PERMISSION_DENIED,
                         "cannot %s object %s: another worker created it", verb, hex);
        break;
    default:
        rpc_reply_status(call, GRPC_STATUS_INTERNAL, "cannot %s object %s: %s", verb, hex,
                         rc_strerror(rc));
    }
}

static void handle_create_object(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet_store *s = arg;
    const Rayc__Rpc__CreateObjectRequest *req = (const Rayc__Rpc__CreateObjectRequest *)request;
    if (rpc__check_id(call, &req->worker_id, RC_WORKER_ID_SIZE, "worker_id", 1) < 0 ||
        rpc__check_id(call, &req->object_id, RC_OBJECT_ID_SIZE, "object_id", 0) < 0)
        return;
    char err[512];
    uint64_t offset = 0;
    int rc = raylet_store_create_object(s, req->object_id.data, req->worker_id.data,
                                        req->data_size, req->metadata_size, req->owner_address,
                                        1, &offset, err, sizeof(err));
    if (rc == 0) {
        Rayc__Rpc__CreateObjectReply reply = RAYC__RPC__CREATE_OBJECT_REPLY__INIT;
        reply.offset = offset;
        rpc_reply(call, &reply.base);
        return;
    }
    grpc_status_code code = rc == RC_EEXIST    ? GRPC_STATUS_ALREADY_EXISTS
                            : rc == RC_ENOSPC  ? GRPC_STATUS_RESOURCE_EXHAUSTED
                            : rc == RC_EINVAL  ? GRPC_STATUS_INVALID_ARGUMENT
                                               : GRPC_STATUS_INTERNAL;
    rpc_reply_status(call, code, "%s", err);
}

static void handle_seal_object(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Rayc__Rpc__SealObjectRequest *req = (const Rayc__Rpc__SealObjectRequest *)request;
    if (rpc__check_id(call, &req->worker_id, RC_WORKER_ID_SIZE, "worker_id", 1) < 0 ||
        rpc__check_id(call, &req->object_id, RC_OBJECT_ID_SIZE, "object_id", 0) < 0)
        return;
    int rc = raylet_store_seal(arg, req->object_id.data, req->worker_id.data);
    if (rc < 0) {
        rpc__reply_creator_error(call, rc, req->object_id.data);
        return;
    }
    Rayc__Rpc__SealObjectReply reply = RAYC__RPC__SEAL_OBJECT_REPLY__INIT;
    rpc_reply(call, &reply.base);
}

static void handle_abort_object(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Rayc__Rpc__AbortObjectRequest *req = (const Rayc__Rpc__AbortObjectRequest *)request;
    if (rpc__check_id(call, &req->worker_id, RC_WORKER_ID_SIZE, "worker_id", 1) < 0 ||
        rpc__check_id(call, &req->object_id, RC_OBJECT_ID_SIZE, "object_id", 0) < 0)
        return;
    int rc = raylet_store_abort(arg, req->object_id.data, req->worker_id.data);
    if (rc < 0) {
        rpc__reply_creator_error(call, rc, req->object_id.data);
        return;
    }
    Rayc__Rpc__AbortObjectReply reply = RAYC__RPC__ABORT_OBJECT_REPLY__INIT;
    rpc_reply(call, &reply.base);
}

/* ---- GetObjects ----------------------------------------------------------------------- */

typedef struct rpc_get {
    rpc_call *call;
    raylet_store *s;
    raylet_store_get *get; /* while waiting */
} rpc_get;

enum { RPC__GET_STACK = 16 };

static void rpc__get_answer(void *arg, int rc, const raylet_store_found *objects, size_t n)
{
    rpc_get *rg = arg;
    if (rc < 0) {
        rpc_reply_status(rg->call, GRPC_STATUS_UNAVAILABLE,
                         "GetObjects abandoned: the worker disconnected or the raylet is stopping");
        rc_free(rg);
        return;
    }
    Rayc__Rpc__LocalObject stack_objs[RPC__GET_STACK], *objs = stack_objs;
    Rayc__Rpc__LocalObject *stack_ptrs[RPC__GET_STACK], **ptrs = stack_ptrs;
    if (n > RPC__GET_STACK) {
        objs = rc_malloc(n * sizeof(*objs));
        ptrs = rc_malloc(n * sizeof(*ptrs));
    }
    for (size_t i = 0; i < n; i++) {
        rayc__rpc__local_object__init(&objs[i]);
        objs[i].object_id.data = (uint8_t *)objects[i].object_id;
        objs[i].object_id.len = RC_OBJECT_ID_SIZE;
        objs[i].found = objects[i].found;
        objs[i].offset = objects[i].offset;
        objs[i].data_size = objects[i].data_size;
        objs[i].metadata_size = objects[i].metadata_size;
        ptrs[i] = &objs[i];
    }
    Rayc__Rpc__GetObjectsReply reply = RAYC__RPC__GET_OBJECTS_REPLY__INIT;
    reply.n_objects = n;
    reply.objects = ptrs;
    rpc_reply(rg->call, &reply.base);
    if (objs != stack_objs) {
        rc_free(objs);
        rc_free(ptrs);
    }
    rc_free(rg);
}

static void rpc__get_cancelled(rpc_call *call, void *arg)
{
    rpc_get *rg = arg;
    raylet_store_get_cancel(rg->s, rg->get);
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "GetObjects cancelled by the caller");
    rc_free(rg);
}

static void handle_get_objects(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet_store *s = arg;
    const Rayc__Rpc__GetObjectsRequest *req = (const Rayc__Rpc__GetObjectsRequest *)request;
    if (rpc__check_id(call, &req->worker_id, RC_WORKER_ID_SIZE, "worker_id", 1) < 0)
        return;
    for (size_t i = 0; i < req->n_refs; i++) {
        if (req->refs[i]->object_id.len != RC_OBJECT_ID_SIZE) {
            rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                             "GetObjects: refs[%zu].object_id must be %d bytes, got %zu", i,
                             RC_OBJECT_ID_SIZE, req->refs[i]->object_id.len);
            return;
        }
    }
    if (req->timeout_ms < -1) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "GetObjects: timeout_ms must be -1 (no limit) or more, got %" PRId64,
                         req->timeout_ms);
        return;
    }
    rpc_get *rg = RC_NEW(rpc_get);
    rg->call = call;
    rg->s = s;
    raylet_store_get *g = NULL;
    int rc = raylet_store_get_objects(s, req->worker_id.data, req->refs, req->n_refs,
                                      req->timeout_ms, rpc__get_answer, rg, &g);
    if (rc < 0) {
        rc_free(rg);
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "GetObjects: %s", rc_strerror(rc));
        return;
    }
    if (g) { /* waiting: rg lives until the answer or the caller's cancellation */
        rg->get = g;
        rpc_call_on_cancel(call, rpc__get_cancelled, rg);
    }
}

static void handle_release_objects(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Rayc__Rpc__ReleaseObjectsRequest *req = (const Rayc__Rpc__ReleaseObjectsRequest *)request;
    if (rpc__check_id(call, &req->worker_id, RC_WORKER_ID_SIZE, "worker_id", 1) < 0)
        return;
    for (size_t i = 0; i < req->n_object_ids; i++)
        if (rpc__check_id(call, &req->object_ids[i], RC_OBJECT_ID_SIZE, "object_ids[]", 0) < 0)
            return;
    const uint8_t *stack_ids[RPC__GET_STACK], **ids = stack_ids;
    if (req->n_object_ids > RPC__GET_STACK)
        ids = rc_malloc(req->n_object_ids * sizeof(*ids));
    for (size_t i = 0; i < req->n_object_ids; i++)
        ids[i] = req->object_ids[i].data;
    size_t bad = 0;
    int rc = raylet_store_release(arg, req->worker_id.data, ids, req->n_object_ids, &bad);
    if (ids != stack_ids)
        rc_free(ids);
    if (rc < 0) {
        char hex[RC_ID_HEX_MAX], who[RC_ID_HEX_MAX];
        rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION,
                         "ReleaseObjects: worker %s does not hold object %s (object_ids[%zu]); "
                         "nothing was released",
                         rc_id_hex(req->worker_id.data, RC_WORKER_ID_SIZE, who),
                         rc_id_hex(req->object_ids[bad].data, RC_OBJECT_ID_SIZE, hex), bad);
        return;
    }
    Rayc__Rpc__ReleaseObjectsReply reply = RAYC__RPC__RELEASE_OBJECTS_REPLY__INIT;
    rpc_reply(call, &reply.base);
}

/* ---- PinObjectIDs --------------------------------------------------------------------- */

static void handle_pin_object_ids(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Ray__Rpc__PinObjectIDsRequest *req = (const Ray__Rpc__PinObjectIDsRequest *)request;
    /* An owner address without a worker ID says nothing new: keep the recorded owner. */
    const Ray__Rpc__Address *owner = req->owner_address &&
                                             req->owner_address->worker_id.len == RC_WORKER_ID_SIZE
                                         ? req->owner_address
                                         : NULL;
    protobuf_c_boolean *ok = rc_calloc(req->n_object_ids + 1, sizeof(*ok));
    /* As Ray's raylet does, each object gets its own verdict: a malformed ID is simply not
     * pinned. */
    for (size_t i = 0; i < req->n_object_ids; i++)
        ok[i] = req->object_ids[i].len == RC_OBJECT_ID_SIZE &&
                raylet_store_make_primary(arg, req->object_ids[i].data, owner) == 0;
    Ray__Rpc__PinObjectIDsReply reply = RAY__RPC__PIN_OBJECT_IDS_REPLY__INIT;
    reply.n_successes = req->n_object_ids;
    reply.successes = ok;
    rpc_reply(call, &reply.base);
    rc_free(ok);
}

const rpc_method_handler raylet_store_handlers[] = {
    {"CreateObject", handle_create_object},
    {"SealObject", handle_seal_object},
    {"AbortObject", handle_abort_object},
    {"GetObjects", handle_get_objects},
    {"ReleaseObjects", handle_release_objects},
    {NULL, NULL},
};

const rpc_method_handler raylet_store_pin_handlers[] = {
    {"PinObjectIDs", handle_pin_object_ids},
    {NULL, NULL},
};
