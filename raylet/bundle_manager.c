/*
 * Placement-group bundles on this node: see bundle_manager.h for the protocol and the
 * resource model.
 *
 * Invariants: every bundle in bm->bundles holds its reservation (b->reserved, taken from
 * the local node by Prepare) until Cancel gives it back; bm->reserved[] sums the
 * predefined resources of those reservations. A committed bundle's resources are in the
 * local node of the view (bm->exported is exactly the committed bundles' names with their
 * totals; the view's availability of each is its total minus what leases hold), and for
 * each resource R of a group, the availability of R_group_<pghex> is the sum of those of
 * its R_group_<i>_<pghex>: leases always take both (bundle_manager_allocate). A bundle
 * GPU instance's free amount (b->gpu_free) is its reserved amount minus what leases took.
 *
 * Loop thread only.
 */
#include "bundle_manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease_manager.h"
#include "node_manager.pb-c.h"
#include "raylet_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"

enum { BUNDLE__KEY_LEN = RC_PG_ID_SIZE + 4 };

/* One resource of a bundle. */
typedef struct bundle__res {
    char *base;          /* R */
    char *indexed_name;  /* R_group_<i>_<pghex> */
    char *wildcard_name; /* R_group_<pghex> */
    uint32_t indexed_id, wildcard_id;
    sched_amount amount;
    int is_gpu;
} bundle__res;

struct bundle {
    uint8_t key[BUNDLE__KEY_LEN]; /* pg id, then the index big-endian */
    uint8_t pg_id[RC_PG_ID_SIZE];
    int32_t index;
    char pg_hex[RC_ID_HEX_MAX];
    int committed;
    sched_alloc reserved; /* what Prepare took from the local node */
    uint32_t n_res;
    bundle__res res[SCHED_REQ_MAX_RESOURCES + 1]; /* + the label resource */
    /* The GPU instances of the reservation, and what leases left of each. */
    uint32_t n_gpus;
    uint8_t gpu_index[SCHED_MAX_GPUS];
    sched_amount gpu_total[SCHED_MAX_GPUS], gpu_free[SCHED_MAX_GPUS];
};

/* A bundle resource of the local node, as reported. */
typedef struct bundle__export {
    char *name;
    uint32_t id;
    sched_amount total;
} bundle__export;

struct bundle_manager {
    raylet *r;
    rc_map bundles; /* key -> bundle */
    sched_amount reserved[SCHED_N_PREDEFINED];
    bundle__export *exported;
    size_t n_exported;
    /* Commits and cancels come in bursts (a placement group per RPC): the node's bundle
     * resources are rebuilt once per loop iteration, and before anything reads them. */
    uv_timer_t publish_timer;
    int publish_pending;
};

/* ---- bundles ------------------------------------------------------------------------ */

static void bundle__key(const uint8_t pg_id[RC_PG_ID_SIZE], int32_t index, uint8_t key[BUNDLE__KEY_LEN])
{
    memcpy(key, pg_id, RC_PG_ID_SIZE);
    uint32_t u = (uint32_t)index;
    key[RC_PG_ID_SIZE] = (uint8_t)(u >> 24);
    key[RC_PG_ID_SIZE + 1] = (uint8_t)(u >> 16);
    key[RC_PG_ID_SIZE + 2] = (uint8_t)(u >> 8);
    key[RC_PG_ID_SIZE + 3] = (uint8_t)u;
}

static bundle *bundle__find(const bundle_manager *bm, const uint8_t pg_id[RC_PG_ID_SIZE], int64_t index)
{
    if (index < 0 || index > INT32_MAX)
        return NULL;
    uint8_t key[BUNDLE__KEY_LEN];
    bundle__key(pg_id, (int32_t)index, key);
    return rc_map_get(&bm->bundles, key, sizeof(key));
}

static void bundle__free(bundle *b)
{
    for (uint32_t i = 0; i < b->n_res; i++) {
        rc_free(b->res[i].base);
        rc_free(b->res[i].indexed_name);
        rc_free(b->res[i].wildcard_name);
    }
    rc_free(b);
}

/* Adds resource base (amount in fixed point) to b with its two bundle names. */
static void bundle__add_res(bundle_manager *bm, bundle *b, const char *base, sched_amount amount)
{
    char name[SCHED_BUNDLE_BASE_MAX + RC_ID_HEX_MAX + 32];
    bundle__res *res = &b->res[b->n_res++];
    res->base = rc_strdup(base);
    res->indexed_name = rc_strdup(sched_bundle_name_format(base, b->pg_id, b->index, name, sizeof(name)));
    res->wildcard_name = rc_strdup(sched_bundle_name_format(base, b->pg_id, -1, name, sizeof(name)));
    sched_view_resource_id(bm->r->view, res->indexed_name, &res->indexed_id);
    sched_view_resource_id(bm->r->view, res->wildcard_name, &res->wildcard_id);
    res->amount = amount;
    res->is_gpu = !strcmp(base, "GPU");
}

/* The index in b->res of base resource base, or -1. */
static int bundle__res_of(const bundle *b, const char *base)
{
    for (uint32_t i = 0; i < b->n_res; i++)
        if (!strcmp(b->res[i].base, base))
            return (int)i;
    return -1;
}

static int bundle__gpu_slot(const bundle *b, uint8_t instance)
{
    for (uint32_t k = 0; k < b->n_gpus; k++)
        if (b->gpu_index[k] == instance)
            return (int)k;
    return -1;
}

static const char *bundle__describe(const bundle *b, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "bundle %d of group %.8s {", (int)b->index, b->pg_hex);
    for (uint32_t i = 0; i < b->n_res && used < len; i++) {
        char amount[48];
        if (!strcmp(b->res[i].base, BUNDLE_LABEL_RESOURCE))
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s%s: %s", i ? ", " : "", b->res[i].base,
                                 sched_amount_format(b->res[i].amount, amount, sizeof(amount)));
    }
    if (used < len && b->reserved.n_gpus) {
        char gpus[128];
        used += (size_t)snprintf(buf + used, len - used, " GPU instances [%s]",
                                 sched_alloc_gpu_list(&b->reserved, gpus, sizeof(gpus)));
    }
    if (used < len)
        snprintf(buf + used, len - used, "}");
    return buf;
}

/* ---- the node's bundle resources ---------------------------------------------------- */

static int bundle__by_name(const void *a, const void *b)
{
    return strcmp(((const bundle__export *)a)->name, ((const bundle__export *)b)->name);
}

static void bundle__exports_clear(bundle_manager *bm)
{
    for (size_t i = 0; i < bm->n_exported; i++)
        rc_free(bm->exported[i].name);
    rc_free(bm->exported);
    bm->exported = NULL;
    bm->n_exported = 0;
}

/* Recomputes the committed bundles' resources and puts them on the local node of the
 * view (what leases hold stays held); the lease manager hears that feasibility may
 * differ. */
static void bundle__publish(bundle_manager *bm)
{
    raylet *r = bm->r;
    rc_map totals = RC_MAP_INIT;
    size_t n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&bm->bundles, &it, NULL, NULL, &v)) {
        bundle *b = v;
        if (!b->committed)
            continue;
        for (uint32_t i = 0; i < b->n_res; i++) {
            const bundle__res *res = &b->res[i];
            const char *names[2] = {res->indexed_name, res->wildcard_name};
            const uint32_t ids[2] = {res->indexed_id, res->wildcard_id};
            for (int k = 0; k < 2; k++) {
                bundle__export *e = rc_map_get_str(&totals, names[k]);
                if (!e) {
                    e = RC_NEW(bundle__export);
                    e->name = rc_strdup(names[k]);
                    e->id = ids[k];
                    rc_map_put_str(&totals, names[k], e);
                    n++;
                }
                e->total += res->amount;
            }
        }
    }
    bundle__exports_clear(bm);
    bm->exported = rc_calloc(n ? n : 1, sizeof(*bm->exported));
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (rc_map_next(&totals, &it, NULL, NULL, &v)) {
        bm->exported[bm->n_exported++] = *(bundle__export *)v;
        rc_free(v);
    }
    rc_map_destroy(&totals, NULL);
    qsort(bm->exported, bm->n_exported, sizeof(*bm->exported), bundle__by_name);

    sched_named_amount *extra = rc_calloc(n ? n : 1, sizeof(*extra));
    for (size_t i = 0; i < n; i++)
        extra[i] = (sched_named_amount){bm->exported[i].name, (double)bm->exported[i].total / (double)SCHED_UNIT};
    char err[SCHED_ERR_MAX + 64];
    if (raylet_view_set_local_extra(r, extra, n, err, sizeof(err)) < 0)
        RC_ERROR("bundle_manager: the local node's bundle resources could not be updated: %s", err);
    rc_free(extra);
    if (r->leases)
        lease_manager_view_changed(r->leases, 1);
}

static void bundle__publish_timer(uv_timer_t *t)
{
    bundle_manager_flush(t->data);
}

static void bundle__publish_soon(bundle_manager *bm)
{
    if (bm->publish_pending)
        return;
    bm->publish_pending = 1;
    uv_timer_start(&bm->publish_timer, bundle__publish_timer, 0, 0);
}

void bundle_manager_flush(bundle_manager *bm)
{
    if (!bm || !bm->publish_pending)
        return;
    bm->publish_pending = 0;
    uv_timer_stop(&bm->publish_timer);
    bundle__publish(bm);
}

/* ---- prepare, commit, cancel -------------------------------------------------------- */

/* Checks a Bundle message: its ID, its index and its resources (as a request in *req).
 * Returns 0, or RC_EINVAL with err. */
static int bundle__check(bundle_manager *bm, const Ray__Rpc__Bundle *spec, sched_request *req, char *err, size_t errlen)
{
    const Ray__Rpc__Bundle__BundleIdentifier *id = spec->bundle_id;
    if (!id || id->placement_group_id.len != RC_PG_ID_SIZE) {
        snprintf(err, errlen, "bundle_id.placement_group_id holds %zu bytes; a placement group ID has %d",
                 id ? id->placement_group_id.len : 0, RC_PG_ID_SIZE);
        return RC_EINVAL;
    }
    if (id->bundle_index < 0) {
        snprintf(err, errlen, "bundle_id.bundle_index %d is negative", (int)id->bundle_index);
        return RC_EINVAL;
    }
    sched_request_init(req);
    for (size_t i = 0; i < spec->n_unit_resources; i++) {
        sched_err e;
        if (sched_request_set(bm->r->view, req, spec->unit_resources[i]->key, spec->unit_resources[i]->value, &e) < 0) {
            snprintf(err, errlen, "unit_resources: %s", e.msg);
            return RC_EINVAL;
        }
    }
    return 0;
}

/* Reserves a new bundle for spec (checked into req). Returns 0 with it in the map, or
 * RC_EBUSY (nothing taken). */
static int bundle__prepare(bundle_manager *bm, const Ray__Rpc__Bundle *spec, const sched_request *req, bundle **out)
{
    raylet *r = bm->r;
    bundle *b = RC_NEW(bundle);
    memcpy(b->pg_id, spec->bundle_id->placement_group_id.data, RC_PG_ID_SIZE);
    b->index = spec->bundle_id->bundle_index;
    bundle__key(b->pg_id, b->index, b->key);
    rc_id_hex(b->pg_id, RC_PG_ID_SIZE, b->pg_hex);
    if (sched_node_allocate(r->view, r->local_node, req, &b->reserved) < 0) {
        rc_free(b);
        return RC_EBUSY;
    }
    for (uint32_t i = 0; i < req->n; i++) {
        bundle__add_res(bm, b, sched_view_resource_name(r->view, req->id[i]), req->amount[i]);
        if (req->id[i] < SCHED_N_PREDEFINED)
            bm->reserved[req->id[i]] += req->amount[i];
    }
    if (bundle__res_of(b, BUNDLE_LABEL_RESOURCE) < 0)
        bundle__add_res(bm, b, BUNDLE_LABEL_RESOURCE, (sched_amount)(BUNDLE_LABEL_AMOUNT * (double)SCHED_UNIT));
    b->n_gpus = b->reserved.n_gpus;
    for (uint32_t k = 0; k < b->n_gpus; k++) {
        b->gpu_index[k] = b->reserved.gpu_index[k];
        b->gpu_total[k] = b->gpu_free[k] = b->reserved.gpu_amount[k];
    }
    rc_map_put(&bm->bundles, b->key, sizeof(b->key), b);
    *out = b;
    return 0;
}

/* Ends b: its leases, its bundle resources (export: 1 to update the view now), its
 * reservation. */
static void bundle__cancel(bundle_manager *bm, bundle *b, int export, const char *why)
{
    raylet *r = bm->r;
    char text[600];
    RC_INFO("bundle_manager: cancelling %s: %s", bundle__describe(b, text, sizeof(text)), why);
    if (b->committed && r->leases) {
        uint32_t ids[SCHED_REQ_MAX_RESOURCES + 1];
        for (uint32_t i = 0; i < b->n_res; i++)
            ids[i] = b->res[i].indexed_id;
        char reason[200];
        snprintf(reason, sizeof(reason), "bundle %d of placement group %.8s was removed from this node", (int)b->index,
                 b->pg_hex);
        lease_manager_end_holding(r->leases, ids, b->n_res, reason);
    }
    rc_map_remove(&bm->bundles, b->key, sizeof(b->key));
    if (b->committed && export)
        bundle__publish_soon(bm);
    if (sched_node_free(r->view, r->local_node, &b->reserved) < 0)
        RC_ERROR("bundle_manager: the reservation of bundle %d of group %.8s could not be given back", (int)b->index,
                 b->pg_hex);
    for (uint32_t i = 0; i < b->reserved.n; i++)
        if (b->reserved.id[i] < SCHED_N_PREDEFINED)
            bm->reserved[b->reserved.id[i]] -= b->reserved.amount[i];
    for (uint32_t i = 0; i < b->n_res; i++) { /* the names bundle__add_res took */
        sched_view_resource_release(r->view, b->res[i].indexed_id);
        sched_view_resource_release(r->view, b->res[i].wildcard_id);
    }
    bundle__free(b);
    if (r->leases)
        lease_manager_view_changed(r->leases, 0); /* what it held is free again */
}

/* ---- handlers ----------------------------------------------------------------------- */

static void handle_prepare(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    bundle_manager *bm = arg;
    const Ray__Rpc__PrepareBundleResourcesRequest *req = (const void *)request;
    Ray__Rpc__PrepareBundleResourcesReply reply = RAY__RPC__PREPARE_BUNDLE_RESOURCES_REPLY__INIT;
    if (bm->r->state == RAYLET_STOPPING) {
        RC_INFO("bundle_manager: PrepareBundleResources refused: the raylet is shutting down");
        rpc_reply(call, &reply.base);
        return;
    }
    size_t n = req->n_bundle_specs;
    sched_request *reqs = rc_calloc(n ? n : 1, sizeof(*reqs));
    bundle **created = rc_calloc(n ? n : 1, sizeof(*created));
    size_t n_created = 0;
    char err[SCHED_ERR_MAX + 100];
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        if (bundle__check(bm, req->bundle_specs[i], &reqs[i], err, sizeof(err)) < 0) {
            RC_WARN("bundle_manager: PrepareBundleResources refused: bundle_specs[%zu]: %s", i, err);
            ok = 0;
        }
    }
    for (size_t i = 0; i < n && ok; i++) {
        const Ray__Rpc__Bundle *spec = req->bundle_specs[i];
        if (bundle__find(bm, spec->bundle_id->placement_group_id.data, spec->bundle_id->bundle_index))
            continue; /* held already: Prepare is idempotent */
        if (bundle__prepare(bm, spec, &reqs[i], &created[n_created]) < 0) {
            char hex[RC_ID_HEX_MAX];
            RC_INFO("bundle_manager: PrepareBundleResources: bundle %d of group %.8s does not fit now; nothing is "
                    "reserved",
                    (int)spec->bundle_id->bundle_index,
                    rc_id_hex(spec->bundle_id->placement_group_id.data, RC_PG_ID_SIZE, hex));
            ok = 0;
            break;
        }
        n_created++;
    }
    if (!ok) {
        while (n_created > 0)
            bundle__cancel(bm, created[--n_created], 0, "its PrepareBundleResources failed");
    } else {
        for (size_t i = 0; i < n_created; i++) {
            char text[600];
            RC_INFO("bundle_manager: prepared %s", bundle__describe(created[i], text, sizeof(text)));
        }
        if (n_created && bm->r->leases)
            lease_manager_view_changed(bm->r->leases, 0);
    }
    reply.success = ok;
    rpc_reply(call, &reply.base);
    for (size_t i = 0; i < n; i++)
        sched_request_release(bm->r->view, &reqs[i]);
    rc_free(reqs);
    rc_free(created);
}

static void handle_commit(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    bundle_manager *bm = arg;
    const Ray__Rpc__CommitBundleResourcesRequest *req = (const void *)request;
    Ray__Rpc__CommitBundleResourcesReply reply = RAY__RPC__COMMIT_BUNDLE_RESOURCES_REPLY__INIT;
    int changed = 0;
    for (size_t i = 0; i < req->n_bundle_specs; i++) {
        const Ray__Rpc__Bundle__BundleIdentifier *id = req->bundle_specs[i]->bundle_id;
        if (!id || id->placement_group_id.len != RC_PG_ID_SIZE) {
            RC_WARN("bundle_manager: CommitBundleResources: bundle_specs[%zu] has no valid bundle_id; skipped", i);
            continue;
        }
        bundle *b = bundle__find(bm, id->placement_group_id.data, id->bundle_index);
        char hex[RC_ID_HEX_MAX];
        if (!b) {
            RC_WARN("bundle_manager: CommitBundleResources: bundle %d of group %.8s is not prepared here; skipped",
                    (int)id->bundle_index, rc_id_hex(id->placement_group_id.data, RC_PG_ID_SIZE, hex));
            continue;
        }
        if (b->committed)
            continue; /* Commit is idempotent */
        b->committed = 1;
        changed = 1;
        char text[600];
        RC_INFO("bundle_manager: committed %s", bundle__describe(b, text, sizeof(text)));
    }
    if (changed)
        bundle__publish_soon(bm);
    rpc_reply(call, &reply.base);
}

static void handle_cancel(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    bundle_manager *bm = arg;
    const Ray__Rpc__CancelResourceReserveRequest *req = (const void *)request;
    Ray__Rpc__CancelResourceReserveReply reply = RAY__RPC__CANCEL_RESOURCE_RESERVE_REPLY__INIT;
    const Ray__Rpc__Bundle__BundleIdentifier *id = req->bundle_spec ? req->bundle_spec->bundle_id : NULL;
    bundle *b = id && id->placement_group_id.len == RC_PG_ID_SIZE
                    ? bundle__find(bm, id->placement_group_id.data, id->bundle_index)
                    : NULL;
    /* Reply first: ending leases answers other calls, and this one is settled either way. */
    rpc_reply(call, &reply.base);
    if (b)
        bundle__cancel(bm, b, 1, "CancelResourceReserve");
}

static void handle_release_unused(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    bundle_manager *bm = arg;
    const Ray__Rpc__ReleaseUnusedBundlesRequest *req = (const void *)request;
    Ray__Rpc__ReleaseUnusedBundlesReply reply = RAY__RPC__RELEASE_UNUSED_BUNDLES_REPLY__INIT;
    rc_map in_use = RC_MAP_INIT;
    for (size_t i = 0; i < req->n_bundles_in_use; i++) {
        const Ray__Rpc__Bundle__BundleIdentifier *id = req->bundles_in_use[i]->bundle_id;
        if (!id || id->placement_group_id.len != RC_PG_ID_SIZE || id->bundle_index < 0)
            continue;
        uint8_t key[BUNDLE__KEY_LEN];
        bundle__key(id->placement_group_id.data, id->bundle_index, key);
        rc_map_put(&in_use, key, sizeof(key), (void *)1);
    }
    size_t n = 0, cap = rc_map_size(&bm->bundles);
    bundle **unused = rc_calloc(cap ? cap : 1, sizeof(*unused));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&bm->bundles, &it, NULL, NULL, &v)) {
        bundle *b = v;
        if (!rc_map_get(&in_use, b->key, sizeof(b->key)))
            unused[n++] = b;
    }
    rc_map_destroy(&in_use, NULL);
    rpc_reply(call, &reply.base);
    int any_committed = 0;
    for (size_t i = 0; i < n; i++) {
        any_committed |= unused[i]->committed;
        bundle__cancel(bm, unused[i], 0, "ReleaseUnusedBundles: the GCS does not use it");
    }
    if (any_committed)
        bundle__publish(bm);
    if (n)
        RC_INFO("bundle_manager: ReleaseUnusedBundles released %zu bundles (%zu in use)", n, req->n_bundles_in_use);
    rc_free(unused);
}

const rpc_method_handler bundle_manager_handlers[] = {
    {"PrepareBundleResources", handle_prepare},
    {"CommitBundleResources", handle_commit},
    {"CancelResourceReserve", handle_cancel},
    {"ReleaseUnusedBundles", handle_release_unused},
    {NULL, NULL},
};

/* ---- leases on bundle resources ----------------------------------------------------- */

enum { BUNDLE__MAX_CHARGES = 2 * SCHED_REQ_MAX_RESOURCES };

/* What one allocation will take, built before anything in the view changes. */
typedef struct bundle__plan {
    bundle_manager *bm;
    sched_request f; /* the request given to the local node */
    bundle_gpu_use *gpus; /* instance picks, applied to the bundles as they are made */
    uint32_t n;
    bundle *b[BUNDLE__MAX_CHARGES];
    uint32_t res[BUNDLE__MAX_CHARGES];
    sched_amount amount[BUNDLE__MAX_CHARGES];
} bundle__plan;

static sched_amount bundle__charged(const bundle__plan *p, const bundle *b, uint32_t ri)
{
    sched_amount sum = 0;
    for (uint32_t i = 0; i < p->n; i++)
        if (p->b[i] == b && p->res[i] == ri)
            sum += p->amount[i];
    return sum;
}

static int bundle__plan_uses(const bundle__plan *p, const bundle *b)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->b[i] == b)
            return 1;
    return 0;
}

static int bundle__plan_add(bundle__plan *p, uint32_t id, sched_amount amount)
{
    return sched_request_set_id(&p->f, id, sched_request_get(&p->f, id) + amount);
}

/* Takes amount GPU from b's instances: a fractional amount from the fullest instance
 * that still fits, whole GPUs from whole free instances. Returns 0 or RC_EBUSY (nothing
 * taken). */
static int bundle__take_gpus(bundle__plan *p, bundle *b, sched_amount amount)
{
    bundle_gpu_use *u = p->gpus;
    if (amount < SCHED_UNIT) {
        int best = -1;
        for (uint32_t k = 0; k < b->n_gpus; k++)
            if (b->gpu_free[k] >= amount && (best < 0 || b->gpu_free[k] < b->gpu_free[best]))
                best = (int)k;
        if (best < 0 || u->n >= SCHED_MAX_GPUS)
            return RC_EBUSY;
        b->gpu_free[best] -= amount;
        u->from[u->n] = b;
        u->index[u->n] = b->gpu_index[best];
        u->amount[u->n++] = amount;
        return 0;
    }
    uint32_t need = (uint32_t)(amount / SCHED_UNIT), got = 0;
    uint32_t slots[SCHED_MAX_GPUS];
    for (uint32_t k = 0; k < b->n_gpus && got < need; k++)
        if (b->gpu_free[k] == SCHED_UNIT)
            slots[got++] = k;
    if (got < need || u->n + need > SCHED_MAX_GPUS)
        return RC_EBUSY;
    for (uint32_t j = 0; j < need; j++) {
        b->gpu_free[slots[j]] = 0;
        u->from[u->n] = b;
        u->index[u->n] = b->gpu_index[slots[j]];
        u->amount[u->n++] = SCHED_UNIT;
    }
    return 0;
}

/* Charges amount of b's resource ri to the plan: both its names, and GPU instances. */
static int bundle__charge(bundle__plan *p, bundle *b, uint32_t ri, sched_amount amount)
{
    const bundle__res *res = &b->res[ri];
    if (p->n >= BUNDLE__MAX_CHARGES)
        return RC_EBUSY;
    if (res->is_gpu && bundle__take_gpus(p, b, amount) < 0)
        return RC_EBUSY;
    if (bundle__plan_add(p, res->indexed_id, amount) < 0 || bundle__plan_add(p, res->wildcard_id, amount) < 0)
        return RC_EBUSY;
    p->b[p->n] = b;
    p->res[p->n] = ri;
    p->amount[p->n++] = amount;
    return 0;
}

static void bundle__gpus_return(const bundle_gpu_use *u)
{
    for (uint32_t j = 0; j < u->n; j++) {
        bundle *b = u->from[j];
        int k = bundle__gpu_slot(b, u->index[j]);
        if (k < 0)
            continue;
        sched_amount x = b->gpu_free[k] + u->amount[j];
        b->gpu_free[k] = x > b->gpu_total[k] ? b->gpu_total[k] : x;
    }
}

static int bundle__by_index(const void *a, const void *b)
{
    const bundle *x = *(bundle *const *)a, *y = *(bundle *const *)b;
    return (x->index > y->index) - (x->index < y->index);
}

/* The committed bundles of group pg_id that have resource base, by index, into out
 * (capacity cap). Returns their count. */
static size_t bundle__group(const bundle_manager *bm, const uint8_t pg_id[RC_PG_ID_SIZE], const char *base,
                            bundle **out, size_t cap)
{
    size_t n = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&bm->bundles, &it, NULL, NULL, &v) && n < cap) {
        bundle *b = v;
        if (b->committed && !memcmp(b->pg_id, pg_id, RC_PG_ID_SIZE) && bundle__res_of(b, base) >= 0)
            out[n++] = b;
    }
    qsort(out, n, sizeof(*out), bundle__by_index);
    return n;
}

/* Takes rem of base from the group's bundles (see the header). Returns 0 or RC_EBUSY. */
static int bundle__spread(bundle__plan *p, const uint8_t pg_id[RC_PG_ID_SIZE], const char *base, sched_amount rem)
{
    bundle_manager *bm = p->bm;
    size_t cap = rc_map_size(&bm->bundles);
    bundle **cands = rc_calloc(cap ? cap : 1, sizeof(*cands));
    size_t n = bundle__group(bm, pg_id, base, cands, cap);
    int gpu = !strcmp(base, "GPU");
    if (gpu && rem < SCHED_UNIT) {
        /* One instance, the fullest that fits, in any of the group's bundles. */
        bundle *best = NULL;
        sched_amount best_free = 0;
        for (size_t i = 0; i < n; i++)
            for (uint32_t k = 0; k < cands[i]->n_gpus; k++)
                if (cands[i]->gpu_free[k] >= rem && (!best || cands[i]->gpu_free[k] < best_free)) {
                    best = cands[i];
                    best_free = cands[i]->gpu_free[k];
                }
        int rc = best ? bundle__charge(p, best, (uint32_t)bundle__res_of(best, base), rem) : RC_EBUSY;
        rc_free(cands);
        return rc;
    }
    /* Bundles this request already uses first, then the others by index. */
    for (int pass = 0; pass < 2 && rem > 0; pass++) {
        for (size_t i = 0; i < n && rem > 0; i++) {
            bundle *b = cands[i];
            if (bundle__plan_uses(p, b) != (pass == 0))
                continue;
            uint32_t ri = (uint32_t)bundle__res_of(b, base);
            sched_amount take;
            if (gpu) {
                sched_amount whole = 0;
                for (uint32_t k = 0; k < b->n_gpus; k++)
                    whole += b->gpu_free[k] == SCHED_UNIT ? SCHED_UNIT : 0;
                take = whole < rem ? whole : rem;
            } else {
                sched_amount free_now =
                    sched_node_available(bm->r->local_node, b->res[ri].indexed_id) - bundle__charged(p, b, ri);
                take = free_now < rem ? free_now : rem;
            }
            if (take <= 0)
                continue;
            if (bundle__charge(p, b, ri, take) < 0) {
                rc_free(cands);
                return RC_EBUSY;
            }
            rem -= take;
        }
    }
    rc_free(cands);
    return rem > 0 ? RC_EBUSY : 0;
}

/* A bundle resource entry of a request. */
typedef struct bundle__want {
    sched_bundle_name name;
    sched_amount amount;
} bundle__want;

/* Adds the wants of req to the plan: plain resources as they are, indexed ones charged to
 * their bundle, then the group amounts not covered yet spread over the group. */
static int bundle__plan_build(bundle__plan *p, const sched_request *req)
{
    raylet *r = p->bm->r;
    bundle__want *wants = rc_calloc(req->n ? req->n : 1, sizeof(*wants));
    uint32_t n_wants = 0;
    int rc = 0;
    for (uint32_t i = 0; i < req->n && !rc; i++) {
        const char *name = sched_view_resource_name(r->view, req->id[i]);
        if (!name || sched_bundle_name_parse(name, &wants[n_wants].name) < 0) {
            rc = bundle__plan_add(p, req->id[i], req->amount[i]);
            continue;
        }
        wants[n_wants++].amount = req->amount[i];
    }
    for (uint32_t i = 0; i < n_wants && !rc; i++) {
        const sched_bundle_name *w = &wants[i].name;
        if (w->index < 0)
            continue;
        bundle *b = bundle__find(p->bm, w->pg_id, w->index);
        int ri = b && b->committed ? bundle__res_of(b, w->base) : -1;
        rc = ri < 0 ? RC_EBUSY : bundle__charge(p, b, (uint32_t)ri, wants[i].amount);
    }
    for (uint32_t i = 0; i < n_wants && !rc; i++) {
        const sched_bundle_name *w = &wants[i].name;
        if (w->index >= 0)
            continue;
        sched_amount covered = 0;
        for (uint32_t j = 0; j < p->n; j++)
            if (!memcmp(p->b[j]->pg_id, w->pg_id, RC_PG_ID_SIZE) && !strcmp(p->b[j]->res[p->res[j]].base, w->base))
                covered += p->amount[j];
        if (wants[i].amount > covered)
            rc = bundle__spread(p, w->pg_id, w->base, wants[i].amount - covered);
    }
    rc_free(wants);
    return rc;
}

int bundle_manager_allocate(bundle_manager *bm, const sched_request *req, sched_alloc *out, bundle_gpu_use *gpus)
{
    bundle_manager_flush(bm);
    bundle__plan *p = RC_NEW(bundle__plan);
    p->bm = bm;
    sched_request_init(&p->f);
    p->f.gpu_memory = req->gpu_memory;
    p->f.accelerator_id = req->accelerator_id;
    p->f.selector = req->selector;
    gpus->n = 0;
    p->gpus = gpus;
    int rc = bundle__plan_build(p, req);
    if (!rc && sched_node_allocate(bm->r->view, bm->r->local_node, &p->f, out) < 0)
        rc = RC_EBUSY;
    if (rc) {
        bundle__gpus_return(gpus);
        gpus->n = 0;
    }
    rc_free(p);
    return rc ? RC_EBUSY : 0;
}

void bundle_manager_free(bundle_manager *bm, const sched_alloc *a, const bundle_gpu_use *gpus)
{
    if (sched_node_free(bm->r->view, bm->r->local_node, a) < 0)
        RC_ERROR("bundle_manager: a lease's resources could not be given back (a bundle it held is gone)");
    if (gpus)
        bundle__gpus_return(gpus);
}

uint32_t bundle_manager_gpu_instances(bundle_manager *bm, uint32_t res_id, const bundle_gpu_use *gpus, uint8_t *idx,
                                      sched_amount *amount)
{
    const char *name = sched_view_resource_name(bm->r->view, res_id);
    sched_bundle_name bn;
    if (!gpus || !name || sched_bundle_name_parse(name, &bn) < 0 || strcmp(bn.base, "GPU"))
        return 0;
    uint32_t n = 0;
    for (uint32_t j = 0; j < gpus->n; j++) {
        const bundle *b = gpus->from[j];
        if (memcmp(b->pg_id, bn.pg_id, RC_PG_ID_SIZE) || (bn.index >= 0 && b->index != bn.index))
            continue;
        uint32_t k = 0;
        while (k < n && idx[k] != gpus->index[j])
            k++;
        if (k == n) {
            idx[n] = gpus->index[j];
            amount[n++] = 0;
        }
        amount[k] += gpus->amount[j];
    }
    return n;
}

/* ---- queries and lifetime ----------------------------------------------------------- */

sched_amount bundle_manager_reserved(const bundle_manager *bm, uint32_t id)
{
    if (!bm)
        return 0;
    if (id < SCHED_N_PREDEFINED)
        return bm->reserved[id];
    sched_amount sum = 0;
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (rc_map_next(&bm->bundles, &it, NULL, NULL, &v)) {
        const bundle *b = v;
        for (uint32_t i = 0; i < b->reserved.n; i++)
            if (b->reserved.id[i] == id)
                sum += b->reserved.amount[i];
    }
    return sum;
}

size_t bundle_manager_count(const bundle_manager *bm)
{
    return bm ? rc_map_size(&bm->bundles) : 0;
}

size_t bundle_manager_resource_count(const bundle_manager *bm)
{
    return bm ? bm->n_exported : 0;
}

void bundle_manager_resource_at(const bundle_manager *bm, size_t i, const char **name, double *total,
                                double *available)
{
    const bundle__export *e = &bm->exported[i];
    *name = e->name;
    *total = (double)e->total / (double)SCHED_UNIT;
    *available = (double)sched_node_available(bm->r->local_node, e->id) / (double)SCHED_UNIT;
}

int bundle_manager_create(raylet *r, bundle_manager **out)
{
    bundle_manager *bm = RC_NEW(bundle_manager);
    bm->r = r;
    rc_map_init(&bm->bundles);
    uv_timer_init(r->loop, &bm->publish_timer);
    bm->publish_timer.data = bm;
    *out = bm;
    return 0;
}

static void bundle__free_value(void *v)
{
    bundle__free(v);
}

static void bundle__closed(uv_handle_t *h)
{
    rc_free(h->data);
}

void bundle_manager_destroy(bundle_manager *bm)
{
    if (!bm)
        return;
    rc_map_destroy(&bm->bundles, bundle__free_value);
    bundle__exports_clear(bm);
    uv_close((uv_handle_t *)&bm->publish_timer, bundle__closed); /* frees bm */
}
