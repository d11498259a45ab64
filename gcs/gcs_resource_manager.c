/*
 * GCS resource manager: the cluster resource view (NodeResourceInfoGcsService) fed by the
 * raylets' reports (rayc's ReportResourceUsage, the unary stand-in for Ray's syncer stream).
 *
 * For each alive node it keeps the last ResourcesData the raylet sent: totals, what is
 * available now, labels, and pending demand by shape. Before a node's first report its
 * totals from registration stand in for both. GetAllResourceUsage also sums the demand of
 * all nodes by shape (identical shape and label selectors), which is what `rayc status`
 * shows under Demands and what the market adapter will read. To that it adds the actors
 * the GCS holds back (no raylet has their request queued: infeasible or waiting for room)
 * and, in placement_group_load, the placement groups waiting to be placed. Only live
 * demand counts: a dead node's report goes with the node, and a report older than
 * GCS__STALE_REPORTS keepalive periods (a raylet that stopped reporting) adds no demand.
 *
 * Registrations, deaths and reports also feed the GCS's scheduler view (gcs_view.c).
 *
 * Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "gcs_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_time.h"
#include "sched_proto.h"

/* A raylet reports at least every raylet_report_keepalive_ms; after this many periods
 * without a report, what it last said waits is no longer believed. */
enum { GCS__STALE_REPORTS = 5 };

typedef struct gcs__res_node {
    Ray__Rpc__ResourcesData *data; /* last report (owned), NULL before the first */
    int64_t last_report_ms;
} gcs__res_node;

struct gcs_resource_manager {
    gcs_server *gcs;
    rc_map nodes; /* node id -> gcs__res_node */
    uint64_t reports;
};

static void gcs__res_node_free(void *p)
{
    gcs__res_node *n = p;
    if (n->data)
        rpc_msg_free(&n->data->base);
    rc_free(n);
}

void gcs_resource_on_node_added(gcs_resource_manager *rm, const Ray__Rpc__GcsNodeInfo *node)
{
    if (!rc_map_get(&rm->nodes, node->node_id.data, RC_NODE_ID_SIZE))
        rc_map_put(&rm->nodes, node->node_id.data, RC_NODE_ID_SIZE, RC_NEW(gcs__res_node));
    gcs_view_node_added(rm->gcs->view, node);
}

void gcs_resource_on_node_removed(gcs_resource_manager *rm, const uint8_t *id)
{
    gcs__res_node *n = rc_map_remove(&rm->nodes, id, RC_NODE_ID_SIZE);
    if (n)
        gcs__res_node_free(n);
    gcs_view_node_removed(rm->gcs->view, id);
}

const Ray__Rpc__ResourcesData *gcs_resource_get(const gcs_resource_manager *rm, const uint8_t *id)
{
    gcs__res_node *n = rc_map_get(&rm->nodes, id, RC_NODE_ID_SIZE);
    return n ? n->data : NULL;
}

uint64_t gcs_resource_reports_received(const gcs_resource_manager *rm)
{
    return rm->reports;
}

int gcs_resource_update(gcs_resource_manager *rm, const Ray__Rpc__ResourcesData *data)
{
    gcs__res_node *n = data->node_id.len == RC_NODE_ID_SIZE ? rc_map_get(&rm->nodes, data->node_id.data, RC_NODE_ID_SIZE)
                                                             : NULL;
    if (!n)
        return RC_ENOENT;
    if (n->data)
        rpc_msg_free(&n->data->base);
    n->data = (Ray__Rpc__ResourcesData *)rpc_msg_dup(&data->base);
    n->last_report_ms = rc_mono_ms();
    rm->reports++;
    gcs_view_report(rm->gcs->view, n->data);
    return 0;
}

/* ---- bundle resources the GCS knows of before the raylet reports them ----------------- */

/* The stored report is owned (rpc_msg_dup) and freed by protobuf-c with the process
 * allocator, which is also rc_malloc's: entries can be changed, added and dropped in place,
 * so a node holding many groups costs one pass over its entries per bundle, not a copy. */

static gcs_res_entry *gcs__entry_find(gcs_res_entry **arr, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(arr[i]->key, name))
            return arr[i];
    return NULL;
}

static void gcs__entry_add(gcs_res_entry ***arr, size_t *n, const ProtobufCMessageDescriptor *desc, const char *name,
                           double delta)
{
    gcs_res_entry *e = gcs__entry_find(*arr, *n, name);
    if (e) {
        e->value += delta;
        return;
    }
    if (delta <= 0)
        return;
    *arr = rc_realloc(*arr, (*n + 1) * sizeof(**arr));
    e = rc_malloc(sizeof(*e));
    protobuf_c_message_init(desc, e);
    e->key = rc_strdup(name);
    e->value = delta;
    (*arr)[(*n)++] = e;
}

/* Drops the bundle resources that came down to nothing. */
static void gcs__entries_prune(gcs_res_entry **arr, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (arr[i]->value <= 1e-9 && sched_bundle_name_reserved(arr[i]->key))
            protobuf_c_message_free_unpacked(&arr[i]->base, NULL);
        else
            arr[k++] = arr[i];
    }
    *n = k;
}

/* Applies one bundle's resources (sign +1 or -1) to the report's totals and availability. */
static void gcs__apply_bundle(Ray__Rpc__ResourcesData *d, const Ray__Rpc__Bundle *b, double sign)
{
    char name[400];
    const uint8_t *pg = b->bundle_id->placement_group_id.data;
    int32_t index = b->bundle_id->bundle_index;
    int labelled = 0;
    for (size_t k = 0; k <= b->n_unit_resources; k++) {
        const char *base;
        double amount;
        if (k < b->n_unit_resources) {
            base = b->unit_resources[k]->key;
            amount = b->unit_resources[k]->value;
            labelled |= !strcmp(base, SCHED_BUNDLE_LABEL);
        } else if (!labelled) {
            base = SCHED_BUNDLE_LABEL;
            amount = SCHED_BUNDLE_LABEL_AMOUNT;
        } else {
            break;
        }
        if (amount <= 0)
            continue;
        for (int wildcard = 0; wildcard < 2; wildcard++) {
            sched_bundle_name_format(base, pg, wildcard ? -1 : index, name, sizeof(name));
            gcs__entry_add((gcs_res_entry ***)&d->resources_total, &d->n_resources_total,
                           &ray__rpc__resources_data__resources_total_entry__descriptor, name, sign * amount);
            gcs__entry_add((gcs_res_entry ***)&d->resources_available, &d->n_resources_available,
                           &ray__rpc__resources_data__resources_available_entry__descriptor, name, sign * amount);
        }
    }
}

void gcs_resource_bundles(gcs_resource_manager *rm, const uint8_t *node, const Ray__Rpc__Bundle *const *bundles,
                          size_t n, int add)
{
    gcs__res_node *rn = rc_map_get(&rm->nodes, node, RC_NODE_ID_SIZE);
    if (!rn || !rn->data)
        return; /* no report yet: the raylet's first one will say it all */
    Ray__Rpc__ResourcesData *d = rn->data;
    for (size_t i = 0; i < n; i++) {
        const Ray__Rpc__Bundle *b = bundles[i];
        if (!b->bundle_id || b->bundle_id->placement_group_id.len != RC_PG_ID_SIZE)
            continue;
        /* Whether the report shows this bundle: its first resource's bundle name. */
        const char *first = SCHED_BUNDLE_LABEL;
        for (size_t k = 0; k < b->n_unit_resources; k++)
            if (b->unit_resources[k]->value > 0) {
                first = b->unit_resources[k]->key;
                break;
            }
        char name[400];
        sched_bundle_name_format(first, b->bundle_id->placement_group_id.data, b->bundle_id->bundle_index, name,
                                 sizeof(name));
        const gcs_res_entry *shown = gcs__entry_find((gcs_res_entry **)d->resources_total, d->n_resources_total, name);
        if ((shown && shown->value > 1e-9) == !!add)
            continue; /* the report already says so */
        gcs__apply_bundle(d, b, add ? 1 : -1);
    }
    if (!add) {
        gcs__entries_prune((gcs_res_entry **)d->resources_total, &d->n_resources_total);
        gcs__entries_prune((gcs_res_entry **)d->resources_available, &d->n_resources_available);
    }
}

static void handle_report(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_resource_manager *rm = arg;
    const Rayc__Rpc__ReportResourceUsageRequest *req = (const void *)request;
    Rayc__Rpc__ReportResourceUsageReply reply = RAYC__RPC__REPORT_RESOURCE_USAGE_REPLY__INIT;
    const Ray__Rpc__ResourcesData *data = req->resources;
    if (!data || data->node_id.len != RC_NODE_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT,
                          "resources.node_id must hold %d bytes", RC_NODE_ID_SIZE);
    if (!rc_map_get(&rm->nodes, data->node_id.data, RC_NODE_ID_SIZE)) {
        char hex[RC_ID_HEX_MAX];
        return gcs__reply(call, &reply.base, GCS_STATUS_NOT_FOUND, "node %s is not alive in this GCS",
                          rc_id_hex(data->node_id.data, RC_NODE_ID_SIZE, hex));
    }
    gcs__reply_ok(call, &reply.base);
    gcs_resource_update(rm, data);
}

const rpc_method_handler gcs_resource_report_handlers[] = {{"ReportResourceUsage", handle_report}, {NULL, NULL}};

/* ---- views -------------------------------------------------------------------------- */

typedef struct gcs__view {
    gcs_resource_manager *rm;
    const Ray__Rpc__GcsNodeInfo **nodes;
    size_t n;
} gcs__view;

static void gcs__collect(const Ray__Rpc__GcsNodeInfo *node, void *arg)
{
    gcs__view *v = arg;
    v->nodes[v->n++] = node;
}

/* The alive nodes, in the node manager's order; free v->nodes with rc_free. */
static void gcs__view_init(gcs__view *v, gcs_resource_manager *rm)
{
    v->rm = rm;
    v->n = 0;
    size_t cap = gcs_node_num_alive(rm->gcs->nodes);
    v->nodes = rc_malloc((cap ? cap : 1) * sizeof(*v->nodes));
    gcs_node_foreach_alive(rm->gcs->nodes, gcs__collect, v);
}

static void handle_get_all_available(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_resource_manager *rm = arg;
    (void)request;
    Ray__Rpc__GetAllAvailableResourcesReply reply = RAY__RPC__GET_ALL_AVAILABLE_RESOURCES_REPLY__INIT;
    gcs__view v;
    gcs__view_init(&v, rm);
    Ray__Rpc__AvailableResources *items = rc_calloc(v.n ? v.n : 1, sizeof(*items));
    Ray__Rpc__AvailableResources **ptrs = rc_calloc(v.n ? v.n : 1, sizeof(*ptrs));
    /* Map entry types differ only in name: both are {string key; double value}. */
    for (size_t i = 0; i < v.n; i++) {
        const Ray__Rpc__ResourcesData *d = gcs_resource_get(rm, v.nodes[i]->node_id.data);
        ray__rpc__available_resources__init(&items[i]);
        items[i].node_id = v.nodes[i]->node_id;
        if (d) {
            items[i].n_resources_available = d->n_resources_available;
            items[i].resources_available =
                (Ray__Rpc__AvailableResources__ResourcesAvailableEntry **)d->resources_available;
        } else {
            items[i].n_resources_available = v.nodes[i]->n_resources_total;
            items[i].resources_available =
                (Ray__Rpc__AvailableResources__ResourcesAvailableEntry **)v.nodes[i]->resources_total;
        }
        ptrs[i] = &items[i];
    }
    reply.resources_list = ptrs;
    reply.n_resources_list = v.n;
    gcs__reply_ok(call, &reply.base);
    rc_free(ptrs);
    rc_free(items);
    rc_free(v.nodes);
}

static void handle_get_all_total(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_resource_manager *rm = arg;
    (void)request;
    Ray__Rpc__GetAllTotalResourcesReply reply = RAY__RPC__GET_ALL_TOTAL_RESOURCES_REPLY__INIT;
    gcs__view v;
    gcs__view_init(&v, rm);
    Ray__Rpc__TotalResources *items = rc_calloc(v.n ? v.n : 1, sizeof(*items));
    Ray__Rpc__TotalResources **ptrs = rc_calloc(v.n ? v.n : 1, sizeof(*ptrs));
    /* A report's totals include what registration could not know: bundle resources. */
    for (size_t i = 0; i < v.n; i++) {
        const Ray__Rpc__ResourcesData *d = gcs_resource_get(rm, v.nodes[i]->node_id.data);
        ray__rpc__total_resources__init(&items[i]);
        items[i].node_id = v.nodes[i]->node_id;
        if (d && d->n_resources_total) {
            items[i].n_resources_total = d->n_resources_total;
            items[i].resources_total = (Ray__Rpc__TotalResources__ResourcesTotalEntry **)d->resources_total;
        } else {
            items[i].n_resources_total = v.nodes[i]->n_resources_total;
            items[i].resources_total =
                (Ray__Rpc__TotalResources__ResourcesTotalEntry **)v.nodes[i]->resources_total;
        }
        ptrs[i] = &items[i];
    }
    reply.resources_list = ptrs;
    reply.n_resources_list = v.n;
    gcs__reply_ok(call, &reply.base);
    rc_free(ptrs);
    rc_free(items);
    rc_free(v.nodes);
}

/* ---- demand aggregation ------------------------------------------------------------- */

typedef struct gcs__shape_sum {
    const Ray__Rpc__ResourceDemand *first; /* shape and selectors come from here */
    Ray__Rpc__ResourceDemand sum;
} gcs__shape_sum;

static int gcs__by_key(const void *a, const void *b)
{
    const Ray__Rpc__ResourceDemand__ShapeEntry *x = *(void *const *)a, *y = *(void *const *)b;
    return strcmp(x->key, y->key);
}

/* A canonical byte key for a demand's shape and label selectors. */
static void gcs__shape_key(const Ray__Rpc__ResourceDemand *d, rc_buf *key)
{
    Ray__Rpc__ResourceDemand__ShapeEntry **sorted =
        rc_malloc((d->n_shape ? d->n_shape : 1) * sizeof(*sorted));
    memcpy(sorted, d->shape, d->n_shape * sizeof(*sorted));
    qsort(sorted, d->n_shape, sizeof(*sorted), gcs__by_key);
    for (size_t i = 0; i < d->n_shape; i++)
        rc_buf_printf(key, "%s=%.4f;", sorted[i]->key, sorted[i]->value);
    rc_free(sorted);
    for (size_t i = 0; i < d->n_label_selectors; i++) {
        size_t len;
        uint8_t *bytes = rpc_msg_pack(&d->label_selectors[i]->base, &len);
        rc_buf_putc(key, '|');
        rc_buf_hex(key, bytes, len);
        rc_free(bytes);
    }
}

typedef struct gcs__shapes {
    rc_map map; /* canonical shape key -> gcs__shape_sum */
    size_t n;
} gcs__shapes;

/* Adds one demand to the sum of its shape (dem must outlive the sums). */
static void gcs__add_demand(const Ray__Rpc__ResourceDemand *dem, void *arg)
{
    gcs__shapes *shapes = arg;
    rc_buf key = RC_BUF_INIT;
    gcs__shape_key(dem, &key);
    gcs__shape_sum *s = rc_map_get(&shapes->map, key.data, key.len);
    if (!s) {
        s = RC_NEW(gcs__shape_sum);
        s->first = dem;
        ray__rpc__resource_demand__init(&s->sum);
        s->sum.n_shape = dem->n_shape;
        s->sum.shape = dem->shape;
        s->sum.n_label_selectors = dem->n_label_selectors;
        s->sum.label_selectors = dem->label_selectors;
        rc_map_put(&shapes->map, key.data, key.len, s);
        shapes->n++;
    }
    s->sum.num_ready_requests_queued += dem->num_ready_requests_queued;
    s->sum.num_infeasible_requests_queued += dem->num_infeasible_requests_queued;
    s->sum.backlog_size += dem->backlog_size;
    rc_buf_free(&key);
}

/* Adds the demand node last reported, unless the report is stale (see the file comment). */
static void gcs__add_node_demand(gcs_resource_manager *rm, const uint8_t *node_id, gcs__shapes *shapes)
{
    const gcs__res_node *n = rc_map_get(&rm->nodes, node_id, RC_NODE_ID_SIZE);
    if (!n || !n->data || !n->data->resource_load_by_shape)
        return;
    int64_t keepalive = rc_cfg.raylet_report_keepalive_ms > 0 ? rc_cfg.raylet_report_keepalive_ms : 1000;
    if (rc_mono_ms() - n->last_report_ms > GCS__STALE_REPORTS * keepalive)
        return;
    const Ray__Rpc__ResourceLoad *load = n->data->resource_load_by_shape;
    for (size_t j = 0; j < load->n_resource_demands; j++)
        gcs__add_demand(load->resource_demands[j], shapes);
}

/* Demands the GCS holds itself: copies that live until the reply is sent. */
typedef struct gcs__held_demand {
    Ray__Rpc__ResourceDemand **items;
    size_t n, cap;
} gcs__held_demand;

static void gcs__keep_demand(const Ray__Rpc__ResourceDemand *d, void *arg)
{
    gcs__held_demand *h = arg;
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->items = rc_realloc(h->items, h->cap * sizeof(*h->items));
    }
    h->items[h->n++] = (Ray__Rpc__ResourceDemand *)rpc_msg_dup(&d->base);
}

static void handle_get_all_usage(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_resource_manager *rm = arg;
    (void)request;
    Ray__Rpc__GetAllResourceUsageReply reply = RAY__RPC__GET_ALL_RESOURCE_USAGE_REPLY__INIT;
    Ray__Rpc__ResourceUsageBatchData batch = RAY__RPC__RESOURCE_USAGE_BATCH_DATA__INIT;
    Ray__Rpc__ResourceLoad load = RAY__RPC__RESOURCE_LOAD__INIT;
    Ray__Rpc__PlacementGroupLoad pg_load = RAY__RPC__PLACEMENT_GROUP_LOAD__INIT;
    gcs__view v;
    gcs__view_init(&v, rm);
    Ray__Rpc__ResourcesData *synth = rc_calloc(v.n ? v.n : 1, sizeof(*synth));
    Ray__Rpc__ResourcesData **ptrs = rc_calloc(v.n ? v.n : 1, sizeof(*ptrs));
    gcs__shapes shapes = {RC_MAP_INIT, 0};
    for (size_t i = 0; i < v.n; i++) {
        const Ray__Rpc__ResourcesData *d = gcs_resource_get(rm, v.nodes[i]->node_id.data);
        if (d) {
            ptrs[i] = (Ray__Rpc__ResourcesData *)d;
        } else {
            ray__rpc__resources_data__init(&synth[i]);
            synth[i].node_id = v.nodes[i]->node_id;
            synth[i].node_manager_address = v.nodes[i]->node_manager_address;
            synth[i].n_resources_total = v.nodes[i]->n_resources_total;
            synth[i].resources_total = (Ray__Rpc__ResourcesData__ResourcesTotalEntry **)v.nodes[i]->resources_total;
            synth[i].n_resources_available = v.nodes[i]->n_resources_total;
            synth[i].resources_available =
                (Ray__Rpc__ResourcesData__ResourcesAvailableEntry **)v.nodes[i]->resources_total;
            synth[i].n_labels = v.nodes[i]->n_labels;
            synth[i].labels = (Ray__Rpc__ResourcesData__LabelsEntry **)v.nodes[i]->labels;
            ptrs[i] = &synth[i];
        }
        gcs__add_node_demand(rm, v.nodes[i]->node_id.data, &shapes);
    }
    gcs__held_demand held = {NULL, 0, 0};
    if (rm->gcs->actors)
        gcs_actor_manager_demand(rm->gcs->actors, gcs__keep_demand, &held);
    for (size_t i = 0; i < held.n; i++)
        gcs__add_demand(held.items[i], &shapes);
    Ray__Rpc__ResourceDemand **demands = rc_calloc(shapes.n ? shapes.n : 1, sizeof(*demands));
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *val;
    size_t k = 0;
    while (rc_map_next(&shapes.map, &it, NULL, NULL, &val))
        demands[k++] = &((gcs__shape_sum *)val)->sum;
    load.resource_demands = demands;
    load.n_resource_demands = shapes.n;
    Ray__Rpc__PlacementGroupTableData **pending = NULL;
    if (rm->gcs->pgs) {
        pg_load.n_placement_group_data = gcs_pg_manager_pending(rm->gcs->pgs, &pending);
        pg_load.placement_group_data = pending;
        batch.placement_group_load = &pg_load;
    }
    batch.batch = ptrs;
    batch.n_batch = v.n;
    batch.resource_load_by_shape = &load;
    reply.resource_usage_data = &batch;
    gcs__reply_ok(call, &reply.base);
    rc_free(pending);
    for (size_t i = 0; i < held.n; i++)
        rpc_msg_free(&held.items[i]->base);
    rc_free(held.items);
    rc_map_destroy(&shapes.map, rc_free);
    rc_free(demands);
    rc_free(ptrs);
    rc_free(synth);
    rc_free(v.nodes);
}

const rpc_method_handler gcs_resource_handlers[] = {
    {"GetAllAvailableResources", handle_get_all_available},
    {"GetAllTotalResources", handle_get_all_total},
    {"GetAllResourceUsage", handle_get_all_usage},
    {NULL, NULL},
};

gcs_resource_manager *gcs_resource_manager_new(gcs_server *gcs)
{
    gcs_resource_manager *rm = RC_NEW(gcs_resource_manager);
    rm->gcs = gcs;
    rc_map_init(&rm->nodes);
    return rm;
}

void gcs_resource_manager_free(gcs_resource_manager *rm)
{
    if (!rm)
        return;
    rc_map_destroy(&rm->nodes, gcs__res_node_free);
    rc_free(rm);
}

/* ---- for the autoscaler state service (gcs_autoscaler.c) -------------------------------- */

void gcs_resource_demand_foreach(gcs_resource_manager *rm,
                                 void (*fn)(const Ray__Rpc__ResourceDemand *sum, void *arg), void *arg)
{
    gcs__shapes shapes = {RC_MAP_INIT, 0};
    gcs__view v;
    gcs__view_init(&v, rm);
    for (size_t i = 0; i < v.n; i++)
        gcs__add_node_demand(rm, v.nodes[i]->node_id.data, &shapes);
    gcs__held_demand held = {NULL, 0, 0};
    if (rm->gcs->actors)
        gcs_actor_manager_demand(rm->gcs->actors, gcs__keep_demand, &held);
    for (size_t i = 0; i < held.n; i++)
        gcs__add_demand(held.items[i], &shapes);
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *val;
    while (rc_map_next(&shapes.map, &it, NULL, NULL, &val))
        fn(&((gcs__shape_sum *)val)->sum, arg);
    for (size_t i = 0; i < held.n; i++)
        rpc_msg_free(&held.items[i]->base);
    rc_free(held.items);
    rc_map_destroy(&shapes.map, rc_free);
    rc_free(v.nodes);
}

void gcs_resource_set_draining(gcs_resource_manager *rm, const uint8_t *id, int draining, int64_t deadline_ms)
{
    gcs__res_node *n = rc_map_get(&rm->nodes, id, RC_NODE_ID_SIZE);
    if (!n || !n->data)
        return;
    n->data->is_draining = draining ? 1 : 0;
    n->data->draining_deadline_timestamp_ms = draining ? deadline_ms : 0;
}
