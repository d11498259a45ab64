/*
 * object_manager_push: the holder's side of a transfer. A Pull{node_id, object_id} from a
 * raylet that needs the object starts a push of the local sealed copy to that node's
 * raylet (its address from the node table): chunks of chunk_size bytes over the object's
 * data and metadata laid end to end (as Ray chunks them), chunks_in_flight Push calls
 * outstanding at a time. The Pull call is held and answered when the push ends, OK only
 * if the requester accepted every chunk. A second Pull for the same object and node while
 * a push runs joins it.
 *
 * Invariants: a push pins its copy (RAYLET_STORE_SELF) from start to end, so eviction or a
 * FreeObjects cannot take the bytes away between chunks (a chunk is packed into its call
 * when sent, so ending a push with chunks in flight is safe: their callbacks find no push
 * under their generation). A push ends at its first failure or once every chunk was
 * accepted; every held Pull call is answered exactly once (push end, the caller
 * cancelling, destroy).
 *
 * Loop thread only.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "object_manager.pb-c.h"
#include "object_manager_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"

static const ProtobufCServiceDescriptor *om_svc = &ray__rpc__object_manager_service__descriptor;

typedef struct om_chunk_cb {
    raylet_om *om;
    uint8_t key[OM__KEY_SIZE];
    uint32_t gen;
    uint32_t chunk;
} om_chunk_cb;

static void push__end(raylet_om *om, om_push *p)
{
    for (size_t i = 0; i < p->n_calls; i++) {
        rpc_call_on_cancel(p->calls[i], NULL, NULL);
        if (p->code == GRPC_STATUS_OK) {
            Ray__Rpc__PullReply reply = RAY__RPC__PULL_REPLY__INIT;
            rpc_reply(p->calls[i], &reply.base);
        } else {
            rpc_reply_status(p->calls[i], p->code, "%s", p->message);
        }
    }
    const uint8_t *ids[1] = {p->key};
    if (raylet_store_release(om->store, RAYLET_STORE_SELF, ids, 1, NULL) < 0)
        RC_ERROR("object manager: a pushed copy lost its pin before the push ended");
    rc_map_remove(&om->pushes, p->key, OM__KEY_SIZE);
    rpc_msg_free(p->owner ? &p->owner->base : NULL);
    rc_free(p->calls);
    rc_free(p);
}

static void push__fail(om_push *p, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void push__fail(om_push *p, grpc_status_code code, const char *fmt, ...)
{
    p->stopped = 1;
    if (p->code != GRPC_STATUS_OK)
        return; /* the first failure is the one to report */
    p->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof(p->message), fmt, ap);
    va_end(ap);
}

static void push__on_chunk_done(const rpc_status *st, ProtobufCMessage *reply, void *arg);

/* Sends chunks while the window allows, and ends p when nothing is left in flight. */
static void push__pump(raylet_om *om, om_push *p)
{
    while (!p->stopped && p->next_chunk < p->n_chunks &&
           p->in_flight < (uint32_t)om->chunks_in_flight) {
        uint32_t i = p->next_chunk;
        uint64_t start = (uint64_t)i * om->chunk_size;
        uint64_t len = p->total - start < om->chunk_size ? p->total - start : om->chunk_size;
        Ray__Rpc__PushRequest req = RAY__RPC__PUSH_REQUEST__INIT;
        req.push_id.data = p->push_id;
        req.push_id.len = sizeof(p->push_id);
        req.object_id.data = p->key;
        req.object_id.len = RC_OBJECT_ID_SIZE;
        req.node_id.data = om->node_id;
        req.node_id.len = RC_NODE_ID_SIZE;
        req.owner_address = p->owner;
        req.chunk_index = i;
        req.data_size = p->data_size;
        req.metadata_size = p->metadata_size;
        req.data.data = raylet_store_base(om->store) + p->offset + start; /* packed at once */
        req.data.len = len;
        rpc_client *cli = raylet_om__client(om, p->target);
        om_chunk_cb *cb = RC_NEW(om_chunk_cb);
        cb->om = om;
        memcpy(cb->key, p->key, OM__KEY_SIZE);
        cb->gen = p->gen;
        cb->chunk = i;
        raylet_om__call_started(om);
        if (!cli || rpc_client_call(cli, om_svc, "Push", &req.base, om->rpc_timeout_ms,
                                    push__on_chunk_done, cb) < 0) {
            raylet_om__call_failed(om);
            rc_free(cb);
            push__fail(p, GRPC_STATUS_UNAVAILABLE, "cannot call Push on %s", p->target);
            break;
        }
        p->next_chunk++;
        p->in_flight++;
        om->stats.chunks_sent++;
        om->stats.bytes_sent += len;
    }
    if (p->stopped || p->acked == p->n_chunks)
        push__end(om, p);
}

static void push__on_chunk_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    om_chunk_cb *cb = arg;
    raylet_om *om = cb->om;
    rpc_msg_free(reply);
    if (raylet_om__call_ended(om)) {
        rc_free(cb);
        return;
    }
    om_push *p = rc_map_get(&om->pushes, cb->key, OM__KEY_SIZE);
    if (p && p->gen == cb->gen) {
        p->in_flight--;
        if (st->code == GRPC_STATUS_OK) {
            p->acked++;
        } else {
            char hex[RC_ID_HEX_MAX];
            push__fail(p, st->code, "pushing object %s to %s failed at chunk %u of %u: %s",
                       rc_id_hex(p->key, RC_OBJECT_ID_SIZE, hex), p->target, cb->chunk + 1,
                       p->n_chunks, st->message);
        }
        push__pump(om, p);
    }
    rc_free(cb);
}

/* The requester gave up on its Pull: drop its call; with no caller left, stop pushing. */
static void push__on_pull_cancelled(rpc_call *call, void *arg)
{
    om_push *p = arg;
    for (size_t i = 0; i < p->n_calls; i++) {
        if (p->calls[i] == call) {
            p->calls[i] = p->calls[--p->n_calls];
            break;
        }
    }
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "Pull cancelled by the requester");
    if (p->n_calls == 0) {
        push__fail(p, GRPC_STATUS_CANCELLED, "cancelled");
        push__end(p->om, p);
    }
}

static void push__hold(om_push *p, rpc_call *call)
{
    if (p->n_calls == p->cap_calls) {
        p->cap_calls = p->cap_calls ? 2 * p->cap_calls : 2;
        p->calls = rc_realloc(p->calls, p->cap_calls * sizeof(*p->calls));
    }
    p->calls[p->n_calls++] = call;
    rpc_call_on_cancel(call, push__on_pull_cancelled, p);
}

void raylet_om__handle_pull(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet_om *om = arg;
    const Ray__Rpc__PullRequest *req = (const Ray__Rpc__PullRequest *)request;
    char hex[RC_ID_HEX_MAX], node_hex[RC_ID_HEX_MAX];
    if (req->node_id.len != RC_NODE_ID_SIZE || req->object_id.len != RC_OBJECT_ID_SIZE) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "Pull: node_id and object_id must be 28 bytes (got %zu and %zu)",
                         req->node_id.len, req->object_id.len);
        return;
    }
    rc_id_hex(req->object_id.data, RC_OBJECT_ID_SIZE, hex);
    rc_id_hex(req->node_id.data, RC_NODE_ID_SIZE, node_hex);
    if (memcmp(req->node_id.data, om->node_id, RC_NODE_ID_SIZE) == 0) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "Pull: node %s asked itself for object %s", node_hex, hex);
        return;
    }
    uint8_t key[OM__KEY_SIZE];
    memcpy(key, req->object_id.data, RC_OBJECT_ID_SIZE);
    memcpy(key + RC_OBJECT_ID_SIZE, req->node_id.data, RC_NODE_ID_SIZE);
    om_push *p = rc_map_get(&om->pushes, key, OM__KEY_SIZE);
    if (p) {
        push__hold(p, call);
        return;
    }
    raylet_object_info info;
    if (raylet_store_lookup(om->store, key, &info) < 0 || !info.sealed || info.pending_free) {
        rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "Pull: node has no sealed copy of object %s",
                         hex);
        return;
    }
    const char *target = om->node_address ? om->node_address(om->node_address_arg, key + RC_OBJECT_ID_SIZE)
                                          : NULL;
    if (!target || !*target || strlen(target) >= OM__TARGET_MAX) {
        rpc_reply_status(call, GRPC_STATUS_UNAVAILABLE,
                         "Pull: node %s is not known to be alive here; cannot push object %s",
                         node_hex, hex);
        return;
    }
    raylet_store_pin(om->store, key, RAYLET_STORE_SELF);
    p = RC_NEW(om_push);
    p->om = om;
    memcpy(p->key, key, OM__KEY_SIZE);
    p->gen = ++om->next_gen;
    snprintf(p->target, sizeof(p->target), "%s", target);
    rc_id_random(p->push_id, sizeof(p->push_id));
    p->offset = info.offset;
    p->data_size = info.data_size;
    p->metadata_size = info.metadata_size;
    p->total = info.data_size + info.metadata_size;
    p->n_chunks = p->total == 0 ? 1 : (uint32_t)((p->total + om->chunk_size - 1) / om->chunk_size);
    if (info.owner)
        p->owner = (Ray__Rpc__Address *)rpc_msg_dup(&info.owner->base);
    p->code = GRPC_STATUS_OK;
    rc_map_put(&om->pushes, key, OM__KEY_SIZE, p);
    push__hold(p, call);
    RC_DEBUG("object manager: pushing object %s (%" PRIu64 " bytes, %u chunks) to node %s at %s",
             hex, p->total, p->n_chunks, node_hex, target);
    push__pump(om, p);
}

void raylet_om__end_pushes(raylet_om *om, const uint8_t *node_id, grpc_status_code code,
                           const char *message)
{
    size_t n = rc_map_size(&om->pushes), k = 0;
    om_push **all = rc_malloc((n + 1) * sizeof(*all));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&om->pushes, &it, NULL, NULL, &v)) {
        om_push *p = v;
        if (!node_id || memcmp(p->key + RC_OBJECT_ID_SIZE, node_id, RC_NODE_ID_SIZE) == 0)
            all[k++] = p;
    }
    for (size_t i = 0; i < k; i++) {
        push__fail(all[i], code, "%s", message);
        push__end(om, all[i]);
    }
    rc_free(all);
}
