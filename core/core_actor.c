/*
 * Actors from the caller's side (docs/actors.md): creating them (RegisterActor, then
 * CreateActor in the background), calling them (PushTask straight to the actor's worker,
 * numbered per caller, in submission order), following their state (GCS_ACTOR_CHANNEL:
 * address changes after restarts, death with its cause), retrying calls across restarts
 * (max_task_retries), killing, naming and releasing them.
 *
 * An actor's calls wait in its queue in submission order; the head is pushed once its
 * arguments are settled and the actor is ALIVE. Calls in flight when the worker dies are
 * put back in order (if retries are left) and pushed to the new instance, numbered afresh.
 *
 * Loop thread, except the API functions (any user thread), which post to it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "gcs_service.pb-c.h"
#include "rayc_sched.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"

struct core_actor {
    uint8_t id[RC_ACTOR_ID_SIZE];
    int state; /* Ray__Rpc__ActorTableData__ActorState, -1 while unknown */
    Ray__Rpc__Address *address; /* the worker, while ALIVE */
    rpc_client *worker;
    int64_t num_restarts;
    char *death_message;
    int owned;
    int detached;
    int max_task_retries;
    int released;
    uint64_t next_seq;                  /* numbers calls to the current instance */
    uint32_t epoch;                     /* bumped for each new instance (worker) */
    uint8_t instance_worker[RC_WORKER_ID_SIZE]; /* the worker of the current instance */
    rc_list queue;                      /* calls not yet pushed, in submission order */
    rc_list inflight;                   /* pushed to this instance, oldest first */
    rc_list stale;                      /* pushed to an earlier instance, not answered */
    size_t n_inflight;
    core_ref **creation_args; /* owned objects the constructor needs (held until it ran) */
    size_t n_creation_args;
    int fetching; /* a GetActorInfo is out */
    /* The worker a push failed on: the GCS may not know yet that it died, so an ALIVE at
     * that worker is stale (believed after a few confirmations, in case it was a glitch). */
    uint8_t dead_worker[RC_WORKER_ID_SIZE];
    int have_dead_worker;
    int stale_seen;
};

static rpc_client *core__gcs_rpc(core_worker *cw)
{
    return cw->gcs ? gcs_client_rpc(cw->gcs) : NULL;
}

int core_call_gcs_from_thread(core_worker *cw, const ProtobufCServiceDescriptor *svc, const char *method,
                              const ProtobufCMessage *req, int64_t timeout_ms, ProtobufCMessage **reply, char *err,
                              size_t errlen)
{
    return core_call_from_thread(cw, core__gcs_rpc, svc, method, req, timeout_ms, reply, err, errlen);
}

/* ---- the actor table of this process ---------------------------------------------------- */

static void core__actor_fetch(core_worker *cw, core_actor *a);

static core_actor *core__actor_get(core_worker *cw, const uint8_t *id, int create)
{
    core_actor *a = rc_map_get(&cw->actors, id, RC_ACTOR_ID_SIZE);
    if (a || !create)
        return a;
    a = RC_NEW(core_actor);
    rc_list_init(&a->queue);
    rc_list_init(&a->inflight);
    rc_list_init(&a->stale);
    memcpy(a->id, id, RC_ACTOR_ID_SIZE);
    a->state = -1;
    rc_map_put(&cw->actors, a->id, RC_ACTOR_ID_SIZE, a);
    /* Follow it: restarts move it, death ends it. */
    if (cw->sub)
        gcs_subscriber_subscribe(cw->sub, RAY__RPC__CHANNEL_TYPE__GCS_ACTOR_CHANNEL, a->id, RC_ACTOR_ID_SIZE);
    return a;
}

static void core__queue_append(core_actor *a, core_task *t)
{
    rc_list_insert_tail(&a->queue, &t->link);
}

static void core__queue_unlink(core_actor *a, core_task *t)
{
    (void)a;
    rc_list_remove(&t->link);
}

/* Off the in-flight list of its instance (a->inflight or a->stale). */
static void core__inflight_unlink(core_actor *a, core_task *t)
{
    rc_list_remove(&t->link);
    a->n_inflight--;
}

/* A new instance: calls still out to the old one are answered (or failed) in their own
 * time; numbering starts over for the new one. */
static void core__new_instance(core_actor *a)
{
    rc_list_move_tail(&a->inflight, &a->stale);
    a->epoch++;
    a->next_seq = 0;
}

static void core__death_text(core_actor *a, char *out, size_t len)
{
    char hex[RC_ID_HEX_MAX];
    snprintf(out, len, "actor %s is dead: %s", rc_id_hex(a->id, RC_ACTOR_ID_SIZE, hex),
             a->death_message ? a->death_message : "no cause recorded");
}

static void core__report_out_of_scope(core_worker *cw, core_actor *a);

/* ---- pushing calls ---------------------------------------------------------------------- */

static void core__actor_flush(core_worker *cw, core_actor *a);

static void core__call_pushed(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_task *t = arg;
    core_worker *cw = core__cw;
    core_actor *a = t->actor;
    core__inflight_unlink(a, t);
    if (cw->stopping) {
        rpc_msg_free(reply);
        core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the process shut down while the call ran");
        return;
    }
    if (st->code == GRPC_STATUS_OK) {
        Ray__Rpc__PushTaskReply *r = (Ray__Rpc__PushTaskReply *)reply;
        uint8_t node[RC_NODE_ID_SIZE];
        int have_node = a->address && a->address->node_id.len == RC_NODE_ID_SIZE;
        if (have_node)
            memcpy(node, a->address->node_id.data, RC_NODE_ID_SIZE);
        if (t->cancelled && r->was_cancelled_before_running)
            core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the call was cancelled");
        else
            core_task_succeeded(cw, t, r, have_node ? node : NULL);
    } else if (st->code == GRPC_STATUS_FAILED_PRECONDITION) {
        /* The worker is alive but hosts no longer (or not yet) this actor: ask the GCS. */
        t->state = CORE_TASK_QUEUED;
        rc_list_insert_head(&a->queue, &t->link);
        rpc_msg_free(reply);
        a->state = -1;
        core__actor_fetch(cw, a);
        return;
    } else {
        /* The worker is gone: the actor is restarting or dead (the GCS will say which). */
        char why[600];
        snprintf(why, sizeof(why), "%s", st->message);
        if (a->address && t->actor_epoch == a->epoch) {
            if (a->address->worker_id.len == RC_WORKER_ID_SIZE) {
                memcpy(a->dead_worker, a->address->worker_id.data, RC_WORKER_ID_SIZE);
                a->have_dead_worker = 1;
                a->stale_seen = 0;
            }
            rpc_msg_free(&a->address->base);
            a->address = NULL;
            a->worker = NULL;
            a->state = -1;
        }
        if (t->cancelled) {
            core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the call was cancelled (its actor's worker stopped)");
        } else if (t->attempts_left != 0) {
            if (t->attempts_left > 0)
                t->attempts_left--;
            /* Back into the queue in submission order (by sequence of submission: task
             * counter order is the queue order, so insert before later calls). */
            t->state = CORE_TASK_QUEUED;
            rc_list *p = rc_list_first(&a->queue);
            while (p && rc_list_entry(p, core_task, link)->spec->parent_counter < t->spec->parent_counter)
                p = rc_list_next(&a->queue, p);
            if (p)
                rc_list_insert_before(p, &t->link);
            else
                core__queue_append(a, t);
        } else {
            char message[1200];
            char hex[RC_ID_HEX_MAX];
            snprintf(message, sizeof(message),
                     "the worker of actor %s died while running '%s' (%s) and the call has no retries left "
                     "(max_task_retries)",
                     rc_id_hex(a->id, RC_ACTOR_ID_SIZE, hex), t->spec->name, why);
            core_task_fail(cw, t, RAYC_ERR_ACTOR_DIED, message);
        }
        core__actor_fetch(cw, a);
    }
    rpc_msg_free(reply);
    core__actor_flush(cw, a);
}

static void core__push_call(core_worker *cw, core_actor *a, core_task *t)
{
    uint64_t seq = a->next_seq++;
    t->spec->actor_task_spec->sequence_number = seq;
    /* Every call numbered below the oldest one still out has been answered (or will never
     * come): the worker need not wait for numbers below it (Ray's client_processed_up_to). */
    const core_task *oldest = core_task_first(&a->inflight);
    int64_t processed = (oldest ? (int64_t)oldest->spec->actor_task_spec->sequence_number : (int64_t)seq) - 1;
    t->state = CORE_TASK_PUSHED;
    t->actor_epoch = a->epoch;
    rc_list_insert_tail(&a->inflight, &t->link);
    a->n_inflight++;
    core_events_task_status(cw, t->spec, RAY__RPC__TASK_STATUS__SUBMITTED_TO_WORKER,
                            a->address->node_id.len == RC_NODE_ID_SIZE ? a->address->node_id.data : NULL);
    Ray__Rpc__PushTaskRequest req = RAY__RPC__PUSH_TASK_REQUEST__INIT;
    req.intended_worker_id = a->address->worker_id;
    req.task_spec = t->spec;
    req.sequence_number = (int64_t)seq;
    req.client_processed_up_to = processed;
    if (rpc_client_call(a->worker, &ray__rpc__core_worker_service__descriptor, "PushTask", &req.base, -1,
                        core__call_pushed, t) < 0) {
        rpc_status st = {GRPC_STATUS_UNAVAILABLE, "cannot call the actor's worker"};
        core__call_pushed(&st, NULL, t);
    }
}

/* Pushes ready calls from the head of the queue while the actor is alive; fails them all
 * once it is dead. */
static void core__actor_flush(core_worker *cw, core_actor *a)
{
    if (a->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD) {
        char message[800];
        core__death_text(a, message, sizeof(message));
        core_task *t;
        while ((t = core_task_first(&a->queue))) {
            core__queue_unlink(a, t);
            t->actor = NULL;
            core_task_fail(cw, t, RAYC_ERR_ACTOR_DIED, message);
        }
        return;
    }
    if (a->state != RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE || !a->worker)
        return;
    core_task *t;
    while ((t = core_task_first(&a->queue)) && t->resolved) {
        core__queue_unlink(a, t);
        core__push_call(cw, a, t);
    }
    if (a->released && rc_list_empty(&a->queue) && !a->n_inflight)
        core__report_out_of_scope(cw, a);
}

/* ---- following the actor ---------------------------------------------------------------- */

static void core__actor_apply(core_worker *cw, core_actor *a, const Ray__Rpc__ActorTableData *d)
{
    if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE && a->have_dead_worker && d->address &&
        d->address->worker_id.len == RC_WORKER_ID_SIZE &&
        !memcmp(d->address->worker_id.data, a->dead_worker, RC_WORKER_ID_SIZE)) {
        if (++a->stale_seen < 5)
            return; /* news of its death (and of the new instance) are on the way */
        RC_INFO("core: the GCS keeps reporting the actor alive at a worker that failed a call; trying it again");
    }
    if (d->state != RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE || !a->have_dead_worker || !d->address ||
        d->address->worker_id.len != RC_WORKER_ID_SIZE || memcmp(d->address->worker_id.data, a->dead_worker, RC_WORKER_ID_SIZE))
        a->stale_seen = 0;
    if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE)
        a->have_dead_worker = 0;
    int new_address = d->address && d->address->port > 0 &&
                      (!a->address || a->address->port != d->address->port ||
                       strcmp(a->address->ip_address ? a->address->ip_address : "", d->address->ip_address ? d->address->ip_address : "") ||
                       a->address->worker_id.len != d->address->worker_id.len ||
                       memcmp(a->address->worker_id.data, d->address->worker_id.data, d->address->worker_id.len));
    a->state = d->state;
    a->num_restarts = d->num_restarts;
    if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE && new_address) {
        rpc_msg_free(a->address ? &a->address->base : NULL);
        a->address = (Ray__Rpc__Address *)rpc_msg_dup(&d->address->base);
        char addr[160];
        core_address_text(a->address, addr, sizeof(addr));
        a->worker = core_worker_client(cw, addr);
        /* Another worker is another instance (the same one after a lost reply keeps its
         * numbering: gaps are covered by client_processed_up_to). */
        if (a->address->worker_id.len == RC_WORKER_ID_SIZE &&
            memcmp(a->instance_worker, a->address->worker_id.data, RC_WORKER_ID_SIZE)) {
            memcpy(a->instance_worker, a->address->worker_id.data, RC_WORKER_ID_SIZE);
            core__new_instance(a);
        }
    }
    if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__RESTARTING && a->address) {
        rpc_msg_free(&a->address->base); /* the old instance is gone */
        a->address = NULL;
        a->worker = NULL;
    }
    if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD) {
        rc_free(a->death_message);
        const char *why = "unknown cause";
        char text[800];
        const Ray__Rpc__ActorDeathCause *c = d->death_cause;
        if (c && c->context_case == RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT &&
            c->actor_died_error_context->error_message)
            why = c->actor_died_error_context->error_message;
        else if (c && c->context_case == RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_CREATION_TASK_FAILURE_CONTEXT &&
                 c->creation_task_failure_context->formatted_exception_string)
            why = c->creation_task_failure_context->formatted_exception_string;
        else if (c && c->context_case == RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_UNSCHEDULABLE_CONTEXT &&
                 c->actor_unschedulable_context->error_message)
            why = c->actor_unschedulable_context->error_message;
        snprintf(text, sizeof(text), "%s", why);
        a->death_message = rc_strdup(text);
        if (a->address) {
            rpc_msg_free(&a->address->base);
            a->address = NULL;
            a->worker = NULL;
        }
    }
    if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE ||
        d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD) {
        /* The constructor has run (or never will): its arguments are free to go. */
        for (size_t i = 0; i < a->n_creation_args; i++)
            core_ref_add_submitted(cw, a->creation_args[i], -1);
        rc_free(a->creation_args);
        a->creation_args = NULL;
        a->n_creation_args = 0;
    }
    core__actor_flush(cw, a);
}

void core_actor_on_message(core_worker *cw, const Ray__Rpc__ActorTableData *d)
{
    if (d->actor_id.len != RC_ACTOR_ID_SIZE)
        return;
    core_actor *a = core__actor_get(cw, d->actor_id.data, 0);
    if (a)
        core__actor_apply(cw, a, d);
}

static void core__actor_fetched(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_actor *a = arg;
    core_worker *cw = core__cw;
    a->fetching = 0;
    if (!cw->stopping && st->code == GRPC_STATUS_OK) {
        Ray__Rpc__GetActorInfoReply *r = (Ray__Rpc__GetActorInfoReply *)reply;
        if (gcs_reply_status(reply, NULL) == GCS_STATUS_OK && r->actor_table_data)
            core__actor_apply(cw, a, r->actor_table_data);
        else if (gcs_reply_status(reply, NULL) == GCS_STATUS_NOT_FOUND) {
            a->state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD;
            rc_free(a->death_message);
            a->death_message = rc_strdup("the GCS has no record of this actor");
            core__actor_flush(cw, a);
        }
    }
    rpc_msg_free(reply);
}

/* Asks the GCS where the actor is (after a failure, or for a handle we did not create). */
static void core__actor_fetch(core_worker *cw, core_actor *a)
{
    if (a->fetching || cw->stopping || !cw->gcs)
        return;
    Ray__Rpc__GetActorInfoRequest req = RAY__RPC__GET_ACTOR_INFO_REQUEST__INIT;
    req.actor_id.data = a->id;
    req.actor_id.len = RC_ACTOR_ID_SIZE;
    if (rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__actor_info_gcs_service__descriptor, "GetActorInfo",
                        &req.base, rc_cfg.gcs_rpc_timeout_ms, core__actor_fetched, a) == 0)
        a->fetching = 1;
}

/* ---- calls ------------------------------------------------------------------------------ */

static void core__call_resolved(core_worker *cw, core_task *t)
{
    t->resolved = 1;
    if (t->actor)
        core__actor_flush(cw, t->actor);
}

/* Unfinished calls per actor, for callers with max_pending_calls (user threads refuse
 * calls, the loop thread counts them down). */
static pthread_mutex_t core__pending_mu = PTHREAD_MUTEX_INITIALIZER;
static rc_map core__pending = RC_MAP_INIT; /* actor id -> (intptr_t) unfinished calls */

static int core__pending_take(const uint8_t *actor_id, int limit)
{
    pthread_mutex_lock(&core__pending_mu);
    intptr_t n = (intptr_t)rc_map_get(&core__pending, actor_id, RC_ACTOR_ID_SIZE);
    int ok = n < limit;
    if (ok)
        rc_map_put(&core__pending, actor_id, RC_ACTOR_ID_SIZE, (void *)(n + 1));
    pthread_mutex_unlock(&core__pending_mu);
    return ok;
}

static void core__pending_give(const uint8_t *actor_id)
{
    pthread_mutex_lock(&core__pending_mu);
    intptr_t n = (intptr_t)rc_map_get(&core__pending, actor_id, RC_ACTOR_ID_SIZE);
    if (n > 1)
        rc_map_put(&core__pending, actor_id, RC_ACTOR_ID_SIZE, (void *)(n - 1));
    else
        rc_map_remove(&core__pending, actor_id, RC_ACTOR_ID_SIZE);
    pthread_mutex_unlock(&core__pending_mu);
}

static void core__call_finished(core_worker *cw, core_task *t)
{
    if (t->pending_counted) {
        t->pending_counted = 0;
        core__pending_give(t->task_id + 8); /* an actor call's ID: 8 unique bytes, the actor */
    }
    core_actor *a = t->actor;
    if (!a)
        return;
    t->actor = NULL;
    if (t->state == CORE_TASK_PUSHED) /* pushed ones were unlinked by their answer */
        return;
    int was_head = core_task_first(&a->queue) == t;
    core__queue_unlink(a, t);
    if (was_head) /* failed before its turn (argument error, cancel): the next may go */
        core__actor_flush(cw, a);
}

typedef struct core__call_op {
    core_op op;
    core_task *task;
    uint8_t actor_id[RC_ACTOR_ID_SIZE];
} core__call_op;

static void core__run_call(core_worker *cw, core_op *op)
{
    core__call_op *c = (core__call_op *)op;
    core_task *t = c->task;
    core_actor *a = core__actor_get(cw, c->actor_id, 1);
    rc_free(c);
    if (a->state < 0)
        core__actor_fetch(cw, a);
    t->actor = a;
    t->attempts_left = a->owned ? a->max_task_retries : t->attempts_left;
    t->on_resolved = core__call_resolved;
    t->on_finished = core__call_finished;
    core__queue_append(a, t);
    core_submit_task(cw, t); /* results and argument resolution as for tasks */
}

int rayc_actor_call(const rayc_actor *actor, const char *method, const rayc_arg *args, size_t nargs,
                    const rayc_task_options *opts, rayc_ref *out_refs)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_actor_call: call rayc_init first");
    if (!actor || !method || !*method || !out_refs || (nargs && !args))
        return core_fail(RC_EINVAL, "rayc_actor_call: actor, method and out_refs are required");
    int num_returns = opts ? opts->num_returns : 1;
    if (num_returns < 1 || num_returns > 1024)
        return core_fail(RC_EINVAL, "rayc_actor_call: num_returns must be 1..1024, not %d", num_returns);
    int limit = opts ? opts->max_pending_calls : 0;
    if (limit > 0 && !core__pending_take(actor->id, limit)) {
        char hex[RC_ID_HEX_MAX];
        return core_fail(RC_EBUSY, "the actor %s has %d pending calls (max_pending_calls): wait for some to finish",
                         rc_id_hex(actor->id, RC_ACTOR_ID_SIZE, hex), limit);
    }
    core_task *t = core_task_build(cw, method, NULL, args, nargs, opts && opts->name ? opts->name : method,
                                   num_returns, out_refs);
    if (!t) {
        if (limit > 0)
            core__pending_give(actor->id);
        return RC_EINVAL;
    }
    Ray__Rpc__TaskSpec *spec = t->spec;
    spec->type = RAY__RPC__TASK_TYPE__ACTOR_TASK;
    /* Actor task IDs: 8 unique bytes, then the actor ID (Ray's TaskID::ForActorTask). */
    memcpy(t->task_id + 8, actor->id, RC_ACTOR_ID_SIZE);
    memcpy(spec->task_id.data, t->task_id, RC_TASK_ID_SIZE);
    for (int i = 0; i < num_returns; i++)
        memcpy(out_refs[i].id, t->task_id, RC_TASK_ID_SIZE);
    spec->actor_task_spec = rc_malloc(sizeof(*spec->actor_task_spec));
    ray__rpc__actor_task_spec__init(spec->actor_task_spec);
    spec->actor_task_spec->actor_id.data = rc_memdup(actor->id, RC_ACTOR_ID_SIZE);
    spec->actor_task_spec->actor_id.len = RC_ACTOR_ID_SIZE;
    t->retries_left = 0; /* actor calls retry across restarts only (attempts_left) */
    t->attempts_left = 0;
    t->pending_counted = limit > 0;
    core__call_op *op = RC_NEW(core__call_op);
    op->op.run = core__run_call;
    op->task = t;
    memcpy(op->actor_id, actor->id, RC_ACTOR_ID_SIZE);
    core_post(cw, &op->op);
    return 0;
}

/* ---- creation --------------------------------------------------------------------------- */

typedef struct core__create_op {
    core_op op;
    Ray__Rpc__TaskSpec *spec; /* owned */
    int detached;
    int max_task_retries;
} core__create_op;

static void core__created(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    core_actor *a = arg;
    core_worker *cw = core__cw;
    if (cw->stopping) {
        rpc_msg_free(reply);
        return;
    }
    if (st->code == GRPC_STATUS_OK) {
        Ray__Rpc__CreateActorReply *r = (Ray__Rpc__CreateActorReply *)reply;
        if (gcs_reply_status(reply, NULL) == GCS_STATUS_OK && r->actor_address && r->actor_address->port > 0) {
            Ray__Rpc__ActorTableData d;
            ray__rpc__actor_table_data__init(&d);
            d.actor_id.data = a->id;
            d.actor_id.len = RC_ACTOR_ID_SIZE;
            d.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE;
            d.address = r->actor_address;
            d.num_restarts = a->num_restarts;
            core__actor_apply(cw, a, &d);
        } else {
            core__actor_fetch(cw, a); /* dead or failed: the record says why */
        }
    } else {
        core__actor_fetch(cw, a);
    }
    rpc_msg_free(reply);
}

static void core__run_create(core_worker *cw, core_op *op)
{
    core__create_op *c = (core__create_op *)op;
    Ray__Rpc__TaskSpec *spec = c->spec;
    core_actor *a = core__actor_get(cw, spec->actor_creation_task_spec->actor_id.data, 1);
    a->owned = 1;
    a->detached = c->detached;
    a->max_task_retries = c->max_task_retries;
    if (a->state < 0)
        a->state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__PENDING_CREATION;
    /* Hold the owned objects the constructor takes until it has run. */
    a->creation_args = rc_calloc(spec->n_args ? spec->n_args : 1, sizeof(*a->creation_args));
    for (size_t i = 0; i < spec->n_args; i++) {
        const Ray__Rpc__TaskArg *arg = spec->args[i];
        core_ref *r = arg->object_ref ? core_ref_get(cw, arg->object_ref->object_id.data) : NULL;
        if (!r)
            continue;
        core_ref_add_submitted(cw, r, 1);
        a->creation_args[a->n_creation_args++] = r;
    }
    Ray__Rpc__CreateActorRequest req = RAY__RPC__CREATE_ACTOR_REQUEST__INIT;
    req.task_spec = spec;
    if (rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__actor_info_gcs_service__descriptor, "CreateActor",
                        &req.base, -1, core__created, a) < 0)
        core__actor_fetch(cw, a);
    rpc_msg_free(&spec->base);
    rc_free(c);
}

void rayc_actor_options_init(rayc_actor_options *o)
{
    memset(o, 0, sizeof(*o));
    o->num_cpus = -1;
    o->max_concurrency = 1;
    o->bundle_index = -1;
    o->strategy = RAYC_STRATEGY_DEFAULT;
}

int rayc_actor_create(const char *class_name, const rayc_arg *args, size_t nargs, const rayc_actor_options *opts,
                      rayc_actor *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_actor_create: call rayc_init first");
    if (!class_name || !*class_name || !out || (nargs && !args))
        return core_fail(RC_EINVAL, "rayc_actor_create: a class name and out are required");
    rayc_actor_options defaults;
    if (!opts) {
        rayc_actor_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->max_concurrency < 1 || opts->max_concurrency > 1000)
        return core_fail(RC_EINVAL, "rayc_actor_create: max_concurrency must be 1..1000, not %d", opts->max_concurrency);
    if (opts->max_restarts < -1 || opts->max_task_retries < -1)
        return core_fail(RC_EINVAL, "rayc_actor_create: max_restarts and max_task_retries must be -1 or more");
    if (opts->get_if_exists && !(opts->name && *opts->name))
        return core_fail(RC_EINVAL, "rayc_actor_create: get_if_exists needs a name");
    /* Resources as for tasks (rayc_task_options semantics), through the same checks. */
    rayc_task_options to;
    rayc_task_options_init(&to);
    /* Ray's defaults: an actor that names no resource is placed by 1 CPU and holds none;
     * one that names any (GPUs, custom resources, an accelerator type) holds 1 CPU for its
     * life unless num_cpus says otherwise, and is placed by what it holds. */
    int named = opts->num_gpus > 0 || opts->n_resources > 0 || (opts->accelerator_type && *opts->accelerator_type);
    int default_actor = opts->num_cpus < 0 && !named;
    to.num_cpus = opts->num_cpus >= 0 ? opts->num_cpus : named ? 1 : 0;
    to.num_gpus = opts->num_gpus;
    to.gpu_memory = opts->gpu_memory;
    memcpy(to.resources, opts->resources, sizeof(to.resources));
    to.n_resources = opts->n_resources;
    to.accelerator_type = opts->accelerator_type;
    to.label_selector = opts->label_selector;
    to.strategy = opts->strategy;
    memcpy(to.node_id, opts->node_id, sizeof(to.node_id));
    to.soft = opts->soft;
    to.placement_group = opts->placement_group;
    to.bundle_index = opts->bundle_index;
    to.capture_child_tasks = opts->capture_child_tasks;
    to.language = opts->language;
    to.num_returns = 1;
    to.max_retries = 0;
    char name[512];
    snprintf(name, sizeof(name), "%s.__init__", class_name);
    to.name = name;
    rayc_ref unused;
    core_task *t = core_task_build_with(cw, "<init>", class_name, args, nargs, &to, &unused);
    if (!t)
        return RC_EINVAL;
    Ray__Rpc__TaskSpec *spec = t->spec;
    t->spec = NULL;
    core_task_free(t);
    spec->type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    spec->num_returns = 0;
    uint8_t actor_id[RC_ACTOR_ID_SIZE];
    rc_id_random(actor_id, 12);
    memcpy(actor_id + 12, cw->job_id, RC_JOB_ID_SIZE);
    /* Ray's TaskID::ForActorCreationTask: zero unique bytes, then the actor ID. */
    memset(spec->task_id.data, 0, 8);
    memcpy(spec->task_id.data + 8, actor_id, RC_ACTOR_ID_SIZE);
    if (default_actor && spec->scheduling_strategy->scheduling_strategy_case !=
                             RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY) {
        /* Ray's default actor: one CPU to be placed, none held while it lives. */
        spec->required_placement_resources = rc_calloc(1, sizeof(*spec->required_placement_resources));
        Ray__Rpc__TaskSpec__RequiredPlacementResourcesEntry *e = rc_malloc(sizeof(*e));
        ray__rpc__task_spec__required_placement_resources_entry__init(e);
        e->key = rc_strdup("CPU");
        e->value = 1;
        spec->required_placement_resources[0] = e;
        spec->n_required_placement_resources = 1;
    }
    Ray__Rpc__ActorCreationTaskSpec *acs = rc_malloc(sizeof(*acs));
    ray__rpc__actor_creation_task_spec__init(acs);
    acs->actor_id.data = rc_memdup(actor_id, RC_ACTOR_ID_SIZE);
    acs->actor_id.len = RC_ACTOR_ID_SIZE;
    acs->max_actor_restarts = opts->max_restarts;
    acs->max_task_retries = opts->max_task_retries;
    acs->max_concurrency = opts->max_concurrency;
    acs->is_detached = opts->detached;
    acs->name = rc_strdup(opts->name ? opts->name : "");
    acs->ray_namespace = rc_strdup(opts->namespace_ ? opts->namespace_ : cw->namespace_);
    spec->actor_creation_task_spec = acs;

    /* RegisterActor now, so a taken name is an error the caller sees at once. */
    Ray__Rpc__RegisterActorRequest req = RAY__RPC__REGISTER_ACTOR_REQUEST__INIT;
    req.task_spec = spec;
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    int code = core_call_gcs_from_thread(cw, &ray__rpc__actor_info_gcs_service__descriptor, "RegisterActor",
                                         &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err, sizeof(err));
    const char *gmsg = "";
    int status = code == GRPC_STATUS_OK ? gcs_reply_status(reply, &gmsg) : -1;
    snprintf(err + strlen(err), sizeof(err) - strlen(err), "%s", gmsg);
    rpc_msg_free(reply);
    if (status == GCS_STATUS_ALREADY_EXISTS && opts->get_if_exists) {
        rpc_msg_free(&spec->base);
        return rayc_get_actor(opts->name, opts->namespace_, out);
    }
    if (status != GCS_STATUS_OK) {
        rpc_msg_free(&spec->base);
        if (status == GCS_STATUS_ALREADY_EXISTS)
            return core_fail(RC_EEXIST, "rayc_actor_create: %s", err);
        return core_fail(code == GRPC_STATUS_OK ? RC_EINVAL : RC_EUNAVAIL, "rayc_actor_create: %s", err);
    }
    memcpy(out->id, actor_id, RC_ACTOR_ID_SIZE);
    core__create_op *op = RC_NEW(core__create_op);
    op->op.run = core__run_create;
    op->spec = spec;
    op->detached = opts->detached;
    op->max_task_retries = opts->max_task_retries;
    core_post(cw, &op->op);
    return 0;
}

/* ---- kill, names, release, info --------------------------------------------------------- */

int rayc_actor_kill(const rayc_actor *actor, int no_restart)
{
    core_worker *cw = core__cw;
    if (!cw || !actor)
        return core_fail(RC_ESTATE, "rayc_actor_kill: call rayc_init first");
    Ray__Rpc__KillActorViaGcsRequest req = RAY__RPC__KILL_ACTOR_VIA_GCS_REQUEST__INIT;
    req.actor_id.data = (uint8_t *)actor->id;
    req.actor_id.len = RC_ACTOR_ID_SIZE;
    req.force_kill = 1;
    req.no_restart = no_restart;
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    int code = core_call_gcs_from_thread(cw, &ray__rpc__actor_info_gcs_service__descriptor, "KillActorViaGcs",
                                         &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err, sizeof(err));
    const char *gmsg = "";
    int status = code == GRPC_STATUS_OK ? gcs_reply_status(reply, &gmsg) : -1;
    int rc = status == GCS_STATUS_OK ? 0 : status == GCS_STATUS_NOT_FOUND ? RC_ENOENT : RC_EUNAVAIL;
    if (rc < 0)
        core_fail(rc, "rayc_actor_kill: %s%s", err, gmsg);
    rpc_msg_free(reply);
    return rc;
}

int rayc_get_actor(const char *name, const char *namespace_, rayc_actor *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_get_actor: call rayc_init first");
    if (!name || !*name || !out)
        return core_fail(RC_EINVAL, "rayc_get_actor: a name and out are required");
    Ray__Rpc__GetNamedActorInfoRequest req = RAY__RPC__GET_NAMED_ACTOR_INFO_REQUEST__INIT;
    req.name = (char *)name;
    req.ray_namespace = (char *)(namespace_ ? namespace_ : cw->namespace_);
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    int code = core_call_gcs_from_thread(cw, &ray__rpc__actor_info_gcs_service__descriptor, "GetNamedActorInfo",
                                         &req.base, rc_cfg.gcs_rpc_timeout_ms, &reply, err, sizeof(err));
    int rc = 0;
    const Ray__Rpc__GetNamedActorInfoReply *r = (const void *)reply;
    if (code != GRPC_STATUS_OK) {
        rc = core_fail(RC_EUNAVAIL, "rayc_get_actor: %s", err);
    } else if (gcs_reply_status(reply, NULL) != GCS_STATUS_OK || !r->actor_table_data ||
               r->actor_table_data->actor_id.len != RC_ACTOR_ID_SIZE) {
        rc = core_fail(RC_ENOENT, "rayc_get_actor: no actor named '%s' in namespace '%s'", name, req.ray_namespace);
    } else {
        memcpy(out->id, r->actor_table_data->actor_id.data, RC_ACTOR_ID_SIZE);
    }
    rpc_msg_free(reply);
    return rc;
}

static void core__report_out_of_scope(core_worker *cw, core_actor *a)
{
    a->released = 0;
    Ray__Rpc__ReportActorOutOfScopeRequest req = RAY__RPC__REPORT_ACTOR_OUT_OF_SCOPE_REQUEST__INIT;
    req.actor_id.data = a->id;
    req.actor_id.len = RC_ACTOR_ID_SIZE;
    rpc_client_call(gcs_client_rpc(cw->gcs), &ray__rpc__actor_info_gcs_service__descriptor, "ReportActorOutOfScope",
                    &req.base, rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
}

typedef struct core__release_op {
    core_op op;
    uint8_t id[RC_ACTOR_ID_SIZE];
} core__release_op;

static void core__run_release(core_worker *cw, core_op *op)
{
    core__release_op *r = (core__release_op *)op;
    core_actor *a = core__actor_get(cw, r->id, 0);
    rc_free(r);
    if (!a || !a->owned || a->detached)
        return;
    a->released = 1;
    if (rc_list_empty(&a->queue) && !a->n_inflight)
        core__report_out_of_scope(cw, a);
}

int rayc_actor_release(const rayc_actor *actor)
{
    core_worker *cw = core__cw;
    if (!cw || !actor)
        return core_fail(RC_ESTATE, "rayc_actor_release: call rayc_init first");
    core__release_op *op = RC_NEW(core__release_op);
    op->op.run = core__run_release;
    memcpy(op->id, actor->id, RC_ACTOR_ID_SIZE);
    core_post(cw, &op->op);
    return 0;
}

int rayc_actor_info_get(const rayc_actor *actor, rayc_actor_info *out)
{
    core_worker *cw = core__cw;
    if (!cw)
        return core_fail(RC_ESTATE, "rayc_actor_info_get: call rayc_init first");
    if (!actor || !out)
        return core_fail(RC_EINVAL, "rayc_actor_info_get: actor and out are required");
    memset(out, 0, sizeof(*out));
    Ray__Rpc__GetActorInfoRequest req = RAY__RPC__GET_ACTOR_INFO_REQUEST__INIT;
    req.actor_id.data = (uint8_t *)actor->id;
    req.actor_id.len = RC_ACTOR_ID_SIZE;
    ProtobufCMessage *reply = NULL;
    char err[512] = "";
    int code = core_call_gcs_from_thread(cw, &ray__rpc__actor_info_gcs_service__descriptor, "GetActorInfo", &req.base,
                                         rc_cfg.gcs_rpc_timeout_ms, &reply, err, sizeof(err));
    const Ray__Rpc__GetActorInfoReply *r = (const void *)reply;
    int rc = 0;
    if (code != GRPC_STATUS_OK) {
        rc = core_fail(RC_EUNAVAIL, "rayc_actor_info_get: %s", err);
    } else if (gcs_reply_status(reply, NULL) != GCS_STATUS_OK || !r->actor_table_data) {
        rc = core_fail(RC_ENOENT, "rayc_actor_info_get: no such actor");
    } else {
        const Ray__Rpc__ActorTableData *d = r->actor_table_data;
        out->state = d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE        ? RAYC_ACTOR_ALIVE
                     : d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__RESTARTING ? RAYC_ACTOR_RESTARTING
                     : d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD       ? RAYC_ACTOR_DEAD
                                                                                        : RAYC_ACTOR_PENDING;
        out->num_restarts = (int)d->num_restarts;
        out->pid = (int)d->pid;
        if (d->_node_id_case == RAY__RPC__ACTOR_TABLE_DATA___NODE_ID_NODE_ID && d->node_id.len == RC_NODE_ID_SIZE)
            memcpy(out->node_id, d->node_id.data, RC_NODE_ID_SIZE);
        const Ray__Rpc__ActorDeathCause *c = d->death_cause;
        if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD && c) {
            const char *why = c->context_case == RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT
                                  ? c->actor_died_error_context->error_message
                              : c->context_case == RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_CREATION_TASK_FAILURE_CONTEXT
                                  ? c->creation_task_failure_context->formatted_exception_string
                              : c->context_case == RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_UNSCHEDULABLE_CONTEXT
                                  ? c->actor_unschedulable_context->error_message
                                  : NULL;
            snprintf(out->death_cause, sizeof(out->death_cause), "%s", why ? why : "");
        }
    }
    rpc_msg_free(reply);
    return rc;
}

void core_actor_free_all(core_worker *cw)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->actors, &it, NULL, NULL, &v)) {
        core_actor *a = v;
        rc_map_iter_remove(&cw->actors, &it);
        rpc_msg_free(a->address ? &a->address->base : NULL);
        rc_free(a->death_message);
        rc_free(a->creation_args);
        rc_free(a);
    }
    rc_map_destroy(&cw->actors, NULL);
}

void core_actor_tick(core_worker *cw)
{
    /* Actors with calls waiting whose state we do not trust: ask again. */
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->actors, &it, NULL, NULL, &v)) {
        core_actor *a = v;
        if (!rc_list_empty(&a->queue) && (a->state < 0 || a->have_dead_worker))
            core__actor_fetch(cw, a);
    }
}

void core_actor_refresh_all(core_worker *cw)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->actors, &it, NULL, NULL, &v)) {
        core_actor *a = v;
        if (a->state != RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD)
            core__actor_fetch(cw, a);
    }
}

/* As Ray: a call not yet sent never runs; one sent is skipped by the actor if it has not
 * started. A running call is not interrupted (force is not offered for actor calls: it
 * would kill the actor and every other caller's state with it). */
void core_actor_cancel(core_worker *cw, core_task *t, int force)
{
    (void)force;
    core_actor *a = t->actor;
    t->cancelled = 1;
    if (t->state == CORE_TASK_PUSHED) {
        if (t->actor_epoch != a->epoch || !a->worker)
            return;
        Ray__Rpc__CancelTaskRequest req = RAY__RPC__CANCEL_TASK_REQUEST__INIT;
        req.intended_task_id.data = t->task_id;
        req.intended_task_id.len = RC_TASK_ID_SIZE;
        req.caller_worker_id.data = cw->worker_id;
        req.caller_worker_id.len = RC_WORKER_ID_SIZE;
        rpc_client_call(a->worker, &ray__rpc__core_worker_service__descriptor, "CancelTask", &req.base,
                        rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
        return;
    }
    if (t->unresolved > 0) { /* failed as cancelled once its arguments settle */
        if (!t->arg_error) {
            t->arg_error = RAYC_ERR_CANCELLED;
            t->arg_error_message = rc_strdup("the call was cancelled before it ran");
        }
        return;
    }
    core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the call was cancelled before it ran");
}

void core_actor_shutdown(core_worker *cw)
{
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&cw->actors, &it, NULL, NULL, &v)) {
        core_actor *a = v;
        core_task *t;
        while ((t = core_task_first(&a->queue))) {
            core__queue_unlink(a, t);
            t->actor = NULL;
            core_task_fail(cw, t, RAYC_ERR_CANCELLED, "the process shut down before the call was sent");
        }
    }
}
