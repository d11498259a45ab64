/*
 * The raylet's cluster view for the scheduler library.
 *
 * The local node is exact: it enters the view with everything available, and from then on
 * only the lease and bundle managers' allocations change it (a poll never overwrites it). Other nodes
 * come from the GCS node channel (totals, labels, GPU memory from label rayc.io/gpu-memory,
 * price from rayc.io/price-per-hour) and leave when it says they died; their reports come
 * from GetAllResourceUsage every raylet_cluster_view_poll_ms, polled only while there are
 * other nodes: availability, and totals when they differ from the last ones applied (a
 * node's placement-group bundle resources, which registration does not know). A change of
 * the node set or of a node's totals tells the lease manager that feasibility may differ;
 * a poll tells it that availability may.
 *
 * The local node's resources change only with its committed bundles
 * (raylet_view_set_local_extra, from the bundle manager).
 *
 * Draining: a node the GCS shows draining in its report (is_draining: drained by the
 * autoscaler service, or held out until it passes verification), or whose record carries
 * rayc.io/verification other than "passed", is draining in this view: no work is placed or
 * spilled there. That holds for this raylet's own node too, so a drained or unverified node
 * places nothing on itself.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raylet_int.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_log.h"

#define RAYLET__GPU_MEMORY_LABEL "rayc.io/gpu-memory"
#define RAYLET__VERIFICATION_LABEL "rayc.io/verification"

/* 1 if the node's record says it awaits or failed verification (the GCS sets the label). */
static int raylet__unverified(const Ray__Rpc__GcsNodeInfo *info)
{
    for (size_t i = 0; info && i < info->n_labels; i++)
        if (!strcmp(info->labels[i]->key, RAYLET__VERIFICATION_LABEL))
            return strcmp(info->labels[i]->value, "passed") != 0;
    return 0;
}

/* Sets node's draining flag; 1 if it changed. */
static int raylet__set_draining(raylet *r, sched_node *node, int draining)
{
    if (!node || !sched_node_is_draining(node) == !draining)
        return 0;
    sched_node_set_draining(r->view, node, draining);
    return 1;
}

/* The local node's spec: the detected resources plus extra (bundle resources); the
 * arrays in *res and *labels are freed by the caller. */
static void raylet__local_spec(raylet *r, const sched_named_amount *extra, size_t n_extra, sched_node_spec *spec,
                               sched_named_amount **res, sched_label **labels, uint64_t *gpu_memory)
{
    size_t n = r->spec.n_resources, nl = r->spec.n_labels;
    *res = rc_calloc(n + n_extra + 1, sizeof(**res));
    *labels = rc_calloc(nl + 1, sizeof(**labels));
    for (size_t i = 0; i < n; i++)
        (*res)[i] = (sched_named_amount){r->spec.resources[i].name, r->spec.resources[i].total};
    for (size_t i = 0; i < n_extra; i++)
        (*res)[n + i] = extra[i];
    for (size_t i = 0; i < nl; i++)
        (*labels)[i] = (sched_label){r->spec.labels[i].key, r->spec.labels[i].value};
    sched_node_spec_init(spec);
    spec->resources = *res;
    spec->n_resources = n + n_extra;
    spec->labels = *labels;
    spec->n_labels = nl;
    *gpu_memory = (uint64_t)r->spec.gpu_memory;
    if (*gpu_memory && r->spec.num_gpus > 0) {
        spec->gpu_memory = gpu_memory;
        spec->n_gpu_memory = 1;
    }
}

int raylet_view_init(raylet *r, char *err, size_t errlen)
{
    r->view = sched_view_new(NULL);
    rc_map_init(&r->remote_totals);
    sched_node_spec spec;
    sched_named_amount *res;
    sched_label *labels;
    uint64_t gpu_memory;
    raylet__local_spec(r, NULL, 0, &spec, &res, &labels, &gpu_memory);
    sched_err e;
    int rc = sched_view_add_node(r->view, r->node_id, &spec, &r->local_node, &e);
    rc_free(res);
    rc_free(labels);
    if (rc < 0)
        snprintf(err, errlen, "this node's resources are not valid for the scheduler: %s", e.msg);
    return rc;
}

int raylet_view_set_local_extra(raylet *r, const sched_named_amount *extra, size_t n_extra, char *err, size_t errlen)
{
    sched_node_spec spec;
    sched_named_amount *res;
    sched_label *labels;
    uint64_t gpu_memory;
    raylet__local_spec(r, extra, n_extra, &spec, &res, &labels, &gpu_memory);
    sched_err e;
    int rc = sched_view_update_node(r->view, r->local_node, &spec, &e);
    rc_free(res);
    rc_free(labels);
    if (rc < 0)
        snprintf(err, errlen, "%s", e.msg);
    return rc;
}

static void raylet__free_totals(void *v)
{
    rc_free(v);
}

void raylet_view_free(raylet *r)
{
    rc_map_destroy(&r->remote_totals, raylet__free_totals);
    if (r->view)
        sched_view_free(r->view);
    r->view = NULL;
    r->local_node = NULL;
}

void raylet_view_sync_spec(raylet *r)
{
    for (size_t i = 0; i < r->spec.n_resources; i++) {
        uint32_t id;
        if (sched_view_resource_find(r->view, r->spec.resources[i].name, &id) < 0)
            continue;
        r->spec.resources[i].available = (double)sched_node_available(r->local_node, id) / (double)SCHED_UNIT;
    }
}

/* A remote node's spec: labels from its GcsNodeInfo, totals from totals (its
 * registration's or its last report's: both map entries are {key; value}); the arrays are
 * freed by the caller. */
static void raylet__remote_spec(const Ray__Rpc__GcsNodeInfo *info, Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *const *totals,
                                size_t n_totals, sched_node_spec *spec, sched_named_amount **res, sched_label **labels,
                                uint64_t *gpu_memory)
{
    sched_node_spec_init(spec);
    *res = rc_calloc(n_totals + 1, sizeof(**res));
    *labels = rc_calloc(info->n_labels + 1, sizeof(**labels));
    for (size_t i = 0; i < n_totals; i++)
        (*res)[i] = (sched_named_amount){totals[i]->key, totals[i]->value};
    for (size_t i = 0; i < info->n_labels; i++) {
        (*labels)[i] = (sched_label){info->labels[i]->key, info->labels[i]->value};
        if (!strcmp(info->labels[i]->key, RAYLET__GPU_MEMORY_LABEL))
            *gpu_memory = strtoull(info->labels[i]->value, NULL, 10);
    }
    spec->resources = *res;
    spec->n_resources = n_totals;
    spec->labels = *labels;
    spec->n_labels = info->n_labels;
    if (*gpu_memory) {
        spec->gpu_memory = gpu_memory;
        spec->n_gpu_memory = 1;
    }
}

/* Adds or updates node (NULL: add) from info with the given totals. Returns 0 or RC_EINVAL
 * (logged). */
static int raylet__put_remote(raylet *r, sched_node *node, const Ray__Rpc__GcsNodeInfo *info,
                              Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *const *totals, size_t n_totals)
{
    sched_node_spec spec;
    sched_named_amount *res;
    sched_label *labels;
    uint64_t gpu_memory = 0;
    raylet__remote_spec(info, totals, n_totals, &spec, &res, &labels, &gpu_memory);
    sched_err e;
    int rc = node ? sched_view_update_node(r->view, node, &spec, &e)
                  : sched_view_add_node(r->view, info->node_id.data, &spec, NULL, &e);
    rc_free(res);
    rc_free(labels);
    if (rc < 0) {
        char hex[RC_ID_HEX_MAX];
        RC_WARN("raylet: node %.8s cannot enter the scheduler's view: %s", rc_id_hex(info->node_id.data, RC_NODE_ID_SIZE, hex),
                e.msg);
    }
    return rc;
}

void raylet_view_track(raylet *r, const Ray__Rpc__GcsNodeInfo *info)
{
    if (!r->view || info->node_id.len != RC_NODE_ID_SIZE)
        return;
    if (!memcmp(info->node_id.data, r->node_id, RC_NODE_ID_SIZE)) {
        /* This node's own record: only its verification state matters here. */
        if (info->state != RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD &&
            raylet__set_draining(r, r->local_node, raylet__unverified(info)) && r->leases)
            lease_manager_view_changed(r->leases, 1);
        return;
    }
    sched_node *node = sched_view_find(r->view, info->node_id.data);
    /* Totals from registration from now on: the next report's totals apply again. */
    rc_free(rc_map_remove(&r->remote_totals, info->node_id.data, RC_NODE_ID_SIZE));
    if (info->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD) {
        if (node) {
            sched_view_remove_node(r->view, node);
            if (r->leases)
                lease_manager_view_changed(r->leases, 1);
        }
        return;
    }
    if (raylet__put_remote(r, node, info, info->resources_total, info->n_resources_total) < 0)
        return;
    if (!node)
        node = sched_view_find(r->view, info->node_id.data);
    raylet__set_draining(r, node, raylet__unverified(info));
    if (r->leases)
        lease_manager_view_changed(r->leases, 1);
}

/* A text that changes when a report's totals do. The caller frees it with rc_free. */
static char *raylet__totals_key(const Ray__Rpc__ResourcesData *d)
{
    rc_buf b = RC_BUF_INIT;
    for (size_t i = 0; i < d->n_resources_total; i++)
        rc_buf_printf(&b, "%s=%.17g;", d->resources_total[i]->key, d->resources_total[i]->value);
    return rc_buf_detach(&b);
}

/* Applies one node's report: its totals when they changed (a node's placement-group
 * bundle resources come and go; registration does not know them), then its
 * availability. Returns 1 if the node's totals changed, 0 otherwise. */
static int raylet__apply_report(raylet *r, const Ray__Rpc__ResourcesData *d, int *avail_changed)
{
    sched_node *node = sched_view_find(r->view, d->node_id.data);
    const Ray__Rpc__GcsNodeInfo *info = rc_map_get(&r->live_nodes, d->node_id.data, RC_NODE_ID_SIZE);
    if (!node)
        return 0;
    int totals_changed = 0;
    if (d->n_resources_total && info) {
        char *key = raylet__totals_key(d);
        const char *old = rc_map_get(&r->remote_totals, d->node_id.data, RC_NODE_ID_SIZE);
        if (!old || strcmp(old, key)) {
            if (raylet__put_remote(r, node, info, (Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *const *)d->resources_total,
                                   d->n_resources_total) == 0) {
                rc_free(rc_map_put(&r->remote_totals, d->node_id.data, RC_NODE_ID_SIZE, key));
                key = NULL;
                totals_changed = 1;
            }
        }
        rc_free(key);
    }
    size_t n = d->n_resources_available;
    sched_named_amount *avail = rc_calloc(n + 1, sizeof(*avail));
    for (size_t k = 0; k < n; k++)
        avail[k] = (sched_named_amount){d->resources_available[k]->key, d->resources_available[k]->value};
    sched_err e;
    if (sched_node_report_available(r->view, node, avail, n, &e) == 0)
        *avail_changed = 1;
    rc_free(avail);
    if (raylet__set_draining(r, node, d->is_draining || raylet__unverified(info)))
        totals_changed = 1; /* what is feasible changed */
    return totals_changed;
}

static void raylet__polled(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    r->view_poll_in_flight = 0;
    if (r->state != RAYLET_RUNNING || st->code != GRPC_STATUS_OK || !r->view) {
        rpc_msg_free(reply);
        return;
    }
    const Ray__Rpc__GetAllResourceUsageReply *ur = (const void *)reply;
    const Ray__Rpc__ResourceUsageBatchData *batch = ur->resource_usage_data;
    int nodes_changed = 0, changed = 0;
    for (size_t i = 0; batch && i < batch->n_batch; i++) {
        const Ray__Rpc__ResourcesData *d = batch->batch[i];
        if (d->node_id.len != RC_NODE_ID_SIZE)
            continue;
        if (!memcmp(d->node_id.data, r->node_id, RC_NODE_ID_SIZE)) {
            /* This node's resources are exact here; only the GCS knows it is drained. */
            const Ray__Rpc__GcsNodeInfo *self = rc_map_get(&r->live_nodes, r->node_id, RC_NODE_ID_SIZE);
            nodes_changed |= raylet__set_draining(r, r->local_node, d->is_draining || raylet__unverified(self));
            continue;
        }
        nodes_changed |= raylet__apply_report(r, d, &changed);
    }
    rpc_msg_free(reply);
    if ((changed || nodes_changed) && r->leases)
        lease_manager_view_changed(r->leases, nodes_changed);
}

static void raylet__poll_tick(uv_timer_t *t)
{
    raylet *r = t->data;
    if (r->state != RAYLET_RUNNING || r->view_poll_in_flight || sched_view_node_count(r->view) < 2)
        return;
    /* GetAllResourceUsage rather than GetAllAvailableResources: it carries the reported
     * totals too, which is how other nodes' bundle resources become known. */
    Ray__Rpc__GetAllResourceUsageRequest req = RAY__RPC__GET_ALL_RESOURCE_USAGE_REQUEST__INIT;
    if (rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__node_resource_info_gcs_service__descriptor,
                        "GetAllResourceUsage", &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__polled, r) == 0)
        r->view_poll_in_flight = 1;
}

void raylet_view_start_polling(raylet *r)
{
    uint64_t period = (uint64_t)(rc_cfg.raylet_cluster_view_poll_ms > 0 ? rc_cfg.raylet_cluster_view_poll_ms : 500);
    uv_timer_start(&r->view_poll_timer, raylet__poll_tick, period, period);
}
