/*
 * Private structures shared by the GCS actor manager (gcs_actor_manager.c: the table, the
 * lifecycle, failures) and the actor scheduler (gcs_actor_scheduler.c: choosing a node,
 * leasing a worker, pushing the creation task, giving leases back).
 *
 * An actor is reference-counted: the table holds one reference while the actor is in it
 * (until a dead record is evicted), and every asynchronous operation that will come back
 * to it (a write, a lease request, a push) holds one. A scheduling attempt is abandoned by
 * clearing its actor pointer; its callbacks then only clean up.
 *
 * Loop thread only.
 */
#ifndef RAYC_GCS_GCS_ACTOR_INT_H
#define RAYC_GCS_GCS_ACTOR_INT_H

#include "core_worker.pb-c.h"
#include "gcs_int.h"
#include "rc_buf.h"
#include "rc_list.h"

typedef struct gcs_actor gcs_actor;
typedef struct gcs_actor_attempt gcs_actor_attempt;
typedef struct gcs_actor_held gcs_actor_held;

/* A CreateActor call waiting for its actor to be ALIVE or DEAD (holds a reference). */
struct gcs_actor_held {
    gcs_actor *a;
    rpc_call *call;
    gcs_actor_held *next;
};

/* A worker lease the GCS holds for an actor: granted by the raylet of node_id, kept for
 * the actor's life, returned with disconnect_worker when the actor stops. */
typedef struct gcs_actor_lease {
    uint8_t node_id[RC_NODE_ID_SIZE];
    uint8_t worker_id[RC_WORKER_ID_SIZE];
    uint8_t lease_id[RC_UNIQUE_ID_SIZE];
    int has_lease_id; /* 0 for leases reloaded after a GCS restart: returned by worker port */
    char ip[64];
    int port;
    uint32_t pid;
    Ray__Rpc__ResourceMapEntry **mapping; /* owned copies */
    size_t n_mapping;
} gcs_actor_lease;

typedef enum gcs_actor_kill {
    GCS_KILL_NONE,     /* the worker is already gone: just forget the lease */
    GCS_KILL_FORCE,    /* KillActor(force_kill) and return the lease now */
    GCS_KILL_GRACEFUL, /* KillActor; return the lease once it answers (pending calls done) */
} gcs_actor_kill;

struct gcs_actor {
    gcs_actor_manager *am;
    uint8_t id[RC_ACTOR_ID_SIZE];
    int refs;
    int in_table;
    Ray__Rpc__ActorTableData *data; /* owned: the record as last written */
    Ray__Rpc__TaskSpec *spec;       /* owned: the creation task */
    int writes;                     /* writes of data in flight */
    gcs_actor_held *held;           /* CreateActor calls waiting for ALIVE or DEAD */
    /* Owner index (live actors with an owner worker). */
    uint8_t owner_worker[RC_WORKER_ID_SIZE];
    int has_owner;
    rc_list owner_link; /* on its owner's list in am->owners while live */
    /* Scheduling (gcs_actor_scheduler.c). */
    int queued;
    rc_list qlink; /* on the scheduler's queue while queued */
    int64_t not_before_ms;
    int64_t infeasible_since_ms; /* 0: not known to be infeasible */
    char *infeasible_why;        /* owned */
    int held_back;               /* queued with no raylet holding its request (demand) */
    gcs_actor_attempt *attempt;  /* lease request or creation push in flight */
    gcs_actor_lease *lease;      /* the worker it runs on (once granted) */
};

/* The scheduler's part of the manager. */
typedef struct gcs_actor_sched {
    rc_list queue; /* gcs_actor.qlink: actors waiting for a node, oldest first */
    size_t n_queued;
    rc_list attempts; /* every attempt with calls in flight */
    uv_timer_t timer;
    int64_t timer_due_ms; /* 0: not armed */
    void (*closed)(gcs_actor_manager *am);
    int in_pass;
    int stopped;
    rc_list worker_calls; /* KillActor calls in flight */
} gcs_actor_sched;

struct gcs_actor_manager {
    gcs_server *gcs;
    rc_map actors;    /* actor id -> gcs_actor: every actor known, dead ones too */
    rc_map named;     /* namespace '\0' name -> gcs_actor (not dead) */
    rc_map by_worker; /* worker id -> gcs_actor whose lease is on that worker */
    rc_map owners;    /* owner worker id -> rc_list (owned) of the live gcs_actors it owns, newest first */
    size_t n_live;
    /* Dead actor IDs, oldest first (a circular queue), for eviction. */
    uint8_t (*dead_order)[RC_ACTOR_ID_SIZE];
    size_t dead_head, dead_len, dead_cap;
    gcs_actor_sched sched;
    gcs_load_cb load_cb;
    gcs_store_item *loaded; /* ACTOR records between the two loads (owned copies) */
    size_t n_loaded;
    int stopped;
};

/* gcs_actor_manager.c, for the service and the scheduler. */
const char *gcs_actor__state_name(int state);
/* The key of a named actor in am->named: namespace, NUL, name. */
void gcs_actor__name_key(const char *ns, const char *name, rc_buf *key);
/* A new actor (one reference: the table's) in the table and its indexes, taking spec and
 * data (owned from here). */
gcs_actor *gcs_actor__new(gcs_actor_manager *am, Ray__Rpc__TaskSpec *spec, Ray__Rpc__ActorTableData *data);
/* Replaces a's record with a copy of d (d may borrow from the old record). */
void gcs_actor__set_record(gcs_actor *a, const Ray__Rpc__ActorTableData *d);
/* Writes a's record; once stored it is published, held CreateActor calls are answered (if
 * ALIVE or DEAD) and register_call (may be NULL) gets RegisterActor's reply. */
void gcs_actor__write(gcs_actor *a, rpc_call *register_call);
/* Answers a CreateActor call from a record (ALIVE: the address; DEAD: the death cause). */
void gcs_actor__answer_create(rpc_call *call, const Ray__Rpc__ActorTableData *snap);
/* Stops a on request: RESTARTING while restarts are left (restartable) or DEAD, with an
 * ActorDiedErrorContext of reason and message; kill says what happens to its worker. */
void gcs_actor__stop(gcs_actor *a, Ray__Rpc__ActorDiedErrorContext__Reason reason, const char *message,
                     int restartable, gcs_actor_kill kill);
void gcs_actor__ref(gcs_actor *a);
void gcs_actor__unref(gcs_actor *a);
/* 1 while a is neither DEAD nor evicted. */
int gcs_actor__live(const gcs_actor *a);
void gcs_actor__set_lease(gcs_actor *a, gcs_actor_lease *l);
/* Detaches and returns a's lease (NULL if none). */
gcs_actor_lease *gcs_actor__take_lease(gcs_actor *a);
/* The creation task ran on a->lease's worker: the actor is ALIVE. */
void gcs_actor__created(gcs_actor *a);
/* The constructor failed (the worker said is_application_error): DEAD, no restart. */
void gcs_actor__creation_failed(gcs_actor *a, const char *message);
/* The worker the creation task was pushed to is unreachable: it died. */
void gcs_actor__worker_unreachable(gcs_actor *a, const char *message);
/* No node could hold it for unschedulable_task_timeout_ms: DEAD. */
void gcs_actor__unschedulable(gcs_actor *a, const char *why);
/* Its placement group does not exist (any more): DEAD. */
void gcs_actor__group_gone(gcs_actor *a, const char *why);

/* gcs_actor_scheduler.c */
void gcs_actor_sched_init(gcs_actor_manager *am);
void gcs_actor_sched_shutdown(gcs_actor_manager *am);
/* Closes the timer; done(am) runs once it is closed. */
void gcs_actor_sched_close(gcs_actor_manager *am, void (*done)(gcs_actor_manager *am));
/* a (PENDING_CREATION or RESTARTING) waits for a node; tried after delay_ms. */
void gcs_actor_sched_queue(gcs_actor *a, int64_t delay_ms);
/* Takes a out of the queue and abandons its attempt (a lease request still out is
 * cancelled; a granted lease stays in a->lease for the caller to release). */
void gcs_actor_sched_cancel(gcs_actor *a);
/* Gives lease back (owned from here): KillActor first unless kill is GCS_KILL_NONE, then
 * ReturnWorkerLease(disconnect_worker) to its raylet if that node is alive. cause (may be
 * NULL) goes to the worker with KillActor. */
void gcs_actor_sched_release(gcs_actor_manager *am, gcs_actor_lease *lease, const uint8_t *actor_id,
                             gcs_actor_kill kill, const Ray__Rpc__ActorDeathCause *cause);
void gcs_actor_sched_kick(gcs_actor_manager *am, int placement_changed);
void gcs_actor_sched_demand(gcs_actor_manager *am, void (*fn)(const Ray__Rpc__ResourceDemand *d, void *arg),
                            void *arg);
void gcs_actor_lease_free(gcs_actor_lease *l);

#endif
