/*
 * GCS placement-group manager: the placement-group table and PlacementGroupInfoGcsService
 * (Ray's GcsPlacementGroupManager; docs/actors.md).
 *
 *   CreatePlacementGroup -> PENDING --bundles placed and committed--> CREATED
 *   CREATED --a node holding bundles died--> RESCHEDULING --lost bundles placed--> CREATED
 *   any --RemovePlacementGroup / its job (and creator actor) finished--> REMOVED
 *
 * Records: table PLACEMENT_GROUP (key: 18-byte group ID, value: PlacementGroupTableData).
 * A change is written to the store before it is answered: CreatePlacementGroup once the
 * PENDING record is stored, WaitPlacementGroupUntilReady once CREATED is (NOT_FOUND if the
 * group is removed), RemovePlacementGroup once REMOVED is. Names are unique per namespace
 * (the creator job's namespace) among groups not removed.
 *
 * Placing is gcs_pg_scheduler.c's business. A group the scheduler says can never be placed
 * stays PENDING with the scheduler's sentence, which GetPlacementGroup returns in its
 * GcsStatus message (code OK) and `rayc status` prints; every group waiting to be placed is
 * listed in GetAllResourceUsage.placement_group_load.
 *
 * Removal kills the actors placed in the group, cancels every committed bundle on its node
 * (CancelResourceReserve: the raylet kills what runs on it and returns exactly what it
 * reserved) and abandons a reservation in flight. A removed group's record is kept for
 * `rayc list placement-groups`, at most maximum_gcs_removed_placement_group_cached_count of
 * them. A group's lifetime follows Ray's: unless detached it is removed once its creator
 * job has finished and its creator actor (if an actor created it) is dead.
 *
 * With Redis a restarted GCS reloads the table: CREATED groups stay (their bundles are
 * committed on the raylets, which are told which bundles are in use so they release any
 * others), PENDING and RESCHEDULING ones are placed again.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_pg_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

enum { GCS__MAX_BUNDLES = 1024 };

struct gcs_pg_waiter {
    gcs_pg *pg;
    rpc_call *call;
    gcs_pg_waiter *next;
};

static char *gcs__hex(const uint8_t *id, char *buf)
{
    return rc_id_hex(id, RC_PG_ID_SIZE, buf);
}

static const char *gcs__state_name(int state)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&ray__rpc__placement_group_table_data__placement_group_state__descriptor,
                                             state);
    return v ? v->name : "?";
}

/* ---- references and records ---------------------------------------------------------- */

static void gcs__pg_free(gcs_pg *pg)
{
    rpc_msg_free(&pg->data->base);
    rc_free(pg->why);
    rc_free(pg);
}

void gcs_pg__ref(gcs_pg *pg)
{
    pg->refs++;
}

void gcs_pg__unref(gcs_pg *pg)
{
    if (--pg->refs == 0)
        gcs__pg_free(pg);
}

int gcs_pg__live(const gcs_pg *pg)
{
    return pg->in_table && pg->data->state != RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED;
}

static void gcs__name_key(const char *ns, const char *name, rc_buf *key)
{
    rc_buf_puts(key, ns ? ns : "");
    rc_buf_putc(key, '\0');
    rc_buf_puts(key, name ? name : "");
}

/* Replaces pg's record with a copy of d (d may borrow from the old record). */
static void gcs__set_record(gcs_pg *pg, const gcs_pg_record *d)
{
    gcs_pg_record *copy = (gcs_pg_record *)rpc_msg_dup(&d->base);
    rpc_msg_free(&pg->data->base);
    pg->data = copy;
}

void gcs_pg__bundle_for(const Ray__Rpc__Bundle *b, const uint8_t *node, Ray__Rpc__Bundle *out)
{
    *out = *b;
    out->node_id.data = (uint8_t *)node;
    out->node_id.len = node ? RC_NODE_ID_SIZE : 0;
}

/* pg's record with bundle i on nodes[i] (NULL: not placed) and the given state. */
static void gcs__set_bundles(gcs_pg *pg, const uint8_t *const *nodes, Ray__Rpc__PlacementGroupTableData__PlacementGroupState state)
{
    size_t n = pg->data->n_bundles;
    Ray__Rpc__Bundle *copies = rc_calloc(n ? n : 1, sizeof(*copies));
    Ray__Rpc__Bundle **ptrs = rc_calloc(n ? n : 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        gcs_pg__bundle_for(pg->data->bundles[i], nodes[i], &copies[i]);
        ptrs[i] = &copies[i];
    }
    gcs_pg_record d = *pg->data;
    d.bundles = ptrs;
    d.state = state;
    gcs__set_record(pg, &d);
    rc_free(ptrs);
    rc_free(copies);
}

/* The stats of pg now (borrowed by a reply). */
static void gcs__stats(const gcs_pg *pg, Ray__Rpc__PlacementGroupStats *s)
{
    ray__rpc__placement_group_stats__init(s);
    if (pg->data->stats)
        *s = *pg->data->stats;
    s->scheduling_attempt = pg->n_attempts;
    s->scheduling_started_time_ns = pg->started_ns;
    s->scheduling_state = pg->sched_state;
    if (pg->data->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED)
        s->scheduling_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__FINISHED;
    else if (pg->data->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED)
        s->scheduling_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__REMOVED;
    else if (pg->infeasible)
        s->scheduling_state = RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__INFEASIBLE;
}

/* A shallow copy of pg's record with its current stats, for a reply. */
static void gcs__view_of(const gcs_pg *pg, gcs_pg_record *out, Ray__Rpc__PlacementGroupStats *stats)
{
    *out = *pg->data;
    gcs__stats(pg, stats);
    out->stats = stats;
}

/* ---- writes ------------------------------------------------------------------------- */

typedef struct gcs__write {
    gcs_pg *pg;
    gcs_pg_record *snap;
    rpc_call *call; /* CreatePlacementGroup or RemovePlacementGroup waiting for it */
} gcs__write;

/* The reply of the call a write answers: Create's or Remove's, both only a status. */
static void gcs__answer_write(rpc_call *call, int rc, const uint8_t *id)
{
    Ray__Rpc__CreatePlacementGroupReply created = RAY__RPC__CREATE_PLACEMENT_GROUP_REPLY__INIT;
    Ray__Rpc__RemovePlacementGroupReply removed = RAY__RPC__REMOVE_PLACEMENT_GROUP_REPLY__INIT;
    ProtobufCMessage *reply = strcmp(rpc_call_method(call), "RemovePlacementGroup") ? &created.base : &removed.base;
    char hex[RC_ID_HEX_MAX];
    if (rc < 0)
        gcs__reply(call, reply, GCS_STATUS_IO_ERROR, "cannot store placement group %s: %s", gcs__hex(id, hex),
                   rc_strerror(rc));
    else
        gcs__reply_ok(call, reply);
}

static void gcs__answer_waiters(gcs_pg *pg, const gcs_pg_record *snap)
{
    gcs_pg_waiter *w = pg->waiters;
    pg->waiters = NULL;
    char hex[RC_ID_HEX_MAX];
    gcs__hex(pg->id, hex);
    while (w) {
        gcs_pg_waiter *next = w->next;
        Ray__Rpc__WaitPlacementGroupUntilReadyReply reply = RAY__RPC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REPLY__INIT;
        rpc_call_on_cancel(w->call, NULL, NULL);
        if (snap->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED)
            gcs__reply_ok(w->call, &reply.base);
        else
            gcs__reply(w->call, &reply.base, GCS_STATUS_NOT_FOUND, "placement group %s was removed", hex);
        gcs_pg__unref(pg);
        rc_free(w);
        w = next;
    }
}

static void gcs__written(int rc, int64_t added, void *arg)
{
    gcs__write *w = arg;
    gcs_pg *pg = w->pg;
    (void)added;
    pg->writes--;
    char hex[RC_ID_HEX_MAX];
    if (rc < 0 && rc != RC_ECANCELED)
        RC_ERROR("gcs: cannot store placement group %s (%s): %s; it is in memory only", gcs__hex(pg->id, hex),
                 gcs__state_name(w->snap->state), rc_strerror(rc));
    if (w->call)
        gcs__answer_write(w->call, rc, pg->id);
    if (w->snap->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED ||
        w->snap->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED)
        gcs__answer_waiters(pg, w->snap);
    rpc_msg_free(&w->snap->base);
    rc_free(w);
    gcs_pg__unref(pg);
}

static void gcs__write_record(gcs_pg *pg, rpc_call *call)
{
    gcs_pg_manager *pm = pg->pm;
    gcs__write *w = RC_NEW(gcs__write);
    w->pg = pg;
    w->call = call;
    Ray__Rpc__PlacementGroupStats stats;
    gcs_pg_record view;
    gcs__view_of(pg, &view, &stats);
    w->snap = (gcs_pg_record *)rpc_msg_dup(&view.base);
    gcs_pg__ref(pg);
    pg->writes++;
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&w->snap->base, &len);
    gcs_store *st = pm->gcs->store;
    int rc = st ? st->ops->put(st, GCS_TABLE_PLACEMENT_GROUP, pg->id, RC_PG_ID_SIZE, bytes, len, 1, gcs__written, w)
                : RC_ECANCELED;
    rc_free(bytes);
    if (rc < 0)
        gcs__written(rc, 0, w);
}

/* ---- placement results -------------------------------------------------------------- */

static int gcs__placed(const Ray__Rpc__Bundle *b)
{
    return b->node_id.len == RC_NODE_ID_SIZE;
}

void gcs_pg__placed(gcs_pg *pg, const uint32_t *indices, const uint8_t (*nodes)[RC_NODE_ID_SIZE], size_t n)
{
    gcs_pg_manager *pm = pg->pm;
    size_t nb = pg->data->n_bundles;
    const uint8_t **where = rc_calloc(nb ? nb : 1, sizeof(*where));
    for (size_t i = 0; i < nb; i++)
        where[i] = gcs__placed(pg->data->bundles[i]) ? pg->data->bundles[i]->node_id.data : NULL;
    for (size_t k = 0; k < n; k++)
        if (indices[k] < nb)
            where[indices[k]] = nodes[k];
    int all = 1;
    for (size_t i = 0; i < nb; i++)
        all &= where[i] != NULL;
    gcs__set_bundles(pg, where,
                     all ? RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED
                         : RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__RESCHEDULING);
    rc_free(where);
    char hex[RC_ID_HEX_MAX];
    if (all) {
        pg->data->placement_group_final_bundle_placement_timestamp_ms = rc_wall_ms();
        pg->infeasible = 0;
        rc_free(pg->why);
        pg->why = NULL;
        RC_INFO("gcs: placement group %s (%s, %zu bundles) is created", gcs__hex(pg->id, hex),
                sched_pg_strategy_name((sched_pg_strategy)pg->data->strategy), nb);
    }
    gcs__write_record(pg, NULL);
    if (!all)
        gcs_pg_sched_queue(pg, 0, 1);
    gcs_actor_manager_kick(pm->gcs->actors, 1);
}

/* ---- removal ------------------------------------------------------------------------ */

static void gcs__evict_removed(gcs_pg_manager *pm);

static void gcs__removed_push(gcs_pg_manager *pm, const uint8_t *id)
{
    if (pm->removed_len == pm->removed_cap) {
        size_t cap = pm->removed_cap ? pm->removed_cap * 2 : 64;
        uint8_t(*q)[RC_PG_ID_SIZE] = rc_malloc(cap * RC_PG_ID_SIZE);
        for (size_t i = 0; i < pm->removed_len; i++)
            memcpy(q[i], pm->removed_order[(pm->removed_head + i) % pm->removed_cap], RC_PG_ID_SIZE);
        rc_free(pm->removed_order);
        pm->removed_order = q;
        pm->removed_head = 0;
        pm->removed_cap = cap;
    }
    memcpy(pm->removed_order[(pm->removed_head + pm->removed_len) % pm->removed_cap], id, RC_PG_ID_SIZE);
    pm->removed_len++;
}

static void gcs__remove(gcs_pg *pg, const char *why, rpc_call *call)
{
    gcs_pg_manager *pm = pg->pm;
    gcs_pg__ref(pg);
    char hex[RC_ID_HEX_MAX];
    RC_INFO("gcs: placement group %s is removed: %s", gcs__hex(pg->id, hex), why);
    gcs_pg_sched_cancel(pg);
    for (size_t i = 0; i < pg->data->n_bundles; i++)
        if (gcs__placed(pg->data->bundles[i]))
            gcs_pg_sched_cancel_bundle(pm, pg->data->bundles[i]);
    if (pg->data->name && pg->data->name[0]) {
        rc_buf key = RC_BUF_INIT;
        gcs__name_key(pg->data->ray_namespace, pg->data->name, &key);
        if (rc_map_get(&pm->named, key.data, key.len) == pg)
            rc_map_remove(&pm->named, key.data, key.len);
        rc_buf_free(&key);
    }
    gcs_pg_record d = *pg->data;
    d.state = RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED;
    gcs__set_record(pg, &d);
    pg->infeasible = 0;
    pm->n_live--;
    gcs__removed_push(pm, pg->id);
    gcs__write_record(pg, call);
    uint8_t id[RC_PG_ID_SIZE];
    memcpy(id, pg->id, sizeof(id));
    gcs_actor_on_pg_removed(pm->gcs->actors, id);
    gcs__evict_removed(pm);
    gcs_pg__unref(pg);
}

static void gcs__evict_done(int rc, int64_t n, void *arg)
{
    (void)n;
    (void)arg;
    if (rc < 0 && rc != RC_ECANCELED)
        RC_WARN("gcs: cannot delete an evicted placement group record: %s", rc_strerror(rc));
}

static void gcs__evict_removed(gcs_pg_manager *pm)
{
    int64_t max = rc_cfg.maximum_gcs_removed_placement_group_cached_count;
    size_t n_removed = rc_map_size(&pm->groups) - pm->n_live;
    while (pm->removed_len > 0 && (int64_t)n_removed > (max < 0 ? 0 : max)) {
        uint8_t id[RC_PG_ID_SIZE];
        memcpy(id, pm->removed_order[pm->removed_head], RC_PG_ID_SIZE);
        pm->removed_head = (pm->removed_head + 1) % pm->removed_cap;
        pm->removed_len--;
        gcs_pg *pg = rc_map_get(&pm->groups, id, RC_PG_ID_SIZE);
        if (!pg || gcs_pg__live(pg))
            continue;
        rc_map_remove(&pm->groups, id, RC_PG_ID_SIZE);
        pg->in_table = 0;
        n_removed--;
        gcs_store *st = pm->gcs->store;
        const void *keys[1] = {id};
        size_t klens[1] = {RC_PG_ID_SIZE};
        if (st)
            st->ops->del(st, GCS_TABLE_PLACEMENT_GROUP, keys, klens, 1, gcs__evict_done, NULL);
        gcs_pg__unref(pg);
    }
}

/* Ray's lifetime rule: a group that is not detached goes once its creator job is finished
 * and its creator actor (if any) is dead. */
static void gcs__maybe_end(gcs_pg *pg)
{
    const gcs_pg_record *d = pg->data;
    if (gcs_pg__live(pg) && !d->is_detached && d->creator_job_dead && d->creator_actor_dead)
        gcs__remove(pg, d->creator_actor_id.len ? "its creator job finished and its creator actor died"
                                                : "its creator job finished",
                    NULL);
}

/* The live groups for which pred holds, each with a reference. */
static gcs_pg **gcs__select(gcs_pg_manager *pm, int (*pred)(const gcs_pg *pg, const void *arg), const void *arg,
                            size_t *n)
{
    gcs_pg **list = rc_malloc((pm->n_live ? pm->n_live : 1) * sizeof(*list));
    *n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&pm->groups, &it, NULL, NULL, &v)) {
        gcs_pg *pg = v;
        if (gcs_pg__live(pg) && *n < pm->n_live && pred(pg, arg)) {
            gcs_pg__ref(pg);
            list[(*n)++] = pg;
        }
    }
    return list;
}

static void gcs__list_free(gcs_pg **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gcs_pg__unref(list[i]);
    rc_free(list);
}

static int gcs__of_job(const gcs_pg *pg, const void *job)
{
    return pg->data->creator_job_id.len == RC_JOB_ID_SIZE && !memcmp(pg->data->creator_job_id.data, job, RC_JOB_ID_SIZE);
}

static void gcs__job_finished(gcs_pg_manager *pm, const uint8_t *job_id)
{
    size_t n;
    gcs_pg **list = gcs__select(pm, gcs__of_job, job_id, &n);
    for (size_t i = 0; i < n; i++) {
        gcs_pg *pg = list[i];
        if (!gcs_pg__live(pg) || pg->data->creator_job_dead)
            continue;
        gcs_pg_record d = *pg->data;
        d.creator_job_dead = 1;
        gcs__set_record(pg, &d);
        if (!pg->data->is_detached && pg->data->creator_actor_dead)
            gcs__maybe_end(pg);
        else
            gcs__write_record(pg, NULL);
    }
    gcs__list_free(list, n);
}

static int gcs__of_actor(const gcs_pg *pg, const void *actor)
{
    return pg->data->creator_actor_id.len == RC_ACTOR_ID_SIZE &&
           !memcmp(pg->data->creator_actor_id.data, actor, RC_ACTOR_ID_SIZE);
}

void gcs_pg_on_actor_dead(gcs_pg_manager *pm, const uint8_t *actor_id)
{
    if (!pm || pm->stopped)
        return;
    size_t n;
    gcs_pg **list = gcs__select(pm, gcs__of_actor, actor_id, &n);
    for (size_t i = 0; i < n; i++) {
        gcs_pg *pg = list[i];
        if (!gcs_pg__live(pg) || pg->data->creator_actor_dead)
            continue;
        gcs_pg_record d = *pg->data;
        d.creator_actor_dead = 1;
        gcs__set_record(pg, &d);
        if (!pg->data->is_detached && pg->data->creator_job_dead)
            gcs__maybe_end(pg);
        else
            gcs__write_record(pg, NULL);
    }
    gcs__list_free(list, n);
}

static int gcs__on_node(const gcs_pg *pg, const void *node)
{
    for (size_t i = 0; i < pg->data->n_bundles; i++)
        if (gcs__placed(pg->data->bundles[i]) && !memcmp(pg->data->bundles[i]->node_id.data, node, RC_NODE_ID_SIZE))
            return 1;
    return 0;
}

void gcs_pg_on_node_dead(gcs_pg_manager *pm, const uint8_t *node_id)
{
    if (pm->stopped)
        return;
    size_t n;
    gcs_pg **list = gcs__select(pm, gcs__on_node, node_id, &n);
    char hex[RC_ID_HEX_MAX], node_hex[RC_ID_HEX_MAX];
    rc_id_hex(node_id, RC_NODE_ID_SIZE, node_hex);
    for (size_t i = 0; i < n; i++) {
        gcs_pg *pg = list[i];
        size_t nb = pg->data->n_bundles, lost = 0;
        const uint8_t **where = rc_calloc(nb ? nb : 1, sizeof(*where));
        for (size_t b = 0; b < nb; b++) {
            const Ray__Rpc__Bundle *bundle = pg->data->bundles[b];
            where[b] = gcs__placed(bundle) ? bundle->node_id.data : NULL;
            if (where[b] && !memcmp(where[b], node_id, RC_NODE_ID_SIZE)) {
                where[b] = NULL;
                lost++;
            }
        }
        RC_INFO("gcs: placement group %s lost %zu of its %zu bundles with node %.16s; rescheduling them",
                gcs__hex(pg->id, hex), lost, nb, node_hex);
        gcs__set_bundles(pg, where, RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__RESCHEDULING);
        rc_free(where);
        gcs__write_record(pg, NULL);
        if (!pg->attempt)
            gcs_pg_sched_queue(pg, 0, 1);
    }
    gcs__list_free(list, n);
}

void gcs_pg_manager_kick(gcs_pg_manager *pm, int nodes_changed)
{
    if (!pm->stopped)
        gcs_pg_sched_kick(pm, nodes_changed);
}

int gcs_pg_bundle_node(gcs_pg_manager *pm, const uint8_t *pg_id, int64_t index, uint8_t node_out[RC_NODE_ID_SIZE])
{
    gcs_pg *pg = rc_map_get(&pm->groups, pg_id, RC_PG_ID_SIZE);
    if (!pg || !gcs_pg__live(pg))
        return RC_ENOENT;
    size_t nb = pg->data->n_bundles;
    if (index >= (int64_t)nb || index < -1)
        return RC_ERANGE;
    if (index >= 0) {
        const Ray__Rpc__Bundle *b = pg->data->bundles[index];
        if (!gcs__placed(b))
            return RC_EBUSY;
        memcpy(node_out, b->node_id.data, RC_NODE_ID_SIZE);
        return 0;
    }
    for (size_t k = 0; k < nb; k++) {
        const Ray__Rpc__Bundle *b = pg->data->bundles[(pg->next_any + k) % nb];
        if (!gcs__placed(b))
            continue;
        memcpy(node_out, b->node_id.data, RC_NODE_ID_SIZE);
        pg->next_any = (uint32_t)((pg->next_any + k + 1) % nb);
        return 0;
    }
    return RC_EBUSY;
}

size_t gcs_pg_manager_pending(gcs_pg_manager *pm, Ray__Rpc__PlacementGroupTableData ***out)
{
    size_t n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&pm->groups, &it, NULL, NULL, &v))
        n += gcs_pg__live(v) &&
             ((gcs_pg *)v)->data->state != RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED;
    /* One block: the pointers, then the records, then their stats. */
    size_t size = n * (sizeof(gcs_pg_record *) + sizeof(gcs_pg_record) + sizeof(Ray__Rpc__PlacementGroupStats));
    char *block = rc_malloc(size ? size : 1);
    gcs_pg_record **ptrs = (gcs_pg_record **)block;
    gcs_pg_record *recs = (gcs_pg_record *)(block + n * sizeof(*ptrs));
    Ray__Rpc__PlacementGroupStats *stats = (Ray__Rpc__PlacementGroupStats *)(recs + n);
    size_t k = 0;
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&pm->groups, &it, NULL, NULL, &v) && k < n) {
        gcs_pg *pg = v;
        if (!gcs_pg__live(pg) || pg->data->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED)
            continue;
        gcs__view_of(pg, &recs[k], &stats[k]);
        ptrs[k] = &recs[k];
        k++;
    }
    *out = ptrs;
    return k;
}

/* ---- handlers ----------------------------------------------------------------------- */

static int gcs__check_spec(gcs_pg_manager *pm, const Ray__Rpc__PlacementGroupSpec *spec, char *err, size_t errlen)
{
    if (!spec) {
        snprintf(err, errlen, "placement_group_spec is missing");
        return RC_EINVAL;
    }
    if (spec->placement_group_id.len != RC_PG_ID_SIZE) {
        snprintf(err, errlen, "placement_group_id holds %zu bytes; a placement group ID has %d",
                 spec->placement_group_id.len, RC_PG_ID_SIZE);
        return RC_EINVAL;
    }
    if (!spec->n_bundles || spec->n_bundles > GCS__MAX_BUNDLES) {
        snprintf(err, errlen, "a placement group needs 1 to %d bundles, not %zu", GCS__MAX_BUNDLES, spec->n_bundles);
        return RC_EINVAL;
    }
    if ((unsigned)spec->strategy > RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD) {
        snprintf(err, errlen, "unknown placement strategy %d (PACK, SPREAD, STRICT_PACK or STRICT_SPREAD)",
                 (int)spec->strategy);
        return RC_EINVAL;
    }
    if (spec->creator_job_id.len && spec->creator_job_id.len != RC_JOB_ID_SIZE) {
        snprintf(err, errlen, "creator_job_id holds %zu bytes; a job ID has %d", spec->creator_job_id.len,
                 RC_JOB_ID_SIZE);
        return RC_EINVAL;
    }
    if (spec->creator_actor_id.len && spec->creator_actor_id.len != RC_ACTOR_ID_SIZE) {
        snprintf(err, errlen, "creator_actor_id holds %zu bytes; an actor ID has %d", spec->creator_actor_id.len,
                 RC_ACTOR_ID_SIZE);
        return RC_EINVAL;
    }
    for (size_t i = 0; i < spec->n_bundles; i++) {
        const Ray__Rpc__Bundle *b = spec->bundles[i];
        char what[64], inner[400];
        snprintf(what, sizeof(what), "bundle %zu", i);
        if (gcs_view_check_resources((const gcs_res_entry *const *)b->unit_resources, b->n_unit_resources, what, err,
                                     errlen) < 0)
            return RC_EINVAL;
        int positive = 0;
        for (size_t k = 0; k < b->n_unit_resources; k++)
            positive |= b->unit_resources[k]->value > 0;
        if (!positive) {
            snprintf(err, errlen, "bundle %zu is empty: a bundle needs at least one resource with an amount above 0",
                     i);
            return RC_EINVAL;
        }
        gcs_sched_req req;
        int rc = gcs_view_bundle_request(pm->gcs->view, b, &req, inner, sizeof(inner));
        gcs_sched_req_clear(&req);
        if (rc < 0) {
            snprintf(err, errlen, "bundle %zu: %s", i, inner);
            return RC_EINVAL;
        }
    }
    return 0;
}

static void handle_create(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_pg_manager *pm = arg;
    const Ray__Rpc__CreatePlacementGroupRequest *req = (const void *)request;
    Ray__Rpc__CreatePlacementGroupReply reply = RAY__RPC__CREATE_PLACEMENT_GROUP_REPLY__INIT;
    const Ray__Rpc__PlacementGroupSpec *spec = req->placement_group_spec;
    char err[600], hex[RC_ID_HEX_MAX];
    if (gcs__check_spec(pm, spec, err, sizeof(err)) < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "CreatePlacementGroup: %s", err);
    if (rc_map_get(&pm->groups, spec->placement_group_id.data, RC_PG_ID_SIZE))
        return gcs__reply_ok(call, &reply.base); /* the creator retried */
    const char *ns = spec->creator_job_id.len ? rc_map_get(&pm->job_ns, spec->creator_job_id.data, RC_JOB_ID_SIZE)
                                              : NULL;
    ns = ns ? ns : "";
    rc_buf key = RC_BUF_INIT;
    if (spec->name && spec->name[0]) {
        gcs__name_key(ns, spec->name, &key);
        gcs_pg *taken = rc_map_get(&pm->named, key.data, key.len);
        if (taken) {
            rc_buf_free(&key);
            return gcs__reply(call, &reply.base, GCS_STATUS_ALREADY_EXISTS,
                              "a placement group named '%s' already exists in namespace '%s' (%s)", spec->name, ns,
                              gcs__hex(taken->id, hex));
        }
    }
    size_t nb = spec->n_bundles;
    Ray__Rpc__Bundle *copies = rc_calloc(nb, sizeof(*copies));
    Ray__Rpc__Bundle **ptrs = rc_calloc(nb, sizeof(*ptrs));
    Ray__Rpc__Bundle__BundleIdentifier *ids = rc_calloc(nb, sizeof(*ids));
    for (size_t i = 0; i < nb; i++) {
        gcs_pg__bundle_for(spec->bundles[i], NULL, &copies[i]);
        ray__rpc__bundle__bundle_identifier__init(&ids[i]);
        ids[i].placement_group_id = spec->placement_group_id;
        ids[i].bundle_index = (int32_t)i;
        copies[i].bundle_id = &ids[i];
        ptrs[i] = &copies[i];
    }
    Ray__Rpc__PlacementGroupStats stats = RAY__RPC__PLACEMENT_GROUP_STATS__INIT;
    stats.creation_request_received_ns = rc_mono_ns();
    gcs_pg_record d = RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__INIT;
    d.placement_group_id = spec->placement_group_id;
    d.name = spec->name;
    d.bundles = ptrs;
    d.n_bundles = nb;
    d.strategy = spec->strategy;
    d.state = RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__PENDING;
    d.creator_job_id = spec->creator_job_id;
    d.creator_actor_id = spec->creator_actor_id;
    d.creator_job_dead = spec->creator_job_dead;
    d.creator_actor_dead = spec->creator_actor_dead || !spec->creator_actor_id.len;
    d.is_detached = spec->is_detached;
    d.ray_namespace = (char *)ns;
    d.stats = &stats;
    d.soft_target_node_id = spec->soft_target_node_id;
    d.placement_group_creation_timestamp_ms = rc_wall_ms();
    gcs_pg *pg = RC_NEW(gcs_pg);
    pg->pm = pm;
    pg->refs = 1;
    pg->in_table = 1;
    memcpy(pg->id, spec->placement_group_id.data, RC_PG_ID_SIZE);
    pg->data = (gcs_pg_record *)rpc_msg_dup(&d.base);
    rc_free(ids);
    rc_free(ptrs);
    rc_free(copies);
    rc_map_put(&pm->groups, pg->id, RC_PG_ID_SIZE, pg);
    pm->n_live++;
    if (key.len)
        rc_map_put(&pm->named, key.data, key.len, pg);
    rc_buf_free(&key);
    RC_INFO("gcs: placement group %s (%s, %zu bundles%s%s) registered", gcs__hex(pg->id, hex),
            sched_pg_strategy_name((sched_pg_strategy)pg->data->strategy), nb, pg->data->name[0] ? ", named " : "",
            pg->data->name);
    gcs_pg__ref(pg);
    gcs__write_record(pg, call);
    if (gcs_pg__live(pg))
        gcs_pg_sched_queue(pg, 0, 0);
    gcs_pg__unref(pg);
}

static gcs_pg *gcs__find(gcs_pg_manager *pm, const ProtobufCBinaryData *id)
{
    return id->len == RC_PG_ID_SIZE ? rc_map_get(&pm->groups, id->data, RC_PG_ID_SIZE) : NULL;
}

static void handle_remove(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_pg_manager *pm = arg;
    const Ray__Rpc__RemovePlacementGroupRequest *req = (const void *)request;
    Ray__Rpc__RemovePlacementGroupReply reply = RAY__RPC__REMOVE_PLACEMENT_GROUP_REPLY__INIT;
    if (req->placement_group_id.len != RC_PG_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "placement_group_id must hold %d bytes",
                          RC_PG_ID_SIZE);
    gcs_pg *pg = gcs__find(pm, &req->placement_group_id);
    if (!pg || !gcs_pg__live(pg)) /* Ray: removing what is gone is not an error */
        return gcs__reply_ok(call, &reply.base);
    gcs__remove(pg, "RemovePlacementGroup", call);
}

static void handle_get(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_pg_manager *pm = arg;
    const Ray__Rpc__GetPlacementGroupRequest *req = (const void *)request;
    Ray__Rpc__GetPlacementGroupReply reply = RAY__RPC__GET_PLACEMENT_GROUP_REPLY__INIT;
    gcs_pg *pg = gcs__find(pm, &req->placement_group_id);
    char hex[RC_ID_HEX_MAX] = "";
    if (!pg) {
        if (req->placement_group_id.len == RC_PG_ID_SIZE)
            gcs__hex(req->placement_group_id.data, hex);
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "no placement group %s", hex);
    }
    gcs_pg_record view;
    Ray__Rpc__PlacementGroupStats stats;
    gcs__view_of(pg, &view, &stats);
    reply.placement_group_table_data = &view;
    /* The scheduler's sentence for a group it can never place rides in the status message. */
    /* The scheduler's sentence on why it is not placed (never, or not now). */
    gcs__reply(call, &reply.base, GCS_STATUS_OK, "%s", pg->why ? pg->why : "");
}

static void handle_get_named(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_pg_manager *pm = arg;
    const Ray__Rpc__GetNamedPlacementGroupRequest *req = (const void *)request;
    Ray__Rpc__GetNamedPlacementGroupReply reply = RAY__RPC__GET_NAMED_PLACEMENT_GROUP_REPLY__INIT;
    if (!req->name || !req->name[0])
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "name is empty");
    rc_buf key = RC_BUF_INIT;
    gcs__name_key(req->ray_namespace, req->name, &key);
    gcs_pg *pg = rc_map_get(&pm->named, key.data, key.len);
    rc_buf_free(&key);
    if (!pg)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "no placement group named '%s' in namespace '%s'",
                          req->name, req->ray_namespace ? req->ray_namespace : "");
    gcs_pg_record view;
    Ray__Rpc__PlacementGroupStats stats;
    gcs__view_of(pg, &view, &stats);
    reply.placement_group_table_data = &view;
    gcs__reply_ok(call, &reply.base);
}

static void handle_get_all(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_pg_manager *pm = arg;
    const Ray__Rpc__GetAllPlacementGroupRequest *req = (const void *)request;
    Ray__Rpc__GetAllPlacementGroupReply reply = RAY__RPC__GET_ALL_PLACEMENT_GROUP_REPLY__INIT;
    int has_limit = req->_limit_case == RAY__RPC__GET_ALL_PLACEMENT_GROUP_REQUEST___LIMIT_LIMIT;
    if (has_limit && req->limit < 0)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID, "limit must be non-negative");
    size_t total = rc_map_size(&pm->groups);
    size_t cap = has_limit && (uint64_t)req->limit < total ? (size_t)req->limit : total;
    gcs_pg_record *views = rc_calloc(cap ? cap : 1, sizeof(*views));
    Ray__Rpc__PlacementGroupStats *stats = rc_calloc(cap ? cap : 1, sizeof(*stats));
    gcs_pg_record **ptrs = rc_calloc(cap ? cap : 1, sizeof(*ptrs));
    size_t n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (n < cap && rc_map_next(&pm->groups, &it, NULL, NULL, &v)) {
        gcs__view_of(v, &views[n], &stats[n]);
        ptrs[n] = &views[n];
        n++;
    }
    reply.placement_group_table_data = ptrs;
    reply.n_placement_group_table_data = n;
    reply.total = (int64_t)total;
    gcs__reply_ok(call, &reply.base);
    rc_free(ptrs);
    rc_free(stats);
    rc_free(views);
}

static void gcs__waiter_cancelled(rpc_call *call, void *arg)
{
    gcs_pg_waiter *w = arg;
    gcs_pg *pg = w->pg;
    for (gcs_pg_waiter **p = &pg->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    rpc_reply_status(call, GRPC_STATUS_CANCELLED, "WaitPlacementGroupUntilReady cancelled");
    rc_free(w);
    gcs_pg__unref(pg);
}

static void handle_wait(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_pg_manager *pm = arg;
    const Ray__Rpc__WaitPlacementGroupUntilReadyRequest *req = (const void *)request;
    Ray__Rpc__WaitPlacementGroupUntilReadyReply reply = RAY__RPC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REPLY__INIT;
    if (req->placement_group_id.len != RC_PG_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "placement_group_id must hold %d bytes",
                          RC_PG_ID_SIZE);
    gcs_pg *pg = gcs__find(pm, &req->placement_group_id);
    char hex[RC_ID_HEX_MAX];
    gcs__hex(req->placement_group_id.data, hex);
    if (!pg)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "no placement group %s", hex);
    int state = pg->data->state;
    if (!pg->writes && state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED)
        return gcs__reply_ok(call, &reply.base);
    if (!pg->writes && state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED)
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "placement group %s was removed", hex);
    gcs_pg_waiter *w = RC_NEW(gcs_pg_waiter);
    w->pg = pg;
    w->call = call;
    w->next = pg->waiters;
    pg->waiters = w;
    gcs_pg__ref(pg);
    rpc_call_on_cancel(call, gcs__waiter_cancelled, w);
}

const rpc_method_handler gcs_pg_handlers[] = {
    {"CreatePlacementGroup", handle_create},
    {"RemovePlacementGroup", handle_remove},
    {"GetPlacementGroup", handle_get},
    {"GetNamedPlacementGroup", handle_get_named},
    {"GetAllPlacementGroup", handle_get_all},
    {"WaitPlacementGroupUntilReady", handle_wait},
    {NULL, NULL},
};

/* ---- jobs --------------------------------------------------------------------------- */

static void gcs__note_job(gcs_pg_manager *pm, const Ray__Rpc__JobTableData *job)
{
    if (job->job_id.len != RC_JOB_ID_SIZE)
        return;
    const char *ns = job->config && job->config->ray_namespace ? job->config->ray_namespace : "";
    rc_free(rc_map_put(&pm->job_ns, job->job_id.data, RC_JOB_ID_SIZE, rc_strdup(ns)));
}

static void gcs__job_published(const Ray__Rpc__PubMessage *msg, void *arg)
{
    gcs_pg_manager *pm = arg;
    const Ray__Rpc__JobTableData *job = msg->job_message;
    if (msg->inner_message_case != RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_JOB_MESSAGE || !job || pm->stopped)
        return;
    gcs__note_job(pm, job);
    if (job->is_dead && job->job_id.len == RC_JOB_ID_SIZE)
        gcs__job_finished(pm, job->job_id.data);
}

/* ---- load and lifetime -------------------------------------------------------------- */

static int gcs__by_creation(const void *x, const void *y)
{
    const gcs_pg *a = *(gcs_pg *const *)x, *b = *(gcs_pg *const *)y;
    int64_t p = a->data->placement_group_creation_timestamp_ms, q = b->data->placement_group_creation_timestamp_ms;
    return p < q ? -1 : p > q;
}

static void gcs__groups_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_pg_manager *pm = arg;
    if (rc < 0) {
        pm->load_cb(pm->gcs, rc);
        return;
    }
    gcs_pg **removed = rc_malloc((n ? n : 1) * sizeof(*removed));
    size_t n_removed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        gcs_pg_record *d = ray__rpc__placement_group_table_data__unpack(NULL, items[i].vlen, items[i].value);
        if (!d || d->placement_group_id.len != RC_PG_ID_SIZE || !d->n_bundles ||
            rc_map_get(&pm->groups, d->placement_group_id.data, RC_PG_ID_SIZE)) {
            skipped++;
            rpc_msg_free(d ? &d->base : NULL);
            continue;
        }
        gcs_pg *pg = RC_NEW(gcs_pg);
        pg->pm = pm;
        pg->refs = 1;
        pg->in_table = 1;
        memcpy(pg->id, d->placement_group_id.data, RC_PG_ID_SIZE);
        pg->data = d;
        rc_map_put(&pm->groups, pg->id, RC_PG_ID_SIZE, pg);
        if (d->state == RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED) {
            removed[n_removed++] = pg;
            continue;
        }
        pm->n_live++;
        if (d->name && d->name[0]) {
            rc_buf key = RC_BUF_INIT;
            gcs__name_key(d->ray_namespace, d->name, &key);
            rc_map_put(&pm->named, key.data, key.len, pg);
            rc_buf_free(&key);
        }
    }
    qsort(removed, n_removed, sizeof(*removed), gcs__by_creation);
    for (size_t i = 0; i < n_removed; i++)
        gcs__removed_push(pm, removed[i]->id);
    rc_free(removed);
    if (skipped)
        RC_WARN("gcs: skipped %zu unreadable placement group records in storage", skipped);
    RC_INFO("gcs: loaded %zu placement groups (%zu removed) from storage", rc_map_size(&pm->groups), n_removed);
    gcs__evict_removed(pm);
    pm->load_cb(pm->gcs, 0);
}

static void gcs__jobs_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_pg_manager *pm = arg;
    if (rc < 0) {
        pm->load_cb(pm->gcs, rc);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        Ray__Rpc__JobTableData *job = ray__rpc__job_table_data__unpack(NULL, items[i].vlen, items[i].value);
        if (job)
            gcs__note_job(pm, job);
        rpc_msg_free(job ? &job->base : NULL);
    }
    gcs_store *st = pm->gcs->store;
    rc = st->ops->get_all(st, GCS_TABLE_PLACEMENT_GROUP, gcs__groups_loaded, pm);
    if (rc < 0)
        pm->load_cb(pm->gcs, rc);
}

int gcs_pg_manager_load(gcs_pg_manager *pm, gcs_load_cb cb)
{
    pm->load_cb = cb;
    /* The namespaces of jobs from before a restart (names are unique per job namespace). */
    gcs_store *st = pm->gcs->store;
    return st->ops->get_all(st, GCS_TABLE_JOB, gcs__jobs_loaded, pm);
}

gcs_pg_manager *gcs_pg_manager_new(gcs_server *gcs)
{
    gcs_pg_manager *pm = RC_NEW(gcs_pg_manager);
    pm->gcs = gcs;
    rc_map_init(&pm->groups);
    rc_map_init(&pm->named);
    rc_map_init(&pm->job_ns);
    gcs_pg_sched_init(pm);
    gcs_publisher_listen(gcs->pub, RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL, gcs__job_published, pm);
    return pm;
}

void gcs_pg_manager_shutdown(gcs_pg_manager *pm)
{
    if (!pm || pm->stopped)
        return;
    pm->stopped = 1;
    gcs_pg_sched_shutdown(pm);
}

static void gcs__drop_group(void *p)
{
    gcs_pg *pg = p;
    while (pg->waiters) { /* only without a server (a failed start): nobody waits */
        gcs_pg_waiter *w = pg->waiters;
        pg->waiters = w->next;
        rc_free(w);
    }
    gcs__pg_free(pg);
}

static void gcs__closed(gcs_pg_manager *pm)
{
    rc_free(pm);
}

void gcs_pg_manager_free(gcs_pg_manager *pm)
{
    if (!pm)
        return;
    gcs_pg_manager_shutdown(pm);
    rc_map_destroy(&pm->named, NULL);
    rc_map_destroy(&pm->job_ns, rc_free);
    rc_map_destroy(&pm->groups, gcs__drop_group);
    rc_free(pm->removed_order);
    gcs_pg_sched_close(pm, gcs__closed);
}
