/*
 * What language bindings need from librayc beyond running C functions (ARCHITECTURE §13):
 * references that travel inside values (borrowed references and their owners), the GCS's
 * internal KV (where a binding exports its functions), ray.nodes(), and the worker's main
 * loop as a function (a Python worker is a Python process that calls rayc_worker_main).
 *
 * Borrowed references: a reference deserialized from a value names an owner elsewhere.
 * The process keeps (id -> owner address, holders) in a table under its own mutex, since
 * user threads make and drop such references; gets, waits and task arguments look the
 * owner up there. Owned objects that were serialized are pinned (one extra local
 * reference) for the life of the process: borrowers are not counted yet, so freeing them
 * when the owner's own holders are gone could lose an object a borrower still needs.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "core_int.h"
#include "gcs_service.pb-c.h"
#include "gcs_state_json.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_log.h"

/* ---- borrowed references -------------------------------------------------------------- */

typedef struct core__borrowed {
    Ray__Rpc__Address *owner;
    int64_t holders;
} core__borrowed;

static pthread_mutex_t core__borrow_mu = PTHREAD_MUTEX_INITIALIZER;
static rc_map core__borrowed_refs = RC_MAP_INIT; /* object id -> core__borrowed */
static rc_map core__escaped = RC_MAP_INIT;       /* owned object ids pinned by serialization */
static _Atomic size_t core__n_borrowed;          /* lets the common case skip the mutex */

int core_borrowed_add(const uint8_t *id, int64_t delta)
{
    if (!atomic_load_explicit(&core__n_borrowed, memory_order_relaxed))
        return 0;
    pthread_mutex_lock(&core__borrow_mu);
    core__borrowed *b = rc_map_get(&core__borrowed_refs, id, RC_OBJECT_ID_SIZE);
    if (b) {
        b->holders += delta;
        if (b->holders <= 0) {
            rc_map_remove(&core__borrowed_refs, id, RC_OBJECT_ID_SIZE);
            atomic_fetch_sub(&core__n_borrowed, 1);
            rpc_msg_free(&b->owner->base);
            rc_free(b);
        }
    }
    pthread_mutex_unlock(&core__borrow_mu);
    return b != NULL;
}

Ray__Rpc__Address *core_borrowed_owner(core_worker *cw, const uint8_t *id)
{
    (void)cw;
    if (!atomic_load_explicit(&core__n_borrowed, memory_order_relaxed))
        return NULL;
    Ray__Rpc__Address *copy = NULL;
    pthread_mutex_lock(&core__borrow_mu);
    core__borrowed *b = rc_map_get(&core__borrowed_refs, id, RC_OBJECT_ID_SIZE);
    if (b)
        copy = (Ray__Rpc__Address *)rpc_msg_dup(&b->owner->base);
    pthread_mutex_unlock(&core__borrow_mu);
    return copy;
}

size_t rayc_ref_serialize(const rayc_ref *ref, void *buf, size_t len)
{
    core_worker *cw = core__cw;
    if (!cw || !ref)
        return 0;
    Ray__Rpc__Address *owner = core_borrowed_owner(cw, ref->id);
    const Ray__Rpc__Address *who = owner ? owner : &cw->address;
    size_t need = RC_OBJECT_ID_SIZE + protobuf_c_message_get_packed_size(&who->base);
    if (buf && len >= need) {
        memcpy(buf, ref->id, RC_OBJECT_ID_SIZE);
        protobuf_c_message_pack(&who->base, (uint8_t *)buf + RC_OBJECT_ID_SIZE);
        if (!owner) {
            pthread_mutex_lock(&core__borrow_mu);
            int first = !rc_map_get(&core__escaped, ref->id, RC_OBJECT_ID_SIZE);
            if (first)
                rc_map_put(&core__escaped, ref->id, RC_OBJECT_ID_SIZE, (void *)1);
            pthread_mutex_unlock(&core__borrow_mu);
            if (first)
                rayc_ref_retain(ref);
        }
    }
    if (owner)
        rpc_msg_free(&owner->base);
    return need;
}

int rayc_ref_deserialize(const void *buf, size_t len, rayc_ref *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_ref_deserialize: call rayc_init first");
    if (!buf || !out || len <= RC_OBJECT_ID_SIZE)
        return core_fail(RC_EINVAL, "rayc_ref_deserialize: %zu bytes are not a serialized reference", len);
    Ray__Rpc__Address *owner = (Ray__Rpc__Address *)protobuf_c_message_unpack(
        &ray__rpc__address__descriptor, NULL, len - RC_OBJECT_ID_SIZE, (const uint8_t *)buf + RC_OBJECT_ID_SIZE);
    if (!owner || owner->worker_id.len != RC_WORKER_ID_SIZE) {
        if (owner)
            protobuf_c_message_free_unpacked(&owner->base, NULL);
        return core_fail(RC_EINVAL, "rayc_ref_deserialize: the owner's address does not parse");
    }
    memcpy(out->id, buf, RC_OBJECT_ID_SIZE);
    /* Keep a copy made with our allocator (rpc_msg_free frees it). */
    Ray__Rpc__Address *copy = (Ray__Rpc__Address *)rpc_msg_dup(&owner->base);
    protobuf_c_message_free_unpacked(&owner->base, NULL);
    if (!memcmp(copy->worker_id.data, cw->worker_id, RC_WORKER_ID_SIZE)) {
        rpc_msg_free(&copy->base); /* ours, back home */
        rayc_ref_retain(out);
        return 0;
    }
    pthread_mutex_lock(&core__borrow_mu);
    core__borrowed *b = rc_map_get(&core__borrowed_refs, out->id, RC_OBJECT_ID_SIZE);
    if (b) {
        b->holders++;
        rpc_msg_free(&copy->base);
    } else {
        b = RC_NEW(core__borrowed);
        b->owner = copy;
        b->holders = 1;
        rc_map_put(&core__borrowed_refs, out->id, RC_OBJECT_ID_SIZE, b);
        atomic_fetch_add(&core__n_borrowed, 1);
    }
    pthread_mutex_unlock(&core__borrow_mu);
    return 0;
}

static void core__free_borrowed(void *p)
{
    core__borrowed *b = p;
    rpc_msg_free(&b->owner->base);
    rc_free(b);
}

void core_borrowed_clear(void)
{
    pthread_mutex_lock(&core__borrow_mu);
    rc_map_destroy(&core__borrowed_refs, core__free_borrowed);
    rc_map_destroy(&core__escaped, NULL);
    atomic_store(&core__n_borrowed, 0);
    pthread_mutex_unlock(&core__borrow_mu);
}

/* ---- streaming generators: the owner's side --------------------------------------------- */

/* Values reported for a generator task, by index: reported by the loop thread (the
 * executor's ReportGeneratorItemReturns), taken by user threads (rayc_generator_next). */
typedef struct core__generator {
    uint8_t (*ids)[RC_OBJECT_ID_SIZE];
    uint8_t *state; /* 0 not reported, 1 reported, 2 taken */
    size_t cap;
} core__generator;

static pthread_mutex_t core__gen_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t core__gen_cv = PTHREAD_COND_INITIALIZER;
static rc_map core__generators = RC_MAP_INIT; /* generator return id -> core__generator */

static void core__generator_add(const uint8_t *gen_id, size_t index, const uint8_t *id)
{
    pthread_mutex_lock(&core__gen_mu);
    core__generator *g = rc_map_get(&core__generators, gen_id, RC_OBJECT_ID_SIZE);
    if (!g) {
        g = RC_NEW(core__generator);
        rc_map_put(&core__generators, gen_id, RC_OBJECT_ID_SIZE, g);
    }
    if (index >= g->cap) {
        size_t cap = g->cap ? g->cap : 16;
        while (cap <= index)
            cap *= 2;
        g->ids = rc_realloc(g->ids, cap * RC_OBJECT_ID_SIZE);
        g->state = rc_realloc(g->state, cap);
        memset(g->state + g->cap, 0, cap - g->cap);
        g->cap = cap;
    }
    if (!g->state[index]) {
        memcpy(g->ids[index], id, RC_OBJECT_ID_SIZE);
        g->state[index] = 1;
    }
    pthread_cond_broadcast(&core__gen_cv);
    pthread_mutex_unlock(&core__gen_mu);
}

int rayc_generator_next(const rayc_ref *gen, size_t index, int64_t timeout_ms, rayc_ref *item)
{
    if (!core__cw)
        return core_fail(RC_ESTATE, "rayc_generator_next: call rayc_init first");
    if (!gen || !item)
        return core_fail(RC_EINVAL, "rayc_generator_next: gen and item are required");
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + (timeout_ms > 0 ? timeout_ms : 0) % 1000 * 1000000;
    deadline.tv_sec += (timeout_ms > 0 ? timeout_ms : 0) / 1000 + ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;
    int rc = RC_ETIMEDOUT;
    pthread_mutex_lock(&core__gen_mu);
    for (;;) {
        core__generator *g = rc_map_get(&core__generators, gen->id, RC_OBJECT_ID_SIZE);
        if (g && index < g->cap && g->state[index] == 1) {
            memcpy(item->id, g->ids[index], RC_OBJECT_ID_SIZE);
            g->state[index] = 2; /* the reference the report made is the caller's now */
            rc = 0;
            break;
        }
        if (g && index < g->cap && g->state[index] == 2) {
            rc = RC_EEXIST;
            break;
        }
        if (timeout_ms == 0 || (timeout_ms > 0 && pthread_cond_timedwait(&core__gen_cv, &core__gen_mu, &deadline)))
            break;
        if (timeout_ms < 0)
            pthread_cond_wait(&core__gen_cv, &core__gen_mu);
    }
    pthread_mutex_unlock(&core__gen_mu);
    return rc;
}

static void core__free_generator(void *p)
{
    core__generator *g = p;
    rc_free(g->ids);
    rc_free(g->state);
    rc_free(g);
}

void core_generators_clear(void)
{
    pthread_mutex_lock(&core__gen_mu);
    rc_map_destroy(&core__generators, core__free_generator);
    pthread_mutex_unlock(&core__gen_mu);
}

/* ReportGeneratorItemReturns (loop thread): the owner takes a value its generator task
 * yielded. Only values of that very task are accepted (their IDs derive from its ID). */
static void handle_report_generator_item(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__ReportGeneratorItemReturnsRequest *req = (const void *)request;
    const Ray__Rpc__ReturnObject *ro = req->returned_object;
    if (!ro || ro->object_id.len != RC_OBJECT_ID_SIZE || req->generator_id.len != RC_OBJECT_ID_SIZE ||
        req->item_index < 0 || req->item_index >= (1 << 24) ||
        memcmp(ro->object_id.data, req->generator_id.data, RC_TASK_ID_SIZE) ||
        (ro->in_plasma && (!req->worker_addr || req->worker_addr->node_id.len != RC_NODE_ID_SIZE)))
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                                "ReportGeneratorItemReturns needs a value of the generator's own task (28-byte IDs), "
                                "an index in 0..2^24 and, for a stored value, the executor's node");
    /* A job's workers report only into that job's generators (an object ID ends with its
     * job's ID); the admin may report anywhere. */
    const rpc_identity *who = rpc_call_identity(call);
    if (who && who->role == RPC_ROLE_JOB &&
        memcmp(who->job_id, req->generator_id.data + RC_TASK_ID_SIZE - RC_JOB_ID_SIZE, RC_JOB_ID_SIZE))
        return rpc_reply_status(call, GRPC_STATUS_PERMISSION_DENIED,
                                "a job's workers report values only for that job's generators");
    core_ref *gen = core_ref_get(cw, req->generator_id.data);
    if (!gen)
        return rpc_reply_status(call, GRPC_STATUS_NOT_FOUND, "this process owns no generator with that ID");
    if (!core_ref_get(cw, ro->object_id.data)) {
        core_ref *r = core_ref_create(cw, ro->object_id.data);
        r->local_refs = 1; /* handed to whoever takes the value (rayc_generator_next) */
        if (ro->in_plasma) {
            core_ref_set_ready(cw, r, 1, req->worker_addr->node_id.data, (uint64_t)ro->size);
        } else {
            core_memstore_put(&cw->memstore, r->id,
                              core_value_from_inline(ro->data.data, ro->data.len, ro->metadata.data, ro->metadata.len));
            core_ref_set_ready(cw, r, 0, NULL, ro->data.len);
        }
        core__generator_add(req->generator_id.data, (size_t)req->item_index, ro->object_id.data);
    }
    Ray__Rpc__ReportGeneratorItemReturnsReply reply = RAY__RPC__REPORT_GENERATOR_ITEM_RETURNS_REPLY__INIT;
    reply.total_num_object_consumed = -1;
    rpc_reply(call, &reply.base);
}

const rpc_method_handler core_generator_handlers[] = {
    {"ReportGeneratorItemReturns", handle_report_generator_item},
    {NULL, NULL},
};

/* ---- internal KV ---------------------------------------------------------------------- */

static rpc_client *core__gcs_rpc(core_worker *cw)
{
    return gcs_client_rpc(cw->gcs);
}

/* A GCS call from a user thread (svc's method): 0 with *reply (rpc_msg_free), or RC_EAUTH /
 * RC_EUNAVAIL with the last error set to "what: why". */
static int core__gcs_call(core_worker *cw, const char *what, const ProtobufCServiceDescriptor *svc, const char *method,
                          const ProtobufCMessage *req, ProtobufCMessage **reply)
{
    char err[300] = "";
    /* A call lost on the way is asked again, as Ray's GCS client does (the API's GCS calls
     * are reads, or writes that a repeat leaves as they were). */
    int code = GRPC_STATUS_UNAVAILABLE;
    for (int attempt = 0; attempt < 3; attempt++) {
        *reply = NULL;
        code = core_call_from_thread(cw, core__gcs_rpc, svc, method, req, rc_cfg.gcs_rpc_timeout_ms, reply, err,
                                     sizeof(err));
        if (code != GRPC_STATUS_UNAVAILABLE && code != GRPC_STATUS_DEADLINE_EXCEEDED)
            break;
        rpc_msg_free(*reply);
    }
    if (code != GRPC_STATUS_OK) {
        rpc_msg_free(*reply);
        *reply = NULL;
        return core_fail(code == GRPC_STATUS_PERMISSION_DENIED || code == GRPC_STATUS_UNAUTHENTICATED ? RC_EAUTH
                                                                                                     : RC_EUNAVAIL,
                         "%s: %s", what, err);
    }
    return 0;
}

/* The text built in b as a malloc'd string (what the *_json functions hand out); frees b. */
static char *core__json_out(rc_buf *b)
{
    char *out = strdup(rc_buf_cstr(b));
    rc_buf_free(b);
    return out;
}

int rayc_kv_put(const char *ns, const char *key, const void *value, size_t size, int overwrite)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_kv_put: call rayc_init first");
    if (!ns || !key || !*key || (size && !value))
        return core_fail(RC_EINVAL, "rayc_kv_put: a namespace, a key and the value are required");
    Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    req.namespace_.data = (uint8_t *)ns;
    req.namespace_.len = strlen(ns);
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    req.value.data = (uint8_t *)value;
    req.value.len = size;
    req.overwrite = overwrite != 0;
    ProtobufCMessage *reply = NULL;
    int rc = core__gcs_call(cw, "rayc_kv_put", &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut", &req.base,
                            &reply);
    if (rc < 0)
        return rc;
    const Ray__Rpc__GcsStatus *st = ((Ray__Rpc__InternalKVPutReply *)reply)->status;
    if (st && st->code != 0) {
        rc = core_fail(RC_EINVAL, "rayc_kv_put: %s", st->message ? st->message : "refused");
    }
    rpc_msg_free(reply);
    return rc;
}

int rayc_kv_get(const char *ns, const char *key, void **value, size_t *size)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_kv_get: call rayc_init first");
    if (!ns || !key || !value || !size)
        return core_fail(RC_EINVAL, "rayc_kv_get: a namespace, a key and out pointers are required");
    Ray__Rpc__InternalKVGetRequest req = RAY__RPC__INTERNAL_KVGET_REQUEST__INIT;
    req.namespace_.data = (uint8_t *)ns;
    req.namespace_.len = strlen(ns);
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    ProtobufCMessage *reply = NULL;
    int rc = core__gcs_call(cw, "rayc_kv_get", &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVGet", &req.base,
                            &reply);
    if (rc < 0)
        return rc;
    const Ray__Rpc__InternalKVGetReply *r = (const Ray__Rpc__InternalKVGetReply *)reply;
    if (r->status && r->status->code != 0) {
        rc = RC_ENOENT;
    } else {
        *value = malloc(r->value.len ? r->value.len : 1);
        if (!*value) {
            rc = core_fail(RC_ENOMEM, "rayc_kv_get: out of memory for %zu bytes", r->value.len);
        } else {
            memcpy(*value, r->value.data, r->value.len);
            *size = r->value.len;
        }
    }
    rpc_msg_free(reply);
    return rc;
}

/* ---- ray.nodes() ---------------------------------------------------------------------- */

char *rayc_nodes_json(void)
{
    core_worker *cw = core__cw;
    if (!cw) {
        core_fail(RC_ESTATE, "rayc_nodes_json: call rayc_init first");
        return NULL;
    }
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    if (core__gcs_call(cw, "rayc_nodes_json", &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                       &req.base, &reply) < 0)
        return NULL;
    const Ray__Rpc__GetAllNodeInfoReply *r = (const Ray__Rpc__GetAllNodeInfoReply *)reply;
    rc_buf b = RC_BUF_INIT;
    rc_buf_putc(&b, '[');
    for (size_t i = 0; i < r->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[i];
        int alive = n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
        rc_buf_puts(&b, i ? ", {\"NodeID\": \"" : "{\"NodeID\": \"");
        rc_buf_hex(&b, n->node_id.data, n->node_id.len);
        rc_buf_printf(&b, "\", \"Alive\": %s, \"NodeManagerAddress\": ", alive ? "true" : "false");
        rc_buf_json_str(&b, n->node_manager_address ? n->node_manager_address : "",
                        n->node_manager_address ? strlen(n->node_manager_address) : 0);
        rc_buf_puts(&b, ", \"NodeManagerHostname\": ");
        const char *host = n->node_manager_hostname ? n->node_manager_hostname : "";
        rc_buf_json_str(&b, host, strlen(host));
        rc_buf_printf(&b, ", \"NodeManagerPort\": %d, \"ObjectManagerPort\": %d, \"MetricsExportPort\": %d, "
                      "\"ObjectStoreSocketName\": ",
                      n->node_manager_port, n->object_manager_port, n->metrics_export_port);
        const char *sock = n->object_store_socket_name ? n->object_store_socket_name : "";
        rc_buf_json_str(&b, sock, strlen(sock));
        rc_buf_puts(&b, ", \"RayletSocketName\": ");
        sock = n->raylet_socket_name ? n->raylet_socket_name : "";
        rc_buf_json_str(&b, sock, strlen(sock));
        rc_buf_puts(&b, ", \"NodeName\": ");
        const char *name = n->node_name && *n->node_name ? n->node_name : n->node_manager_address ? n->node_manager_address : "";
        rc_buf_json_str(&b, name, strlen(name));
        rc_buf_printf(&b, ", \"alive\": %s, \"IsHeadNode\": %s, \"Resources\": {", alive ? "true" : "false",
                      n->is_head_node ? "true" : "false");
        for (size_t k = 0; alive && k < n->n_resources_total; k++) {
            if (k)
                rc_buf_puts(&b, ", ");
            rc_buf_json_str(&b, n->resources_total[k]->key, strlen(n->resources_total[k]->key));
            rc_buf_printf(&b, ": %.17g", n->resources_total[k]->value);
        }
        rc_buf_puts(&b, "}, \"Labels\": {");
        for (size_t k = 0; k < n->n_labels; k++) {
            if (k)
                rc_buf_puts(&b, ", ");
            rc_buf_json_str(&b, n->labels[k]->key, strlen(n->labels[k]->key));
            rc_buf_puts(&b, ": ");
            rc_buf_json_str(&b, n->labels[k]->value, strlen(n->labels[k]->value));
        }
        rc_buf_puts(&b, "}}");
    }
    rc_buf_putc(&b, ']');
    rpc_msg_free(reply);
    return core__json_out(&b); /* callers free() it */
}

/* ---- placement_group_table() --------------------------------------------------------- */

static void core__pg_json(rc_buf *b, const Ray__Rpc__PlacementGroupTableData *d)
{
    static const char *strategies[] = {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"};
    static const char *states[] = {"PENDING", "PREPARED", "CREATED", "REMOVED", "RESCHEDULING"};
    rc_buf_puts(b, "{\"placement_group_id\": \"");
    rc_buf_hex(b, d->placement_group_id.data, d->placement_group_id.len);
    rc_buf_puts(b, "\", \"name\": ");
    rc_buf_json_str(b, d->name ? d->name : "", d->name ? strlen(d->name) : 0);
    rc_buf_printf(b, ", \"strategy\": \"%s\", \"state\": \"%s\", \"is_detached\": %s, \"namespace\": ",
                  (unsigned)d->strategy < 4 ? strategies[d->strategy] : "UNKNOWN",
                  (unsigned)d->state < 5 ? states[d->state] : "UNKNOWN", d->is_detached ? "true" : "false");
    rc_buf_json_str(b, d->ray_namespace ? d->ray_namespace : "", d->ray_namespace ? strlen(d->ray_namespace) : 0);
    rc_buf_puts(b, ", \"bundles\": {");
    for (size_t i = 0; i < d->n_bundles; i++) {
        const Ray__Rpc__Bundle *bu = d->bundles[i];
        rc_buf_printf(b, "%s\"%d\": {", i ? ", " : "", bu->bundle_id ? bu->bundle_id->bundle_index : (int)i);
        for (size_t k = 0; k < bu->n_unit_resources; k++) {
            if (k)
                rc_buf_puts(b, ", ");
            rc_buf_json_str(b, bu->unit_resources[k]->key, strlen(bu->unit_resources[k]->key));
            rc_buf_printf(b, ": %.17g", bu->unit_resources[k]->value);
        }
        rc_buf_putc(b, '}');
    }
    rc_buf_puts(b, "}, \"bundles_to_node_id\": {");
    for (size_t i = 0; i < d->n_bundles; i++) {
        const Ray__Rpc__Bundle *bu = d->bundles[i];
        rc_buf_printf(b, "%s\"%d\": ", i ? ", " : "", bu->bundle_id ? bu->bundle_id->bundle_index : (int)i);
        if (bu->node_id.len) {
            rc_buf_putc(b, '"');
            rc_buf_hex(b, bu->node_id.data, bu->node_id.len);
            rc_buf_putc(b, '"');
        } else {
            rc_buf_puts(b, "null");
        }
    }
    rc_buf_puts(b, "}}");
}

char *rayc_pg_table_json(const rayc_pg *pg)
{
    core_worker *cw = core__cw;
    if (!cw) {
        core_fail(RC_ESTATE, "rayc_pg_table_json: call rayc_init first");
        return NULL;
    }
    ProtobufCMessage *reply = NULL;
    const ProtobufCServiceDescriptor *svc = &ray__rpc__placement_group_info_gcs_service__descriptor;
    int rc;
    if (pg) {
        Ray__Rpc__GetPlacementGroupRequest req = RAY__RPC__GET_PLACEMENT_GROUP_REQUEST__INIT;
        req.placement_group_id.data = (uint8_t *)pg->id;
        req.placement_group_id.len = RAYC_PG_ID_SIZE;
        rc = core__gcs_call(cw, "rayc_pg_table_json", svc, "GetPlacementGroup", &req.base, &reply);
    } else {
        Ray__Rpc__GetAllPlacementGroupRequest req = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
        rc = core__gcs_call(cw, "rayc_pg_table_json", svc, "GetAllPlacementGroup", &req.base, &reply);
    }
    if (rc < 0)
        return NULL;
    rc_buf b = RC_BUF_INIT;
    rc_buf_putc(&b, '[');
    if (pg) {
        const Ray__Rpc__GetPlacementGroupReply *r = (const void *)reply;
        if (r->placement_group_table_data && r->placement_group_table_data->placement_group_id.len)
            core__pg_json(&b, r->placement_group_table_data);
    } else {
        const Ray__Rpc__GetAllPlacementGroupReply *r = (const void *)reply;
        for (size_t i = 0; i < r->n_placement_group_table_data; i++) {
            if (i)
                rc_buf_puts(&b, ", ");
            core__pg_json(&b, r->placement_group_table_data[i]);
        }
    }
    rc_buf_putc(&b, ']');
    rpc_msg_free(reply);
    return core__json_out(&b);
}

/* ---- ray.util.list_named_actors() ----------------------------------------------------- */

char *rayc_named_actors_json(const char *namespace_, int all_namespaces)
{
    core_worker *cw = core__cw;
    if (!cw) {
        core_fail(RC_ESTATE, "rayc_named_actors_json: call rayc_init first");
        return NULL;
    }
    Ray__Rpc__ListNamedActorsRequest req = RAY__RPC__LIST_NAMED_ACTORS_REQUEST__INIT;
    req.all_namespaces = all_namespaces != 0;
    req.ray_namespace = (char *)(namespace_ ? namespace_ : cw->namespace_);
    ProtobufCMessage *reply = NULL;
    if (core__gcs_call(cw, "rayc_named_actors_json", &ray__rpc__actor_info_gcs_service__descriptor, "ListNamedActors",
                       &req.base, &reply) < 0)
        return NULL;
    const Ray__Rpc__ListNamedActorsReply *r = (const void *)reply;
    rc_buf b = RC_BUF_INIT;
    rc_buf_putc(&b, '[');
    for (size_t i = 0; i < r->n_named_actors_list; i++) {
        const Ray__Rpc__NamedActorInfo *a = r->named_actors_list[i];
        const char *name = a->name ? a->name : "", *ns = a->ray_namespace ? a->ray_namespace : "";
        rc_buf_puts(&b, i ? ", {\"name\": " : "{\"name\": ");
        rc_buf_json_str(&b, name, strlen(name));
        rc_buf_puts(&b, ", \"namespace\": ");
        rc_buf_json_str(&b, ns, strlen(ns));
        rc_buf_putc(&b, '}');
    }
    rc_buf_putc(&b, ']');
    rpc_msg_free(reply);
    return core__json_out(&b);
}

char *rayc_state_json(const char *resource, int64_t limit)
{
    core_worker *cw = core__cw;
    if (!cw) {
        core_fail(RC_ESTATE, "rayc_state_json: call rayc_init first");
        return NULL;
    }
    if (!resource)
        resource = "";
    ProtobufCMessage *reply = NULL;
    rc_buf b = RC_BUF_INIT;
    int64_t truncated = 0, dropped = 0;
    rc_buf_puts(&b, "{\"rows\": [");
    if (!strcmp(resource, "nodes")) {
        Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
        if (core__gcs_call(cw, "rayc_state_json", &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                           &req.base, &reply) < 0)
            goto failed;
        const Ray__Rpc__GetAllNodeInfoReply *r = (const void *)reply;
        for (size_t i = 0; i < r->n_node_info_list; i++) {
            rc_buf_puts(&b, i ? ", " : "");
            gcs_state_json_node(&b, r->node_info_list[i]);
        }
    } else if (!strcmp(resource, "jobs")) {
        Ray__Rpc__GetAllJobInfoRequest req = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
        if (core__gcs_call(cw, "rayc_state_json", &ray__rpc__job_info_gcs_service__descriptor, "GetAllJobInfo",
                           &req.base, &reply) < 0)
            goto failed;
        const Ray__Rpc__GetAllJobInfoReply *r = (const void *)reply;
        for (size_t i = 0; i < r->n_job_info_list; i++) {
            rc_buf_puts(&b, i ? ", " : "");
            gcs_state_json_job(&b, r->job_info_list[i]);
        }
    } else if (!strcmp(resource, "actors")) {
        Ray__Rpc__GetAllActorInfoRequest req = RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__INIT;
        req.show_dead_jobs = 1;
        if (core__gcs_call(cw, "rayc_state_json", &ray__rpc__actor_info_gcs_service__descriptor, "GetAllActorInfo",
                           &req.base, &reply) < 0)
            goto failed;
        const Ray__Rpc__GetAllActorInfoReply *r = (const void *)reply;
        for (size_t i = 0; i < r->n_actor_table_data; i++) {
            rc_buf_puts(&b, i ? ", " : "");
            gcs_state_json_actor(&b, r->actor_table_data[i]);
        }
    } else if (!strcmp(resource, "placement_groups")) {
        Ray__Rpc__GetAllPlacementGroupRequest req = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
        if (core__gcs_call(cw, "rayc_state_json", &ray__rpc__placement_group_info_gcs_service__descriptor,
                           "GetAllPlacementGroup", &req.base, &reply) < 0)
            goto failed;
        const Ray__Rpc__GetAllPlacementGroupReply *r = (const void *)reply;
        for (size_t i = 0; i < r->n_placement_group_table_data; i++) {
            rc_buf_puts(&b, i ? ", " : "");
            gcs_state_json_pg(&b, r->placement_group_table_data[i], NULL);
        }
    } else if (!strcmp(resource, "tasks")) {
        Ray__Rpc__GetTaskEventsRequest req = RAY__RPC__GET_TASK_EVENTS_REQUEST__INIT;
        if (limit > 0) {
            req._limit_case = RAY__RPC__GET_TASK_EVENTS_REQUEST___LIMIT_LIMIT;
            req.limit = limit;
        }
        if (core__gcs_call(cw, "rayc_state_json", &ray__rpc__task_info_gcs_service__descriptor, "GetTaskEvents",
                           &req.base, &reply) < 0)
            goto failed;
        const Ray__Rpc__GetTaskEventsReply *r = (const void *)reply;
        for (size_t i = 0; i < r->n_events_by_task; i++) {
            rc_buf_puts(&b, i ? ", " : "");
            gcs_state_json_task(&b, r->events_by_task[i]);
        }
        truncated = r->num_truncated;
        dropped = r->num_status_task_events_dropped;
    } else {
        core_fail(RC_EINVAL, "rayc_state_json: '%s' is not one of nodes, jobs, actors, placement_groups, tasks",
                  resource);
        goto failed;
    }
    rc_buf_printf(&b, "], \"truncated\": %lld, \"dropped\": %lld}", (long long)truncated, (long long)dropped);
    rpc_msg_free(reply);
    return core__json_out(&b);
failed:
    rpc_msg_free(reply);
    rc_buf_free(&b);
    return NULL;
}

/* ---- the worker's main loop ----------------------------------------------------------- */

int core_worker_init(const char *gcs_address, const char *raylet_socket, const uint8_t *worker_id,
                     const uint8_t *node_id, const char *node_ip, const uint8_t *job_id, const char *code_search_path);

static void core__on_term(int sig)
{
    (void)sig;
    /* The task thread may be inside user code: leave at once, as Ray's workers do. */
    _exit(0);
}

int rayc_worker_main(int argc, char **argv)
{
    const char *socket = NULL, *node_hex = NULL, *ip = NULL, *worker_hex = NULL, *job_hex = NULL, *gcs = NULL,
               *path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--raylet-socket"))
            socket = v;
        else if (!strcmp(k, "--node-id"))
            node_hex = v;
        else if (!strcmp(k, "--node-ip-address"))
            ip = v;
        else if (!strcmp(k, "--worker-id"))
            worker_hex = v;
        else if (!strcmp(k, "--job-id"))
            job_hex = v;
        else if (!strcmp(k, "--gcs-address"))
            gcs = v;
        else if (!strcmp(k, "--code-search-path"))
            path = v;
        else {
            fprintf(stderr, "rayc worker: unknown argument '%s'\n", k);
            return 2;
        }
    }
    uint8_t node_id[RC_NODE_ID_SIZE], worker_id[RC_WORKER_ID_SIZE], job_id[RC_JOB_ID_SIZE];
    if (!socket || !ip || !gcs || !node_hex || !worker_hex || !job_hex ||
        rc_id_from_hex(node_hex, node_id, sizeof(node_id)) < 0 ||
        rc_id_from_hex(worker_hex, worker_id, sizeof(worker_id)) < 0 ||
        rc_id_from_hex(job_hex, job_id, sizeof(job_id)) < 0) {
        fprintf(stderr, "rayc worker: started without a complete command line (it is started by a raylet: "
                        "--raylet-socket --node-id --node-ip-address --worker-id --job-id --gcs-address)\n");
        return 2;
    }
    rc_config_init();
    rc_log_set_tag("worker");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, core__on_term);
    const char *search = path ? path : getenv("RAYC_CODE_SEARCH_PATH");
    char err[1024] = "";
    if (search && core_load_libraries(search, err, sizeof(err)) < 0)
        RC_ERROR("worker: %s", err); /* tasks naming missing functions will say so */
    if (core_worker_init(gcs, socket, worker_id, node_id, ip, job_id, search) < 0) {
        RC_ERROR("worker: cannot join the raylet at %s: %s", socket, rayc_last_error());
        return 1;
    }
    RC_INFO("worker: ready (pid %d)", (int)getpid());
    core_exec_run_loop(core__cw);
    rayc_shutdown();
    return 0;
}
