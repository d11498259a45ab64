/*
 * The GCS's cluster view for the scheduler library: where actors and placement groups go.
 *
 * Alive nodes enter with their registration (totals, labels; per-GPU memory from label
 * rayc.io/gpu-memory, accelerator type from ray.io/accelerator-type and price from
 * rayc.io/price-per-hour, which the scheduler reads itself) and leave when they die. Each
 * raylet report sets the node's availability, and its totals when they changed. Bundle
 * resources ("CPU_group_<i>_<pg>", "CPU_group_<pg>") are left out: they would intern a
 * name per group forever, and the GCS places work inside a group through the group's own
 * bundle table instead. The managers decide with this view and take what they place from
 * it (sched_node_allocate) so that one pass does not send everything to the same node; the
 * next report from that raylet says what is really free.
 *
 * Nodes the autoscaler service holds out (drained, or awaiting or failing verification:
 * gcs_autoscaler_excluded) are draining here whatever their raylets report, and their last
 * report says so too (is_draining), so raylets keep work off them as well.
 *
 * Every change tells the actor and placement-group managers, which retry what waits.
 *
 * Loop thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_int.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_time.h"
#include "sched_proto.h"

#define GCS__GPU_MEMORY_LABEL "rayc.io/gpu-memory"
#define GCS__ACCEL_PREFIX "accelerator_type:"

struct gcs_view {
    gcs_server *gcs;
    sched_view *sv;
    sched_rng rng;
    rc_map totals; /* node id -> char * (owned): canonical text of the totals last applied */
};

sched_view *gcs_view_sched(gcs_view *v)
{
    return v->sv;
}

sched_rng *gcs_view_rng(gcs_view *v)
{
    return &v->rng;
}

static void gcs__view_changed(gcs_view *v, int nodes_changed)
{
    if (v->gcs->actors)
        gcs_actor_manager_kick(v->gcs->actors, nodes_changed);
    if (v->gcs->pgs)
        gcs_pg_manager_kick(v->gcs->pgs, nodes_changed);
}

static int gcs__by_name(const void *a, const void *b)
{
    return strcmp(((const sched_named_amount *)a)->name, ((const sched_named_amount *)b)->name);
}

/* The node's non-bundle totals (sorted by name, in *res, freed by the caller) and their
 * canonical text (a new string). */
static char *gcs__totals(const gcs_res_entry *const *entries, size_t n, sched_named_amount **res,
                         size_t *n_res)
{
    *res = rc_calloc(n + 1, sizeof(**res));
    *n_res = 0;
    for (size_t i = 0; i < n; i++)
        if (entries[i]->key && !sched_bundle_name_reserved(entries[i]->key))
            (*res)[(*n_res)++] = (sched_named_amount){entries[i]->key, entries[i]->value};
    qsort(*res, *n_res, sizeof(**res), gcs__by_name);
    rc_buf text = RC_BUF_INIT;
    for (size_t i = 0; i < *n_res; i++)
        rc_buf_printf(&text, "%s=%.17g;", (*res)[i].name, (*res)[i].amount);
    return rc_buf_detach(&text);
}

/* Adds or updates the node with the given totals and info's labels. */
static void gcs__apply_node(gcs_view *v, const Ray__Rpc__GcsNodeInfo *info, const gcs_res_entry *const *totals,
                            size_t n_totals)
{
    const uint8_t *id = info->node_id.data;
    sched_named_amount *res;
    size_t n_res;
    char *text = gcs__totals(totals, n_totals, &res, &n_res);
    sched_node *node = sched_view_find(v->sv, id);
    char *old = rc_map_get(&v->totals, id, RC_NODE_ID_SIZE);
    if (node && old && !strcmp(old, text)) {
        rc_free(text);
        rc_free(res);
        return;
    }
    sched_label *labels = rc_calloc(info->n_labels + 1, sizeof(*labels));
    uint64_t gpu_memory = 0;
    for (size_t i = 0; i < info->n_labels; i++) {
        labels[i] = (sched_label){info->labels[i]->key, info->labels[i]->value};
        if (!strcmp(info->labels[i]->key, GCS__GPU_MEMORY_LABEL))
            gpu_memory = strtoull(info->labels[i]->value, NULL, 10);
    }
    sched_node_spec spec;
    sched_node_spec_init(&spec);
    spec.resources = res;
    spec.n_resources = n_res;
    spec.labels = labels;
    spec.n_labels = info->n_labels;
    if (gpu_memory) {
        spec.gpu_memory = &gpu_memory;
        spec.n_gpu_memory = 1;
    }
    sched_err e;
    int rc = node ? sched_view_update_node(v->sv, node, &spec, &e) : sched_view_add_node(v->sv, id, &spec, NULL, &e);
    rc_free(labels);
    rc_free(res);
    if (rc < 0) {
        char hex[RC_ID_HEX_MAX];
        RC_WARN("gcs: node %.16s cannot enter the scheduler's view: %s", rc_id_hex(id, RC_NODE_ID_SIZE, hex), e.msg);
        rc_free(text);
        return;
    }
    rc_free(rc_map_put(&v->totals, id, RC_NODE_ID_SIZE, text));
}

void gcs_view_node_added(gcs_view *v, const Ray__Rpc__GcsNodeInfo *node)
{
    if (node->node_id.len != RC_NODE_ID_SIZE)
        return;
    gcs__apply_node(v, node, (const gcs_res_entry *const *)node->resources_total, node->n_resources_total);
    sched_node *sn = sched_view_find(v->sv, node->node_id.data);
    if (sn && v->gcs->autoscaler)
        sched_node_set_draining(v->sv, sn, gcs_autoscaler_excluded(v->gcs->autoscaler, node, NULL));
    gcs__view_changed(v, 1);
}

void gcs_view_node_removed(gcs_view *v, const uint8_t *id)
{
    sched_node *node = sched_view_find(v->sv, id);
    if (node)
        sched_view_remove_node(v->sv, node);
    rc_free(rc_map_remove(&v->totals, id, RC_NODE_ID_SIZE));
    if (v->gcs->autoscaler)
        gcs_autoscaler_on_node_removed(v->gcs->autoscaler, id);
    gcs__view_changed(v, 1);
}

void gcs_view_set_draining(gcs_view *v, const uint8_t *id, int draining, int64_t deadline_ms)
{
    sched_node *node = sched_view_find(v->sv, id);
    if (node)
        sched_node_set_draining(v->sv, node, draining);
    gcs_resource_set_draining(v->gcs->res, id, draining, deadline_ms);
    gcs__view_changed(v, 1);
}

void gcs_view_report(gcs_view *v, const Ray__Rpc__ResourcesData *d)
{
    const Ray__Rpc__GcsNodeInfo *info = gcs_node_get_alive(v->gcs->nodes, d->node_id.data);
    if (!info)
        return;
    if (d->n_resources_total)
        gcs__apply_node(v, info, (const gcs_res_entry *const *)d->resources_total, d->n_resources_total);
    sched_node *node = sched_view_find(v->sv, d->node_id.data);
    if (!node)
        return;
    sched_named_amount *avail = rc_calloc(d->n_resources_available + 1, sizeof(*avail));
    size_t n = 0;
    for (size_t i = 0; i < d->n_resources_available; i++) {
        const char *name = d->resources_available[i]->key;
        if (name && !sched_bundle_name_reserved(name))
            avail[n++] = (sched_named_amount){name, d->resources_available[i]->value};
    }
    sched_err e;
    if (sched_node_report_available(v->sv, node, avail, n, &e) < 0)
        RC_DEBUG("gcs: a resource report does not fit the view: %s", e.msg);
    rc_free(avail);
    int64_t deadline = 0;
    int excluded = v->gcs->autoscaler && gcs_autoscaler_excluded(v->gcs->autoscaler, info, &deadline);
    if (excluded) /* the stored report is what GetAllResourceUsage hands raylets */
        gcs_resource_set_draining(v->gcs->res, d->node_id.data, 1, deadline);
    sched_node_set_draining(v->sv, node, d->is_draining || excluded);
    if (v->gcs->autoscaler)
        gcs_autoscaler_on_report(v->gcs->autoscaler, d);
    gcs__view_changed(v, 0);
}

/* ---- requests ----------------------------------------------------------------------- */

int gcs_view_check_resources(const gcs_res_entry *const *entries, size_t n, const char *what, char *err,
                             size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = entries[i]->key;
        if (!sched_proto_name_ok(name)) {
            snprintf(err, errlen, "%s: \"%.64s\" is not a resource name (1-%d printable characters, no spaces)",
                     what, name ? name : "", SCHED_PROTO_MAX_NAME);
            return RC_EINVAL;
        }
        sched_amount a;
        sched_err e;
        if (!strncmp(name, GCS__ACCEL_PREFIX, strlen(GCS__ACCEL_PREFIX))) {
            if (!isfinite(entries[i]->value) || entries[i]->value < 0) {
                snprintf(err, errlen, "%s: %s has amount %g; it must be a number >= 0", what, name, entries[i]->value);
                return RC_EINVAL;
            }
        } else if (sched_amount_from_double(name, entries[i]->value, &a, &e) < 0) {
            snprintf(err, errlen, "%s: %s", what, e.msg);
            return RC_EINVAL;
        }
    }
    return 0;
}

static int gcs__set_resources(gcs_view *v, const gcs_res_entry *const *entries, size_t n, sched_request *r, char *err,
                              size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = entries[i]->key;
        double amount = entries[i]->value;
        sched_err e;
        if (!sched_proto_name_ok(name)) {
            snprintf(err, errlen, "\"%.64s\" is not a resource name", name ? name : "");
            return RC_EINVAL;
        }
        if (!strncmp(name, GCS__ACCEL_PREFIX, strlen(GCS__ACCEL_PREFIX))) {
            if (!isfinite(amount) || amount < 0) {
                snprintf(err, errlen, "%s has amount %g; it must be a number >= 0", name, amount);
                return RC_EINVAL;
            }
            if (amount > 0 && sched_request_set_accelerator_type(v->sv, r, name + strlen(GCS__ACCEL_PREFIX), &e) < 0) {
                snprintf(err, errlen, "%s", e.msg);
                return RC_EINVAL;
            }
        } else if (sched_request_set(v->sv, r, name, amount, &e) < 0) {
            snprintf(err, errlen, "%s", e.msg);
            return RC_EINVAL;
        }
    }
    return 0;
}

int gcs_view_build_request(gcs_view *v, const gcs_res_entry *const *entries, size_t n,
                           const Ray__Rpc__LabelSelector *selector, const Ray__Rpc__SchedulingStrategy *strategy,
                           const Rayc__Rpc__SchedulingExtras *extras, gcs_sched_req *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->sv = v->sv;
    sched_request_init(&out->req);
    sched_options_init(&out->opts);
    int rc = gcs__set_resources(v, entries, n, &out->req, err, errlen);
    if (!rc && extras) {
        if (!isfinite(extras->cost_weight) || extras->cost_weight < 0) {
            snprintf(err, errlen, "rayc_extras.cost_weight %g must be a finite number >= 0", extras->cost_weight);
            return RC_EINVAL;
        }
        out->opts.cost_weight = extras->cost_weight;
        out->req.gpu_memory = extras->gpu_memory;
        if (extras->cost_strategy)
            out->opts.strategy = SCHED_STRATEGY_COST;
    }
    if (!rc)
        rc = sched_proto_strategy(strategy, &out->opts, &out->hard, &out->soft, err, errlen);
    if (!rc && (rc = sched_proto_label_selector(selector, &out->selector, err, errlen)) == 0 && out->selector)
        out->req.selector = out->selector;
    return rc;
}

int gcs_view_bundle_request(gcs_view *v, const Ray__Rpc__Bundle *b, gcs_sched_req *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->sv = v->sv;
    sched_request_init(&out->req);
    sched_options_init(&out->opts);
    int rc = gcs__set_resources(v, (const gcs_res_entry *const *)b->unit_resources, b->n_unit_resources, &out->req,
                                err, errlen);
    if (rc < 0 || !b->n_label_selector)
        return rc;
    out->selector = sched_selector_new();
    for (size_t i = 0; i < b->n_label_selector; i++) {
        sched_err e;
        if (sched_selector_add(out->selector, b->label_selector[i]->key, b->label_selector[i]->value, &e) < 0) {
            snprintf(err, errlen, "label_selector: %s", e.msg);
            return RC_EINVAL;
        }
    }
    out->req.selector = out->selector;
    return 0;
}

void gcs_sched_req_clear(gcs_sched_req *r)
{
    if (r->sv)
        sched_request_release(r->sv, &r->req);
    sched_selector_free(r->selector);
    sched_selector_free(r->hard);
    sched_selector_free(r->soft);
    r->selector = r->hard = r->soft = NULL;
    r->req.selector = NULL;
}

/* ---- lifetime ----------------------------------------------------------------------- */

gcs_view *gcs_view_new(gcs_server *gcs)
{
    gcs_view *v = RC_NEW(gcs_view);
    v->gcs = gcs;
    v->sv = sched_view_new(NULL);
    sched_rng_seed(&v->rng, (uint64_t)rc_mono_ns());
    rc_map_init(&v->totals);
    return v;
}

void gcs_view_free(gcs_view *v)
{
    if (!v)
        return;
    sched_view_free(v->sv);
    rc_map_destroy(&v->totals, rc_free);
    rc_free(v);
}
