/*
 * The raylet's placement-group bundles (docs/actors.md "Placement groups", Ray's
 * NewPlacementGroupResourceManager), served as part of NodeManagerService
 * (PrepareBundleResources, CommitBundleResources, CancelResourceReserve,
 * ReleaseUnusedBundles).
 *
 * Two-phase commit, each phase idempotent (the GCS repeats calls after failures):
 *
 *   Prepare   reserves each bundle's unit_resources on this node now, all or nothing: the
 *             node's availability goes down, GPUs are concrete instances chosen best-fit
 *             (fractional included) exactly as for leases. A bundle already held is fine.
 *   Commit    turns a prepared bundle's reservation into Ray's bundle resources on this
 *             node: for bundle i of group pg (pghex: the 18-byte ID in hex) and each
 *             resource R, R_group_<i>_<pghex> (that bundle) and R_group_<pghex> (any bundle
 *             of the group here: the sum), plus Ray's bundle label resources
 *             bundle_group_<i>_<pghex> and bundle_group_<pghex> (1000 per bundle), which
 *             let a lease with no resources be held in its group. They join the local node
 *             in the raylet's view (totals and availability, so reports carry them).
 *   Cancel    (prepared or committed) ends every lease holding any of the bundle's
 *             resources (granted ones lose their workers, which are killed), removes its
 *             bundle resources and gives back exactly what Prepare reserved.
 *   Release   (ReleaseUnusedBundles) cancels every bundle of this node not listed.
 *
 * Leases on bundle resources (bundle_manager_allocate): a request naming bundle resources
 * takes, for each R_group_<i>_<pghex> amount, the same amount of R_group_<pghex> too (so
 * the group's total stays the sum of its bundles), and an amount of R_group_<pghex> not
 * already covered by indexed names is taken from the group's bundles on this node: those
 * the request already uses first, then by index (a fractional GPU from the fullest
 * instance that still fits, whole GPUs from whole free instances). So every amount a
 * lease holds belongs to a known bundle, and GPU leases get the bundle's reserved GPU
 * instances (CUDA_VISIBLE_DEVICES is right).
 *
 * Memory: the manager owns its bundles; bundle pointers in a bundle_gpu_use stay valid
 * while the lease holding them lives (a bundle is freed only after its leases ended).
 * Loop thread only.
 */
#ifndef RAYC_RAYLET_BUNDLE_MANAGER_H
#define RAYC_RAYLET_BUNDLE_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "rayc_sched.h"
#include "rc_ids.h"
#include "rpc.h"
#include "sched_proto.h"

struct raylet;
typedef struct bundle_manager bundle_manager;
typedef struct bundle bundle;

/* ---- names -------------------------------------------------------------------------- */

/* Bundle resource names and the label resource are sched_proto.h's (sched_bundle_name_*). */
#define BUNDLE_LABEL_RESOURCE SCHED_BUNDLE_LABEL
#define BUNDLE_LABEL_AMOUNT SCHED_BUNDLE_LABEL_AMOUNT
#define BUNDLE_LABEL_REQUEST SCHED_BUNDLE_LABEL_REQUEST

/* ---- the manager -------------------------------------------------------------------- */

/* Creates the bundle manager of r (whose view and local node exist). Free with
 * bundle_manager_destroy. */
int bundle_manager_create(struct raylet *r, bundle_manager **out);
/* Frees every bundle without touching leases or the view (shutdown). NULL is fine. */
void bundle_manager_destroy(bundle_manager *bm);
/* Brings the local node's bundle resources up to date with the bundles committed and
 * cancelled so far (they are rebuilt lazily, once per loop iteration): call before reading
 * the node's resources. */
void bundle_manager_flush(bundle_manager *bm);

/* The NodeManagerService methods above; arg is the bundle manager. */
extern const rpc_method_handler bundle_manager_handlers[];

/* GPU instances a lease took from bundles. */
typedef struct bundle_gpu_use {
    uint32_t n;
    bundle *from[SCHED_MAX_GPUS];
    uint8_t index[SCHED_MAX_GPUS];
    sched_amount amount[SCHED_MAX_GPUS];
} bundle_gpu_use;

/* Takes req (which names bundle resources, and maybe others) from the local node as
 * described above. Returns 0 with *out (give it back with bundle_manager_free) and the
 * bundle GPU instances in *gpus, or RC_EBUSY (nothing taken: not free now, or the request
 * would name more than SCHED_REQ_MAX_RESOURCES resources once the group amounts are
 * added). */
int bundle_manager_allocate(bundle_manager *bm, const sched_request *req, sched_alloc *out, bundle_gpu_use *gpus);
/* Gives back what bundle_manager_allocate took. */
void bundle_manager_free(bundle_manager *bm, const sched_alloc *a, const bundle_gpu_use *gpus);
/* The GPU instances of gpus that the bundle resource res_id (GPU_group_<i>_<pghex> or
 * GPU_group_<pghex>) stands for, into idx/amount (SCHED_MAX_GPUS each). Returns their
 * count; 0 if res_id is not a bundle GPU resource. */
uint32_t bundle_manager_gpu_instances(bundle_manager *bm, uint32_t res_id, const bundle_gpu_use *gpus, uint8_t *idx,
                                      sched_amount *amount);

/* What this node's bundles (prepared or committed) hold of base resource id. */
sched_amount bundle_manager_reserved(const bundle_manager *bm, uint32_t id);
/* Bundles held (prepared or committed). */
size_t bundle_manager_count(const bundle_manager *bm);
/* The bundle resources of the local node, for reports: count, then the i-th name (valid
 * until the next Commit or Cancel), total and available. */
size_t bundle_manager_resource_count(const bundle_manager *bm);
void bundle_manager_resource_at(const bundle_manager *bm, size_t i, const char **name, double *total,
                                double *available);

#endif
