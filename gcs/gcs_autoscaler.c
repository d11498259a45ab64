/*
 * GCS autoscaler state service: Ray 2.53's ray.rpc.autoscaler.AutoscalerStateService, what an
 * autoscaler (rayc-market, ARCHITECTURE §9) reads and reports, and rayc's MarketGcsService
 * (verification verdicts on leased nodes).
 *
 * GetClusterResourceState gives, as Ray's GcsAutoscalerStateManager does: every node (alive:
 * resources from its last report, labels, status RUNNING / IDLE / DRAINING with the idle time
 * and why it is busy; dead: DEAD), the pending demand by shape and label selector (the same
 * sums GetAllResourceUsage shows), one gang request per placement group waiting to be placed
 * (STRICT_SPREAD as anti-affinity and STRICT_PACK as affinity on the label "_PG_<pg hex>",
 * details "<pg hex>:<STRATEGY>|<STATE>"), and the constraint last requested. Its version
 * changes exactly when the state does (idle times aside): the state is hashed on each read.
 *
 * Idle time is the GCS's own measure: a node is idle from the first report that shows all of
 * its resources available (object store memory aside) and nothing queued, until a report
 * shows otherwise. Before its first report a node is RUNNING ("no resource report yet").
 *
 * ReportAutoscalingState keeps the newest state (by autoscaler_state_version) and stores it,
 * like the constraint, in the internal KV (namespace "rayc_autoscaler"), reloaded at start.
 *
 * DrainNode decides from the GCS's view, not by asking the raylet (Ray's DrainRaylet): the
 * node's last report says whether it runs or queues anything, and that is what the raylet
 * would answer. IDLE_TERMINATION is refused for a busy node; PREEMPTION is always accepted.
 * An accepted drain takes the node out of the GCS's scheduling and shows it draining (with
 * its deadline) in the reports raylets read, so their spillback avoids it and a raylet stops
 * placing work on itself. Drains live in memory: after a GCS restart the caller drains again.
 *
 * A node that joined with a verification-required join token carries GCS_VERIFICATION_LABEL
 * (its auth record is the truth, stored in table AUTH: gcs_auth_manager.c); until the label
 * says "passed" the node is held out exactly as a drained one is. SetNodeVerification records
 * the verdict there and on the node record, and lets the node in (passed) or keeps it out for
 * good (failed).
 *
 * Loop thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscaler.pb-c.h"
#include "gcs_int.h"
#include "rayc_market.pb-c.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"

#define GCS__AS_NAMESPACE "rayc_autoscaler"
#define GCS__AS_STATE_KEY "autoscaling_state"
#define GCS__AS_CONSTRAINT_KEY "cluster_resource_constraint"
#define GCS__MARKET_LEASE_LABEL "rayc.io/market-lease"
#define GCS__MAX_ACTIVITY 4

typedef struct gcs__as_node {
    int reported;
    int64_t idle_since_ms; /* monotonic; 0 while busy */
    char *activity[GCS__MAX_ACTIVITY]; /* why it is busy (owned) */
    size_t n_activity;
    int drained;
    int reason; /* Ray__Rpc__Autoscaler__DrainNodeReason */
    int64_t deadline_ms;
    char *drain_message;
} gcs__as_node;

struct gcs_autoscaler {
    gcs_server *gcs;
    rc_map nodes; /* node id -> gcs__as_node */
    Ray__Rpc__Autoscaler__AutoscalingState *state;                /* owned; NULL before a report */
    Ray__Rpc__Autoscaler__ClusterResourceConstraint *constraint; /* owned; NULL: none */
    int64_t version;
    uint64_t last_hash;
    gcs_load_cb load_cb;
    int loading;
};

/* Every map<string, string> entry of protobuf-c has this layout. */
typedef struct gcs__str_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} gcs__str_entry;

static void gcs__as_activity_clear(gcs__as_node *n)
{
    for (size_t i = 0; i < n->n_activity; i++)
        rc_free(n->activity[i]);
    n->n_activity = 0;
}

static void gcs__as_node_free(void *p)
{
    gcs__as_node *n = p;
    gcs__as_activity_clear(n);
    rc_free(n->drain_message);
    rc_free(n);
}

static gcs__as_node *gcs__as_node_get(gcs_autoscaler *as, const uint8_t *id)
{
    gcs__as_node *n = rc_map_get(&as->nodes, id, RC_NODE_ID_SIZE);
    if (!n) {
        n = RC_NEW(gcs__as_node);
        rc_map_put(&as->nodes, id, RC_NODE_ID_SIZE, n);
    }
    return n;
}

static const char *gcs__label(const Ray__Rpc__GcsNodeInfo *info, const char *key)
{
    for (size_t i = 0; i < info->n_labels; i++)
        if (!strcmp(info->labels[i]->key, key))
            return info->labels[i]->value;
    return NULL;
}

/* 0: no verification needed or passed; 1: awaiting it; 2: failed. */
static int gcs__verification(const Ray__Rpc__GcsNodeInfo *info)
{
    const char *v = gcs__label(info, GCS_VERIFICATION_LABEL);
    if (!v || !strcmp(v, "passed"))
        return 0;
    return strcmp(v, "failed") ? 1 : 2;
}

int gcs_autoscaler_excluded(const gcs_autoscaler *as, const Ray__Rpc__GcsNodeInfo *info, int64_t *deadline_ms)
{
    if (deadline_ms)
        *deadline_ms = 0;
    if (info->node_id.len != RC_NODE_ID_SIZE)
        return 0;
    const gcs__as_node *n = rc_map_get(&as->nodes, info->node_id.data, RC_NODE_ID_SIZE);
    if (n && n->drained) {
        if (deadline_ms)
            *deadline_ms = n->deadline_ms;
        return 1;
    }
    return gcs__verification(info) != 0;
}

/* ---- idle time from reports ------------------------------------------------------------ */

static void gcs__as_busy(gcs__as_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gcs__as_busy(gcs__as_node *n, const char *fmt, ...)
{
    if (n->n_activity == GCS__MAX_ACTIVITY)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    n->activity[n->n_activity++] = rc_strdup(text);
}

void gcs_autoscaler_on_report(gcs_autoscaler *as, const Ray__Rpc__ResourcesData *d)
{
    if (d->node_id.len != RC_NODE_ID_SIZE)
        return;
    gcs__as_node *n = gcs__as_node_get(as, d->node_id.data);
    n->reported = 1;
    gcs__as_activity_clear(n);
    for (size_t i = 0; i < d->n_resources_total; i++) {
        const char *name = d->resources_total[i]->key;
        double total = d->resources_total[i]->value, avail = 0;
        if (!strcmp(name, "object_store_memory") || strstr(name, "_group_"))
            continue;
        for (size_t k = 0; k < d->n_resources_available; k++)
            if (!strcmp(d->resources_available[k]->key, name))
                avail = d->resources_available[k]->value;
        if (avail < total - 1e-6)
            gcs__as_busy(n, "Resource: %s currently in use: %g/%g", name, total - avail, total);
    }
    uint64_t queued = 0;
    for (size_t j = 0; d->resource_load_by_shape && j < d->resource_load_by_shape->n_resource_demands; j++) {
        const Ray__Rpc__ResourceDemand *dem = d->resource_load_by_shape->resource_demands[j];
        queued += dem->num_ready_requests_queued + dem->num_infeasible_requests_queued + (uint64_t)dem->backlog_size;
    }
    if (queued)
        gcs__as_busy(n, "%llu lease requests queued or backlogged", (unsigned long long)queued);
    if (n->n_activity)
        n->idle_since_ms = 0;
    else if (!n->idle_since_ms)
        n->idle_since_ms = rc_mono_ms();
}

void gcs_autoscaler_on_node_removed(gcs_autoscaler *as, const uint8_t *id)
{
    gcs__as_node *n = rc_map_remove(&as->nodes, id, RC_NODE_ID_SIZE);
    if (n)
        gcs__as_node_free(n);
}

/* ---- building the cluster resource state ------------------------------------------------ */

/* Protobuf-c frees what it unpacked with the process allocator, which is rc_malloc's: the
 * state below is built from rc_malloc'ed parts and freed with rpc_msg_free. */
static void *gcs__msg_new(const ProtobufCMessageDescriptor *d)
{
    void *m = rc_malloc(d->sizeof_message);
    protobuf_c_message_init(d, m);
    return m;
}

#define GCS__PUSH(arr, n, item)                                                                                        \
    do {                                                                                                               \
        (arr) = rc_realloc((arr), ((n) + 1) * sizeof(*(arr)));                                                         \
        (arr)[(n)++] = (item);                                                                                         \
    } while (0)

static void gcs__res_add(void *arr_p, size_t *n, const ProtobufCMessageDescriptor *d, const char *key, double value)
{
    gcs_res_entry ***arr = arr_p;
    gcs_res_entry *e = gcs__msg_new(d);
    e->key = rc_strdup(key);
    e->value = value;
    GCS__PUSH(*arr, *n, e);
}

static void gcs__str_add(void *arr_p, size_t *n, const ProtobufCMessageDescriptor *d, const char *key, const char *value)
{
    gcs__str_entry ***arr = arr_p;
    gcs__str_entry *e = gcs__msg_new(d);
    e->key = rc_strdup(key);
    e->value = rc_strdup(value ? value : "");
    GCS__PUSH(*arr, *n, e);
}

static ProtobufCBinaryData gcs__bytes(const ProtobufCBinaryData *src)
{
    ProtobufCBinaryData b = {src->len, rc_malloc(src->len ? src->len : 1)};
    memcpy(b.data, src->data, src->len);
    return b;
}

typedef struct gcs__build {
    gcs_autoscaler *as;
    Ray__Rpc__Autoscaler__ClusterResourceState *st;
    int64_t *idle; /* idle_duration_ms per node state, filled in after hashing */
} gcs__build;

/* A node's state with what every node has: ID, instance (its market lease, when it has
 * one), type names and address. */
static Ray__Rpc__Autoscaler__NodeState *gcs__node_state_new(const Ray__Rpc__GcsNodeInfo *info)
{
    Ray__Rpc__Autoscaler__NodeState *ns = gcs__msg_new(&ray__rpc__autoscaler__node_state__descriptor);
    ns->node_id = gcs__bytes(&info->node_id);
    const char *lease = gcs__label(info, GCS__MARKET_LEASE_LABEL);
    ns->instance_id = rc_strdup(lease ? lease : info->instance_id ? info->instance_id : "");
    ns->ray_node_type_name = rc_strdup(info->node_type_name ? info->node_type_name : "");
    ns->instance_type_name = rc_strdup(info->instance_type_name ? info->instance_type_name : "");
    ns->node_ip_address = rc_strdup(info->node_manager_address ? info->node_manager_address : "");
    return ns;
}

static void gcs__build_push(gcs__build *b, Ray__Rpc__Autoscaler__NodeState *ns, int64_t idle)
{
    b->idle = rc_realloc(b->idle, (b->st->n_node_states + 1) * sizeof(*b->idle));
    b->idle[b->st->n_node_states] = idle;
    GCS__PUSH(b->st->node_states, b->st->n_node_states, ns);
}

static void gcs__add_alive(const Ray__Rpc__GcsNodeInfo *info, void *arg)
{
    gcs__build *b = arg;
    gcs_autoscaler *as = b->as;
    Ray__Rpc__Autoscaler__NodeState *ns = gcs__node_state_new(info);
    const Ray__Rpc__ResourcesData *d = gcs_resource_get(as->gcs->res, info->node_id.data);
    const gcs__as_node *n = rc_map_get(&as->nodes, info->node_id.data, RC_NODE_ID_SIZE);
    int64_t idle = 0;
    int verification = gcs__verification(info);
    char text[400];
    if (verification == 1) {
        ns->status = RAY__RPC__AUTOSCALER__NODE_STATUS__DRAINING;
        GCS__PUSH(ns->node_activity, ns->n_node_activity, rc_strdup("awaiting verification"));
    } else if (verification == 2) {
        const char *why = gcs_auth_verification_reason(as->gcs->auth, info->node_id.data);
        snprintf(text, sizeof(text), "failed verification: %s", why ? why : "no reason given");
        ns->status = RAY__RPC__AUTOSCALER__NODE_STATUS__DRAINING;
        GCS__PUSH(ns->node_activity, ns->n_node_activity, rc_strdup(text));
    } else if (n && n->drained) {
        snprintf(text, sizeof(text), "draining (%s): %s",
                 n->reason == RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_PREEMPTION ? "preemption"
                                                                                                 : "idle termination",
                 n->drain_message && n->drain_message[0] ? n->drain_message : "no message");
        ns->status = RAY__RPC__AUTOSCALER__NODE_STATUS__DRAINING;
        GCS__PUSH(ns->node_activity, ns->n_node_activity, rc_strdup(text));
    } else if (!n || !n->reported) {
        ns->status = RAY__RPC__AUTOSCALER__NODE_STATUS__RUNNING;
        GCS__PUSH(ns->node_activity, ns->n_node_activity, rc_strdup("no resource report yet"));
    } else if (n->idle_since_ms) {
        ns->status = RAY__RPC__AUTOSCALER__NODE_STATUS__IDLE;
        idle = rc_mono_ms() - n->idle_since_ms;
    } else {
        ns->status = RAY__RPC__AUTOSCALER__NODE_STATUS__RUNNING;
    }
    if (n && ns->status != RAY__RPC__AUTOSCALER__NODE_STATUS__IDLE)
        for (size_t i = 0; i < n->n_activity; i++)
            GCS__PUSH(ns->node_activity, ns->n_node_activity, rc_strdup(n->activity[i]));
    const gcs_res_entry *const *tot = (const gcs_res_entry *const *)(d && d->n_resources_total ? (void *)d->resources_total
                                                                                              : (void *)info->resources_total);
    size_t n_tot = d && d->n_resources_total ? d->n_resources_total : info->n_resources_total;
    const gcs_res_entry *const *av = d ? (const gcs_res_entry *const *)d->resources_available : tot;
    size_t n_av = d ? d->n_resources_available : n_tot;
    for (size_t i = 0; i < n_tot; i++)
        gcs__res_add(&ns->total_resources, &ns->n_total_resources,
                     &ray__rpc__autoscaler__node_state__total_resources_entry__descriptor, tot[i]->key, tot[i]->value);
    for (size_t i = 0; i < n_av; i++)
        gcs__res_add(&ns->available_resources, &ns->n_available_resources,
                     &ray__rpc__autoscaler__node_state__available_resources_entry__descriptor, av[i]->key, av[i]->value);
    for (size_t i = 0; i < info->n_labels; i++)
        gcs__str_add(&ns->labels, &ns->n_labels, &ray__rpc__autoscaler__node_state__labels_entry__descriptor,
                     info->labels[i]->key, info->labels[i]->value);
    gcs__build_push(b, ns, idle);
}

static void gcs__add_dead(const Ray__Rpc__GcsNodeInfo *info, void *arg)
{
    gcs__build *b = arg;
    Ray__Rpc__Autoscaler__NodeState *ns = gcs__node_state_new(info);
    ns->status = RAY__RPC__AUTOSCALER__NODE_STATUS__DEAD;
    gcs__build_push(b, ns, 0);
}

static void gcs__add_demand(const Ray__Rpc__ResourceDemand *dem, void *arg)
{
    gcs__build *b = arg;
    int64_t count = (int64_t)dem->num_ready_requests_queued + (int64_t)dem->num_infeasible_requests_queued +
                    dem->backlog_size;
    if (count <= 0)
        return;
    Ray__Rpc__Autoscaler__ResourceRequestByCount *rc =
        gcs__msg_new(&ray__rpc__autoscaler__resource_request_by_count__descriptor);
    Ray__Rpc__Autoscaler__ResourceRequest *rq = gcs__msg_new(&ray__rpc__autoscaler__resource_request__descriptor);
    for (size_t i = 0; i < dem->n_shape; i++)
        gcs__res_add(&rq->resources_bundle, &rq->n_resources_bundle,
                     &ray__rpc__autoscaler__resource_request__resources_bundle_entry__descriptor, dem->shape[i]->key,
                     dem->shape[i]->value);
    for (size_t i = 0; i < dem->n_label_selectors; i++)
        GCS__PUSH(rq->label_selectors, rq->n_label_selectors,
                  (Ray__Rpc__LabelSelector *)rpc_msg_dup(&dem->label_selectors[i]->base));
    rc->request = rq;
    rc->count = count;
    GCS__PUSH(b->st->pending_resource_requests, b->st->n_pending_resource_requests, rc);
}

/* Ray's label selector from a bundle's map entry: "v", "!v", "in(a,b)", "!in(a,b)". */
static Ray__Rpc__LabelSelectorConstraint *gcs__selector_constraint(const char *key, const char *value)
{
    Ray__Rpc__LabelSelectorConstraint *c = gcs__msg_new(&ray__rpc__label_selector_constraint__descriptor);
    c->label_key = rc_strdup(key);
    c->operator_ = RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_IN;
    if (value[0] == '!') {
        c->operator_ = RAY__RPC__LABEL_SELECTOR_OPERATOR__LABEL_OPERATOR_NOT_IN;
        value++;
    }
    size_t len = strlen(value);
    if (!strncmp(value, "in(", 3) && len > 3 && value[len - 1] == ')') {
        char *list = rc_strndup(value + 3, len - 4), *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            GCS__PUSH(c->label_values, c->n_label_values, rc_strdup(tok));
        }
        rc_free(list);
    } else {
        GCS__PUSH(c->label_values, c->n_label_values, rc_strdup(value));
    }
    return c;
}

static Ray__Rpc__Autoscaler__ResourceRequest *gcs__bundle_request(const Ray__Rpc__Bundle *bundle, const char *pg_label,
                                                                   Ray__Rpc__PlacementStrategy strategy)
{
    Ray__Rpc__Autoscaler__ResourceRequest *rq = gcs__msg_new(&ray__rpc__autoscaler__resource_request__descriptor);
    for (size_t i = 0; i < bundle->n_unit_resources; i++)
        gcs__res_add(&rq->resources_bundle, &rq->n_resources_bundle,
                     &ray__rpc__autoscaler__resource_request__resources_bundle_entry__descriptor,
                     bundle->unit_resources[i]->key, bundle->unit_resources[i]->value);
    if (bundle->n_label_selector) {
        Ray__Rpc__LabelSelector *ls = gcs__msg_new(&ray__rpc__label_selector__descriptor);
        for (size_t i = 0; i < bundle->n_label_selector; i++)
            GCS__PUSH(ls->label_constraints, ls->n_label_constraints,
                      gcs__selector_constraint(bundle->label_selector[i]->key, bundle->label_selector[i]->value));
        GCS__PUSH(rq->label_selectors, rq->n_label_selectors, ls);
    }
    if (strategy == RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD || strategy == RAY__RPC__PLACEMENT_STRATEGY__STRICT_PACK) {
        Ray__Rpc__Autoscaler__PlacementConstraint *pc =
            gcs__msg_new(&ray__rpc__autoscaler__placement_constraint__descriptor);
        if (strategy == RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD) {
            pc->anti_affinity = gcs__msg_new(&ray__rpc__autoscaler__anti_affinity_constraint__descriptor);
            pc->anti_affinity->label_name = rc_strdup(pg_label);
            pc->anti_affinity->label_value = rc_strdup("");
        } else {
            pc->affinity = gcs__msg_new(&ray__rpc__autoscaler__affinity_constraint__descriptor);
            pc->affinity->label_name = rc_strdup(pg_label);
            pc->affinity->label_value = rc_strdup("");
        }
        GCS__PUSH(rq->placement_constraints, rq->n_placement_constraints, pc);
    }
    return rq;
}

static int gcs__placed(const ProtobufCBinaryData *node)
{
    for (size_t i = 0; i < node->len; i++)
        if (node->data[i])
            return 1;
    return 0;
}

static void gcs__add_gangs(gcs__build *b)
{
    gcs_server *gcs = b->as->gcs;
    if (!gcs->pgs)
        return;
    Ray__Rpc__PlacementGroupTableData **pending = NULL;
    size_t n = gcs_pg_manager_pending(gcs->pgs, &pending);
    for (size_t i = 0; i < n; i++) {
        const Ray__Rpc__PlacementGroupTableData *pg = pending[i];
        if (pg->state != RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__PENDING &&
            pg->state != RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__RESCHEDULING)
            continue;
        char hex[RC_ID_HEX_MAX], label[RC_ID_HEX_MAX + 8], details[RC_ID_HEX_MAX + 64];
        rc_id_hex(pg->placement_group_id.data, pg->placement_group_id.len < RC_PG_ID_SIZE ? pg->placement_group_id.len
                                                                                           : RC_PG_ID_SIZE, hex);
        snprintf(label, sizeof(label), "_PG_%s", hex);
        const ProtobufCEnumValue *strategy =
            protobuf_c_enum_descriptor_get_value(&ray__rpc__placement_strategy__descriptor, pg->strategy);
        const ProtobufCEnumValue *state = protobuf_c_enum_descriptor_get_value(
            &ray__rpc__placement_group_table_data__placement_group_state__descriptor, pg->state);
        snprintf(details, sizeof(details), "%s:%s|%s", hex, strategy ? strategy->name : "UNKNOWN",
                 state ? state->name : "UNKNOWN");
        Ray__Rpc__Autoscaler__GangResourceRequest *g =
            gcs__msg_new(&ray__rpc__autoscaler__gang_resource_request__descriptor);
        g->details = rc_strdup(details);
        Ray__Rpc__Autoscaler__BundleSelector *sel = gcs__msg_new(&ray__rpc__autoscaler__bundle_selector__descriptor);
        for (size_t k = 0; k < pg->n_bundles; k++) {
            const Ray__Rpc__Bundle *bundle = pg->bundles[k];
            if (gcs__placed(&bundle->node_id))
                continue; /* placed already: only a lost bundle of a group being rescheduled counts */
            GCS__PUSH(g->requests, g->n_requests, gcs__bundle_request(bundle, label, pg->strategy));
            GCS__PUSH(sel->resource_requests, sel->n_resource_requests, gcs__bundle_request(bundle, label, pg->strategy));
        }
        GCS__PUSH(g->bundle_selectors, g->n_bundle_selectors, sel);
        GCS__PUSH(b->st->pending_gang_resource_requests, b->st->n_pending_gang_resource_requests, g);
    }
    rc_free(pending);
}

static uint64_t gcs__fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The state now, versioned: a new owned message (rpc_msg_free). */
static Ray__Rpc__Autoscaler__ClusterResourceState *gcs__build_state(gcs_autoscaler *as)
{
    gcs__build b = {as, gcs__msg_new(&ray__rpc__autoscaler__cluster_resource_state__descriptor), NULL};
    gcs_node_foreach_alive(as->gcs->nodes, gcs__add_alive, &b);
    gcs_node_foreach_dead(as->gcs->nodes, gcs__add_dead, &b);
    gcs_resource_demand_foreach(as->gcs->res, gcs__add_demand, &b);
    gcs__add_gangs(&b);
    if (as->constraint)
        GCS__PUSH(b.st->cluster_resource_constraints, b.st->n_cluster_resource_constraints,
                  (Ray__Rpc__Autoscaler__ClusterResourceConstraint *)rpc_msg_dup(&as->constraint->base));
    char session[RC_ID_HEX_MAX + 16];
    snprintf(session, sizeof(session), "session_%s", as->gcs->cluster_id_hex);
    b.st->cluster_session_name = rc_strdup(session);
    /* Versions and idle times are left out of the hash: only a change of the state counts. */
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&b.st->base, &len);
    uint64_t h = gcs__fnv(bytes, len);
    rc_free(bytes);
    if (h != as->last_hash || as->version == 0) {
        as->last_hash = h;
        as->version++;
    }
    b.st->cluster_resource_state_version = as->version;
    b.st->last_seen_autoscaler_state_version = as->state ? as->state->autoscaler_state_version : 0;
    for (size_t i = 0; i < b.st->n_node_states; i++) {
        b.st->node_states[i]->idle_duration_ms = b.idle[i];
        b.st->node_states[i]->node_state_version = as->version;
    }
    rc_free(b.idle);
    return b.st;
}

/* ---- handlers ------------------------------------------------------------------------- */

static void handle_get_state(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_autoscaler *as = arg;
    (void)request;
    Ray__Rpc__Autoscaler__GetClusterResourceStateReply reply =
        RAY__RPC__AUTOSCALER__GET_CLUSTER_RESOURCE_STATE_REPLY__INIT;
    reply.cluster_resource_state = gcs__build_state(as);
    rpc_reply(call, &reply.base);
    rpc_msg_free(&reply.cluster_resource_state->base);
}

static void handle_get_status(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_autoscaler *as = arg;
    (void)request;
    Ray__Rpc__Autoscaler__GetClusterStatusReply reply = RAY__RPC__AUTOSCALER__GET_CLUSTER_STATUS_REPLY__INIT;
    reply.cluster_resource_state = gcs__build_state(as);
    reply.autoscaling_state = as->state;
    rpc_reply(call, &reply.base);
    rpc_msg_free(&reply.cluster_resource_state->base);
}

typedef struct gcs__as_put {
    rpc_call *call;
    const ProtobufCMessageDescriptor *reply_desc;
} gcs__as_put;

static void gcs__as_stored(int rc, int64_t added, void *arg)
{
    gcs__as_put *op = arg;
    (void)added;
    if (rc < 0) {
        rpc_reply_status(op->call, GRPC_STATUS_UNAVAILABLE, "the GCS cannot store it: %s; try again", rc_strerror(rc));
    } else {
        ProtobufCMessage *reply = gcs__msg_new(op->reply_desc);
        rpc_reply(op->call, reply);
        rpc_msg_free(reply);
    }
    rc_free(op);
}

/* Stores msg under key in the KV and answers call with an empty reply_desc once stored. */
static void gcs__as_persist(gcs_autoscaler *as, rpc_call *call, const char *key, const ProtobufCMessage *msg,
                            const ProtobufCMessageDescriptor *reply_desc)
{
    gcs__as_put *op = RC_NEW(gcs__as_put);
    op->call = call;
    op->reply_desc = reply_desc;
    size_t klen, len;
    char *k = gcs_kv_make_key(GCS__AS_NAMESPACE, strlen(GCS__AS_NAMESPACE), key, strlen(key), &klen);
    uint8_t *bytes = rpc_msg_pack(msg, &len);
    gcs_store *st = as->gcs->store;
    int rc = st ? st->ops->put(st, GCS_TABLE_KV, k, klen, bytes, len, 1, gcs__as_stored, op) : RC_ECANCELED;
    rc_free(bytes);
    rc_free(k);
    if (rc < 0)
        gcs__as_stored(rc, 0, op);
}

static void handle_report(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_autoscaler *as = arg;
    const Ray__Rpc__Autoscaler__ReportAutoscalingStateRequest *req = (const void *)request;
    if (!req->autoscaling_state)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                                "ReportAutoscalingState needs autoscaling_state");
    if (as->state && req->autoscaling_state->autoscaler_state_version < as->state->autoscaler_state_version) {
        RC_INFO("gcs: an outdated autoscaling state (version %lld, holding %lld) is ignored",
                (long long)req->autoscaling_state->autoscaler_state_version,
                (long long)as->state->autoscaler_state_version);
        Ray__Rpc__Autoscaler__ReportAutoscalingStateReply reply = RAY__RPC__AUTOSCALER__REPORT_AUTOSCALING_STATE_REPLY__INIT;
        return rpc_reply(call, &reply.base);
    }
    if (as->state)
        rpc_msg_free(&as->state->base);
    as->state = (Ray__Rpc__Autoscaler__AutoscalingState *)rpc_msg_dup(&req->autoscaling_state->base);
    gcs__as_persist(as, call, GCS__AS_STATE_KEY, &as->state->base,
                    &ray__rpc__autoscaler__report_autoscaling_state_reply__descriptor);
}

static void handle_constraint(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_autoscaler *as = arg;
    const Ray__Rpc__Autoscaler__RequestClusterResourceConstraintRequest *req = (const void *)request;
    const Ray__Rpc__Autoscaler__ClusterResourceConstraint *c = req->cluster_resource_constraint;
    char err[300];
    for (size_t i = 0; c && i < c->n_resource_requests; i++) {
        const Ray__Rpc__Autoscaler__ResourceRequestByCount *r = c->resource_requests[i];
        if (r->count < 0 || !r->request)
            return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                                    "cluster_resource_constraint.resource_requests[%zu] needs a request and a count >= 0",
                                    i);
        if (gcs_view_check_resources((const gcs_res_entry *const *)r->request->resources_bundle,
                                     r->request->n_resources_bundle, "resources_bundle", err, sizeof(err)) < 0)
            return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", err);
    }
    if (as->constraint)
        rpc_msg_free(&as->constraint->base);
    as->constraint = NULL;
    Ray__Rpc__Autoscaler__ClusterResourceConstraint empty = RAY__RPC__AUTOSCALER__CLUSTER_RESOURCE_CONSTRAINT__INIT;
    if (c && c->n_resource_requests)
        as->constraint = (Ray__Rpc__Autoscaler__ClusterResourceConstraint *)rpc_msg_dup(&c->base);
    gcs__as_persist(as, call, GCS__AS_CONSTRAINT_KEY, as->constraint ? &as->constraint->base : &empty.base,
                    &ray__rpc__autoscaler__request_cluster_resource_constraint_reply__descriptor);
}

static void handle_drain(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_autoscaler *as = arg;
    const Ray__Rpc__Autoscaler__DrainNodeRequest *req = (const void *)request;
    Ray__Rpc__Autoscaler__DrainNodeReply reply = RAY__RPC__AUTOSCALER__DRAIN_NODE_REPLY__INIT;
    if (req->node_id.len != RC_NODE_ID_SIZE)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT, "node_id must hold %d bytes", RC_NODE_ID_SIZE);
    if (req->deadline_timestamp_ms < 0)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                                "Draining deadline must be non-negative, received %lld",
                                (long long)req->deadline_timestamp_ms);
    if (req->reason != RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_IDLE_TERMINATION &&
        req->reason != RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_PREEMPTION)
        return rpc_reply_status(call, GRPC_STATUS_INVALID_ARGUMENT,
                                "reason must be DRAIN_NODE_REASON_IDLE_TERMINATION (1) or "
                                "DRAIN_NODE_REASON_PREEMPTION (2), not %d",
                                (int)req->reason);
    char hex[RC_ID_HEX_MAX], why[600];
    rc_id_hex(req->node_id.data, RC_NODE_ID_SIZE, hex);
    const Ray__Rpc__GcsNodeInfo *info = gcs_node_get_alive(as->gcs->nodes, req->node_id.data);
    if (!info) {
        if (gcs_node_known(as->gcs->nodes, req->node_id.data)) {
            reply.is_accepted = 1; /* dead: nothing left to drain */
        } else {
            snprintf(why, sizeof(why), "node %s is not known to this GCS (never registered, or dead long ago); "
                     "check the node ID", hex);
            reply.rejection_reason_message = why;
        }
        return rpc_reply(call, &reply.base);
    }
    gcs__as_node *n = gcs__as_node_get(as, req->node_id.data);
    if (req->reason == RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_IDLE_TERMINATION && !n->drained) {
        const char *busy = NULL;
        char acts[400] = "";
        if (!n->reported)
            busy = "it has not reported its resources yet";
        else if (!n->idle_since_ms) {
            for (size_t i = 0; i < n->n_activity; i++)
                snprintf(acts + strlen(acts), sizeof(acts) - strlen(acts), "%s%s", i ? "; " : "", n->activity[i]);
            busy = acts;
        }
        if (busy) {
            snprintf(why, sizeof(why), "node %s is not idle (%s); an idle-termination drain is refused while it "
                     "has work", hex, busy);
            reply.rejection_reason_message = why;
            RC_INFO("gcs: DrainNode rejected: %s", why);
            return rpc_reply(call, &reply.base);
        }
    }
    /* A second drain may move the deadline or turn an idle termination into a preemption. */
    n->drained = 1;
    n->reason = req->reason;
    n->deadline_ms = req->deadline_timestamp_ms;
    rc_free(n->drain_message);
    n->drain_message = rc_strdup(req->reason_message ? req->reason_message : "");
    RC_INFO("gcs: node %s is draining (%s, deadline %lld): %s", hex,
            req->reason == RAY__RPC__AUTOSCALER__DRAIN_NODE_REASON__DRAIN_NODE_REASON_PREEMPTION ? "preemption"
                                                                                               : "idle termination",
            (long long)req->deadline_timestamp_ms, n->drain_message);
    gcs_view_set_draining(as->gcs->view, req->node_id.data, 1, n->deadline_ms);
    reply.is_accepted = 1;
    rpc_reply(call, &reply.base);
}

const rpc_method_handler gcs_autoscaler_handlers[] = {
    {"GetClusterResourceState", handle_get_state},
    {"ReportAutoscalingState", handle_report},
    {"RequestClusterResourceConstraint", handle_constraint},
    {"GetClusterStatus", handle_get_status},
    {"DrainNode", handle_drain},
    {NULL, NULL},
};

/* ---- verification verdicts (MarketGcsService) --------------------------------------------- */

typedef struct gcs__verdict {
    rpc_call *call;
    uint8_t node_id[RC_NODE_ID_SIZE];
    int passed;
    char reason[201];
} gcs__verdict;

static void gcs__verdict_stored(gcs_server *gcs, int rc, void *arg)
{
    gcs__verdict *op = arg;
    Rayc__Rpc__SetNodeVerificationReply reply = RAYC__RPC__SET_NODE_VERIFICATION_REPLY__INIT;
    if (rc < 0) {
        gcs__reply(op->call, &reply.base, GCS_STATUS_IO_ERROR, "cannot store the verdict: %s", rc_strerror(rc));
        rc_free(op);
        return;
    }
    /* The node record follows its auth record (and the next registration forces it anyway). */
    if (gcs_node_get_alive(gcs->nodes, op->node_id)) {
        gcs_node_set_label(gcs->nodes, op->node_id, GCS_VERIFICATION_LABEL, op->passed ? "passed" : "failed");
        const Ray__Rpc__GcsNodeInfo *info = gcs_node_get_alive(gcs->nodes, op->node_id);
        int64_t deadline;
        int excluded = info && gcs_autoscaler_excluded(gcs->autoscaler, info, &deadline);
        gcs_view_set_draining(gcs->view, op->node_id, excluded, excluded ? deadline : 0);
    }
    gcs__reply_ok(op->call, &reply.base);
    rc_free(op);
}

static void handle_set_verification(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    gcs_autoscaler *as = arg;
    const Rayc__Rpc__SetNodeVerificationRequest *req = (const void *)request;
    Rayc__Rpc__SetNodeVerificationReply reply = RAYC__RPC__SET_NODE_VERIFICATION_REPLY__INIT;
    if (req->node_id.len != RC_NODE_ID_SIZE)
        return gcs__reply(call, &reply.base, GCS_STATUS_INVALID_ARGUMENT, "node_id must hold %d bytes", RC_NODE_ID_SIZE);
    gcs__verdict *op = RC_NEW(gcs__verdict);
    op->call = call;
    memcpy(op->node_id, req->node_id.data, RC_NODE_ID_SIZE);
    op->passed = req->passed;
    snprintf(op->reason, sizeof(op->reason), "%s",
             req->reason && req->reason[0] ? req->reason : req->passed ? "passed" : "no reason given");
    char err[400];
    int rc = gcs_auth_set_verification(as->gcs->auth, op->node_id, op->passed, op->reason, gcs__verdict_stored, op,
                                       err, sizeof(err));
    if (rc < 0) {
        rc_free(op);
        return gcs__reply(call, &reply.base, rc == RC_ENOENT ? GCS_STATUS_NOT_FOUND : GCS_STATUS_INVALID, "%s", err);
    }
}

const rpc_method_handler gcs_market_handlers[] = {
    {"SetNodeVerification", handle_set_verification},
    {NULL, NULL},
};

/* ---- load and lifetime ------------------------------------------------------------------- */

static void gcs__constraint_loaded(int rc, const void *value, size_t len, void *arg)
{
    gcs_autoscaler *as = arg;
    if (rc == 0) {
        as->constraint = ray__rpc__autoscaler__cluster_resource_constraint__unpack(NULL, len, value);
        if (as->constraint && !as->constraint->n_resource_requests) {
            rpc_msg_free(&as->constraint->base);
            as->constraint = NULL;
        }
    } else if (rc != RC_ENOENT) {
        return as->load_cb(as->gcs, rc);
    }
    as->load_cb(as->gcs, 0);
}

static void gcs__state_loaded(int rc, const void *value, size_t len, void *arg)
{
    gcs_autoscaler *as = arg;
    if (rc == 0) {
        as->state = ray__rpc__autoscaler__autoscaling_state__unpack(NULL, len, value);
        if (!as->state)
            RC_WARN("gcs: the stored autoscaling state is unreadable; waiting for the next report");
    } else if (rc != RC_ENOENT) {
        return as->load_cb(as->gcs, rc);
    }
    size_t klen;
    char *k = gcs_kv_make_key(GCS__AS_NAMESPACE, strlen(GCS__AS_NAMESPACE), GCS__AS_CONSTRAINT_KEY,
                              strlen(GCS__AS_CONSTRAINT_KEY), &klen);
    rc = as->gcs->store->ops->get(as->gcs->store, GCS_TABLE_KV, k, klen, gcs__constraint_loaded, as);
    rc_free(k);
    if (rc < 0)
        as->load_cb(as->gcs, rc);
}

int gcs_autoscaler_load(gcs_autoscaler *as, gcs_load_cb cb)
{
    as->load_cb = cb;
    size_t klen;
    char *k = gcs_kv_make_key(GCS__AS_NAMESPACE, strlen(GCS__AS_NAMESPACE), GCS__AS_STATE_KEY, strlen(GCS__AS_STATE_KEY),
                              &klen);
    int rc = as->gcs->store->ops->get(as->gcs->store, GCS_TABLE_KV, k, klen, gcs__state_loaded, as);
    rc_free(k);
    return rc;
}

gcs_autoscaler *gcs_autoscaler_new(gcs_server *gcs)
{
    gcs_autoscaler *as = RC_NEW(gcs_autoscaler);
    as->gcs = gcs;
    rc_map_init(&as->nodes);
    return as;
}

void gcs_autoscaler_free(gcs_autoscaler *as)
{
    if (!as)
        return;
    rc_map_destroy(&as->nodes, gcs__as_node_free);
    if (as->state)
        rpc_msg_free(&as->state->base);
    if (as->constraint)
        rpc_msg_free(&as->constraint->base);
    rc_free(as);
}
