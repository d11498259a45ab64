/*
 * Scheduling classes: a LeaseSpec turned into what the scheduler library takes (see
 * lease_int.h), with a sentence for every malformed field.
 *
 * Conversion (Ray's meaning of each field):
 *   required_resources   sched_request_set per entry (Ray's amount rules: finite, >= 0, at
 *                        most 0.0001 precision, whole above 1); "accelerator_type:<T>" is
 *                        Ray's accelerator_type option and becomes
 *                        sched_request_set_accelerator_type(T) whatever its amount; what
 *                        the lease holds, and where it goes unless:
 *   required_placement_resources  for ACTOR_CREATION_TASK, when not empty: where it goes;
 *   scheduling_strategy  DEFAULT (COST when rayc_extras.cost_strategy), SPREAD,
 *                        NODE_AFFINITY (28-byte node ID, soft, spill/fail_on_unavailable),
 *                        NODE_LABEL (hard/soft expressions), PLACEMENT_GROUP (18-byte group
 *                        ID, bundle index >= -1: scheduled as DEFAULT over the renamed
 *                        bundle resources, which only nodes holding the group's bundles
 *                        have);
 *   label_selector       a hard selector (In / NotIn constraints);
 *   rayc_extras          cost_weight, gpu_memory.
 *
 * The class key is canonical where protobuf encoding is not (map order): resources sorted
 * by name with their fixed-point amounts, the task type and placement resources (actor
 * creations), then the packed strategy, selector and extras.
 *
 * Loop thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_manager.h"
#include "lease_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rpc.h"
#include "sched_proto.h"

#define LEASE__ACCEL_PREFIX "accelerator_type:"

static int lease__fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int lease__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return RC_EINVAL;
}

static int lease__by_key(const void *a, const void *b)
{
    const Ray__Rpc__LeaseSpec__RequiredResourcesEntry *x = *(void *const *)a, *y = *(void *const *)b;
    return strcmp(x->key, y->key);
}

static void lease__append_packed(rc_buf *key, char tag, const ProtobufCMessage *m)
{
    rc_buf_putc(key, '|');
    rc_buf_putc(key, tag);
    if (!m)
        return;
    size_t len;
    uint8_t *bytes = rpc_msg_pack(m, &len);
    rc_buf_hex(key, bytes, len);
    rc_free(bytes);
}

/* Appends the entries sorted by name with their fixed-point amounts (zeros left out).
 * Returns 0 or RC_EINVAL with err (an amount that is not a number in range). */
static int lease__key_resources(rc_buf *key, Ray__Rpc__LeaseSpec__RequiredResourcesEntry *const *entries, size_t n,
                                char *err, size_t errlen)
{
    Ray__Rpc__LeaseSpec__RequiredResourcesEntry **sorted = rc_malloc((n ? n : 1) * sizeof(*sorted));
    if (n)
        memcpy(sorted, entries, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), lease__by_key);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        double v = sorted[i]->value;
        if (!isfinite(v) || fabs(v) > 1e15) {
            rc = lease__fail(err, errlen, "resource '%s': amount %g is not a finite number in range", sorted[i]->key, v);
            break;
        }
        if (v == 0)
            continue;
        rc_buf_printf(key, "%s=%lld;", sorted[i]->key, (long long)llround(v * 10000.0));
    }
    rc_free(sorted);
    return rc;
}

/* An actor creation with placement resources is placed by them. */
static int lease__has_placement(const Ray__Rpc__LeaseSpec *spec)
{
    return spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK && spec->n_required_placement_resources > 0;
}

int lease__class_key(const Ray__Rpc__LeaseSpec *spec, rc_buf *key, char *err, size_t errlen)
{
    int rc = lease__key_resources(key, spec->required_resources, spec->n_required_resources, err, errlen);
    if (rc < 0)
        return rc;
    if (spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK) {
        rc_buf_puts(key, "|A");
        /* Same layout: both are map<string, double> entries. */
        if ((rc = lease__key_resources(key, (Ray__Rpc__LeaseSpec__RequiredResourcesEntry *const *)spec->required_placement_resources,
                                       spec->n_required_placement_resources, err, errlen)) < 0)
            return rc;
    }
    lease__append_packed(key, 'S', spec->scheduling_strategy ? &spec->scheduling_strategy->base : NULL);
    lease__append_packed(key, 'L', spec->label_selector ? &spec->label_selector->base : NULL);
    lease__append_packed(key, 'X', spec->rayc_extras ? &spec->rayc_extras->base : NULL);
    return 0;
}

/* Sets name = amount in r (and in the demand shape when shape is set). Returns 0 or
 * RC_EINVAL with err naming field. */
static int lease__put(sched_view *v, lease_class *c, sched_request *r, int shape, const char *field, const char *name,
                      double amount, char *err, size_t errlen)
{
    sched_err e;
    if (sched_request_set(v, r, name, amount, &e) < 0)
        return lease__fail(err, errlen, "%s: %s", field, e.msg);
    if (shape && amount != 0) {
        c->shape_names[c->n_shape] = rc_strdup(name);
        c->shape_amounts[c->n_shape++] = amount;
    }
    return 0;
}

/* Adds the entries to r (see the file comment); shape: they are also the demand shape.
 * A placement-group lease's resources are renamed for its group and get Ray's bundle
 * label. Returns 0 or RC_EINVAL with err. */
static int lease__add_resources(sched_view *v, lease_class *c, sched_request *r, int shape, const char *field,
                                Ray__Rpc__LeaseSpec__RequiredResourcesEntry *const *entries, size_t n, char *err,
                                size_t errlen)
{
    if (shape) {
        c->shape_names = rc_calloc(2 * n + 3, sizeof(char *));
        c->shape_amounts = rc_calloc(2 * n + 3, sizeof(double));
    }
    double cpus = 0;
    int has_label = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = entries[i]->key;
        double amount = entries[i]->value;
        if (!sched_proto_name_ok(name))
            return lease__fail(err, errlen, "%s: \"%.64s\" is not a resource name (1-%d printable characters, no spaces)",
                               field, name, SCHED_PROTO_MAX_NAME);
        if (!strncmp(name, LEASE__ACCEL_PREFIX, strlen(LEASE__ACCEL_PREFIX))) {
            if (!isfinite(amount) || amount < 0)
                return lease__fail(err, errlen, "%s: %s has amount %g; it must be a number >= 0", field, name, amount);
            if (amount == 0)
                continue;
            sched_err e;
            if (sched_request_set_accelerator_type(v, r, name + strlen(LEASE__ACCEL_PREFIX), &e) < 0)
                return lease__fail(err, errlen, "%s: %s", field, e.msg);
            if (shape) {
                c->shape_names[c->n_shape] = rc_strdup(name);
                c->shape_amounts[c->n_shape++] = amount;
            }
            continue;
        }
        sched_bundle_name bn;
        int is_bundle = sched_bundle_name_parse(name, &bn) == 0;
        const char *base = is_bundle ? bn.base : name;
        if (!strcmp(base, "CPU") && amount > cpus)
            cpus = amount;
        has_label |= is_bundle && !strcmp(bn.base, BUNDLE_LABEL_RESOURCE);
        int rc;
        if (!c->has_pg || is_bundle) {
            rc = lease__put(v, c, r, shape, field, name, amount, err, errlen);
        } else {
            /* Ray's AddPlacementGroupConstraint: R -> R_group_<pghex> (+ R_group_<i>_<pghex>). */
            char renamed[SCHED_PROTO_MAX_NAME + 80];
            sched_bundle_name_format(name, c->pg_id, -1, renamed, sizeof(renamed));
            rc = lease__put(v, c, r, shape, field, renamed, amount, err, errlen);
            if (!rc && c->pg_index >= 0) {
                sched_bundle_name_format(name, c->pg_id, c->pg_index, renamed, sizeof(renamed));
                rc = lease__put(v, c, r, shape, field, renamed, amount, err, errlen);
            }
        }
        if (rc < 0)
            return rc;
    }
    if (c->has_pg && !has_label) {
        char label[SCHED_PROTO_MAX_NAME + 80];
        int rc = lease__put(v, c, r, shape, field, sched_bundle_name_format(BUNDLE_LABEL_RESOURCE, c->pg_id, -1, label, sizeof(label)),
                            BUNDLE_LABEL_REQUEST, err, errlen);
        if (!rc && c->pg_index >= 0)
            rc = lease__put(v, c, r, shape, field,
                            sched_bundle_name_format(BUNDLE_LABEL_RESOURCE, c->pg_id, c->pg_index, label, sizeof(label)),
                            BUNDLE_LABEL_REQUEST, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (r == &c->hold) {
        double plain = (double)sched_request_get(r, SCHED_CPU) / (double)SCHED_UNIT;
        c->cpus = plain > cpus ? plain : cpus;
    }
    return 0;
}

/* c->hold from required_resources, c->req from the placement resources or the same. */
static int lease__set_resources(sched_view *v, const Ray__Rpc__LeaseSpec *spec, lease_class *c, char *err,
                                size_t errlen)
{
    int placement = lease__has_placement(spec);
    int rc = lease__add_resources(v, c, &c->hold, !placement, "required_resources", spec->required_resources,
                                  spec->n_required_resources, err, errlen);
    if (rc < 0)
        return rc;
    if (placement) {
        rc = lease__add_resources(v, c, &c->req, 1, "required_placement_resources",
                                  (Ray__Rpc__LeaseSpec__RequiredResourcesEntry *const *)spec->required_placement_resources,
                                  spec->n_required_placement_resources, err, errlen);
        if (rc < 0)
            return rc;
    } else {
        uint64_t gpu_memory = c->req.gpu_memory;
        c->req = c->hold;
        sched_request_retain(v, &c->req);
        c->req.gpu_memory = gpu_memory;
    }
    c->hold.gpu_memory = c->req.gpu_memory;
    for (uint32_t i = 0; i < c->hold.n && !c->hold_bundles; i++) {
        sched_bundle_name bn;
        const char *name = sched_view_resource_name(v, c->hold.id[i]);
        c->hold_bundles = name && sched_bundle_name_parse(name, &bn) == 0;
    }
    return 0;
}

static int lease__set_strategy(const Ray__Rpc__LeaseSpec *spec, lease_class *c, char *err, size_t errlen)
{
    const Ray__Rpc__SchedulingStrategy *st = spec->scheduling_strategy;
    const Rayc__Rpc__SchedulingExtras *x = spec->rayc_extras;
    sched_options_init(&c->opts);
    if (x) {
        if (!isfinite(x->cost_weight) || x->cost_weight < 0)
            return lease__fail(err, errlen, "rayc_extras.cost_weight %g must be a finite number >= 0", x->cost_weight);
        c->opts.cost_weight = x->cost_weight;
        c->req.gpu_memory = x->gpu_memory;
        if (x->cost_strategy)
            c->opts.strategy = SCHED_STRATEGY_COST;
    }
    if (st && st->scheduling_strategy_case ==
                  RAY__RPC__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PLACEMENT_GROUP_SCHEDULING_STRATEGY) {
        const Ray__Rpc__PlacementGroupSchedulingStrategy *pg = st->placement_group_scheduling_strategy;
        if (pg->placement_group_id.len != RC_PG_ID_SIZE)
            return lease__fail(err, errlen,
                               "placement group scheduling: placement_group_id holds %zu bytes; a placement group ID "
                               "has %d",
                               pg->placement_group_id.len, RC_PG_ID_SIZE);
        if (pg->placement_group_bundle_index < -1 || pg->placement_group_bundle_index > INT32_MAX)
            return lease__fail(err, errlen,
                               "placement group scheduling: placement_group_bundle_index %lld is neither a bundle "
                               "index nor -1 (any bundle)",
                               (long long)pg->placement_group_bundle_index);
        c->has_pg = 1;
        memcpy(c->pg_id, pg->placement_group_id.data, RC_PG_ID_SIZE);
        c->pg_index = pg->placement_group_bundle_index;
        return 0;
    }
    int rc = sched_proto_strategy(st, &c->opts, &c->label_hard, &c->label_soft, err, errlen);
    c->hard_affinity = c->opts.strategy == SCHED_STRATEGY_NODE_AFFINITY && !c->opts.affinity_soft;
    return rc;
}

static int lease__set_selector(const Ray__Rpc__LeaseSpec *spec, lease_class *c, char *err, size_t errlen)
{
    if (sched_proto_label_selector(spec->label_selector, &c->selector, err, errlen) < 0)
        return RC_EINVAL;
    if (!c->selector)
        return 0;
    c->req.selector = c->selector;
    c->label_selector = (Ray__Rpc__LabelSelector *)rpc_msg_dup(&spec->label_selector->base);
    return 0;
}

int lease__class_parse(sched_view *v, const Ray__Rpc__LeaseSpec *spec, lease_class **out, char *err, size_t errlen)
{
    lease_class *c = RC_NEW(lease_class);
    rc_list_init(&c->queue);
    sched_request_init(&c->req);
    sched_request_init(&c->hold);
    c->view = v;
    c->actor = spec->type == RAY__RPC__TASK_TYPE__ACTOR_CREATION_TASK;
    rc_buf key = RC_BUF_INIT;
    int rc = lease__class_key(spec, &key, err, errlen);
    if (!rc) /* first: a placement group renames the resources */
        rc = lease__set_strategy(spec, c, err, errlen);
    if (!rc)
        rc = lease__set_resources(v, spec, c, err, errlen);
    if (!rc)
        rc = lease__set_selector(spec, c, err, errlen);
    c->klen = key.len;
    c->key = rc_buf_detach(&key);
    if (rc < 0) {
        lease__class_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void lease__class_free(lease_class *c)
{
    if (!c)
        return;
    sched_request_release(c->view, &c->req);
    sched_request_release(c->view, &c->hold);
    for (size_t i = 0; i < c->n_shape; i++)
        rc_free(c->shape_names[i]);
    rc_free(c->shape_names);
    rc_free(c->shape_amounts);
    sched_selector_free(c->selector);
    sched_selector_free(c->label_hard);
    sched_selector_free(c->label_soft);
    rpc_msg_free(c->label_selector ? &c->label_selector->base : NULL);
    rc_free(c->key);
    rc_free(c);
}
