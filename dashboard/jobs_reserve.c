/*
 * jobs_reserve: the resources an entrypoint asked for (entrypoint_num_cpus, _num_gpus,
 * _memory, _resources), reserved on the head node while it runs. See jobs.h and below.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_json.h"
#include "rc_log.h"
#include "rc_time.h"

/* ---- the entrypoint's reservation ---------------------------------------------------------
 *
 * A job that asks for entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory or
 * entrypoint_resources gets them reserved on the head node (where rayc runs every
 * entrypoint) before its entrypoint starts, and keeps them until it ends, as Ray's job
 * supervisor actor holds them for its driver. The reservation is a placement group of one
 * bundle, pinned to the head by the label selector ray.io/node-id=<head>:
 *   - the GCS places it with the same scheduler, two-phase commit and bookkeeping as every
 *     other group, so the reserved amounts show as used wherever resources are shown
 *     (`rayc status`, ray.available_resources(), the dashboard) and no task or actor outside
 *     the group can take them;
 *   - the GCS says why a group waits, and when it can never be placed (INFEASIBLE, with the
 *     scheduler's sentence), which is how a job that the head can never fit fails at once;
 *   - it outlives a restart of the GCS (the table is stored) and needs no process of its
 *     own. A worker lease from the head's raylet would hold a worker process for nothing,
 *     and a raylet ends the leases of owners it does not see, which the dashboard is not.
 * The group is detached (its life is the dashboard's decision) and named
 * JOBS_PG_PREFIX<submission_id>: the dashboard removes it when the job ends by any path
 * (jobs__set_status), and a dashboard that starts removes every group of that name that an
 * earlier one left (jobs_start), since it supervises no job yet.
 *
 * Phases: LOOKUP (asking the GCS which node is the head) -> CREATING (CreatePlacementGroup
 * in flight) -> WAITING (WaitPlacementGroupUntilReady held open, and GetPlacementGroup every
 * tick for what the wait does not say) -> HELD (the entrypoint runs) -> NONE (released). A
 * job still PENDING after RAY_JOB_START_TIMEOUT_SECONDS fails, as in Ray. Callbacks find
 * their job again by submission ID and group ID, so a job stopped or deleted meanwhile
 * leaves nothing behind: a group created for a job that no longer waits for it is removed.
 */
#define JOBS_PG_PREFIX "_rayc_job_entrypoint_"
#define JOBS_HEAD_LABEL "ray.io/node-id"

typedef struct jobs__pg_call {
    jobs *j;
    char *submission_id;
    uint8_t pg_id[RC_PG_ID_SIZE];
} jobs__pg_call;

static jobs__pg_call *jobs__pg_call_new(job *x)
{
    jobs__pg_call *c = RC_NEW(jobs__pg_call);
    c->j = x->owner;
    c->submission_id = rc_strdup(x->submission_id);
    memcpy(c->pg_id, x->pg_id, RC_PG_ID_SIZE);
    return c;
}

static void jobs__pg_call_free(jobs__pg_call *c)
{
    rc_free(c->submission_id);
    rc_free(c);
}

/* The job a reservation call was made for, if it still exists with that group. */
static job *jobs__pg_owner(const jobs__pg_call *c)
{
    for (job *x = c->j->list; x; x = x->next)
        if (!strcmp(x->submission_id, c->submission_id))
            return memcmp(x->pg_id, c->pg_id, RC_PG_ID_SIZE) ? NULL : x;
    return NULL;
}

/* Whether x asked for any resource above 0. */
int jobs__wants(const job *x)
{
    if ((x->has_cpus && x->num_cpus > 0) || (x->has_gpus && x->num_gpus > 0) || (x->has_memory && x->memory > 0))
        return 1;
    rc_json *r = NULL;
    char err[100];
    int any = 0;
    if (rc_json_parse(x->resources, strlen(x->resources), &r, err, sizeof(err)) == 0 && r->type == RC_JSON_OBJECT)
        for (size_t i = 0; i < r->n_items; i++)
            any |= r->items[i].type == RC_JSON_NUMBER && r->items[i].number > 0;
    rc_json_free(r);
    return any;
}

/* "entrypoint_num_cpus=2, entrypoint_resources={...}": what x asked for, for messages. */
static void jobs__wants_text(const job *x, rc_buf *b)
{
    const char *sep = "";
    if (x->has_cpus && x->num_cpus > 0) {
        rc_buf_printf(b, "%sentrypoint_num_cpus=%g", sep, x->num_cpus);
        sep = ", ";
    }
    if (x->has_gpus && x->num_gpus > 0) {
        rc_buf_printf(b, "%sentrypoint_num_gpus=%g", sep, x->num_gpus);
        sep = ", ";
    }
    if (x->has_memory && x->memory > 0) {
        rc_buf_printf(b, "%sentrypoint_memory=%.0f", sep, x->memory);
        sep = ", ";
    }
    if (strcmp(x->resources, "null") && strcmp(x->resources, "{}"))
        rc_buf_printf(b, "%sentrypoint_resources=%s", sep, x->resources);
}

/* Removes the groups on j's orphan list that no call is removing yet. */
static void jobs__on_removed(const rpc_status *status, ProtobufCMessage *reply, void *arg);

static void jobs__remove_orphans(jobs *j)
{
    for (jobs__orphan *o = j->orphans; o; o = o->next) {
        if (o->inflight)
            continue;
        Ray__Rpc__RemovePlacementGroupRequest req = RAY__RPC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
        req.placement_group_id.data = o->pg_id;
        req.placement_group_id.len = RC_PG_ID_SIZE;
        jobs__pg_call *c = RC_NEW(jobs__pg_call);
        c->j = j;
        memcpy(c->pg_id, o->pg_id, RC_PG_ID_SIZE);
        if (rpc_client_call(gcs_client_rpc(j->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                            "RemovePlacementGroup", &req.base, 10000, jobs__on_removed, c) == 0)
            o->inflight = 1;
        else
            rc_free(c); /* the next tick tries again */
    }
}

static void jobs__on_removed(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    jobs__pg_call *c = arg;
    jobs *j = c->j;
    const char *msg = NULL;
    int ok = status->code == 0 && gcs_reply_status(reply, &msg) == GCS_STATUS_OK;
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(c->pg_id, RC_PG_ID_SIZE, hex);
    for (jobs__orphan **pp = &j->orphans; *pp; pp = &(*pp)->next) {
        jobs__orphan *o = *pp;
        if (memcmp(o->pg_id, c->pg_id, RC_PG_ID_SIZE))
            continue;
        o->inflight = 0;
        if (ok) {
            *pp = o->next;
            rc_free(o);
            RC_INFO("dashboard: entrypoint reservation %s released", hex);
        } else {
            RC_WARN("dashboard: cannot remove the entrypoint reservation %s yet (%s); trying again", hex,
                    status->code ? (status->message ? status->message : "no answer") : (msg ? msg : "refused"));
        }
        break;
    }
    if (reply)
        rpc_msg_free(reply);
    rc_free(c);
}

/* Queues the removal of group id and starts it. */
static void jobs__forget_pg(jobs *j, const uint8_t *id)
{
    for (jobs__orphan *o = j->orphans; o; o = o->next)
        if (!memcmp(o->pg_id, id, RC_PG_ID_SIZE))
            return;
    jobs__orphan *o = RC_NEW(jobs__orphan);
    memcpy(o->pg_id, id, RC_PG_ID_SIZE);
    o->next = j->orphans;
    j->orphans = o;
    jobs__remove_orphans(j);
}

void jobs__release(job *x)
{
    int phase = x->pg_phase;
    x->pg_phase = JOBS_PG_NONE;
    /* LOOKUP: nothing exists yet. CREATING: the answer finds the job no longer waiting and
     * removes the group then. */
    if (phase == JOBS_PG_WAITING || phase == JOBS_PG_HELD)
        jobs__forget_pg(x->owner, x->pg_id);
}

static void jobs__reserve_failed(job *x, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void jobs__reserve_failed(job *x, const char *error_type, const char *fmt, ...)
{
    rc_buf m = RC_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    rc_buf_vprintf(&m, fmt, ap);
    va_end(ap);
    jobs__set_status(x, "FAILED", rc_buf_cstr(&m), error_type);
    rc_buf_free(&m);
}

static void jobs__wait_ready(job *x);

static void jobs__on_created(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    jobs__pg_call *c = arg;
    job *x = jobs__pg_owner(c);
    const char *msg = NULL;
    int gs = status->code == 0 ? gcs_reply_status(reply, &msg) : -1;
    if (!x || x->pg_phase != JOBS_PG_CREATING) {
        /* stopped or deleted meanwhile: whatever was made goes */
        jobs__forget_pg(c->j, c->pg_id);
    } else if (status->code != 0) {
        jobs__forget_pg(c->j, c->pg_id); /* it may have been made all the same */
        x->pg_phase = JOBS_PG_NONE;
        jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_START_FAILURE",
                             "Failed to reserve the entrypoint's resources: the GCS did not answer "
                             "CreatePlacementGroup: %s",
                             status->message ? status->message : "no answer");
    } else if (gs != GCS_STATUS_OK) {
        x->pg_phase = JOBS_PG_NONE;
        jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_START_FAILURE",
                             "Failed to reserve the entrypoint's resources: the GCS refused them: %s",
                             msg && *msg ? msg : "no reason given");
    } else {
        x->pg_phase = JOBS_PG_WAITING; /* the poll follows it */
        jobs__wait_ready(x);
    }
    if (reply)
        rpc_msg_free(reply);
    jobs__pg_call_free(c);
}

static Ray__Rpc__Bundle__UnitResourcesEntry *jobs__unit(Ray__Rpc__Bundle__UnitResourcesEntry *e, const char *key,
                                                        double value)
{
    ray__rpc__bundle__unit_resources_entry__init(e);
    e->key = (char *)key;
    e->value = value;
    return e;
}

/* Asks the GCS for x's group on the head node head_hex. */
static void jobs__create_pg(job *x, const char *head_hex)
{
    jobs *j = x->owner;
    rc_json *res = NULL;
    char err[100];
    if (rc_json_parse(x->resources, strlen(x->resources), &res, err, sizeof(err)) < 0 || res->type != RC_JSON_OBJECT) {
        rc_json_free(res);
        res = NULL;
    }
    size_t cap = 3 + (res ? res->n_items : 0), n = 0;
    Ray__Rpc__Bundle__UnitResourcesEntry *units = rc_calloc(cap, sizeof(*units));
    Ray__Rpc__Bundle__UnitResourcesEntry **unit_ptrs = rc_calloc(cap, sizeof(*unit_ptrs));
    if (x->has_cpus && x->num_cpus > 0)
        unit_ptrs[n] = jobs__unit(&units[n], "CPU", x->num_cpus), n++;
    if (x->has_gpus && x->num_gpus > 0)
        unit_ptrs[n] = jobs__unit(&units[n], "GPU", x->num_gpus), n++;
    if (x->has_memory && x->memory > 0)
        unit_ptrs[n] = jobs__unit(&units[n], "memory", x->memory), n++;
    for (size_t i = 0; res && i < res->n_items; i++)
        if (res->items[i].type == RC_JSON_NUMBER && res->items[i].number > 0)
            unit_ptrs[n] = jobs__unit(&units[n], res->items[i].key, res->items[i].number), n++;

    Ray__Rpc__Bundle__LabelSelectorEntry on_head = RAY__RPC__BUNDLE__LABEL_SELECTOR_ENTRY__INIT;
    Ray__Rpc__Bundle__LabelSelectorEntry *sel[1] = {&on_head};
    on_head.key = JOBS_HEAD_LABEL;
    on_head.value = (char *)head_hex;
    /* Ray's group IDs: 14 unique bytes, then the creator's job (none: Ray's nil job) */
    rc_id_random(x->pg_id, RC_PG_ID_SIZE - RC_JOB_ID_SIZE);
    memset(x->pg_id + RC_PG_ID_SIZE - RC_JOB_ID_SIZE, 0xff, RC_JOB_ID_SIZE);
    Ray__Rpc__Bundle__BundleIdentifier bid = RAY__RPC__BUNDLE__BUNDLE_IDENTIFIER__INIT;
    bid.placement_group_id.data = x->pg_id;
    bid.placement_group_id.len = RC_PG_ID_SIZE;
    bid.bundle_index = 0;
    Ray__Rpc__Bundle bundle = RAY__RPC__BUNDLE__INIT;
    Ray__Rpc__Bundle *bundles[1] = {&bundle};
    bundle.bundle_id = &bid;
    bundle.unit_resources = unit_ptrs;
    bundle.n_unit_resources = n;
    bundle.label_selector = sel;
    bundle.n_label_selector = 1;
    rc_buf name = RC_BUF_INIT;
    rc_buf_printf(&name, JOBS_PG_PREFIX "%s", x->submission_id);
    rc_buf_putc(&name, '\0');
    Ray__Rpc__PlacementGroupSpec spec = RAY__RPC__PLACEMENT_GROUP_SPEC__INIT;
    spec.placement_group_id = bid.placement_group_id;
    spec.name = name.data;
    spec.bundles = bundles;
    spec.n_bundles = 1;
    spec.strategy = RAY__RPC__PLACEMENT_STRATEGY__STRICT_PACK;
    spec.is_detached = 1;
    Ray__Rpc__CreatePlacementGroupRequest req = RAY__RPC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_spec = &spec;
    jobs__pg_call *c = jobs__pg_call_new(x);
    x->pg_phase = JOBS_PG_CREATING;
    if (rpc_client_call(gcs_client_rpc(j->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                        "CreatePlacementGroup", &req.base, 15000, jobs__on_created, c) < 0) {
        jobs__pg_call_free(c);
        x->pg_phase = JOBS_PG_NONE;
        jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_START_FAILURE",
                             "Failed to reserve the entrypoint's resources: cannot call the GCS");
    } else {
        char hex[RC_ID_HEX_MAX];
        RC_INFO("dashboard: job %s waits for its entrypoint's resources (placement group %s on the head node %s)",
                x->submission_id, rc_id_hex(x->pg_id, RC_PG_ID_SIZE, hex), head_hex);
    }
    rc_buf_free(&name);
    rc_free(unit_ptrs);
    rc_free(units);
    rc_json_free(res);
}

/* The head node's ID (hex) in a GetAllNodeInfo reply, or NULL. */
static const char *jobs__head_of(const Ray__Rpc__GetAllNodeInfoReply *r, char *hex)
{
    for (size_t i = 0; r && i < r->n_node_info_list; i++) {
        const Ray__Rpc__GcsNodeInfo *n = r->node_info_list[i];
        if (n->is_head_node && n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE &&
            n->node_id.len == RC_NODE_ID_SIZE)
            return rc_id_hex(n->node_id.data, RC_NODE_ID_SIZE, hex);
    }
    return NULL;
}

static void jobs__on_nodes(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    jobs__pg_call *c = arg;
    job *x = jobs__pg_owner(c);
    char hex[RC_ID_HEX_MAX];
    if (x && x->pg_phase == JOBS_PG_LOOKUP) {
        const char *head = status->code == 0 ? jobs__head_of((const void *)reply, hex) : NULL;
        if (status->code != 0) {
            x->pg_phase = JOBS_PG_NONE;
            jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_START_FAILURE",
                                 "Failed to reserve the entrypoint's resources: the GCS did not answer "
                                 "GetAllNodeInfo: %s",
                                 status->message ? status->message : "no answer");
        } else if (!head) {
            x->pg_phase = JOBS_PG_NONE;
            jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE",
                                 "Failed to reserve the entrypoint's resources: the cluster has no alive head node, "
                                 "where rayc runs entrypoints");
        } else {
            snprintf(x->node_id, sizeof(x->node_id), "%s", head);
            jobs__create_pg(x, head);
        }
    }
    if (reply)
        rpc_msg_free(reply);
    jobs__pg_call_free(c);
}

/* Starts reserving x's resources: it runs once they are reserved. */
void jobs__reserve(job *x)
{
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    memset(x->pg_id, 0, RC_PG_ID_SIZE);
    jobs__pg_call *c = jobs__pg_call_new(x);
    x->pg_phase = JOBS_PG_LOOKUP;
    if (rpc_client_call(gcs_client_rpc(x->owner->gcs), &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                        &req.base, 15000, jobs__on_nodes, c) < 0) {
        jobs__pg_call_free(c);
        x->pg_phase = JOBS_PG_NONE;
        jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_START_FAILURE",
                             "Failed to reserve the entrypoint's resources: cannot call the GCS");
    }
}

static void jobs__on_pg_state(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    jobs__pg_call *c = arg;
    job *x = jobs__pg_owner(c);
    if (x)
        x->pg_polling = 0;
    const char *why = NULL;
    int gs = status->code == 0 ? gcs_reply_status(reply, &why) : -1;
    const Ray__Rpc__PlacementGroupTableData *d =
        status->code == 0 ? ((const Ray__Rpc__GetPlacementGroupReply *)(const void *)reply)->placement_group_table_data
                          : NULL;
    if (x && x->pg_phase == JOBS_PG_WAITING) { /* an unanswered poll counts toward the timeout too */
        rc_buf asked = RC_BUF_INIT;
        jobs__wants_text(x, &asked);
        rc_buf_putc(&asked, '\0');
        if (gs == GCS_STATUS_NOT_FOUND ||
            (d && d->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED)) {
            x->pg_phase = JOBS_PG_NONE;
            jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_START_FAILURE",
                                 "The reservation of the entrypoint's resources (%s) was removed before the job "
                                 "started",
                                 asked.data);
        } else if (gs == GCS_STATUS_OK && d &&
                   d->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED) {
            x->pg_phase = JOBS_PG_HELD;
            RC_INFO("dashboard: job %s has its entrypoint's resources (%s)", x->submission_id, asked.data);
            jobs__launch(x->owner, x);
        } else if (gs == GCS_STATUS_OK && d && d->stats &&
                   d->stats->scheduling_state == RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE) {
            jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE",
                                 "The head node can never provide the entrypoint's resources (%s): %s. rayc runs "
                                 "every entrypoint on the head node; ask for less, or give the head more (`rayc "
                                 "status` shows what it has).",
                                 asked.data, why && *why ? why : "the scheduler found no way");
        } else if (rc_wall_ms() - x->start_time > x->owner->start_timeout_ms) {
            double s = (double)x->owner->start_timeout_ms / 1000.0;
            jobs__reserve_failed(x, "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",
                                 "Job supervisor actor failed to start within %.1f seconds. This timeout can be "
                                 "configured by setting the environment variable RAY_JOB_START_TIMEOUT_SECONDS. This "
                                 "may be because the job entrypoint's specified resources (%s) aren't available on "
                                 "the head node%s%s. Try checking the cluster's available resources with `rayc "
                                 "status` and specifying fewer resources for the job entrypoint.",
                                 s, asked.data, why && *why ? ": " : "", why && *why ? why : "");
        }
        rc_buf_free(&asked);
    }
    if (reply)
        rpc_msg_free(reply);
    jobs__pg_call_free(c);
}

/* The GCS answers WaitPlacementGroupUntilReady once the group is placed: the entrypoint
 * starts then, not at the next poll. (The poll still follows the group: the wait says
 * nothing of a group that can never be placed, nor of the time it waited.) */
static void jobs__on_ready(const rpc_status *status, ProtobufCMessage *reply, void *arg)
{
    jobs__pg_call *c = arg;
    job *x = jobs__pg_owner(c);
    if (x)
        x->pg_waiting = 0;
    if (x && x->pg_phase == JOBS_PG_WAITING && status->code == 0 && gcs_reply_status(reply, NULL) == GCS_STATUS_OK) {
        x->pg_phase = JOBS_PG_HELD;
        RC_INFO("dashboard: job %s has its entrypoint's resources", x->submission_id);
        jobs__launch(x->owner, x);
    }
    if (reply)
        rpc_msg_free(reply);
    jobs__pg_call_free(c);
}

static void jobs__wait_ready(job *x)
{
    if (x->pg_waiting)
        return;
    Ray__Rpc__WaitPlacementGroupUntilReadyRequest req = RAY__RPC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
    req.placement_group_id.data = x->pg_id;
    req.placement_group_id.len = RC_PG_ID_SIZE;
    jobs__pg_call *c = jobs__pg_call_new(x);
    /* a long poll: ended by the group's placement or removal, else renewed at a tick */
    if (rpc_client_call(gcs_client_rpc(x->owner->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                        "WaitPlacementGroupUntilReady", &req.base, 60000, jobs__on_ready, c) == 0)
        x->pg_waiting = 1;
    else
        jobs__pg_call_free(c);
}

/* One tick: follows the groups being placed and retries removals. */
void jobs__poll_reservations(jobs *j)
{
    for (job *x = j->list; x; x = x->next) {
        if (x->pg_phase == JOBS_PG_WAITING)
            jobs__wait_ready(x);
        if (x->pg_phase != JOBS_PG_WAITING || x->pg_polling)
            continue;
        Ray__Rpc__GetPlacementGroupRequest req = RAY__RPC__GET_PLACEMENT_GROUP_REQUEST__INIT;
        req.placement_group_id.data = x->pg_id;
        req.placement_group_id.len = RC_PG_ID_SIZE;
        jobs__pg_call *c = jobs__pg_call_new(x);
        if (rpc_client_call(gcs_client_rpc(j->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                            "GetPlacementGroup", &req.base, 5000, jobs__on_pg_state, c) == 0)
            x->pg_polling = 1;
        else
            jobs__pg_call_free(c);
    }
    jobs__remove_orphans(j);
}

/* A starting dashboard supervises no job: every group an earlier one left goes. Synchronous
 * (before the loop runs); the removals themselves run once it does. */
void jobs__collect_orphans(jobs *j)
{
    Ray__Rpc__GetAllPlacementGroupRequest req = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char err[300];
    if (rpc_client_call_sync(gcs_client_rpc(j->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                             "GetAllPlacementGroup", &req.base, 15000, &reply, err, sizeof(err)) != 0) {
        RC_WARN("dashboard: cannot list placement groups to release entrypoint reservations left behind: %s", err);
        return;
    }
    const Ray__Rpc__GetAllPlacementGroupReply *r = (const void *)reply;
    size_t n = 0;
    for (size_t i = 0; i < r->n_placement_group_table_data; i++) {
        const Ray__Rpc__PlacementGroupTableData *d = r->placement_group_table_data[i];
        if (!d->name || strncmp(d->name, JOBS_PG_PREFIX, strlen(JOBS_PG_PREFIX)) ||
            d->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED ||
            d->placement_group_id.len != RC_PG_ID_SIZE)
            continue;
        RC_INFO("dashboard: releasing %s, left by an earlier dashboard", d->name);
        jobs__orphan *o = RC_NEW(jobs__orphan);
        memcpy(o->pg_id, d->placement_group_id.data, RC_PG_ID_SIZE);
        o->next = j->orphans;
        j->orphans = o;
        n++;
    }
    rpc_msg_free(reply);
    if (n)
        jobs__remove_orphans(j);
}

void jobs__release_all(jobs *j, int64_t timeout_ms)
{
    for (job *x = j->list; x; x = x->next)
        jobs__release(x);
    /* The answers arrive through the loop: turn it until they have, or time is up. */
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (j->orphans && rc_mono_ms() < deadline) {
        uv_run(j->loop, UV_RUN_NOWAIT);
        rc_sleep_ms(10);
    }
    if (j->orphans)
        RC_WARN("dashboard: some entrypoint reservations are not released yet; the next dashboard removes them");
}
