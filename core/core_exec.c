/*
 * Running tasks in a worker (rayc-worker): the function registry, loading libraries from
 * the code search path, and the PushTask path.
 *
 * PushTask arrives on the loop thread, which resolves the task's arguments (inline bytes,
 * or objects fetched from their owners and the node's store) and hands the task to the task
 * thread (the process's main thread). The task thread runs the function, stores large
 * results in the node's store (create, copy, seal: before the reply, so the owner can fetch
 * them at once) and hands the reply back to the loop thread. One task runs at a time;
 * tasks from one owner run in the order they were pushed.
 *
 * Registry: any thread (a mutex). PushTask/CancelTask/Exit handlers: loop thread. Task
 * execution: the task thread.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "sched_proto.h"

/* ---- registry ------------------------------------------------------------------------- */

static pthread_mutex_t core__fn_mu = PTHREAD_MUTEX_INITIALIZER;
static rc_map core__fns = RC_MAP_INIT;

int rayc_register_function(const char *name, rayc_remote_fn fn)
{
    if (!name || !*name || !fn)
        return RC_EINVAL;
    pthread_mutex_lock(&core__fn_mu);
    int rc = 0;
    rayc_remote_fn old = (rayc_remote_fn)rc_map_get_str(&core__fns, name);
    if (old && old != fn)
        rc = RC_EEXIST;
    else if (!old)
        rc_map_put_str(&core__fns, name, (void *)fn);
    pthread_mutex_unlock(&core__fn_mu);
    return rc;
}

rayc_remote_fn core_find_function(const char *name)
{
    pthread_mutex_lock(&core__fn_mu);
    rayc_remote_fn fn = (rayc_remote_fn)rc_map_get_str(&core__fns, name);
    pthread_mutex_unlock(&core__fn_mu);
    return fn;
}

static rc_map core__classes = RC_MAP_INIT;

int rayc_register_actor_class(const rayc_actor_class *cls)
{
    if (!cls || !cls->name || !*cls->name || !cls->create)
        return RC_EINVAL;
    pthread_mutex_lock(&core__fn_mu);
    int rc = 0;
    const rayc_actor_class *old = rc_map_get_str(&core__classes, cls->name);
    if (old && old != cls)
        rc = RC_EEXIST;
    else if (!old)
        rc_map_put_str(&core__classes, cls->name, (void *)cls);
    pthread_mutex_unlock(&core__fn_mu);
    return rc;
}

static const rayc_actor_class *core__find_class(const char *name)
{
    pthread_mutex_lock(&core__fn_mu);
    const rayc_actor_class *cls = rc_map_get_str(&core__classes, name);
    pthread_mutex_unlock(&core__fn_mu);
    return cls;
}

/* Language bindings' executors (rayc_set_executor), by rayc_language. */
static const rayc_executor *core__executors[2];

int rayc_set_executor(rayc_language language, const rayc_executor *ex)
{
    if ((unsigned)language >= sizeof(core__executors) / sizeof(core__executors[0]) || !ex || !ex->run_task ||
        !ex->create_actor || !ex->call_method)
        return RC_EINVAL;
    pthread_mutex_lock(&core__fn_mu);
    core__executors[language] = ex;
    pthread_mutex_unlock(&core__fn_mu);
    return 0;
}

static const rayc_executor *core__executor(rayc_language language)
{
    pthread_mutex_lock(&core__fn_mu);
    const rayc_executor *ex = core__executors[language];
    pthread_mutex_unlock(&core__fn_mu);
    return ex;
}

static int core__load_one(const char *path, char *err, size_t errlen)
{
    if (!dlopen(path, RTLD_NOW | RTLD_GLOBAL)) {
        snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
        return RC_EINVAL;
    }
    return 0;
}

int core_load_libraries(const char *search_path, char *err, size_t errlen)
{
    if (!search_path || !*search_path)
        return 0;
    char *copy = rc_strdup(search_path);
    int rc = 0;
    for (char *save = NULL, *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save)) {
        struct stat st;
        if (stat(p, &st) != 0) {
            snprintf(err, errlen, "code search path entry %s does not exist", p);
            rc = RC_ENOENT;
        } else if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(p);
            struct dirent *e;
            while (d && (e = readdir(d)) && rc == 0) {
                size_t n = strlen(e->d_name);
                if (n < 4 || strcmp(e->d_name + n - 3, ".so"))
                    continue;
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", p, e->d_name);
                rc = core__load_one(path, err, errlen);
            }
            if (d)
                closedir(d);
        } else {
            rc = core__load_one(p, err, errlen);
        }
    }
    rc_free(copy);
    return rc;
}

/* ---- the task context ----------------------------------------------------------------- */

typedef struct core__return {
    void *data;
    size_t size;
    int set;
    int stored; /* already in the node's store (rayc_return_iov of a large result) */
} core__return;

static void core__return_id(const Ray__Rpc__TaskSpec *spec, int index, uint8_t *id);

struct rayc_task_ctx {
    const Ray__Rpc__TaskSpec *spec;
    core__return *returns;
    size_t n_returns;
    char *failure; /* rayc_task_fail's message */
    int gpu_ids[64];
    int n_gpu_ids;
    double num_cpus, num_gpus;
    /* what completing it needs (core__complete) */
    core_worker *cw;
    struct core_exec_item *item;
    int creating;
    int deferred; /* rayc_task_defer: answered by rayc_task_finish, from any thread */
    /* A deferred task completes when both its call has returned and rayc_task_finish came,
     * in either order: the last of the two completes it. */
    _Atomic int pending;
    int finish_rc;
    char *raised; /* rayc_task_mark_failed's summary ("" without one); NULL: not marked */
};

static __thread rayc_task_ctx *core__current;

/* CPU and GPU amounts and GPU instances of a lease, from the resource mapping the raylet
 * granted: plain CPU/GPU, or a placement-group bundle's (CPU_group_<i>_<pg>, ...). */
static int core__is(const char *name, const char *base)
{
    return sched_bundle_name_of(name, base);
}

static void core__resources_of(const Ray__Rpc__PushTaskRequest *req, rayc_task_ctx *ctx)
{
    for (size_t i = 0; i < req->n_resource_mapping; i++) {
        const Ray__Rpc__ResourceMapEntry *e = req->resource_mapping[i];
        double total = 0;
        int gpu = core__is(e->name, "GPU");
        for (size_t k = 0; k < e->n_resource_ids; k++) {
            total += e->resource_ids[k]->quantity;
            if (!gpu)
                continue;
            int index = (int)e->resource_ids[k]->index, seen = 0;
            for (int g = 0; g < ctx->n_gpu_ids; g++)
                seen |= ctx->gpu_ids[g] == index;
            if (!seen && ctx->n_gpu_ids < 64)
                ctx->gpu_ids[ctx->n_gpu_ids++] = index;
        }
        if (core__is(e->name, "CPU"))
            ctx->num_cpus = total;
        else if (gpu)
            ctx->num_gpus = total;
    }
}

int rayc_return(rayc_task_ctx *ctx, int index, const void *data, size_t size)
{
    if (!ctx || index < 0 || (size_t)index >= ctx->n_returns)
        return RC_EINVAL;
    core__return *r = &ctx->returns[index];
    rc_free(r->data);
    r->data = rc_memdup(data, size);
    r->size = size;
    r->set = 1;
    return 0;
}

int rayc_task_num_returns(const rayc_task_ctx *ctx)
{
    return ctx ? (int)ctx->n_returns : 0;
}

int rayc_return_iov(rayc_task_ctx *ctx, int index, const rayc_iov *parts, size_t n)
{
    if (!ctx || index < 0 || (size_t)index >= ctx->n_returns || (n && !parts))
        return RC_EINVAL;
    size_t size;
    if (core_iov_total(parts, n, &size) < 0)
        return RC_ETOOBIG;
    core__return *r = &ctx->returns[index];
    rc_free(r->data);
    r->data = NULL;
    r->stored = 0;
    if (size > (size_t)rc_cfg.max_direct_call_object_size && ctx->cw && ctx->cw->store_base) {
        /* Large: copied once, straight into the node's store, as rayc_put_iov does. */
        uint8_t id[RC_OBJECT_ID_SIZE];
        core__return_id(ctx->spec, index, id);
        char err[512];
        if (core_store_put(ctx->cw, id, ctx->spec->caller_address, parts, n, size, err, sizeof(err)) == 0) {
            r->size = size;
            r->set = 1;
            r->stored = 1;
            return 0;
        }
        RC_WARN("core: result %d of task '%s' goes through memory: %s", index, ctx->spec->name, err);
    }
    r->data = rc_malloc(size ? size : 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].size)
            memcpy((char *)r->data + at, parts[i].data, parts[i].size);
        at += parts[i].size;
    }
    r->size = size;
    r->set = 1;
    return 0;
}

int rayc_task_fail(rayc_task_ctx *ctx, const char *fmt, ...)
{
    if (!ctx)
        return -1;
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    rc_free(ctx->failure);
    ctx->failure = rc_strdup(message);
    return -1;
}

void rayc_task_mark_failed(rayc_task_ctx *ctx, const char *message)
{
    if (!ctx)
        return;
    rc_free(ctx->raised);
    ctx->raised = rc_strdup(message ? message : "");
}

int rayc_get_gpu_ids(int *ids, int max)
{
    rayc_task_ctx *ctx = core__current;
    if (!ctx)
        return 0;
    for (int i = 0; i < ctx->n_gpu_ids && i < max; i++)
        ids[i] = ctx->gpu_ids[i];
    return ctx->n_gpu_ids;
}

/* The group a scheduling strategy places in, if any. */
static int core__strategy_pg(const Ray__Rpc__SchedulingStrategy *ss, uint8_t *pg_id)
{
    if (!ss || ss->scheduling_strategy_case !=
                   RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY)
        return 0;
    const ProtobufCBinaryData *id = &ss->placement_group_scheduling_strategy->placement_group_id;
    if (id->len != RAYC_PG_ID_SIZE)
        return 0;
    memcpy(pg_id, id->data, RAYC_PG_ID_SIZE);
    return 1;
}

int core_exec_fill_context(rayc_runtime_context *out)
{
    rayc_task_ctx *ctx = core__current;
    core_worker *cw = core__cw;
    if (cw && cw->actor_created)
        out->in_placement_group = core__strategy_pg(cw->actor_strategy, out->placement_group_id);
    if (!ctx)
        return 0;
    if (ctx->spec->type == RAY__RPC__TASK_TYPE__NORMAL_TASK)
        out->in_placement_group = core__strategy_pg(ctx->spec->scheduling_strategy, out->placement_group_id);
    out->in_task = 1;
    if (ctx->spec->task_id.len == RC_TASK_ID_SIZE)
        memcpy(out->task_id, ctx->spec->task_id.data, RC_TASK_ID_SIZE);
    if (ctx->spec->job_id.len == RC_JOB_ID_SIZE)
        memcpy(out->job_id, ctx->spec->job_id.data, RC_JOB_ID_SIZE);
    out->task_name = ctx->spec->name;
    out->num_cpus = ctx->num_cpus;
    out->num_gpus = ctx->num_gpus;
    return 1;
}

int core_exec_in_task(void)
{
    return core__current != NULL;
}

int core_exec_captured_pg(uint8_t *pg_id)
{
    const rayc_task_ctx *ctx = core__current;
    if (!ctx)
        return 0;
    const Ray__Rpc__SchedulingStrategy *ss = ctx->spec->scheduling_strategy;
    if (ctx->spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK && core__cw)
        ss = core__cw->actor_strategy; /* a method: the actor's own placement */
    if (!ss || ss->scheduling_strategy_case !=
                   RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY)
        return 0;
    const Ray__Rpc__PlacementGroupSchedulingStrategy *pgs = ss->placement_group_scheduling_strategy;
    if (!pgs->placement_group_capture_child_tasks || pgs->placement_group_id.len != RAYC_PG_ID_SIZE)
        return 0;
    memcpy(pg_id, pgs->placement_group_id.data, RAYC_PG_ID_SIZE);
    return 1;
}

/* ---- the hand-over -------------------------------------------------------------------- */

typedef struct core_exec_item {
    rpc_call *call;
    const Ray__Rpc__PushTaskRequest *req; /* valid until the call is answered */
    core_get *args;                        /* resolved argument values (by-ref ones) */
    core_value **values;                   /* one per argument */
    int cancelled;
    int terminate; /* no call: the actor's graceful end (KillActor without force) */
    rc_list link; /* on cw->exec_queue while queued */
    struct core_exec_item *next; /* its caller's early calls, or cancelled ones (singly linked) */
} core_exec_item;

typedef struct core__reply_op {
    core_op op;
    rpc_call *call;
    uint8_t *packed; /* a packed PushTaskReply */
    size_t len;
} core__reply_op;

static void core__run_reply(core_worker *cw, core_op *op)
{
    core__reply_op *r = (core__reply_op *)op;
    (void)cw;
    rpc_reply_packed(r->call, r->packed, r->len);
    rc_free(r->packed);
    rc_free(r);
}

static void core__exec_item_free(core_worker *cw, core_exec_item *item)
{
    for (size_t i = 0; item->values && i < item->req->task_spec->n_args; i++)
        core_value_unref(cw, item->values[i]);
    rc_free(item->values);
    if (item->args)
        core_get_unref(cw, item->args);
    rc_free(item);
}

/* Answers item's call (on the loop thread) with reply and frees the item. Any thread. */
static void core__finish_item(core_worker *cw, core_exec_item *item, Ray__Rpc__PushTaskReply *reply)
{
    core__reply_op *op = RC_NEW(core__reply_op);
    op->op.run = core__run_reply;
    op->call = item->call;
    op->packed = rpc_msg_pack(&reply->base, &op->len);
    core__exec_item_free(cw, item);
    core_post(cw, &op->op);
}

/* A PushTaskReply whose every result is error e with message. */
static void core__reply_error(core_worker *cw, core_exec_item *item, Ray__Rpc__ErrorType type, const char *message,
                              int application)
{
    const Ray__Rpc__TaskSpec *spec = item->req->task_spec;
    Ray__Rpc__RayErrorInfo info = RAY__RPC__RAY_ERROR_INFO__INIT;
    info.error_message = (char *)message;
    info.error_type = type;
    size_t len;
    uint8_t *packed = rpc_msg_pack(&info.base, &len);
    char meta[16];
    snprintf(meta, sizeof(meta), "%d", (int)type);
    size_t n = spec->num_returns;
    Ray__Rpc__ReturnObject *objs = rc_calloc(n ? n : 1, sizeof(*objs));
    Ray__Rpc__ReturnObject **ptrs = rc_calloc(n ? n : 1, sizeof(*ptrs));
    uint8_t (*ids)[RC_OBJECT_ID_SIZE] = rc_calloc(n ? n : 1, RC_OBJECT_ID_SIZE);
    for (size_t i = 0; i < n; i++) {
        ray__rpc__return_object__init(&objs[i]);
        core__return_id(spec, (int)i, ids[i]);
        objs[i].object_id.data = ids[i];
        objs[i].object_id.len = RC_OBJECT_ID_SIZE;
        objs[i].data.data = packed;
        objs[i].data.len = len;
        objs[i].metadata.data = (uint8_t *)meta;
        objs[i].metadata.len = strlen(meta);
        ptrs[i] = &objs[i];
    }
    Ray__Rpc__PushTaskReply reply = RAY__RPC__PUSH_TASK_REPLY__INIT;
    reply.return_objects = ptrs;
    reply.n_return_objects = n;
    reply.is_application_error = application;
    reply.task_execution_error = (char *)message;
    core__finish_item(cw, item, &reply);
    rc_free(ids);
    rc_free(ptrs);
    rc_free(objs);
    rc_free(packed);
}

/* Hands item to the task thread. */
static void core__enqueue_exec(core_worker *cw, core_exec_item *item)
{
    pthread_mutex_lock(&cw->exec_mu);
    rc_list_insert_tail(&cw->exec_queue, &item->link);
    /* Task threads sleep only on an empty queue; with several (max_concurrency), each item
     * may need to wake another. */
    pthread_cond_signal(&cw->exec_cv);
    pthread_mutex_unlock(&cw->exec_mu);
}

/* ---- actors: who this worker is, and calls in each caller's order ---------------------- */

/* The calls of one caller, by sequence number: the next one expected and those that came
 * early (sorted). Loop thread. */
typedef struct core__caller {
    uint64_t next;
    core_exec_item *early; /* sorted by sequence number */
} core__caller;

static uint64_t core__seq(const core_exec_item *item)
{
    const Ray__Rpc__TaskSpec *spec = item->req->task_spec;
    return spec->actor_task_spec ? spec->actor_task_spec->sequence_number : 0;
}

/* Hands an actor call to the task threads in its caller's order (Ray's per-caller ordering):
 * call n runs once n-1 has been handed on, or once the caller says every call up to some
 * m >= n-1 is settled (client_processed_up_to: numbers it used for calls that never
 * arrived, e.g. cancelled ones). With max_concurrency > 1 order is not promised, as in Ray:
 * calls go as they come. */
static void core__actor_order(core_worker *cw, core_exec_item *item)
{
    const Ray__Rpc__TaskSpec *spec = item->req->task_spec;
    if (cw->actor_max_concurrency > 1 || spec->caller_id.len == 0) {
        core__enqueue_exec(cw, item);
        return;
    }
    uint64_t floor = item->req->client_processed_up_to >= 0 ? (uint64_t)item->req->client_processed_up_to + 1 : 0;
    core__caller *c = rc_map_get(&cw->actor_callers, spec->caller_id.data, spec->caller_id.len);
    if (!c) {
        c = RC_NEW(core__caller);
        c->next = floor;
        rc_map_put(&cw->actor_callers, spec->caller_id.data, spec->caller_id.len, c);
    }
    if (floor > c->next)
        c->next = floor;
    uint64_t seq = core__seq(item);
    if (seq > c->next) { /* early: wait for the ones before it */
        core_exec_item **p = &c->early;
        while (*p && core__seq(*p) < seq)
            p = &(*p)->next;
        item->next = *p;
        *p = item;
    } else {
        core__enqueue_exec(cw, item);
        if (seq == c->next)
            c->next++;
    }
    while (c->early && core__seq(c->early) <= c->next) {
        core_exec_item *next = c->early;
        c->early = next->next;
        next->next = NULL;
        if (core__seq(next) == c->next)
            c->next++;
        core__enqueue_exec(cw, next);
    }
}

/* Where a task whose arguments are all here goes next. */
static void core__dispatch_item(core_worker *cw, core_exec_item *item)
{
    if (item->req->task_spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK)
        core__actor_order(cw, item);
    else
        core__enqueue_exec(cw, item);
}

/* Answers item with the error of its first erroneous argument; 1 if there was one. */
static int core__reply_arg_error(core_worker *cw, core_exec_item *item)
{
    const Ray__Rpc__TaskSpec *spec = item->req->task_spec;
    for (size_t i = 0; i < spec->n_args; i++) {
        core_value *v = item->values[i];
        if (v && v->error) {
            char message[1024];
            snprintf(message, sizeof(message), "argument %zu of task '%s' is an error: %s", i, spec->name,
                     v->error_message);
            core__reply_error(cw, item, core_error_to_type(v->error), message, 1);
            return 1;
        }
    }
    return 0;
}

static void core__args_resolved(core_worker *cw, core_get *g, void *arg)
{
    core_exec_item *item = arg;
    const Ray__Rpc__TaskSpec *spec = item->req->task_spec;
    size_t k = 0;
    for (size_t i = 0; i < spec->n_args; i++) {
        const Ray__Rpc__TaskArg *a = spec->args[i];
        if (a->object_ref && !a->is_inlined) {
            item->values[i] = g->items[k].value;
            g->items[k++].value = NULL;
        }
    }
    /* Actor calls fail in their turn (their number must be used); tasks fail now. */
    if (spec->type != RAY__RPC__TASK_TYPE__ACTOR_TASK && core__reply_arg_error(cw, item))
        return;
    core__dispatch_item(cw, item);
}

static void handle_push_task(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__PushTaskRequest *req = (const void *)request;
    const Ray__Rpc__TaskSpec *spec = req->task_spec;
    const Ray__Rpc__FunctionDescriptor *fd = spec ? spec->function_descriptor : NULL;
    int named = fd && ((fd->function_descriptor_case == RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR &&
                        fd->cpp_function_descriptor->function_name) ||
                       (fd->function_descriptor_case ==
                            RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_PYTHON_FUNCTION_DESCRIPTOR &&
                        fd->python_function_descriptor->function_name));
    if (!spec || spec->task_id.len != RC_TASK_ID_SIZE || !named || spec->num_returns > 1024) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "PushTask needs a task_spec with a 24-byte task_id, a named C or Python function descriptor "
                         "and at most 1024 returns");
        return;
    }
    if (req->intended_worker_id.len && (req->intended_worker_id.len != RC_WORKER_ID_SIZE ||
                                        memcmp(req->intended_worker_id.data, cw->worker_id, RC_WORKER_ID_SIZE))) {
        rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION, "this task was meant for another worker");
        return;
    }
    if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK) {
        if (!spec->actor_creation_task_spec || spec->actor_creation_task_spec->actor_id.len != RC_ACTOR_ID_SIZE) {
            rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "an actor creation task needs a 16-byte actor_id");
            return;
        }
        if (cw->actor_created) {
            rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION, "this worker already hosts an actor");
            return;
        }
    } else if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK) {
        if (!spec->actor_task_spec || spec->actor_task_spec->actor_id.len != RC_ACTOR_ID_SIZE ||
            !cw->actor_created || memcmp(spec->actor_task_spec->actor_id.data, cw->actor_id, RC_ACTOR_ID_SIZE)) {
            rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION, "this worker does not host that actor");
            return;
        }
    } else if (cw->actor_created) {
        rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION, "this worker is dedicated to an actor");
        return;
    }
    core_exec_item *item = RC_NEW(core_exec_item);
    item->call = call;
    item->req = req;
    item->values = rc_calloc(spec->n_args ? spec->n_args : 1, sizeof(*item->values));
    size_t by_ref = 0;
    for (size_t i = 0; i < spec->n_args; i++) {
        const Ray__Rpc__TaskArg *a = spec->args[i];
        if (a->object_ref && !a->is_inlined) {
            if (a->object_ref->object_id.len != RC_OBJECT_ID_SIZE || !a->object_ref->owner_address) {
                core__exec_item_free(cw, item);
                rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "argument %zu: malformed object reference", i);
                return;
            }
            by_ref++;
        } else {
            item->values[i] = core_value_from_inline(a->data.data, a->data.len, a->metadata.data, a->metadata.len);
        }
    }
    if (!by_ref) { /* every argument came inline: straight on */
        core__dispatch_item(cw, item);
        return;
    }
    core_get *g = core_get_new(by_ref);
    size_t k = 0;
    for (size_t i = 0; i < spec->n_args; i++) {
        const Ray__Rpc__TaskArg *a = spec->args[i];
        if (!(a->object_ref && !a->is_inlined))
            continue;
        memcpy(g->items[k].id, a->object_ref->object_id.data, RC_OBJECT_ID_SIZE);
        g->items[k++].owner = (Ray__Rpc__Address *)rpc_msg_dup(&a->object_ref->owner_address->base);
    }
    g->done = core__args_resolved;
    g->done_arg = item;
    item->args = g;
    atomic_fetch_add(&g->refs, 1); /* the item's reference; the start takes the op's */
    core_get_start(cw, g);
}

static void handle_cancel_task(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__CancelTaskRequest *req = (const void *)request;
    Ray__Rpc__CancelTaskReply reply = RAY__RPC__CANCEL_TASK_REPLY__INIT;
    int running = 0, queued = 0;
    core_exec_item *unlinked = NULL;
    pthread_mutex_lock(&cw->exec_mu);
    rc_list *n, *tmp;
    RC_LIST_FOREACH_SAFE(n, tmp, &cw->exec_queue) {
        core_exec_item *it = rc_list_entry(n, core_exec_item, link);
        const ProtobufCBinaryData *id = it->terminate ? NULL : &it->req->task_spec->task_id;
        if (!id || req->intended_task_id.len != id->len || memcmp(req->intended_task_id.data, id->data, id->len))
            continue;
        /* Still queued behind other calls: it leaves the queue and is answered now, not
         * once the task thread gets to it. */
        queued = 1;
        rc_list_remove(n);
        it->next = unlinked;
        unlinked = it;
    }
    if (req->intended_task_id.len == RC_TASK_ID_SIZE &&
        !memcmp(req->intended_task_id.data, cw->running_task_id, RC_TASK_ID_SIZE))
        running = 1;
    const rayc_executor *interrupt = running && !req->force_kill && !cw->actor_created ? cw->running_executor : NULL;
    pthread_mutex_unlock(&cw->exec_mu);
    if (interrupt && interrupt->interrupt) {
        interrupt->interrupt();
        reply.attempt_succeeded = 1;
    }
    reply.requested_task_running = running;
    reply.attempt_succeeded |= queued || (running && req->force_kill);
    rpc_reply(call, &reply.base);
    if (running && req->recursive && !cw->actor_created)
        core_submit_cancel_all(cw, req->force_kill); /* what the cancelled task submitted */
    while (unlinked) {
        core_exec_item *it = unlinked;
        unlinked = it->next;
        Ray__Rpc__PushTaskReply cancelled = RAY__RPC__PUSH_TASK_REPLY__INIT;
        cancelled.was_cancelled_before_running = 1;
        core__finish_item(cw, it, &cancelled);
    }
    if (running && req->force_kill) {
        /* C code cannot be interrupted safely: as Ray does with force, the worker goes. */
        RC_WARN("core: force-cancelled the running task; exiting");
        fflush(NULL);
        _exit(1);
    }
}

static void handle_kill_actor(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__KillActorRequest *req = (const void *)request;
    Ray__Rpc__KillActorReply reply = RAY__RPC__KILL_ACTOR_REPLY__INIT;
    if (req->intended_actor_id.len != RC_ACTOR_ID_SIZE || !cw->actor_created ||
        memcmp(req->intended_actor_id.data, cw->actor_id, RC_ACTOR_ID_SIZE)) {
        rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION, "this worker does not host that actor");
        return;
    }
    rpc_reply(call, &reply.base);
    if (req->force_kill) {
        /* As Ray does: the worker goes now. Its raylet reaps it and tells the GCS, which
         * restarts the actor or not. */
        RC_INFO("core: actor killed; exiting");
        fflush(NULL);
        _exit(1);
    }
    /* Gracefully: after the calls already queued, the destructor runs and the worker exits. */
    core_exec_item *item = RC_NEW(core_exec_item);
    item->terminate = 1;
    core__enqueue_exec(cw, item);
}

/* The actor's end on a task thread: no other call runs any more; once those running are
 * done, the destructor runs and the process exits. */
static void core__terminate(core_worker *cw, core_exec_item *item)
{
    rc_free(item);
    pthread_mutex_lock(&cw->exec_mu);
    cw->exec_stop = 1;
    pthread_cond_broadcast(&cw->exec_cv);
    while (cw->exec_busy > 1)
        pthread_cond_wait(&cw->exec_cv, &cw->exec_mu);
    pthread_mutex_unlock(&cw->exec_mu);
    RC_INFO("core: actor going out of scope; running its destructor and exiting");
    if (cw->actor_class && cw->actor_class->destroy && cw->actor_self)
        cw->actor_class->destroy(cw->actor_self);
    else if (cw->actor_executor && cw->actor_executor->destroy_actor && cw->actor_self)
        cw->actor_executor->destroy_actor(cw->actor_self);
    fflush(NULL);
    _exit(0);
}

static void handle_exit(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    const Ray__Rpc__ExitRequest *req = (const void *)request;
    Ray__Rpc__ExitReply reply = RAY__RPC__EXIT_REPLY__INIT;
    reply.success = 1;
    rpc_reply(call, &reply.base);
    (void)req;
    (void)arg;
    RC_INFO("core: asked to exit");
    fflush(NULL);
    _exit(0);
}

const rpc_method_handler core_exec_handlers[] = {
    {"PushTask", handle_push_task},
    {"CancelTask", handle_cancel_task},
    {"Exit", handle_exit},
    {"KillActor", handle_kill_actor},
    {NULL, NULL},
};

/* ---- the task thread ------------------------------------------------------------------ */

/* A blocking call from a user or task thread, through the loop. */
typedef struct core__thread_call {
    core_op op;
    rpc_client *(*cli_fn)(core_worker *cw);
    const char *address; /* cli_fn NULL: the worker or driver at this "ip:port" */
    const ProtobufCServiceDescriptor *svc;
    const char *method;
    const ProtobufCMessage *req;
    int64_t timeout_ms;
    ProtobufCMessage *reply;
    int code;
    char message[512];
    core_waiter w;
} core__thread_call;

static void core__thread_call_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core__thread_call *c = arg;
    c->code = st->code;
    c->reply = reply;
    snprintf(c->message, sizeof(c->message), "%s", st->message);
    core_waiter_signal(&c->w, 0);
}

static void core__run_thread_call(core_worker *cw, core_op *op)
{
    core__thread_call *c = (core__thread_call *)op;
    rpc_client *cli = cw->stopping ? NULL : c->cli_fn ? c->cli_fn(cw) : core_worker_client(cw, c->address);
    if (!cli || rpc_client_call(cli, c->svc, c->method, c->req, c->timeout_ms, core__thread_call_done, c) < 0) {
        rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot start the call"};
        core__thread_call_done(&st, NULL, c);
    }
}

int core_call_from_thread(core_worker *cw, rpc_client *(*cli_fn)(core_worker *cw), const ProtobufCServiceDescriptor *svc,
                          const char *method, const ProtobufCMessage *req, int64_t timeout_ms, ProtobufCMessage **reply,
                          char *err, size_t errlen)
{
    core__thread_call c;
    memset(&c, 0, sizeof(c));
    c.op.run = core__run_thread_call;
    c.cli_fn = cli_fn;
    c.svc = svc;
    c.method = method;
    c.req = req;
    c.timeout_ms = timeout_ms;
    core_waiter_init(&c.w);
    core_post(cw, &c.op);
    core_waiter_wait(&c.w);
    core_waiter_destroy(&c.w);
    *reply = c.reply;
    if (c.code != GRPC_STATUS_OK && err)
        snprintf(err, errlen, "%s", c.message);
    return c.code;
}

static rpc_client *core__raylet_local(core_worker *cw)
{
    return cw->raylet_local;
}

int core_call_raylet_from_thread(core_worker *cw, const char *method, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply, char *err, size_t errlen)
{
    int code = core_call_from_thread(cw, core__raylet_local, &rayc__rpc__local_raylet_service__descriptor, method,
                                     req, rc_cfg.gcs_rpc_timeout_ms, reply, err, errlen);
    if (code != GRPC_STATUS_OK)
        core_worker_raylet_call_failed(cw, code);
    return code;
}

static int core__store_result(core_worker *cw, const uint8_t *object_id, const Ray__Rpc__Address *owner,
                              const core__return *r, char *err, size_t errlen)
{
    rayc_iov part = {r->data, r->size};
    return core_store_put(cw, object_id, owner, &part, 1, r->size, err, errlen);
}

/* The object ID of a task's return index (Ray's ObjectID::FromIndex: index + 1). */
static void core__return_id(const Ray__Rpc__TaskSpec *spec, int index, uint8_t *id)
{
    memcpy(id, spec->task_id.data, RC_TASK_ID_SIZE);
    uint32_t i = (uint32_t)index + 1;
    memcpy(id + RC_TASK_ID_SIZE, &i, 4);
}

static void *core__extra_exec_thread(void *arg)
{
    core_exec_run_loop(arg);
    return NULL;
}

/* The constructor succeeded: this worker now hosts the actor (for its whole life). Runs on
 * the task thread before the creation task's reply is sent, so the first call always finds
 * the actor. */
static void core__actor_born(core_worker *cw, const Ray__Rpc__TaskSpec *spec, const rayc_actor_class *cls,
                             const rayc_executor *ex, void *self, const rayc_task_ctx *ctx)
{
    if (spec->scheduling_strategy)
        cw->actor_strategy = (Ray__Rpc__SchedulingStrategy *)rpc_msg_dup(&spec->scheduling_strategy->base);
    memcpy(cw->actor_gpu_ids, ctx->gpu_ids, sizeof(cw->actor_gpu_ids));
    cw->actor_n_gpu_ids = ctx->n_gpu_ids;
    cw->actor_num_cpus = ctx->num_cpus;
    cw->actor_num_gpus = ctx->num_gpus;
    const Ray__Rpc__ActorCreationTaskSpec *a = spec->actor_creation_task_spec;
    cw->actor_class = cls;
    cw->actor_executor = ex;
    cw->actor_self = self;
    cw->actor_max_concurrency = a->max_concurrency > 1 ? a->max_concurrency : 1;
    memcpy(cw->actor_id, a->actor_id.data, RC_ACTOR_ID_SIZE);
    cw->actor_created = 1;
    /* max_concurrency > 1: that many task threads take calls from the queue. */
    for (int i = 1; i < cw->actor_max_concurrency && i < 1024; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, core__extra_exec_thread, cw) == 0)
            pthread_detach(t);
    }
}

/* Answers a task the executor has run (now, or later for a deferred one): its results,
 * or its failure. Frees ctx. Any thread but the loop's. */
static void core__complete(rayc_task_ctx *ctx, int rc)
{
    core_worker *cw = ctx->cw;
    core_exec_item *item = ctx->item;
    const Ray__Rpc__TaskSpec *spec = ctx->spec;
    char node_hex[RC_ID_HEX_MAX];
    rc_id_hex(cw->node_id, RC_NODE_ID_SIZE, node_hex);
    int task_failed = rc != 0 || ctx->failure || ctx->raised;
    core_events_task_ran(cw, spec, task_failed,
                         ctx->creating ? RAY__RPC__ERROR_TYPE__ACTOR_CREATION_FAILED
                                       : RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION,
                         ctx->failure ? ctx->failure : ctx->raised && *ctx->raised ? ctx->raised : "the task raised an error");
    if (rc != 0 || ctx->failure) {
        char message[2300];
        snprintf(message, sizeof(message), "%s '%s' failed on node %.16s: %s", ctx->creating ? "the constructor of actor" : "task",
                 spec->name, node_hex, ctx->failure ? ctx->failure : "the function returned an error without a message");
        core__reply_error(cw, item,
                          ctx->creating ? RAY__RPC__ERROR_TYPE__ACTOR_CREATION_FAILED : RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION,
                          message, 1);
    } else {
        size_t n = ctx->n_returns;
        Ray__Rpc__ReturnObject *objs = rc_calloc(n ? n : 1, sizeof(*objs));
        Ray__Rpc__ReturnObject **ptrs = rc_calloc(n ? n : 1, sizeof(*ptrs));
        uint8_t (*ids)[RC_OBJECT_ID_SIZE] = rc_calloc(n ? n : 1, RC_OBJECT_ID_SIZE);
        char err[512] = "";
        int failed = 0;
        for (size_t i = 0; i < n && !failed; i++) {
            ray__rpc__return_object__init(&objs[i]);
            core__return_id(spec, (int)i, ids[i]);
            objs[i].object_id.data = ids[i];
            objs[i].object_id.len = RC_OBJECT_ID_SIZE;
            ptrs[i] = &objs[i];
            const core__return *r = &ctx->returns[i];
            objs[i].size = (int64_t)r->size;
            if (r->stored) {
                objs[i].in_plasma = 1;
            } else if (r->size > (size_t)rc_cfg.max_direct_call_object_size) {
                if (core__store_result(cw, ids[i], spec->caller_address, r, err, sizeof(err)) < 0)
                    failed = 1;
                objs[i].in_plasma = 1;
            } else {
                objs[i].data.data = r->data;
                objs[i].data.len = r->size;
            }
        }
        if (failed) {
            char message[1024];
            snprintf(message, sizeof(message), "task '%s' on node %.16s could not store its result: %s", spec->name,
                     node_hex, err);
            core__reply_error(cw, item, RAY__RPC__ERROR_TYPE__OUT_OF_MEMORY, message, 0);
        } else {
            Ray__Rpc__PushTaskReply reply = RAY__RPC__PUSH_TASK_REPLY__INIT;
            reply.return_objects = ptrs;
            reply.n_return_objects = n;
            core__finish_item(cw, item, &reply);
        }
        rc_free(ids);
        rc_free(ptrs);
        rc_free(objs);
    }
    for (size_t i = 0; i < ctx->n_returns; i++)
        rc_free(ctx->returns[i].data);
    rc_free(ctx->returns);
    rc_free(ctx->failure);
    rc_free(ctx->raised);
    rc_free(ctx);
}

static void core__execute(core_worker *cw, core_exec_item *item)
{
    const Ray__Rpc__TaskSpec *spec = item->req->task_spec;
    char node_hex[RC_ID_HEX_MAX];
    rc_id_hex(cw->node_id, RC_NODE_ID_SIZE, node_hex);
    if (item->cancelled) {
        Ray__Rpc__PushTaskReply reply = RAY__RPC__PUSH_TASK_REPLY__INIT;
        reply.was_cancelled_before_running = 1;
        core__finish_item(cw, item, &reply);
        return;
    }
    if (core__reply_arg_error(cw, item))
        return;
    const Ray__Rpc__FunctionDescriptor *fd = spec->function_descriptor;
    const char *name, *class_name;
    /* A language binding's task runs through its executor; C tasks by name. */
    const rayc_executor *ex = NULL;
    if (fd->function_descriptor_case == RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_PYTHON_FUNCTION_DESCRIPTOR) {
        name = fd->python_function_descriptor->function_name;
        class_name = fd->python_function_descriptor->class_name;
        if (spec->type != RAY__RPC__TASK_TYPE__ACTOR_TASK && !(ex = core__executor(RAYC_LANGUAGE_PYTHON))) {
            char message[512];
            snprintf(message, sizeof(message), "task '%s' is a Python task, but worker %d on node %.16s runs no Python",
                     spec->name, (int)getpid(), node_hex);
            core__reply_error(cw, item, RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION, message, 1);
            return;
        }
    } else {
        name = fd->cpp_function_descriptor->function_name;
        class_name = fd->cpp_function_descriptor->class_name;
    }
    if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK && cw->actor_executor)
        ex = cw->actor_executor; /* calls follow the actor, whoever made them */
    rayc_remote_fn fn = NULL;
    const rayc_actor_class *cls = NULL;
    rayc_actor_method_fn method = NULL;
    if (ex) {
        /* the executor reports unknown functions and methods itself */
    } else if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK) {
        cls = class_name ? core__find_class(class_name) : NULL;
        if (!cls) {
            char message[6000];
            snprintf(message, sizeof(message),
                     "actor '%s': no library on the code search path of node %.16s registers an actor class named "
                     "'%s' (code search path: %.4096s)",
                     spec->name, node_hex, class_name ? class_name : "", cw->code_search_path[0] ? cw->code_search_path : "empty");
            core__reply_error(cw, item, RAY__RPC__ERROR_TYPE__ACTOR_CREATION_FAILED, message, 1);
            return;
        }
    } else if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK) {
        for (const rayc_actor_method *m = cw->actor_class ? cw->actor_class->methods : NULL; m && m->name; m++)
            if (!strcmp(m->name, name))
                method = m->fn;
        if (!method) {
            char message[1024];
            snprintf(message, sizeof(message), "actor class '%s' has no method '%s'",
                     cw->actor_class ? cw->actor_class->name : "?", name);
            core__reply_error(cw, item, RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION, message, 1);
            return;
        }
    } else if (!(fn = core_find_function(name))) {
        char message[6000];
        snprintf(message, sizeof(message),
                 "task '%s': no library on the code search path of node %.16s registers a function named '%s' "
                 "(code search path: %.4096s)",
                 spec->name, node_hex, name, cw->code_search_path[0] ? cw->code_search_path : "empty");
        core__reply_error(cw, item, RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION, message, 1);
        return;
    }
    rayc_task_ctx *ctx = RC_NEW(rayc_task_ctx);
    ctx->spec = spec;
    ctx->cw = cw;
    ctx->item = item;
    ctx->n_returns = spec->num_returns;
    ctx->returns = rc_calloc(ctx->n_returns ? ctx->n_returns : 1, sizeof(*ctx->returns));
    if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK) {
        /* A method runs on what the actor holds (its creation lease). */
        memcpy(ctx->gpu_ids, cw->actor_gpu_ids, sizeof(ctx->gpu_ids));
        ctx->n_gpu_ids = cw->actor_n_gpu_ids;
        ctx->num_cpus = cw->actor_num_cpus;
        ctx->num_gpus = cw->actor_num_gpus;
    } else {
        core__resources_of(item->req, ctx);
    }
    size_t nargs = spec->n_args;
    rayc_object *args = rc_calloc(nargs ? nargs : 1, sizeof(*args));
    for (size_t i = 0; i < nargs; i++) {
        args[i].data = item->values[i]->data;
        args[i].size = item->values[i]->size;
        args[i].error = RAYC_OK;
        args[i].internal_ = item->values[i]; /* for rayc_object_retain: the item holds it */
    }
    pthread_mutex_lock(&cw->exec_mu);
    memcpy(cw->running_task_id, spec->task_id.data, RC_TASK_ID_SIZE);
    cw->running_executor = ex;
    pthread_mutex_unlock(&cw->exec_mu);
    core__current = ctx;
    core_events_task_running(cw, spec);
    int rc = 0;
    ctx->creating = spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    if (ctx->creating) {
        void *self = ex ? ex->create_actor(ctx, class_name ? class_name : "", args, nargs) : cls->create(ctx, args, nargs);
        if (self) {
            core__actor_born(cw, spec, cls, ex, self, ctx);
        } else {
            rc = -1;
            if (!ctx->failure)
                ctx->failure = rc_strdup("the constructor returned no instance");
        }
    } else if (ex && spec->type == RAY__RPC__TASK_TYPE__ACTOR_TASK) {
        rc = ex->call_method(cw->actor_self, ctx, name, args, nargs);
    } else if (ex) {
        rc = ex->run_task(ctx, name, args, nargs);
    } else if (method) {
        rc = method(cw->actor_self, ctx, args, nargs);
    } else {
        rc = fn(ctx, args, nargs);
    }
    core__current = NULL;
    pthread_mutex_lock(&cw->exec_mu);
    memset(cw->running_task_id, 0, RC_TASK_ID_SIZE);
    cw->running_executor = NULL;
    pthread_mutex_unlock(&cw->exec_mu);
    rc_free(args);
    if (!ctx->deferred)
        core__complete(ctx, rc);
    else if (atomic_fetch_sub(&ctx->pending, 1) == 1)
        core__complete(ctx, ctx->finish_rc); /* finished while its call was still returning */
}

rayc_task_ctx *rayc_task_defer(rayc_task_ctx *ctx)
{
    if (!ctx || ctx->deferred || ctx->spec->type != RAY__RPC__TASK_TYPE__ACTOR_TASK)
        return NULL;
    ctx->deferred = 1;
    atomic_store(&ctx->pending, 2);
    return ctx;
}

void rayc_task_finish(rayc_task_ctx *ctx, int rc)
{
    if (!ctx || !ctx->deferred)
        return;
    ctx->finish_rc = rc;
    if (atomic_fetch_sub(&ctx->pending, 1) == 1)
        core__complete(ctx, rc);
}

void core_exec_run_loop(core_worker *cw)
{
    for (;;) {
        pthread_mutex_lock(&cw->exec_mu);
        while (rc_list_empty(&cw->exec_queue) && !cw->exec_stop)
            pthread_cond_wait(&cw->exec_cv, &cw->exec_mu);
        if (cw->exec_stop) {
            pthread_mutex_unlock(&cw->exec_mu);
            return;
        }
        core_exec_item *item = rc_list_entry(rc_list_first(&cw->exec_queue), core_exec_item, link);
        rc_list_remove(&item->link);
        cw->exec_busy++;
        pthread_mutex_unlock(&cw->exec_mu);
        if (item->terminate)
            core__terminate(cw, item);
        core__execute(cw, item);
        pthread_mutex_lock(&cw->exec_mu);
        /* Only an actor's termination waits for the busy count (core__terminate): waking
         * every idle task thread after each call would cost an async actor's 1000 threads
         * a thundering herd per call. */
        if (--cw->exec_busy <= 1 && cw->exec_stop)
            pthread_cond_broadcast(&cw->exec_cv);
        pthread_mutex_unlock(&cw->exec_mu);
    }
}

void core_exec_free_callers(core_worker *cw)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->actor_callers, &it, NULL, NULL, &v)) {
        core__caller *c = v;
        while (c->early) {
            core_exec_item *item = c->early;
            c->early = item->next;
            core__exec_item_free(cw, item);
        }
        rc_free(c);
    }
    rc_map_destroy(&cw->actor_callers, NULL);
}

void core_exec_stop(core_worker *cw)
{
    pthread_mutex_lock(&cw->exec_mu);
    cw->exec_stop = 1;
    pthread_cond_broadcast(&cw->exec_cv);
    pthread_mutex_unlock(&cw->exec_mu);
}

/* ---- streaming generators --------------------------------------------------------------- */

int rayc_report_generator_item(rayc_task_ctx *ctx, int64_t index, const rayc_iov *parts, size_t n)
{
    if (!ctx || index < 0 || index >= (1 << 24) || (n && !parts) || ctx->n_returns != 1)
        return RC_EINVAL;
    core_worker *cw = ctx->cw;
    const Ray__Rpc__TaskSpec *spec = ctx->spec;
    size_t size;
    if (core_iov_total(parts, n, &size) < 0)
        return RC_ETOOBIG;
    uint8_t gen_id[RC_OBJECT_ID_SIZE], id[RC_OBJECT_ID_SIZE];
    core__return_id(spec, 0, gen_id);
    core__return_id(spec, (int)index + 1, id); /* values follow the generator's own return */
    Ray__Rpc__ReturnObject ro = RAY__RPC__RETURN_OBJECT__INIT;
    ro.object_id.data = id;
    ro.object_id.len = RC_OBJECT_ID_SIZE;
    ro.size = (int64_t)size;
    char err[512] = "";
    uint8_t *inline_copy = NULL;
    if (size > (size_t)rc_cfg.max_direct_call_object_size && cw->store_base &&
        core_store_put(cw, id, spec->caller_address, parts, n, size, err, sizeof(err)) == 0) {
        ro.in_plasma = 1;
    } else {
        inline_copy = rc_malloc(size ? size : 1);
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            if (parts[i].size)
                memcpy(inline_copy + at, parts[i].data, parts[i].size);
            at += parts[i].size;
        }
        ro.data.data = inline_copy;
        ro.data.len = size;
    }
    Ray__Rpc__ReportGeneratorItemReturnsRequest req = RAY__RPC__REPORT_GENERATOR_ITEM_RETURNS_REQUEST__INIT;
    req.returned_object = &ro;
    req.worker_addr = &cw->address;
    req.item_index = index;
    req.generator_id.data = gen_id;
    req.generator_id.len = RC_OBJECT_ID_SIZE;
    char owner[128];
    core_address_text(spec->caller_address, owner, sizeof(owner));
    core__thread_call c;
    memset(&c, 0, sizeof(c));
    c.op.run = core__run_thread_call;
    c.address = owner;
    c.svc = &ray__rpc__core_worker_service__descriptor;
    c.method = "ReportGeneratorItemReturns";
    c.req = &req.base;
    c.timeout_ms = rc_cfg.gcs_rpc_timeout_ms;
    core_waiter_init(&c.w);
    /* Waiting for the owner's answer keeps the values in order and paces the generator. */
    core_post(cw, &c.op);
    core_waiter_wait(&c.w);
    core_waiter_destroy(&c.w);
    rpc_msg_free(c.reply);
    rc_free(inline_copy);
    if (c.code != GRPC_STATUS_OK) {
        RC_WARN("core: the owner of generator '%s' did not take value %lld: %s", spec->name, (long long)index,
                c.message);
        return RC_EUNAVAIL;
    }
    return 0;
}
