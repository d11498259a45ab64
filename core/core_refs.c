/*
 * The memory store (values in process memory, shared with user threads under a mutex) and
 * the reference table of owned objects (loop thread).
 *
 * Ownership (Ray's model): the process that creates an object (rayc_put, or submitting the
 * task that returns it) owns it. It counts its local holders and the pending tasks that
 * take it as an argument; when both reach zero the object is freed: its value leaves the
 * memory store and every node holding a copy in shared memory is told to free it. The
 * owner also records where plasma copies are, and answers borrowers (GetObjectStatus) and
 * raylets (GetObjectLocationsOwner) from this table.
 */
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "object_manager.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_log.h"

/* ---- memory store --------------------------------------------------------------------- */

void core_memstore_init(core_memstore *ms)
{
    pthread_mutex_init(&ms->mu, NULL);
    rc_map_init(&ms->values);
}

static void core__value_free(core_value *v)
{
    rc_free(v->error_message);
    rc_free(v->data);
    rc_free(v);
}

void core_memstore_destroy(core_memstore *ms)
{
    pthread_mutex_lock(&ms->mu);
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *val;
    while (rc_map_next(&ms->values, &it, NULL, NULL, &val)) {
        core_value *v = val;
        if (--v->refs == 0)
            core__value_free(v);
    }
    rc_map_destroy(&ms->values, NULL);
    pthread_mutex_unlock(&ms->mu);
    pthread_mutex_destroy(&ms->mu);
}

core_value *core_value_new_bytes(const void *data, size_t size)
{
    core_value *v = RC_NEW(core_value);
    v->refs = 1;
    v->data = rc_memdup(data, size);
    v->size = size;
    return v;
}

core_value *core_value_new_error(rayc_error error, const char *message)
{
    core_value *v = RC_NEW(core_value);
    v->refs = 1;
    v->error = error;
    v->error_message = rc_strdup(message ? message : rayc_error_name(error));
    return v;
}

void core_memstore_put(core_memstore *ms, const uint8_t *id, core_value *value)
{
    pthread_mutex_lock(&ms->mu);
    core_value *old = rc_map_get(&ms->values, id, RC_OBJECT_ID_SIZE);
    if (old) {
        pthread_mutex_unlock(&ms->mu);
        core_value_unref(core__cw, value);
        return;
    }
    rc_map_put(&ms->values, id, RC_OBJECT_ID_SIZE, value);
    pthread_mutex_unlock(&ms->mu);
}

core_value *core_memstore_get(core_memstore *ms, const uint8_t *id)
{
    pthread_mutex_lock(&ms->mu);
    core_value *v = rc_map_get(&ms->values, id, RC_OBJECT_ID_SIZE);
    if (v)
        v->refs++;
    pthread_mutex_unlock(&ms->mu);
    return v;
}

void core_memstore_remove(core_memstore *ms, const uint8_t *id)
{
    pthread_mutex_lock(&ms->mu);
    core_value *v = rc_map_remove(&ms->values, id, RC_OBJECT_ID_SIZE);
    int last = v && --v->refs == 0;
    pthread_mutex_unlock(&ms->mu);
    if (last) {
        if (v->in_plasma) {
            v->refs = 1; /* plasma values go through the loop to release their pin */
            core_value_unref(core__cw, v);
        } else {
            core__value_free(v);
        }
    }
}

typedef struct core__release_op {
    core_op op;
    uint8_t object_id[RC_OBJECT_ID_SIZE];
} core__release_op;

static void core__run_release(core_worker *cw, core_op *op)
{
    core__release_op *r = (core__release_op *)op;
    core_release_plasma(cw, r->object_id);
    rc_free(r);
}

void core_value_unref(core_worker *cw, core_value *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&cw->memstore.mu);
    int last = --v->refs == 0;
    pthread_mutex_unlock(&cw->memstore.mu);
    if (!last)
        return;
    if (v->in_plasma) {
        core__release_op *r = RC_NEW(core__release_op);
        r->op.run = core__run_release;
        memcpy(r->object_id, v->object_id, RC_OBJECT_ID_SIZE);
        v->data = NULL; /* points into the mapping */
        core_post(cw, &r->op);
    }
    core__value_free(v);
}

/* ---- references ----------------------------------------------------------------------- */

core_ref *core_ref_get(core_worker *cw, const uint8_t *id)
{
    return rc_map_get(&cw->refs, id, RC_OBJECT_ID_SIZE);
}

core_ref *core_ref_create(core_worker *cw, const uint8_t *id)
{
    core_ref *r = RC_NEW(core_ref);
    memcpy(r->id, id, RC_OBJECT_ID_SIZE);
    r->state = CORE_REF_PENDING;
    rc_map_put(&cw->refs, r->id, RC_OBJECT_ID_SIZE, r);
    return r;
}

static void core__answer_status_calls(core_worker *cw, core_ref *r);

/* Tells every node holding a shared-memory copy of r to drop it. */
static void core__free_copies(core_worker *cw, core_ref *r)
{
    if (!r->in_plasma || cw->stopping)
        return;
    for (size_t i = 0; i < r->n_locations; i++) {
        const char *addr = core_node_address(cw, r->locations[i]);
        rpc_client *cli = addr ? core_raylet_client(cw, addr) : NULL;
        if (!cli)
            continue;
        Ray__Rpc__FreeObjectsRequest req = RAY__RPC__FREE_OBJECTS_REQUEST__INIT;
        ProtobufCBinaryData id = {RC_OBJECT_ID_SIZE, r->id};
        req.object_ids = &id;
        req.n_object_ids = 1;
        rpc_client_call(cli, &ray__rpc__object_manager_service__descriptor, "FreeObjects", &req.base,
                        rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
    }
}

/* Frees an object nobody holds any more. */
static void core__ref_free(core_worker *cw, core_ref *r)
{
    if (r->task)
        return; /* its task still runs: the result is dropped when it arrives */
    core_memstore_remove(&cw->memstore, r->id);
    core__free_copies(cw, r);
    r->state = CORE_REF_FREED;
    core__answer_status_calls(cw, r);
    rc_map_remove(&cw->refs, r->id, RC_OBJECT_ID_SIZE);
    core_ref_waiter *w = r->waiters;
    while (w) {
        core_ref_waiter *next = w->next;
        rc_free(w);
        w = next;
    }
    core_task *lineage = r->lineage;
    rc_free(r->locations);
    rc_free(r->status_calls);
    rc_free(r);
    if (lineage)
        core_submit_lineage_drop(cw, lineage);
}

/* Out of scope but an argument of kept lineage. A value that can be made again (it has
 * lineage of its own) is released now, as Ray does; one that cannot (a put) stays, since
 * rebuilding the tasks that read it needs it. */
static void core__ref_evict(core_worker *cw, core_ref *r)
{
    if (r->task || !r->lineage || r->state != CORE_REF_READY)
        return;
    core_memstore_remove(&cw->memstore, r->id);
    core__free_copies(cw, r);
    r->n_locations = 0;
    r->in_plasma = 0;
    r->state = CORE_REF_LINEAGE;
}

static void core__maybe_free(core_worker *cw, core_ref *r)
{
    if (r->local_refs > 0 || r->submitted_refs > 0 || r->waiters)
        return;
    if (r->lineage_refs > 0)
        core__ref_evict(cw, r);
    else
        core__ref_free(cw, r);
}

void core_ref_add_local(core_worker *cw, const uint8_t *id, int64_t n)
{
    core_ref *r = core_ref_get(cw, id);
    if (!r)
        return;
    r->local_refs += n;
    core__maybe_free(cw, r);
}

void core_ref_add_submitted(core_worker *cw, core_ref *r, int64_t n)
{
    r->submitted_refs += n;
    core__maybe_free(cw, r);
}

void core_ref_add_lineage(core_worker *cw, core_ref *r, int64_t n)
{
    r->lineage_refs += n;
    core__maybe_free(cw, r);
}

int core_ref_lost(const core_ref *r)
{
    return r->state == CORE_REF_LINEAGE || (r->state == CORE_REF_READY && r->in_plasma && r->n_locations == 0);
}

void core_ref_fail(core_worker *cw, core_ref *r, rayc_error error, const char *message)
{
    r->in_plasma = 0;
    r->n_locations = 0;
    r->task = NULL;
    core_memstore_remove(&cw->memstore, r->id);
    core_memstore_put(&cw->memstore, r->id, core_value_new_error(error, message));
    core_ref_set_ready(cw, r, 0, NULL, 0);
}

void core_ref_add_location(core_worker *cw, core_ref *r, const uint8_t *node_id)
{
    (void)cw;
    for (size_t i = 0; i < r->n_locations; i++)
        if (!memcmp(r->locations[i], node_id, RC_NODE_ID_SIZE))
            return;
    r->locations = rc_realloc(r->locations, (r->n_locations + 1) * RC_NODE_ID_SIZE);
    memcpy(r->locations[r->n_locations++], node_id, RC_NODE_ID_SIZE);
}

void core_ref_remove_location(core_worker *cw, core_ref *r, const uint8_t *node_id)
{
    (void)cw;
    for (size_t i = 0; i < r->n_locations; i++) {
        if (memcmp(r->locations[i], node_id, RC_NODE_ID_SIZE))
            continue;
        memmove(r->locations[i], r->locations[r->n_locations - 1], RC_NODE_ID_SIZE);
        r->n_locations--;
        return;
    }
}

void core_ref_when_ready(core_worker *cw, core_ref *r, void (*fn)(core_worker *, core_ref *, void *), void *arg)
{
    if (r->state == CORE_REF_READY) {
        fn(cw, r, arg);
        return;
    }
    core_ref_waiter *w = RC_NEW(core_ref_waiter);
    w->ready = fn;
    w->arg = arg;
    w->next = r->waiters;
    r->waiters = w;
}

void core_ref_set_ready(core_worker *cw, core_ref *r, int in_plasma, const uint8_t *node_id, uint64_t size)
{
    r->state = CORE_REF_READY;
    r->in_plasma = in_plasma;
    r->size = size;
    if (in_plasma && node_id)
        core_ref_add_location(cw, r, node_id);
    core_ref_waiter *w = r->waiters;
    r->waiters = NULL;
    /* Waiters hold no count of their own: keep r alive while they run. */
    r->local_refs++;
    while (w) {
        core_ref_waiter *next = w->next;
        w->ready(cw, r, w->arg);
        rc_free(w);
        w = next;
    }
    core__answer_status_calls(cw, r);
    r->local_refs--;
    core__maybe_free(cw, r);
}

void core_refs_node_died(core_worker *cw, const uint8_t *node_id)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    uint8_t (*lost)[RC_OBJECT_ID_SIZE] = NULL;
    size_t n_lost = 0;
    /* Every location first, so that a task rebuilding several lost objects (or reading
     * several) sees all of them as lost at once. */
    while (rc_map_next(&cw->refs, &it, NULL, NULL, &v)) {
        core_ref *r = v;
        if (!r->in_plasma || r->state != CORE_REF_READY)
            continue;
        core_ref_remove_location(cw, r, node_id);
        if (r->n_locations == 0) {
            lost = rc_realloc(lost, (n_lost + 1) * RC_OBJECT_ID_SIZE);
            memcpy(lost[n_lost++], r->id, RC_OBJECT_ID_SIZE);
        }
    }
    for (size_t i = 0; i < n_lost; i++) {
        core_ref *r = core_ref_get(cw, lost[i]);
        if (r && core_ref_lost(r))
            core_submit_recover(cw, r);
    }
    rc_free(lost);
}

void core_refs_free_all(core_worker *cw)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->refs, &it, NULL, NULL, &v)) {
        core_ref *r = v;
        rc_map_iter_remove(&cw->refs, &it);
        r->state = CORE_REF_FREED;
        core__answer_status_calls(cw, r);
        core_ref_waiter *w = r->waiters;
        r->waiters = NULL;
        while (w) { /* waiters see FREED and let go */
            core_ref_waiter *next = w->next;
            w->ready(cw, r, w->arg);
            rc_free(w);
            w = next;
        }
        rc_free(r->locations);
        rc_free(r->status_calls);
        rc_free(r);
    }
}

/* ---- answering borrowers -------------------------------------------------------------- */

static void core__answer_status(core_worker *cw, core_ref *r, rpc_call *call)
{
    Ray__Rpc__GetObjectStatusReply reply = RAY__RPC__GET_OBJECT_STATUS_REPLY__INIT;
    Ray__Rpc__RayObject obj = RAY__RPC__RAY_OBJECT__INIT;
    ProtobufCBinaryData *nodes = NULL;
    core_value *v = NULL;
    char meta[16];
    if (!r || r->state == CORE_REF_FREED) {
        reply.status = RAY__RPC__GET_OBJECT_STATUS_REPLY__OBJECT_STATUS__FREED;
    } else if (r->in_plasma) {
        reply.status = RAY__RPC__GET_OBJECT_STATUS_REPLY__OBJECT_STATUS__CREATED;
        reply.object_size = r->size;
        nodes = rc_calloc(r->n_locations ? r->n_locations : 1, sizeof(*nodes));
        for (size_t i = 0; i < r->n_locations; i++) {
            nodes[i].data = r->locations[i];
            nodes[i].len = RC_NODE_ID_SIZE;
        }
        reply.node_ids = nodes;
        reply.n_node_ids = r->n_locations;
    } else if ((v = core_memstore_get(&cw->memstore, r->id))) {
        reply.status = RAY__RPC__GET_OBJECT_STATUS_REPLY__OBJECT_STATUS__CREATED;
        if (v->error) {
            Ray__Rpc__RayErrorInfo info = RAY__RPC__RAY_ERROR_INFO__INIT;
            info.error_type = core_error_to_type(v->error);
            info.error_message = v->error_message;
            size_t len;
            obj.data.data = rpc_msg_pack(&info.base, &len);
            obj.data.len = len;
            snprintf(meta, sizeof(meta), "%d", (int)info.error_type);
            obj.metadata.data = (uint8_t *)meta;
            obj.metadata.len = strlen(meta);
        } else {
            obj.data.data = v->data;
            obj.data.len = v->size;
        }
        reply.object = &obj;
        reply.object_size = v->size;
    } else {
        reply.status = RAY__RPC__GET_OBJECT_STATUS_REPLY__OBJECT_STATUS__FREED;
    }
    rpc_reply(call, &reply.base);
    if (v && v->error)
        rc_free(obj.data.data);
    core_value_unref(cw, v);
    rc_free(nodes);
}

static void core__answer_status_calls(core_worker *cw, core_ref *r)
{
    for (size_t i = 0; i < r->n_status_calls; i++) {
        rpc_call_on_cancel(r->status_calls[i], NULL, NULL);
        core__answer_status(cw, r->state == CORE_REF_PENDING ? NULL : r, r->status_calls[i]);
    }
    r->n_status_calls = 0;
}

static void core__status_call_cancelled(rpc_call *call, void *arg)
{
    core_ref *r = arg;
    for (size_t i = 0; i < r->n_status_calls; i++) {
        if (r->status_calls[i] != call)
            continue;
        r->status_calls[i] = r->status_calls[--r->n_status_calls];
        break;
    }
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "cancelled");
}

static void handle_get_object_status(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__GetObjectStatusRequest *req = (const void *)request;
    if (req->object_id.len != RC_OBJECT_ID_SIZE) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "object_id must hold %d bytes", RC_OBJECT_ID_SIZE);
        return;
    }
    core_ref *r = core_ref_get(cw, req->object_id.data);
    if (r && r->state == CORE_REF_PENDING) { /* Ray's owner answers once the object exists */
        r->status_calls = rc_realloc(r->status_calls, (r->n_status_calls + 1) * sizeof(*r->status_calls));
        r->status_calls[r->n_status_calls++] = call;
        rpc_call_on_cancel(call, core__status_call_cancelled, r);
        return;
    }
    core__answer_status(cw, r, call);
}

static void handle_get_locations(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__GetObjectLocationsOwnerRequest *req = (const void *)request;
    Ray__Rpc__GetObjectLocationsOwnerReply reply = RAY__RPC__GET_OBJECT_LOCATIONS_OWNER_REPLY__INIT;
    size_t n = req->n_object_ids;
    Ray__Rpc__WorkerObjectLocationsPubMessage *infos = rc_calloc(n ? n : 1, sizeof(*infos));
    Ray__Rpc__WorkerObjectLocationsPubMessage **ptrs = rc_calloc(n ? n : 1, sizeof(*ptrs));
    ProtobufCBinaryData **ids = rc_calloc(n ? n : 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        ray__rpc__worker_object_locations_pub_message__init(&infos[i]);
        ptrs[i] = &infos[i];
        core_ref *r = req->object_ids[i].len == RC_OBJECT_ID_SIZE ? core_ref_get(cw, req->object_ids[i].data) : NULL;
        /* Released as lineage, or a value that only this process holds (an inline result,
         * or the error a lost object became): no node will ever have a copy to pull. */
        if (!r || r->state == CORE_REF_LINEAGE || (r->state == CORE_REF_READY && !r->in_plasma)) {
            infos[i].ref_removed = 1;
            continue;
        }
        infos[i].pending_creation = r->state == CORE_REF_PENDING;
        infos[i].object_size = r->size;
        ids[i] = rc_calloc(r->n_locations ? r->n_locations : 1, sizeof(ProtobufCBinaryData));
        for (size_t k = 0; k < r->n_locations; k++) {
            ids[i][k].data = r->locations[k];
            ids[i][k].len = RC_NODE_ID_SIZE;
        }
        infos[i].node_ids = ids[i];
        infos[i].n_node_ids = r->n_locations;
        if (r->n_locations) {
            infos[i].primary_node_id.data = r->locations[0];
            infos[i].primary_node_id.len = RC_NODE_ID_SIZE;
        }
    }
    reply.object_location_infos = ptrs;
    reply.n_object_location_infos = n;
    rpc_reply(call, &reply.base);
    for (size_t i = 0; i < n; i++)
        rc_free(ids[i]);
    rc_free(ids);
    rc_free(ptrs);
    rc_free(infos);
}

static void handle_update_locations(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__UpdateObjectLocationBatchRequest *req = (const void *)request;
    Ray__Rpc__UpdateObjectLocationBatchReply reply = RAY__RPC__UPDATE_OBJECT_LOCATION_BATCH_REPLY__INIT;
    if (req->node_id.len == RC_NODE_ID_SIZE) {
        for (size_t i = 0; i < req->n_object_location_updates; i++) {
            const Ray__Rpc__ObjectLocationUpdate *u = req->object_location_updates[i];
            core_ref *r = u->object_id.len == RC_OBJECT_ID_SIZE ? core_ref_get(cw, u->object_id.data) : NULL;
            if (!r || u->_plasma_location_update_case != RAY__RPC__OBJECT_LOCATION_UPDATE___PLASMA_LOCATION_UPDATE_PLASMA_LOCATION_UPDATE)
                continue;
            if (u->plasma_location_update == RAY__RPC__OBJECT_PLASMA_LOCATION_UPDATE__ADDED)
                core_ref_add_location(cw, r, req->node_id.data);
            else
                core_ref_remove_location(cw, r, req->node_id.data);
        }
    }
    rpc_reply(call, &reply.base);
}

static void handle_num_pending_tasks(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    (void)request;
    Ray__Rpc__NumPendingTasksReply reply = RAY__RPC__NUM_PENDING_TASKS_REPLY__INIT;
    reply.num_pending_tasks = (int64_t)rc_map_size(&cw->tasks);
    rpc_reply(call, &reply.base);
}

const rpc_method_handler core_owner_handlers[] = {
    {"GetObjectStatus", handle_get_object_status},
    {"GetObjectLocationsOwner", handle_get_locations},
    {"UpdateObjectLocationBatch", handle_update_locations},
    {"NumPendingTasks", handle_num_pending_tasks},
    {NULL, NULL},
};
