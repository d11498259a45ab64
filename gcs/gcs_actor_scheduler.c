/*
 * GCS actor scheduler: gets a worker for each actor waiting to be created (docs/actors.md).
 *
 * Actors that need a worker (PENDING_CREATION, RESTARTING) wait in one FIFO queue. A pass
 * over the queue runs when an actor is queued, when the cluster view changes (a node joins
 * or dies, a raylet reports) and when a timer says an actor's pause is over. For each
 * actor it decides with the scheduler library over the GCS's view:
 *   - OK, or NOT_NOW with a node to queue on: lease a worker from that node's raylet
 *     (RequestWorkerLease, the creation task's LeaseSpec, caller_address = the GCS);
 *   - NOT_NOW with no node: wait gcs_actor_scheduling_retry_ms (or the next change);
 *   - NEVER: wait as infeasible demand (reported in GetAllResourceUsage) until a node that
 *     can hold it joins, or unschedulable_task_timeout_ms has passed: then DEAD with the
 *     scheduler's sentence;
 *   - actors in a placement group go to the node of their bundle (any bundle for index -1)
 *     once the group is placed, without the view (bundle resources are not in it).
 * A lease reply is followed like an owner follows it (core_submit.c): spillback to the
 * named raylet with grant_or_reject, rejection or failure → queued again after the retry
 * pause, SCHEDULING_CANCELLED_UNSCHEDULABLE → infeasible since the request went out (so
 * the raylet's own wait counts), a grant → PushTask of the creation task to the worker.
 * The worker's answer decides: created (ALIVE), the constructor failed (DEAD, no restart),
 * or the worker is unreachable (it died: restart or DEAD).
 *
 * Leases are given back with ReturnWorkerLease(disconnect_worker = true): the raylet kills
 * the worker and frees exactly what it granted. Killing an actor first sends KillActor to
 * its worker (force: return at once; graceful: return once the worker answers, i.e. its
 * pending calls are done, or after gcs_actor_graceful_kill_timeout_ms).
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "gcs_actor_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

/* not_before_ms of an actor that waits for nodes to change or its group to be placed. */
#define GCS__UNTIL_KICKED INT64_MAX

struct gcs_actor_attempt {
    gcs_actor_manager *am;
    gcs_actor *a; /* NULL once abandoned; holds a reference while set */
    rc_list link; /* on the scheduler's attempts */
    int pushing; /* the lease was granted and the creation task is out */
    uint8_t lease_id[RC_UNIQUE_ID_SIZE];
    uint8_t node_id[RC_NODE_ID_SIZE]; /* the raylet asked */
    int64_t started_ms;
    rpc_client *worker; /* PushTask client while pushing */
};

typedef struct gcs__worker_call {
    gcs_actor_manager *am;
    rc_list link; /* on the scheduler's worker_calls */
    rpc_client *cli;
    gcs_actor_lease *lease; /* returned once KillActor ends (graceful kills); owned */
} gcs__worker_call;

static int64_t gcs__retry_ms(void)
{
    return rc_cfg.gcs_actor_scheduling_retry_ms > 0 ? rc_cfg.gcs_actor_scheduling_retry_ms : 1;
}

static char *gcs__hex(const uint8_t *id, size_t n, char *buf)
{
    return rc_id_hex(id, n, buf);
}

void gcs_actor_lease_free(gcs_actor_lease *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_mapping; i++)
        rpc_msg_free(&l->mapping[i]->base);
    rc_free(l->mapping);
    rc_free(l);
}

/* ---- queue -------------------------------------------------------------------------- */

static void gcs__unqueue(gcs_actor_sched *s, gcs_actor *a)
{
    if (!a->queued)
        return;
    rc_list_remove(&a->qlink);
    a->queued = 0;
    a->held_back = 0;
    s->n_queued--;
    gcs_actor__unref(a);
}

static void gcs__timer_cb(uv_timer_t *t);

/* Makes sure a pass runs by due_ms. */
static void gcs__arm(gcs_actor_manager *am, int64_t due_ms)
{
    gcs_actor_sched *s = &am->sched;
    if (s->stopped)
        return;
    int64_t now = rc_mono_ms();
    if (s->timer_due_ms && s->timer_due_ms <= due_ms)
        return;
    s->timer_due_ms = due_ms;
    uv_timer_start(&s->timer, gcs__timer_cb, (uint64_t)(due_ms > now ? due_ms - now : 0), 0);
}

void gcs_actor_sched_queue(gcs_actor *a, int64_t delay_ms)
{
    gcs_actor_manager *am = a->am;
    gcs_actor_sched *s = &am->sched;
    int64_t now = rc_mono_ms();
    a->not_before_ms = now + (delay_ms > 0 ? delay_ms : 0);
    if (!a->queued) {
        gcs_actor__ref(a);
        a->queued = 1;
        rc_list_insert_tail(&s->queue, &a->qlink);
        s->n_queued++;
    }
    gcs__arm(am, a->not_before_ms);
}

void gcs_actor_sched_kick(gcs_actor_manager *am, int placement_changed)
{
    gcs_actor_sched *s = &am->sched;
    if (!s->n_queued)
        return;
    int64_t now = rc_mono_ms();
    /* Actors waiting for a change of placement (GCS__UNTIL_KICKED) only move on one. */
    if (placement_changed) {
        rc_list *n;
        RC_LIST_FOREACH(n, &s->queue) {
            gcs_actor *a = rc_list_entry(n, gcs_actor, qlink);
            if (a->not_before_ms == GCS__UNTIL_KICKED)
                a->not_before_ms = now;
        }
    }
    gcs__arm(am, now);
}

/* ---- leases given back -------------------------------------------------------------- */

static void gcs__return_lease(gcs_actor_manager *am, const gcs_actor_lease *l, const char *why)
{
    rpc_client *cli = am->sched.stopped ? NULL : gcs_node_raylet_client(am->gcs->nodes, l->node_id);
    if (!cli)
        return;
    Ray__Rpc__ReturnWorkerLeaseRequest req = RAY__RPC__RETURN_WORKER_LEASE_REQUEST__INIT;
    req.worker_port = l->port;
    if (l->has_lease_id) {
        req.lease_id.data = (uint8_t *)l->lease_id;
        req.lease_id.len = RC_UNIQUE_ID_SIZE;
    }
    req.disconnect_worker = 1;
    req.disconnect_worker_error_detail = (char *)why;
    rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "ReturnWorkerLease", &req.base,
                    rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
}

static void gcs__worker_call_free(gcs__worker_call *wc)
{
    rc_list_remove(&wc->link);
    if (wc->cli)
        rpc_client_destroy(wc->cli);
    gcs_actor_lease_free(wc->lease);
    rc_free(wc);
}

static void gcs__killed(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs__worker_call *wc = arg;
    rpc_msg_free(reply);
    if (st->code != GRPC_STATUS_OK)
        RC_DEBUG("gcs: KillActor to %s ended with %s (the worker may have exited first)", rpc_client_target(wc->cli),
                 rpc_code_name(st->code));
    if (wc->lease && !wc->am->sched.stopped)
        gcs__return_lease(wc->am, wc->lease, "the actor stopped (graceful kill)");
    gcs__worker_call_free(wc);
}

void gcs_actor_sched_release(gcs_actor_manager *am, gcs_actor_lease *l, const uint8_t *actor_id, gcs_actor_kill kill,
                             const Ray__Rpc__ActorDeathCause *cause)
{
    gcs_actor_sched *s = &am->sched;
    if (s->stopped) {
        gcs_actor_lease_free(l);
        return;
    }
    if (kill != GCS_KILL_NONE && gcs_node_get_alive(am->gcs->nodes, l->node_id)) {
        gcs__worker_call *wc = RC_NEW(gcs__worker_call);
        wc->am = am;
        char target[128];
        snprintf(target, sizeof(target), "%s:%d", l->ip, l->port);
        if (rpc_client_create(am->gcs->rpc, target, NULL, &wc->cli) == 0) {
            Ray__Rpc__KillActorRequest req = RAY__RPC__KILL_ACTOR_REQUEST__INIT;
            req.intended_actor_id.data = (uint8_t *)actor_id;
            req.intended_actor_id.len = RC_ACTOR_ID_SIZE;
            req.force_kill = kill == GCS_KILL_FORCE;
            req.death_cause = (Ray__Rpc__ActorDeathCause *)cause;
            int64_t deadline = kill == GCS_KILL_FORCE ? rc_cfg.gcs_rpc_timeout_ms : rc_cfg.gcs_actor_graceful_kill_timeout_ms;
            rc_list_insert_head(&s->worker_calls, &wc->link);
            if (kill == GCS_KILL_GRACEFUL) {
                wc->lease = l;
                l = NULL;
            }
            if (rpc_client_call(wc->cli, &ray__rpc__core_worker_service__descriptor, "KillActor", &req.base,
                                deadline, gcs__killed, wc) < 0) {
                l = wc->lease;
                wc->lease = NULL;
                gcs__worker_call_free(wc);
            }
        } else {
            rc_free(wc);
        }
    }
    if (l) {
        gcs__return_lease(am, l, kill == GCS_KILL_NONE ? "the actor's worker died" : "the actor was stopped");
        gcs_actor_lease_free(l);
    }
}

/* ---- attempts ----------------------------------------------------------------------- */

static void gcs__attempt_free(gcs_actor_attempt *at)
{
    rc_list_remove(&at->link);
    if (at->worker)
        rpc_client_destroy(at->worker);
    rc_free(at);
}

/* Separates at from its actor; returns the actor (its reference now the caller's). */
static gcs_actor *gcs__attempt_detach(gcs_actor_attempt *at)
{
    gcs_actor *a = at->a;
    at->a = NULL;
    if (a && a->attempt == at)
        a->attempt = NULL;
    return a;
}

/* The attempt ended without a worker: a waits again after delay_ms. Frees at. */
static void gcs__attempt_retry(gcs_actor_attempt *at, int64_t delay_ms)
{
    gcs_actor *a = gcs__attempt_detach(at);
    gcs__attempt_free(at);
    if (!a)
        return;
    if (gcs_actor__live(a) && !a->am->stopped)
        gcs_actor_sched_queue(a, delay_ms);
    gcs_actor__unref(a);
}

static void gcs__leased(const rpc_status *st, ProtobufCMessage *reply, void *arg);

/* Asks node's raylet for a worker for at's actor. On failure at is queued again. */
static void gcs__request_lease(gcs_actor_attempt *at, const uint8_t *node_id, int grant_or_reject)
{
    gcs_actor_manager *am = at->am;
    gcs_actor *a = at->a;
    const Ray__Rpc__TaskSpec *spec = a->spec;
    rpc_client *cli = gcs_node_raylet_client(am->gcs->nodes, node_id);
    if (!cli)
        return gcs__attempt_retry(at, gcs__retry_ms());
    memcpy(at->node_id, node_id, RC_NODE_ID_SIZE);
    rc_id_random(at->lease_id, sizeof(at->lease_id));
    const Ray__Rpc__ActorCreationTaskSpec *cs = spec->actor_creation_task_spec;
    Ray__Rpc__LeaseSpec ls = RAY__RPC__LEASE_SPEC__INIT;
    ls.lease_id.data = at->lease_id;
    ls.lease_id.len = sizeof(at->lease_id);
    ls.job_id = spec->job_id;
    ls.caller_address = &am->gcs->self;
    ls.type = RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    ls.actor_id = cs->actor_id;
    ls.is_detached_actor = cs->is_detached;
    ls.max_actor_restarts = cs->max_actor_restarts;
    ls.n_required_resources = spec->n_required_resources;
    ls.required_resources = (Ray__Rpc__LeaseSpec__RequiredResourcesEntry **)spec->required_resources;
    ls.n_required_placement_resources = spec->n_required_placement_resources;
    ls.required_placement_resources =
        (Ray__Rpc__LeaseSpec__RequiredPlacementResourcesEntry **)spec->required_placement_resources;
    ls.scheduling_strategy = spec->scheduling_strategy;
    ls.label_selector = spec->label_selector;
    ls.depth = spec->depth;
    ls.parent_task_id = spec->parent_task_id;
    ls.language = spec->language;
    ls.function_descriptor = spec->function_descriptor;
    ls.max_retries = spec->max_retries;
    ls.attempt_number = (uint64_t)a->data->num_restarts;
    ls.task_name = spec->name;
    ls.rayc_extras = spec->rayc_extras;
    Ray__Rpc__RequestWorkerLeaseRequest req = RAY__RPC__REQUEST_WORKER_LEASE_REQUEST__INIT;
    req.lease_spec = &ls;
    req.grant_or_reject = grant_or_reject;
    if (rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "RequestWorkerLease", &req.base, -1,
                        gcs__leased, at) < 0)
        gcs__attempt_retry(at, gcs__retry_ms());
}

static void gcs__start(gcs_actor *a, const uint8_t *node_id)
{
    gcs_actor_manager *am = a->am;
    gcs_actor_sched *s = &am->sched;
    gcs__unqueue(s, a);
    gcs_actor_attempt *at = RC_NEW(gcs_actor_attempt);
    at->am = am;
    at->a = a;
    gcs_actor__ref(a);
    a->attempt = at;
    at->started_ms = rc_mono_ms();
    rc_list_insert_head(&s->attempts, &at->link);
    gcs__request_lease(at, node_id, 0);
}

static void gcs__pushed(const rpc_status *st, ProtobufCMessage *reply, void *arg);

static void gcs__push(gcs_actor_attempt *at)
{
    gcs_actor_manager *am = at->am;
    gcs_actor *a = at->a;
    const gcs_actor_lease *l = a->lease;
    char target[128];
    snprintf(target, sizeof(target), "%s:%d", l->ip, l->port);
    at->pushing = 1;
    if (rpc_client_create(am->gcs->rpc, target, NULL, &at->worker) < 0) {
        rpc_status err = {GRPC_STATUS_UNAVAILABLE, "cannot create a client for the worker"};
        return gcs__pushed(&err, NULL, at);
    }
    Ray__Rpc__PushTaskRequest req = RAY__RPC__PUSH_TASK_REQUEST__INIT;
    req.intended_worker_id.data = (uint8_t *)l->worker_id;
    req.intended_worker_id.len = RC_WORKER_ID_SIZE;
    req.task_spec = a->spec;
    req.resource_mapping = l->mapping;
    req.n_resource_mapping = l->n_mapping;
    if (rpc_client_call(at->worker, &ray__rpc__core_worker_service__descriptor, "PushTask", &req.base, -1, gcs__pushed,
                        at) < 0) {
        rpc_status err = {GRPC_STATUS_UNAVAILABLE, "cannot call the worker"};
        gcs__pushed(&err, NULL, at);
    }
}

static gcs_actor_lease *gcs__lease_from(const gcs_actor_attempt *at, const Ray__Rpc__RequestWorkerLeaseReply *r)
{
    gcs_actor_lease *l = RC_NEW(gcs_actor_lease);
    const Ray__Rpc__Address *w = r->worker_address;
    memcpy(l->node_id, w->node_id.len == RC_NODE_ID_SIZE ? w->node_id.data : at->node_id, RC_NODE_ID_SIZE);
    if (w->worker_id.len == RC_WORKER_ID_SIZE)
        memcpy(l->worker_id, w->worker_id.data, RC_WORKER_ID_SIZE);
    memcpy(l->lease_id, at->lease_id, RC_UNIQUE_ID_SIZE);
    l->has_lease_id = 1;
    snprintf(l->ip, sizeof(l->ip), "%s", w->ip_address ? w->ip_address : "");
    l->port = w->port;
    l->pid = r->worker_pid;
    l->n_mapping = r->n_resource_mapping;
    l->mapping = rc_calloc(l->n_mapping ? l->n_mapping : 1, sizeof(*l->mapping));
    for (size_t i = 0; i < l->n_mapping; i++)
        l->mapping[i] = (Ray__Rpc__ResourceMapEntry *)rpc_msg_dup(&r->resource_mapping[i]->base);
    return l;
}

static void gcs__leased(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs_actor_attempt *at = arg;
    gcs_actor_manager *am = at->am;
    const Ray__Rpc__RequestWorkerLeaseReply *r = (const void *)reply;
    int granted = st->code == GRPC_STATUS_OK && !r->canceled && !r->rejected && r->worker_address &&
                  r->worker_address->port > 0 &&
                  !(r->retry_at_raylet_address && r->retry_at_raylet_address->port > 0);
    char hex[RC_ID_HEX_MAX], node[RC_ID_HEX_MAX];
    gcs__hex(at->node_id, RC_NODE_ID_SIZE, node);
    if (!at->a || am->sched.stopped) {
        if (granted && !am->sched.stopped) { /* nobody wants it any more */
            gcs_actor_lease *l = gcs__lease_from(at, r);
            gcs__return_lease(am, l, "the actor no longer needs this worker");
            gcs_actor_lease_free(l);
        }
        rpc_msg_free(reply);
        gcs__attempt_retry(at, 0);
        return;
    }
    gcs_actor *a = at->a;
    gcs__hex(a->id, RC_ACTOR_ID_SIZE, hex);
    if (st->code != GRPC_STATUS_OK) {
        RC_INFO("gcs: actor %s: RequestWorkerLease to node %.16s failed: %s; trying again", hex, node, st->message);
        gcs__attempt_retry(at, gcs__retry_ms());
    } else if (r->canceled) {
        const char *why = r->scheduling_failure_message && r->scheduling_failure_message[0]
                              ? r->scheduling_failure_message
                              : "the raylet cancelled the lease request";
        if (r->failure_type ==
            RAY__RPC__REQUEST_WORKER_LEASE_REPLY__SCHEDULING_FAILURE_TYPE__SCHEDULING_CANCELLED_UNSCHEDULABLE) {
            RC_INFO("gcs: actor %s is unschedulable on node %.16s: %s", hex, node, why);
            if (!a->infeasible_since_ms || a->infeasible_since_ms > at->started_ms)
                a->infeasible_since_ms = at->started_ms;
            rc_free(a->infeasible_why);
            a->infeasible_why = rc_strdup(why);
            gcs__attempt_retry(at, 0);
        } else {
            RC_INFO("gcs: actor %s: lease request cancelled by node %.16s: %s", hex, node, why);
            gcs__attempt_retry(at, gcs__retry_ms());
        }
    } else if (r->rejected) {
        gcs__attempt_retry(at, gcs__retry_ms());
    } else if (r->retry_at_raylet_address && r->retry_at_raylet_address->port > 0) {
        const Ray__Rpc__Address *to = r->retry_at_raylet_address;
        if (to->node_id.len == RC_NODE_ID_SIZE && gcs_node_get_alive(am->gcs->nodes, to->node_id.data)) {
            uint8_t target[RC_NODE_ID_SIZE];
            memcpy(target, to->node_id.data, RC_NODE_ID_SIZE);
            rpc_msg_free(reply);
            gcs__request_lease(at, target, 1);
            return;
        }
        gcs__attempt_retry(at, gcs__retry_ms());
    } else if (granted) {
        gcs_actor__set_lease(a, gcs__lease_from(at, r));
        a->infeasible_since_ms = 0;
        RC_INFO("gcs: actor %s: worker %s:%d (pid %u) leased on node %.16s; pushing its creation task", hex,
                a->lease->ip, a->lease->port, a->lease->pid, node);
        rpc_msg_free(reply);
        gcs__push(at);
        return;
    } else {
        RC_WARN("gcs: actor %s: a lease reply from node %.16s grants nothing; trying again", hex, node);
        gcs__attempt_retry(at, gcs__retry_ms());
    }
    rpc_msg_free(reply);
}

static void gcs__pushed(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs_actor_attempt *at = arg;
    gcs_actor_manager *am = at->am;
    const Ray__Rpc__PushTaskReply *r = (const void *)reply;
    gcs_actor *a = gcs__attempt_detach(at);
    gcs__attempt_free(at);
    if (a && gcs_actor__live(a) && !am->stopped) {
        if (st->code != GRPC_STATUS_OK) {
            char why[600];
            snprintf(why, sizeof(why), "the worker running its creation task is unreachable (%s: %s)",
                     rpc_code_name(st->code), st->message);
            gcs_actor__worker_unreachable(a, why);
        } else if (r->is_application_error) {
            gcs_actor__creation_failed(a, r->task_execution_error && r->task_execution_error[0]
                                              ? r->task_execution_error
                                              : "the actor's constructor failed");
        } else {
            gcs_actor__created(a);
        }
    }
    if (a)
        gcs_actor__unref(a);
    rpc_msg_free(reply);
}

void gcs_actor_sched_cancel(gcs_actor *a)
{
    gcs_actor_manager *am = a->am;
    gcs__unqueue(&am->sched, a);
    a->infeasible_since_ms = 0;
    gcs_actor_attempt *at = a->attempt;
    if (!at)
        return;
    gcs__attempt_detach(at);
    if (!at->pushing && !am->sched.stopped) {
        rpc_client *cli = gcs_node_raylet_client(am->gcs->nodes, at->node_id);
        if (cli) {
            Ray__Rpc__CancelWorkerLeaseRequest req = RAY__RPC__CANCEL_WORKER_LEASE_REQUEST__INIT;
            req.lease_id.data = at->lease_id;
            req.lease_id.len = sizeof(at->lease_id);
            rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "CancelWorkerLease", &req.base,
                            rc_cfg.gcs_rpc_timeout_ms, rpc_reply_drop, NULL);
        }
    }
    gcs_actor__unref(a); /* the attempt's reference */
}

/* ---- the pass ----------------------------------------------------------------------- */

static int gcs__pg_strategy(const Ray__Rpc__TaskSpec *spec, const Ray__Rpc__PlacementGroupSchedulingStrategy **out)
{
    const Ray__Rpc__SchedulingStrategy *st = spec->scheduling_strategy;
    if (!st ||
        st->scheduling_strategy_case !=
            RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY)
        return 0;
    *out = st->placement_group_scheduling_strategy;
    return 1;
}

/* The resources that decide where the actor goes: Ray's required_placement_resources when
 * given (the default actor: {CPU: 1} to place, nothing held), else required_resources. */
static void gcs__placement(const Ray__Rpc__TaskSpec *spec, const gcs_res_entry *const **entries, size_t *n)
{
    if (spec->n_required_placement_resources) {
        *entries = (const gcs_res_entry *const *)spec->required_placement_resources;
        *n = spec->n_required_placement_resources;
    } else {
        *entries = (const gcs_res_entry *const *)spec->required_resources;
        *n = spec->n_required_resources;
    }
}

/* No node can ever hold a: it waits as infeasible demand until the timeout. Returns the
 * time it must be looked at again (0: never by itself). */
static int64_t gcs__infeasible(gcs_actor *a, const char *why, int64_t now)
{
    if (!a->infeasible_since_ms)
        a->infeasible_since_ms = now;
    if (why != a->infeasible_why) {
        rc_free(a->infeasible_why);
        a->infeasible_why = rc_strdup(why);
    }
    int64_t timeout = rc_cfg.unschedulable_task_timeout_ms;
    if (timeout >= 0 && now - a->infeasible_since_ms >= timeout) {
        char message[SCHED_WHY_MAX + 200];
        snprintf(message, sizeof(message), "no node can hold this actor (waited %lld ms): %s",
                 (long long)(now - a->infeasible_since_ms), a->infeasible_why);
        gcs_actor__unschedulable(a, message);
        return 0;
    }
    a->held_back = 1;
    a->not_before_ms = GCS__UNTIL_KICKED;
    return timeout >= 0 ? a->infeasible_since_ms + timeout : 0;
}

/* Decides for one queued actor whose pause is over. Returns when to look again if it stays
 * queued (0: only on a kick). */
static int64_t gcs__try(gcs_actor_manager *am, gcs_actor *a, int64_t now)
{
    const Ray__Rpc__TaskSpec *spec = a->spec;
    const Ray__Rpc__PlacementGroupSchedulingStrategy *pg;
    char hex[RC_ID_HEX_MAX];
    if (gcs__pg_strategy(spec, &pg)) {
        uint8_t node[RC_NODE_ID_SIZE];
        int rc = pg->placement_group_id.len == RC_PG_ID_SIZE
                     ? gcs_pg_bundle_node(am->gcs->pgs, pg->placement_group_id.data,
                                          pg->placement_group_bundle_index, node)
                     : RC_ENOENT;
        if (rc == 0) {
            gcs__start(a, node);
            return 0;
        }
        if (rc == RC_EBUSY) { /* the group is not placed yet: its manager kicks us */
            a->held_back = 0;
            a->not_before_ms = GCS__UNTIL_KICKED;
            return 0;
        }
        char why[300];
        snprintf(why, sizeof(why), rc == RC_ERANGE ? "placement group %s has no bundle %lld"
                                                    : "placement group %s does not exist (it was removed)",
                 gcs__hex(pg->placement_group_id.data, pg->placement_group_id.len < RC_PG_ID_SIZE
                                                           ? pg->placement_group_id.len
                                                           : RC_PG_ID_SIZE,
                          hex),
                 (long long)pg->placement_group_bundle_index);
        gcs_actor__group_gone(a, why);
        return 0;
    }
    const gcs_res_entry *const *entries;
    size_t n;
    gcs__placement(spec, &entries, &n);
    gcs_sched_req req;
    char err[400];
    sched_view *sv = gcs_view_sched(am->gcs->view);
    if (gcs_view_build_request(am->gcs->view, entries, n, spec->label_selector, spec->scheduling_strategy,
                               spec->rayc_extras, &req, err, sizeof(err)) < 0) {
        gcs_sched_req_clear(&req);
        gcs_actor__unschedulable(a, err);
        return 0;
    }
    sched_decision d;
    sched_status status = sched_schedule(sv, &req.req, &req.opts, gcs_view_rng(am->gcs->view), &d);
    int64_t again = 0;
    switch (status) {
    case SCHED_OK: {
        sched_alloc alloc; /* taken until the node's next report says what is really free */
        sched_node_allocate(sv, d.node, &req.req, &alloc);
        gcs__start(a, sched_node_id(d.node));
        break;
    }
    case SCHED_NOT_NOW:
        if (d.node) { /* its raylet queues it, and reports it as demand */
            gcs__start(a, sched_node_id(d.node));
            break;
        }
        /* fall through */
    case SCHED_UNAVAILABLE:
        a->held_back = 1;
        a->not_before_ms = now + gcs__retry_ms();
        again = a->not_before_ms;
        break;
    case SCHED_NEVER:
        again = gcs__infeasible(a, d.why, now);
        break;
    default:
        gcs_actor__unschedulable(a, d.why);
        break;
    }
    gcs_sched_req_clear(&req);
    return again;
}

static void gcs__pass(gcs_actor_manager *am)
{
    gcs_actor_sched *s = &am->sched;
    if (s->stopped || s->in_pass)
        return;
    s->in_pass = 1;
    s->timer_due_ms = 0;
    uv_timer_stop(&s->timer);
    int64_t now = rc_mono_ms(), next = 0;
    /* A snapshot: deciding for one actor may queue, unqueue or kill others. */
    size_t n = 0;
    gcs_actor **list = rc_malloc((s->n_queued ? s->n_queued : 1) * sizeof(*list));
    rc_list *qn;
    RC_LIST_FOREACH(qn, &s->queue) {
        gcs_actor *a = rc_list_entry(qn, gcs_actor, qlink);
        gcs_actor__ref(a);
        list[n++] = a;
    }
    for (size_t i = 0; i < n; i++) {
        gcs_actor *a = list[i];
        int64_t again = 0;
        int64_t timeout = rc_cfg.unschedulable_task_timeout_ms;
        if (!a->queued || !gcs_actor__live(a) || am->stopped)
            ;
        else if (a->infeasible_since_ms && timeout >= 0 && now - a->infeasible_since_ms >= timeout)
            gcs__infeasible(a, a->infeasible_why ? a->infeasible_why : "no node can hold it", now);
        else if (a->not_before_ms == GCS__UNTIL_KICKED)
            again = a->infeasible_since_ms && timeout >= 0 ? a->infeasible_since_ms + timeout : 0;
        else if (a->not_before_ms > now)
            again = a->not_before_ms;
        else
            again = gcs__try(am, a, now);
        if (again && a->queued && (!next || again < next))
            next = again;
        gcs_actor__unref(a);
    }
    rc_free(list);
    s->in_pass = 0;
    if (next)
        gcs__arm(am, next);
}

static void gcs__timer_cb(uv_timer_t *t)
{
    gcs_actor_manager *am = t->data;
    am->sched.timer_due_ms = 0;
    gcs__pass(am);
}

/* ---- demand ------------------------------------------------------------------------- */

void gcs_actor_sched_demand(gcs_actor_manager *am, void (*fn)(const Ray__Rpc__ResourceDemand *d, void *arg), void *arg)
{
    rc_list *qn;
    RC_LIST_FOREACH(qn, &am->sched.queue) {
        gcs_actor *a = rc_list_entry(qn, gcs_actor, qlink);
        const Ray__Rpc__PlacementGroupSchedulingStrategy *pg;
        if (!a->held_back || gcs__pg_strategy(a->spec, &pg))
            continue;
        const gcs_res_entry *const *entries;
        size_t n;
        gcs__placement(a->spec, &entries, &n);
        Ray__Rpc__ResourceDemand d = RAY__RPC__RESOURCE_DEMAND__INIT;
        d.shape = (Ray__Rpc__ResourceDemand__ShapeEntry **)entries;
        d.n_shape = n;
        if (a->infeasible_since_ms)
            d.num_infeasible_requests_queued = 1;
        else
            d.num_ready_requests_queued = 1;
        Ray__Rpc__LabelSelector *selectors[1] = {a->spec->label_selector};
        if (a->spec->label_selector && a->spec->label_selector->n_label_constraints) {
            d.label_selectors = selectors;
            d.n_label_selectors = 1;
        }
        fn(&d, arg);
    }
}

/* ---- lifetime ----------------------------------------------------------------------- */

void gcs_actor_sched_init(gcs_actor_manager *am)
{
    uv_timer_init(am->gcs->loop, &am->sched.timer);
    am->sched.timer.data = am;
    rc_list_init(&am->sched.queue);
    rc_list_init(&am->sched.attempts);
    rc_list_init(&am->sched.worker_calls);
}

void gcs_actor_sched_shutdown(gcs_actor_manager *am)
{
    gcs_actor_sched *s = &am->sched;
    if (s->stopped)
        return;
    s->stopped = 1;
    uv_timer_stop(&s->timer);
    /* Their callbacks run with CANCELLED and only clean up. */
    rc_list *n;
    RC_LIST_FOREACH(n, &s->attempts) {
        gcs_actor_attempt *at = rc_list_entry(n, gcs_actor_attempt, link);
        if (at->worker) {
            rpc_client_destroy(at->worker);
            at->worker = NULL;
        }
    }
    RC_LIST_FOREACH(n, &s->worker_calls) {
        gcs__worker_call *wc = rc_list_entry(n, gcs__worker_call, link);
        if (wc->cli) {
            rpc_client_destroy(wc->cli);
            wc->cli = NULL;
        }
    }
    while ((n = rc_list_first(&s->queue)))
        gcs__unqueue(s, rc_list_entry(n, gcs_actor, qlink));
}

static void gcs__timer_closed(uv_handle_t *h)
{
    gcs_actor_manager *am = h->data;
    am->sched.closed(am);
}

void gcs_actor_sched_close(gcs_actor_manager *am, void (*done)(gcs_actor_manager *am))
{
    am->sched.closed = done;
    uv_close((uv_handle_t *)&am->sched.timer, gcs__timer_closed);
}
