/*
 * ActorInfoGcsService: the handlers of the GCS actor manager (gcs_actor_manager.c holds the
 * table and the lifecycle; docs/actors.md).
 *
 *   RegisterActor       checks the creation task (an ACTOR_CREATION_TASK with a 16-byte
 *                       actor ID, a 4-byte job ID, valid resources and strategy), refuses a
 *                       name taken in its namespace (ALREADY_EXISTS), stores the creation task
 *                       (ACTOR_TASK_SPEC) and the record (ACTOR), then answers; registering
 *                       an actor again answers OK (an owner's retry).
 *   CreateActor         held until the actor is ALIVE (OK, actor_address) or DEAD
 *                       (SCHEDULING_CANCELLED, death_cause); NOT_FOUND if never registered.
 *   GetActorInfo, GetNamedActorInfo, ListNamedActors, GetAllActorInfo (filters on ID, job
 *                       and state; limit; total and num_filtered as Ray counts them).
 *   KillActorViaGcs     kills the worker (force_kill: at once; else once its calls are done)
 *                       and restarts the actor unless no_restart (Ray: ray.kill restarts).
 *   ReportActorOutOfScope  a non-detached actor whose owner let go of it: DEAD (OUT_OF_SCOPE)
 *                       once its pending calls are done.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "gcs_actor_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

typedef Ray__Rpc__ActorTableData gcs__record;

static char *gcs__hex(const uint8_t *id, char *buf)
{
    return rc_id_hex(id, RC_ACTOR_ID_SIZE, buf);
}

static const char *gcs__class_name(const Ray__Rpc__TaskSpec *spec)
{
    const Ray__Rpc__FunctionDescriptor *fd = spec->function_descriptor;
    if (fd && fd->function_descriptor_case == RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_CPP_FUNCTION_DESCRIPTOR &&
        fd->cpp_function_descriptor->class_name)
        return fd->cpp_function_descriptor->class_name;
    if (fd && fd->function_descriptor_case == RAY__RPC__FUNCTION_DESCRIPTOR__FUNCTION_DESCRIPTOR_PYTHON_FUNCTION_DESCRIPTOR &&
        fd->python_function_descriptor->class_name)
        return fd->python_function_descriptor->class_name;
    return "";
}

/* Checks a creation task; writes a sentence into err when it cannot be registered. */
static int gcs__check_spec(gcs_actor_manager *am, const Ray__Rpc__TaskSpec *spec, char *err, size_t errlen)
{
    if (!spec) {
        snprintf(err, errlen, "task_spec is missing");
        return RC_EINVAL;
    }
    if (spec->type != RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK || !spec->actor_creation_task_spec) {
        snprintf(err, errlen, "task_spec must be an ACTOR_CREATION_TASK with an actor_creation_task_spec");
        return RC_EINVAL;
    }
    const Ray__Rpc__ActorCreationTaskSpec *cs = spec->actor_creation_task_spec;
    if (cs->actor_id.len != RC_ACTOR_ID_SIZE) {
        snprintf(err, errlen, "actor_creation_task_spec.actor_id holds %zu bytes; an actor ID has %d",
                 cs->actor_id.len, RC_ACTOR_ID_SIZE);
        return RC_EINVAL;
    }
    if (spec->job_id.len != RC_JOB_ID_SIZE) {
        snprintf(err, errlen, "task_spec.job_id holds %zu bytes; a job ID has %d", spec->job_id.len, RC_JOB_ID_SIZE);
        return RC_EINVAL;
    }
    if (cs->max_actor_restarts < -1) {
        snprintf(err, errlen, "max_actor_restarts is %lld; it must be -1 (always) or >= 0",
                 (long long)cs->max_actor_restarts);
        return RC_EINVAL;
    }
    if (gcs_view_check_resources((const gcs_res_entry *const *)spec->required_resources, spec->n_required_resources,
                                 "required_resources", err, errlen) < 0 ||
        gcs_view_check_resources((const gcs_res_entry *const *)spec->required_placement_resources,
                                 spec->n_required_placement_resources, "required_placement_resources", err,
                                 errlen) < 0)
        return RC_EINVAL;
    const Ray__Rpc__SchedulingStrategy *st = spec->scheduling_strategy;
    if (st && st->scheduling_strategy_case ==
                  RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY) {
        const Ray__Rpc__PlacementGroupSchedulingStrategy *pg = st->placement_group_scheduling_strategy;
        if (pg->placement_group_id.len != RC_PG_ID_SIZE) {
            snprintf(err, errlen, "placement_group_scheduling_strategy.placement_group_id holds %zu bytes; a "
                                  "placement group ID has %d",
                     pg->placement_group_id.len, RC_PG_ID_SIZE);
            return RC_EINVAL;
        }
        if (pg->placement_group_bundle_index < -1) {
            snprintf(err, errlen, "placement_group_bundle_index is %lld; it must be -1 (any bundle) or >= 0",
                     (long long)pg->placement_group_bundle_index);
            return RC_EINVAL;
        }
        return 0;
    }
    /* Everything else must make a valid scheduler request (resources interned are names
     * the cluster may well have). */
    gcs_sched_req req;
    int rc = gcs_view_build_request(am->gcs->view, NULL, 0, spec->label_selector, st, spec->rayc_extras, &req, err,
                                    errlen);
    gcs_sched_req_clear(&req);
    return rc;
}

/* Ray's label_selector map of the record: key -> "v", "in(a,b)", "!v" or "!in(a,b)". */
static void gcs__selector_map(const Ray__Rpc__LabelSelector *ls, Ray__Rpc__ActorTableData__LabelSelectorEntry *items,
                              Ray__Rpc__ActorTableData__LabelSelectorEntry **ptrs, rc_buf *texts, size_t *n)
{
    *n = 0;
    for (size_t i = 0; ls && i < ls->n_label_constraints; i++) {
        const Ray__Rpc__LabelSelectorConstraint *k = ls->label_constraints[i];
        rc_buf *t = &texts[i];
        int neg = k->operator_ == RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_NOT_IN;
        rc_buf_puts(t, neg ? "!" : "");
        if (k->n_label_values == 1) {
            rc_buf_puts(t, k->label_values[0]);
        } else {
            rc_buf_puts(t, "in(");
            for (size_t j = 0; j < k->n_label_values; j++)
                rc_buf_printf(t, "%s%s", j ? "," : "", k->label_values[j]);
            rc_buf_putc(t, ')');
        }
        ray__rpc__actor_table_data__label_selector_entry__init(&items[*n]);
        items[*n].key = k->label_key;
        items[*n].value = (char *)rc_buf_cstr(t);
        ptrs[*n] = &items[*n];
        (*n)++;
    }
}

typedef struct gcs__register {
    gcs_actor *a;
    rpc_call *call;
} gcs__register;

static void gcs__spec_written(int rc, int64_t added, void *arg)
{
    gcs__register *r = arg;
    gcs_actor *a = r->a;
    (void)added;
    if (rc < 0) {
        char hex[RC_ID_HEX_MAX];
        Ray__Rpc__RegisterActorReply reply = RAY__RPC__REGISTER_ACTOR_REPLY__INIT;
        gcs__reply(r->call, &reply.base, GCS_STATUS_IO_ERROR, "cannot store the creation task of actor %s: %s",
                   gcs__hex(a->id, hex), rc_strerror(rc));
    } else {
        gcs_actor__write(a, r->call);
    }
    gcs_actor__unref(a);
    rc_free(r);
}

static void handle_register_actor(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__RegisterActorRequest *req = (const void *)request;
    Ray__Rpc__RegisterActorReply reply = RAY__RPC__REGISTER_ACTOR_REPLY__INIT;
    const Ray__Rpc__TaskSpec *spec = req->task_spec;
    char err[600];
    if (gcs__check_spec(am, spec, err, sizeof(err)) < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "RegisterActor: %s", err);
    const Ray__Rpc__ActorCreationTaskSpec *cs = spec->actor_creation_task_spec;
    if (rc_map_get(&am->actors, cs->actor_id.data, RC_ACTOR_ID_SIZE))
        return gcs__reply_ok(call, &reply.base); /* registered already: the owner retried */
    if (cs->name && cs->name[0]) {
        rc_buf key = RC_BUF_INIT;
        gcs_actor__name_key(cs->ray_namespace, cs->name, &key);
        gcs_actor *taken = rc_map_get(&am->named, key.data, key.len);
        rc_buf_free(&key);
        if (taken) {
            char hex[RC_ID_HEX_MAX];
            return gcs__reply(call, &reply.base, GCS_STATUS_ALREADY_EXISTS,
                              "an actor named '%s' already exists in namespace '%s' (actor %s, %s); names are unique "
                              "per namespace while their actor lives",
                              cs->name, cs->ray_namespace, gcs__hex(taken->id, hex),
                              gcs_actor__state_name(taken->data->state));
        }
    }
    Ray__Rpc__ActorTableData__LabelSelectorEntry items[64], *ptrs[64];
    rc_buf texts[64];
    memset(texts, 0, sizeof(texts));
    const Ray__Rpc__LabelSelector *ls = spec->label_selector;
    if (ls && ls->n_label_constraints > 64)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "RegisterActor: label_selector has %zu constraints; at most 64", ls->n_label_constraints);
    size_t n_sel;
    gcs__selector_map(ls, items, ptrs, texts, &n_sel);
    gcs__record d;
    ray__rpc__actor_table_data__init(&d);
    d.actor_id = cs->actor_id;
    d.parent_id = spec->parent_task_id;
    d.job_id = spec->job_id;
    d.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEPENDENCIES_UNREADY;
    d.max_restarts = cs->max_actor_restarts;
    d.owner_address = spec->caller_address;
    d.is_detached = cs->is_detached;
    d.name = cs->name;
    d.timestamp = (double)rc_wall_ms();
    d.function_descriptor = spec->function_descriptor;
    d.ray_namespace = cs->ray_namespace;
    d.class_name = (char *)gcs__class_name(spec);
    d.n_required_resources = spec->n_required_resources;
    d.required_resources = (Ray__Rpc__ActorTableData__RequiredResourcesEntry **)spec->required_resources;
    d.n_label_selector = n_sel;
    d.label_selector = ptrs;
    const Ray__Rpc__SchedulingStrategy *st = spec->scheduling_strategy;
    if (st && st->scheduling_strategy_case ==
                  RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY) {
        d._placement_group_id_case = RAY__RPC__ACTOR_TABLE_DATA___PLACEMENT_GROUP_ID_PLACEMENT_GROUP_ID;
        d.placement_group_id = st->placement_group_scheduling_strategy->placement_group_id;
    }
    gcs__record *data = (gcs__record *)rpc_msg_dup(&d.base);
    for (size_t i = 0; i < n_sel; i++)
        rc_buf_free(&texts[i]);
    gcs_actor *a = gcs_actor__new(am, (Ray__Rpc__TaskSpec *)rpc_msg_dup(&spec->base), data);
    char hex[RC_ID_HEX_MAX];
    RC_INFO("gcs: actor %s (%s%s%s) registered", gcs__hex(a->id, hex), a->data->class_name,
            a->data->name[0] ? ", named " : "", a->data->name);
    gcs__register *r = RC_NEW(gcs__register);
    r->a = a;
    r->call = call;
    gcs_actor__ref(a);
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&a->spec->base, &len);
    gcs_store *store = am->gcs->store;
    int rc = store->ops->put(store, GCS_TABLE_ACTOR_TASK_SPEC, a->id, RC_ACTOR_ID_SIZE, bytes, len, 1,
                             gcs__spec_written, r);
    rc_free(bytes);
    if (rc < 0)
        gcs__spec_written(rc, 0, r);
}

/* ---- CreateActor -------------------------------------------------------------------- */

static void gcs__held_cancelled(rpc_call *call, void *arg)
{
    gcs_actor_held *h = arg;
    gcs_actor *a = h->a;
    for (gcs_actor_held **p = &a->held; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            break;
        }
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "CreateActor cancelled");
    rc_free(h);
    gcs_actor__unref(a);
}

static void gcs__hold(gcs_actor *a, rpc_call *call)
{
    gcs_actor_held *h = RC_NEW(gcs_actor_held);
    h->a = a;
    h->call = call;
    h->next = a->held;
    a->held = h;
    gcs_actor__ref(a);
    rpc_call_on_cancel(call, gcs__held_cancelled, h);
}

static void handle_create_actor(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__CreateActorRequest *req = (const void *)request;
    Ray__Rpc__CreateActorReply reply = RAY__RPC__CREATE_ACTOR_REPLY__INIT;
    const Ray__Rpc__TaskSpec *spec = req->task_spec;
    if (!spec || !spec->actor_creation_task_spec || spec->actor_creation_task_spec->actor_id.len != RC_ACTOR_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "CreateActor: task_spec.actor_creation_task_spec.actor_id must hold %d bytes",
                          RC_ACTOR_ID_SIZE);
    gcs_actor *a = rc_map_get(&am->actors, spec->actor_creation_task_spec->actor_id.data, RC_ACTOR_ID_SIZE);
    char hex[RC_ID_HEX_MAX];
    if (!a)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND,
                          "actor %s is not registered (RegisterActor first)",
                          gcs__hex(spec->actor_creation_task_spec->actor_id.data, hex));
    switch (a->data->state) {
    case RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE:
    case RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD:
        if (a->writes)
            return gcs__hold(a, call); /* answered once what it says is stored */
        return gcs_actor__answer_create(call, a->data);
    case RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEPENDENCIES_UNREADY: {
        gcs__hold(a, call);
        gcs__record d = *a->data;
        d.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__PENDING_CREATION;
        d.timestamp = (double)rc_wall_ms();
        gcs_actor__set_record(a, &d);
        gcs_actor__ref(a);
        gcs_actor__write(a, NULL);
        if (gcs_actor__live(a))
            gcs_actor_sched_queue(a, 0);
        gcs_actor__unref(a);
        return;
    }
    default: /* PENDING_CREATION, RESTARTING: the owner asks again */
        return gcs__hold(a, call);
    }
}

/* ---- queries ------------------------------------------------------------------------ */

static gcs_actor *gcs__find(gcs_actor_manager *am, const ProtobufCBinaryData *id)
{
    return id->len == RC_ACTOR_ID_SIZE ? rc_map_get(&am->actors, id->data, RC_ACTOR_ID_SIZE) : NULL;
}

static gcs_actor *gcs__find_named(gcs_actor_manager *am, const char *ns, const char *name)
{
    rc_buf key = RC_BUF_INIT;
    gcs_actor__name_key(ns, name, &key);
    gcs_actor *a = rc_map_get(&am->named, key.data, key.len);
    rc_buf_free(&key);
    return a;
}

static void handle_get_actor_info(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__GetActorInfoRequest *req = (const void *)request;
    Ray__Rpc__GetActorInfoReply reply = RAY__RPC__GET_ACTOR_INFO_REPLY__INIT;
    gcs_actor *a;
    if (req->actor_id.len) {
        if (req->actor_id.len != RC_ACTOR_ID_SIZE)
            return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "actor_id must hold %d bytes",
                              RC_ACTOR_ID_SIZE);
        a = gcs__find(am, &req->actor_id);
    } else if (req->name && req->name[0]) {
        a = gcs__find_named(am, "", req->name);
    } else {
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "give an actor_id or a name");
    }
    if (!a) {
        char hex[RC_ID_HEX_MAX] = "";
        if (req->actor_id.len)
            gcs__hex(req->actor_id.data, hex);
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "no actor %s%s", hex,
                          req->actor_id.len ? "" : req->name);
    }
    reply.actor_table_data = a->data;
    gcs__reply_ok(call, &reply.base);
}

static void handle_get_named_actor_info(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__GetNamedActorInfoRequest *req = (const void *)request;
    Ray__Rpc__GetNamedActorInfoReply reply = RAY__RPC__GET_NAMED_ACTOR_INFO_REPLY__INIT;
    if (!req->name || !req->name[0])
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "name is empty");
    gcs_actor *a = gcs__find_named(am, req->ray_namespace, req->name);
    if (!a)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "no live actor named '%s' in namespace '%s'",
                          req->name, req->ray_namespace ? req->ray_namespace : "");
    reply.actor_table_data = a->data;
    reply.task_spec = a->spec;
    gcs__reply_ok(call, &reply.base);
}

static void handle_list_named_actors(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__ListNamedActorsRequest *req = (const void *)request;
    Ray__Rpc__ListNamedActorsReply reply = RAY__RPC__LIST_NAMED_ACTORS_REPLY__INIT;
    size_t cap = rc_map_size(&am->named);
    Ray__Rpc__NamedActorInfo *items = rc_calloc(cap ? cap : 1, sizeof(*items));
    Ray__Rpc__NamedActorInfo **ptrs = rc_calloc(cap ? cap : 1, sizeof(*ptrs));
    size_t n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    const char *ns = req->ray_namespace ? req->ray_namespace : "";
    while (rc_map_next(&am->named, &it, NULL, NULL, &v)) {
        const gcs_actor *a = v;
        if (!req->all_namespaces && strcmp(a->data->ray_namespace, ns))
            continue;
        ray__rpc__named_actor_info__init(&items[n]);
        items[n].ray_namespace = a->data->ray_namespace;
        items[n].name = a->data->name;
        ptrs[n] = &items[n];
        n++;
    }
    reply.named_actors_list = ptrs;
    reply.n_named_actors_list = n;
    gcs__reply_ok(call, &reply.base);
    rc_free(ptrs);
    rc_free(items);
}

static int gcs__matches(const Ray__Rpc__GetAllActorInfoRequest__Filters *f, const gcs_actor *a)
{
    if (!f)
        return 1;
    if (f->_actor_id_case == RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___ACTOR_ID_ACTOR_ID &&
        (f->actor_id.len != RC_ACTOR_ID_SIZE || memcmp(f->actor_id.data, a->id, RC_ACTOR_ID_SIZE)))
        return 0;
    if (f->_job_id_case == RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___JOB_ID_JOB_ID &&
        (f->job_id.len != a->data->job_id.len || memcmp(f->job_id.data, a->data->job_id.data, f->job_id.len)))
        return 0;
    if (f->_state_case == RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST__FILTERS___STATE_STATE && f->state != a->data->state)
        return 0;
    return 1;
}

static void handle_get_all_actor_info(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__GetAllActorInfoRequest *req = (const void *)request;
    Ray__Rpc__GetAllActorInfoReply reply = RAY__RPC__GET_ALL_ACTOR_INFO_REPLY__INIT;
    int has_limit = req->_limit_case == RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST___LIMIT_LIMIT;
    if (has_limit && req->limit < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID, "limit must be non-negative");
    const Ray__Rpc__GetAllActorInfoRequest__Filters *f =
        req->_filters_case == RAY__RPC__GET_ALL_ACTOR_INFO_REQUEST___FILTERS_FILTERS ? req->filters : NULL;
    /* One actor by ID needs no scan. */
    size_t total = rc_map_size(&am->actors);
    Ray__Rpc__ActorTableData **list = rc_malloc((total ? total : 1) * sizeof(*list));
    size_t n = 0, filtered = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&am->actors, &it, NULL, NULL, &v)) {
        const gcs_actor *a = v;
        if (!gcs__matches(f, a)) {
            filtered++;
            continue;
        }
        if (!has_limit || (int64_t)n < req->limit)
            list[n++] = a->data;
    }
    reply.actor_table_data = list;
    reply.n_actor_table_data = n;
    reply.total = (int64_t)total;
    reply.num_filtered = (int64_t)filtered;
    gcs__reply_ok(call, &reply.base);
    rc_free(list);
}

/* ---- kills -------------------------------------------------------------------------- */

static void handle_kill_actor(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__KillActorViaGcsRequest *req = (const void *)request;
    Ray__Rpc__KillActorViaGcsReply reply = RAY__RPC__KILL_ACTOR_VIA_GCS_REPLY__INIT;
    if (req->actor_id.len != RC_ACTOR_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "actor_id must hold %d bytes",
                          RC_ACTOR_ID_SIZE);
    gcs_actor *a = gcs__find(am, &req->actor_id);
    char hex[RC_ID_HEX_MAX];
    if (!a)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "no actor %s", gcs__hex(req->actor_id.data, hex));
    if (!gcs_actor__live(a) ||
        (!req->no_restart && a->data->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEPENDENCIES_UNREADY))
        return gcs__reply_ok(call, &reply.base); /* nothing runs yet that could be restarted */
    gcs_actor__ref(a);
    gcs_actor__stop(a, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__RAY_KILL,
                    req->no_restart ? "the actor was killed (rayc_actor_kill / ray.kill, no_restart)"
                                    : "the actor was killed (rayc_actor_kill / ray.kill)",
                    !req->no_restart, req->force_kill ? GCS_KILL_FORCE : GCS_KILL_GRACEFUL);
    gcs_actor__unref(a);
    gcs__reply_ok(call, &reply.base);
}

static void handle_out_of_scope(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_actor_manager *am = arg;
    const Ray__Rpc__ReportActorOutOfScopeRequest *req = (const void *)request;
    Ray__Rpc__ReportActorOutOfScopeReply reply = RAY__RPC__REPORT_ACTOR_OUT_OF_SCOPE_REPLY__INIT;
    if (req->actor_id.len != RC_ACTOR_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "actor_id must hold %d bytes",
                          RC_ACTOR_ID_SIZE);
    gcs_actor *a = gcs__find(am, &req->actor_id);
    if (a && gcs_actor__live(a) && !a->data->is_detached)
        gcs_actor__stop(a, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OUT_OF_SCOPE,
                        "the actor went out of scope: its owner released every handle to it", 0, GCS_KILL_GRACEFUL);
    gcs__reply_ok(call, &reply.base);
}

const rpc_method_handler gcs_actor_handlers[] = {
    {"RegisterActor", handle_register_actor},
    {"CreateActor", handle_create_actor},
    {"GetActorInfo", handle_get_actor_info},
    {"GetNamedActorInfo", handle_get_named_actor_info},
    {"ListNamedActors", handle_list_named_actors},
    {"GetAllActorInfo", handle_get_all_actor_info},
    {"KillActorViaGcs", handle_kill_actor},
    {"ReportActorOutOfScope", handle_out_of_scope},
    {NULL, NULL},
};
