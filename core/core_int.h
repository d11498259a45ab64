/*
 * Private structures of librayc, the core worker linked into every driver and into
 * rayc-worker (ARCHITECTURE §8, docs/tasks.md).
 *
 * One core worker per process (the API is process-wide). It owns a libuv loop thread where
 * all of its state lives; user threads reach it through core_post (an MPSC queue and a
 * uv_async), waiting on a core_waiter when they need an answer. The one exception is the
 * memory store (small objects and errors), which user threads read under its own mutex
 * so that rayc_get of ready objects never waits for the loop.
 *
 * In a worker, the main thread is the task thread: it runs remote functions one at a time;
 * the loop thread receives PushTask calls, resolves their arguments and hands them over.
 */
#ifndef RAYC_CORE_CORE_INT_H
#define RAYC_CORE_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "common.pb-c.h"
#include "core_worker.pb-c.h"
#include "gcs_client.h"
#include "gcs_revocations.h"
#include "node_manager.pb-c.h"
#include "rayc.h"
#include "rayc_raylet.pb-c.h"
#include "task_events.pb-c.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_list.h"
#include "rc_map.h"
#include "rpc.h"

typedef struct core_worker core_worker;
typedef struct core_op core_op;
typedef struct core_task core_task;
typedef struct core_sched_key core_sched_key;
typedef struct core_lease core_lease;
typedef struct core_ref core_ref;
typedef struct core_get core_get;
typedef struct core_actor core_actor;

/* ---- cross-thread hand-off ------------------------------------------------------------ */

/* An operation run on the loop thread. It owns itself after core_post: run() frees it (or
 * hands it on). */
struct core_op {
    void (*run)(core_worker *cw, core_op *op);
    core_op *next;
};

/* Queues op for the loop thread. Any thread. */
void core_post(core_worker *cw, core_op *op);

/* A user thread waiting for the loop thread. */
typedef struct core_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int rc;
} core_waiter;

void core_waiter_init(core_waiter *w);
void core_waiter_destroy(core_waiter *w);
/* Loop thread: marks w done with rc and wakes its thread. */
void core_waiter_signal(core_waiter *w, int rc);
/* Caller thread: blocks until signalled; returns rc. */
int core_waiter_wait(core_waiter *w);

/* ---- memory store --------------------------------------------------------------------- */

/* An object value held in process memory: the bytes of a small object, a copy fetched from
 * its owner, or an error. Reference-counted: the store holds one reference, every
 * rayc_object handed out holds one. Immutable once published. */
typedef struct core_value {
    int refs; /* guarded by the memory store mutex */
    rayc_error error;
    char *error_message; /* errors only */
    void *data;          /* plain bytes; NULL for errors and plasma values */
    size_t size;
    /* A value in the node's shared-memory store: data points into the mapping, and the
     * pin is released (ReleaseObjects) when the last reference goes. */
    int in_plasma;
    uint8_t object_id[RC_OBJECT_ID_SIZE];
} core_value;

typedef struct core_memstore {
    pthread_mutex_t mu;
    rc_map values; /* object id -> core_value */
} core_memstore;

void core_memstore_init(core_memstore *ms);
void core_memstore_destroy(core_memstore *ms);
/* Publishes value for id (taking the caller's reference); replaces nothing if present. */
void core_memstore_put(core_memstore *ms, const uint8_t *id, core_value *value);
/* Takes a reference to the value of id, or NULL. Any thread. */
core_value *core_memstore_get(core_memstore *ms, const uint8_t *id);
void core_memstore_remove(core_memstore *ms, const uint8_t *id);
/* Drops one reference; the last frees the value (plasma values tell the loop to release
 * their pin). Any thread. */
void core_value_unref(core_worker *cw, core_value *v);
core_value *core_value_new_bytes(const void *data, size_t size);
core_value *core_value_new_error(rayc_error error, const char *message);

/* ---- references (loop thread) ---------------------------------------------------------- */

typedef enum core_ref_state {
    CORE_REF_PENDING, /* its task has not finished */
    CORE_REF_READY,   /* value in the memory store or in plasma (locations) */
    CORE_REF_FREED,
    /* Out of scope, but an argument in the lineage of an object still in scope: its value
     * is released, its ID kept so that it can be made again if that object is lost. */
    CORE_REF_LINEAGE,
} core_ref_state;

/* An object this process owns (a put, or a return of a task it submitted). */
struct core_ref {
    uint8_t id[RC_OBJECT_ID_SIZE];
    core_ref_state state;
    int64_t local_refs;     /* holders in this process (rayc_ref_retain/release) */
    int64_t submitted_refs; /* pending tasks that take it as an argument */
    int in_plasma;
    uint64_t size;
    uint8_t (*locations)[RC_NODE_ID_SIZE];
    size_t n_locations;
    core_task *task; /* the task producing it while pending (for cancel), else NULL */
    /* Lineage: the task that made it, kept while any of its returns is in scope so that a
     * lost copy can be made again (NULL for puts, actor calls and inline results). */
    core_task *lineage;
    int64_t lineage_refs; /* kept tasks that take it as an argument */
    int lineage_evicted;  /* its lineage was released to bound memory (max_lineage_bytes) */
    /* get/wait operations and tasks waiting for it to become ready */
    struct core_ref_waiter *waiters;
    /* GetObjectStatus calls from borrowers held until it is ready */
    rpc_call **status_calls;
    size_t n_status_calls;
};

typedef struct core_ref_waiter {
    void (*ready)(core_worker *cw, core_ref *ref, void *arg);
    void *arg;
    struct core_ref_waiter *next;
} core_ref_waiter;

core_ref *core_ref_get(core_worker *cw, const uint8_t *id);
core_ref *core_ref_create(core_worker *cw, const uint8_t *id);
/* Adds n (may be negative) local references; frees the object when none remain. */
void core_ref_add_local(core_worker *cw, const uint8_t *id, int64_t n);
void core_ref_add_submitted(core_worker *cw, core_ref *ref, int64_t n);
void core_ref_add_lineage(core_worker *cw, core_ref *ref, int64_t n);
/* Every copy of a ready object is gone (or its value was released as lineage): the value
 * cannot be fetched. */
int core_ref_lost(const core_ref *ref);
/* Marks ref failed with error (a value in the memory store) and wakes its waiters. */
void core_ref_fail(core_worker *cw, core_ref *ref, rayc_error error, const char *message);
/* The object became ready: value in the memory store (inline) or in plasma on node. */
void core_ref_set_ready(core_worker *cw, core_ref *ref, int in_plasma, const uint8_t *node_id, uint64_t size);
void core_ref_add_location(core_worker *cw, core_ref *ref, const uint8_t *node_id);
void core_ref_remove_location(core_worker *cw, core_ref *ref, const uint8_t *node_id);
/* Calls fn when ref is ready (now, if it already is). */
void core_ref_when_ready(core_worker *cw, core_ref *ref, void (*fn)(core_worker *, core_ref *, void *), void *arg);
void core_refs_free_all(core_worker *cw);
/* A node died: objects whose only copy was there are lost. */
void core_refs_node_died(core_worker *cw, const uint8_t *node_id);

/* ---- tasks (loop thread) --------------------------------------------------------------- */

typedef enum core_task_state {
    CORE_TASK_RESOLVING, /* waiting for owned arguments */
    CORE_TASK_QUEUED,    /* waiting for a lease */
    CORE_TASK_PUSHED,    /* running on a leased worker */
    CORE_TASK_DONE,
} core_task_state;

struct core_task {
    Ray__Rpc__TaskSpec *spec; /* owned */
    uint8_t task_id[RC_TASK_ID_SIZE];
    core_task_state state;
    int retries_left;         /* -1: forever */
    /* After its worker died: the node it died on and when. Its retry goes to no lease of
     * that node granted before then (their workers likely died with it, their sockets just
     * not closed yet: a host that vanished takes all its workers at once). */
    uint8_t died_on[RC_NODE_ID_SIZE];
    int64_t died_ms;
    int retry_exceptions;
    int cancelled;
    int force_cancel;
    size_t unresolved;        /* owned arguments not ready yet (+1 while being submitted) */
    rayc_error arg_error;     /* an argument turned out to be an error: fail once resolved */
    char *arg_error_message;
    core_ref **arg_refs;      /* owned refs it holds as submitted arguments */
    size_t n_arg_refs;
    core_sched_key *key;
    core_lease *lease; /* while pushed */
    rc_list link; /* in its key's queue or its lease's in-flight list */
    /* Actor calls: arguments settled (push when its turn comes), and finished (leave the
     * actor's lists). NULL for normal tasks, which go to their scheduling key. */
    void (*on_resolved)(core_worker *cw, core_task *t);
    void (*on_finished)(core_worker *cw, core_task *t);
    core_actor *actor;
    int resolved;
    int attempts_left; /* actor calls: retries across restarts (-1: forever) */
    uint32_t actor_epoch; /* actor calls: the instance it was pushed to */
    int pending_counted;  /* actor calls: counted against max_pending_calls until finished */
    /* Lineage (normal tasks): returns in scope that name it as their lineage, and whether
     * it is kept in cw->lineage after finishing (its arg_refs then hold lineage counts). */
    int lineage_refs;
    int in_lineage;
    size_t lineage_bytes;             /* its spec's size while it counts in cw->lineage_bytes */
    rc_list lineage_link; /* kept and finished, oldest first */
    int args_submitted; /* arg_refs hold submitted counts (while it runs) */
};

/* The first task on a list of core_task.link (a queue), or NULL if it is empty. */
static inline core_task *core_task_first(const rc_list *list)
{
    return rc_list_entry_or_null(rc_list_first(list), core_task, link);
}

/* ---- leases and scheduling keys (loop thread) ----------------------------------------- */

struct core_lease {
    core_sched_key *key;
    uint8_t lease_id[RC_UNIQUE_ID_SIZE];
    rpc_client *raylet; /* the raylet that granted it (shared, see core_raylet_client) */
    char raylet_address[96];
    rpc_client *worker;
    Ray__Rpc__Address *worker_address; /* owned */
    Ray__Rpc__ResourceMapEntry **resource_mapping; /* owned copies */
    size_t n_resource_mapping;
    size_t in_flight;
    rc_list tasks; /* pushed, not yet answered */
    int returning;
    int worker_failed;
    int64_t idle_since_ms; /* 0 while it has work */
    int64_t granted_ms;
    rc_list link;
};

typedef struct core_lease_request {
    core_sched_key *key;
    uint8_t lease_id[RC_UNIQUE_ID_SIZE];
    int64_t sent_ms;
    char raylet_address[96]; /* "" for the local raylet */
    int cancelled;
    rc_list link;
} core_lease_request;

struct core_sched_key {
    char *name; /* canonical bytes of the shape, the map key (name_len bytes) */
    size_t name_len;
    Ray__Rpc__LeaseSpec *lease_template; /* owned; lease_id filled per request */
    rc_list queue; /* core_task.link */
    size_t queued;
    rc_list leases;   /* core_lease.link */
    rc_list requests; /* core_lease_request.link */
    size_t n_requests;
    int64_t last_backlog_reported;
    /* Why its leases wait, when no node could ever hold them (the raylet's sentence, asked
     * once they have waited a while: ExplainLeases); NULL if not known. */
    char *why;
    int explaining;
    /* Spillback loops: lease requests the local raylet sent to another node that rejected
     * them, in a row (their resource views disagree); past lease_spillback_max_bounces no new
     * request goes out before spill_hold_until_ms (0: none), then one is tried again. */
    int spill_bounces, spill_holds, why_is_spill;
    int64_t spill_hold_until_ms;
    /* Lease requests the local raylet failed in a row (it is gone or cannot answer): no new
     * request goes out before raylet_retry_at_ms (0: none), 1 s after the first failure,
     * then 2, 4, up to 8 s. */
    int raylet_failures;
    int64_t raylet_retry_at_ms;
};

/* ---- get / wait ------------------------------------------------------------------------ */

/* One object a get waits for. owner is NULL for objects this process owns. */
typedef struct core_get_item {
    uint8_t id[RC_OBJECT_ID_SIZE];
    Ray__Rpc__Address *owner; /* owned copy, or NULL */
    core_value *value;        /* the result (one reference), or NULL while missing */
    int fetching;             /* a fetch is in flight */
    int asks;                 /* owner asked again after a fetch found nothing */
    int owner_retries;        /* owner asks sent again after the call itself was lost */
} core_get_item;

/* A get or wait in progress on the loop thread. Reference-counted (atomically: the calling
 * thread drops its reference after reading the results): the op, each callback in flight
 * and the timer hold one. Once finished, late arrivals are dropped. */
struct core_get {
    _Atomic int refs;
    size_t n;
    core_get_item *items;
    size_t ready;
    size_t want;     /* finished when this many are ready (n for a get) */
    int fetch_local; /* wait: plasma objects must be on this node */
    int keep_values; /* get: hand the values out; wait: only count */
    int64_t timeout_ms;
    uv_timer_t timer;
    int timer_started;
    int finished;
    int timed_out;
    core_waiter *waiter;                            /* a user thread, or */
    void (*done)(core_worker *cw, core_get *g, void *arg); /* a loop-thread continuation */
    void *done_arg;
};

core_get *core_get_new(size_t n);
void core_get_unref(core_worker *cw, core_get *g);
/* Starts g on the loop thread (takes the caller's reference for the op). */
void core_get_start(core_worker *cw, core_get *g);
/* A node died: gets waiting on an owner there get RAYC_ERR_OWNER_DIED (its host may never
 * close the connection). */
void core_get_node_died(core_worker *cw, const uint8_t *node_id);
/* At stop, once every call has ended: forgets the list of calls to owners. */
void core_get_forget_asks(void);

/* ---- the core worker ------------------------------------------------------------------- */

typedef struct core_node {
    uint8_t id[RC_NODE_ID_SIZE];
    char address[96]; /* raylet "ip:port" */
    int alive;
} core_node;

struct core_worker {
    int is_worker; /* rayc-worker, else a driver */
    uv_loop_t loop;
    uv_thread_t loop_thread;
    uv_async_t wakeup;
    pthread_mutex_t op_mu;
    core_op *ops_head, *ops_tail;
    int stopping;

    rpc_ctx *rpc;
    rpc_server *srv; /* CoreWorkerService */
    int port;
    gcs_client *gcs;
    gcs_subscriber *sub;
    gcs_revocations *revocations; /* what the GCS revoked, refused by srv too (secure only) */
    rpc_client *raylet_local; /* LocalRayletService over the unix socket */
    rpc_client *raylet_tcp;   /* our raylet's NodeManagerService */
    rc_map raylet_clients;    /* "ip:port" -> rpc_client, for spillback and FreeObjects */
    rc_map worker_clients;    /* "ip:port" -> rpc_client */

    char gcs_address[128];
    char raylet_socket[512];
    char node_ip[64];
    uint8_t node_id[RC_NODE_ID_SIZE];
    uint8_t worker_id[RC_WORKER_ID_SIZE];
    uint8_t job_id[RC_JOB_ID_SIZE];
    Ray__Rpc__Address address; /* ours: ip, port, node id, worker id */
    char code_search_path[4096];
    char namespace_[256];

    /* shared-memory store mapping */
    uint8_t *store_base;
    uint64_t store_size;
    int store_fd; /* the store's file, open while store_base is set (puts write through it) */
    struct core_store_warm *store_warm; /* a driver's pre-faulted low part of the mapping, or NULL */

    core_memstore memstore;
    rc_map refs;     /* object id -> core_ref (owned objects) */
    rc_map tasks;    /* task id -> core_task (submitted, not finished) */
    rc_map lineage;  /* task id -> core_task: finished tasks kept to rebuild lost returns */
    rc_list lineage_order;   /* core_task.lineage_link: those not running again, oldest first */
    int64_t lineage_bytes;                  /* their specs' size (max_lineage_bytes) */
    rc_map keys;     /* scheduling key name -> core_sched_key */
    rc_map nodes;    /* node id -> core_node */
    rc_map plasma_pins; /* object id -> (intptr_t) pins held through GetObjects */
    rc_map actors;      /* actor id -> core_actor: actors this process calls or owns */
    rc_map pgs;         /* placement group id -> core_pg_entry: our calls in flight (core_pg.c) */

    /* ID generation (any thread) */
    uint8_t task_prefix[8];
    uint64_t task_counter;    /* atomic */
    uint8_t put_task_id[RC_TASK_ID_SIZE];
    uint32_t put_counter;     /* atomic */

    uv_timer_t backlog_timer;
    uv_timer_t linger_timer; /* returns leases idle longer than worker_lease_linger_ms */
    uv_timer_t pg_timer;     /* deadlines of placement-group waits held on the loop (core_pg.c) */
    int64_t pg_timer_due_ms;
    uv_timer_t parent_check_timer;
    pid_t parent_pid;

    /* worker mode: task execution */
    pthread_mutex_t exec_mu;
    pthread_cond_t exec_cv;
    rc_list exec_queue; /* core_exec_item.link: handed to the task threads, oldest first */
    int exec_stop;
    int exec_busy; /* task threads inside an item */
    uint8_t running_task_id[RC_TASK_ID_SIZE];
    const rayc_executor *running_executor; /* a binding's task running now, for interrupts */
    int running_cancel_requested;

    /* worker mode: the actor this worker hosts (set once, on the task thread, before the
     * creation task is answered; read on the loop thread afterwards) */
    int actor_created;
    uint8_t actor_id[RC_ACTOR_ID_SIZE];
    const rayc_actor_class *actor_class;
    const rayc_executor *actor_executor; /* a language binding's actor (actor_class NULL) */
    void *actor_self;
    int actor_max_concurrency;
    Ray__Rpc__SchedulingStrategy *actor_strategy; /* its creation's (placement group capture) */
    int actor_gpu_ids[64]; /* what its creation lease holds, for its methods */
    int actor_n_gpu_ids;
    double actor_num_cpus, actor_num_gpus;
    rc_map actor_callers; /* caller worker id -> core__caller (loop thread) */

    /* a local cluster started by rayc_init */
    pid_t local_gcs_pid, local_raylet_pid;
    char local_session[512];
    /* its admin credentials (rc_free; NULL unless secure), which this driver uses rather
     * than its environment's, and whether it runs --insecure (RAYC_INSECURE=1); the same
     * for a cluster found in a session on this host (core_local_cluster_find) */
    char *local_ca_pem, *local_token;
    int local_insecure;

    struct core_events *events; /* task events and log rotation (core_events.c) */

    /* why core_start failed, for rayc_last_error */
    char start_error[768];
};

extern core_worker *core__cw;

/* core_worker.c */
int core_start(core_worker *cw, const rayc_init_options *opts, int is_worker, const char *raylet_socket,
               const uint8_t *worker_id, const uint8_t *node_id, const char *node_ip);
void core_stop(core_worker *cw);
rpc_client *core_raylet_client(core_worker *cw, const char *address);
rpc_client *core_worker_client(core_worker *cw, const char *address);
const char *core_node_address(core_worker *cw, const uint8_t *node_id);
void core_address_text(const Ray__Rpc__Address *a, char *out, size_t len);
/* A worker whose call to its own raylet failed with grpc_code: when that raylet is gone
 * (killed), the worker exits at once, so that the owner retries its task as a worker
 * failure instead of the task failing with the lost connection's error. Returns when the
 * raylet still runs (and always in a driver). */
void core_worker_raylet_call_failed(core_worker *cw, int grpc_code);

/* core_events.c: task events for the GCS (Ray's task event buffer) and, in workers, the
 * rotation of the worker's stdout and stderr files. Recording: any thread. */
int core_events_start(core_worker *cw);
/* Owner side: spec's attempt entered status now (node_id: where it went, or NULL). */
void core_events_task_status(core_worker *cw, const Ray__Rpc__TaskSpec *spec, Ray__Rpc__TaskStatus status,
                             const uint8_t *node_id);
/* spec's attempt failed now (either side). */
void core_events_task_failed(core_worker *cw, const Ray__Rpc__TaskSpec *spec, Ray__Rpc__ErrorType type,
                             const char *message);
Ray__Rpc__ErrorType core_events_error_type(rayc_error error);
/* Executor side: the run of spec starts / ended (with the log offsets of its output). */
void core_events_task_running(core_worker *cw, const Ray__Rpc__TaskSpec *spec);
void core_events_task_ran(core_worker *cw, const Ray__Rpc__TaskSpec *spec, int failed, Ray__Rpc__ErrorType type,
                          const char *message);
/* Sends everything buffered, synchronously (core_stop, the loop thread stopped). */
void core_events_flush_sync(core_worker *cw, int64_t timeout_ms);
/* Closes the timer; the state is freed when the loop runs the close. */
void core_events_close(core_worker *cw);

/* core_submit.c */
void core_submit_task(core_worker *cw, core_task *task);
/* Cancels the task making object_id; recursive: the worker running it cancels the tasks it
 * submitted too (Ray's ray.cancel(recursive=True)). */
void core_submit_cancel(core_worker *cw, const uint8_t *object_id, int force, int recursive);
/* A worker's running task was cancelled recursively: cancel every task this process owns. */
void core_submit_cancel_all(core_worker *cw, int force);
void core_submit_backlog_tick(core_worker *cw);
/* Why the task making object_id waits for a node that does not exist (the raylet's
 * sentence), or NULL. Loop thread. */
const char *core_submit_pending_reason(core_worker *cw, const uint8_t *object_id);
void core_submit_linger_tick(core_worker *cw);
void core_submit_node_died(core_worker *cw, const uint8_t *node_id);
/* ref (owned, ready) has lost every copy: re-executes the task that made it (recursively
 * through lost arguments) within its retries, or fails ref with the reason it cannot be
 * rebuilt. */
void core_submit_recover(core_worker *cw, core_ref *ref);
/* A return of t went out of scope: the last one releases t's lineage. */
void core_submit_lineage_drop(core_worker *cw, core_task *t);
void core_submit_shutdown(core_worker *cw);
/* After the last completion: frees tasks, keys, leases. */
void core_submit_free_all(core_worker *cw);
void core_task_free(core_task *t);
/* Stores error as every result of t and finishes it (frees t). */
void core_task_fail(core_worker *cw, core_task *t, rayc_error error, const char *message);
/* Records t's results from a PushTask reply and finishes it (frees t). */
void core_task_succeeded(core_worker *cw, core_task *t, const Ray__Rpc__PushTaskReply *reply, const uint8_t *worker_node);

/* core_get.c */
/* The value a get found for an object in this node's store (metadata decides whether it is
 * an error). */
core_value *core_value_from_plasma(core_worker *cw, const uint8_t *id, uint64_t offset, uint64_t data_size,
                                   uint64_t metadata_size);
/* A value from inline bytes plus Ray's error metadata (decimal ErrorType) if any. */
core_value *core_value_from_inline(const void *data, size_t size, const void *meta, size_t meta_len);
void core_release_plasma(core_worker *cw, const uint8_t *object_id);

/* core_refs.c: GetObjectStatus / GetObjectLocationsOwner / UpdateObjectLocationBatch. */
extern const rpc_method_handler core_owner_handlers[];

/* core_bind.c: borrowed references. core_borrowed_add adjusts the holders of a borrowed
 * reference and returns 1, or returns 0 if id is not borrowed. core_borrowed_owner returns
 * a copy of the owner's address (rpc_msg_free) or NULL. Any thread. */
int core_borrowed_add(const uint8_t *id, int64_t delta);
Ray__Rpc__Address *core_borrowed_owner(core_worker *cw, const uint8_t *id);
void core_borrowed_clear(void);
/* Streaming generators' values at their owner (ReportGeneratorItemReturns). */
extern const rpc_method_handler core_generator_handlers[];
void core_generators_clear(void);

/* core_api.c */
/* Sets this thread's rayc_last_error (and logs it); returns rc, for `return core_fail(...)`. */
int core_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Builds a task (spec, ID, returns in out_refs) from options, checking them; NULL (and the
 * last error set) when they are bad. The caller submits or frees it. */
core_task *core_task_build_with(core_worker *cw, const char *fn_name, const char *class_name, const rayc_arg *args,
                                size_t nargs, const rayc_task_options *opts, rayc_ref *out_refs);
/* The same with default options and no resources (actor calls). */
core_task *core_task_build(core_worker *cw, const char *fn_name, const char *class_name, const rayc_arg *args,
                           size_t nargs, const char *name, int num_returns, rayc_ref *out_refs);

/* core_actor.c */
/* A PushTask reply or failure for an actor call (from core_submit's push path). */
void core_actor_on_message(core_worker *cw, const Ray__Rpc__ActorTableData *data);
void core_actor_free_all(core_worker *cw);
/* At stop: calls not yet pushed fail as cancelled. */
void core_actor_shutdown(core_worker *cw);
/* Asks the GCS for the state of every actor not known dead (after a resubscription). */
void core_actor_refresh_all(core_worker *cw);
/* Once a second: re-asks the GCS about actors whose calls wait on an unclear state. */
void core_actor_tick(core_worker *cw);
/* rayc_cancel of an actor call (t->actor set). */
void core_actor_cancel(core_worker *cw, core_task *t, int force);
/* Generic synchronous call to the GCS from a user thread. */
int core_call_gcs_from_thread(core_worker *cw, const ProtobufCServiceDescriptor *svc, const char *method,
                              const ProtobufCMessage *req, int64_t timeout_ms, ProtobufCMessage **reply, char *err,
                              size_t errlen);

/* core_pg.c */
void core_pg_free_all(core_worker *cw);
/* Held waits past their deadline are answered; stale entries are forgotten (each second and
 * from the deadline timer). */
void core_pg_tick(core_worker *cw);
void core_pg_arm(core_worker *cw, int64_t deadline_ms);

/* core_exec.c (workers) */
extern const rpc_method_handler core_exec_handlers[];
void core_exec_run_loop(core_worker *cw);
void core_exec_stop(core_worker *cw);
/* Frees the actor calls waiting for their turn (at stop, after the server is gone). */
void core_exec_free_callers(core_worker *cw);
/* Fills the task fields of out when the calling thread runs a task; returns 1 if it does. */
int core_exec_fill_context(rayc_runtime_context *out);
int core_exec_in_task(void);
/* 1 (and the group in pg_id) when the calling thread runs a task or actor placed in a
 * placement group that captures child tasks. */
int core_exec_captured_pg(uint8_t *pg_id);
/* A blocking LocalRayletService call from a thread other than the loop's. */
int core_call_raylet_from_thread(core_worker *cw, const char *method, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply, char *err, size_t errlen);

/* ---- the store put path (core_store.c) --------------------------------------------------- */

/* *total gets the sum of the parts' sizes; RC_ETOOBIG if it does not fit in a size_t. */
int core_iov_total(const rayc_iov *parts, size_t n, size_t *total);
/* 0 if [offset, offset + size) lies inside a store of store_size bytes, else RC_ERANGE
 * (no overflow for any inputs). */
int core_store_span_check(uint64_t store_size, uint64_t offset, uint64_t size);
/* Stores parts[0..n) (size bytes in all) as object_id of owner in this node's store: create,
 * bounds-checked copy (through the mapping below core_store_warm_bytes, else written
 * through the store's file), seal; any thread but the loop's.
 * RC_ENOSPC (no store, or it does not fit), RC_EINVAL (the parts do not add up to size),
 * RC_EPROTO (the store placed it outside the mapping: nothing copied, the object aborted),
 * RC_EIO (the write or the seal failed: aborted if not sealed); err says which. */
int core_store_put(core_worker *cw, const uint8_t *object_id, const Ray__Rpc__Address *owner, const rayc_iov *parts,
                   size_t n, size_t size, char *err, size_t errlen);
/* A driver's pre-fault of its own mapping of the store (core_store.c): a thread that
 * populates and touches the mapping from the bottom up to object_store_client_prefault_mb,
 * so puts below it copy through the mapping. Start after the store is mapped (no-op for
 * workers, without a store, or with the setting at 0); stop (joins) before it is unmapped. */
void core_store_warm_start(core_worker *cw);
void core_store_warm_stop(core_worker *cw);
/* Bytes of the mapping, from offset 0, that puts copy through the mapping. */
uint64_t core_store_warm_bytes(const core_worker *cw);

/* Any client: a blocking call from a thread other than the loop's; returns the gRPC code.
 * cli_fn picks the client on the loop thread (clients are loop-thread objects). */
int core_call_from_thread(core_worker *cw, rpc_client *(*cli_fn)(core_worker *cw), const ProtobufCServiceDescriptor *svc,
                          const char *method, const ProtobufCMessage *req, int64_t timeout_ms, ProtobufCMessage **reply,
                          char *err, size_t errlen);
int core_load_libraries(const char *search_path, char *err, size_t errlen);
rayc_remote_fn core_find_function(const char *name);

/* core_local.c */
/* The cluster `rayc start` runs on this host: 0 with its GCS address and session directory,
 * or RC_ENOENT when none runs. Any thread. */
int core_local_cluster_find(char *address, size_t len, char *session, size_t session_len);
/* The credentials of the cluster of session into cw->local_* (the session's CA and admin
 * token, or its --insecure mark), unless the environment names others. */
void core_local_cluster_credentials(core_worker *cw, const char *session);
/* Starts a cluster of this driver's own. 0, or a negative RC_E* code with a sentence in err
 * (what failed, and where to look or what to do). */
int core_local_cluster_start(core_worker *cw, const rayc_init_options *opts, char *address, size_t len, char *err,
                             size_t errlen);
void core_local_cluster_stop(core_worker *cw);

/* Errors carried as values: metadata is the decimal ErrorType, data a packed RayErrorInfo. */
rayc_error core_error_from_type(Ray__Rpc__ErrorType t);
Ray__Rpc__ErrorType core_error_to_type(rayc_error e);

#endif
