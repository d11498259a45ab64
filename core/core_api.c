/*
 * The public C API (include/rayc.h): argument checking and the hand-off of each call to
 * the loop thread. Submissions, puts and reference changes are posted without waiting
 * (their IDs are made on the calling thread), so a loop of rayc_submit costs no thread
 * round trip; gets of ready objects are served from the memory store directly. Only gets
 * and waits that must wait block the calling thread.
 *
 * Any user thread after rayc_init; rayc_init and rayc_shutdown from one thread, with no
 * other API call in progress.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"
#include "rayc_sched.h"
#include "sched_proto.h"

static core_worker core__instance;
static __thread char core__last_error[1024];

int core_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(core__last_error, sizeof(core__last_error), fmt, ap);
    va_end(ap);
    RC_WARN("rayc: %s", core__last_error);
    return rc;
}

const char *rayc_last_error(void)
{
    return core__last_error;
}

const char *rayc_error_name(rayc_error e)
{
    static const char *names[] = {
        "RAYC_OK",         "RAYC_ERR_TASK_FAILED", "RAYC_ERR_WORKER_DIED", "RAYC_ERR_NODE_DIED",
        "RAYC_ERR_UNSCHEDULABLE", "RAYC_ERR_CANCELLED", "RAYC_ERR_OBJECT_LOST", "RAYC_ERR_OWNER_DIED",
        "RAYC_ERR_FUNCTION_NOT_FOUND", "RAYC_ERR_TIMEOUT", "RAYC_ERR_ACTOR_DIED", "RAYC_ERR_PG_REMOVED",
        "RAYC_ERR_OBJECT_UNRECONSTRUCTABLE", "RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS",
        "RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED",
    };
    return (unsigned)e < RC_ARRAY_LEN(names) ? names[e] : "RAYC_ERR_UNKNOWN";
}

rayc_error core_error_from_type(Ray__Rpc__ErrorType t)
{
    switch (t) {
    case RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION:
        return RAYC_ERR_TASK_FAILED;
    case RAY__RPC__ERROR_TYPE__WORKER_DIED:
        return RAYC_ERR_WORKER_DIED;
    case RAY__RPC__ERROR_TYPE__NODE_DIED:
    case RAY__RPC__ERROR_TYPE__LOCAL_RAYLET_DIED:
        return RAYC_ERR_NODE_DIED;
    case RAY__RPC__ERROR_TYPE__TASK_UNSCHEDULABLE_ERROR:
        return RAYC_ERR_UNSCHEDULABLE;
    case RAY__RPC__ERROR_TYPE__TASK_CANCELLED:
        return RAYC_ERR_CANCELLED;
    case RAY__RPC__ERROR_TYPE__OWNER_DIED:
        return RAYC_ERR_OWNER_DIED;
    case RAY__RPC__ERROR_TYPE__ACTOR_DIED:
    case RAY__RPC__ERROR_TYPE__ACTOR_CREATION_FAILED:
    case RAY__RPC__ERROR_TYPE__ACTOR_UNSCHEDULABLE_ERROR:
    case RAY__RPC__ERROR_TYPE__ACTOR_UNAVAILABLE:
        return RAYC_ERR_ACTOR_DIED;
    case RAY__RPC__ERROR_TYPE__TASK_PLACEMENT_GROUP_REMOVED:
    case RAY__RPC__ERROR_TYPE__ACTOR_PLACEMENT_GROUP_REMOVED:
        return RAYC_ERR_PG_REMOVED;
    case RAY__RPC__ERROR_TYPE__OBJECT_UNRECONSTRUCTABLE:
        return RAYC_ERR_OBJECT_UNRECONSTRUCTABLE;
    case RAY__RPC__ERROR_TYPE__OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS_EXCEEDED:
        return RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS;
    case RAY__RPC__ERROR_TYPE__OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED:
        return RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED;
    default:
        return RAYC_ERR_OBJECT_LOST;
    }
}

Ray__Rpc__ErrorType core_error_to_type(rayc_error e)
{
    switch (e) {
    case RAYC_ERR_TASK_FAILED:
    case RAYC_ERR_FUNCTION_NOT_FOUND:
        return RAY__RPC__ERROR_TYPE__TASK_EXECUTION_EXCEPTION;
    case RAYC_ERR_WORKER_DIED:
        return RAY__RPC__ERROR_TYPE__WORKER_DIED;
    case RAYC_ERR_NODE_DIED:
        return RAY__RPC__ERROR_TYPE__NODE_DIED;
    case RAYC_ERR_UNSCHEDULABLE:
        return RAY__RPC__ERROR_TYPE__TASK_UNSCHEDULABLE_ERROR;
    case RAYC_ERR_CANCELLED:
        return RAY__RPC__ERROR_TYPE__TASK_CANCELLED;
    case RAYC_ERR_OWNER_DIED:
        return RAY__RPC__ERROR_TYPE__OWNER_DIED;
    case RAYC_ERR_ACTOR_DIED:
        return RAY__RPC__ERROR_TYPE__ACTOR_DIED;
    case RAYC_ERR_PG_REMOVED:
        return RAY__RPC__ERROR_TYPE__TASK_PLACEMENT_GROUP_REMOVED;
    case RAYC_ERR_OBJECT_UNRECONSTRUCTABLE:
        return RAY__RPC__ERROR_TYPE__OBJECT_UNRECONSTRUCTABLE;
    case RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS:
        return RAY__RPC__ERROR_TYPE__OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS_EXCEEDED;
    case RAYC_ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED:
        return RAY__RPC__ERROR_TYPE__OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED;
    default:
        return RAY__RPC__ERROR_TYPE__OBJECT_LOST;
    }
}

/* ---- init ----------------------------------------------------------------------------- */

void rayc_init_options_init(rayc_init_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->num_cpus = -1;
    opts->num_gpus = -1;
}

int rayc_is_initialized(void)
{
    return core__cw != NULL;
}

/* The put task ID: puts of this process get IDs under it (index from 2^31 up, far from
 * any task's return indices). */
static void core__ids_init(core_worker *cw)
{
    memcpy(cw->put_task_id, cw->task_prefix, 8);
    memcpy(cw->put_task_id + 8, "put", 3);
    memcpy(cw->put_task_id + RC_TASK_ID_SIZE - RC_JOB_ID_SIZE, cw->job_id, RC_JOB_ID_SIZE);
}

/* A driver's cluster (rayc_init_options.address, else RAYC_ADDRESS): "host:port" as given;
 * "auto" the one `rayc start` runs on this host; "local" a new one of its own; none given,
 * the one on this host if it runs, else a new one (Ray's ray.init). */
static int core__driver_cluster(core_worker *cw, const rayc_init_options *opts)
{
    const char *address = opts && opts->address && *opts->address ? opts->address : getenv("RAYC_ADDRESS");
    int new_cluster = address && !strcmp(address, "local");
    int must_find = address && !strcmp(address, "auto");
    if (address && *address && !new_cluster && !must_find) {
        snprintf(cw->gcs_address, sizeof(cw->gcs_address), "%s", address);
        return 0;
    }
    char session[1024], err[1024];
    if (!new_cluster && core_local_cluster_find(cw->gcs_address, sizeof(cw->gcs_address), session,
                                                sizeof(session)) == 0) {
        if (opts && (opts->num_cpus >= 0 || opts->num_gpus >= 0 || opts->resources_json ||
                     (opts->labels && *opts->labels)))
            return core_fail(RC_EINVAL,
                             "rayc_init: a cluster runs on this host (GCS %s, session %s): num_cpus, num_gpus, "
                             "resources and labels are for a new cluster and cannot change that one; leave them "
                             "unset to join it, or set the address to \"local\" to start a cluster of this "
                             "program's own",
                             cw->gcs_address, session);
        core_local_cluster_credentials(cw, session);
        RC_INFO("rayc_init: joining the cluster at %s (session %s)", cw->gcs_address, session);
        return 0;
    }
    if (must_find) {
        rc_session_root(session, sizeof(session));
        return core_fail(RC_ENOENT,
                         "rayc_init: no running rayc cluster found on this host (no live session under %s); "
                         "start one with `rayc start --head`, or set the address (RAYC_ADDRESS) of the cluster "
                         "to join",
                         session);
    }
    int rc = core_local_cluster_start(cw, opts, cw->gcs_address, sizeof(cw->gcs_address), err, sizeof(err));
    if (rc < 0)
        return core_fail(rc, "rayc_init: %s", err);
    return 0;
}

static int core__init(const rayc_init_options *opts, int is_worker, const char *raylet_socket, const uint8_t *worker_id,
                      const uint8_t *node_id, const char *node_ip, const char *gcs_address, const uint8_t *job_id)
{
    if (core__cw)
        return core_fail(RC_ESTATE, "rayc_init: already initialized");
    if (opts && (!isfinite(opts->job_weight) || opts->job_weight < 0))
        return core_fail(RC_EINVAL, "rayc_init: job_weight %g must be a finite number > 0 (0: the default, 1)",
                         opts->job_weight);
    rc_config_init();
    rc_log_set_tag(is_worker ? "worker" : "driver");
    core_worker *cw = &core__instance;
    memset(cw, 0, sizeof(*cw));
    core__cw = cw;
    const char *path = opts && opts->code_search_path ? opts->code_search_path : getenv("RAYC_CODE_SEARCH_PATH");
    snprintf(cw->code_search_path, sizeof(cw->code_search_path), "%s", path ? path : "");
    snprintf(cw->namespace_, sizeof(cw->namespace_), "%s", opts && opts->namespace_ ? opts->namespace_ : "");
    if (job_id)
        memcpy(cw->job_id, job_id, RC_JOB_ID_SIZE);
    int rc;
    if (gcs_address) {
        snprintf(cw->gcs_address, sizeof(cw->gcs_address), "%s", gcs_address);
    } else if ((rc = core__driver_cluster(cw, opts)) < 0) {
        core__cw = NULL;
        return rc;
    }
    rc = core_start(cw, opts, is_worker, raylet_socket, worker_id, node_id, node_ip);
    if (rc < 0) {
        core_local_cluster_stop(cw);
        core__cw = NULL;
        return core_fail(rc, "rayc_init: cannot join the cluster at %s: %s", cw->gcs_address,
                         cw->start_error[0] ? cw->start_error : rc_strerror(rc));
    }
    core__ids_init(cw);
    return 0;
}

int rayc_find_cluster(char *address, size_t address_len, char *session, size_t session_len)
{
    char found_address[256], found_session[1024];
    if (core_local_cluster_find(found_address, sizeof(found_address), found_session, sizeof(found_session)) < 0)
        return RC_ENOENT;
    if (address && address_len && snprintf(address, address_len, "%s", found_address) >= (int)address_len)
        return RC_ERANGE;
    if (session && session_len && snprintf(session, session_len, "%s", found_session) >= (int)session_len)
        return RC_ERANGE;
    return 0;
}

int rayc_init(const rayc_init_options *opts)
{
    return core__init(opts, 0, NULL, NULL, NULL, NULL, NULL, NULL);
}

int core_worker_init(const char *gcs_address, const char *raylet_socket, const uint8_t *worker_id,
                     const uint8_t *node_id, const char *node_ip, const uint8_t *job_id, const char *code_search_path)
{
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    opts.code_search_path = code_search_path;
    return core__init(&opts, 1, raylet_socket, worker_id, node_id, node_ip, gcs_address, job_id);
}

void rayc_shutdown(void)
{
    core_worker *cw = core__cw;
    if (!cw)
        return;
    core_stop(cw);
    core_borrowed_clear();
    core_generators_clear();
    core_local_cluster_stop(cw);
    core__cw = NULL;
}

/* ---- references ----------------------------------------------------------------------- */

typedef struct core__ref_op {
    core_op op;
    uint8_t id[RC_OBJECT_ID_SIZE];
    int64_t delta;
} core__ref_op;

static void core__run_ref(core_worker *cw, core_op *op)
{
    core__ref_op *r = (core__ref_op *)op;
    core_ref_add_local(cw, r->id, r->delta);
    rc_free(r);
}

static void core__post_ref(const rayc_ref *ref, int64_t delta)
{
    core_worker *cw = core__cw;
    if (!cw || !ref)
        return;
    core__ref_op *op = RC_NEW(core__ref_op);
    op->op.run = core__run_ref;
    memcpy(op->id, ref->id, RC_OBJECT_ID_SIZE);
    op->delta = delta;
    core_post(cw, &op->op);
}

void rayc_ref_retain(const rayc_ref *ref)
{
    if (ref && core_borrowed_add(ref->id, 1))
        return;
    core__post_ref(ref, 1);
}

void rayc_ref_release(const rayc_ref *ref)
{
    if (ref && core_borrowed_add(ref->id, -1))
        return;
    core__post_ref(ref, -1);
}

char *rayc_ref_hex(const rayc_ref *ref, char *buf)
{
    return rc_id_hex(ref->id, RAYC_OBJECT_ID_SIZE, buf);
}

/* ---- put ------------------------------------------------------------------------------ */

typedef struct core__put_op {
    core_op op;
    uint8_t id[RC_OBJECT_ID_SIZE];
    core_value *value;
    int in_plasma;
    uint64_t size;
} core__put_op;

static void core__run_put(core_worker *cw, core_op *op)
{
    core__put_op *p = (core__put_op *)op;
    core_ref *r = core_ref_create(cw, p->id);
    r->local_refs = 1;
    if (p->value)
        core_memstore_put(&cw->memstore, p->id, p->value);
    core_ref_set_ready(cw, r, p->in_plasma, p->in_plasma ? cw->node_id : NULL, p->size);
    rc_free(p);
}

static void core__new_put_id(core_worker *cw, uint8_t *id)
{
    memcpy(id, cw->put_task_id, RC_TASK_ID_SIZE);
    uint32_t index = 0x80000000u + atomic_fetch_add((_Atomic uint32_t *)&cw->put_counter, 1);
    memcpy(id + RC_TASK_ID_SIZE, &index, 4);
}

/* Copies the parts one after the other into dst. */
static void core__gather(uint8_t *dst, const rayc_iov *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (parts[i].size)
            memcpy(dst, parts[i].data, parts[i].size);
        dst += parts[i].size;
    }
}

int rayc_put(const void *data, size_t size, rayc_ref *out)
{
    rayc_iov part = {data, size};
    return rayc_put_iov(&part, 1, out);
}

int rayc_put_iov(const rayc_iov *parts, size_t n, rayc_ref *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_put: call rayc_init first");
    if (!out || (n && !parts))
        return core_fail(RC_EINVAL, "rayc_put: data and out are required");
    for (size_t i = 0; i < n; i++)
        if (parts[i].size && !parts[i].data)
            return core_fail(RC_EINVAL, "rayc_put: part %zu has a size but no data", i);
    size_t size;
    if (core_iov_total(parts, n, &size) < 0)
        return core_fail(RC_ETOOBIG, "rayc_put: the parts' sizes add up to more than the address space");
    core__put_op *op = RC_NEW(core__put_op);
    op->op.run = core__run_put;
    core__new_put_id(cw, op->id);
    op->size = size;
    if (size > (size_t)rc_cfg.max_direct_call_object_size && cw->store_base) {
        /* Large: straight into this node's shared memory, zero copies after this one. */
        char err[512] = "";
        int rc = core_store_put(cw, op->id, &cw->address, parts, n, size, err, sizeof(err));
        if (rc < 0) {
            rc_free(op);
            return core_fail(rc, "rayc_put: cannot store %zu bytes: %s", size, err);
        }
        op->in_plasma = 1;
    } else {
        op->value = core_value_new_bytes(NULL, 0);
        rc_free(op->value->data);
        op->value->data = rc_malloc(size ? size : 1);
        op->value->size = size;
        core__gather(op->value->data, parts, n);
    }
    memcpy(out->id, op->id, RC_OBJECT_ID_SIZE);
    core_post(cw, &op->op);
    return 0;
}

/* ---- submit --------------------------------------------------------------------------- */

void rayc_task_options_init(rayc_task_options *o)
{
    memset(o, 0, sizeof(*o));
    o->num_cpus = 1;
    o->max_retries = 3;
    o->num_returns = 1;
    o->strategy = RAYC_STRATEGY_DEFAULT;
    o->bundle_index = -1;
}

typedef struct core__submit_op {
    core_op op;
    core_task *task;
} core__submit_op;

static void core__run_submit(core_worker *cw, core_op *op)
{
    core__submit_op *s = (core__submit_op *)op;
    core_submit_task(cw, s->task);
    rc_free(s);
}

/* Ray's rule for task resources: amounts above 1 must be whole; checked with the
 * scheduler's own validation so the messages match what raylets would say. */
static int core__check_amount(const char *name, double v)
{
    sched_amount a;
    sched_err err;
    if (sched_amount_from_double(name, v, &a, &err) < 0)
        return core_fail(RC_EINVAL, "rayc_submit: %s", err.msg);
    return 0;
}

static Ray__Rpc__TaskSpec__RequiredResourcesEntry *core__resource(const char *name, double v)
{
    Ray__Rpc__TaskSpec__RequiredResourcesEntry *e = rc_malloc(sizeof(*e));
    ray__rpc__task_spec__required_resources_entry__init(e);
    e->key = rc_strdup(name);
    e->value = v;
    return e;
}

/* Converts the selector text into Ray's LabelSelector. */
static int core__label_selector(const char *text, Ray__Rpc__LabelSelector **out)
{
    sched_selector *sel;
    sched_err err;
    if (sched_selector_parse(text, &sel, &err) < 0)
        return core_fail(RC_EINVAL, "rayc_submit: bad label_selector: %s", err.msg);
    size_t n = sched_selector_count(sel);
    Ray__Rpc__LabelSelector *ls = rc_malloc(sizeof(*ls));
    ray__rpc__label_selector__init(ls);
    ls->label_constraints = rc_calloc(n ? n : 1, sizeof(*ls->label_constraints));
    for (size_t i = 0; i < n; i++) {
        const char *key;
        sched_label_op op;
        const char *const *values;
        size_t nv;
        sched_selector_constraint(sel, i, &key, &op, &values, &nv);
        Ray__Rpc__LabelSelectorConstraint *c = rc_malloc(sizeof(*c));
        ray__rpc__label_selector_constraint__init(c);
        c->label_key = rc_strdup(key);
        c->operator_ = op == SCHED_LABEL_NOT_IN ? RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_NOT_IN
                                                : RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_IN;
        c->label_values = rc_calloc(nv ? nv : 1, sizeof(char *));
        for (size_t k = 0; k < nv; k++)
            c->label_values[k] = rc_strdup(values[k]);
        c->n_label_values = nv;
        ls->label_constraints[ls->n_label_constraints++] = c;
    }
    sched_selector_free(sel);
    *out = ls;
    return 0;
}

/* Bundle resources of a placement group, Ray's names: R_group_<i>_<pg> for bundle i,
 * R_group_<pg> for any bundle. */
static char *core__bundle_resource(const char *name, const rayc_pg *pg, int bundle_index)
{
    char text[512];
    return rc_strdup(sched_bundle_name_format(name, pg->id, bundle_index >= 0 ? bundle_index : -1, text, sizeof(text)));
}

core_task *core_task_build_with(core_worker *cw, const char *fn_name, const char *class_name, const rayc_arg *args,
                                size_t nargs, const rayc_task_options *opts, rayc_ref *out_refs)
{
    if (opts->num_returns < 1 || opts->num_returns > 1024) {
        core_fail(RC_EINVAL, "rayc_submit: num_returns must be 1..1024, not %d", opts->num_returns);
        return NULL;
    }
    if (core__check_amount("CPU", opts->num_cpus) < 0 || core__check_amount("GPU", opts->num_gpus) < 0)
        return NULL;
    if (opts->n_resources > RAYC_MAX_TASK_RESOURCES) {
        core_fail(RC_EINVAL, "rayc_submit: at most %d custom resources", RAYC_MAX_TASK_RESOURCES);
        return NULL;
    }
    for (size_t i = 0; i < opts->n_resources; i++) {
        const char *name = opts->resources[i].name;
        if (!name || !*name || !strcmp(name, "CPU") || !strcmp(name, "GPU") || !strcmp(name, "memory")) {
            core_fail(RC_EINVAL, "rayc_submit: resource '%s' is not a custom resource (use num_cpus, num_gpus)",
                       name ? name : "");
            return NULL;
        }
        if (core__check_amount(name, opts->resources[i].amount) < 0)
            return NULL;
    }
    if (opts->placement_group && opts->bundle_index < -1) {
        core_fail(RC_EINVAL, "rayc_submit: bundle_index must be -1 (any) or a bundle's index");
        return NULL;
    }
    for (size_t i = 0; i < nargs; i++) {
        if (!args[i].ref && args[i].size && !args[i].data) {
            core_fail(RC_EINVAL, "rayc_submit: argument %zu has a size but no data", i);
            return NULL;
        }
    }
    Ray__Rpc__LabelSelector *selector = NULL;
    if (opts->label_selector && *opts->label_selector && core__label_selector(opts->label_selector, &selector) < 0)
        return NULL;
    /* Inside a task of a capturing group, what it creates joins the group (any bundle). */
    rayc_task_options captured;
    rayc_pg parent_pg;
    if (!opts->placement_group && opts->strategy == RAYC_STRATEGY_DEFAULT && core_exec_captured_pg(parent_pg.id)) {
        captured = *opts;
        captured.placement_group = &parent_pg;
        captured.bundle_index = -1;
        captured.capture_child_tasks = 1;
        opts = &captured;
    }

    Ray__Rpc__TaskSpec *spec = rc_malloc(sizeof(*spec));
    ray__rpc__task_spec__init(spec);
    core_task *t = RC_NEW(core_task);
    t->spec = spec;
    /* Task ID: 8 unique bytes, 12 zero bytes (no actor), the 4-byte job ID. */
    uint64_t counter = atomic_fetch_add((_Atomic uint64_t *)&cw->task_counter, 1);
    uint8_t unique[8];
    memcpy(unique, cw->task_prefix, 8);
    for (int i = 0; i < 8; i++)
        unique[i] ^= (uint8_t)(counter >> (8 * i));
    memcpy(t->task_id, unique, 8);
    memcpy(t->task_id + RC_TASK_ID_SIZE - RC_JOB_ID_SIZE, cw->job_id, RC_JOB_ID_SIZE);
    t->retries_left = opts->max_retries;
    t->retry_exceptions = opts->retry_exceptions;

    spec->type = RAY__RPC__TASK_TYPE__NORMAL_TASK;
    spec->name = rc_strdup(opts->name && *opts->name ? opts->name : fn_name);
    spec->parent_counter = counter;
    spec->function_descriptor = rc_malloc(sizeof(*spec->function_descriptor));
    ray__rpc__function_descriptor__init(spec->function_descriptor);
    if (opts->language == RAYC_LANGUAGE_PYTHON) {
        /* The raylet starts a Python worker for it; the binding's key names the function. */
        spec->language = RAY__RPC__LANGUAGE__PYTHON;
        Ray__Rpc__PythonFunctionDescriptor *py = rc_malloc(sizeof(*py));
        ray__rpc__python_function_descriptor__init(py);
        py->function_name = rc_strdup(fn_name);
        if (class_name)
            py->class_name = rc_strdup(class_name);
        spec->function_descriptor->function_descriptor_case =
            RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_PYTHON_FUNCTION_DESCRIPTOR;
        spec->function_descriptor->python_function_descriptor = py;
    } else {
        spec->language = RAY__RPC__LANGUAGE__CPP;
        Ray__Rpc__CppFunctionDescriptor *cpp = rc_malloc(sizeof(*cpp));
        ray__rpc__cpp_function_descriptor__init(cpp);
        cpp->function_name = rc_strdup(fn_name);
        if (class_name)
            cpp->class_name = rc_strdup(class_name);
        spec->function_descriptor->function_descriptor_case =
            RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR;
        spec->function_descriptor->cpp_function_descriptor = cpp;
    }
    spec->job_id.data = rc_memdup(cw->job_id, RC_JOB_ID_SIZE);
    spec->job_id.len = RC_JOB_ID_SIZE;
    spec->task_id.data = rc_memdup(t->task_id, RC_TASK_ID_SIZE);
    spec->task_id.len = RC_TASK_ID_SIZE;
    spec->caller_id.data = rc_memdup(cw->worker_id, RC_WORKER_ID_SIZE);
    spec->caller_id.len = RC_WORKER_ID_SIZE;
    spec->caller_address = (Ray__Rpc__Address *)rpc_msg_dup(&cw->address.base);
    spec->num_returns = (uint64_t)opts->num_returns;
    spec->max_retries = opts->max_retries;
    spec->retry_exceptions = opts->retry_exceptions;
    spec->label_selector = selector;

    /* Resources: CPU and GPU as Ray names them, custom ones, accelerator_type as Ray's
     * tiny implicit resource; inside a placement group, renamed to the bundle's. */
    spec->required_resources = rc_calloc(RAYC_MAX_TASK_RESOURCES + 4, sizeof(*spec->required_resources));
    if (opts->num_cpus > 0)
        spec->required_resources[spec->n_required_resources++] = core__resource("CPU", opts->num_cpus);
    if (opts->num_gpus > 0)
        spec->required_resources[spec->n_required_resources++] = core__resource("GPU", opts->num_gpus);
    for (size_t i = 0; i < opts->n_resources; i++)
        if (opts->resources[i].amount > 0)
            spec->required_resources[spec->n_required_resources++] =
                core__resource(opts->resources[i].name, opts->resources[i].amount);
    if (opts->accelerator_type && *opts->accelerator_type) {
        char name[128];
        snprintf(name, sizeof(name), "accelerator_type:%s", opts->accelerator_type);
        spec->required_resources[spec->n_required_resources++] = core__resource(name, 0.001);
    }
    if (opts->placement_group) {
        for (size_t i = 0; i < spec->n_required_resources; i++) {
            char *renamed = core__bundle_resource(spec->required_resources[i]->key, opts->placement_group,
                                                  opts->bundle_index);
            rc_free(spec->required_resources[i]->key);
            spec->required_resources[i]->key = renamed;
        }
        /* Ray's bundle marker: a sliver of the bundle itself, so that even a task that
         * asks for nothing runs inside the group. */
        char *marker = core__bundle_resource("bundle", opts->placement_group, opts->bundle_index);
        spec->required_resources[spec->n_required_resources++] = core__resource(marker, 0.001);
        rc_free(marker);
    }

    spec->scheduling_strategy = rc_malloc(sizeof(*spec->scheduling_strategy));
    ray__rpc__scheduling_strategy__init(spec->scheduling_strategy);
    Ray__Rpc__SchedulingStrategy *ss = spec->scheduling_strategy;
    if (opts->placement_group) {
        ss->scheduling_strategy_case =
            RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY;
        Ray__Rpc__PlacementGroupSchedulingStrategy *pgs = rc_malloc(sizeof(*pgs));
        ray__rpc__placement_group_scheduling_strategy__init(pgs);
        pgs->placement_group_id.data = rc_memdup(opts->placement_group->id, RAYC_PG_ID_SIZE);
        pgs->placement_group_id.len = RAYC_PG_ID_SIZE;
        pgs->placement_group_bundle_index = opts->bundle_index;
        pgs->placement_group_capture_child_tasks = opts->capture_child_tasks != 0;
        ss->placement_group_scheduling_strategy = pgs;
    } else if (opts->strategy == RAYC_STRATEGY_SPREAD) {
        ss->scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_SPREAD_SCHEDULING_STRATEGY;
        ss->spread_scheduling_strategy = rc_malloc(sizeof(Ray__Rpc__SpreadSchedulingStrategy));
        ray__rpc__spread_scheduling_strategy__init(ss->spread_scheduling_strategy);
    } else if (opts->strategy == RAYC_STRATEGY_NODE_AFFINITY) {
        ss->scheduling_strategy_case =
            RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_NODE_AFFINITY_SCHEDULING_STRATEGY;
        Ray__Rpc__NodeAffinitySchedulingStrategy *na = rc_malloc(sizeof(*na));
        ray__rpc__node_affinity_scheduling_strategy__init(na);
        na->node_id.data = rc_memdup(opts->node_id, RAYC_NODE_ID_SIZE);
        na->node_id.len = RAYC_NODE_ID_SIZE;
        na->soft = opts->soft;
        ss->node_affinity_scheduling_strategy = na;
    } else {
        ss->scheduling_strategy_case = RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_DEFAULT_SCHEDULING_STRATEGY;
        ss->default_scheduling_strategy = rc_malloc(sizeof(Ray__Rpc__DefaultSchedulingStrategy));
        ray__rpc__default_scheduling_strategy__init(ss->default_scheduling_strategy);
    }
    if (opts->strategy == RAYC_STRATEGY_COST || opts->gpu_memory) {
        spec->rayc_extras = rc_malloc(sizeof(*spec->rayc_extras));
        rayc__rpc__scheduling_extras__init(spec->rayc_extras);
        spec->rayc_extras->cost_strategy = opts->strategy == RAYC_STRATEGY_COST;
        spec->rayc_extras->gpu_memory = opts->gpu_memory;
    }

    spec->args = rc_calloc(nargs ? nargs : 1, sizeof(*spec->args));
    for (size_t i = 0; i < nargs; i++) {
        Ray__Rpc__TaskArg *a = rc_malloc(sizeof(*a));
        ray__rpc__task_arg__init(a);
        if (args[i].ref) {
            a->object_ref = rc_malloc(sizeof(*a->object_ref));
            ray__rpc__object_reference__init(a->object_ref);
            a->object_ref->object_id.data = rc_memdup(args[i].ref->id, RC_OBJECT_ID_SIZE);
            a->object_ref->object_id.len = RC_OBJECT_ID_SIZE;
            /* A reference received from elsewhere names its owner; ours name us. */
            a->object_ref->owner_address = core_borrowed_owner(cw, args[i].ref->id);
            if (!a->object_ref->owner_address)
                a->object_ref->owner_address = (Ray__Rpc__Address *)rpc_msg_dup(&cw->address.base);
        } else {
            a->data.data = rc_memdup(args[i].data ? args[i].data : "", args[i].size);
            a->data.len = args[i].size;
            a->is_inlined = 1;
        }
        spec->args[spec->n_args++] = a;
    }
    for (int i = 0; i < opts->num_returns; i++) {
        memcpy(out_refs[i].id, t->task_id, RC_TASK_ID_SIZE);
        uint32_t index = (uint32_t)i + 1;
        memcpy(out_refs[i].id + RC_TASK_ID_SIZE, &index, 4);
    }
    return t;
}

core_task *core_task_build(core_worker *cw, const char *fn_name, const char *class_name, const rayc_arg *args,
                           size_t nargs, const char *name, int num_returns, rayc_ref *out_refs)
{
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.num_cpus = 0; /* actor calls hold nothing: the actor's resources are its own */
    o.num_returns = num_returns;
    o.name = name;
    o.max_retries = 0;
    return core_task_build_with(cw, fn_name, class_name, args, nargs, &o, out_refs);
}

int rayc_submit(const char *fn_name, const rayc_arg *args, size_t nargs, const rayc_task_options *opts,
                rayc_ref *out_refs)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_submit: call rayc_init first");
    if (!fn_name || !*fn_name || !out_refs || (nargs && !args))
        return core_fail(RC_EINVAL, "rayc_submit: a function name and out_refs are required");
    rayc_task_options defaults;
    if (!opts) {
        rayc_task_options_init(&defaults);
        opts = &defaults;
    }
    core_task *t = core_task_build_with(cw, fn_name, NULL, args, nargs, opts, out_refs);
    if (!t)
        return RC_EINVAL;
    core__submit_op *op = RC_NEW(core__submit_op);
    op->op.run = core__run_submit;
    op->task = t;
    core_post(cw, &op->op);
    return 0;
}

/* ---- get / wait ----------------------------------------------------------------------- */

typedef struct core__get_op {
    core_op op;
    core_get *g;
} core__get_op;

static void core__run_get(core_worker *cw, core_op *op)
{
    core__get_op *o = (core__get_op *)op;
    core_get_start(cw, o->g);
    rc_free(o);
}

typedef struct core__blocked_op {
    core_op op;
    int blocked;
} core__blocked_op;

static void core__run_blocked(core_worker *cw, core_op *op)
{
    core__blocked_op *b = (core__blocked_op *)op;
    ProtobufCBinaryData id = {RC_WORKER_ID_SIZE, cw->worker_id};
    if (b->blocked) {
        Rayc__Rpc__NotifyTaskBlockedRequest req = RAYC__RPC__NOTIFY_TASK_BLOCKED_REQUEST__INIT;
        req.worker_id = id;
        rpc_client_call(cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "NotifyTaskBlocked", &req.base,
                        rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
    } else {
        Rayc__Rpc__NotifyTaskUnblockedRequest req = RAYC__RPC__NOTIFY_TASK_UNBLOCKED_REQUEST__INIT;
        req.worker_id = id;
        rpc_client_call(cw->raylet_local, &rayc__rpc__local_raylet_service__descriptor, "NotifyTaskUnblocked",
                        &req.base, rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
    }
    rc_free(b);
}

static void core__notify_blocked(core_worker *cw, int blocked)
{
    core__blocked_op *b = RC_NEW(core__blocked_op);
    b->op.run = core__run_blocked;
    b->blocked = blocked;
    core_post(cw, &b->op);
}

/* Runs g on the loop and waits; a task thread lends its CPUs back while it waits. */
static int core__run_and_wait(core_worker *cw, core_get *g)
{
    core_waiter w;
    core_waiter_init(&w);
    g->waiter = &w;
    atomic_fetch_add(&g->refs, 1); /* the op's reference */
    core__get_op *op = RC_NEW(core__get_op);
    op->op.run = core__run_get;
    op->g = g;
    int in_task = cw->is_worker && core_exec_in_task();
    if (in_task)
        core__notify_blocked(cw, 1);
    core_post(cw, &op->op);
    int rc = core_waiter_wait(&w);
    if (in_task)
        core__notify_blocked(cw, 0);
    core_waiter_destroy(&w);
    return rc;
}

static void core__fill_object(rayc_object *o, core_value *v)
{
    memset(o, 0, sizeof(*o));
    if (!v) {
        o->error = RAYC_ERR_TIMEOUT;
        o->error_message = "the object was not ready before the timeout";
        return;
    }
    o->internal_ = v;
    o->error = v->error;
    if (v->error) {
        o->error_message = v->error_message;
    } else {
        o->data = v->data ? v->data : "";
        o->size = v->size;
    }
}

int rayc_get(const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_object *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_get: call rayc_init first");
    if (n && (!refs || !out))
        return core_fail(RC_EINVAL, "rayc_get: refs and out are required");
    /* Fast path: everything is already in the memory store. */
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        core_value *v = core_memstore_get(&cw->memstore, refs[i].id);
        if (!v)
            break;
        core__fill_object(&out[i], v);
        found++;
    }
    if (found == n)
        return 0;
    for (size_t i = 0; i < found; i++)
        core_value_unref(cw, out[i].internal_);
    core_get *g = core_get_new(n);
    for (size_t i = 0; i < n; i++) {
        memcpy(g->items[i].id, refs[i].id, RC_OBJECT_ID_SIZE);
        g->items[i].owner = core_borrowed_owner(cw, refs[i].id);
    }
    g->timeout_ms = timeout_ms;
    int rc = core__run_and_wait(cw, g);
    for (size_t i = 0; i < n; i++) {
        core__fill_object(&out[i], g->items[i].value);
        g->items[i].value = NULL; /* handed to out[i] */
    }
    core_get_unref(cw, g);
    return rc;
}

int rayc_object_retain(const rayc_object *src, rayc_object *dst)
{
    core_worker *cw = core__cw;
    if (!cw || !src || !dst || !src->internal_)
        return RC_EINVAL;
    core_value *v = src->internal_;
    pthread_mutex_lock(&cw->memstore.mu);
    v->refs++;
    pthread_mutex_unlock(&cw->memstore.mu);
    *dst = *src;
    return 0;
}

void rayc_object_release(rayc_object *objects, size_t n)
{
    core_worker *cw = core__cw;
    for (size_t i = 0; i < n; i++) {
        if (cw && objects[i].internal_)
            core_value_unref(cw, objects[i].internal_);
        memset(&objects[i], 0, sizeof(objects[i]));
    }
}

int rayc_wait(const rayc_ref *refs, size_t n, size_t num_returns, int64_t timeout_ms, int fetch_local,
              uint8_t *ready_mask)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_wait: call rayc_init first");
    if (!ready_mask || (n && !refs))
        return core_fail(RC_EINVAL, "rayc_wait: refs and ready_mask are required");
    if (num_returns > n)
        return core_fail(RC_EINVAL, "rayc_wait: num_returns (%zu) exceeds the number of refs (%zu)", num_returns, n);
    core_get *g = core_get_new(n);
    for (size_t i = 0; i < n; i++) {
        memcpy(g->items[i].id, refs[i].id, RC_OBJECT_ID_SIZE);
        g->items[i].owner = core_borrowed_owner(cw, refs[i].id);
    }
    g->want = num_returns;
    g->keep_values = 0;
    g->fetch_local = fetch_local;
    g->timeout_ms = timeout_ms;
    if (num_returns == 0)
        g->timeout_ms = 0;
    core__run_and_wait(cw, g);
    for (size_t i = 0; i < n; i++)
        ready_mask[i] = g->items[i].value != NULL;
    core_get_unref(cw, g);
    return 0;
}

/* ---- cancel --------------------------------------------------------------------------- */

typedef struct core__cancel_op {
    core_op op;
    uint8_t id[RC_OBJECT_ID_SIZE];
    int force;
    int recursive;
} core__cancel_op;

static void core__run_cancel(core_worker *cw, core_op *op)
{
    core__cancel_op *c = (core__cancel_op *)op;
    core_submit_cancel(cw, c->id, c->force, c->recursive);
    rc_free(c);
}

int rayc_cancel(const rayc_ref *ref, int force)
{
    return rayc_cancel_recursive(ref, force, 0);
}

int rayc_cancel_recursive(const rayc_ref *ref, int force, int recursive)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_cancel: call rayc_init first");
    if (!ref)
        return core_fail(RC_EINVAL, "rayc_cancel: ref is required");
    core__cancel_op *op = RC_NEW(core__cancel_op);
    op->op.run = core__run_cancel;
    memcpy(op->id, ref->id, RC_OBJECT_ID_SIZE);
    op->force = force;
    op->recursive = recursive;
    core_post(cw, &op->op);
    return 0;
}

/* ---- context -------------------------------------------------------------------------- */

int rayc_get_runtime_context(rayc_runtime_context *out)
{
    core_worker *cw = core__cw;
    if (!cw || !out)
        return RC_ESTATE;
    memset(out, 0, sizeof(*out));
    memcpy(out->node_id, cw->node_id, RAYC_NODE_ID_SIZE);
    memcpy(out->job_id, cw->job_id, RAYC_JOB_ID_SIZE);
    memcpy(out->worker_id, cw->worker_id, 28);
    out->namespace_ = cw->namespace_;
    snprintf(out->node_ip, sizeof(out->node_ip), "%s", cw->node_ip);
    if (cw->actor_created) {
        memcpy(out->actor_id, cw->actor_id, RAYC_ACTOR_ID_SIZE);
        out->is_actor = 1;
    }
    core_exec_fill_context(out);
    return 0;
}
