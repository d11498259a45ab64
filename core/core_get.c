/*
 * Getting objects: rayc_get, rayc_wait and the resolution of task arguments share one
 * machine. For each object: a value already in the memory store is ready; an object this
 * process owns that is still pending waits for its task; an owned object in shared memory
 * is fetched through the local raylet (GetObjects pins it: the value's last reference
 * releases it); an object owned elsewhere is asked of its owner (GetObjectStatus, which
 * answers once the object exists) and, if it lives in shared memory, fetched through the
 * local raylet, which pulls it from a node holding it.
 *
 * Loop thread, except core_get_unref (any thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"

core_get *core_get_new(size_t n)
{
    core_get *g = RC_NEW(core_get);
    g->refs = 1;
    g->n = n;
    g->want = n;
    g->keep_values = 1;
    g->timeout_ms = -1;
    g->items = rc_calloc(n ? n : 1, sizeof(*g->items));
    return g;
}

static void core__get_free(core_worker *cw, core_get *g)
{
    for (size_t i = 0; i < g->n; i++) {
        core_value_unref(cw, g->items[i].value);
        rpc_msg_free(g->items[i].owner ? &g->items[i].owner->base : NULL);
    }
    rc_free(g->items);
    rc_free(g);
}

void core_get_unref(core_worker *cw, core_get *g)
{
    if (atomic_fetch_sub(&g->refs, 1) == 1)
        core__get_free(cw, g);
}

static void core__get_timer_closed(uv_handle_t *h)
{
    core_get *g = h->data;
    core_get_unref(core__cw, g);
}

static void core__get_finish(core_worker *cw, core_get *g)
{
    if (g->finished)
        return;
    g->finished = 1;
    /* A get that timed out on a task no node can run says why (a wait only counts). */
    for (size_t i = 0; g->timed_out && g->keep_values && i < g->n; i++) {
        const char *why = g->items[i].value || g->items[i].owner ? NULL : core_submit_pending_reason(cw, g->items[i].id);
        if (!why)
            continue;
        char message[768];
        snprintf(message, sizeof(message),
                 "the object was not ready before the timeout: its task cannot be scheduled right now: %s (it stays "
                 "pending until a node that can run it joins)",
                 why);
        g->items[i].value = core_value_new_error(RAYC_ERR_TIMEOUT, message);
    }
    if (g->timer_started) {
        uv_timer_stop(&g->timer);
        uv_close((uv_handle_t *)&g->timer, core__get_timer_closed);
        g->timer_started = 0;
    }
    if (g->done)
        g->done(cw, g, g->done_arg);
    else if (g->waiter)
        core_waiter_signal(g->waiter, g->timed_out ? RC_ETIMEDOUT : 0);
}

/* Records the value of item i (taking the caller's reference). */
static void core__get_fill(core_worker *cw, core_get *g, size_t i, core_value *v)
{
    core_get_item *it = &g->items[i];
    if (g->finished || it->value) {
        core_value_unref(cw, v);
        return;
    }
    it->value = v;
    g->ready++;
    if (g->ready >= g->want)
        core__get_finish(cw, g);
}

core_value *core_value_from_inline(const void *data, size_t size, const void *meta, size_t meta_len)
{
    if (!meta_len)
        return core_value_new_bytes(data, size);
    /* Ray's error objects: metadata is the decimal ErrorType, data a RayErrorInfo. */
    char text[16];
    size_t n = meta_len < sizeof(text) - 1 ? meta_len : sizeof(text) - 1;
    memcpy(text, meta, n);
    text[n] = '\0';
    int type = atoi(text);
    Ray__Rpc__RayErrorInfo *info = ray__rpc__ray_error_info__unpack(NULL, size, data);
    core_value *v = core_value_new_error(core_error_from_type((Ray__Rpc__ErrorType)type),
                                         info && info->error_message && info->error_message[0] ? info->error_message
                                                                                                 : "error");
    rpc_msg_free(info ? &info->base : NULL);
    return v;
}

core_value *core_value_from_plasma(core_worker *cw, const uint8_t *id, uint64_t offset, uint64_t data_size,
                                   uint64_t metadata_size)
{
    if (!cw->store_base || offset + data_size + metadata_size > cw->store_size)
        return core_value_new_error(RAYC_ERR_OBJECT_LOST, "the object store returned an offset outside its region");
    uint8_t *p = cw->store_base + offset;
    if (metadata_size) {
        core_value *v = core_value_from_inline(p, data_size, p + data_size, metadata_size);
        core_release_plasma(cw, id); /* copied out: the pin is not needed */
        return v;
    }
    core_value *v = RC_NEW(core_value);
    v->refs = 1;
    v->in_plasma = 1;
    v->data = p;
    v->size = data_size;
    memcpy(v->object_id, id, RC_OBJECT_ID_SIZE);
    return v;
}

void core_release_plasma(core_worker *cw, const uint8_t *object_id)
{
    if (!cw->raylet_local || cw->stopping)
        return;
    Rayc__Rpc__ReleaseObjectsRequest req = RAYC__RPC__RELEASE_OBJECTS_REQUEST__INIT;
    ProtobufCBinaryData id = {RC_OBJECT_ID_SIZE, (uint8_t *)object_id};
    req.worker_id.data = cw->worker_id;
    req.worker_id.len = RC_WORKER_ID_SIZE;
    req.object_ids = &id;
    req.n_object_ids = 1;
    rpc_client_call(cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "ReleaseObjects", &req.base,
                    rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
}

/* ---- fetching through the local raylet ------------------------------------------------ */

typedef struct core__fetch {
    core_get *g;
    size_t index;
    /* Owner asks and fetches of borrowed objects: listed while the call is out, so that the
     * death of the owner's node answers the get (a host that vanished may never close the
     * connection); an owner ask answered so is abandoned. */
    uint8_t owner_node[RC_NODE_ID_SIZE];
    int abandoned;
    rc_list link; /* on core__asks while listed */
} core__fetch;

static rc_list core__asks = RC_LIST_HEAD_INIT(core__asks); /* owner asks in flight (loop thread) */

static void core__ask_unlink(core__fetch *f)
{
    rc_list_remove(&f->link);
}

void core_get_forget_asks(void)
{
    while (!rc_list_empty(&core__asks))
        rc_list_remove(rc_list_first(&core__asks));
}

static void core__ask_link(core__fetch *f, const uint8_t *owner_node)
{
    memcpy(f->owner_node, owner_node, RC_NODE_ID_SIZE);
    rc_list_insert_head(&core__asks, &f->link);
}

void core_get_node_died(core_worker *cw, const uint8_t *node_id)
{
    rc_list *n, *tmp;
    RC_LIST_FOREACH_SAFE(n, tmp, &core__asks) {
        core__fetch *f = rc_list_entry(n, core__fetch, link);
        if (!memcmp(f->owner_node, node_id, RC_NODE_ID_SIZE)) {
            core__ask_unlink(f);
            f->abandoned = 1; /* its call may never end; its callback frees it if it does */
            core_get *g = f->g;
            g->items[f->index].fetching = 0;
            if (!g->finished)
                core__get_fill(cw, g, f->index,
                               core_value_new_error(RAYC_ERR_OWNER_DIED,
                                                    "the owner of this object died: its node was marked dead"));
        }
    }
}

static void core__resolve_owned(core_worker *cw, core_get *g, size_t i, core_ref *r);
static void core__ask_owner(core_worker *cw, core_get *g, size_t i);

/* A fetch through the raylet found nothing. If this process owns the object and it was
 * lost meanwhile (it is being made again, or failed with the reason), look again; if
 * another process owns it, ask the owner again (it holds the answer while it makes the
 * object again, says it freed it, or is gone: OWNER_DIED), a few times at most. 1 if it
 * looked again. */
static int core__refetch_owned(core_worker *cw, core_get *g, size_t i)
{
    core_get_item *it = &g->items[i];
    if (it->value)
        return 1; /* answered meanwhile (its owner's node died) */
    int self = !it->owner || (it->owner->worker_id.len == RC_WORKER_ID_SIZE &&
                              !memcmp(it->owner->worker_id.data, cw->worker_id, RC_WORKER_ID_SIZE));
    if (!self) {
        if (it->asks >= 3)
            return 0;
        it->asks++;
        core__ask_owner(cw, g, i);
        return 1;
    }
    core_ref *r = core_ref_get(cw, it->id);
    if (!r)
        return 0;
    core_value *v = core_memstore_get(&cw->memstore, r->id);
    if (v) {
        core__get_fill(cw, g, i, v);
        return 1;
    }
    if (r->state != CORE_REF_PENDING)
        return 0;
    core__resolve_owned(cw, g, i, r);
    return 1;
}

static void core__plasma_fetched(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core__fetch *f = arg;
    core_get *g = f->g;
    core_worker *cw = core__cw;
    core__ask_unlink(f);
    g->items[f->index].fetching = 0;
    if (st->code == GRPC_STATUS_OK) {
        Rayc__Rpc__GetObjectsReply *r = (Rayc__Rpc__GetObjectsReply *)reply;
        for (size_t i = 0; i < r->n_objects; i++) {
            const Rayc__Rpc__LocalObject *o = r->objects[i];
            if (!o->found || o->object_id.len != RC_OBJECT_ID_SIZE)
                continue;
            core_value *v = core_value_from_plasma(cw, o->object_id.data, o->offset, o->data_size, o->metadata_size);
            if (g->keep_values || v->error)
                core__get_fill(cw, g, f->index, v);
            else { /* wait(fetch_local): it is here; that is all we needed */
                core_value_unref(cw, v);
                core__get_fill(cw, g, f->index, core_value_new_bytes("", 0));
            }
        }
        int found = r->n_objects && r->objects[0]->found;
        if (!found && !g->finished && core__refetch_owned(cw, g, f->index)) {
            /* lost meanwhile: being made again, or failed with the reason */
        } else if (!found && !g->finished && g->timeout_ms < 0) {
            /* The raylet gave up (every holder and the owner are gone). */
            core__get_fill(cw, g, f->index,
                           core_value_new_error(RAYC_ERR_OBJECT_LOST,
                                                "no node holds a copy of this object any more"));
        }
    } else if (!g->finished) {
        core_worker_raylet_call_failed(cw, st->code); /* a worker whose raylet died exits */
        /* An owned object lost meanwhile is being made again, or failed with the reason. */
        if (!core__refetch_owned(cw, g, f->index)) {
            char m[400];
            snprintf(m, sizeof(m), "the local raylet could not fetch the object: %s", st->message);
            core__get_fill(cw, g, f->index, core_value_new_error(RAYC_ERR_OBJECT_LOST, m));
        }
    }
    rpc_msg_free(reply);
    rc_free(f);
    core_get_unref(cw, g);
}

static void core__fetch_plasma(core_worker *cw, core_get *g, size_t i, const Ray__Rpc__Address *owner)
{
    core_get_item *it = &g->items[i];
    if (it->fetching || it->value || g->finished)
        return;
    Rayc__Rpc__GetObjectsRequest req = RAYC__RPC__GET_OBJECTS_REQUEST__INIT;
    Ray__Rpc__ObjectReference ref = RAY__RPC__OBJECT_REFERENCE__INIT, *refs[1] = {&ref};
    ref.object_id.data = it->id;
    ref.object_id.len = RC_OBJECT_ID_SIZE;
    ref.owner_address = (Ray__Rpc__Address *)(owner ? owner : &cw->address);
    req.worker_id.data = cw->worker_id;
    req.worker_id.len = RC_WORKER_ID_SIZE;
    req.refs = refs;
    req.n_refs = 1;
    req.timeout_ms = g->timeout_ms;
    core__fetch *f = RC_NEW(core__fetch);
    f->g = g;
    f->index = i;
    atomic_fetch_add(&g->refs, 1);
    it->fetching = 1;
    if (owner && owner->node_id.len == RC_NODE_ID_SIZE) /* a borrowed object: its owner may die */
        core__ask_link(f, owner->node_id.data);
    if (rpc_client_call(cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "GetObjects", &req.base, -1,
                        core__plasma_fetched, f) < 0) {
        core__ask_unlink(f);
        it->fetching = 0;
        rc_free(f);
        core_get_unref(cw, g);
        core__get_fill(cw, g, i, core_value_new_error(RAYC_ERR_OBJECT_LOST, "cannot ask the local raylet"));
    }
}

/* ---- owned objects -------------------------------------------------------------------- */

typedef struct core__ready_wait {
    core_get *g;
    size_t index;
} core__ready_wait;

static void core__owned_ready(core_worker *cw, core_ref *r, void *arg);

static void core__resolve_owned(core_worker *cw, core_get *g, size_t i, core_ref *r)
{
    core_value *v = core_memstore_get(&cw->memstore, r->id);
    if (v) {
        core__get_fill(cw, g, i, v);
        return;
    }
    if (r->state == CORE_REF_PENDING) {
        core__ready_wait *w = RC_NEW(core__ready_wait);
        w->g = g;
        w->index = i;
        atomic_fetch_add(&g->refs, 1);
        core_ref_when_ready(cw, r, core__owned_ready, w);
        return;
    }
    if (r->state == CORE_REF_READY && r->in_plasma) {
        if (!g->keep_values && !g->fetch_local) /* wait: existing is ready enough */
            core__get_fill(cw, g, i, core_value_new_bytes("", 0));
        else
            core__fetch_plasma(cw, g, i, NULL);
        return;
    }
    core__get_fill(cw, g, i, core_value_new_error(RAYC_ERR_OBJECT_LOST, "the object was freed"));
}

static void core__owned_ready(core_worker *cw, core_ref *r, void *arg)
{
    core__ready_wait *w = arg;
    core_get *g = w->g;
    if (!g->finished) {
        if (r->state == CORE_REF_FREED)
            core__get_fill(cw, g, w->index, core_value_new_error(RAYC_ERR_OBJECT_LOST, "the object was freed"));
        else
            core__resolve_owned(cw, g, w->index, r);
    }
    rc_free(w);
    core_get_unref(cw, g);
}

/* ---- objects owned elsewhere ---------------------------------------------------------- */

/* Times an owner ask is sent again when the call itself failed on the way. */
#define CORE_OWNER_ASK_RETRIES 3

static void core__status_answered(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core__fetch *f = arg;
    core_get *g = f->g;
    core_worker *cw = core__cw;
    core_get_item *it = &g->items[f->index];
    core__ask_unlink(f);
    if (!f->abandoned)
        it->fetching = 0;
    if (g->finished || f->abandoned) {
        /* nothing */
    } else if ((st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED) &&
               it->owner_retries < CORE_OWNER_ASK_RETRIES) {
        /* One lost call is the network, not a dead owner (that shows as its node's death,
         * or as every try refused). */
        it->owner_retries++;
        core__ask_owner(cw, g, f->index);
    } else if (st->code != GRPC_STATUS_OK) {
        char m[400];
        snprintf(m, sizeof(m), "the owner of this object is unreachable (%s)", st->message);
        core__get_fill(cw, g, f->index, core_value_new_error(RAYC_ERR_OWNER_DIED, m));
    } else {
        Ray__Rpc__GetObjectStatusReply *r = (Ray__Rpc__GetObjectStatusReply *)reply;
        if (r->status != RAY__RPC__GET_OBJECT_STATUS_REPLY__OBJECT_STATUS__CREATED) {
            core__get_fill(cw, g, f->index,
                           core_value_new_error(RAYC_ERR_OBJECT_LOST, "the owner has freed this object"));
        } else if (r->object && (r->object->data.len || r->object->metadata.len || !r->n_node_ids)) {
            core__get_fill(cw, g, f->index,
                           core_value_from_inline(r->object->data.data, r->object->data.len, r->object->metadata.data,
                                                  r->object->metadata.len));
        } else {
            core__fetch_plasma(cw, g, f->index, it->owner);
        }
    }
    rpc_msg_free(reply);
    rc_free(f);
    core_get_unref(cw, g);
}

static void core__ask_owner(core_worker *cw, core_get *g, size_t i)
{
    core_get_item *it = &g->items[i];
    char addr[128];
    core_address_text(it->owner, addr, sizeof(addr));
    rpc_client *cli = core_worker_client(cw, addr);
    if (!cli) {
        core__get_fill(cw, g, i, core_value_new_error(RAYC_ERR_OWNER_DIED, "bad owner address"));
        return;
    }
    Ray__Rpc__GetObjectStatusRequest req = RAY__RPC__GET_OBJECT_STATUS_REQUEST__INIT;
    req.owner_worker_id = it->owner->worker_id;
    req.object_id.data = it->id;
    req.object_id.len = RC_OBJECT_ID_SIZE;
    int on_node = it->owner->node_id.len == RC_NODE_ID_SIZE;
    core_node *node = on_node ? rc_map_get(&cw->nodes, it->owner->node_id.data, RC_NODE_ID_SIZE) : NULL;
    if (node && !node->alive) {
        core__get_fill(cw, g, i,
                       core_value_new_error(RAYC_ERR_OWNER_DIED, "the owner of this object died: its node is dead"));
        return;
    }
    core__fetch *f = RC_NEW(core__fetch);
    f->g = g;
    f->index = i;
    atomic_fetch_add(&g->refs, 1);
    it->fetching = 1;
    if (on_node)
        core__ask_link(f, it->owner->node_id.data);
    if (rpc_client_call(cli, &ray__rpc__core_worker_service__descriptor, "GetObjectStatus", &req.base, -1,
                        core__status_answered, f) < 0) {
        core__ask_unlink(f);
        it->fetching = 0;
        rc_free(f);
        core_get_unref(cw, g);
        core__get_fill(cw, g, i, core_value_new_error(RAYC_ERR_OWNER_DIED, "cannot call the owner"));
    }
}

/* ---- the op --------------------------------------------------------------------------- */

static void core__get_timeout(uv_timer_t *t)
{
    core_get *g = t->data;
    g->timed_out = 1;
    core__get_finish(core__cw, g);
}

void core_get_start(core_worker *cw, core_get *g)
{
    if (g->want == 0 || g->want > g->n)
        g->want = g->n;
    if (g->timeout_ms >= 0) {
        uv_timer_init(&cw->loop, &g->timer);
        g->timer.data = g;
        atomic_fetch_add(&g->refs, 1);
        g->timer_started = 1;
        uv_timer_start(&g->timer, core__get_timeout, (uint64_t)g->timeout_ms, 0);
    }
    for (size_t i = 0; i < g->n && !g->finished; i++) {
        core_get_item *it = &g->items[i];
        core_value *v = core_memstore_get(&cw->memstore, it->id);
        if (v) {
            core__get_fill(cw, g, i, v);
            continue;
        }
        core_ref *r = it->owner ? NULL : core_ref_get(cw, it->id);
        if (r) {
            core__resolve_owned(cw, g, i, r);
        } else if (it->owner) {
            int self = it->owner->worker_id.len == RC_WORKER_ID_SIZE &&
                       !memcmp(it->owner->worker_id.data, cw->worker_id, RC_WORKER_ID_SIZE);
            core_ref *mine = self ? core_ref_get(cw, it->id) : NULL;
            if (mine)
                core__resolve_owned(cw, g, i, mine);
            else
                core__ask_owner(cw, g, i);
        } else {
            core__get_fill(cw, g, i,
                           core_value_new_error(RAYC_ERR_OBJECT_LOST,
                                                "unknown object: not owned by this process (or already freed)"));
        }
    }
    if (g->n == 0)
        core__get_finish(cw, g);
    core_get_unref(cw, g); /* the op's reference */
}
