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
} core__return;

struct rayc_task_ctx {
    const Ray__Rpc__TaskSpec *spec;
    core__return *returns;
    size_t n_returns;
    char *failure; /* rayc_task_fail's message */
    int gpu_ids[64];
    int n_gpu_ids;
    double num_cpus, num_gpus;
};

static __thread rayc_task_ctx *core__current;

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

int rayc_get_gpu_ids(int *ids, int max)
{
    rayc_task_ctx *ctx = core__current;
    if (!ctx)
        return 0;
    for (int i = 0; i < ctx->n_gpu_ids && i < max; i++)
        ids[i] = ctx->gpu_ids[i];
    return ctx->n_gpu_ids;
}

int core_exec_fill_context(rayc_runtime_context *out)
{
    rayc_task_ctx *ctx = core__current;
    if (!ctx)
        return 0;
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

/* ---- the hand-over -------------------------------------------------------------------- */

typedef struct core_exec_item {
    rpc_call *call;
    const Ray__Rpc__PushTaskRequest *req; /* valid until the call is answered */
    core_get *args;                        /* resolved argument values (by-ref ones) */
    core_value **values;                   /* one per argument */
    int cancelled;
    struct core_exec_item *next;
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
        memcpy(ids[i], spec->task_id.data, RC_TASK_ID_SIZE);
        uint32_t index = (uint32_t)i + 1;
        memcpy(ids[i] + RC_TASK_ID_SIZE, &index, 4);
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
    item->next = NULL;
    int was_empty = !cw->exec_head;
    if (cw->exec_tail)
        cw->exec_tail->next = item;
    else
        cw->exec_head = item;
    cw->exec_tail = item;
    if (was_empty) /* the task thread only sleeps on an empty queue */
        pthread_cond_signal(&cw->exec_cv);
    pthread_mutex_unlock(&cw->exec_mu);
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
    for (size_t i = 0; i < spec->n_args; i++) {
        core_value *v = item->values[i];
        if (v && v->error) {
            char message[1024];
            snprintf(message, sizeof(message), "argument %zu of task '%s' is an error: %s", i, spec->name,
                     v->error_message);
            core__reply_error(cw, item, core_error_to_type(v->error), message, 1);
            return;
        }
    }
    core__enqueue_exec(cw, item);
}

static void handle_push_task(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    core_worker *cw = arg;
    const Ray__Rpc__PushTaskRequest *req = (const void *)request;
    const Ray__Rpc__TaskSpec *spec = req->task_spec;
    if (!spec || spec->task_id.len != RC_TASK_ID_SIZE || !spec->function_descriptor ||
        spec->function_descriptor->function_descriptor_case !=
            RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR ||
        !spec->function_descriptor->cpp_function_descriptor->function_name || spec->num_returns > 1024) {
        rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                         "PushTask needs a task_spec with a 24-byte task_id, a C function descriptor and at most "
                         "1024 returns");
        return;
    }
    if (req->intended_worker_id.len && (req->intended_worker_id.len != RC_WORKER_ID_SIZE ||
                                        memcmp(req->intended_worker_id.data, cw->worker_id, RC_WORKER_ID_SIZE))) {
        rpc_reply_status(call, GRPC_STATUS_FAILED_PRECONDITION, "this task was meant for another worker");
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
    if (!by_ref) { /* every argument came inline: straight to the task thread */
        core__enqueue_exec(cw, item);
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
    pthread_mutex_lock(&cw->exec_mu);
    for (core_exec_item *it = cw->exec_head; it; it = it->next) {
        const ProtobufCBinaryData *id = &it->req->task_spec->task_id;
        if (req->intended_task_id.len == id->len && !memcmp(req->intended_task_id.data, id->data, id->len)) {
            it->cancelled = 1;
            queued = 1;
        }
    }
    if (req->intended_task_id.len == RC_TASK_ID_SIZE &&
        !memcmp(req->intended_task_id.data, cw->running_task_id, RC_TASK_ID_SIZE))
        running = 1;
    pthread_mutex_unlock(&cw->exec_mu);
    reply.requested_task_running = running;
    reply.attempt_succeeded = queued || (running && req->force_kill);
    rpc_reply(call, &reply.base);
    if (running && req->force_kill) {
        /* C code cannot be interrupted safely: as Ray does with force, the worker goes. */
        RC_WARN("core: force-cancelled the running task; exiting");
        fflush(NULL);
        _exit(1);
    }
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
    {NULL, NULL},
};

/* ---- the task thread ------------------------------------------------------------------ */

/* A blocking call from the task thread, through the loop. */
typedef struct core__thread_call {
    core_op op;
    rpc_client *cli;
    const ProtobufCServiceDescriptor *svc;
    const char *method;
    const ProtobufCMessage *req;
    ProtobufCMessage *reply;
    int code;
    char message[256];
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
    (void)cw;
    if (rpc_client_call(c->cli, c->svc, c->method, c->req, rc_cfg.gcs_rpc_timeout_ms, core__thread_call_done, c) < 0) {
        rpc_status st = {GRPC_STATUS_INTERNAL, "cannot start the call"};
        core__thread_call_done(&st, NULL, c);
    }
}

/* Calls method on the local raylet from a non-loop thread; returns the gRPC code. */
int core_call_raylet_from_thread(core_worker *cw, const char *method, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply, char *err, size_t errlen)
{
    core__thread_call c;
    memset(&c, 0, sizeof(c));
    c.op.run = core__run_thread_call;
    c.cli = cw->raylet_local;
    c.svc = &rayc__rpc__local_raylet_service__descriptor;
    c.method = method;
    c.req = req;
    core_waiter_init(&c.w);
    core_post(cw, &c.op);
    core_waiter_wait(&c.w);
    core_waiter_destroy(&c.w);
    *reply = c.reply;
    if (c.code != GRPC_STATUS_OK && err)
        snprintf(err, errlen, "%s", c.message);
    return c.code;
}

/* Puts a large result into the node's store; fills ro (in_plasma). */
static int core__store_result(core_worker *cw, const uint8_t *object_id, const Ray__Rpc__Address *owner,
                              const core__return *r, char *err, size_t errlen)
{
    if (!cw->store_base) {
        snprintf(err, errlen, "this node has no object store for a result of %zu bytes", r->size);
        return RC_ENOSPC;
    }
    Rayc__Rpc__CreateObjectRequest creq = RAYC__RPC__CREATE_OBJECT_REQUEST__INIT;
    creq.worker_id.data = cw->worker_id;
    creq.worker_id.len = RC_WORKER_ID_SIZE;
    creq.object_id.data = (uint8_t *)object_id;
    creq.object_id.len = RC_OBJECT_ID_SIZE;
    creq.data_size = r->size;
    creq.owner_address = (Ray__Rpc__Address *)owner;
    ProtobufCMessage *reply = NULL;
    if (core_call_raylet_from_thread(cw, "CreateObject", &creq.base, &reply, err, errlen) != GRPC_STATUS_OK)
        return RC_ENOSPC;
    uint64_t offset = ((Rayc__Rpc__CreateObjectReply *)reply)->offset;
    rpc_msg_free(reply);
    if (offset + r->size > cw->store_size) {
        snprintf(err, errlen, "the object store returned an offset outside its region");
        return RC_EPROTO;
    }
    memcpy(cw->store_base + offset, r->data, r->size);
    Rayc__Rpc__SealObjectRequest sreq = RAYC__RPC__SEAL_OBJECT_REQUEST__INIT;
    sreq.worker_id = creq.worker_id;
    sreq.object_id = creq.object_id;
    if (core_call_raylet_from_thread(cw, "SealObject", &sreq.base, &reply, err, errlen) != GRPC_STATUS_OK)
        return RC_EIO;
    rpc_msg_free(reply);
    return 0;
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
    const char *name = spec->function_descriptor->cpp_function_descriptor->function_name;
    rayc_remote_fn fn = core_find_function(name);
    if (!fn) {
        char message[6000];
        snprintf(message, sizeof(message),
                 "task '%s': no library on the code search path of node %.16s registers a function named '%s' "
                 "(code search path: %.4096s)",
                 spec->name, node_hex, name, cw->code_search_path[0] ? cw->code_search_path : "empty");
        core__reply_error(cw, item, RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION, message, 1);
        return;
    }
    rayc_task_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.spec = spec;
    ctx.n_returns = spec->num_returns;
    ctx.returns = rc_calloc(ctx.n_returns ? ctx.n_returns : 1, sizeof(*ctx.returns));
    for (size_t i = 0; i < item->req->n_resource_mapping; i++) {
        const Ray__Rpc__ResourceMapEntry *e = item->req->resource_mapping[i];
        double total = 0;
        for (size_t k = 0; k < e->n_resource_ids; k++) {
            total += e->resource_ids[k]->quantity;
            if (!strcmp(e->name, "GPU") && ctx.n_gpu_ids < 64)
                ctx.gpu_ids[ctx.n_gpu_ids++] = (int)e->resource_ids[k]->index;
        }
        if (!strcmp(e->name, "CPU"))
            ctx.num_cpus = total;
        else if (!strcmp(e->name, "GPU"))
            ctx.num_gpus = total;
    }
    size_t nargs = spec->n_args;
    rayc_object *args = rc_calloc(nargs ? nargs : 1, sizeof(*args));
    for (size_t i = 0; i < nargs; i++) {
        args[i].data = item->values[i]->data;
        args[i].size = item->values[i]->size;
        args[i].error = RAYC_OK;
    }
    pthread_mutex_lock(&cw->exec_mu);
    memcpy(cw->running_task_id, spec->task_id.data, RC_TASK_ID_SIZE);
    pthread_mutex_unlock(&cw->exec_mu);
    core__current = &ctx;
    int rc = fn(&ctx, args, nargs);
    core__current = NULL;
    pthread_mutex_lock(&cw->exec_mu);
    memset(cw->running_task_id, 0, RC_TASK_ID_SIZE);
    pthread_mutex_unlock(&cw->exec_mu);
    rc_free(args);

    if (rc != 0 || ctx.failure) {
        char message[2300];
        snprintf(message, sizeof(message), "task '%s' failed on node %.16s: %s", spec->name, node_hex,
                 ctx.failure ? ctx.failure : "the function returned an error without a message");
        core__reply_error(cw, item, RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION, message, 1);
    } else {
        size_t n = ctx.n_returns;
        Ray__Rpc__ReturnObject *objs = rc_calloc(n ? n : 1, sizeof(*objs));
        Ray__Rpc__ReturnObject **ptrs = rc_calloc(n ? n : 1, sizeof(*ptrs));
        uint8_t (*ids)[RC_OBJECT_ID_SIZE] = rc_calloc(n ? n : 1, RC_OBJECT_ID_SIZE);
        char err[512] = "";
        int failed = 0;
        for (size_t i = 0; i < n && !failed; i++) {
            ray__rpc__return_object__init(&objs[i]);
            memcpy(ids[i], spec->task_id.data, RC_TASK_ID_SIZE);
            uint32_t index = (uint32_t)i + 1;
            memcpy(ids[i] + RC_TASK_ID_SIZE, &index, 4);
            objs[i].object_id.data = ids[i];
            objs[i].object_id.len = RC_OBJECT_ID_SIZE;
            ptrs[i] = &objs[i];
            const core__return *r = &ctx.returns[i];
            objs[i].size = (int64_t)r->size;
            if (r->size > (size_t)rc_cfg.max_direct_call_object_size) {
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
    for (size_t i = 0; i < ctx.n_returns; i++)
        rc_free(ctx.returns[i].data);
    rc_free(ctx.returns);
    rc_free(ctx.failure);
}

void core_exec_run_loop(core_worker *cw)
{
    for (;;) {
        pthread_mutex_lock(&cw->exec_mu);
        while (!cw->exec_head && !cw->exec_stop)
            pthread_cond_wait(&cw->exec_cv, &cw->exec_mu);
        if (cw->exec_stop) {
            pthread_mutex_unlock(&cw->exec_mu);
            return;
        }
        core_exec_item *item = cw->exec_head;
        cw->exec_head = item->next;
        if (!cw->exec_head)
            cw->exec_tail = NULL;
        pthread_mutex_unlock(&cw->exec_mu);
        core__execute(cw, item);
    }
}

void core_exec_stop(core_worker *cw)
{
    pthread_mutex_lock(&cw->exec_mu);
    cw->exec_stop = 1;
    pthread_cond_broadcast(&cw->exec_cv);
    pthread_mutex_unlock(&cw->exec_mu);
}
