/*
 * GCS actor manager: the actor table and the actor lifecycle (docs/actors.md; Ray's
 * GcsActorManager). ActorInfoGcsService's handlers are in gcs_actor_service.c, placing and
 * leasing in gcs_actor_scheduler.c.
 *
 *   RegisterActor -> DEPENDENCIES_UNREADY --CreateActor--> PENDING_CREATION --created--> ALIVE
 *   ALIVE --its worker or node died, restarts left--> RESTARTING --created again--> ALIVE
 *   any --no restarts left / killed with no_restart / owner died / out of scope--> DEAD
 *
 * Records: table ACTOR (key: 16-byte actor ID, value: ActorTableData) and ACTOR_TASK_SPEC
 * (same key, the creation TaskSpec). Every change of a record is written to the store, and
 * only when the write is done is it published on GCS_ACTOR_CHANNEL (key: the actor ID) and
 * are waiting calls answered (each write carries its own snapshot, so what is published is
 * exactly what was stored, in order). CreateActor is held until the actor is ALIVE (OK and
 * actor_address) or DEAD (SCHEDULING_CANCELLED and death_cause, as Ray answers).
 *
 * Failures: a dead worker (ReportWorkerFailure, or the creation push finding it gone)
 * restarts its actor while restarts are left (max_restarts -1: always; a worker that exited
 * on purpose or whose constructor failed does not restart), else the actor is DEAD
 * (WORKER_DIED). A dead node does the same for every actor on it (NODE_DIED). Actors a dead
 * worker or node owned, actors of a finished job and actors of a removed placement group
 * are DEAD (detached actors outlive their owner and job). Whenever the GCS stops an actor it
 * kills the worker (KillActor, then ReturnWorkerLease with disconnect_worker), and the
 * actors that worker owned die with it.
 *
 * Memory stays bounded: at most maximum_gcs_destroyed_actor_cached_count dead actors are
 * kept; the oldest go first, from memory and storage. A restarted GCS (Redis) reloads both
 * tables: ALIVE actors stay ALIVE on the same worker (the raylet still holds the lease),
 * PENDING_CREATION and RESTARTING ones are scheduled again.
 *
 * Loop thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_actor_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

typedef Ray__Rpc__ActorTableData gcs__record;

static char *gcs__hex(const uint8_t *id, char *buf)
{
    return rc_id_hex(id, RC_ACTOR_ID_SIZE, buf);
}

const char *gcs_actor__state_name(int state)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&ray__rpc__actor_table_data__actor_state__descriptor, state);
    return v ? v->name : "?";
}

/* ---- references and indexes ----------------------------------------------------------- */

static void gcs__actor_free(gcs_actor *a)
{
    rpc_msg_free(&a->data->base);
    rpc_msg_free(&a->spec->base);
    rc_free(a->infeasible_why);
    gcs_actor_lease_free(a->lease);
    rc_free(a);
}

void gcs_actor__ref(gcs_actor *a)
{
    a->refs++;
}

void gcs_actor__unref(gcs_actor *a)
{
    if (--a->refs == 0)
        gcs__actor_free(a);
}

int gcs_actor__live(const gcs_actor *a)
{
    return a->in_table && a->data->state != RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD;
}

/* The key of a named actor: namespace, NUL, name. */
void gcs_actor__name_key(const char *ns, const char *name, rc_buf *key)
{
    rc_buf_puts(key, ns ? ns : "");
    rc_buf_putc(key, '\0');
    rc_buf_puts(key, name ? name : "");
}

static void gcs__owner_link(gcs_actor_manager *am, gcs_actor *a)
{
    if (!a->has_owner)
        return;
    rc_list *owned = rc_map_get(&am->owners, a->owner_worker, RC_WORKER_ID_SIZE);
    if (!owned) {
        owned = RC_NEW(rc_list);
        rc_list_init(owned);
        rc_map_put(&am->owners, a->owner_worker, RC_WORKER_ID_SIZE, owned);
    }
    rc_list_insert_head(owned, &a->owner_link);
}

static void gcs__owner_unlink(gcs_actor_manager *am, gcs_actor *a)
{
    if (!a->has_owner || !rc_list_linked(&a->owner_link))
        return;
    rc_list_remove(&a->owner_link);
    rc_list *owned = rc_map_get(&am->owners, a->owner_worker, RC_WORKER_ID_SIZE);
    if (owned && rc_list_empty(owned))
        rc_free(rc_map_remove(&am->owners, a->owner_worker, RC_WORKER_ID_SIZE));
}

void gcs_actor__set_lease(gcs_actor *a, gcs_actor_lease *l)
{
    gcs_actor_manager *am = a->am;
    gcs_actor_lease *old = gcs_actor__take_lease(a);
    if (old) /* never expected: a lease is taken before another is asked for */
        gcs_actor_sched_release(am, old, a->id, GCS_KILL_FORCE, NULL);
    a->lease = l;
    rc_map_put(&am->by_worker, l->worker_id, RC_WORKER_ID_SIZE, a);
}

gcs_actor_lease *gcs_actor__take_lease(gcs_actor *a)
{
    gcs_actor_lease *l = a->lease;
    if (!l)
        return NULL;
    a->lease = NULL;
    if (rc_map_get(&a->am->by_worker, l->worker_id, RC_WORKER_ID_SIZE) == a)
        rc_map_remove(&a->am->by_worker, l->worker_id, RC_WORKER_ID_SIZE);
    return l;
}

/* ---- records: every change goes through a write ---------------------------------------- */

/* Replaces a's record with a copy of d (d may borrow from the old record). */
void gcs_actor__set_record(gcs_actor *a, const gcs__record *d)
{
    gcs__record *copy = (gcs__record *)rpc_msg_dup(&d->base);
    rpc_msg_free(&a->data->base);
    a->data = copy;
}

typedef struct gcs__write {
    gcs_actor *a;
    gcs__record *snap; /* what was written (owned) */
    rpc_call *register_call; /* RegisterActor waiting for this write */
} gcs__write;

void gcs_actor__answer_create(rpc_call *call, const gcs__record *snap)
{
    Ray__Rpc__CreateActorReply reply = RAY__RPC__CREATE_ACTOR_REPLY__INIT;
    if (snap->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE) {
        reply.actor_address = snap->address;
        return gcs__reply_ok(call, &reply.base);
    }
    Ray__Rpc__ActorDeathCause none = RAY__RPC__ACTOR_DEATH_CAUSE__INIT;
    reply._death_cause_case = RAY__RPC__CREATE_ACTOR_REPLY___DEATH_CAUSE_DEATH_CAUSE;
    reply.death_cause = snap->death_cause ? snap->death_cause : &none;
    char hex[RC_ID_HEX_MAX];
    gcs__reply(call, &reply.base, GCS_STATUS_SCHEDULING_CANCELLED, "actor %s is dead: creation cancelled",
               gcs__hex(snap->actor_id.data, hex));
}

/* Answers every held CreateActor call with snap (ALIVE or DEAD). */
static void gcs__answer_held(gcs_actor *a, const gcs__record *snap)
{
    gcs_actor_held *h = a->held;
    a->held = NULL;
    while (h) {
        gcs_actor_held *next = h->next;
        rpc_call_on_cancel(h->call, NULL, NULL);
        gcs_actor__answer_create(h->call, snap);
        gcs_actor__unref(a);
        rc_free(h);
        h = next;
    }
}

static void gcs__written(int rc, int64_t added, void *arg)
{
    gcs__write *w = arg;
    gcs_actor *a = w->a;
    gcs_actor_manager *am = a->am;
    (void)added;
    a->writes--;
    char hex[RC_ID_HEX_MAX];
    if (rc < 0 && rc != RC_ECANCELED)
        RC_ERROR("gcs: cannot store actor %s (%s): %s; it is in memory only", gcs__hex(a->id, hex),
                 gcs_actor__state_name(w->snap->state), rc_strerror(rc));
    if (w->register_call) {
        Ray__Rpc__RegisterActorReply reply = RAY__RPC__REGISTER_ACTOR_REPLY__INIT;
        if (rc < 0)
            gcs__reply(w->register_call, &reply.base, GCS_STATUS_IO_ERROR, "cannot store actor %s: %s",
                       gcs__hex(a->id, hex), rc_strerror(rc));
        else
            gcs__reply_ok(w->register_call, &reply.base);
    }
    if (!am->stopped)
        gcs_publish_actor(am->gcs->pub, w->snap);
    if (w->snap->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE ||
        w->snap->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD)
        gcs__answer_held(a, w->snap);
    rpc_msg_free(&w->snap->base);
    rc_free(w);
    gcs_actor__unref(a);
}

/* Writes a's record; once stored it is published and held calls are answered. */
void gcs_actor__write(gcs_actor *a, rpc_call *register_call)
{
    gcs_actor_manager *am = a->am;
    gcs__write *w = RC_NEW(gcs__write);
    w->a = a;
    w->snap = (gcs__record *)rpc_msg_dup(&a->data->base);
    w->register_call = register_call;
    gcs_actor__ref(a);
    a->writes++;
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&a->data->base, &len);
    gcs_store *st = am->gcs->store;
    int rc = st ? st->ops->put(st, GCS_TABLE_ACTOR, a->id, RC_ACTOR_ID_SIZE, bytes, len, 1, gcs__written, w)
                : RC_ECANCELED;
    rc_free(bytes);
    if (rc < 0)
        gcs__written(rc, 0, w);
}

/* ---- death causes ------------------------------------------------------------------- */

/* A death cause that owns its text (it outlives record changes). */
typedef struct gcs__cause {
    Ray__Rpc__ActorDeathCause cause;
    Ray__Rpc__ActorDiedErrorContext died;
    Ray__Rpc__ActorUnschedulableContext unschedulable;
    Ray__Rpc__RayException exception;
    char message[1024];
    char owner_ip[64], node_ip[64];
    char name[256], ns[256], class_name[256];
    uint8_t owner_id[RC_WORKER_ID_SIZE];
} gcs__cause;

static void gcs__cause_died(gcs__cause *c, const gcs_actor *a, Ray__Rpc__ActorDiedErrorContext__Reason reason,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void gcs__cause_died(gcs__cause *c, const gcs_actor *a, Ray__Rpc__ActorDiedErrorContext__Reason reason,
                            const char *fmt, ...)
{
    memset(c, 0, sizeof(*c));
    ray__rpc__actor_death_cause__init(&c->cause);
    ray__rpc__actor_died_error_context__init(&c->died);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    const gcs__record *d = a->data;
    c->died.error_message = c->message;
    c->died.reason = reason;
    c->died.actor_id.data = (uint8_t *)a->id;
    c->died.actor_id.len = RC_ACTOR_ID_SIZE;
    snprintf(c->name, sizeof(c->name), "%s", d->name);
    snprintf(c->ns, sizeof(c->ns), "%s", d->ray_namespace);
    snprintf(c->class_name, sizeof(c->class_name), "%s", d->class_name);
    c->died.name = c->name;
    c->died.ray_namespace = c->ns;
    c->died.class_name = c->class_name;
    c->died.never_started = d->start_time == 0;
    c->died.owner_ip_address = c->owner_ip;
    if (d->owner_address) {
        if (d->owner_address->worker_id.len == RC_WORKER_ID_SIZE) {
            memcpy(c->owner_id, d->owner_address->worker_id.data, RC_WORKER_ID_SIZE);
            c->died.owner_id.data = c->owner_id;
            c->died.owner_id.len = RC_WORKER_ID_SIZE;
        }
        snprintf(c->owner_ip, sizeof(c->owner_ip), "%s", d->owner_address->ip_address);
    }
    if (a->lease) {
        snprintf(c->node_ip, sizeof(c->node_ip), "%s", a->lease->ip);
        c->died.pid = a->lease->pid;
    } else if (d->address) {
        snprintf(c->node_ip, sizeof(c->node_ip), "%s", d->address->ip_address);
        c->died.pid = d->pid;
    }
    c->died.node_ip_address = c->node_ip;
    c->cause.context_case = RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT;
    c->cause.actor_died_error_context = &c->died;
}

static void gcs__cause_unschedulable(gcs__cause *c, const char *why)
{
    memset(c, 0, sizeof(*c));
    ray__rpc__actor_death_cause__init(&c->cause);
    ray__rpc__actor_unschedulable_context__init(&c->unschedulable);
    snprintf(c->message, sizeof(c->message), "%s", why);
    c->unschedulable.error_message = c->message;
    c->cause.context_case = RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_UNSCHEDULABLE_CONTEXT;
    c->cause.actor_unschedulable_context = &c->unschedulable;
}

static void gcs__cause_creation(gcs__cause *c, const gcs_actor *a, const char *message)
{
    memset(c, 0, sizeof(*c));
    ray__rpc__actor_death_cause__init(&c->cause);
    ray__rpc__ray_exception__init(&c->exception);
    snprintf(c->message, sizeof(c->message), "the constructor of actor %s failed: %s",
             a->data->class_name && a->data->class_name[0] ? a->data->class_name : "(unnamed class)", message);
    c->exception.language = RAY__RPC__LANGUAGE__CPP;
    c->exception.formatted_exception_string = c->message;
    c->cause.context_case = RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_CREATION_TASK_FAILURE_CONTEXT;
    c->cause.creation_task_failure_context = &c->exception;
}

/* ---- transitions -------------------------------------------------------------------- */

static void gcs__evict_dead(gcs_actor_manager *am);
static void gcs__owner_died(gcs_actor_manager *am, const uint8_t *worker_id, const char *why);

static void gcs__dead_push(gcs_actor_manager *am, const uint8_t *id)
{
    if (am->dead_len == am->dead_cap) {
        size_t cap = am->dead_cap ? am->dead_cap * 2 : 64;
        uint8_t(*q)[RC_ACTOR_ID_SIZE] = rc_malloc(cap * RC_ACTOR_ID_SIZE);
        for (size_t i = 0; i < am->dead_len; i++)
            memcpy(q[i], am->dead_order[(am->dead_head + i) % am->dead_cap], RC_ACTOR_ID_SIZE);
        rc_free(am->dead_order);
        am->dead_order = q;
        am->dead_head = 0;
        am->dead_cap = cap;
    }
    memcpy(am->dead_order[(am->dead_head + am->dead_len) % am->dead_cap], id, RC_ACTOR_ID_SIZE);
    am->dead_len++;
}

/* Stops what runs for a: its place in the queue, its attempt, its worker (kill says how).
 * The actors that worker owned die with it. */
static void gcs__stop(gcs_actor *a, gcs_actor_kill kill, const Ray__Rpc__ActorDeathCause *cause)
{
    gcs_actor_manager *am = a->am;
    gcs_actor_sched_cancel(a);
    gcs_actor_lease *l = gcs_actor__take_lease(a);
    if (!l)
        return;
    uint8_t worker[RC_WORKER_ID_SIZE];
    memcpy(worker, l->worker_id, RC_WORKER_ID_SIZE);
    gcs_actor_sched_release(am, l, a->id, kill, cause);
    char hex[RC_ID_HEX_MAX], why[128];
    snprintf(why, sizeof(why), "its owner, the worker of actor %s, was stopped", gcs__hex(a->id, hex));
    gcs__owner_died(am, worker, why);
}

/* a is DEAD for good: cause goes into its record. */
static void gcs__destroy(gcs_actor *a, const gcs__cause *c, gcs_actor_kill kill)
{
    gcs_actor_manager *am = a->am;
    if (!gcs_actor__live(a))
        return;
    gcs_actor__ref(a);
    char hex[RC_ID_HEX_MAX];
    gcs__hex(a->id, hex);
    const char *text = c->message;
    RC_INFO("gcs: actor %s (%s) is dead: %s", hex, a->data->class_name, text);
    gcs__record d = *a->data;
    d.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD;
    d.end_time = (uint64_t)rc_wall_ms();
    d.timestamp = (double)rc_wall_ms();
    d.death_cause = (Ray__Rpc__ActorDeathCause *)&c->cause;
    if (a->lease) { /* where it ran last stays in the record */
        d.pid = a->lease->pid;
        d._node_id_case = RAY__RPC__ACTOR_TABLE_DATA___NODE_ID_NODE_ID;
        d.node_id.data = a->lease->node_id;
        d.node_id.len = RC_NODE_ID_SIZE;
    }
    gcs_actor__set_record(a, &d);
    if (a->data->name && a->data->name[0]) {
        rc_buf key = RC_BUF_INIT;
        gcs_actor__name_key(a->data->ray_namespace, a->data->name, &key);
        if (rc_map_get(&am->named, key.data, key.len) == a)
            rc_map_remove(&am->named, key.data, key.len);
        rc_buf_free(&key);
    }
    gcs__owner_unlink(am, a);
    am->n_live--;
    gcs__dead_push(am, a->id);
    gcs__stop(a, kill, &c->cause);
    gcs_actor__write(a, NULL);
    gcs_pg_on_actor_dead(am->gcs->pgs, a->id);
    gcs__evict_dead(am);
    gcs_actor__unref(a);
}

static int gcs__restarts_left(const gcs_actor *a)
{
    int64_t max = a->data->max_restarts;
    return max < 0 || a->data->num_restarts < max;
}

/* a's worker is gone or being stopped: RESTARTING while restarts are left, else DEAD. */
static void gcs__restart_or_die(gcs_actor *a, const gcs__cause *c, int restartable, gcs_actor_kill kill)
{
    if (!gcs_actor__live(a))
        return;
    if (!restartable || !gcs__restarts_left(a))
        return gcs__destroy(a, c, kill);
    gcs_actor__ref(a);
    char hex[RC_ID_HEX_MAX];
    RC_INFO("gcs: actor %s (%s) restarts (%lld of %lld): %s", gcs__hex(a->id, hex), a->data->class_name,
            (long long)a->data->num_restarts + 1, (long long)a->data->max_restarts, c->message);
    gcs__stop(a, kill, &c->cause);
    gcs__record d = *a->data;
    d.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__RESTARTING;
    d.num_restarts++;
    d.timestamp = (double)rc_wall_ms();
    d.address = NULL;
    d.pid = 0;
    d._node_id_case = RAY__RPC__ACTOR_TABLE_DATA___NODE_ID__NOT_SET;
    d.n_resource_mapping = 0;
    d.resource_mapping = NULL;
    gcs_actor__set_record(a, &d);
    gcs_actor__write(a, NULL);
    if (gcs_actor__live(a))
        gcs_actor_sched_queue(a, 0);
    gcs_actor__unref(a);
}

void gcs_actor__created(gcs_actor *a)
{
    const gcs_actor_lease *l = a->lease;
    char hex[RC_ID_HEX_MAX];
    Ray__Rpc__Address addr = RAY__RPC__ADDRESS__INIT;
    addr.node_id.data = (uint8_t *)l->node_id;
    addr.node_id.len = RC_NODE_ID_SIZE;
    addr.ip_address = (char *)l->ip;
    addr.port = l->port;
    addr.worker_id.data = (uint8_t *)l->worker_id;
    addr.worker_id.len = RC_WORKER_ID_SIZE;
    gcs__record d = *a->data;
    d.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE;
    d.address = &addr;
    d.pid = l->pid;
    d._node_id_case = RAY__RPC__ACTOR_TABLE_DATA___NODE_ID_NODE_ID;
    d.node_id = addr.node_id;
    d.n_resource_mapping = l->n_mapping;
    d.resource_mapping = l->mapping;
    d.timestamp = (double)rc_wall_ms();
    if (!d.start_time)
        d.start_time = (uint64_t)rc_wall_ms();
    gcs_actor__set_record(a, &d);
    RC_INFO("gcs: actor %s (%s) is alive on %s:%d (pid %u)", gcs__hex(a->id, hex), a->data->class_name, l->ip,
            l->port, l->pid);
    gcs_actor__write(a, NULL);
}

void gcs_actor__creation_failed(gcs_actor *a, const char *message)
{
    gcs__cause c;
    gcs__cause_creation(&c, a, message);
    gcs__destroy(a, &c, GCS_KILL_FORCE);
}

void gcs_actor__worker_unreachable(gcs_actor *a, const char *message)
{
    gcs__cause c;
    gcs__cause_died(&c, a, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__WORKER_DIED, "%s", message);
    gcs__restart_or_die(a, &c, 1, GCS_KILL_NONE);
}

void gcs_actor__unschedulable(gcs_actor *a, const char *why)
{
    gcs__cause c;
    gcs__cause_unschedulable(&c, why);
    gcs__destroy(a, &c, GCS_KILL_FORCE);
}

void gcs_actor__group_gone(gcs_actor *a, const char *why)
{
    gcs__cause c;
    gcs__cause_died(&c, a, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__RAY_KILL, "%s", why);
    gcs__destroy(a, &c, GCS_KILL_FORCE);
}

void gcs_actor__stop(gcs_actor *a, Ray__Rpc__ActorDiedErrorContext__Reason reason, const char *message,
                     int restartable, gcs_actor_kill kill)
{
    gcs__cause c;
    gcs__cause_died(&c, a, reason, "%s", message);
    if (restartable)
        gcs__restart_or_die(a, &c, 1, kill);
    else
        gcs__destroy(a, &c, kill);
}

/* The live actors matching pred, each with a reference (release with gcs__list_free). */
static gcs_actor **gcs__select(gcs_actor_manager *am, int (*pred)(const gcs_actor *a, const void *arg),
                               const void *arg, size_t *n)
{
    gcs_actor **list = rc_malloc((am->n_live ? am->n_live : 1) * sizeof(*list));
    *n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&am->actors, &it, NULL, NULL, &v)) {
        gcs_actor *a = v;
        if (gcs_actor__live(a) && *n < am->n_live && pred(a, arg)) {
            gcs_actor__ref(a);
            list[(*n)++] = a;
        }
    }
    return list;
}

static void gcs__list_free(gcs_actor **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gcs_actor__unref(list[i]);
    rc_free(list);
}

/* Every live, non-detached actor worker_id owned dies (OWNER_DIED). */
static void gcs__owner_died(gcs_actor_manager *am, const uint8_t *worker_id, const char *why)
{
    const rc_list *owned = rc_map_get(&am->owners, worker_id, RC_WORKER_ID_SIZE);
    size_t n = owned ? rc_list_count(owned) : 0;
    if (!n)
        return;
    gcs_actor **list = rc_malloc(n * sizeof(*list));
    n = 0;
    const rc_list *l;
    RC_LIST_FOREACH(l, owned) {
        gcs_actor *a = rc_list_entry(l, gcs_actor, owner_link);
        gcs_actor__ref(a);
        list[n++] = a;
    }
    for (size_t i = 0; i < n; i++) {
        gcs_actor *a = list[i];
        if (gcs_actor__live(a) && !a->data->is_detached) {
            gcs__cause c;
            gcs__cause_died(&c, a, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED,
                            "the actor's owner died: %s", why);
            gcs__destroy(a, &c, GCS_KILL_FORCE);
        }
    }
    gcs__list_free(list, n);
}

void gcs_actor_on_worker_dead(gcs_actor_manager *am, const Ray__Rpc__WorkerTableData *w)
{
    const Ray__Rpc__Address *addr = w->worker_address;
    if (am->stopped || !addr || addr->worker_id.len != RC_WORKER_ID_SIZE)
        return;
    uint8_t worker[RC_WORKER_ID_SIZE];
    memcpy(worker, addr->worker_id.data, RC_WORKER_ID_SIZE);
    const char *detail = w->_exit_detail_case == RAY__RPC__WORKER_TABLE_DATA___EXIT_DETAIL_EXIT_DETAIL &&
                                 w->exit_detail && w->exit_detail[0]
                             ? w->exit_detail
                             : "no detail given";
    int has_type = w->_exit_type_case == RAY__RPC__WORKER_TABLE_DATA___EXIT_TYPE_EXIT_TYPE;
    gcs_actor *a = rc_map_get(&am->by_worker, worker, RC_WORKER_ID_SIZE);
    if (a && gcs_actor__live(a)) {
        gcs_actor__ref(a);
        gcs__cause c;
        if (has_type && w->exit_type == RAY__RPC__WORKER_EXIT_TYPE__USER_ERROR && w->creation_task_exception) {
            gcs__cause_creation(&c, a,
                                w->creation_task_exception->formatted_exception_string &&
                                        w->creation_task_exception->formatted_exception_string[0]
                                    ? w->creation_task_exception->formatted_exception_string
                                    : detail);
            gcs__destroy(a, &c, GCS_KILL_NONE);
        } else {
            /* Ray: a worker that exited on purpose (exit_actor) or whose constructor raised
             * does not come back. */
            int intended = has_type && (w->exit_type == RAY__RPC__WORKER_EXIT_TYPE__INTENDED_USER_EXIT ||
                                        w->exit_type == RAY__RPC__WORKER_EXIT_TYPE__USER_ERROR);
            const ProtobufCEnumValue *type =
                has_type ? protobuf_c_enum_descriptor_get_value(&ray__rpc__worker_exit_type__descriptor, w->exit_type)
                         : NULL;
            gcs__cause_died(&c, a, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__WORKER_DIED,
                            "the actor's worker (pid %u) died: %s (%s)", a->lease ? a->lease->pid : w->pid, detail,
                            type ? type->name : "exit type not given");
            gcs__restart_or_die(a, &c, !intended, GCS_KILL_NONE);
        }
        gcs_actor__unref(a);
    }
    char why[600], hex[RC_ID_HEX_MAX];
    snprintf(why, sizeof(why), "its worker %.16s died (%s)", rc_id_hex(worker, RC_WORKER_ID_SIZE, hex), detail);
    gcs__owner_died(am, worker, why);
}

static int gcs__on_node(const gcs_actor *a, const void *node)
{
    return a->lease && !memcmp(a->lease->node_id, node, RC_NODE_ID_SIZE);
}

static int gcs__owned_on_node(const gcs_actor *a, const void *node)
{
    const Ray__Rpc__Address *o = a->data->owner_address;
    return !a->data->is_detached && o && o->node_id.len == RC_NODE_ID_SIZE &&
           !memcmp(o->node_id.data, node, RC_NODE_ID_SIZE);
}

void gcs_actor_on_node_dead(gcs_actor_manager *am, const Ray__Rpc__GcsNodeInfo *node)
{
    if (am->stopped || node->node_id.len != RC_NODE_ID_SIZE)
        return;
    const uint8_t *id = node->node_id.data;
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(id, RC_NODE_ID_SIZE, hex);
    const char *reason = node->death_info && node->death_info->reason_message ? node->death_info->reason_message : "";
    size_t n;
    gcs_actor **list = gcs__select(am, gcs__on_node, id, &n);
    for (size_t i = 0; i < n; i++) {
        gcs__cause c;
        gcs__cause_died(&c, list[i], RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__NODE_DIED,
                        "the actor's node %.16s (%s) died: %s", hex, node->node_manager_address, reason);
        gcs__restart_or_die(list[i], &c, 1, GCS_KILL_NONE);
    }
    gcs__list_free(list, n);
    list = gcs__select(am, gcs__owned_on_node, id, &n);
    for (size_t i = 0; i < n; i++) {
        gcs__cause c;
        gcs__cause_died(&c, list[i], RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED,
                        "the actor's owner died with its node %.16s (%s)", hex, node->node_manager_address);
        gcs__destroy(list[i], &c, GCS_KILL_FORCE);
    }
    gcs__list_free(list, n);
    gcs_actor_sched_kick(am, 1);
}

static int gcs__of_job(const gcs_actor *a, const void *job)
{
    return !a->data->is_detached && a->data->job_id.len == RC_JOB_ID_SIZE &&
           !memcmp(a->data->job_id.data, job, RC_JOB_ID_SIZE);
}

void gcs_actor_on_job_finished(gcs_actor_manager *am, const uint8_t *job_id)
{
    if (am->stopped)
        return;
    size_t n;
    gcs_actor **list = gcs__select(am, gcs__of_job, job_id, &n);
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(job_id, RC_JOB_ID_SIZE, hex);
    for (size_t i = 0; i < n; i++) {
        gcs__cause c;
        gcs__cause_died(&c, list[i], RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED,
                        "the actor's job %s finished (its driver exited); only detached actors outlive their job",
                        hex);
        gcs__destroy(list[i], &c, GCS_KILL_FORCE);
    }
    gcs__list_free(list, n);
}

/* The placement group a's creation task names, or NULL. */
static const ProtobufCBinaryData *gcs__actor_pg(const gcs_actor *a)
{
    const Ray__Rpc__SchedulingStrategy *st = a->spec->scheduling_strategy;
    if (!st ||
        st->scheduling_strategy_case !=
            RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY)
        return NULL;
    return &st->placement_group_scheduling_strategy->placement_group_id;
}

static int gcs__in_pg(const gcs_actor *a, const void *pg)
{
    const ProtobufCBinaryData *id = gcs__actor_pg(a);
    return id && id->len == RC_PG_ID_SIZE && !memcmp(id->data, pg, RC_PG_ID_SIZE);
}

void gcs_actor_on_pg_removed(gcs_actor_manager *am, const uint8_t *pg_id)
{
    if (am->stopped)
        return;
    size_t n;
    gcs_actor **list = gcs__select(am, gcs__in_pg, pg_id, &n);
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(pg_id, RC_PG_ID_SIZE, hex);
    for (size_t i = 0; i < n; i++) {
        gcs__cause c;
        gcs__cause_died(&c, list[i], RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__RAY_KILL,
                        "the actor's placement group %s was removed", hex);
        gcs__destroy(list[i], &c, GCS_KILL_FORCE);
    }
    gcs__list_free(list, n);
}

void gcs_actor_manager_kick(gcs_actor_manager *am, int placement_changed)
{
    if (!am->stopped)
        gcs_actor_sched_kick(am, placement_changed);
}

void gcs_actor_manager_demand(gcs_actor_manager *am, void (*fn)(const Ray__Rpc__ResourceDemand *d, void *arg),
                              void *arg)
{
    gcs_actor_sched_demand(am, fn, arg);
}

/* ---- eviction ----------------------------------------------------------------------- */

static void gcs__evict_done(int rc, int64_t n, void *arg)
{
    (void)n;
    (void)arg;
    if (rc < 0 && rc != RC_ECANCELED)
        RC_WARN("gcs: cannot delete an evicted dead actor record: %s", rc_strerror(rc));
}

static void gcs__evict_dead(gcs_actor_manager *am)
{
    int64_t max = rc_cfg.maximum_gcs_destroyed_actor_cached_count;
    size_t n_dead = rc_map_size(&am->actors) - am->n_live;
    while (am->dead_len > 0 && (int64_t)n_dead > (max < 0 ? 0 : max)) {
        uint8_t id[RC_ACTOR_ID_SIZE];
        memcpy(id, am->dead_order[am->dead_head], RC_ACTOR_ID_SIZE);
        am->dead_head = (am->dead_head + 1) % am->dead_cap;
        am->dead_len--;
        gcs_actor *a = rc_map_get(&am->actors, id, RC_ACTOR_ID_SIZE);
        if (!a || gcs_actor__live(a))
            continue;
        rc_map_remove(&am->actors, id, RC_ACTOR_ID_SIZE);
        a->in_table = 0;
        n_dead--;
        gcs_store *st = am->gcs->store;
        const void *keys[1] = {id};
        size_t klens[1] = {RC_ACTOR_ID_SIZE};
        if (st) {
            st->ops->del(st, GCS_TABLE_ACTOR, keys, klens, 1, gcs__evict_done, NULL);
            st->ops->del(st, GCS_TABLE_ACTOR_TASK_SPEC, keys, klens, 1, gcs__evict_done, NULL);
        }
        gcs_actor__unref(a);
    }
}

gcs_actor *gcs_actor__new(gcs_actor_manager *am, Ray__Rpc__TaskSpec *spec, gcs__record *data)
{
    gcs_actor *a = RC_NEW(gcs_actor);
    a->am = am;
    a->refs = 1; /* the table's */
    a->in_table = 1;
    memcpy(a->id, spec->actor_creation_task_spec->actor_id.data, RC_ACTOR_ID_SIZE);
    a->spec = spec;
    a->data = data;
    const Ray__Rpc__Address *o = data->owner_address;
    if (o && o->worker_id.len == RC_WORKER_ID_SIZE) {
        memcpy(a->owner_worker, o->worker_id.data, RC_WORKER_ID_SIZE);
        a->has_owner = 1;
    }
    rc_map_put(&am->actors, a->id, RC_ACTOR_ID_SIZE, a);
    if (data->state != RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD) {
        am->n_live++;
        gcs__owner_link(am, a);
        if (data->name && data->name[0]) {
            rc_buf key = RC_BUF_INIT;
            gcs_actor__name_key(data->ray_namespace, data->name, &key);
            rc_map_put(&am->named, key.data, key.len, a);
            rc_buf_free(&key);
        }
    }
    return a;
}

/* ---- load and lifetime -------------------------------------------------------------- */

static int gcs__by_end_time(const void *x, const void *y)
{
    const gcs_actor *a = *(gcs_actor *const *)x, *b = *(gcs_actor *const *)y;
    return a->data->end_time < b->data->end_time ? -1 : a->data->end_time > b->data->end_time;
}

static void gcs__loaded_free(gcs_actor_manager *am)
{
    for (size_t i = 0; i < am->n_loaded; i++) {
        rc_free((void *)am->loaded[i].key);
        rc_free((void *)am->loaded[i].value);
    }
    rc_free(am->loaded);
    am->loaded = NULL;
    am->n_loaded = 0;
}

/* A lease for an ALIVE actor from before a restart, from its record's address. */
static gcs_actor_lease *gcs__lease_of_record(const gcs__record *d)
{
    const Ray__Rpc__Address *w = d->address;
    if (!w || w->node_id.len != RC_NODE_ID_SIZE || w->worker_id.len != RC_WORKER_ID_SIZE || w->port <= 0)
        return NULL;
    gcs_actor_lease *l = RC_NEW(gcs_actor_lease);
    memcpy(l->node_id, w->node_id.data, RC_NODE_ID_SIZE);
    memcpy(l->worker_id, w->worker_id.data, RC_WORKER_ID_SIZE);
    snprintf(l->ip, sizeof(l->ip), "%s", w->ip_address);
    l->port = w->port;
    l->pid = d->pid;
    l->n_mapping = d->n_resource_mapping;
    l->mapping = rc_calloc(l->n_mapping ? l->n_mapping : 1, sizeof(*l->mapping));
    for (size_t i = 0; i < l->n_mapping; i++)
        l->mapping[i] = (Ray__Rpc__ResourceMapEntry *)rpc_msg_dup(&d->resource_mapping[i]->base);
    return l;
}

static void gcs__specs_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_actor_manager *am = arg;
    if (rc < 0) {
        gcs__loaded_free(am);
        am->load_cb(am->gcs, rc);
        return;
    }
    rc_map specs = RC_MAP_INIT;
    for (size_t i = 0; i < n; i++)
        if (items[i].klen == RC_ACTOR_ID_SIZE)
            rc_map_put(&specs, items[i].key, RC_ACTOR_ID_SIZE, (void *)&items[i]);
    gcs_actor **dead = rc_malloc((am->n_loaded ? am->n_loaded : 1) * sizeof(*dead));
    size_t n_dead = 0, skipped = 0;
    for (size_t i = 0; i < am->n_loaded; i++) {
        const gcs_store_item *it = &am->loaded[i];
        const gcs_store_item *si = it->klen == RC_ACTOR_ID_SIZE ? rc_map_get(&specs, it->key, RC_ACTOR_ID_SIZE) : NULL;
        gcs__record *d = ray__rpc__actor_table_data__unpack(NULL, it->vlen, it->value);
        Ray__Rpc__TaskSpec *spec = si ? ray__rpc__task_spec__unpack(NULL, si->vlen, si->value) : NULL;
        if (!d || !spec || d->actor_id.len != RC_ACTOR_ID_SIZE || !spec->actor_creation_task_spec ||
            spec->actor_creation_task_spec->actor_id.len != RC_ACTOR_ID_SIZE ||
            memcmp(d->actor_id.data, spec->actor_creation_task_spec->actor_id.data, RC_ACTOR_ID_SIZE) ||
            rc_map_get(&am->actors, d->actor_id.data, RC_ACTOR_ID_SIZE)) {
            skipped++;
            rpc_msg_free(d ? &d->base : NULL);
            rpc_msg_free(spec ? &spec->base : NULL);
            continue;
        }
        gcs_actor *a = gcs_actor__new(am, spec, d);
        if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD) {
            dead[n_dead++] = a;
        } else if (d->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE) {
            gcs_actor_lease *l = gcs__lease_of_record(d);
            if (l)
                gcs_actor__set_lease(a, l);
        }
    }
    qsort(dead, n_dead, sizeof(*dead), gcs__by_end_time);
    for (size_t i = 0; i < n_dead; i++)
        gcs__dead_push(am, dead[i]->id);
    rc_free(dead);
    rc_map_destroy(&specs, NULL);
    gcs__loaded_free(am);
    if (skipped)
        RC_WARN("gcs: skipped %zu unreadable or incomplete actor records in storage", skipped);
    RC_INFO("gcs: loaded %zu live and %zu dead actors from storage", am->n_live, rc_map_size(&am->actors) - am->n_live);
    gcs__evict_dead(am);
    am->load_cb(am->gcs, 0);
}

static void gcs__actors_loaded(int rc, const gcs_store_item *items, size_t n, void *arg)
{
    gcs_actor_manager *am = arg;
    if (rc < 0) {
        am->load_cb(am->gcs, rc);
        return;
    }
    am->loaded = rc_calloc(n ? n : 1, sizeof(*am->loaded));
    for (size_t i = 0; i < n; i++) {
        am->loaded[i].key = rc_memdup(items[i].key, items[i].klen);
        am->loaded[i].klen = items[i].klen;
        am->loaded[i].value = rc_memdup(items[i].value, items[i].vlen);
        am->loaded[i].vlen = items[i].vlen;
    }
    am->n_loaded = n;
    gcs_store *st = am->gcs->store;
    rc = st->ops->get_all(st, GCS_TABLE_ACTOR_TASK_SPEC, gcs__specs_loaded, am);
    if (rc < 0)
        gcs__specs_loaded(rc, NULL, 0, am);
}

int gcs_actor_manager_load(gcs_actor_manager *am, gcs_load_cb cb)
{
    am->load_cb = cb;
    gcs_store *st = am->gcs->store;
    return st->ops->get_all(st, GCS_TABLE_ACTOR, gcs__actors_loaded, am);
}

static int gcs__needs_start(const gcs_actor *a, const void *arg)
{
    (void)arg;
    return a->data->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__PENDING_CREATION ||
           a->data->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__RESTARTING ||
           a->data->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE;
}

void gcs_actor_manager_start(gcs_actor_manager *am)
{
    size_t n;
    gcs_actor **list = gcs__select(am, gcs__needs_start, NULL, &n);
    for (size_t i = 0; i < n; i++) {
        gcs_actor *a = list[i];
        if (!gcs_actor__live(a))
            continue;
        if (a->data->state != RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE) {
            gcs_actor_sched_queue(a, 0);
            continue;
        }
        /* ALIVE before the restart: still alive if its node is. */
        if (a->lease && gcs_node_get_alive(am->gcs->nodes, a->lease->node_id))
            continue;
        gcs__cause c;
        gcs__cause_died(&c, a, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__NODE_DIED,
                        "the actor's node is no longer alive after the GCS restarted");
        gcs__restart_or_die(a, &c, 1, GCS_KILL_NONE);
    }
    gcs__list_free(list, n);
}

static void gcs__job_published(const Ray__Rpc__PubMessage *msg, void *arg)
{
    const Ray__Rpc__JobTableData *job = msg->job_message;
    if (msg->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_JOB_MESSAGE && job && job->is_dead &&
        job->job_id.len == RC_JOB_ID_SIZE)
        gcs_actor_on_job_finished(arg, job->job_id.data);
}

gcs_actor_manager *gcs_actor_manager_new(gcs_server *gcs)
{
    gcs_actor_manager *am = RC_NEW(gcs_actor_manager);
    am->gcs = gcs;
    rc_map_init(&am->actors);
    rc_map_init(&am->named);
    rc_map_init(&am->by_worker);
    rc_map_init(&am->owners);
    gcs_actor_sched_init(am);
    gcs_publisher_listen(gcs->pub, RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL, gcs__job_published, am);
    return am;
}

void gcs_actor_manager_shutdown(gcs_actor_manager *am)
{
    if (!am || am->stopped)
        return;
    am->stopped = 1;
    gcs_actor_sched_shutdown(am);
}

static void gcs__drop_actor(void *p)
{
    gcs_actor *a = p;
    /* Nothing runs any more: whatever references are left die with the table. */
    while (a->held) { /* only without a server (a failed start): nobody waits */
        gcs_actor_held *h = a->held;
        a->held = h->next;
        rc_free(h);
    }
    gcs__actor_free(a);
}

static void gcs__closed(gcs_actor_manager *am)
{
    rc_free(am);
}

void gcs_actor_manager_free(gcs_actor_manager *am)
{
    if (!am)
        return;
    gcs_actor_manager_shutdown(am);
    gcs__loaded_free(am);
    rc_map_destroy(&am->named, NULL);
    rc_map_destroy(&am->by_worker, NULL);
    rc_map_destroy(&am->owners, rc_free);
    rc_map_destroy(&am->actors, gcs__drop_actor);
    rc_free(am->dead_order);
    gcs_actor_sched_close(am, gcs__closed);
}
