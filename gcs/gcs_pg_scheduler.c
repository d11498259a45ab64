/*
 * GCS placement-group scheduler: places the unplaced bundles of waiting groups and reserves
 * them on raylets with two-phase commit (Ray's GcsPlacementGroupScheduler).
 *
 * Groups wait in one queue (groups that lost bundles go first). A pass over the queue runs
 * when a group is queued, when the view changes (nodes join or die; a raylet reports) and
 * when a timer ends a group's pause. For each group whose pause is over the unplaced
 * bundles go to sched_place_bundles over the GCS's view with the group's strategy; bundles
 * a group still holds count for STRICT_SPREAD (their nodes are left out while the lost ones
 * are placed; STRICT_PACK groups lose all their bundles with their one node).
 *   - OK: the bundles are taken from the view and reserved. Phase 1: PrepareBundleResources
 *     to every node involved, each with its bundles (Bundle.node_id set). If any prepare
 *     fails, CancelResourceReserve goes to every bundle that was prepared and the group
 *     waits (gcs_create_placement_group_retry_min_interval_ms, doubling up to the max).
 *     Phase 2: CommitBundleResources to every node; a failed commit cancels every bundle
 *     of the attempt the same way. Then the bundles are placed (gcs_pg__placed), and the
 *     GCS's copy of each node's last report gets the new bundle resources at once
 *     (gcs_resource_bundles: what the raylet's next report will say), so they show by the
 *     time the group is CREATED; a cancelled bundle's resources leave it the same way.
 *   - NOT_NOW: waits (NO_RESOURCES) for its pause to end or nodes to change.
 *   - NEVER: waits (INFEASIBLE) with the scheduler's sentence until the set of nodes
 *     changes.
 * An attempt whose group was removed (or the GCS stopping) still ends its calls and then
 * cancels what it reserved.
 *
 * After a GCS restart nothing is placed until every live raylet has been told which
 * bundles are in use (ReleaseUnusedBundles), so reservations a crashed GCS left behind are
 * given back first.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "gcs_pg_int.h"
#include "node_manager.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

struct gcs_pg_attempt {
    gcs_pg_manager *pm;
    gcs_pg *pg; /* NULL once abandoned; holds a reference while set */
    rc_list link; /* on the scheduler's attempts */
    size_t n;                        /* bundles reserved by this attempt */
    uint32_t *index;                 /* their indices in the group */
    uint8_t (*node)[RC_NODE_ID_SIZE]; /* where each goes */
    uint8_t *prepared;               /* the raylet reserved it (prepared or committed) */
    Ray__Rpc__Bundle **bundles;      /* owned copies with node_id set */
    int calls;                       /* calls in flight */
    int committing;
    int failed;
    char why[300];
};

/* One call to one node, covering the attempt's bundles on it. */
typedef struct gcs__node_call {
    gcs_pg_attempt *at;
    uint8_t node[RC_NODE_ID_SIZE];
} gcs__node_call;

static char *gcs__hex(const uint8_t *id, char *buf)
{
    return rc_id_hex(id, RC_PG_ID_SIZE, buf);
}

/* ---- queue -------------------------------------------------------------------------- */

static void gcs__timer_cb(uv_timer_t *t);

static void gcs__arm(gcs_pg_manager *pm, int64_t due_ms)
{
    gcs_pg_sched *s = &pm->sched;
    if (s->stopped)
        return;
    int64_t now = rc_mono_ms();
    if (s->timer_due_ms && s->timer_due_ms <= due_ms)
        return;
    s->timer_due_ms = due_ms;
    uv_timer_start(&s->timer, gcs__timer_cb, (uint64_t)(due_ms > now ? due_ms - now : 0), 0);
}

static void gcs__unqueue(gcs_pg_sched *s, gcs_pg *pg)
{
    if (!pg->queued)
        return;
    rc_list_remove(&pg->qlink);
    pg->queued = 0;
    s->n_queued--;
    gcs_pg__unref(pg);
}

void gcs_pg_sched_queue(gcs_pg *pg, int64_t delay_ms, int front)
{
    gcs_pg_manager *pm = pg->pm;
    gcs_pg_sched *s = &pm->sched;
    if (s->stopped)
        return;
    pg->not_before_ms = rc_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    if (!pg->queued) {
        gcs_pg__ref(pg);
        pg->queued = 1;
        if (front)
            rc_list_insert_head(&s->queue, &pg->qlink);
        else
            rc_list_insert_tail(&s->queue, &pg->qlink);
        s->n_queued++;
    }
    if (!pg->n_attempts)
        pg->sched_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__QUEUED;
    if (!s->held)
        gcs__arm(pm, pg->not_before_ms);
}

void gcs_pg_sched_kick(gcs_pg_manager *pm, int nodes_changed)
{
    gcs_pg_sched *s = &pm->sched;
    if (!s->n_queued || s->stopped)
        return;
    int64_t now = rc_mono_ms(), due = 0;
    rc_list *n;
    RC_LIST_FOREACH(n, &s->queue) {
        gcs_pg *pg = rc_list_entry(n, gcs_pg, qlink);
        if (nodes_changed) { /* a new node may take what could not go anywhere */
            pg->not_before_ms = now;
            pg->backoff_ms = 0;
        }
        if (pg->not_before_ms == INT64_MAX)
            continue;
        if (!due || pg->not_before_ms < due)
            due = pg->not_before_ms;
    }
    if (due && !s->held)
        gcs__arm(pm, due);
}

/* ---- cancelling reservations -------------------------------------------------------- */

/* A CancelResourceReserve in flight. */
typedef struct gcs__cancel {
    gcs_pg_manager *pm;
    Ray__Rpc__Bundle *bundle; /* owned copy */
} gcs__cancel;

static void gcs__cancelled(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs__cancel *c = arg;
    if (st->code != GRPC_STATUS_OK)
        RC_DEBUG("gcs: CancelResourceReserve failed: %s", st->message);
    else if (!c->pm->sched.stopped) /* shown at once, until the raylet reports the same */
        gcs_resource_bundles(c->pm->gcs->res, c->bundle->node_id.data, (const Ray__Rpc__Bundle *const *)&c->bundle, 1,
                             0);
    rpc_msg_free(reply);
    rpc_msg_free(&c->bundle->base);
    rc_free(c);
}

void gcs_pg_sched_cancel_bundle(gcs_pg_manager *pm, const Ray__Rpc__Bundle *b)
{
    if (pm->sched.stopped || b->node_id.len != RC_NODE_ID_SIZE)
        return;
    rpc_client *cli = gcs_node_raylet_client(pm->gcs->nodes, b->node_id.data);
    if (!cli)
        return;
    gcs__cancel *c = RC_NEW(gcs__cancel);
    c->pm = pm;
    c->bundle = (Ray__Rpc__Bundle *)rpc_msg_dup(&b->base);
    Ray__Rpc__CancelResourceReserveRequest req = RAY__RPC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
    req.bundle_spec = (Ray__Rpc__Bundle *)b;
    if (rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "CancelResourceReserve", &req.base,
                        rc_cfg.gcs_rpc_timeout_ms, gcs__cancelled, c) < 0) {
        rpc_msg_free(&c->bundle->base);
        rc_free(c);
    }
}

/* ---- attempts ----------------------------------------------------------------------- */

static void gcs__attempt_free(gcs_pg_attempt *at)
{
    rc_list_remove(&at->link);
    for (size_t i = 0; i < at->n; i++)
        rpc_msg_free(&at->bundles[i]->base);
    rc_free(at->bundles);
    rc_free(at->index);
    rc_free(at->node);
    rc_free(at->prepared);
    rc_free(at);
}

static int64_t gcs__backoff(gcs_pg *pg)
{
    int64_t min = rc_cfg.gcs_create_placement_group_retry_min_interval_ms > 0
                      ? rc_cfg.gcs_create_placement_group_retry_min_interval_ms
                      : 1;
    int64_t max = rc_cfg.gcs_create_placement_group_retry_max_interval_ms > min
                      ? rc_cfg.gcs_create_placement_group_retry_max_interval_ms
                      : min;
    pg->backoff_ms = pg->backoff_ms ? pg->backoff_ms * 2 : min;
    if (pg->backoff_ms > max)
        pg->backoff_ms = max;
    return pg->backoff_ms;
}

/* The attempt is over: on failure what it reserved is cancelled and its group waits
 * again; on success the group's record takes the bundles. Frees at. */
static void gcs__attempt_end(gcs_pg_attempt *at)
{
    gcs_pg_manager *pm = at->pm;
    gcs_pg *pg = at->pg;
    at->pg = NULL;
    if (pg && pg->attempt == at)
        pg->attempt = NULL;
    int ok = pg && !at->failed && !pm->stopped && gcs_pg__live(pg);
    char hex[RC_ID_HEX_MAX];
    if (!ok) {
        for (size_t i = 0; i < at->n; i++)
            if (at->prepared[i])
                gcs_pg_sched_cancel_bundle(pm, at->bundles[i]);
        if (pg && gcs_pg__live(pg) && !pm->stopped) {
            int64_t delay = gcs__backoff(pg);
            RC_INFO("gcs: placement group %s: reserving %zu bundles failed (%s); trying again in %lld ms",
                    gcs__hex(pg->id, hex), at->n, at->why[0] ? at->why : "abandoned", (long long)delay);
            pg->sched_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__FAILED_TO_COMMIT_RESOURCES;
            gcs_pg_sched_queue(pg, delay, 1);
        }
    } else {
        pg->backoff_ms = 0;
        pg->sched_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__FINISHED;
        for (size_t i = 0; i < at->n; i++)
            gcs_resource_bundles(pm->gcs->res, at->node[i], (const Ray__Rpc__Bundle *const *)&at->bundles[i], 1, 1);
        gcs_pg__placed(pg, at->index, (const uint8_t(*)[RC_NODE_ID_SIZE])at->node, at->n);
    }
    if (pg)
        gcs_pg__unref(pg);
    gcs__attempt_free(at);
}

static void gcs__phase_call(gcs_pg_attempt *at, const char *method);

/* One call of the current phase ended: once none is left, go on (prepare → commit) or
 * end. */
static void gcs__settle(gcs_pg_attempt *at)
{
    if (--at->calls > 0)
        return;
    if (at->failed || !at->pg || at->pm->stopped || at->committing)
        return gcs__attempt_end(at);
    at->committing = 1;
    gcs__phase_call(at, "CommitBundleResources");
}

static void gcs__node_answered(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs__node_call *nc = arg;
    gcs_pg_attempt *at = nc->at;
    int ok = st->code == GRPC_STATUS_OK;
    if (ok && !at->committing)
        ok = ((Ray__Rpc__PrepareBundleResourcesReply *)reply)->success;
    for (size_t i = 0; i < at->n; i++)
        if (ok && !memcmp(at->node[i], nc->node, RC_NODE_ID_SIZE))
            at->prepared[i] = 1;
    if (!ok && !at->failed) {
        char node_hex[RC_ID_HEX_MAX];
        at->failed = 1;
        snprintf(at->why, sizeof(at->why), "%s on node %.16s: %s",
                 at->committing ? "CommitBundleResources" : "PrepareBundleResources",
                 rc_id_hex(nc->node, RC_NODE_ID_SIZE, node_hex),
                 st->code == GRPC_STATUS_OK ? "the raylet cannot reserve them" : st->message);
    }
    rpc_msg_free(reply);
    rc_free(nc);
    gcs__settle(at);
}

/* Sends method (Prepare or Commit) to every node of the attempt with its bundles there. */
static void gcs__phase_call(gcs_pg_attempt *at, const char *method)
{
    gcs_pg_manager *pm = at->pm;
    Ray__Rpc__Bundle **mine = rc_calloc(at->n, sizeof(*mine));
    uint8_t *done = rc_calloc(at->n, 1);
    at->calls = 1; /* held until every call is out, so no answer ends the phase early */
    for (size_t i = 0; i < at->n; i++) {
        if (done[i])
            continue;
        size_t k = 0;
        for (size_t j = i; j < at->n; j++)
            if (!done[j] && !memcmp(at->node[j], at->node[i], RC_NODE_ID_SIZE)) {
                done[j] = 1;
                mine[k++] = at->bundles[j];
            }
        rpc_client *cli = pm->sched.stopped ? NULL : gcs_node_raylet_client(pm->gcs->nodes, at->node[i]);
        gcs__node_call *nc = RC_NEW(gcs__node_call);
        nc->at = at;
        memcpy(nc->node, at->node[i], RC_NODE_ID_SIZE);
        at->calls++;
        /* Both requests are {repeated Bundle bundle_specs = 1}. */
        Ray__Rpc__PrepareBundleResourcesRequest preq = RAY__RPC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
        Ray__Rpc__CommitBundleResourcesRequest creq = RAY__RPC__COMMIT_BUNDLE_RESOURCES_REQUEST__INIT;
        preq.bundle_specs = creq.bundle_specs = mine;
        preq.n_bundle_specs = creq.n_bundle_specs = k;
        ProtobufCMessage *req = at->committing ? &creq.base : &preq.base;
        if (!cli || rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, method, req,
                                    rc_cfg.gcs_rpc_timeout_ms, gcs__node_answered, nc) < 0) {
            rpc_status err = {GRPC_STATUS_UNAVAILABLE, "the node is not alive"};
            gcs__node_answered(&err, NULL, nc);
        }
    }
    rc_free(done);
    rc_free(mine);
    gcs__settle(at);
}

static void gcs__start(gcs_pg *pg, const uint32_t *index, sched_node *const *nodes, size_t n)
{
    gcs_pg_manager *pm = pg->pm;
    gcs_pg_sched *s = &pm->sched;
    gcs_pg_attempt *at = RC_NEW(gcs_pg_attempt);
    at->pm = pm;
    at->pg = pg;
    gcs_pg__ref(pg);
    pg->attempt = at;
    at->n = n;
    at->index = rc_calloc(n, sizeof(*at->index));
    at->node = rc_calloc(n, RC_NODE_ID_SIZE);
    at->prepared = rc_calloc(n, 1);
    at->bundles = rc_calloc(n, sizeof(*at->bundles));
    for (size_t i = 0; i < n; i++) {
        at->index[i] = index[i];
        memcpy(at->node[i], sched_node_id(nodes[i]), RC_NODE_ID_SIZE);
        Ray__Rpc__Bundle b;
        gcs_pg__bundle_for(pg->data->bundles[index[i]], at->node[i], &b);
        at->bundles[i] = (Ray__Rpc__Bundle *)rpc_msg_dup(&b.base);
    }
    rc_list_insert_head(&s->attempts, &at->link);
    pg->n_attempts++;
    if (!pg->started_ns)
        pg->started_ns = rc_mono_ns();
    pg->sched_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__SCHEDULING_STARTED;
    gcs__phase_call(at, "PrepareBundleResources");
}

void gcs_pg_sched_cancel(gcs_pg *pg)
{
    gcs__unqueue(&pg->pm->sched, pg);
    gcs_pg_attempt *at = pg->attempt;
    if (!at)
        return;
    pg->attempt = NULL;
    at->pg = NULL;
    gcs_pg__unref(pg); /* the attempt's reference; it cancels its bundles when its calls end */
}

/* ---- the pass ----------------------------------------------------------------------- */

/* Tries to place pg's unplaced bundles. Returns when to look again while it waits (0:
 * only when kicked). */
static int64_t gcs__try(gcs_pg *pg, int64_t now)
{
    gcs_pg_manager *pm = pg->pm;
    sched_view *sv = gcs_view_sched(pm->gcs->view);
    const gcs_pg_record *d = pg->data;
    size_t nb = d->n_bundles, n = 0;
    uint32_t *index = rc_calloc(nb, sizeof(*index));
    gcs_sched_req *reqs = rc_calloc(nb, sizeof(*reqs));
    sched_request *plain = rc_calloc(nb, sizeof(*plain));
    sched_node **nodes = rc_calloc(nb, sizeof(*nodes));
    sched_node **hidden = rc_calloc(nb, sizeof(*hidden));
    size_t n_hidden = 0;
    char err[300] = "";
    int bad = 0;
    for (size_t i = 0; i < nb; i++) {
        const Ray__Rpc__Bundle *b = d->bundles[i];
        if (b->node_id.len == RC_NODE_ID_SIZE) {
            /* Held by the group: STRICT_SPREAD keeps new bundles off that node. */
            sched_node *held = sched_view_find(sv, b->node_id.data);
            if (d->strategy == RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD && held && sched_node_is_alive(held)) {
                sched_node_set_alive(sv, held, 0);
                hidden[n_hidden++] = held;
            }
            continue;
        }
        if (gcs_view_bundle_request(pm->gcs->view, b, &reqs[n], err, sizeof(err)) < 0)
            bad = 1;
        plain[n] = reqs[n].req;
        index[n++] = (uint32_t)i;
    }
    sched_decision dec;
    sched_status status = SCHED_INVALID;
    if (bad)
        snprintf(dec.why, sizeof(dec.why), "%s", err);
    else if (n)
        status = sched_place_bundles(sv, plain, n, (sched_pg_strategy)d->strategy, gcs_view_rng(pm->gcs->view), nodes,
                                     &dec);
    for (size_t i = 0; i < n_hidden; i++)
        sched_node_set_alive(sv, hidden[i], 1);
    int64_t again = 0;
    char hex[RC_ID_HEX_MAX];
    if (!n) { /* nothing left to place */
        gcs__unqueue(&pm->sched, pg);
        if (d->state != RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED)
            gcs_pg__placed(pg, NULL, NULL, 0);
    } else if (status == SCHED_OK) {
        sched_alloc *allocs = rc_calloc(n, sizeof(*allocs));
        sched_bundles_allocate(sv, plain, n, nodes, allocs); /* until the next reports */
        rc_free(allocs);
        pg->infeasible = 0;
        gcs__unqueue(&pm->sched, pg);
        gcs__start(pg, index, nodes, n);
    } else if (status == SCHED_NOT_NOW) {
        pg->infeasible = 0;
        rc_free(pg->why); /* why it waits, for GetPlacementGroup */
        pg->why = rc_strdup(dec.why);
        pg->sched_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__NO_RESOURCES;
        pg->not_before_ms = now + gcs__backoff(pg);
        again = pg->not_before_ms;
    } else {
        if (!pg->infeasible || !pg->why || strcmp(pg->why, dec.why))
            RC_INFO("gcs: placement group %s can never be placed as things are: %s", gcs__hex(pg->id, hex), dec.why);
        pg->infeasible = 1;
        rc_free(pg->why);
        pg->why = rc_strdup(dec.why);
        pg->sched_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE;
        pg->not_before_ms = INT64_MAX; /* until the set of nodes changes (a kick) */
    }
    for (size_t i = 0; i < n; i++)
        gcs_sched_req_clear(&reqs[i]);
    rc_free(hidden);
    rc_free(nodes);
    rc_free(plain);
    rc_free(reqs);
    rc_free(index);
    return again;
}

static void gcs__pass(gcs_pg_manager *pm)
{
    gcs_pg_sched *s = &pm->sched;
    if (s->stopped || s->in_pass || s->held)
        return;
    s->in_pass = 1;
    s->timer_due_ms = 0;
    uv_timer_stop(&s->timer);
    int64_t now = rc_mono_ms(), next = 0;
    size_t n = 0;
    gcs_pg **list = rc_malloc((s->n_queued ? s->n_queued : 1) * sizeof(*list));
    rc_list *qn;
    RC_LIST_FOREACH(qn, &s->queue) {
        gcs_pg *pg = rc_list_entry(qn, gcs_pg, qlink);
        gcs_pg__ref(pg);
        list[n++] = pg;
    }
    for (size_t i = 0; i < n; i++) {
        gcs_pg *pg = list[i];
        int64_t again = 0;
        if (!pg->queued || !gcs_pg__live(pg) || pm->stopped || pg->attempt)
            ;
        else if (pg->not_before_ms > now)
            again = pg->not_before_ms == INT64_MAX ? 0 : pg->not_before_ms;
        else
            again = gcs__try(pg, now);
        if (again && pg->queued && (!next || again < next))
            next = again;
        gcs_pg__unref(pg);
    }
    rc_free(list);
    s->in_pass = 0;
    if (next)
        gcs__arm(pm, next);
}

static void gcs__timer_cb(uv_timer_t *t)
{
    gcs_pg_manager *pm = t->data;
    pm->sched.timer_due_ms = 0;
    gcs__pass(pm);
}

/* ---- start after a restart ---------------------------------------------------------- */

static void gcs__released(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    gcs_pg_manager *pm = arg;
    if (st->code != GRPC_STATUS_OK)
        RC_INFO("gcs: ReleaseUnusedBundles to a raylet failed: %s", st->message);
    rpc_msg_free(reply);
    if (--pm->sched.held == 0 && !pm->sched.stopped)
        gcs_pg_sched_kick(pm, 1);
}

static void gcs__release_node(const Ray__Rpc__GcsNodeInfo *node, void *arg)
{
    gcs_pg_manager *pm = arg;
    rpc_client *cli = gcs_node_raylet_client(pm->gcs->nodes, node->node_id.data);
    if (!cli)
        return;
    size_t cap = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&pm->groups, &it, NULL, NULL, &v))
        if (gcs_pg__live(v))
            cap += ((gcs_pg *)v)->data->n_bundles;
    Ray__Rpc__Bundle **in_use = rc_calloc(cap ? cap : 1, sizeof(*in_use));
    size_t n = 0;
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&pm->groups, &it, NULL, NULL, &v)) {
        gcs_pg *pg = v;
        if (!gcs_pg__live(pg))
            continue;
        for (size_t i = 0; i < pg->data->n_bundles && n < cap; i++) {
            Ray__Rpc__Bundle *b = pg->data->bundles[i];
            if (b->node_id.len == RC_NODE_ID_SIZE && !memcmp(b->node_id.data, node->node_id.data, RC_NODE_ID_SIZE))
                in_use[n++] = b;
        }
    }
    Ray__Rpc__ReleaseUnusedBundlesRequest req = RAY__RPC__RELEASE_UNUSED_BUNDLES_REQUEST__INIT;
    req.bundles_in_use = in_use;
    req.n_bundles_in_use = n;
    if (rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "ReleaseUnusedBundles", &req.base,
                        rc_cfg.gcs_rpc_timeout_ms, gcs__released, pm) == 0)
        pm->sched.held++;
    rc_free(in_use);
}

void gcs_pg_manager_start(gcs_pg_manager *pm)
{
    if (pm->stopped)
        return;
    pm->sched.held++; /* until every release is out */
    if (pm->gcs->restarted)
        gcs_node_foreach_alive(pm->gcs->nodes, gcs__release_node, pm);
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&pm->groups, &it, NULL, NULL, &v)) {
        gcs_pg *pg = v;
        if (gcs_pg__live(pg) && pg->data->state != RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED)
            gcs_pg_sched_queue(pg, 0, pg->data->state ==
                                          RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__RESCHEDULING);
    }
    if (--pm->sched.held == 0)
        gcs_pg_sched_kick(pm, 1);
}

/* ---- lifetime ----------------------------------------------------------------------- */

void gcs_pg_sched_init(gcs_pg_manager *pm)
{
    uv_timer_init(pm->gcs->loop, &pm->sched.timer);
    pm->sched.timer.data = pm;
    rc_list_init(&pm->sched.queue);
    rc_list_init(&pm->sched.attempts);
}

void gcs_pg_sched_shutdown(gcs_pg_manager *pm)
{
    gcs_pg_sched *s = &pm->sched;
    if (s->stopped)
        return;
    s->stopped = 1;
    uv_timer_stop(&s->timer);
    rc_list *n;
    while ((n = rc_list_first(&s->queue)))
        gcs__unqueue(s, rc_list_entry(n, gcs_pg, qlink));
}

static void gcs__timer_closed(uv_handle_t *h)
{
    gcs_pg_manager *pm = h->data;
    pm->sched.closed(pm);
}

void gcs_pg_sched_close(gcs_pg_manager *pm, void (*done)(gcs_pg_manager *pm))
{
    pm->sched.closed = done;
    uv_close((uv_handle_t *)&pm->sched.timer, gcs__timer_closed);
}
