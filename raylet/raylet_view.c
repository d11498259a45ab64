/*
 * The raylet's cluster view for the scheduler library.
 *
 * The local node is exact: it enters the view with everything available, and from then on
 * only the lease manager's allocations change it (a poll never overwrites it). Other nodes
 * come from the GCS node channel (totals, labels, GPU memory from label rayc.io/gpu-memory,
 * price from rayc.io/price-per-hour) and leave when it says they died; their availability
 * comes from GetAllAvailableResources every raylet_cluster_view_poll_ms, polled only while
 * there are other nodes. A change of the node set tells the lease manager that feasibility
 * may differ; a poll tells it that availability may.
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

int raylet_view_init(raylet *r, char *err, size_t errlen)
{
    r->view = sched_view_new(NULL);
    size_t n = r->spec.n_resources, nl = r->spec.n_labels;
    sched_named_amount *res = rc_calloc(n + 1, sizeof(*res));
    sched_label *labels = rc_calloc(nl + 1, sizeof(*labels));
    for (size_t i = 0; i < n; i++)
        res[i] = (sched_named_amount){r->spec.resources[i].name, r->spec.resources[i].total};
    for (size_t i = 0; i < nl; i++)
        labels[i] = (sched_label){r->spec.labels[i].key, r->spec.labels[i].value};
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = res;
    spec.n_resources = n;
    spec.labels = labels;
    spec.n_labels = nl;
    uint64_t gpu_memory = (uint64_t)r->spec.gpu_memory;
    if (gpu_memory && r->spec.num_gpus > 0) {
        spec.gpu_memory = &gpu_memory;
        spec.n_gpu_memory = 1;
    }
    sched_err e;
    int rc = sched_view_add_node(r->view, r->node_id, &spec, &r->local_node, &e);
    rc_free(res);
    rc_free(labels);
    if (rc < 0)
        snprintf(err, errlen, "this node's resources are not valid for the scheduler: %s", e.msg);
    return rc;
}

void raylet_view_free(raylet *r)
{
    if (r->view)
        sched_view_free(r->view);
    r->view = NULL;
    r->local_node = NULL;
}

void raylet_view_sync_spec(raylet *r)
{
    for (size_t i = 0; i < r->spec.n_resources; i++) {
        uint32_t id;
        if (sched_view_resource_id(r->view, r->spec.resources[i].name, &id) < 0)
            continue;
        r->spec.resources[i].available = (double)sched_node_available(r->local_node, id) / (double)SCHED_UNIT;
    }
}

/* A remote node's spec from its GcsNodeInfo; the arrays are freed by the caller. */
static void raylet__remote_spec(const Ray__Rpc__GcsNodeInfo *info, sched_node_spec *spec, sched_named_amount **res,
                                sched_label **labels, uint64_t *gpu_memory)
{
    sched_node_spec_init(spec);
    *res = rc_calloc(info->n_resources_total + 1, sizeof(**res));
    *labels = rc_calloc(info->n_labels + 1, sizeof(**labels));
    for (size_t i = 0; i < info->n_resources_total; i++)
        (*res)[i] = (sched_named_amount){info->resources_total[i]->key, info->resources_total[i]->value};
    for (size_t i = 0; i < info->n_labels; i++) {
        (*labels)[i] = (sched_label){info->labels[i]->key, info->labels[i]->value};
        if (!strcmp(info->labels[i]->key, RAYLET__GPU_MEMORY_LABEL))
            *gpu_memory = strtoull(info->labels[i]->value, NULL, 10);
    }
    spec->resources = *res;
    spec->n_resources = info->n_resources_total;
    spec->labels = *labels;
    spec->n_labels = info->n_labels;
    if (*gpu_memory) {
        spec->gpu_memory = gpu_memory;
        spec->n_gpu_memory = 1;
    }
}

void raylet_view_track(raylet *r, const Ray__Rpc__GcsNodeInfo *info)
{
    if (!r->view || info->node_id.len != RC_NODE_ID_SIZE || !memcmp(info->node_id.data, r->node_id, RC_NODE_ID_SIZE))
        return;
    sched_node *node = sched_view_find(r->view, info->node_id.data);
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(info->node_id.data, RC_NODE_ID_SIZE, hex);
    if (info->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD) {
        if (node) {
            sched_view_remove_node(r->view, node);
            if (r->leases)
            lease_manager_view_changed(r->leases, 1);
        }
        return;
    }
    sched_node_spec spec;
    sched_named_amount *res;
    sched_label *labels;
    uint64_t gpu_memory = 0;
    raylet__remote_spec(info, &spec, &res, &labels, &gpu_memory);
    sched_err e;
    int rc = node ? sched_view_update_node(r->view, node, &spec, &e) : sched_view_add_node(r->view, info->node_id.data, &spec, NULL, &e);
    rc_free(res);
    rc_free(labels);
    if (rc < 0) {
        RC_WARN("raylet: node %.8s cannot enter the scheduler's view: %s", hex, e.msg);
        return;
    }
    if (r->leases)
        lease_manager_view_changed(r->leases, 1);
}

static void raylet__polled(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    r->view_poll_in_flight = 0;
    if (r->state != RAYLET_RUNNING || st->code != GRPC_STATUS_OK || !r->view) {
        rpc_msg_free(reply);
        return;
    }
    const Ray__Rpc__GetAllAvailableResourcesReply *ar = (const void *)reply;
    int changed = 0;
    for (size_t i = 0; i < ar->n_resources_list; i++) {
        const Ray__Rpc__AvailableResources *a = ar->resources_list[i];
        if (a->node_id.len != RC_NODE_ID_SIZE || !memcmp(a->node_id.data, r->node_id, RC_NODE_ID_SIZE))
            continue;
        sched_node *node = sched_view_find(r->view, a->node_id.data);
        if (!node)
            continue;
        sched_named_amount avail[SCHED_REQ_MAX_RESOURCES * 8];
        size_t n = 0;
        for (size_t k = 0; k < a->n_resources_available && n < RC_ARRAY_LEN(avail); k++)
            avail[n++] = (sched_named_amount){a->resources_available[k]->key, a->resources_available[k]->value};
        sched_err e;
        if (sched_node_report_available(r->view, node, avail, n, &e) == 0)
            changed = 1;
    }
    rpc_msg_free(reply);
    if (changed && r->leases)
        lease_manager_view_changed(r->leases, 0);
}

static void raylet__poll_tick(uv_timer_t *t)
{
    raylet *r = t->data;
    if (r->state != RAYLET_RUNNING || r->view_poll_in_flight || sched_view_node_count(r->view) < 2)
        return;
    Ray__Rpc__GetAllAvailableResourcesRequest req = RAY__RPC__GET_ALL_AVAILABLE_RESOURCES_REQUEST__INIT;
    if (rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__node_resource_info_gcs_service__descriptor,
                        "GetAllAvailableResources", &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__polled, r) == 0)
        r->view_poll_in_flight = 1;
}

void raylet_view_start_polling(raylet *r)
{
    uint64_t period = (uint64_t)(rc_cfg.raylet_cluster_view_poll_ms > 0 ? rc_cfg.raylet_cluster_view_poll_ms : 500);
    uv_timer_start(&r->view_poll_timer, raylet__poll_tick, period, period);
}
