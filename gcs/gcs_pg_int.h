/*
 * Private structures shared by the GCS placement-group manager (gcs_pg_manager.c: the
 * table, the handlers, removal, node and owner deaths) and the placement-group scheduler
 * (gcs_pg_scheduler.c: placing bundles with the scheduler library and reserving them on
 * raylets with two-phase commit).
 *
 * A group is reference-counted like an actor (gcs_actor_int.h): the table holds one
 * reference until a removed record is evicted, every write and every reservation attempt
 * one more. An attempt is abandoned by clearing its group pointer; when its calls end it
 * gives back whatever it reserved.
 *
 * A bundle is placed when its Bundle.node_id is set in the group's record: that is the
 * node whose raylet committed it. CREATED means every bundle is placed; PENDING and
 * RESCHEDULING groups wait in the scheduler's queue for their unplaced bundles.
 *
 * Loop thread only.
 */
#ifndef RAYC_GCS_GCS_PG_INT_H
#define RAYC_GCS_GCS_PG_INT_H

#include "gcs_int.h"
#include "rc_list.h"

typedef struct gcs_pg gcs_pg;
typedef struct gcs_pg_attempt gcs_pg_attempt;
typedef struct gcs_pg_waiter gcs_pg_waiter;
typedef Ray__Rpc__PlacementGroupTableData gcs_pg_record;

struct gcs_pg {
    gcs_pg_manager *pm;
    uint8_t id[RC_PG_ID_SIZE];
    int refs;
    int in_table;
    gcs_pg_record *data; /* owned: the record as last written */
    int writes;          /* writes in flight */
    gcs_pg_waiter *waiters; /* WaitPlacementGroupUntilReady calls */
    uint32_t next_any;   /* bundle index -1: the bundle to try next (rotates) */
    /* Scheduling (gcs_pg_scheduler.c). */
    int queued;
    rc_list qlink; /* on the scheduler's queue while queued */
    int64_t not_before_ms;
    int64_t backoff_ms;
    int infeasible;          /* the scheduler said NEVER */
    char *why;               /* the sentence of its last refusal, NEVER or NOT_NOW (owned) */
    Ray__Rpc__PlacementGroupStats__SchedulingState sched_state;
    uint32_t n_attempts;
    int64_t started_ns;      /* first placement attempt */
    gcs_pg_attempt *attempt; /* a reservation in flight */
};

typedef struct gcs_pg_sched {
    rc_list queue; /* gcs_pg.qlink */
    size_t n_queued;
    rc_list attempts; /* gcs_pg_attempt.link */
    uv_timer_t timer;
    int64_t timer_due_ms; /* 0: not armed */
    int in_pass;
    int held; /* releases of unused bundles still out after a restart: no placing yet */
    int stopped;
    void (*closed)(gcs_pg_manager *pm);
} gcs_pg_sched;

struct gcs_pg_manager {
    gcs_server *gcs;
    rc_map groups;   /* group id -> gcs_pg: every group known, removed ones too */
    rc_map named;    /* namespace '\0' name -> gcs_pg (not removed) */
    rc_map job_ns;   /* job id -> its namespace (char *, owned) */
    size_t n_live;
    uint8_t (*removed_order)[RC_PG_ID_SIZE];
    size_t removed_head, removed_len, removed_cap;
    gcs_pg_sched sched;
    gcs_load_cb load_cb;
    int stopped;
};

/* gcs_pg_manager.c, for the scheduler. */
void gcs_pg__ref(gcs_pg *pg);
void gcs_pg__unref(gcs_pg *pg);
/* 1 while pg is neither REMOVED nor evicted. */
int gcs_pg__live(const gcs_pg *pg);
/* The bundles indices[0..n) were committed on nodes[0..n): records it (CREATED once every
 * bundle is placed, else still RESCHEDULING and queued again). */
void gcs_pg__placed(gcs_pg *pg, const uint32_t *indices, const uint8_t (*nodes)[RC_NODE_ID_SIZE], size_t n);
/* A bundle for a raylet: b with node_id set (borrows from b and node). */
void gcs_pg__bundle_for(const Ray__Rpc__Bundle *b, const uint8_t *node, Ray__Rpc__Bundle *out);

/* gcs_pg_scheduler.c */
void gcs_pg_sched_init(gcs_pg_manager *pm);
void gcs_pg_sched_shutdown(gcs_pg_manager *pm);
void gcs_pg_sched_close(gcs_pg_manager *pm, void (*done)(gcs_pg_manager *pm));
/* pg waits to have its unplaced bundles placed (front: before the others, as Ray does for
 * groups that lost bundles), after delay_ms. */
void gcs_pg_sched_queue(gcs_pg *pg, int64_t delay_ms, int front);
/* Takes pg out of the queue and abandons its attempt. */
void gcs_pg_sched_cancel(gcs_pg *pg);
void gcs_pg_sched_kick(gcs_pg_manager *pm, int nodes_changed);
/* CancelResourceReserve of bundle b (node_id set) on its node, if that node is alive. */
void gcs_pg_sched_cancel_bundle(gcs_pg_manager *pm, const Ray__Rpc__Bundle *b);

#endif
