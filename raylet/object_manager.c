/*
 * object_manager: pulls (the requesting side), receiving pushed chunks, FreeObjects, owner
 * notifications, the client cache and the manager's lifetime (see object_manager.h; the
 * holder's side is object_manager_push.c).
 *
 * A pull is in one of three states: LOCATING (GetObjectLocationsOwner out to the owner),
 * TRANSFER (a Pull out to one holder, chunks expected) or BACKOFF (waiting to ask the owner
 * again). A transfer (inbound) is the partial copy being written: created on the first
 * chunk, sealed on the last. Pulls and transfers are separate because chunks may come
 * from a holder the pull has since given up on, or unasked; all that matters is that each
 * chunk index is written once.
 *
 * One timer (tick) runs while pulls or transfers exist: it ends backoffs and gives up
 * transfers without progress for transfer_idle_ms. Policy decisions take the time as an
 * argument (om__now) so they read the same way in tests.
 *
 * Loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core_worker.pb-c.h"
#include "object_manager.pb-c.h"
#include "object_manager_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

enum { OM__MAX_CLIENTS = 256 };

static const ProtobufCServiceDescriptor *cw_svc = &ray__rpc__core_worker_service__descriptor;
static const ProtobufCServiceDescriptor *om_svc = &ray__rpc__object_manager_service__descriptor;

typedef enum om_pull_state { PULL_LOCATING, PULL_TRANSFER, PULL_BACKOFF } om_pull_state;

typedef struct om_pull {
    uint8_t id[RC_OBJECT_ID_SIZE];
    Ray__Rpc__Address *owner; /* owned */
    char owner_target[OM__TARGET_MAX];
    om_pull_state state;
    uint32_t gen; /* changes whenever the pull moves on: older callbacks are stale */
    uint8_t (*holders)[RC_NODE_ID_SIZE];
    size_t n_holders, next_holder;
    uint8_t holder[RC_NODE_ID_SIZE]; /* TRANSFER: who was asked */
    uint64_t object_size;            /* from the owner; 0 if unknown */
    int64_t retry_at_ms, backoff_ms, progress_ms;
    int retrying; /* a holder or the owner failed once: go on only while wanted */
} om_pull;

typedef struct om_inbound {
    uint8_t id[RC_OBJECT_ID_SIZE];
    uint64_t data_size, metadata_size, total, offset;
    uint32_t n_chunks, n_received;
    uint8_t *have; /* one byte per chunk */
    Ray__Rpc__Address *owner; /* owned, may be NULL */
    int64_t progress_ms;
} om_inbound;

typedef struct om_client {
    rpc_client *cli;
    uint64_t last_use;
} om_client;

/* What a pull's RPC callback needs to find its pull again. */
typedef struct om_pull_cb {
    raylet_om *om;
    uint8_t id[RC_OBJECT_ID_SIZE];
    uint32_t gen;
} om_pull_cb;

static int64_t om__now(void)
{
    return rc_mono_ms();
}

static char *om__hex(const uint8_t *id, char *buf)
{
    return rc_id_hex(id, RC_OBJECT_ID_SIZE, buf);
}

/* ---- lifetime, calls, clients ------------------------------------------------------ */

static void om__maybe_free(raylet_om *om)
{
    if (!om->destroyed || om->inflight > 0 || !om->tick_closed)
        return;
    rc_map_destroy(&om->clients, NULL);
    rc_map_destroy(&om->pulls, NULL);
    rc_map_destroy(&om->inbound, NULL);
    rc_map_destroy(&om->pushes, NULL);
    rc_free(om);
}

void raylet_om__call_started(raylet_om *om)
{
    om->inflight++;
}

void raylet_om__call_failed(raylet_om *om)
{
    om->inflight--;
}

int raylet_om__call_ended(raylet_om *om)
{
    om->inflight--;
    if (!om->destroyed)
        return 0;
    om__maybe_free(om);
    return 1;
}

static void om__destroy_client(void *p)
{
    om_client *c = p;
    rpc_client_destroy(c->cli);
    rc_free(c);
}

rpc_client *raylet_om__client(raylet_om *om, const char *target)
{
    om_client *c = rc_map_get_str(&om->clients, target);
    if (c) {
        c->last_use = ++om->use_clock;
        return c->cli;
    }
    if (rc_map_size(&om->clients) >= OM__MAX_CLIENTS) {
        /* Drop the least recently used channel; its calls fail CANCELLED and retry. */
        rc_map_iter it = RC_MAP_ITER_INIT;
        const void *key;
        size_t klen;
        void *v;
        char oldest_key[OM__TARGET_MAX] = ""; /* map keys carry no NUL */
        uint64_t oldest = UINT64_MAX;
        while (rc_map_next(&om->clients, &it, &key, &klen, &v)) {
            if (((om_client *)v)->last_use < oldest && klen < sizeof(oldest_key)) {
                oldest = ((om_client *)v)->last_use;
                memcpy(oldest_key, key, klen);
                oldest_key[klen] = '\0';
            }
        }
        om_client *old = rc_map_remove_str(&om->clients, oldest_key);
        if (old)
            om__destroy_client(old);
    }
    rpc_client *cli = NULL;
    if (rpc_client_create(om->rpc, target, om->has_client_options ? &om->client_options : NULL,
                          &cli) < 0)
        return NULL;
    c = RC_NEW(om_client);
    c->cli = cli;
    c->last_use = ++om->use_clock;
    rc_map_put_str(&om->clients, target, c);
    return cli;
}

/* "ip:port" of an address into out; 0, or RC_EINVAL if it has no usable endpoint. */
static int om__address_target(const Ray__Rpc__Address *a, char *out, size_t outlen)
{
    if (!a || !a->ip_address || !*a->ip_address || a->port <= 0 || a->port > 65535)
        return RC_EINVAL;
    int n = snprintf(out, outlen, "%s:%d", a->ip_address, (int)a->port);
    return n > 0 && (size_t)n < outlen ? 0 : RC_EINVAL;
}

static void om__tick_update(raylet_om *om);

/* ---- owner notifications ------------------------------------------------------------ */

static void om__on_location_updated(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet_om *om = arg;
    rpc_msg_free(reply);
    if (raylet_om__call_ended(om))
        return;
    if (st->code != GRPC_STATUS_OK)
        RC_DEBUG("object manager: the owner did not take a location update: %s", st->message);
}

/* Tells owner that this node gained (ADDED) or lost (REMOVED) a copy of id. Best effort. */
static void om__tell_owner(raylet_om *om, const uint8_t *id, const Ray__Rpc__Address *owner,
                           Ray__Rpc__ObjectPlasmaLocationUpdate what)
{
    char target[OM__TARGET_MAX];
    if (om->destroyed || om__address_target(owner, target, sizeof(target)) < 0)
        return;
    rpc_client *cli = raylet_om__client(om, target);
    if (!cli)
        return;
    Ray__Rpc__ObjectLocationUpdate up = RAY__RPC__OBJECT_LOCATION_UPDATE__INIT, *ups[1] = {&up};
    up.object_id.data = (uint8_t *)id;
    up.object_id.len = RC_OBJECT_ID_SIZE;
    up._plasma_location_update_case =
        RAY__RPC__OBJECT_LOCATION_UPDATE___PLASMA_LOCATION_UPDATE_PLASMA_LOCATION_UPDATE;
    up.plasma_location_update = what;
    Ray__Rpc__UpdateObjectLocationBatchRequest req = RAY__RPC__UPDATE_OBJECT_LOCATION_BATCH_REQUEST__INIT;
    req.intended_worker_id = owner->worker_id;
    req.node_id.data = om->node_id;
    req.node_id.len = RC_NODE_ID_SIZE;
    req.n_object_location_updates = 1;
    req.object_location_updates = ups;
    raylet_om__call_started(om);
    if (rpc_client_call(cli, cw_svc, "UpdateObjectLocationBatch", &req.base, om->rpc_timeout_ms,
                        om__on_location_updated, om) < 0)
        raylet_om__call_failed(om);
}

/* ---- pulls -------------------------------------------------------------------------- */

static void om__pull_free(om_pull *p)
{
    rpc_msg_free(p->owner ? &p->owner->base : NULL);
    rc_free(p->holders);
    rc_free(p);
}

/* The pull is over (done, failed, or nobody wants it); its callbacks become stale. */
static void om__pull_end(raylet_om *om, om_pull *p)
{
    rc_map_remove(&om->pulls, p->id, RC_OBJECT_ID_SIZE);
    om__pull_free(p);
    om__tick_update(om);
}

/* Fetching failed for good: the gets waiting for it answer not found. */
static void om__pull_fail(raylet_om *om, om_pull *p, const char *why)
{
    char hex[RC_ID_HEX_MAX];
    RC_INFO("object manager: cannot fetch object %s: %s", om__hex(p->id, hex), why);
    uint8_t id[RC_OBJECT_ID_SIZE];
    memcpy(id, p->id, sizeof(id));
    om->stats.pulls_failed++;
    om__pull_end(om, p);
    raylet_store_fetch_failed(om->store, id);
}

static void om__pull_backoff(raylet_om *om, om_pull *p)
{
    p->gen = ++om->next_gen;
    p->retrying = 1;
    p->state = PULL_BACKOFF;
    p->retry_at_ms = om__now() + p->backoff_ms;
    p->backoff_ms = p->backoff_ms * 2 < om->pull_retry_max_ms ? p->backoff_ms * 2
                                                               : om->pull_retry_max_ms;
    om__tick_update(om);
}

static om_pull_cb *om__pull_cb(raylet_om *om, const om_pull *p)
{
    om_pull_cb *cb = RC_NEW(om_pull_cb);
    cb->om = om;
    memcpy(cb->id, p->id, RC_OBJECT_ID_SIZE);
    cb->gen = p->gen;
    return cb;
}

/* The pull a callback belongs to, or NULL if it moved on (or the manager is going).
 * Frees cb. */
static om_pull *om__pull_of(om_pull_cb *cb)
{
    raylet_om *om = cb->om;
    om_pull *p = NULL;
    if (!raylet_om__call_ended(om)) {
        p = rc_map_get(&om->pulls, cb->id, RC_OBJECT_ID_SIZE);
        if (p && p->gen != cb->gen)
            p = NULL;
    }
    rc_free(cb);
    return p;
}

static void om__locate(raylet_om *om, om_pull *p);
static void om__next_holder(raylet_om *om, om_pull *p);

static void om__on_pull_reply(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    om_pull_cb *cb = arg;
    raylet_om *om = cb->om;
    om_pull *p = om__pull_of(cb);
    rpc_msg_free(reply);
    if (!p)
        return;
    char hex[RC_ID_HEX_MAX];
    if (st->code == GRPC_STATUS_OK) {
        /* Every chunk was accepted, so the copy is sealed and the pull ended already,
         * unless it was freed meanwhile: nothing left to do but look again. */
        om__locate(om, p);
        return;
    }
    RC_DEBUG("object manager: pulling object %s from a holder failed (%s): %s", om__hex(p->id, hex),
             rpc_code_name(st->code), st->message);
    p->retrying = 1;
    if (st->code == GRPC_STATUS_RESOURCE_EXHAUSTED) {
        om__pull_backoff(om, p); /* our store is full: another holder will not help */
        return;
    }
    om__next_holder(om, p);
}

/* A pull goes on after a failure only while some get waits for its object; a first
 * attempt goes through regardless, so that a get with timeout 0 (or a wait with
 * fetch_local) still brings the object here for the next look. */
static int om__pull_unwanted(raylet_om *om, const om_pull *p)
{
    return p->retrying && !raylet_store_is_wanted(om->store, p->id);
}

/* Asks the next holder that has a known address; none left: back off. */
static void om__next_holder(raylet_om *om, om_pull *p)
{
    p->gen = ++om->next_gen;
    if (om__pull_unwanted(om, p)) {
        om__pull_end(om, p);
        return;
    }
    while (p->next_holder < p->n_holders) {
        const uint8_t *node = p->holders[p->next_holder++];
        const char *target = om->node_address ? om->node_address(om->node_address_arg, node) : NULL;
        if (!target || !*target)
            continue;
        rpc_client *cli = raylet_om__client(om, target);
        if (!cli)
            continue;
        Ray__Rpc__PullRequest req = RAY__RPC__PULL_REQUEST__INIT;
        req.node_id.data = om->node_id;
        req.node_id.len = RC_NODE_ID_SIZE;
        req.object_id.data = p->id;
        req.object_id.len = RC_OBJECT_ID_SIZE;
        /* The holder answers when the whole object has been pushed: allow the transfer
         * time at a slow 10 MB/s on top of the usual deadline. Stalls are caught sooner by
         * the idle check. */
        int64_t deadline = om->rpc_timeout_ms + (int64_t)(p->object_size / 10000);
        om_pull_cb *cb = om__pull_cb(om, p);
        raylet_om__call_started(om);
        if (rpc_client_call(cli, om_svc, "Pull", &req.base, deadline, om__on_pull_reply, cb) < 0) {
            raylet_om__call_failed(om);
            rc_free(cb);
            continue;
        }
        memcpy(p->holder, node, RC_NODE_ID_SIZE);
        p->state = PULL_TRANSFER;
        p->progress_ms = om__now();
        om->stats.pull_requests++;
        om__tick_update(om);
        return;
    }
    om__pull_backoff(om, p);
}

static void om__on_locations(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    om_pull_cb *cb = arg;
    raylet_om *om = cb->om;
    om_pull *p = om__pull_of(cb);
    if (!p) {
        rpc_msg_free(reply);
        return;
    }
    char why[600];
    if (st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_NOT_FOUND) {
        snprintf(why, sizeof(why), "%s %s: %s",
                 st->code == GRPC_STATUS_UNAVAILABLE ? "its owner is unreachable at"
                                                     : "its owner does not know it at",
                 p->owner_target, st->message);
        om__pull_fail(om, p, why);
        return;
    }
    if (st->code != GRPC_STATUS_OK) {
        om__pull_backoff(om, p); /* a slow or busy owner: ask again later */
        return;
    }
    /* OK: reply is a message from here on. */
    Ray__Rpc__GetObjectLocationsOwnerReply *r = (Ray__Rpc__GetObjectLocationsOwnerReply *)reply;
    const Ray__Rpc__WorkerObjectLocationsPubMessage *info =
        r->n_object_location_infos > 0 ? r->object_location_infos[0] : NULL;
    if (info && info->ref_removed) {
        rpc_msg_free(reply);
        snprintf(why, sizeof(why), "its owner at %s freed it", p->owner_target);
        om__pull_fail(om, p, why);
        return;
    }
    rc_free(p->holders);
    p->holders = NULL;
    p->n_holders = p->next_holder = 0;
    if (info) {
        p->object_size = info->object_size;
        p->holders = rc_malloc((info->n_node_ids + 1) * sizeof(*p->holders));
        for (size_t i = 0; i < info->n_node_ids; i++) {
            const ProtobufCBinaryData *n = &info->node_ids[i];
            if (n->len == RC_NODE_ID_SIZE && memcmp(n->data, om->node_id, RC_NODE_ID_SIZE) != 0)
                memcpy(p->holders[p->n_holders++], n->data, RC_NODE_ID_SIZE);
        }
    }
    rpc_msg_free(reply);
    om__next_holder(om, p); /* no holder yet (still being created): backs off */
}

/* Asks the owner where copies are. */
static void om__locate(raylet_om *om, om_pull *p)
{
    p->gen = ++om->next_gen;
    raylet_object_info info;
    if (raylet_store_lookup(om->store, p->id, &info) == 0 && info.sealed) {
        om__pull_end(om, p); /* arrived, or made here, meanwhile */
        return;
    }
    if (om__pull_unwanted(om, p)) {
        om__pull_end(om, p);
        return;
    }
    rpc_client *cli = raylet_om__client(om, p->owner_target);
    Ray__Rpc__GetObjectLocationsOwnerRequest req = RAY__RPC__GET_OBJECT_LOCATIONS_OWNER_REQUEST__INIT;
    ProtobufCBinaryData ids[1] = {{RC_OBJECT_ID_SIZE, p->id}};
    req.intended_worker_id = p->owner->worker_id;
    req.n_object_ids = 1;
    req.object_ids = ids;
    om_pull_cb *cb = om__pull_cb(om, p);
    raylet_om__call_started(om);
    if (!cli || rpc_client_call(cli, cw_svc, "GetObjectLocationsOwner", &req.base,
                                om->rpc_timeout_ms, om__on_locations, cb) < 0) {
        raylet_om__call_failed(om);
        rc_free(cb);
        om__pull_backoff(om, p);
        return;
    }
    p->state = PULL_LOCATING;
}

void raylet_om_pull(raylet_om *om, const uint8_t *object_id, const Ray__Rpc__Address *owner)
{
    char target[OM__TARGET_MAX], hex[RC_ID_HEX_MAX];
    if (om->destroyed || rc_map_get(&om->pulls, object_id, RC_OBJECT_ID_SIZE))
        return;
    if (om__address_target(owner, target, sizeof(target)) < 0) {
        RC_DEBUG("object manager: object %s has no owner address; waiting for a local copy",
                 om__hex(object_id, hex));
        return;
    }
    om_pull *p = RC_NEW(om_pull);
    memcpy(p->id, object_id, RC_OBJECT_ID_SIZE);
    p->owner = (Ray__Rpc__Address *)rpc_msg_dup(&owner->base);
    snprintf(p->owner_target, sizeof(p->owner_target), "%s", target);
    p->backoff_ms = om->pull_retry_ms;
    rc_map_put(&om->pulls, p->id, RC_OBJECT_ID_SIZE, p);
    om__locate(om, p);
}

/* ---- receiving chunks --------------------------------------------------------------- */

static void om__inbound_free(om_inbound *in)
{
    rpc_msg_free(in->owner ? &in->owner->base : NULL);
    rc_free(in->have);
    rc_free(in);
}

/* Drops a partial copy: its space goes back to the store. */
static void om__inbound_abort(raylet_om *om, om_inbound *in)
{
    rc_map_remove(&om->inbound, in->id, RC_OBJECT_ID_SIZE);
    raylet_store_abort(om->store, in->id, RAYLET_STORE_SELF);
    om__inbound_free(in);
    om__tick_update(om);
}

/* The first chunk of an object: create its copy. 0, or answers the call and returns -1. */
static int om__inbound_start(raylet_om *om, rpc_call *call, const Ray__Rpc__PushRequest *req,
                             om_inbound **out)
{
    char err[512];
    uint64_t offset = 0;
    int rc = raylet_store_create_object(om->store, req->object_id.data, RAYLET_STORE_SELF,
                                        req->data_size, req->metadata_size, req->owner_address, 0,
                                        &offset, err, sizeof(err));
    if (rc < 0) {
        rpc_reply_status(call, rc == RC_ENOSPC ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                               : GRPC_STATUS_INVALID_ARGUMENT, "Push: %s", err);
        return -1;
    }
    om_inbound *in = RC_NEW(om_inbound);
    memcpy(in->id, req->object_id.data, RC_OBJECT_ID_SIZE);
    in->data_size = req->data_size;
    in->metadata_size = req->metadata_size;
    in->total = req->data_size + req->metadata_size;
    in->offset = offset;
    in->n_chunks = in->total == 0 ? 1 : (uint32_t)((in->total + om->chunk_size - 1) / om->chunk_size);
    in->have = rc_calloc(in->n_chunks, 1);
    if (req->owner_address)
        in->owner = (Ray__Rpc__Address *)rpc_msg_dup(&req->owner_address->base);
    rc_map_put(&om->inbound, in->id, RC_OBJECT_ID_SIZE, in);
    om__tick_update(om);
    *out = in;
    return 0;
}

/* The last chunk is in: seal (which answers the waiting gets) and tell the owner. */
static void om__inbound_complete(raylet_om *om, om_inbound *in)
{
    rc_map_remove(&om->inbound, in->id, RC_OBJECT_ID_SIZE);
    om_pull *p = rc_map_get(&om->pulls, in->id, RC_OBJECT_ID_SIZE);
    const Ray__Rpc__Address *owner = in->owner ? in->owner : p ? p->owner : NULL;
    uint8_t id[RC_OBJECT_ID_SIZE];
    memcpy(id, in->id, sizeof(id));
    Ray__Rpc__Address *owner_copy = owner ? (Ray__Rpc__Address *)rpc_msg_dup(&owner->base) : NULL;
    if (p) {
        om->stats.pulls_done++;
        om__pull_end(om, p);
    }
    om__inbound_free(in);
    om__tick_update(om);
    raylet_store_seal(om->store, id, RAYLET_STORE_SELF);
    if (owner_copy) {
        om__tell_owner(om, id, owner_copy, RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__ADDED);
        rpc_msg_free(&owner_copy->base);
    }
}

static void om__handle_push(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet_om *om = arg;
    const Ray__Rpc__PushRequest *req = (const Ray__Rpc__PushRequest *)request;
    Ray__Rpc__PushReply ok = RAY__RPC__PUSH_REPLY__INIT;
    char hex[RC_ID_HEX_MAX];
    if (req->object_id.len != RC_OBJECT_ID_SIZE) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "Push: object_id must be 28 bytes, got %zu", req->object_id.len);
        return;
    }
    om__hex(req->object_id.data, hex);
    if (req->data_size > UINT64_MAX - req->metadata_size) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "Push: object %s: sizes overflow", hex);
        return;
    }
    /* The chunk must fit the sizes it claims before anything is created for it. */
    uint64_t total = req->data_size + req->metadata_size;
    uint64_t n_chunks = total == 0 ? 1 : (total + om->chunk_size - 1) / om->chunk_size;
    uint64_t start = (uint64_t)req->chunk_index * om->chunk_size;
    uint64_t expect = start < total ? (total - start < om->chunk_size ? total - start : om->chunk_size) : 0;
    if (req->chunk_index >= n_chunks || req->data.len != expect) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "Push: chunk %u of object %s does not fit: %zu bytes, expected %" PRIu64
                         " (%" PRIu64 " chunks of %" PRIu64 " bytes for %" PRIu64 "+%" PRIu64 ")",
                         req->chunk_index, hex, req->data.len, expect, n_chunks, om->chunk_size,
                         req->data_size, req->metadata_size);
        return;
    }
    om_inbound *in = rc_map_get(&om->inbound, req->object_id.data, RC_OBJECT_ID_SIZE);
    if (!in) {
        raylet_object_info info;
        if (raylet_store_lookup(om->store, req->object_id.data, &info) == 0) {
            /* Sealed: a duplicate. Unsealed: a local worker is creating it. Either way
             * the bytes are the same (objects are immutable): nothing to write. */
            rpc_reply(call, &ok.base);
            return;
        }
        if (om__inbound_start(om, call, req, &in) < 0)
            return;
    } else if (req->data_size != in->data_size || req->metadata_size != in->metadata_size) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "Push: object %s is %" PRIu64 "+%" PRIu64 " bytes, not %" PRIu64 "+%" PRIu64,
                         hex, in->data_size, in->metadata_size, req->data_size, req->metadata_size);
        return;
    }
    in->progress_ms = om__now();
    om_pull *p = rc_map_get(&om->pulls, in->id, RC_OBJECT_ID_SIZE);
    if (p)
        p->progress_ms = in->progress_ms;
    if (in->have[req->chunk_index]) {
        om->stats.chunks_duplicate++;
        rpc_reply(call, &ok.base);
        return;
    }
    if (req->data.len)
        memcpy(raylet_store_base(om->store) + in->offset + start, req->data.data, req->data.len);
    in->have[req->chunk_index] = 1;
    om->stats.chunks_received++;
    om->stats.bytes_received += req->data.len;
    if (++in->n_received == in->n_chunks)
        om__inbound_complete(om, in);
    rpc_reply(call, &ok.base);
}

/* ---- FreeObjects -------------------------------------------------------------------- */

static void om__handle_free_objects(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet_om *om = arg;
    const Ray__Rpc__FreeObjectsRequest *req = (const Ray__Rpc__FreeObjectsRequest *)request;
    for (size_t i = 0; i < req->n_object_ids; i++) {
        if (req->object_ids[i].len != RC_OBJECT_ID_SIZE) {
            rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                             "FreeObjects: object_ids[%zu] must be 28 bytes, got %zu", i,
                             req->object_ids[i].len);
            return;
        }
    }
    for (size_t i = 0; i < req->n_object_ids; i++) {
        const uint8_t *id = req->object_ids[i].data;
        /* A transfer in progress would bring the object back: stop it first. */
        om_inbound *in = rc_map_get(&om->inbound, id, RC_OBJECT_ID_SIZE);
        if (in)
            om__inbound_abort(om, in);
        om_pull *p = rc_map_get(&om->pulls, id, RC_OBJECT_ID_SIZE);
        if (p)
            om__pull_end(om, p);
        raylet_store_free(om->store, id);
    }
    Ray__Rpc__FreeObjectsReply reply = RAY__RPC__FREE_OBJECTS_REPLY__INIT;
    rpc_reply(call, &reply.base);
}

/* ---- tick --------------------------------------------------------------------------- */

/* Collects the keys of a map (which callbacks below may change). Caller frees. */
static uint8_t (*om__keys(const rc_map *m, size_t *n))[RC_OBJECT_ID_SIZE]
{
    uint8_t(*keys)[RC_OBJECT_ID_SIZE] = rc_malloc((rc_map_size(m) + 1) * RC_OBJECT_ID_SIZE);
    rc_map_iter it = RC_MAP_ITER_INIT;
    const void *k;
    *n = 0;
    while (rc_map_next(m, &it, &k, NULL, NULL))
        memcpy(keys[(*n)++], k, RC_OBJECT_ID_SIZE);
    return keys;
}

static void om__on_tick(uv_timer_t *t)
{
    raylet_om *om = t->data;
    int64_t now = om__now();
    size_t n;
    uint8_t(*ids)[RC_OBJECT_ID_SIZE] = om__keys(&om->pulls, &n);
    for (size_t i = 0; i < n; i++) {
        om_pull *p = rc_map_get(&om->pulls, ids[i], RC_OBJECT_ID_SIZE);
        if (!p)
            continue;
        if (p->state == PULL_BACKOFF && now >= p->retry_at_ms) {
            om__locate(om, p);
        } else if (p->state == PULL_TRANSFER && now - p->progress_ms >= om->transfer_idle_ms) {
            char hex[RC_ID_HEX_MAX];
            RC_INFO("object manager: no chunk of object %s for %" PRId64 " ms; trying another holder",
                    om__hex(p->id, hex), now - p->progress_ms);
            p->retrying = 1;
            om__next_holder(om, p);
        }
    }
    rc_free(ids);
    ids = om__keys(&om->inbound, &n);
    for (size_t i = 0; i < n; i++) {
        om_inbound *in = rc_map_get(&om->inbound, ids[i], RC_OBJECT_ID_SIZE);
        om_pull *p = rc_map_get(&om->pulls, ids[i], RC_OBJECT_ID_SIZE);
        if (in && now - in->progress_ms >= om->transfer_idle_ms && (!p || p->state != PULL_TRANSFER))
            om__inbound_abort(om, in);
    }
    rc_free(ids);
}

/* Runs the tick while there is anything to watch. */
static void om__tick_update(raylet_om *om)
{
    int needed = !om->destroyed && (rc_map_size(&om->pulls) > 0 || rc_map_size(&om->inbound) > 0);
    if (needed && !om->ticking)
        uv_timer_start(&om->tick, om__on_tick, (uint64_t)om->tick_ms, (uint64_t)om->tick_ms);
    else if (!needed && om->ticking)
        uv_timer_stop(&om->tick);
    om->ticking = needed;
}

/* ---- store hooks, lifetime ---------------------------------------------------------- */

static void om__store_fetch(void *arg, const uint8_t *object_id, const Ray__Rpc__Address *owner)
{
    raylet_om_pull(arg, object_id, owner);
}

static void om__store_evicted(void *arg, const uint8_t *object_id, const Ray__Rpc__Address *owner)
{
    if (owner)
        om__tell_owner(arg, object_id, owner, RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__REMOVED);
}

int raylet_om_create(rpc_ctx *rpc, raylet_store *store, const raylet_om_options *opts,
                     raylet_om **out)
{
    if (!rpc || !store || !opts || !opts->node_id)
        return RC_EINVAL;
    raylet_om *om = RC_NEW(raylet_om);
    om->rpc = rpc;
    om->loop = rpc_ctx_loop(rpc);
    om->store = store;
    memcpy(om->node_id, opts->node_id, RC_NODE_ID_SIZE);
    om->node_address = opts->node_address;
    om->node_address_arg = opts->node_address_arg;
    om->chunk_size = opts->chunk_size ? opts->chunk_size : RAYLET_OM_DEFAULT_CHUNK_SIZE;
    if (om->chunk_size < 4096)
        om->chunk_size = 4096; /* chunk indexes are 32 bits; tiny chunks help nobody */
    om->chunks_in_flight = opts->chunks_in_flight > 0 ? opts->chunks_in_flight
                                                      : RAYLET_OM_DEFAULT_CHUNKS_IN_FLIGHT;
    om->rpc_timeout_ms = opts->rpc_timeout_ms > 0 ? opts->rpc_timeout_ms : RAYLET_OM_DEFAULT_RPC_TIMEOUT_MS;
    om->pull_retry_ms = opts->pull_retry_ms > 0 ? opts->pull_retry_ms : RAYLET_OM_DEFAULT_PULL_RETRY_MS;
    om->pull_retry_max_ms = opts->pull_retry_max_ms > 0 ? opts->pull_retry_max_ms
                                                        : RAYLET_OM_DEFAULT_PULL_RETRY_MAX_MS;
    if (om->pull_retry_max_ms < om->pull_retry_ms)
        om->pull_retry_max_ms = om->pull_retry_ms;
    om->transfer_idle_ms = opts->transfer_idle_ms > 0 ? opts->transfer_idle_ms
                                                      : RAYLET_OM_DEFAULT_TRANSFER_IDLE_MS;
    if (opts->client_options) {
        om->client_options = *opts->client_options;
        om->has_client_options = 1;
    }
    /* Fine enough for backoffs and idle checks, and never a busy loop. */
    int64_t tick = om->pull_retry_ms < om->transfer_idle_ms / 4 ? om->pull_retry_ms
                                                                : om->transfer_idle_ms / 4;
    om->tick_ms = tick < 10 ? 10 : tick > 100 ? 100 : tick;
    rc_map_init(&om->clients);
    rc_map_init(&om->pulls);
    rc_map_init(&om->inbound);
    rc_map_init(&om->pushes);
    uv_timer_init(om->loop, &om->tick);
    om->tick.data = om;
    raylet_store_hooks hooks = {om__store_fetch, om__store_evicted, om};
    raylet_store_set_hooks(store, &hooks);
    *out = om;
    return 0;
}

static void om__on_tick_closed(uv_handle_t *h)
{
    raylet_om *om = h->data;
    om->tick_closed = 1;
    om__maybe_free(om);
}

void raylet_om_destroy(raylet_om *om)
{
    if (!om || om->destroyed)
        return;
    raylet_om__end_pushes(om, NULL, GRPC_STATUS_UNAVAILABLE, "the raylet is stopping");
    om->destroyed = 1;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&om->inbound, &it, NULL, NULL, &v)) {
        om_inbound *in = v;
        raylet_store_abort(om->store, in->id, RAYLET_STORE_SELF);
        om__inbound_free(in);
    }
    rc_map_destroy(&om->inbound, NULL);
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&om->pulls, &it, NULL, NULL, &v))
        om__pull_free(v);
    rc_map_destroy(&om->pulls, NULL);
    rc_map_destroy(&om->clients, om__destroy_client);
    raylet_store_set_hooks(om->store, NULL);
    om->ticking = 0;
    uv_timer_stop(&om->tick);
    uv_close((uv_handle_t *)&om->tick, om__on_tick_closed);
}

void raylet_om_node_gone(raylet_om *om, const uint8_t *node_id)
{
    if (om->destroyed)
        return;
    char hex[RC_ID_HEX_MAX], msg[128];
    snprintf(msg, sizeof(msg), "node %s died", rc_id_hex(node_id, RC_NODE_ID_SIZE, hex));
    raylet_om__end_pushes(om, node_id, GRPC_STATUS_UNAVAILABLE, msg);
    size_t n;
    uint8_t(*ids)[RC_OBJECT_ID_SIZE] = om__keys(&om->pulls, &n);
    for (size_t i = 0; i < n; i++) {
        om_pull *p = rc_map_get(&om->pulls, ids[i], RC_OBJECT_ID_SIZE);
        if (p && p->state == PULL_TRANSFER && memcmp(p->holder, node_id, RC_NODE_ID_SIZE) == 0) {
            p->retrying = 1;
            om__next_holder(om, p);
        }
    }
    rc_free(ids);
    raylet_store_owner_gone(om->store, NULL, node_id);
}

void raylet_om_stats_get(const raylet_om *om, raylet_om_stats *out)
{
    *out = om->stats;
    out->pulls_active = rc_map_size(&om->pulls);
    out->pushes_active = rc_map_size(&om->pushes);
    out->transfers_active = rc_map_size(&om->inbound);
}

const rpc_method_handler raylet_object_manager_handlers[] = {
    {"Push", om__handle_push},
    {"Pull", raylet_om__handle_pull},
    {"FreeObjects", om__handle_free_objects},
    {NULL, NULL},
};
