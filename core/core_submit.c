/*
 * Task submission, Ray's way (docs/tasks.md): the owner resolves the arguments it owns,
 * groups tasks by scheduling key (their lease shape), leases workers from raylets
 * (RequestWorkerLease, following spillback), pushes tasks straight to leased workers
 * (PushTask, several in flight per worker), records the results, retries system failures
 * up to max_retries (application errors only with retry_exceptions), and returns leases
 * once a key has nothing left to run.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "object_manager.pb-c.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

static void core__dispatch(core_worker *cw, core_sched_key *key);
static void core_submit_linger_tick_cb(uv_timer_t *t);

/* ---- results -------------------------------------------------------------------------- */

void core_task_free(core_task *t)
{
    rc_free(t->arg_error_message);
    rpc_msg_free(t->spec ? &t->spec->base : NULL);
    rc_free(t->arg_refs);
    rc_free(t);
}

static void core__release_args(core_worker *cw, core_task *t)
{
    core_ref **refs = t->arg_refs;
    size_t n = t->n_arg_refs;
    int submitted = t->args_submitted, lineage = t->in_lineage;
    t->arg_refs = NULL;
    t->n_arg_refs = 0;
    t->args_submitted = 0;
    t->in_lineage = 0;
    for (size_t i = 0; i < n; i++) {
        if (lineage)
            core_ref_add_lineage(cw, refs[i], -1);
        if (submitted)
            core_ref_add_submitted(cw, refs[i], -1);
    }
    rc_free(refs);
}

/* Return object i of task t. */
static void core__return_id(const core_task *t, uint32_t i, uint8_t *id)
{
    memcpy(id, t->task_id, RC_TASK_ID_SIZE);
    uint32_t index = i + 1; /* Ray numbers returns from 1 */
    memcpy(id + RC_TASK_ID_SIZE, &index, sizeof(index));
}

/* 1 if the argument spec still names object id (it was not inlined). */
static int core__passes_ref(const core_task *t, const uint8_t *id)
{
    for (size_t i = 0; i < t->spec->n_args; i++) {
        const Ray__Rpc__TaskArg *a = t->spec->args[i];
        if (a->object_ref && a->object_ref->object_id.len == RC_OBJECT_ID_SIZE &&
            !memcmp(a->object_ref->object_id.data, id, RC_OBJECT_ID_SIZE))
            return 1;
    }
    return 0;
}

/* The list of kept, finished tasks (oldest first) and their bytes. */
static void core__lineage_link(core_worker *cw, core_task *t)
{
    if (t->lineage_bytes)
        return;
    t->lineage_bytes = protobuf_c_message_get_packed_size(&t->spec->base) + sizeof(*t);
    cw->lineage_bytes += (int64_t)t->lineage_bytes;
    rc_list_insert_tail(&cw->lineage_order, &t->lineage_link);
}

static void core__lineage_unlink(core_worker *cw, core_task *t)
{
    if (!t->lineage_bytes)
        return;
    cw->lineage_bytes -= (int64_t)t->lineage_bytes;
    t->lineage_bytes = 0;
    rc_list_remove(&t->lineage_link);
}

/* Releases kept task t to bound memory: its returns can no longer be made again. */
static void core__lineage_evict(core_worker *cw, core_task *t)
{
    for (uint64_t i = 0; i < t->spec->num_returns; i++) {
        uint8_t id[RC_OBJECT_ID_SIZE];
        core__return_id(t, (uint32_t)i, id);
        core_ref *r = core_ref_get(cw, id);
        if (r && r->lineage == t) {
            r->lineage = NULL;
            r->lineage_evicted = 1;
        }
    }
    t->lineage_refs = 0;
    core__lineage_unlink(cw, t);
    rc_map_remove(&cw->lineage, t->task_id, RC_TASK_ID_SIZE);
    core__release_args(cw, t);
    core_task_free(t);
}

/* Past max_lineage_bytes, the oldest kept tasks are released until half of it is left
 * (Ray's rule). */
static void core__lineage_trim(core_worker *cw)
{
    if (cw->lineage_bytes <= rc_cfg.max_lineage_bytes)
        return;
    int64_t before = cw->lineage_bytes, target = rc_cfg.max_lineage_bytes / 2;
    size_t n = 0;
    while (!rc_list_empty(&cw->lineage_order) && cw->lineage_bytes > target) {
        core__lineage_evict(cw, rc_list_entry(rc_list_first(&cw->lineage_order), core_task, lineage_link));
        n++;
    }
    RC_INFO("core: lineage of %lld bytes passed max_lineage_bytes (%lld): released the oldest %zu task(s); their "
            "objects are no longer made again if lost",
            (long long)before, (long long)rc_cfg.max_lineage_bytes, n);
}

/* t finished: keep it as lineage while a return of it is in scope in shared memory (the
 * only kind of copy a node's death can take), else forget it. Its arguments passed by
 * reference move from submitted to lineage counts: their values may be released, their
 * IDs stay so that they can be made again in turn. */
static int core__keep_lineage(core_worker *cw, core_task *t)
{
    if (!t->lineage_refs)
        return 0;
    int in_plasma = 0;
    for (uint64_t i = 0; i < t->spec->num_returns && !in_plasma; i++) {
        uint8_t id[RC_OBJECT_ID_SIZE];
        core__return_id(t, (uint32_t)i, id);
        core_ref *r = core_ref_get(cw, id);
        in_plasma = r && r->lineage == t && r->state == CORE_REF_READY && r->in_plasma;
    }
    if (!in_plasma) {
        for (uint64_t i = 0; i < t->spec->num_returns; i++) {
            uint8_t id[RC_OBJECT_ID_SIZE];
            core__return_id(t, (uint32_t)i, id);
            core_ref *r = core_ref_get(cw, id);
            if (r && r->lineage == t)
                r->lineage = NULL;
        }
        t->lineage_refs = 0;
        return 0;
    }
    if (!t->in_lineage) {
        size_t kept = 0;
        for (size_t i = 0; i < t->n_arg_refs; i++) {
            core_ref *a = t->arg_refs[i];
            if (core__passes_ref(t, a->id)) {
                core_ref_add_lineage(cw, a, 1);
                t->arg_refs[kept++] = a;
            }
            core_ref_add_submitted(cw, a, -1);
        }
        t->n_arg_refs = kept;
        t->args_submitted = 0;
        t->in_lineage = 1;
        rc_map_put(&cw->lineage, t->task_id, RC_TASK_ID_SIZE, t);
    } else if (t->args_submitted) {
        for (size_t i = 0; i < t->n_arg_refs; i++)
            core_ref_add_submitted(cw, t->arg_refs[i], -1);
        t->args_submitted = 0;
    }
    core__lineage_link(cw, t);
    core__lineage_trim(cw); /* may release t itself: the caller is done with it */
    return 1;
}

static void core__task_finished(core_worker *cw, core_task *t)
{
    if (t->on_finished)
        t->on_finished(cw, t);
    t->state = CORE_TASK_DONE;
    t->key = NULL;
    t->lease = NULL;
    rc_map_remove(&cw->tasks, t->task_id, RC_TASK_ID_SIZE);
    if (core__keep_lineage(cw, t))
        return;
    core__lineage_unlink(cw, t);
    if (t->in_lineage)
        rc_map_remove(&cw->lineage, t->task_id, RC_TASK_ID_SIZE);
    core__release_args(cw, t);
    core_task_free(t);
}

void core_submit_lineage_drop(core_worker *cw, core_task *t)
{
    if (--t->lineage_refs > 0 || t->state != CORE_TASK_DONE)
        return; /* a running task decides at its end */
    core__lineage_unlink(cw, t);
    if (t->in_lineage)
        rc_map_remove(&cw->lineage, t->task_id, RC_TASK_ID_SIZE);
    core__release_args(cw, t);
    core_task_free(t);
}

/* Stores error as every result of t and finishes it. */
void core_task_fail(core_worker *cw, core_task *t, rayc_error error, const char *message)
{
    core_events_task_failed(cw, t->spec, core_events_error_type(error), message);
    char text[1024];
    snprintf(text, sizeof(text), "%s", message);
    for (uint64_t i = 0; i < t->spec->num_returns; i++) {
        uint8_t id[RC_OBJECT_ID_SIZE];
        core__return_id(t, (uint32_t)i, id);
        core_ref *r = core_ref_get(cw, id);
        if (!r || r->state != CORE_REF_PENDING)
            continue; /* a return a rerun did not need to make again keeps its value */
        r->task = NULL;
        core_memstore_put(&cw->memstore, id, core_value_new_error(error, text));
        core_ref_set_ready(cw, r, 0, NULL, 0);
    }
    core__task_finished(cw, t);
}

/* A plasma result nobody wants any more: tell its node to drop it. */
static void core__free_orphan(core_worker *cw, const uint8_t *object_id, const uint8_t *node_id)
{
    const char *addr = core_node_address(cw, node_id);
    rpc_client *cli = addr ? core_raylet_client(cw, addr) : NULL;
    if (!cli)
        return;
    Ray__Rpc__FreeObjectsRequest req = RAY__RPC__FREE_OBJECTS_REQUEST__INIT;
    ProtobufCBinaryData id = {RC_OBJECT_ID_SIZE, (uint8_t *)object_id};
    req.object_ids = &id;
    req.n_object_ids = 1;
    rpc_client_call(cli, &ray__rpc__object_manager_service__descriptor, "FreeObjects", &req.base,
                    rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
}

void core_task_succeeded(core_worker *cw, core_task *t, const Ray__Rpc__PushTaskReply *reply,
                         const uint8_t *worker_node)
{
    for (size_t i = 0; i < reply->n_return_objects; i++) {
        const Ray__Rpc__ReturnObject *ro = reply->return_objects[i];
        if (ro->object_id.len != RC_OBJECT_ID_SIZE)
            continue;
        core_ref *r = core_ref_get(cw, ro->object_id.data);
        if (!r) {
            if (ro->in_plasma && worker_node)
                core__free_orphan(cw, ro->object_id.data, worker_node);
            continue;
        }
        if (r->state != CORE_REF_PENDING) {
            /* A rerun made a return that was not lost again: one more copy. */
            if (ro->in_plasma && worker_node && r->state == CORE_REF_READY && r->in_plasma)
                core_ref_add_location(cw, r, worker_node);
            else if (ro->in_plasma && worker_node)
                core__free_orphan(cw, ro->object_id.data, worker_node);
            continue;
        }
        r->task = NULL;
        if (ro->in_plasma) {
            core_ref_set_ready(cw, r, 1, worker_node, (uint64_t)ro->size);
        } else {
            core_memstore_put(&cw->memstore, r->id,
                              core_value_from_inline(ro->data.data, ro->data.len, ro->metadata.data, ro->metadata.len));
            core_ref_set_ready(cw, r, 0, NULL, ro->data.len);
        }
    }
    /* Returns the worker did not send (a function that set fewer values) are errors. */
    for (uint64_t i = 0; i < t->spec->num_returns; i++) {
        uint8_t id[RC_OBJECT_ID_SIZE];
        core__return_id(t, (uint32_t)i, id);
        core_ref *r = core_ref_get(cw, id);
        if (!r || r->state != CORE_REF_PENDING)
            continue;
        r->task = NULL;
        core_memstore_put(&cw->memstore, id,
                          core_value_new_error(RAYC_ERR_TASK_FAILED, "the worker returned no value for this result"));
        core_ref_set_ready(cw, r, 0, NULL, 0);
    }
    if (reply->is_application_error) /* the worker could not run it (no such function, ...) */
        core_events_task_failed(cw, t->spec, RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION, reply->task_execution_error);
    else
        core_events_task_status(cw, t->spec, RAY__RPC__TASK_STATUS__FINISHED, worker_node);
    core__task_finished(cw, t);
}

/* ---- scheduling keys ------------------------------------------------------------------ */

static int core__entry_cmp(const void *a, const void *b)
{
    const Ray__Rpc__TaskSpec__RequiredResourcesEntry *x = *(void *const *)a, *y = *(void *const *)b;
    return strcmp(x->key, y->key);
}

/* A canonical byte string of everything that decides where a task may run: the resources
 * sorted by name (raw bytes: the key is only compared, never shown), then the strategy,
 * the label selector and rayc's extras as packed messages, and last whether the task may
 * run again (retriable): a lease asked for retriable tasks never runs one that may not,
 * since its raylet may preempt it (job_fair_share_preemption) on the strength of its
 * LeaseSpec.max_retries. */
static void core__key_name(const Ray__Rpc__TaskSpec *spec, int retriable, rc_buf *b)
{
    size_t n = spec->n_required_resources;
    Ray__Rpc__TaskSpec__RequiredResourcesEntry *small[8], **sorted = n <= 8 ? small : rc_malloc(n * sizeof(*sorted));
    memcpy(sorted, spec->required_resources, n * sizeof(*sorted));
    if (n > 1)
        qsort(sorted, n, sizeof(*sorted), core__entry_cmp);
    for (size_t i = 0; i < n; i++) {
        rc_buf_puts(b, sorted[i]->key);
        rc_buf_putc(b, '\0');
        rc_buf_append(b, &sorted[i]->value, sizeof(double));
    }
    if (sorted != small)
        rc_free(sorted);
    const ProtobufCMessage *parts[3] = {
        spec->scheduling_strategy ? &spec->scheduling_strategy->base : NULL,
        spec->label_selector ? &spec->label_selector->base : NULL,
        spec->rayc_extras ? &spec->rayc_extras->base : NULL,
    };
    for (int i = 0; i < 3; i++) {
        rc_buf_putc(b, '|');
        if (!parts[i])
            continue;
        size_t len = protobuf_c_message_get_packed_size(parts[i]);
        rc_buf_reserve(b, len);
        protobuf_c_message_pack(parts[i], (uint8_t *)b->data + b->len);
        b->len += len;
        b->data[b->len] = '\0';
    }
    rc_buf_putc(b, retriable ? 'R' : 'N');
}

/* The scheduling key of t as it stands: a task with no retries left goes to a key whose
 * lease requests say max_retries = 0 even when its spec allowed retries. */
static core_sched_key *core__key_for(core_worker *cw, const core_task *t)
{
    const Ray__Rpc__TaskSpec *spec = t->spec;
    int retriable = t->retries_left != 0;
    rc_buf name = RC_BUF_INIT;
    core__key_name(spec, retriable, &name);
    core_sched_key *key = rc_map_get(&cw->keys, name.data, name.len);
    if (key) {
        rc_buf_free(&name);
        return key;
    }
    key = RC_NEW(core_sched_key);
    rc_list_init(&key->queue);
    rc_list_init(&key->leases);
    rc_list_init(&key->requests);
    key->name_len = name.len;
    key->name = rc_buf_detach(&name);
    Ray__Rpc__LeaseSpec ls = RAY__RPC__LEASE_SPEC__INIT;
    ls.job_id = spec->job_id;
    ls.caller_address = spec->caller_address;
    ls.type = spec->type;
    ls.n_required_resources = spec->n_required_resources;
    ls.required_resources = (Ray__Rpc__LeaseSpec__RequiredResourcesEntry **)spec->required_resources;
    ls.scheduling_strategy = spec->scheduling_strategy;
    ls.label_selector = spec->label_selector;
    ls.depth = spec->depth;
    ls.parent_task_id = spec->parent_task_id;
    ls.language = spec->language;
    ls.function_descriptor = spec->function_descriptor;
    ls.max_retries = retriable ? spec->max_retries : 0;
    ls.task_name = spec->name;
    ls.rayc_extras = spec->rayc_extras;
    key->lease_template = (Ray__Rpc__LeaseSpec *)rpc_msg_dup(&ls.base);
    rc_map_put(&cw->keys, key->name, key->name_len, key);
    return key;
}

static void core__queue_push(core_sched_key *key, core_task *t, int front)
{
    t->key = key;
    t->state = CORE_TASK_QUEUED;
    if (front)
        rc_list_insert_head(&key->queue, &t->link);
    else
        rc_list_insert_tail(&key->queue, &t->link);
    key->queued++;
}

static void core__queue_unlink(core_sched_key *key, core_task *t)
{
    rc_list_remove(&t->link);
    key->queued--;
}

static void core__lease_unlink_task(core_lease *l, core_task *t)
{
    rc_list_remove(&t->link);
    l->in_flight--;
    t->lease = NULL;
}

/* ---- leases --------------------------------------------------------------------------- */

static void core__lease_returned(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)arg;
    if (st->code != GRPC_STATUS_OK)
        RC_DEBUG("core: ReturnWorkerLease failed: %s", st->message);
    rpc_msg_free(reply);
}

static void core__lease_free(core_lease *l)
{
    rpc_msg_free(l->worker_address ? &l->worker_address->base : NULL);
    for (size_t i = 0; i < l->n_resource_mapping; i++)
        rpc_msg_free(&l->resource_mapping[i]->base);
    rc_free(l->resource_mapping);
    rc_free(l);
}

/* Gives the lease back to its raylet and forgets it. */
static void core__lease_return(core_worker *cw, core_lease *l, int disconnect, const char *why)
{
    rc_list_remove(&l->link);
    Ray__Rpc__ReturnWorkerLeaseRequest req = RAY__RPC__RETURN_WORKER_LEASE_REQUEST__INIT;
    req.worker_port = l->worker_address->port;
    req.lease_id.data = l->lease_id;
    req.lease_id.len = RC_UNIQUE_ID_SIZE;
    req.disconnect_worker = disconnect;
    req.disconnect_worker_error_detail = (char *)(why ? why : "");
    if (l->raylet && !cw->stopping)
        rpc_client_call(l->raylet, &ray__rpc__node_manager_service__descriptor, "ReturnWorkerLease", &req.base,
                        rc_cfg.gcs_rpc_timeout_ms, core__lease_returned, NULL);
    core__lease_free(l);
}

static void core__push(core_worker *cw, core_lease *l, core_task *t);

/* t's worker died (why) on node (NULL: unknown); preempted: its raylet preempted it for a
 * job of higher priority, which costs no retry. Queues the retry (returning its key) or
 * fails t (returning NULL). */
static core_sched_key *core__worker_died(core_worker *cw, core_task *t, const char *why, const uint8_t *node,
                                         int preempted)
{
    if (t->cancelled) {
        core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the task was cancelled (its worker was stopped)");
        return NULL;
    }
    core_events_task_failed(cw, t->spec, RAY__RPC__ERROR_TYPE__WORKER_DIED, why);
    if (preempted) {
        t->spec->attempt_number++;
        t->died_ms = 0; /* its node is fine: any lease there may take the retry */
        RC_INFO("core: the worker running task %s was preempted (%s); retrying (%d retries left, not counted)",
                t->spec->name, why, t->retries_left);
    } else if (t->retries_left != 0) {
        if (t->retries_left > 0)
            t->retries_left--;
        t->spec->attempt_number++;
        if (node) {
            memcpy(t->died_on, node, RC_NODE_ID_SIZE);
            t->died_ms = rc_mono_ms();
        }
        RC_INFO("core: the worker running task %s died (%s); retrying (%d left)", t->spec->name, why,
                t->retries_left);
    } else {
        char hex[RC_ID_HEX_MAX] = "?";
        if (node)
            rc_id_hex(node, RC_NODE_ID_SIZE, hex);
        char message[1024];
        snprintf(message, sizeof(message),
                 "task '%s': the worker running it died (%s) on node %.16s and no retries are left "
                 "(max_retries=%d)",
                 t->spec->name, why, hex, t->spec->max_retries);
        core_task_fail(cw, t, RAYC_ERR_WORKER_DIED, message);
        return NULL;
    }
    core_sched_key *key = core__key_for(cw, t);
    core__queue_push(key, t, 1);
    return key;
}

/* A question to a lease's raylet about why its worker died (GetWorkerFailureCause), for a
 * task that waits for the answer in state RESOLVING (a cancel meanwhile marks it). */
typedef struct core__cause_query {
    core_task *t;
    char why[512];
    int have_node;
    uint8_t node[RC_NODE_ID_SIZE];
} core__cause_query;

static void core__failure_cause(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core__cause_query *q = arg;
    core_worker *cw = core__cw;
    core_task *t = q->t;
    const Ray__Rpc__GetWorkerFailureCauseReply *r = (const void *)reply;
    if (!cw || cw->stopping) {
        if (cw)
            core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the process shut down while the task ran");
    } else {
        int preempted = st->code == GRPC_STATUS_OK && r && r->rayc_preempted;
        char why[768];
        snprintf(why, sizeof(why), "%s", preempted && r->failure_cause && r->failure_cause->error_message[0]
                                             ? r->failure_cause->error_message
                                             : q->why);
        core_sched_key *key = core__worker_died(cw, t, why, q->have_node ? q->node : NULL, preempted);
        if (key)
            core__dispatch(cw, key);
    }
    rpc_msg_free(reply);
    rc_free(q);
}

/* Asks l's raylet why its worker died before t is retried or failed (core__failure_cause
 * decides). Returns 0, or RC_ESTATE when there is nobody to ask (no raylet, or its node
 * is known dead: the worker died with it) and the caller decides now. */
static int core__ask_failure_cause(core_worker *cw, core_lease *l, core_task *t, const char *why)
{
    const ProtobufCBinaryData *nid = &l->worker_address->node_id;
    core_node *n = nid->len == RC_NODE_ID_SIZE ? rc_map_get(&cw->nodes, nid->data, RC_NODE_ID_SIZE) : NULL;
    if (!l->raylet || (n && !n->alive))
        return RC_ESTATE;
    core__cause_query *q = RC_NEW(core__cause_query);
    q->t = t;
    snprintf(q->why, sizeof(q->why), "%s", why);
    if (nid->len == RC_NODE_ID_SIZE) {
        q->have_node = 1;
        memcpy(q->node, nid->data, RC_NODE_ID_SIZE);
    }
    Ray__Rpc__GetWorkerFailureCauseRequest req = RAY__RPC__GET_WORKER_FAILURE_CAUSE_REQUEST__INIT;
    req.lease_id.data = l->lease_id;
    req.lease_id.len = RC_UNIQUE_ID_SIZE;
    core_task_state was = t->state;
    t->state = CORE_TASK_RESOLVING; /* before the call: its answer may come at once */
    if (rpc_client_call(l->raylet, &ray__rpc__node_manager_service__descriptor, "GetWorkerFailureCause", &req.base,
                        rc_cfg.worker_failure_cause_timeout_ms, core__failure_cause, q) < 0) {
        t->state = was;
        rc_free(q);
        return RC_ESTATE;
    }
    return 0;
}

static void core__pushed(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_task *t = arg;
    core_worker *cw = core__cw;
    core_lease *l = t->lease;
    core_sched_key *key = t->key;
    core__lease_unlink_task(l, t);
    if (cw->stopping) { /* the process is going away: nobody will read the result */
        rpc_msg_free(reply);
        core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the process shut down while the task ran");
        if (l->in_flight == 0) {
            rc_list_remove(&l->link);
            core__lease_free(l);
        }
        return;
    }
    Ray__Rpc__PushTaskReply *r = (Ray__Rpc__PushTaskReply *)reply;
    core_sched_key *retry_key = NULL;
    uint8_t node[RC_NODE_ID_SIZE];
    int have_node = l->worker_address->node_id.len == RC_NODE_ID_SIZE;
    if (have_node)
        memcpy(node, l->worker_address->node_id.data, RC_NODE_ID_SIZE);
    if (st->code == GRPC_STATUS_OK) {
        if (t->cancelled && (r->was_cancelled_before_running || t->force_cancel)) {
            core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the task was cancelled");
        } else if (r->is_application_error && t->retry_exceptions && t->retries_left != 0 && !t->cancelled) {
            if (t->retries_left > 0)
                t->retries_left--;
            core_events_task_failed(cw, t->spec, RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION, r->task_execution_error);
            t->spec->attempt_number++;
            RC_INFO("core: task %s failed in its function; retrying (%d left)", t->spec->name, t->retries_left);
            retry_key = core__key_for(cw, t);
            core__queue_push(retry_key, t, 1);
        } else {
            core_task_succeeded(cw, t, r, have_node ? node : NULL);
        }
    } else {
        /* The worker is gone (killed, crashed, node lost): every task on it fails the same way,
         * unless its raylet preempted it (asked first when the task may run again). */
        l->worker_failed = 1;
        if (t->cancelled || t->retries_left == 0 || core__ask_failure_cause(cw, l, t, st->message) < 0)
            retry_key = core__worker_died(cw, t, st->message, have_node ? node : NULL, 0);
    }
    rpc_msg_free(reply);
    if (l->worker_failed && l->in_flight == 0)
        core__lease_return(cw, l, 1, "the worker failed while running a task");
    core__dispatch(cw, key);
    if (retry_key && retry_key != key) /* its last retry: a key of non-retriable tasks */
        core__dispatch(cw, retry_key);
}

static void core__push(core_worker *cw, core_lease *l, core_task *t)
{
    l->idle_since_ms = 0;
    t->state = CORE_TASK_PUSHED;
    t->lease = l;
    rc_list_insert_head(&l->tasks, &t->link);
    l->in_flight++;
    core_events_task_status(cw, t->spec, RAY__RPC__TASK_STATUS__SUBMITTED_TO_WORKER,
                            l->worker_address->node_id.len == RC_NODE_ID_SIZE ? l->worker_address->node_id.data : NULL);
    Ray__Rpc__PushTaskRequest req = RAY__RPC__PUSH_TASK_REQUEST__INIT;
    req.intended_worker_id = l->worker_address->worker_id;
    req.task_spec = t->spec;
    req.resource_mapping = l->resource_mapping;
    req.n_resource_mapping = l->n_resource_mapping;
    if (rpc_client_call(l->worker, &ray__rpc__core_worker_service__descriptor, "PushTask", &req.base, -1,
                        core__pushed, t) < 0) {
        rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot call the worker"};
        core__pushed(&st, NULL, t);
    }
    (void)cw;
}

static void core__request_lease(core_worker *cw, core_sched_key *key, const char *raylet_address);

/* ---- spillback loops -------------------------------------------------------------------
 *
 * The local raylet spills a lease request to the node its view of the cluster (the GCS's,
 * polled) says has room; that node answers grant_or_reject from its own, true state. While
 * the two disagree (the node's reports are late, or wrong), the request would go back and
 * forth for as long as they do. So an owner follows at most lease_spillback_max_bounces
 * spillbacks of one shape that end in a rejection in a row; at the next spillback it stops:
 * the request waits (with an explanation) for 1 s, then 2, 4, ... up to
 * lease_spillback_hold_max_ms, and asks its local raylet afresh, which by then resolves it
 * against a newer view from the GCS; one spillback is followed again each time. A grant
 * ends the episode. */

static void core__spill_bounced(core_sched_key *key, const char *target)
{
    key->spill_bounces++;
    RC_DEBUG("core: lease request rejected by spillback target %s (%d in a row)", target, key->spill_bounces);
}

static void core__spill_settled(core_sched_key *key)
{
    key->spill_bounces = key->spill_holds = 0;
    key->spill_hold_until_ms = 0;
    if (key->why_is_spill) {
        rc_free(key->why);
        key->why = NULL;
        key->why_is_spill = 0;
    }
}

/* A spillback to target at the bound: the request is not followed; the key waits. */
static void core__spill_hold(core_sched_key *key, const char *target)
{
    int64_t hold = 1000;
    for (int i = 0; i < key->spill_holds && hold < rc_cfg.lease_spillback_hold_max_ms; i++)
        hold *= 2;
    if (hold > rc_cfg.lease_spillback_hold_max_ms)
        hold = rc_cfg.lease_spillback_hold_max_ms > 0 ? rc_cfg.lease_spillback_hold_max_ms : 0;
    key->spill_hold_until_ms = rc_mono_ms() + hold;
    const core_task *first = core_task_first(&key->queue);
    const char *name = first && first->spec ? first->spec->name : "a task";
    char why[512];
    snprintf(why, sizeof(why),
             "its lease request went back and forth between raylets %d times: the local raylet's view of the "
             "cluster says node %s has room, but that node turned it down or could not be reached (their views "
             "disagree); it waits for the views to settle and asks again",
             key->spill_bounces, target);
    RC_WARN("core: '%s': %s (spillback hold %d, %lld ms)", name, why, key->spill_holds + 1, (long long)hold);
    if (!key->spill_holds)
        fprintf(stderr, "rayc: warning: '%s' waits: %s.\n", name, why);
    if (!key->why) {
        key->why = rc_strdup(why);
        key->why_is_spill = 1;
    }
    key->spill_holds++;
}

/* The local raylet answered a lease request of key (st: how). A failure holds key's next
 * request for a while (see core_sched_key.raylet_failures), so that an owner whose raylet
 * is gone neither spins nor floods its log; it says so once, and again when it is back. */
static void core__raylet_answered(core_sched_key *key, const rpc_status *st)
{
    if (st->code == GRPC_STATUS_OK) {
        if (key->raylet_failures)
            RC_INFO("core: the local raylet answers lease requests again (after %d failures)", key->raylet_failures);
        key->raylet_failures = 0;
        key->raylet_retry_at_ms = 0;
        return;
    }
    int64_t pause = 1000;
    for (int i = 0; i < key->raylet_failures && pause < 8000; i++)
        pause *= 2;
    if (!key->raylet_failures)
        RC_WARN("core: RequestWorkerLease to the local raylet failed: %s; asking again in %lld ms, then less often "
                "while it fails",
                st->message, (long long)pause);
    key->raylet_failures++;
    key->raylet_retry_at_ms = rc_mono_ms() + pause;
}

static void core__lease_replied(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_lease_request *req = arg;
    core_worker *cw = core__cw;
    core_sched_key *key = req->key;
    rc_list_remove(&req->link);
    key->n_requests--;
    Ray__Rpc__RequestWorkerLeaseReply *r = (Ray__Rpc__RequestWorkerLeaseReply *)reply;
    if (cw->stopping) {
        rpc_msg_free(reply);
        rc_free(req);
        return;
    }
    if (!req->raylet_address[0])
        core__raylet_answered(key, st);
    if (st->code != GRPC_STATUS_OK) {
        if (req->raylet_address[0]) {
            RC_WARN("core: RequestWorkerLease to %s failed: %s", req->raylet_address, st->message);
            core__spill_bounced(key, req->raylet_address);
        }
    } else if (r->canceled) {
        if (r->failure_type == RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE) {
            char message[1024];
            snprintf(message, sizeof(message), "unschedulable: %s",
                     r->scheduling_failure_message && r->scheduling_failure_message[0] ? r->scheduling_failure_message
                                                                                        : "no node can run this task");
            core_task *t;
            while ((t = core_task_first(&key->queue))) {
                core__queue_unlink(key, t);
                core_task_fail(cw, t, RAYC_ERR_UNSCHEDULABLE, message);
            }
        }
    } else if (r->rejected) {
        /* A spillback target could not grant after all: start over at the local raylet. */
        core__spill_bounced(key, req->raylet_address);
    } else if (r->retry_at_raylet_address && r->retry_at_raylet_address->port > 0) {
        char addr[128];
        core_address_text(r->retry_at_raylet_address, addr, sizeof(addr));
        if (rc_cfg.lease_spillback_max_bounces >= 0 && key->spill_bounces >= rc_cfg.lease_spillback_max_bounces) {
            core__spill_hold(key, addr);
        } else {
            core__request_lease(cw, key, addr);
            rpc_msg_free(reply);
            rc_free(req);
            return;
        }
    } else if (r->worker_address && r->worker_address->port > 0) {
        core__spill_settled(key);
        core_lease *l = RC_NEW(core_lease);
        rc_list_init(&l->tasks);
        l->granted_ms = rc_mono_ms();
        l->key = key;
        memcpy(l->lease_id, req->lease_id, RC_UNIQUE_ID_SIZE);
        snprintf(l->raylet_address, sizeof(l->raylet_address), "%s", req->raylet_address);
        l->raylet = req->raylet_address[0] ? core_raylet_client(cw, req->raylet_address) : cw->raylet_tcp;
        l->worker_address = (Ray__Rpc__Address *)rpc_msg_dup(&r->worker_address->base);
        l->n_resource_mapping = r->n_resource_mapping;
        l->resource_mapping = rc_calloc(r->n_resource_mapping ? r->n_resource_mapping : 1, sizeof(*l->resource_mapping));
        for (size_t i = 0; i < r->n_resource_mapping; i++)
            l->resource_mapping[i] = (Ray__Rpc__ResourceMapEntry *)rpc_msg_dup(&r->resource_mapping[i]->base);
        char waddr[128];
        core_address_text(l->worker_address, waddr, sizeof(waddr));
        l->worker = core_worker_client(cw, waddr);
        rc_list_insert_head(&key->leases, &l->link);
    }
    rpc_msg_free(reply);
    rc_free(req);
    core__dispatch(cw, key);
}

/* The tasks of key that wait beyond the lease requests already out for them (Ray's
 * BacklogSize): each request out is counted by the raylet holding it, as a queued
 * request, so the backlog must not count its task again. */
static int64_t core__backlog_size(const core_sched_key *key)
{
    size_t asking = 0;
    const rc_list *n;
    RC_LIST_FOREACH(n, &key->requests)
        asking += !rc_list_entry(n, core_lease_request, link)->cancelled;
    return key->queued > asking ? (int64_t)(key->queued - asking) : 0;
}

static void core__request_lease(core_worker *cw, core_sched_key *key, const char *raylet_address)
{
    rpc_client *raylet = raylet_address && raylet_address[0] ? core_raylet_client(cw, raylet_address) : cw->raylet_tcp;
    if (!raylet)
        return;
    core_lease_request *req = RC_NEW(core_lease_request);
    req->key = key;
    req->sent_ms = rc_mono_ms();
    rc_id_random(req->lease_id, RC_UNIQUE_ID_SIZE);
    snprintf(req->raylet_address, sizeof(req->raylet_address), "%s", raylet_address ? raylet_address : "");
    Ray__Rpc__LeaseSpec *ls = key->lease_template;
    ls->lease_id.data = req->lease_id;
    ls->lease_id.len = RC_UNIQUE_ID_SIZE;
    /* Named for the task it is asked for now (the raylet's logs), not the key's first. */
    char *first_name = ls->task_name;
    const core_task *first = core_task_first(&key->queue);
    if (first && first->spec->name)
        ls->task_name = first->spec->name;
    Ray__Rpc__RequestWorkerLeaseRequest rreq = RAY__RPC__REQUEST_WORKER_LEASE_REQUEST__INIT;
    rreq.lease_spec = ls;
    rreq.grant_or_reject = req->raylet_address[0] != '\0';
    /* The backlog goes to this process's own raylet only, which it keeps up to date
     * (core_submit_backlog_tick); a spillback target would hold it with nobody to clear it.
     * This request is queued there itself, so it is not part of the backlog. */
    int64_t backlog = core__backlog_size(key);
    if (!rreq.grant_or_reject)
        rreq.backlog_size = backlog > 0 ? backlog - 1 : 0;
    /* The local raylet queues a request until it can grant it (no deadline); a spillback
     * target grants or rejects at once, so silence from it means a frozen or cut-off node:
     * the request ends at its deadline and the task asks its local raylet again. */
    int64_t timeout_ms = rreq.grant_or_reject ? rc_cfg.worker_lease_spillback_timeout_ms : -1;
    int rc = rpc_client_call(raylet, &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease", &rreq.base,
                             timeout_ms, core__lease_replied, req);
    ls->lease_id.data = NULL;
    ls->lease_id.len = 0;
    ls->task_name = first_name;
    if (rc < 0) {
        rc_free(req);
        return;
    }
    if (!rreq.grant_or_reject)
        key->last_backlog_reported = rreq.backlog_size; /* what the raylet holds now */
    rc_list_insert_head(&key->requests, &req->link);
    key->n_requests++;
}

/* Pushes queued tasks to leased workers, asks for more leases while tasks wait, and gives
 * leases back when the key runs dry. */
/* 1 if t's retry should not go to l: l is on the node where t's worker just died and was
 * granted before that. */
static int core__lease_suspect(const core_lease *l, const core_task *t)
{
    return t->died_ms && l->granted_ms <= t->died_ms && l->worker_address &&
           l->worker_address->node_id.len == RC_NODE_ID_SIZE &&
           !memcmp(l->worker_address->node_id.data, t->died_on, RC_NODE_ID_SIZE);
}

/* 1 once l has been held for worker_lease_timeout_milliseconds (Ray's): it takes no new
 * task and goes back once idle, and the owner asks again, so the raylet can weigh this
 * job's requests against other jobs' (fair share) even while the owner has work. */
static int core__lease_expired(const core_lease *l, int64_t now)
{
    return rc_cfg.worker_lease_timeout_milliseconds >= 0 &&
           now - l->granted_ms >= rc_cfg.worker_lease_timeout_milliseconds;
}

static void core__dispatch(core_worker *cw, core_sched_key *key)
{
    if (cw->stopping)
        return;
    int64_t now = rc_mono_ms();
    size_t max_in_flight = rc_cfg.max_tasks_in_flight_per_worker > 0 ? (size_t)rc_cfg.max_tasks_in_flight_per_worker : 1;
    size_t max_requests = rc_cfg.max_pending_lease_requests_per_scheduling_category > 0
                              ? (size_t)rc_cfg.max_pending_lease_requests_per_scheduling_category
                              : 1;
    int holding = (key->spill_hold_until_ms && now < key->spill_hold_until_ms) ||
                  (key->raylet_retry_at_ms && now < key->raylet_retry_at_ms);
    /* The lease requests this key may have out once this pass has asked for what it may:
     * those out already, or as many as it may keep out (none more during a spillback hold,
     * or without a raylet to ask). */
    size_t can_ask = holding || !cw->raylet_tcp ? key->n_requests
                                                : (key->n_requests > max_requests ? key->n_requests : max_requests);
    /* Fill the least busy workers first, so new leases get work before old ones pipeline. */
    rc_list *n, *tmp;
    while (!rc_list_empty(&key->queue)) {
        const core_task *next = core_task_first(&key->queue);
        core_lease *best = NULL;
        RC_LIST_FOREACH(n, &key->leases) {
            core_lease *l = rc_list_entry(n, core_lease, link);
            if (!l->worker_failed && l->in_flight < max_in_flight && !core__lease_suspect(l, next) &&
                !core__lease_expired(l, now) && (!best || l->in_flight < best->in_flight))
                best = l;
        }
        if (!best)
            break;
        /* Queue behind a running task only when more tasks wait than lease requests can
         * take, counting those this pass is about to send: a task must not wait for a long
         * one while a worker of its own can be on its way (the requests go out below). */
        if (best->in_flight > 0 && key->queued <= can_ask)
            break;
        core_task *t = core_task_first(&key->queue);
        core__queue_unlink(key, t);
        core__push(cw, best, t);
    }
    RC_LIST_FOREACH_SAFE(n, tmp, &key->leases) {
        core_lease *l = rc_list_entry(n, core_lease, link);
        if (!l->in_flight && core__lease_expired(l, now))
            core__lease_return(cw, l, l->worker_failed, NULL);
    }
    size_t wanted = key->queued < max_requests ? key->queued : max_requests;
    if (holding)
        wanted = 0; /* a spillback loop or a failing raylet: asks again when the hold is over
                       (core_submit_backlog_tick) */
    while (key->n_requests < wanted && cw->raylet_tcp) {
        size_t before = key->n_requests;
        core__request_lease(cw, key, NULL);
        if (key->n_requests == before)
            break;
    }
    if (!rc_list_empty(&key->queue))
        return;
    /* Nothing waits: idle leases go back after a short linger (the next task of this shape
     * usually comes right after: a synchronous caller's next submit), lease requests still
     * out are withdrawn. */
    int lingering = 0;
    RC_LIST_FOREACH_SAFE(n, tmp, &key->leases) {
        core_lease *l = rc_list_entry(n, core_lease, link);
        if (l->in_flight)
            continue;
        if (l->worker_failed || rc_cfg.worker_lease_linger_ms <= 0 ||
            (l->idle_since_ms && now - l->idle_since_ms >= rc_cfg.worker_lease_linger_ms)) {
            core__lease_return(cw, l, l->worker_failed, NULL);
            continue;
        }
        if (!l->idle_since_ms)
            l->idle_since_ms = now;
        lingering = 1;
    }
    if (lingering && !uv_is_active((uv_handle_t *)&cw->linger_timer))
        uv_timer_start(&cw->linger_timer, core_submit_linger_tick_cb, (uint64_t)rc_cfg.worker_lease_linger_ms,
                       0);
    RC_LIST_FOREACH(n, &key->requests) {
        core_lease_request *req = rc_list_entry(n, core_lease_request, link);
        if (req->cancelled)
            continue;
        req->cancelled = 1;
        rpc_client *raylet = req->raylet_address[0] ? core_raylet_client(cw, req->raylet_address) : cw->raylet_tcp;
        if (!raylet)
            continue;
        Ray__Rpc__CancelWorkerLeaseRequest creq = RAY__RPC__CANCEL_WORKER_LEASE_REQUEST__INIT;
        creq.lease_id.data = req->lease_id;
        creq.lease_id.len = RC_UNIQUE_ID_SIZE;
        rpc_client_call(raylet, &ray__rpc__node_manager_service__descriptor, "CancelWorkerLease", &creq.base,
                        rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
    }
}

/* ---- submission ----------------------------------------------------------------------- */

static void core__enqueue(core_worker *cw, core_task *t)
{
    core_events_task_status(cw, t->spec, RAY__RPC__TASK_STATUS__PENDING_NODE_ASSIGNMENT, NULL);
    core_sched_key *key = core__key_for(cw, t);
    core__queue_push(key, t, 0);
    core__dispatch(cw, key);
}

/* One more argument (or the submission itself) is settled: when none is left, the task is
 * queued, or failed if an argument was an error. */
static void core__arg_resolved(core_worker *cw, core_task *t)
{
    if (!t->unresolved || --t->unresolved > 0)
        return;
    if (t->arg_error)
        core_task_fail(cw, t, t->arg_error, t->arg_error_message);
    else if (t->on_resolved)
        t->on_resolved(cw, t);
    else
        core__enqueue(cw, t);
}

/* An owned argument became ready: inline it if small, fail the task if it is an error. */
static void core__arg_ready(core_worker *cw, core_ref *r, void *arg)
{
    core_task *t = arg;
    if (t->state == CORE_TASK_DONE)
        return;
    core_value *v = core_memstore_get(&cw->memstore, r->id);
    if (r->state == CORE_REF_FREED && !v)
        v = core_value_new_error(RAYC_ERR_OBJECT_LOST, "an argument of this task was freed");
    for (size_t i = 0; i < t->spec->n_args; i++) {
        Ray__Rpc__TaskArg *a = t->spec->args[i];
        if (!a->object_ref || a->object_ref->object_id.len != RC_OBJECT_ID_SIZE ||
            memcmp(a->object_ref->object_id.data, r->id, RC_OBJECT_ID_SIZE))
            continue;
        if (v && v->error) {
            if (!t->arg_error) { /* failed once every argument is in (the task stays alive until then) */
                char message[1024];
                snprintf(message, sizeof(message), "an argument of task '%s' is an error: %s", t->spec->name,
                         v->error_message);
                t->arg_error = v->error;
                t->arg_error_message = rc_strdup(message);
            }
            break;
        }
        if (v && !v->in_plasma && v->size <= (size_t)rc_cfg.max_direct_call_object_size) {
            /* Small and here: send the bytes with the task, as Ray inlines small arguments. */
            a->data.data = rc_memdup(v->data, v->size);
            a->data.len = v->size;
            a->is_inlined = 1;
            rpc_msg_free(&a->object_ref->base);
            a->object_ref = NULL;
        }
    }
    core_value_unref(cw, v);
    core__arg_resolved(cw, t);
}

void core_submit_task(core_worker *cw, core_task *t)
{
    rc_map_put(&cw->tasks, t->task_id, RC_TASK_ID_SIZE, t);
    /* Normal tasks keep their lineage while their returns are in scope (actor calls
     * cannot be rerun: their actor's state moved on). */
    int lineage = rc_cfg.lineage_pinning_enabled && !t->actor && !t->on_finished &&
                  t->spec->type == RAY__RPC__TASK_TYPE__NORMAL_TASK;
    for (uint64_t i = 0; i < t->spec->num_returns; i++) {
        uint8_t id[RC_OBJECT_ID_SIZE];
        core__return_id(t, (uint32_t)i, id);
        core_ref *r = core_ref_create(cw, id);
        r->local_refs = 1; /* the reference rayc_submit handed out */
        r->task = t;
        if (lineage) {
            r->lineage = t;
            t->lineage_refs++;
        }
    }
    t->state = CORE_TASK_RESOLVING;
    core_events_task_status(cw, t->spec, RAY__RPC__TASK_STATUS__PENDING_ARGS_AVAIL, NULL);
    /* Hold every owned argument until the task is done; count those still pending. */
    t->arg_refs = rc_calloc(t->spec->n_args ? t->spec->n_args : 1, sizeof(*t->arg_refs));
    for (size_t i = 0; i < t->spec->n_args; i++) {
        Ray__Rpc__TaskArg *a = t->spec->args[i];
        if (!a->object_ref)
            continue;
        core_ref *r = core_ref_get(cw, a->object_ref->object_id.data);
        if (!r)
            continue; /* owned elsewhere: the worker asks its owner */
        core_ref_add_submitted(cw, r, 1);
        t->arg_refs[t->n_arg_refs++] = r;
    }
    t->args_submitted = 1;
    t->unresolved = t->n_arg_refs + 1; /* +1 until every argument has been looked at */
    /* A copy of the list: an argument ready now may finish the task (and free the list)
     * before the loop ends. */
    size_t n = t->n_arg_refs;
    core_ref **pending = rc_memdup(t->arg_refs, (n ? n : 1) * sizeof(*pending));
    for (size_t i = 0; i < n; i++)
        core_ref_when_ready(cw, pending[i], core__arg_ready, t);
    rc_free(pending);
    core__arg_resolved(cw, t);
}

/* ---- lineage reconstruction ----------------------------------------------------------- */

/* Runs kept task t again for its lost returns: they are pending again, its arguments are
 * held as submitted, and those lost too are made again first. */
static void core__resubmit(core_worker *cw, core_task *t)
{
    core__lineage_unlink(cw, t); /* counted again when it finishes */
    t->state = CORE_TASK_RESOLVING;
    t->cancelled = 0;
    t->force_cancel = 0;
    t->arg_error = RAYC_OK;
    rc_free(t->arg_error_message);
    t->arg_error_message = NULL;
    t->died_ms = 0;
    t->spec->attempt_number++;
    rc_map_put(&cw->tasks, t->task_id, RC_TASK_ID_SIZE, t);
    for (uint64_t i = 0; i < t->spec->num_returns; i++) {
        uint8_t id[RC_OBJECT_ID_SIZE];
        core__return_id(t, (uint32_t)i, id);
        core_ref *r = core_ref_get(cw, id);
        if (!r || r->lineage != t || !core_ref_lost(r))
            continue;
        core_memstore_remove(&cw->memstore, r->id);
        r->state = CORE_REF_PENDING;
        r->in_plasma = 0;
        r->n_locations = 0;
        r->task = t;
    }
    size_t n = t->n_arg_refs;
    core_ref **args = rc_memdup(t->arg_refs, (n ? n : 1) * sizeof(*args));
    for (size_t i = 0; i < n; i++)
        core_ref_add_submitted(cw, args[i], 1);
    t->args_submitted = 1;
    t->unresolved = n + 1;
    for (size_t i = 0; i < n; i++)
        if (core_ref_lost(args[i]))
            core_submit_recover(cw, args[i]);
    for (size_t i = 0; i < n; i++)
        core_ref_when_ready(cw, args[i], core__arg_ready, t);
    rc_free(args);
    core__arg_resolved(cw, t);
}

void core_submit_recover(core_worker *cw, core_ref *r)
{
    char hex[RC_ID_HEX_MAX], message[1024];
    rc_id_hex(r->id, RC_OBJECT_ID_SIZE, hex);
    core_task *t = r->lineage;
    if (!t) {
        /* Nothing can make it again: a put, an actor call's result, or a result whose task
         * was not kept (it came back inline, so no node's death could take it). */
        int put = !memcmp(r->id, cw->put_task_id, RC_TASK_ID_SIZE);
        if (r->lineage_evicted) {
            snprintf(message, sizeof(message),
                     "all copies of object %s were lost and it cannot be made again: the lineage of the task that made "
                     "it was released to keep this process's memory bounded (max_lineage_bytes=%lld)",
                     hex, (long long)rc_cfg.max_lineage_bytes);
            core_ref_fail(cw, r, RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED, message);
            return;
        }
        snprintf(message, sizeof(message),
                 "all copies of object %s were lost with the node(s) holding them, and it cannot be made again: %s",
                 hex, put ? "it was created by a put (only results of normal tasks are rebuilt from their lineage)"
                 : rc_cfg.lineage_pinning_enabled
                     ? "it was returned by an actor task or yielded by a generator (neither is rerun to rebuild a "
                       "lost result)"
                     : "lineage is not kept (lineage_pinning_enabled=0)");
        core_ref_fail(cw, r, RAYC_ERR_OBJECT_LOST, message);
        return;
    }
    if (t->state != CORE_TASK_DONE) { /* being made again already */
        if (r->state != CORE_REF_PENDING) {
            core_memstore_remove(&cw->memstore, r->id);
            r->state = CORE_REF_PENDING;
            r->in_plasma = 0;
            r->n_locations = 0;
            r->task = t;
        }
        return;
    }
    if (t->retries_left == 0) {
        snprintf(message, sizeof(message),
                 "all copies of object %s were lost and it cannot be made again: task '%s' that made it has used up "
                 "its retries (max_retries=%d)",
                 hex, t->spec->name, t->spec->max_retries);
        core_ref_fail(cw, r, RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS, message);
        return;
    }
    if (t->retries_left > 0)
        t->retries_left--;
    RC_INFO("core: every copy of object %s is lost; running task '%s' again to make it (%d retries left)", hex,
            t->spec->name, t->retries_left);
    core__resubmit(cw, t);
}

void core_submit_cancel_all(core_worker *cw, int force)
{
    /* Collected first: cancelling may finish tasks and take them out of the map. */
    size_t n = 0, cap = 16;
    uint8_t (*ids)[RC_OBJECT_ID_SIZE] = rc_malloc(cap * RC_OBJECT_ID_SIZE);
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->tasks, &it, NULL, NULL, &v)) {
        core_task *t = v;
        if (t->state == CORE_TASK_DONE)
            continue;
        if (n == cap)
            ids = rc_realloc(ids, (cap *= 2) * RC_OBJECT_ID_SIZE);
        core__return_id(t, 0, ids[n++]);
    }
    for (size_t i = 0; i < n; i++)
        core_submit_cancel(cw, ids[i], force, 1);
    rc_free(ids);
}

void core_submit_cancel(core_worker *cw, const uint8_t *object_id, int force, int recursive)
{
    core_ref *r = core_ref_get(cw, object_id);
    core_task *t = r ? r->task : NULL;
    if (!t || t->state == CORE_TASK_DONE)
        return;
    if (t->actor) {
        core_actor_cancel(cw, t, force);
        return;
    }
    t->cancelled = 1;
    t->force_cancel = force;
    if (t->state == CORE_TASK_QUEUED) {
        core_sched_key *key = t->key;
        core__queue_unlink(key, t);
        core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the task was cancelled before it ran");
        core__dispatch(cw, key);
        return;
    }
    if (t->state == CORE_TASK_RESOLVING) { /* failed as cancelled once its arguments settle */
        if (!t->arg_error) {
            t->arg_error = RAYC_ERR_CANCELLED;
            t->arg_error_message = rc_strdup("the task was cancelled before it ran");
        }
        return;
    }
    Ray__Rpc__CancelTaskRequest req = RAY__RPC__CANCEL_TASK_REQUEST__INIT;
    req.intended_task_id.data = t->task_id;
    req.intended_task_id.len = RC_TASK_ID_SIZE;
    req.force_kill = force;
    req.recursive = recursive != 0;
    req.caller_worker_id.data = cw->worker_id;
    req.caller_worker_id.len = RC_WORKER_ID_SIZE;
    rpc_client_call(t->lease->worker, &ray__rpc__core_worker_service__descriptor, "CancelTask", &req.base,
                    rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
}

/* ---- background ----------------------------------------------------------------------- */

/* ---- explaining leases that wait for a node that does not exist ------------------------ */

typedef struct core__explain {
    core_sched_key *key; /* keys live until the core stops */
} core__explain;

static void core__explained(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core__explain *e = arg;
    core_worker *cw = core__cw;
    core_sched_key *key = e->key;
    rc_free(e);
    if (!cw || cw->stopping) {
        rpc_msg_free(reply);
        return;
    }
    key->explaining = 0;
    const Rayc__Rpc__ExplainLeasesReply *r = (const void *)reply;
    for (size_t i = 0; st->code == GRPC_STATUS_OK && r && i < r->n_why && !key->why; i++) {
        if (!r->why[i] || !*r->why[i])
            continue;
        key->why = rc_strdup(r->why[i]);
        /* Once per shape, as Ray's driver warns about infeasible requests. */
        const core_task *first = core_task_first(&key->queue);
        const char *name = first && first->spec ? first->spec->name : "a task";
        fprintf(stderr,
                "rayc: warning: '%s' cannot be scheduled right now: %s. It stays pending until a node that can run "
                "it joins the cluster (see `rayc status`).\n",
                name, key->why);
    }
    rpc_msg_free(reply);
}

/* Asks the local raylet why the leases of keys that have waited a while still wait. */
static void core__explain_waiting(core_worker *cw)
{
    int64_t now = rc_mono_ms();
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->keys, &it, NULL, NULL, &v)) {
        core_sched_key *key = v;
        if (!key->queued) {
            rc_free(key->why); /* granted since: a later wait is explained afresh */
            key->why = NULL;
            key->why_is_spill = 0;
            continue;
        }
        if (key->why || key->explaining)
            continue;
        ProtobufCBinaryData ids[16];
        size_t n = 0;
        const rc_list *rn;
        RC_LIST_FOREACH(rn, &key->requests) {
            core_lease_request *req = rc_list_entry(rn, core_lease_request, link);
            if (n == 16)
                break;
            if (!req->cancelled && !req->raylet_address[0] && now - req->sent_ms >= rc_cfg.infeasible_warning_ms)
                ids[n++] = (ProtobufCBinaryData){RC_UNIQUE_ID_SIZE, req->lease_id};
        }
        if (!n)
            continue;
        Rayc__Rpc__ExplainLeasesRequest req = RAYC__RPC__EXPLAIN_LEASES_REQUEST__INIT;
        req.lease_ids = ids;
        req.n_lease_ids = n;
        core__explain *e = RC_NEW(core__explain);
        e->key = key;
        key->explaining = 1;
        if (rpc_client_call(cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "ExplainLeases", &req.base,
                            rc_cfg.gcs_rpc_timeout_ms, core__explained, e) < 0) {
            key->explaining = 0;
            rc_free(e);
        }
    }
}

const char *core_submit_pending_reason(core_worker *cw, const uint8_t *object_id)
{
    core_ref *r = core_ref_get(cw, object_id);
    return r && r->task && r->task->state == CORE_TASK_QUEUED && r->task->key ? r->task->key->why : NULL;
}

/* A report that did not arrive: the next tick sends every key's backlog again. */
static void core__backlog_reported(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)arg;
    rpc_msg_free(reply);
    core_worker *cw = core__cw;
    if (st->code == GRPC_STATUS_OK || !cw || cw->stopping)
        return;
    RC_DEBUG("core: ReportWorkerBacklog failed (%s); sending it again", st->message);
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->keys, &it, NULL, NULL, &v))
        ((core_sched_key *)v)->last_backlog_reported = -1;
}

/* Tells the local raylet the backlog of every key when any changed since it was last told
 * (by a report or a lease request). A report replaces all of this owner's backlog at the
 * raylet, so a key whose backlog dropped to zero is cleared by being left out. */
void core_submit_backlog_tick(core_worker *cw)
{
    if (!cw->raylet_tcp || cw->stopping)
        return;
    if (cw->raylet_local)
        core__explain_waiting(cw);
    /* Spillback holds that are over: one spillback may be followed again, then the next hold
     * is longer. */
    int64_t now = rc_mono_ms();
    rc_map_iter hit = RC_MAP_ITER_INIT;
    void *hv;
    while (rc_map_next(&cw->keys, &hit, NULL, NULL, &hv)) {
        core_sched_key *key = hv;
        if (key->raylet_retry_at_ms && now >= key->raylet_retry_at_ms && !key->spill_hold_until_ms) {
            key->raylet_retry_at_ms = 0; /* the failure count stays: the next pause is longer */
            core__dispatch(cw, key);
            continue;
        }
        if (!key->spill_hold_until_ms || now < key->spill_hold_until_ms)
            continue;
        key->spill_hold_until_ms = 0;
        if (key->spill_bounces > 0 && rc_cfg.lease_spillback_max_bounces > 0)
            key->spill_bounces = (int)rc_cfg.lease_spillback_max_bounces - 1;
        if (rc_list_empty(&key->queue)) {
            core__spill_settled(key);
            continue;
        }
        core__dispatch(cw, key);
    }
    size_t n = 0, cap = rc_map_size(&cw->keys);
    Ray__Rpc__WorkerBacklogReport **reports = rc_calloc(cap ? cap : 1, sizeof(*reports));
    Ray__Rpc__WorkerBacklogReport *items = rc_calloc(cap ? cap : 1, sizeof(*items));
    int changed = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->keys, &it, NULL, NULL, &v)) {
        core_sched_key *key = v;
        int64_t backlog = core__backlog_size(key);
        if (backlog != key->last_backlog_reported)
            changed = 1;
        key->last_backlog_reported = backlog;
        if (!backlog)
            continue;
        ray__rpc__worker_backlog_report__init(&items[n]);
        items[n].lease_spec = key->lease_template;
        items[n].backlog_size = backlog;
        reports[n] = &items[n];
        n++;
    }
    if (changed) {
        Ray__Rpc__ReportWorkerBacklogRequest req = RAY__RPC__REPORT_WORKER_BACKLOG_REQUEST__INIT;
        req.worker_id.data = cw->worker_id;
        req.worker_id.len = RC_WORKER_ID_SIZE;
        req.backlog_reports = reports;
        req.n_backlog_reports = n;
        if (rpc_client_call(cw->raylet_tcp, &ray__rpc__node_manager_service__descriptor, "ReportWorkerBacklog",
                            &req.base, rc_cfg.gcs_rpc_timeout_ms, core__backlog_reported, NULL) < 0) {
            rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot call the raylet"};
            core__backlog_reported(&st, NULL, NULL);
        }
    }
    rc_free(items);
    rc_free(reports);
}

/* Returns leases that stayed idle past their linger. */
void core_submit_linger_tick(core_worker *cw)
{
    if (cw->stopping)
        return;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->keys, &it, NULL, NULL, &v))
        if (rc_list_empty(&((core_sched_key *)v)->queue) && !rc_list_empty(&((core_sched_key *)v)->leases))
            core__dispatch(cw, v);
}

static void core_submit_linger_tick_cb(uv_timer_t *t)
{
    core_submit_linger_tick(t->data);
}

void core_submit_node_died(core_worker *cw, const uint8_t *node_id)
{
    /* Leases on the dead node: nothing new goes there, and the pushes still out to its
     * workers end now and are retried (as any task whose worker died): a node declared dead
     * may be frozen or cut off rather than gone, and then its connections never fail by
     * themselves. Lease requests out to its raylet end the same way. */
    char hex[RC_ID_HEX_MAX], why[160];
    snprintf(why, sizeof(why), "node %.16s was declared dead", rc_id_hex(node_id, RC_NODE_ID_SIZE, hex));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->keys, &it, NULL, NULL, &v)) {
        core_sched_key *key = v;
        const rc_list *n;
        RC_LIST_FOREACH(n, &key->leases) {
            core_lease *l = rc_list_entry(n, core_lease, link);
            if (l->worker_address->node_id.len != RC_NODE_ID_SIZE ||
                memcmp(l->worker_address->node_id.data, node_id, RC_NODE_ID_SIZE))
                continue;
            l->worker_failed = 1;
            if (l->in_flight && l->worker)
                rpc_client_cancel_calls(l->worker, GRPC_STATUS_UNAVAILABLE, why);
        }
    }
    core_node *n = rc_map_get(&cw->nodes, node_id, RC_NODE_ID_SIZE);
    rpc_client *raylet = n ? rc_map_get_str(&cw->raylet_clients, n->address) : NULL;
    if (raylet && raylet != cw->raylet_tcp)
        rpc_client_cancel_calls(raylet, GRPC_STATUS_UNAVAILABLE, why);
}

static void core__free_key(void *p)
{
    core_sched_key *key = p;
    rpc_msg_free(&key->lease_template->base);
    rc_free(key->name);
    rc_free(key->why);
    rc_free(key);
}

void core_submit_shutdown(core_worker *cw)
{
    /* Drop what never ran and give idle leases back; tasks still running end when their
     * workers' clients are destroyed (core__pushed sees `stopping`). */
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->keys, &it, NULL, NULL, &v)) {
        core_sched_key *key = v;
        core_task *t;
        while ((t = core_task_first(&key->queue))) {
            core__queue_unlink(key, t);
            core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the process shut down before the task ran");
        }
        rc_list *n, *tmp;
        RC_LIST_FOREACH_SAFE(n, tmp, &key->leases) {
            core_lease *l = rc_list_entry(n, core_lease, link);
            if (l->in_flight == 0)
                core__lease_return(cw, l, 0, NULL);
        }
    }
    cw->stopping = 1;
}

void core_submit_free_all(core_worker *cw)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->tasks, &it, NULL, NULL, &v)) {
        core_task *t = v;
        rc_map_iter_remove(&cw->tasks, &it);
        if (t->in_lineage)
            continue; /* a rerun: freed with the lineage below */
        core__release_args(cw, t);
        core_task_free(t);
    }
    /* Kept lineage: the references it counts are freed next (core_refs_free_all, which
     * does not follow their lineage). */
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&cw->lineage, &it, NULL, NULL, &v)) {
        core_task *t = v;
        rc_map_iter_remove(&cw->lineage, &it);
        core_task_free(t);
    }
    rc_list_init(&cw->lineage_order);
    cw->lineage_bytes = 0;
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&cw->keys, &it, NULL, NULL, &v)) {
        core_sched_key *key = v;
        rc_list *n, *tmp;
        RC_LIST_FOREACH_SAFE(n, tmp, &key->leases) {
            rc_list_remove(n);
            core__lease_free(rc_list_entry(n, core_lease, link));
        }
        RC_LIST_FOREACH_SAFE(n, tmp, &key->requests) {
            rc_list_remove(n);
            rc_free(rc_list_entry(n, core_lease_request, link));
        }
    }
    rc_map_destroy(&cw->keys, core__free_key);
    rc_map_init(&cw->keys);
}
