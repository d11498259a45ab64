/*
 * Placement groups from the job's side (docs/actors.md): rayc_pg_create builds Ray's
 * PlacementGroupSpec and hands it to the GCS, which reserves the bundles on raylets with its
 * two-phase protocol; rayc_pg_wait holds a WaitPlacementGroupUntilReady call open until the
 * group is placed or the caller's deadline passes; rayc_pg_remove gives the bundles back.
 *
 * Creating an unnamed group and removing a group do not wait for the GCS (Ray waits for
 * both): the loop thread keeps, per group with a call in flight, what this process asked,
 * so that its own later calls see them in order: a wait or remove sent before the create
 * was answered is held until it is; a wait after a remove answers "removed" at once; a
 * create the GCS refused makes the waits fail with its reason. A named group is created
 * synchronously, so that a taken name is an error of rayc_pg_create.
 *
 * Tasks and actors use a group through their options (core_task_build_with renames their
 * resources to the bundle's: CPU_group_<i>_<pg>).
 *
 * API functions: user threads; the rest: the loop thread.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core_int.h"
#include "gcs_service.pb-c.h"
#include "rayc_sched.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"
#include "sched_proto.h"

/* ---- building the spec ------------------------------------------------------------------ */

static int core__bad_amount(double v)
{
    return !isfinite(v) || v < 0 || v > 1e12;
}

static Ray__Rpc__Bundle__UnitResourcesEntry *core__unit(const char *name, double amount)
{
    Ray__Rpc__Bundle__UnitResourcesEntry *e = rc_malloc(sizeof(*e));
    ray__rpc__bundle__unit_resources_entry__init(e);
    e->key = rc_strdup(name);
    e->value = amount;
    return e;
}

/* Ray's bundle_label_selector is a map from label key to a value expression: "v", "!v",
 * "in(a,b)", "!in(a,b)". The text form is the one tasks take ("region: in(us,eu)"). */
static int core__bundle_selector(Ray__Rpc__Bundle *b, size_t index, const char *text)
{
    sched_selector *sel;
    sched_err err;
    if (sched_selector_parse(text, &sel, &err) < 0)
        return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu: bad label_selector: %s", index, err.msg);
    size_t n = sched_selector_count(sel);
    b->label_selector = rc_calloc(n ? n : 1, sizeof(*b->label_selector));
    for (size_t i = 0; i < n; i++) {
        const char *key;
        sched_label_op op;
        const char *const *values;
        size_t nv;
        sched_selector_constraint(sel, i, &key, &op, &values, &nv);
        for (size_t k = 0; k < b->n_label_selector; k++) {
            if (!strcmp(b->label_selector[k]->key, key)) {
                sched_selector_free(sel);
                return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu: label '%s' appears twice in its selector",
                                  index, key);
            }
        }
        rc_buf v = RC_BUF_INIT;
        if (op == SCHED_LABEL_NOT_IN)
            rc_buf_puts(&v, "!");
        if (nv != 1)
            rc_buf_puts(&v, "in(");
        for (size_t k = 0; k < nv; k++) {
            if (k)
                rc_buf_puts(&v, ",");
            rc_buf_puts(&v, values[k]);
        }
        if (nv != 1)
            rc_buf_puts(&v, ")");
        Ray__Rpc__Bundle__LabelSelectorEntry *e = rc_malloc(sizeof(*e));
        ray__rpc__bundle__label_selector_entry__init(e);
        e->key = rc_strdup(key);
        e->value = rc_buf_detach(&v);
        b->label_selector[b->n_label_selector++] = e;
    }
    sched_selector_free(sel);
    return 0;
}

static int core__build_bundle(Ray__Rpc__Bundle *b, size_t index, const rayc_bundle *in, const uint8_t *pg_id)
{
    ray__rpc__bundle__init(b);
    b->bundle_id = rc_malloc(sizeof(*b->bundle_id));
    ray__rpc__bundle__bundle_identifier__init(b->bundle_id);
    b->bundle_id->placement_group_id.data = rc_memdup(pg_id, RAYC_PG_ID_SIZE);
    b->bundle_id->placement_group_id.len = RAYC_PG_ID_SIZE;
    b->bundle_id->bundle_index = (int32_t)index;
    if (in->n_resources > RAYC_MAX_TASK_RESOURCES)
        return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu: at most %d custom resources", index,
                          RAYC_MAX_TASK_RESOURCES);
    if (core__bad_amount(in->num_cpus) || core__bad_amount(in->num_gpus))
        return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu: num_cpus and num_gpus must be finite and >= 0",
                          index);
    if (in->num_gpus > 1 && in->num_gpus != floor(in->num_gpus))
        return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu: num_gpus above 1 must be whole, not %g", index,
                          in->num_gpus);
    b->unit_resources = rc_calloc(RAYC_MAX_TASK_RESOURCES + 2, sizeof(*b->unit_resources));
    if (in->num_cpus > 0)
        b->unit_resources[b->n_unit_resources++] = core__unit("CPU", in->num_cpus);
    if (in->num_gpus > 0)
        b->unit_resources[b->n_unit_resources++] = core__unit("GPU", in->num_gpus);
    for (size_t i = 0; i < in->n_resources; i++) {
        const char *name = in->resources[i].name;
        if (!name || !*name || !strcmp(name, "CPU") || !strcmp(name, "GPU") || sched_bundle_name_reserved(name))
            return core_fail(RC_EINVAL,
                              "rayc_pg_create: bundle %zu: resource '%s' is not a custom resource (use num_cpus, "
                              "num_gpus; '_group_' names are reserved)",
                              index, name ? name : "");
        if (core__bad_amount(in->resources[i].amount))
            return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu: resource '%s' must be finite and >= 0", index,
                              name);
        for (size_t k = 0; k < b->n_unit_resources; k++)
            if (!strcmp(b->unit_resources[k]->key, name))
                return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu: resource '%s' appears twice", index, name);
        if (in->resources[i].amount > 0)
            b->unit_resources[b->n_unit_resources++] = core__unit(name, in->resources[i].amount);
    }
    if (b->n_unit_resources == 0) /* Ray refuses empty bundles too */
        return core_fail(RC_EINVAL, "rayc_pg_create: bundle %zu asks for nothing (every amount is 0)", index);
    if (in->label_selector && *in->label_selector)
        return core__bundle_selector(b, index, in->label_selector);
    return 0;
}

/* ---- the loop thread's view of this process's groups ------------------------------------- */

/* How long a group this process saw placed counts as placed for its rayc_pg_wait without
 * asking the GCS again (any answer is that old by the time it arrives anyway). */
enum { CORE_PG_READY_FRESH_MS = 1000 };

/* A group this process created or removes, while something about it is in flight or was
 * just learned. After its create is answered, one WaitPlacementGroupUntilReady is kept
 * open (the watch), so that waits are answered without a round trip each. */
typedef struct core_pg_entry {
    uint8_t id[RAYC_PG_ID_SIZE];
    int creating;          /* CreatePlacementGroup sent, not answered */
    int watching;          /* the watch is open */
    int removing;          /* RemovePlacementGroup asked (sent once the create is answered) */
    int64_t ready_at_ms;   /* the watch said placed at this time (0: not known) */
    int64_t settled_at_ms; /* when nothing was in flight any more (for the sweep) */
    char *create_error;    /* the GCS refused the create: its reason */
    struct core__pg_op *held; /* waits for the create's answer or the watch's */
} core_pg_entry;

/* A call of the API handed to the loop thread. */
typedef struct core__pg_op {
    core_op op;
    uint8_t id[RAYC_PG_ID_SIZE];
    ProtobufCMessage *request; /* create: owned */
    int64_t timeout_ms;        /* wait */
    int64_t deadline_ms;       /* wait: when held, answered RC_ETIMEDOUT at this time */
    core_waiter *waiter;       /* wait: the user thread */
    int rc;                    /* wait: the result */
    char message[1024];
    struct core__pg_op *next;
} core__pg_op;

static core__pg_op *core__pg_op_new(void (*run)(core_worker *, core_op *), const uint8_t *id)
{
    core__pg_op *op = RC_NEW(core__pg_op);
    op->op.run = run;
    memcpy(op->id, id, RAYC_PG_ID_SIZE);
    return op;
}

static core_pg_entry *core__pg_entry(core_worker *cw, const uint8_t *id, int create)
{
    core_pg_entry *e = rc_map_get(&cw->pgs, id, RAYC_PG_ID_SIZE);
    if (e || !create)
        return e;
    e = RC_NEW(core_pg_entry);
    memcpy(e->id, id, RAYC_PG_ID_SIZE);
    rc_map_put(&cw->pgs, e->id, RAYC_PG_ID_SIZE, e);
    return e;
}

static int core__pg_busy(const core_pg_entry *e)
{
    return e->creating || e->watching || e->removing || e->held;
}

/* Forgets e once nothing is in flight and what it learned is no longer fresh (the sweep,
 * core_pg_tick, takes those it leaves). */
static void core__pg_entry_done(core_worker *cw, core_pg_entry *e)
{
    if (core__pg_busy(e))
        return;
    int64_t now = rc_mono_ms();
    if (!e->settled_at_ms)
        e->settled_at_ms = now;
    if ((e->ready_at_ms && now - e->ready_at_ms <= CORE_PG_READY_FRESH_MS) ||
        (e->create_error && now - e->settled_at_ms <= 60000))
        return;
    rc_map_remove(&cw->pgs, e->id, RAYC_PG_ID_SIZE);
    rc_free(e->create_error);
    rc_free(e);
}

static void core__pg_timer(uv_timer_t *t)
{
    core_pg_tick(t->data);
}

/* Makes the deadline timer fire by deadline_ms (the earliest held wait's). */
void core_pg_arm(core_worker *cw, int64_t deadline_ms)
{
    int64_t now = rc_mono_ms(), due = deadline_ms > now ? deadline_ms - now : 0;
    if (uv_is_active((uv_handle_t *)&cw->pg_timer) && cw->pg_timer_due_ms <= deadline_ms)
        return;
    cw->pg_timer_due_ms = deadline_ms;
    uv_timer_start(&cw->pg_timer, core__pg_timer, (uint64_t)due, 0);
}

void core_pg_tick(core_worker *cw)
{
    int64_t next = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    int64_t now = rc_mono_ms();
    while (rc_map_next(&cw->pgs, &it, NULL, NULL, &v)) {
        core_pg_entry *e = v;
        /* Held waits whose deadline passed. */
        for (core__pg_op **p = &e->held; *p;) {
            core__pg_op *op = *p;
            if (op->deadline_ms && now >= op->deadline_ms) {
                *p = op->next;
                op->rc = RC_ETIMEDOUT;
                core_waiter_signal(op->waiter, RC_ETIMEDOUT);
            } else {
                if (op->deadline_ms && (!next || op->deadline_ms < next))
                    next = op->deadline_ms;
                p = &op->next;
            }
        }
        if (core__pg_busy(e))
            continue;
        if ((e->ready_at_ms && now - e->ready_at_ms <= CORE_PG_READY_FRESH_MS) ||
            (e->create_error && now - e->settled_at_ms <= 60000))
            continue;
        rc_map_iter_remove(&cw->pgs, &it);
        rc_free(e->create_error);
        rc_free(e);
    }
    if (next && !cw->stopping) {
        uv_timer_stop(&cw->pg_timer);
        core_pg_arm(cw, next);
    }
}

static void core__send_wait(core_worker *cw, core__pg_op *op);
static void core__send_remove(core_worker *cw, core_pg_entry *e);
static void core__watch(core_worker *cw, core_pg_entry *e);

static void core__wait_finish(core__pg_op *op, int rc)
{
    op->rc = rc;
    core_waiter_signal(op->waiter, rc);
}

/* Answers what e knows for op, or holds it until e knows (1 if held). */
static int core__wait_local(core_worker *cw, core_pg_entry *e, core__pg_op *op)
{
    if (e->create_error) {
        snprintf(op->message, sizeof(op->message), "%s", e->create_error);
        core__wait_finish(op, RC_EINVAL);
    } else if (e->removing) {
        snprintf(op->message, sizeof(op->message), "the placement group was removed");
        core__wait_finish(op, RC_ENOENT);
    } else if (e->ready_at_ms && rc_mono_ms() - e->ready_at_ms <= CORE_PG_READY_FRESH_MS) {
        core__wait_finish(op, 0);
    } else if (e->creating || e->watching) {
        if (op->timeout_ms == 0) {
            core__wait_finish(op, RC_ETIMEDOUT);
            return 0;
        }
        op->deadline_ms = op->timeout_ms > 0 ? rc_mono_ms() + op->timeout_ms : 0;
        if (op->deadline_ms)
            core_pg_arm(cw, op->deadline_ms);
        core__pg_op **p = &e->held;
        while (*p)
            p = &(*p)->next;
        *p = op;
        return 1;
    } else {
        core__send_wait(cw, op);
    }
    return 0;
}

/* Answers every held wait from what e knows now (those it cannot answer ask the GCS). */
static void core__release_held(core_worker *cw, core_pg_entry *e)
{
    core__pg_op *held = e->held;
    e->held = NULL;
    while (held) {
        core__pg_op *op = held;
        held = op->next;
        op->next = NULL;
        if (op->deadline_ms) { /* what is left of its time */
            int64_t left = op->deadline_ms - rc_mono_ms();
            op->timeout_ms = left > 0 ? left : 0;
        }
        core__wait_local(cw, e, op);
    }
}

static void core__create_replied(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_worker *cw = core__cw;
    core_pg_entry *e = cw->stopping ? NULL : core__pg_entry(cw, arg, 0);
    rc_free(arg);
    const char *gmsg = "";
    int status = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, &gmsg) : -1;
    if (!e) {
        rpc_msg_free(reply);
        return;
    }
    e->creating = 0;
    if (status != GCS_STATUS_OK) {
        char text[800];
        snprintf(text, sizeof(text), "the GCS did not create the placement group: %s",
                 st->code == GRPC_STATUS_OK ? gmsg : st->message);
        e->create_error = rc_strdup(text);
        RC_WARN("core: %s", text);
    }
    rpc_msg_free(reply);
    if (e->removing && !e->create_error)
        core__send_remove(cw, e);
    else
        e->removing = 0;
    if (!e->create_error && !e->removing)
        core__watch(cw, e);
    core__release_held(cw, e);
    core__pg_entry_done(cw, e);
}

static void core__run_create(core_worker *cw, core_op *o)
{
    core__pg_op *op = (core__pg_op *)o;
    core_pg_entry *e = core__pg_entry(cw, op->id, 1);
    e->creating = 1;
    if (rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                        "CreatePlacementGroup", op->request, rc_cfg.gcs_rpc_timeout_ms, core__create_replied,
                        rc_memdup(op->id, RAYC_PG_ID_SIZE)) < 0) {
        rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot call the GCS"};
        core__create_replied(&st, NULL, rc_memdup(op->id, RAYC_PG_ID_SIZE));
    }
    rpc_msg_free(op->request);
    rc_free(op);
}

static void core__watched(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_worker *cw = core__cw;
    core_pg_entry *e = cw->stopping ? NULL : core__pg_entry(cw, arg, 0);
    rc_free(arg);
    int status = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, NULL) : -1;
    rpc_msg_free(reply);
    if (!e)
        return;
    e->watching = 0;
    if (status == GCS_STATUS_OK)
        e->ready_at_ms = rc_mono_ms();
    /* Otherwise (removed, the watch's own deadline, the GCS away) held waits ask the GCS. */
    core__release_held(cw, e);
    core__pg_entry_done(cw, e);
}

/* Keeps a WaitPlacementGroupUntilReady open for a group we created: its answer settles the
 * waits held on e. */
static void core__watch(core_worker *cw, core_pg_entry *e)
{
    Ray__Rpc__WaitPlacementGroupUntilReadyRequest req = RAY__RPC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
    req.placement_group_id.data = e->id;
    req.placement_group_id.len = RAYC_PG_ID_SIZE;
    /* Bounded, so that a group that never fits does not hold a call forever. */
    if (rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                        "WaitPlacementGroupUntilReady", &req.base, 10000, core__watched,
                        rc_memdup(e->id, RAYC_PG_ID_SIZE)) == 0)
        e->watching = 1;
}

static void core__wait_replied(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core__pg_op *op = arg;
    const char *gmsg = "";
    int status = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, &gmsg) : -1;
    int rc;
    if (status == GCS_STATUS_OK) {
        rc = 0;
    } else if (status == GCS_STATUS_NOT_FOUND) {
        snprintf(op->message, sizeof(op->message), "%s", gmsg && *gmsg ? gmsg : "the placement group was removed");
        rc = RC_ENOENT;
    } else if (st->code == GRPC_STATUS_DEADLINE_EXCEEDED) {
        rc = RC_ETIMEDOUT; /* the user thread asks why */
    } else if (st->code != GRPC_STATUS_OK) {
        snprintf(op->message, sizeof(op->message), "%s", st->message);
        rc = RC_EUNAVAIL;
    } else {
        snprintf(op->message, sizeof(op->message), "%s", gmsg);
        rc = RC_EINVAL;
    }
    rpc_msg_free(reply);
    core__wait_finish(op, rc);
}

static void core__send_wait(core_worker *cw, core__pg_op *op)
{
    Ray__Rpc__WaitPlacementGroupUntilReadyRequest req = RAY__RPC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
    req.placement_group_id.data = op->id;
    req.placement_group_id.len = RAYC_PG_ID_SIZE;
    /* The GCS answers once the group is placed (or removed); the deadline is the caller's. */
    if (rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                        "WaitPlacementGroupUntilReady", &req.base, op->timeout_ms < 0 ? -1 : op->timeout_ms,
                        core__wait_replied, op) < 0) {
        rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot call the GCS"};
        core__wait_replied(&st, NULL, op);
    }
}

static void core__run_wait(core_worker *cw, core_op *o)
{
    core__pg_op *op = (core__pg_op *)o;
    core_pg_entry *e = cw->stopping ? NULL : core__pg_entry(cw, op->id, 0);
    if (cw->stopping) {
        snprintf(op->message, sizeof(op->message), "the process is shutting down");
        core__wait_finish(op, RC_ESTATE);
    } else if (e) {
        core__wait_local(cw, e, op);
    } else {
        core__send_wait(cw, op);
    }
}

static void core__remove_replied(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_worker *cw = core__cw;
    const char *gmsg = "";
    int status = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, &gmsg) : -1;
    char hex[RC_ID_HEX_MAX];
    if (status != GCS_STATUS_OK && status != GCS_STATUS_NOT_FOUND && !cw->stopping)
        RC_WARN("core: removing placement group %s failed: %s", rc_id_hex(arg, RAYC_PG_ID_SIZE, hex),
                st->code == GRPC_STATUS_OK ? gmsg : st->message);
    rpc_msg_free(reply);
    core_pg_entry *e = cw->stopping ? NULL : core__pg_entry(cw, arg, 0);
    rc_free(arg);
    if (e) {
        e->removing = 0;
        e->ready_at_ms = 0;
        core__pg_entry_done(cw, e);
    }
}

static void core__send_remove(core_worker *cw, core_pg_entry *e)
{
    Ray__Rpc__RemovePlacementGroupRequest req = RAY__RPC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_id.data = e->id;
    req.placement_group_id.len = RAYC_PG_ID_SIZE;
    if (rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__placement_group_info_gcs_service__descriptor,
                        "RemovePlacementGroup", &req.base, rc_cfg.gcs_rpc_timeout_ms, core__remove_replied,
                        rc_memdup(e->id, RAYC_PG_ID_SIZE)) < 0) {
        rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot call the GCS"};
        core__remove_replied(&st, NULL, rc_memdup(e->id, RAYC_PG_ID_SIZE));
    }
}

static void core__run_remove(core_worker *cw, core_op *o)
{
    core__pg_op *op = (core__pg_op *)o;
    if (!cw->stopping) {
        core_pg_entry *e = core__pg_entry(cw, op->id, 1);
        int sent = e->removing;
        e->removing = 1;
        e->ready_at_ms = 0;
        if (e->create_error) { /* never created: nothing to remove */
            e->removing = 0;
        } else if (!e->creating && !sent) {
            core__send_remove(cw, e);
        }
        core__release_held(cw, e); /* waits held on the watch: removed */
        core__pg_entry_done(cw, e);
    }
    rc_free(op);
}

void core_pg_free_all(core_worker *cw)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->pgs, &it, NULL, NULL, &v)) {
        core_pg_entry *e = v;
        rc_map_iter_remove(&cw->pgs, &it);
        while (e->held) { /* nobody waits at stop (the API is not called during rayc_shutdown) */
            core__pg_op *op = e->held;
            e->held = op->next;
            snprintf(op->message, sizeof(op->message), "the process is shutting down");
            core__wait_finish(op, RC_ESTATE);
        }
        rc_free(e->create_error);
        rc_free(e);
    }
    rc_map_destroy(&cw->pgs, NULL);
}

int rayc_pg_create(const rayc_bundle *bundles, size_t n, rayc_pg_strategy strategy, const rayc_pg_options *opts,
                   rayc_pg *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_pg_create: call rayc_init first");
    if (!bundles || !n || !out)
        return core_fail(RC_EINVAL, "rayc_pg_create: at least one bundle and out are required");
    if (n > 10000)
        return core_fail(RC_EINVAL, "rayc_pg_create: at most 10000 bundles, not %zu", n);
    if (strategy < RAYC_PG_PACK || strategy > RAYC_PG_STRICT_SPREAD)
        return core_fail(RC_EINVAL, "rayc_pg_create: unknown strategy %d", (int)strategy);
    const char *name = opts && opts->name ? opts->name : "";
    if (strlen(name) > 1024)
        return core_fail(RC_EINVAL, "rayc_pg_create: the name is longer than 1024 bytes");

    uint8_t pg_id[RAYC_PG_ID_SIZE];
    rc_id_random(pg_id, RAYC_PG_ID_SIZE - RC_JOB_ID_SIZE); /* Ray: 14 unique bytes, then the job */
    memcpy(pg_id + RAYC_PG_ID_SIZE - RC_JOB_ID_SIZE, cw->job_id, RC_JOB_ID_SIZE);

    Ray__Rpc__PlacementGroupSpec spec = RAY__RPC__PLACEMENT_GROUP_SPEC__INIT;
    spec.placement_group_id.data = pg_id;
    spec.placement_group_id.len = RAYC_PG_ID_SIZE;
    spec.name = (char *)name;
    spec.strategy = (Ray__Rpc__PlacementStrategy)strategy;
    spec.creator_job_id.data = cw->job_id;
    spec.creator_job_id.len = RC_JOB_ID_SIZE;
    spec.is_detached = opts && opts->detached;
    Ray__Rpc__Bundle *storage = rc_calloc(n, sizeof(*storage));
    spec.bundles = rc_calloc(n, sizeof(*spec.bundles));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        spec.bundles[i] = &storage[i];
        spec.n_bundles = i + 1;
        rc = core__build_bundle(&storage[i], i, &bundles[i], pg_id);
    }
    if (rc == 0 && *name) {
        Ray__Rpc__CreatePlacementGroupRequest req = RAY__RPC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
        req.placement_group_spec = &spec;
        ProtobufCMessage *reply = NULL;
        char err[512] = "";
        int code = core_call_gcs_from_thread(cw, &ray__rpc__placement_group_info_gcs_service__descriptor,
                                             "CreatePlacementGroup", &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err,
                                             sizeof(err));
        const char *gmsg = "";
        int status = code == GRPC_STATUS_OK ? gcs_reply_status(reply, &gmsg) : -1;
        if (code != GRPC_STATUS_OK)
            rc = core_fail(RC_EUNAVAIL, "rayc_pg_create: %s", err);
        else if (status == GCS_STATUS_ALREADY_EXISTS)
            rc = core_fail(RC_EEXIST, "rayc_pg_create: %s", gmsg);
        else if (status != GCS_STATUS_OK)
            rc = core_fail(RC_EINVAL, "rayc_pg_create: %s", gmsg);
        rpc_msg_free(reply);
    } else if (rc == 0) {
        Ray__Rpc__CreatePlacementGroupRequest req = RAY__RPC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
        req.placement_group_spec = &spec;
        core__pg_op *op = core__pg_op_new(core__run_create, pg_id);
        op->request = rpc_msg_dup(&req.base);
        core_post(cw, &op->op);
    }
    /* The bundles' own fields were allocated; the spec and the array are on this frame. */
    for (size_t i = 0; i < spec.n_bundles; i++) {
        Ray__Rpc__Bundle *b = &storage[i];
        if (b->bundle_id) {
            rc_free(b->bundle_id->placement_group_id.data);
            rc_free(b->bundle_id);
        }
        for (size_t k = 0; k < b->n_unit_resources; k++) {
            rc_free(b->unit_resources[k]->key);
            rc_free(b->unit_resources[k]);
        }
        rc_free(b->unit_resources);
        for (size_t k = 0; k < b->n_label_selector; k++) {
            rc_free(b->label_selector[k]->key);
            rc_free(b->label_selector[k]->value);
            rc_free(b->label_selector[k]);
        }
        rc_free(b->label_selector);
    }
    rc_free(spec.bundles);
    rc_free(storage);
    if (rc == 0)
        memcpy(out->id, pg_id, RAYC_PG_ID_SIZE);
    return rc;
}

/* ---- waiting, looking, removing ---------------------------------------------------------- */

/* The group's record; NULL with *rc set when there is none or the GCS cannot say. */
static Ray__Rpc__GetPlacementGroupReply *core__pg_get(core_worker *cw, const rayc_pg *pg, int *rc)
{
    Ray__Rpc__GetPlacementGroupRequest req = RAY__RPC__GET_PLACEMENT_GROUP_REQUEST__INIT;
    req.placement_group_id.data = (uint8_t *)pg->id;
    req.placement_group_id.len = RAYC_PG_ID_SIZE;
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    int code = core_call_gcs_from_thread(cw, &ray__rpc__placement_group_info_gcs_service__descriptor,
                                         "GetPlacementGroup", &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err,
                                         sizeof(err));
    if (code != GRPC_STATUS_OK) {
        *rc = core_fail(RC_EUNAVAIL, "placement group: %s", err);
        return NULL;
    }
    Ray__Rpc__GetPlacementGroupReply *r = (Ray__Rpc__GetPlacementGroupReply *)reply;
    if (gcs_reply_status(reply, NULL) != GCS_STATUS_OK || !r->placement_group_table_data) {
        rpc_msg_free(reply);
        *rc = core_fail(RC_ENOENT, "placement group: the GCS has no such group");
        return NULL;
    }
    *rc = 0;
    return r;
}

/* Why a group is still pending, in words (for rayc_last_error after a timeout). */
static void core__pending_reason(const Ray__Rpc__PlacementGroupTableData *d, const char *sentence, char *out,
                                 size_t len)
{
    static const char *strategies[] = {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"};
    const char *why = "it is being scheduled";
    if (sentence && *sentence) {
        why = sentence; /* the scheduler's own explanation */
    } else if (d->stats) {
        switch (d->stats->scheduling_state) {
        case RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE:
            why = "no node of the cluster could ever hold its bundles with this strategy (it waits for nodes "
                  "that could)";
            break;
        case RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__NO_RESOURCES:
            why = "the nodes that could hold its bundles lack free resources now";
            break;
        case RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__FAILED_TO_COMMIT_RESOURCES:
            why = "a node failed while its bundles were being reserved (it is retried)";
            break;
        case RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__QUEUED:
            why = "it waits behind other groups";
            break;
        default:
            break;
        }
    }
    rc_buf b = RC_BUF_INIT;
    for (size_t i = 0; i < d->n_bundles && i < 8; i++) {
        const Ray__Rpc__Bundle *bu = d->bundles[i];
        rc_buf_printf(&b, "%s{", i ? ", " : "");
        for (size_t k = 0; k < bu->n_unit_resources; k++)
            rc_buf_printf(&b, "%s%s: %g", k ? ", " : "", bu->unit_resources[k]->key, bu->unit_resources[k]->value);
        rc_buf_puts(&b, "}");
    }
    if (d->n_bundles > 8)
        rc_buf_printf(&b, ", ... (%zu bundles)", d->n_bundles);
    snprintf(out, len, "%s placement group of [%s] is pending: %s",
             (unsigned)d->strategy < 4 ? strategies[d->strategy] : "?", rc_buf_cstr(&b), why);
    rc_buf_free(&b);
}

int rayc_pg_wait(const rayc_pg *pg, int64_t timeout_ms)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_pg_wait: call rayc_init first");
    if (!pg)
        return core_fail(RC_EINVAL, "rayc_pg_wait: pg is required");
    core_waiter w;
    core_waiter_init(&w);
    core__pg_op *op = core__pg_op_new(core__run_wait, pg->id);
    op->timeout_ms = timeout_ms;
    op->waiter = &w;
    core_post(cw, &op->op);
    int rc = core_waiter_wait(&w);
    core_waiter_destroy(&w);
    char message[1024];
    snprintf(message, sizeof(message), "%s", op->message);
    rc_free(op);
    if (rc == RC_ETIMEDOUT) {
        /* Still pending: say why, from the group's record. */
        int grc;
        Ray__Rpc__GetPlacementGroupReply *r = core__pg_get(cw, pg, &grc);
        if (!r) {
            rc = grc == RC_ENOENT ? grc : core_fail(RC_ETIMEDOUT, "rayc_pg_wait: not placed in %lld ms",
                                                         (long long)timeout_ms);
        } else if (r->placement_group_table_data->state ==
                   RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED) {
            rc = core_fail(RC_ENOENT, "rayc_pg_wait: the placement group was removed");
        } else if (r->placement_group_table_data->state ==
                   RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED) {
            rc = 0; /* placed just as the deadline passed */
        } else {
            char why[1024];
            const char *sentence = NULL; /* why the scheduler refused it last */
            gcs_reply_status(&r->base, &sentence);
            core__pending_reason(r->placement_group_table_data, sentence, why, sizeof(why));
            rc = core_fail(RC_ETIMEDOUT, "rayc_pg_wait: not placed in %lld ms: %s", (long long)timeout_ms, why);
        }
        rpc_msg_free(r ? &r->base : NULL);
    } else if (rc < 0) {
        core_fail(rc, "rayc_pg_wait: %s", message);
    }
    return rc;
}

int rayc_pg_remove(const rayc_pg *pg)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_pg_remove: call rayc_init first");
    if (!pg)
        return core_fail(RC_EINVAL, "rayc_pg_remove: pg is required");
    core_post(cw, &core__pg_op_new(core__run_remove, pg->id)->op);
    return 0;
}

int rayc_pg_get(const char *name, rayc_pg *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_pg_get: call rayc_init first");
    if (!name || !*name || !out)
        return core_fail(RC_EINVAL, "rayc_pg_get: a name and out are required");
    Ray__Rpc__GetNamedPlacementGroupRequest req = RAY__RPC__GET_NAMED_PLACEMENT_GROUP_REQUEST__INIT;
    req.name = (char *)name;
    req.ray_namespace = cw->namespace_;
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    int code = core_call_gcs_from_thread(cw, &ray__rpc__placement_group_info_gcs_service__descriptor,
                                         "GetNamedPlacementGroup", &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err,
                                         sizeof(err));
    int rc = 0;
    const Ray__Rpc__GetNamedPlacementGroupReply *r = (const void *)reply;
    if (code != GRPC_STATUS_OK)
        rc = core_fail(RC_EUNAVAIL, "rayc_pg_get: %s", err);
    else if (gcs_reply_status(reply, NULL) != GCS_STATUS_OK || !r->placement_group_table_data ||
             r->placement_group_table_data->placement_group_id.len != RAYC_PG_ID_SIZE)
        rc = core_fail(RC_ENOENT, "rayc_pg_get: no placement group named '%s' in namespace '%s'", name,
                        cw->namespace_);
    else
        memcpy(out->id, r->placement_group_table_data->placement_group_id.data, RAYC_PG_ID_SIZE);
    rpc_msg_free(reply);
    return rc;
}

/* ---- cluster resources -------------------------------------------------------------------- */

typedef struct core__sum {
    char *name;
    double amount;
} core__sum;

char *rayc_resources_json(int available)
{
    core_worker *cw = core__cw;
    if (!cw) {
        core_fail(RC_ESTATE, "rayc_resources_json: call rayc_init first");
        return NULL;
    }
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    int code;
    if (available) {
        Ray__Rpc__GetAllAvailableResourcesRequest req = RAY__RPC__GET_ALL_AVAILABLE_RESOURCES_REQUEST__INIT;
        code = core_call_gcs_from_thread(cw, &ray__rpc__node_resource_info_gcs_service__descriptor,
                                         "GetAllAvailableResources", &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err,
                                         sizeof(err));
    } else {
        Ray__Rpc__GetAllTotalResourcesRequest req = RAY__RPC__GET_ALL_TOTAL_RESOURCES_REQUEST__INIT;
        code = core_call_gcs_from_thread(cw, &ray__rpc__node_resource_info_gcs_service__descriptor,
                                         "GetAllTotalResources", &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err,
                                         sizeof(err));
    }
    if (code != GRPC_STATUS_OK) {
        core_fail(RC_EUNAVAIL, "rayc_resources_json: %s", err);
        return NULL;
    }
    /* Sum per resource name over the nodes, keeping first-seen order. */
    rc_map index = RC_MAP_INIT;
    core__sum *sums = NULL;
    size_t n = 0, cap = 0;
    size_t n_nodes = available ? ((Ray__Rpc__GetAllAvailableResourcesReply *)reply)->n_resources_list
                               : ((Ray__Rpc__GetAllTotalResourcesReply *)reply)->n_resources_list;
    for (size_t i = 0; i < n_nodes; i++) {
        size_t n_entries;
        if (available)
            n_entries = ((Ray__Rpc__GetAllAvailableResourcesReply *)reply)->resources_list[i]->n_resources_available;
        else
            n_entries = ((Ray__Rpc__GetAllTotalResourcesReply *)reply)->resources_list[i]->n_resources_total;
        for (size_t k = 0; k < n_entries; k++) {
            const char *key;
            double value;
            if (available) {
                const Ray__Rpc__AvailableResources *r = ((Ray__Rpc__GetAllAvailableResourcesReply *)reply)->resources_list[i];
                key = r->resources_available[k]->key;
                value = r->resources_available[k]->value;
            } else {
                const Ray__Rpc__TotalResources *r = ((Ray__Rpc__GetAllTotalResourcesReply *)reply)->resources_list[i];
                key = r->resources_total[k]->key;
                value = r->resources_total[k]->value;
            }
            intptr_t slot = (intptr_t)rc_map_get_str(&index, key);
            if (!slot) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 16;
                    sums = rc_realloc(sums, cap * sizeof(*sums));
                }
                sums[n].name = rc_strdup(key);
                sums[n].amount = 0;
                slot = (intptr_t)++n;
                rc_map_put_str(&index, key, (void *)slot);
            }
            sums[slot - 1].amount += value;
        }
    }
    rpc_msg_free(reply);
    rc_buf b = RC_BUF_INIT;
    rc_buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            rc_buf_puts(&b, ", ");
        rc_buf_json_str(&b, sums[i].name, strlen(sums[i].name));
        /* Ray's resources are fixed-point with 4 decimals: print them so. */
        rc_buf_printf(&b, ": %.10g", round(sums[i].amount * 10000) / 10000);
        rc_free(sums[i].name);
    }
    rc_buf_putc(&b, '}');
    rc_free(sums);
    rc_map_destroy(&index, NULL);
    return rc_buf_detach(&b);
}
