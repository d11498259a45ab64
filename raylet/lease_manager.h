/*
 * The raylet's lease manager: Ray's worker lease protocol (docs/tasks.md "Lease"), served
 * as part of NodeManagerService (RequestWorkerLease, ReturnWorkerLease, CancelWorkerLease,
 * ReportWorkerBacklog).
 *
 * A request's LeaseSpec becomes a scheduling class (resources, strategy, label selector,
 * rayc extras: leases of one class are interchangeable). Each decision is the scheduler
 * library's, over the raylet's cluster view (the local node exact, the others from the
 * GCS), preferring this node:
 *
 *   OK here      allocate (concrete GPU instances) → pop or start a worker of the lease's
 *                (job, GPU set) → reply worker_address, worker_pid, resource_mapping;
 *   OK elsewhere reply retry_at_raylet_address (spillback), unless grant_or_reject: such a
 *                request is granted here now or rejected, never spilled or queued;
 *   NOT_NOW      queue here (ready demand), FIFO per class, classes served round-robin;
 *                retried whenever resources free up or the view changes;
 *   NEVER        queue as infeasible demand; retried when the view's nodes change; fails
 *                with SCHEDULING_CANCELLED_UNSCHEDULABLE and the scheduler's sentence after
 *                unschedulable_task_timeout_ms (hard node affinity fails at once, as in Ray).
 *
 * A held request is answered exactly once: granted, spilled, rejected, failed, cancelled
 * (CancelWorkerLease: canceled = true) or, when its caller goes away, dropped. A request
 * that parses but is malformed (bad resource names or amounts, IDs of the wrong size,
 * contradictory strategy flags, strategies not served yet) is answered at once with
 * canceled = true, SCHEDULING_CANCELLED_UNSCHEDULABLE and "invalid lease request: <what is
 * wrong>": it can never be scheduled, and owners fail its tasks with that sentence.
 *
 * Actor creations (ACTOR_CREATION_TASK, from the GCS) are placed by their
 * required_placement_resources when they have them and hold only their required_resources
 * (lease_int.h); their worker is dedicated: never reused, killed when the lease comes back,
 * and a detached actor's outlives its job. Placement-group leases (their resources renamed
 * for the group's bundles, lease_int.h) are scheduled like any other: only nodes with the
 * group's bundle resources can hold them, and the bundle manager picks the bundles and
 * their GPU instances (bundle_manager.h).
 *
 * Fair share between jobs: while requests of several jobs wait here, the next grant goes
 * to the job of the highest priority, and among those to the one holding the smallest
 * share of the node per unit of weight (lease_manager.c).
 *
 * Queued and infeasible requests by class, plus the owners' backlogs, are the node's
 * demand (ResourcesData.resource_load_by_shape). A worker blocked in get lends its lease's
 * CPUs back to the node until it is unblocked (GPUs stay held); CPUs may then be
 * oversubscribed, as in Ray.
 *
 * Loop thread only.
 */
#ifndef RAYC_RAYLET_LEASE_MANAGER_H
#define RAYC_RAYLET_LEASE_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "gcs.pb-c.h"
#include "rpc.h"
#include "worker_pool.h"

struct raylet;
typedef struct lease_manager lease_manager;

/* Creates the lease manager of r (whose view, local node and pool exist). Free with
 * lease_manager_destroy. */
int lease_manager_create(struct raylet *r, lease_manager **out);
/* Answers every held request (UNAVAILABLE: the raylet is shutting down) and frees
 * everything. Workers are the pool's to kill. */
void lease_manager_destroy(lease_manager *lm);

/* The NodeManagerService methods above; arg is the lease manager. */
extern const rpc_method_handler lease_manager_handlers[];

/* The cluster view changed: nodes came or went or changed (feasibility may differ) or
 * only availability did (nodes_changed 0). Queued requests are tried again soon. */
void lease_manager_view_changed(lease_manager *lm, int nodes_changed);
/* The pool reaped w: free its lease, if it had one (a later ReturnWorkerLease for it is
 * then answered OK and does nothing). */
void lease_manager_worker_dead(lease_manager *lm, worker *w, const char *why);
/* A process that owns leases went away (a driver disconnected or died): its queued
 * requests are cancelled, its granted leases freed and their workers killed, its backlog
 * forgotten. */
void lease_manager_owner_gone(lease_manager *lm, const uint8_t owner_id[RC_WORKER_ID_SIZE]);
/* A node died: every lease whose owner ran there goes as for lease_manager_owner_gone (a
 * detached actor's granted lease excepted: it outlives its owner), so that the CPUs those
 * owners held here are not held forever. */
void lease_manager_owner_node_gone(lease_manager *lm, const uint8_t node_id[RC_NODE_ID_SIZE]);
/* A job finished: the backlog its owners reported here is forgotten and its requests
 * still waiting (a detached actor's creation excepted) are cancelled. Its granted leases
 * end with their workers, which the pool kills. */
void lease_manager_job_finished(lease_manager *lm, const uint8_t job_id[RC_JOB_ID_SIZE]);
/* The GCS's record of a job (its start, its end, or a fetch): its fair-share priority and
 * weight (config's rayc_priority and rayc_weight; NULL config: 0 and 1). */
void lease_manager_job_info(lease_manager *lm, const uint8_t job_id[RC_JOB_ID_SIZE], const Ray__Rpc__JobConfig *config,
                            int is_dead);
/* What each job holds here and waits for (jobs with neither left out), for
 * ResourcesData.rayc_job_usage; the array and its messages are lm's, valid until the next
 * call. */
Ray__Rpc__RaycJobUsage **lease_manager_job_usage(lease_manager *lm, size_t *n);
/* Ends every lease holding any of the resources ids (a bundle going away): requests
 * waiting for their worker fail (SCHEDULING_CANCELLED_INTENDED, why), granted leases are
 * freed and their workers killed (why). Returns how many ended. */
size_t lease_manager_end_holding(lease_manager *lm, const uint32_t *ids, size_t n_ids, const char *why);
/* w's task blocked (blocked 1) or resumed (0). Returns 0, or RC_ENOENT if w holds no
 * lease. */
int lease_manager_set_blocked(lease_manager *lm, worker *w, int blocked);

/* The node's demand by shape, for ResourcesData.resource_load_by_shape; NULL when there is
 * none. Free with lease_manager_load_free. */
Ray__Rpc__ResourceLoad *lease_manager_load(lease_manager *lm);
void lease_manager_load_free(Ray__Rpc__ResourceLoad *load);
/* 1 while leases are granted or requests wait (the node is not idle). */
int lease_manager_busy(const lease_manager *lm);
/* Leases preempted here for higher-priority jobs since the raylet started
 * (job_fair_share_preemption). */
uint64_t lease_manager_preemptions(const lease_manager *lm);
/* The scheduler's sentence for a queued lease that no node could ever hold ("" for any
 * other lease, or an unknown ID). Valid until the next dispatch. */
const char *lease_manager_explain(const lease_manager *lm, const uint8_t *lease_id, size_t len);

#endif
