/*
 * sched_view.c: the cluster view (nodes keyed by NodeID) and its index.
 *
 * Resource names are interned per view: CPU, GPU, memory and object_store_memory are IDs
 * 0..3 and custom names get a free ID, so sets are small sorted arrays and a check compares
 * integers. Custom names are reference-counted: each node holds one on each of its custom
 * resources, each request entry set by name holds one, and sched_view_resource_id hands its
 * caller one. The last release frees the name and its ID goes to the back of a free queue,
 * so a cluster that churns placement groups (whose bundles bring names like
 * CPU_group_<i>_<pg>) keeps a registry as large as the names in use, not all ever seen.
 *
 * The index answers "which nodes could possibly fit this request" without scanning them
 * all: a bucket per resource ID lists the nodes whose *total* has that resource, a bucket
 * per label key=value lists the nodes carrying it, and v->nongpu lists GPU-less nodes (for
 * Ray's GPU avoidance). A policy scans the smallest bucket the request implies: a GPU task
 * on a cluster where 5% of nodes have GPUs looks at those 5%. Buckets change only when
 * totals or labels change (rare); availability updates touch just the node (and its cached
 * utilization), which is what makes the once-a-second-per-node reports cheap. Empty label
 * buckets are dropped so long-lived views stay bounded by the labels in use.
 *
 * Invariants: see sched_int.h. Single-threaded: the view's owner only.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_alloc.h"
#include "rc_err.h"
#include "sched_int.h"

static const char *const predefined_names[SCHED_N_PREDEFINED] = {"CPU", "GPU", "memory",
                                                                 "object_store_memory"};
#define ACCEL_LABEL "ray.io/accelerator-type"
#define PRICE_LABEL "rayc.io/price-per-hour"
#define ACCEL_PREFIX "accelerator_type:"

static void set_err(sched_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(sched_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void sched_view_config_default(sched_view_config *cfg)
{
    cfg->spread_threshold = 0.5;
    cfg->top_k_fraction = 0.2;
    cfg->top_k_absolute = 1;
    cfg->avoid_gpu_nodes = 1;
    cfg->bundle_sample = 16;
}

/* ---- index lists ---- */

static uint32_t list_push(sched__list *l, sched_node *n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->items = rc_realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n] = n;
    return l->n++;
}

/* Removes entry pos by moving the last entry into it; returns the moved node (whose
 * position field the caller updates) or NULL when pos was last. */
static sched_node *list_swap_remove(sched__list *l, uint32_t pos)
{
    sched_node *last = l->items[--l->n];
    if (pos == l->n)
        return NULL;
    l->items[pos] = last;
    return last;
}

static void list_free(sched__list *l)
{
    rc_free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* ---- registry ---- */

/* Makes room for ids up to cap_res_names (all per-id arrays grow together). */
static void registry_grow(sched_view *v)
{
    uint32_t old = v->cap_res_names, cap = old ? 2 * old : 16;
    v->res_names = rc_realloc(v->res_names, cap * sizeof(*v->res_names));
    v->res_refs = rc_realloc(v->res_refs, cap * sizeof(*v->res_refs));
    v->buckets = rc_realloc(v->buckets, cap * sizeof(*v->buckets));
    memset(&v->buckets[old], 0, (cap - old) * sizeof(*v->buckets));
    /* The free ring is unrolled into the new array, oldest first. */
    uint32_t *ring = rc_malloc(cap * sizeof(*ring));
    for (uint32_t i = 0; i < v->free_len; i++)
        ring[i] = v->free_ids[(v->free_head + i) % old];
    rc_free(v->free_ids);
    v->free_ids = ring;
    v->free_head = 0;
    v->cap_res_names = cap;
}

uint32_t sched__intern(sched_view *v, const char *name)
{
    void *got = rc_map_get_str(&v->res_ids, name);
    if (got)
        return (uint32_t)((uintptr_t)got - 1);
    uint32_t id;
    if (v->free_len) {
        /* The id freed longest ago: a stale copy of a just-freed id is the likelier
         * mistake, so it is handed out last. */
        id = v->free_ids[v->free_head];
        v->free_head = (v->free_head + 1) % v->cap_res_names;
        v->free_len--;
    } else {
        if (v->n_res_names == v->cap_res_names)
            registry_grow(v);
        id = v->n_res_names++;
    }
    v->res_names[id] = rc_strdup(name);
    v->res_refs[id] = 0;
    v->n_live_names++;
    rc_map_put_str(&v->res_ids, name, (void *)(uintptr_t)(id + 1));
    return id;
}

void sched__resource_drop_unused(sched_view *v, uint32_t id)
{
    if (id < SCHED_N_PREDEFINED || id >= v->n_res_names || !v->res_names[id] || v->res_refs[id])
        return;
    /* Nothing refers to it, so no node has it: its bucket is empty. */
    rc_map_remove(&v->res_ids, v->res_names[id], strlen(v->res_names[id]));
    rc_free(v->res_names[id]);
    v->res_names[id] = NULL;
    list_free(&v->buckets[id]);
    v->n_live_names--;
    v->free_ids[(v->free_head + v->free_len) % v->cap_res_names] = id;
    v->free_len++;
}

int sched_view_resource_id(sched_view *v, const char *name, uint32_t *out)
{
    if (!name || !*name)
        return RC_EINVAL;
    *out = sched__intern(v, name);
    sched_view_resource_retain(v, *out);
    return 0;
}

int sched_view_resource_find(const sched_view *v, const char *name, uint32_t *out)
{
    void *got = name ? rc_map_get_str(&v->res_ids, name) : NULL;
    if (!got)
        return RC_ENOENT;
    *out = (uint32_t)((uintptr_t)got - 1);
    return 0;
}

void sched_view_resource_retain(sched_view *v, uint32_t id)
{
    if (id >= SCHED_N_PREDEFINED && id < v->n_res_names && v->res_names[id])
        v->res_refs[id]++;
}

void sched_view_resource_release(sched_view *v, uint32_t id)
{
    if (id < SCHED_N_PREDEFINED || id >= v->n_res_names || !v->res_names[id] || !v->res_refs[id])
        return;
    if (!--v->res_refs[id])
        sched__resource_drop_unused(v, id);
}

size_t sched_view_resource_count(const sched_view *v)
{
    return v->n_live_names;
}

uint32_t sched_view_resource_refs(const sched_view *v, uint32_t id)
{
    if (id >= v->n_res_names || !v->res_names[id])
        return 0;
    return id < SCHED_N_PREDEFINED ? UINT32_MAX : v->res_refs[id];
}

const char *sched_view_resource_name(const sched_view *v, uint32_t id)
{
    return id < v->n_res_names ? v->res_names[id] : NULL;
}

/* ---- view ---- */

sched_view *sched_view_new(const sched_view_config *cfg)
{
    sched_view *v = RC_NEW(sched_view);
    if (cfg)
        v->cfg = *cfg;
    else
        sched_view_config_default(&v->cfg);
    if (v->cfg.top_k_absolute < 1)
        v->cfg.top_k_absolute = 1;
    /* A fraction outside [0, 1] (or NaN) would make k meaningless; clamp it. */
    if (!(v->cfg.top_k_fraction >= 0))
        v->cfg.top_k_fraction = 0;
    if (v->cfg.top_k_fraction > 1)
        v->cfg.top_k_fraction = 1;
    rc_map_init(&v->res_ids);
    rc_map_init(&v->label_buckets);
    rc_map_init(&v->by_id);
    for (int i = 0; i < SCHED_N_PREDEFINED; i++)
        sched__intern(v, predefined_names[i]);
    return v;
}

static void node_free_contents(sched_node *n)
{
    rc_free(n->res);
    rc_free(n->gpu_avail);
    rc_free(n->gpu_mem);
    for (uint32_t i = 0; i < n->n_labels; i++) {
        rc_free(n->labels[i].key);
        rc_free(n->labels[i].value);
    }
    rc_free(n->labels);
    rc_free(n->accel);
}

static void free_bucket(void *p)
{
    sched__list *l = p;
    list_free(l);
    rc_free(l);
}

void sched_view_free(sched_view *v)
{
    if (!v)
        return;
    for (uint32_t i = 0; i < v->nodes.n; i++) {
        node_free_contents(v->nodes.items[i]);
        rc_free(v->nodes.items[i]);
    }
    list_free(&v->nodes);
    list_free(&v->nongpu);
    for (uint32_t i = 0; i < v->n_res_names; i++) {
        rc_free(v->res_names[i]);
        list_free(&v->buckets[i]);
    }
    rc_free(v->res_names);
    rc_free(v->res_refs);
    rc_free(v->free_ids);
    rc_free(v->buckets);
    rc_map_destroy(&v->res_ids, NULL);
    rc_map_destroy(&v->label_buckets, free_bucket);
    rc_map_destroy(&v->by_id, NULL);
    rc_free(v->scratch);
    rc_free(v->b_allocs);
    rc_free(v->b_nodes);
    rc_free(v->b_order);
    rc_free(v);
}

void sched__scratch_reserve(sched_view *v, uint32_t n)
{
    if (n <= v->scratch_cap)
        return;
    uint32_t cap = v->scratch_cap ? v->scratch_cap : 64;
    while (cap < n)
        cap *= 2;
    v->scratch = rc_realloc(v->scratch, cap * sizeof(*v->scratch));
    v->scratch_cap = cap;
}

uint32_t sched__top_k(const sched_view *v)
{
    uint32_t k = (uint32_t)((double)v->n_usable * v->cfg.top_k_fraction);
    if (k < v->cfg.top_k_absolute)
        k = v->cfg.top_k_absolute;
    return k ? k : 1;
}

double sched__max_price(sched_view *v)
{
    if (v->max_price_dirty) {
        double m = 0;
        for (uint32_t i = 0; i < v->nodes.n; i++)
            if (v->nodes.items[i]->price > m)
                m = v->nodes.items[i]->price;
        v->max_price = m;
        v->max_price_dirty = 0;
    }
    return v->max_price;
}

/* ---- per-node index membership ---- */

static uint32_t *res_pos(sched_node *n, uint32_t id)
{
    if (id < SCHED_N_PREDEFINED)
        return &n->pre_pos[id];
    return &sched__node_res(n, id)->bucket_pos;
}

static void label_key(const char *key, const char *value, char *buf, size_t cap, size_t *len)
{
    size_t kl = strlen(key), vl = strlen(value);
    /* Keys and values are validated (<= 253 + 1 + 63 and 63 bytes), so they fit. */
    if (kl + 1 + vl > cap) {
        kl = cap / 2;
        vl = cap - kl - 1;
    }
    memcpy(buf, key, kl);
    buf[kl] = '\0';
    memcpy(buf + kl + 1, value, vl);
    *len = kl + 1 + vl;
}

static sched__label *node_label_entry(sched_node *n, const char *key)
{
    uint32_t lo = 0, hi = n->n_labels;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(n->labels[mid].key, key);
        if (!c)
            return &n->labels[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void index_node(sched_view *v, sched_node *n)
{
    for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++)
        if (n->total[r] > 0)
            n->pre_pos[r] = list_push(&v->buckets[r], n);
    for (uint32_t i = 0; i < n->n_res; i++)
        n->res[i].bucket_pos = list_push(&v->buckets[n->res[i].id], n);
    if (n->n_gpus)
        v->n_gpu_nodes++;
    else
        n->nongpu_pos = list_push(&v->nongpu, n);
    for (uint32_t i = 0; i < n->n_labels; i++) {
        char buf[512];
        size_t len;
        label_key(n->labels[i].key, n->labels[i].value, buf, sizeof(buf), &len);
        sched__list *b = rc_map_get(&v->label_buckets, buf, len);
        if (!b) {
            b = RC_NEW(sched__list);
            rc_map_put(&v->label_buckets, buf, len, b);
        }
        n->labels[i].bucket = b;
        n->labels[i].bucket_pos = list_push(b, n);
    }
}

static void unindex_node(sched_view *v, sched_node *n)
{
    for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++) {
        if (n->total[r] <= 0)
            continue;
        sched_node *moved = list_swap_remove(&v->buckets[r], n->pre_pos[r]);
        if (moved)
            moved->pre_pos[r] = n->pre_pos[r];
    }
    for (uint32_t i = 0; i < n->n_res; i++) {
        uint32_t id = n->res[i].id;
        sched_node *moved = list_swap_remove(&v->buckets[id], n->res[i].bucket_pos);
        if (moved)
            *res_pos(moved, id) = n->res[i].bucket_pos;
    }
    if (n->n_gpus) {
        v->n_gpu_nodes--;
    } else {
        sched_node *moved = list_swap_remove(&v->nongpu, n->nongpu_pos);
        if (moved)
            moved->nongpu_pos = n->nongpu_pos;
    }
    for (uint32_t i = 0; i < n->n_labels; i++) {
        sched__label *l = &n->labels[i];
        sched_node *moved = list_swap_remove(l->bucket, l->bucket_pos);
        if (moved)
            node_label_entry(moved, l->key)->bucket_pos = l->bucket_pos;
        if (!l->bucket->n) {
            char buf[512];
            size_t len;
            label_key(l->key, l->value, buf, sizeof(buf), &len);
            free_bucket(rc_map_remove(&v->label_buckets, buf, len));
        }
        l->bucket = NULL;
    }
}

/* ---- building a node from a spec ---- */

static int cmp_res(const void *a, const void *b)
{
    uint32_t x = ((const sched__res *)a)->id, y = ((const sched__res *)b)->id;
    return x < y ? -1 : x > y;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const sched__label *)a)->key, ((const sched__label *)b)->key);
}

static const char *spec_label(const sched_node_spec *spec, const char *key)
{
    for (size_t i = 0; i < spec->n_labels; i++)
        if (spec->labels[i].key && !strcmp(spec->labels[i].key, key))
            return spec->labels[i].value;
    return NULL;
}

static int accel_ok(const char *t)
{
    if (!*t || strlen(t) > 63)
        return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* Fills n (zeroed by the caller) from spec with everything available. On failure n holds
 * partial contents the caller frees with node_free_contents. */
static int node_build_(sched_view *v, const sched_node_spec *spec, sched_node *n, sched_err *err)
{
    /* Accelerator type: the spec's, else the label's; they must agree when both given. */
    const char *accel = spec->accelerator_type;
    const char *accel_label = spec_label(spec, ACCEL_LABEL);
    if (accel && accel_label && strcmp(accel, accel_label)) {
        set_err(err, "accelerator_type '%s' disagrees with label %s=%s", accel, ACCEL_LABEL,
                accel_label);
        return RC_EINVAL;
    }
    if (!accel)
        accel = accel_label;
    if (accel && !accel_ok(accel)) {
        set_err(err, "accelerator_type '%s' is invalid: use 1-63 letters, digits, '-', '_' or '.'",
                accel);
        return RC_EINVAL;
    }

    /* Resources. */
    n->res = rc_calloc(spec->n_resources + 1, sizeof(*n->res));
    uint32_t accel_id = SCHED_NO_RESOURCE;
    if (accel) {
        char name[96];
        snprintf(name, sizeof(name), ACCEL_PREFIX "%s", accel);
        accel_id = sched__intern(v, name);
    }
    int accel_listed = 0;
    for (size_t i = 0; i < spec->n_resources; i++) {
        const char *name = spec->resources[i].name;
        double amount = spec->resources[i].amount;
        if (!name || !*name) {
            set_err(err, "node resource %zu has an empty name", i);
            return RC_EINVAL;
        }
        if (!isfinite(amount) || amount < 0 || amount > (double)(SCHED_AMOUNT_MAX / SCHED_UNIT)) {
            set_err(err, "node resource '%s': total %g must be a finite number in [0, %g]", name,
                    amount, (double)(SCHED_AMOUNT_MAX / SCHED_UNIT));
            return RC_EINVAL;
        }
        sched_amount a = (sched_amount)llround(amount * (double)SCHED_UNIT);
        uint32_t id = sched__intern(v, name);
        if (id == SCHED_GPU && a % SCHED_UNIT) {
            set_err(err, "node resource 'GPU': total %g must be a whole number of devices", amount);
            return RC_EINVAL;
        }
        if (id == accel_id)
            accel_listed = 1;
        int dup = id < SCHED_N_PREDEFINED ? n->total[id] != 0 : 0;
        for (uint32_t j = 0; j < n->n_res && !dup; j++)
            dup = n->res[j].id == id;
        if (dup) {
            set_err(err, "node resource '%s' is listed twice", name);
            return RC_EINVAL;
        }
        if (!a) {
            /* Ray drops zero totals: the node doesn't have the resource. */
            sched__resource_drop_unused(v, id);
            continue;
        }
        if (id < SCHED_N_PREDEFINED) {
            n->total[id] = n->avail[id] = a;
        } else {
            n->res[n->n_res].id = id;
            n->res[n->n_res].total = n->res[n->n_res].avail = a;
            n->n_res++;
        }
    }
    if (accel && !accel_listed) {
        n->res[n->n_res].id = accel_id;
        n->res[n->n_res].total = n->res[n->n_res].avail = SCHED_UNIT;
        n->n_res++;
    }
    qsort(n->res, n->n_res, sizeof(*n->res), cmp_res);

    /* GPU instances. */
    sched_amount gpus = n->total[SCHED_GPU] / SCHED_UNIT;
    if (gpus > SCHED_MAX_GPUS) {
        set_err(err, "node resource 'GPU': %lld GPUs is more than the %d instances a node may have",
                (long long)gpus, SCHED_MAX_GPUS);
        return RC_EINVAL;
    }
    n->n_gpus = (uint32_t)gpus;
    if (spec->n_gpu_memory > 1 && spec->n_gpu_memory != n->n_gpus) {
        set_err(err, "node gpu_memory lists %zu values for %u GPUs; give one value or one per GPU",
                spec->n_gpu_memory, n->n_gpus);
        return RC_EINVAL;
    }
    if (n->n_gpus) {
        n->gpu_avail = rc_malloc(n->n_gpus * sizeof(*n->gpu_avail));
        n->gpu_mem = rc_calloc(n->n_gpus, sizeof(*n->gpu_mem));
        for (uint32_t i = 0; i < n->n_gpus; i++) {
            n->gpu_avail[i] = SCHED_UNIT;
            if (spec->n_gpu_memory)
                n->gpu_mem[i] = spec->gpu_memory[spec->n_gpu_memory == 1 ? 0 : i];
        }
    }

    /* Labels (plus the accelerator label Ray's raylet sets). */
    n->labels = rc_calloc(spec->n_labels + 1, sizeof(*n->labels));
    for (size_t i = 0; i < spec->n_labels; i++) {
        const char *key = spec->labels[i].key, *value = spec->labels[i].value;
        int rc = sched__label_key_check(key, err);
        if (!rc && !value) {
            set_err(err, "label '%s' has no value", key);
            rc = RC_EINVAL;
        }
        if (!rc)
            rc = sched__label_value_check(key, value, err);
        if (rc)
            return rc;
        n->labels[n->n_labels].key = rc_strdup(key);
        n->labels[n->n_labels].value = rc_strdup(value);
        n->n_labels++;
    }
    if (accel && !accel_label) {
        n->labels[n->n_labels].key = rc_strdup(ACCEL_LABEL);
        n->labels[n->n_labels].value = rc_strdup(accel);
        n->n_labels++;
    }
    qsort(n->labels, n->n_labels, sizeof(*n->labels), cmp_label);
    for (uint32_t i = 1; i < n->n_labels; i++) {
        if (!strcmp(n->labels[i].key, n->labels[i - 1].key)) {
            set_err(err, "label '%s' is given twice", n->labels[i].key);
            return RC_EINVAL;
        }
    }
    n->accel = accel ? rc_strdup(accel) : NULL;

    /* Price: explicit, else the market label, else 0 (an owned host costs nothing more). */
    double price = spec->price_per_hour;
    if (isnan(price)) {
        const char *pl = spec_label(spec, PRICE_LABEL);
        price = 0;
        if (pl) {
            char *end;
            price = strtod(pl, &end);
            if (end == pl || *end) {
                set_err(err, "label %s=%s is not a number", PRICE_LABEL, pl);
                return RC_EINVAL;
            }
        }
    }
    if (!isfinite(price) || price < 0) {
        set_err(err, "price per hour %g must be a finite number >= 0", price);
        return RC_EINVAL;
    }
    n->price = price;
    n->alive = 1;
    n->usable = 1;
    sched__node_touch(n);
    return 0;
}

/* Frees every custom name nothing refers to: after a failed build, the names it interned. */
static void registry_sweep(sched_view *v)
{
    for (uint32_t id = SCHED_N_PREDEFINED; id < v->n_res_names; id++)
        if (v->res_names[id] && !v->res_refs[id])
            sched__resource_drop_unused(v, id);
}

/* node_build_, then the node holds a reference on each of its custom resources. */
static int node_build(sched_view *v, const sched_node_spec *spec, sched_node *n, sched_err *err)
{
    int rc = node_build_(v, spec, n, err);
    if (rc) {
        registry_sweep(v);
        return rc;
    }
    for (uint32_t i = 0; i < n->n_res; i++)
        sched_view_resource_retain(v, n->res[i].id);
    return 0;
}

/* Drops the node's references on its custom resources (before its contents go). */
static void node_release_names(sched_view *v, sched_node *n)
{
    for (uint32_t i = 0; i < n->n_res; i++)
        sched_view_resource_release(v, n->res[i].id);
}

void sched_node_spec_init(sched_node_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->price_per_hour = NAN;
}

int sched_view_add_node(sched_view *v, const uint8_t id[RC_NODE_ID_SIZE],
                        const sched_node_spec *spec, sched_node **out, sched_err *err)
{
    if (rc_map_get(&v->by_id, id, RC_NODE_ID_SIZE)) {
        set_err(err, "node is already in the view");
        return RC_EEXIST;
    }
    sched_node *n = RC_NEW(sched_node);
    int rc = node_build(v, spec, n, err);
    if (rc) {
        node_free_contents(n);
        rc_free(n);
        return rc;
    }
    memcpy(n->id, id, RC_NODE_ID_SIZE);
    n->slot = list_push(&v->nodes, n);
    rc_map_put(&v->by_id, n->id, RC_NODE_ID_SIZE, n);
    index_node(v, n);
    v->n_usable++;
    v->max_price_dirty = 1;
    sched__scratch_reserve(v, v->nodes.n);
    if (out)
        *out = n;
    return 0;
}

int sched_view_update_node(sched_view *v, sched_node *node, const sched_node_spec *spec,
                           sched_err *err)
{
    sched_node fresh;
    memset(&fresh, 0, sizeof(fresh));
    int rc = node_build(v, spec, &fresh, err);
    if (rc) {
        node_free_contents(&fresh);
        return rc;
    }
    /* Keep what is in use in use. */
    for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++) {
        if (r == SCHED_GPU)
            continue;
        sched_amount used = node->total[r] - node->avail[r];
        sched_amount a = fresh.total[r] - used;
        fresh.avail[r] = a < 0 ? 0 : a;
    }
    for (uint32_t i = 0; i < fresh.n_res; i++) {
        sched__res *old = sched__node_res(node, fresh.res[i].id);
        if (!old)
            continue;
        sched_amount a = fresh.res[i].total - (old->total - old->avail);
        fresh.res[i].avail = a < 0 ? 0 : a;
    }
    if (fresh.n_gpus == node->n_gpus && fresh.n_gpus) {
        memcpy(fresh.gpu_avail, node->gpu_avail, fresh.n_gpus * sizeof(*fresh.gpu_avail));
        fresh.avail[SCHED_GPU] = node->avail[SCHED_GPU];
    }
    unindex_node(v, node);
    node_release_names(v, node); /* after fresh took its own: shared names stay */
    node_free_contents(node);
    memcpy(fresh.id, node->id, RC_NODE_ID_SIZE);
    fresh.slot = node->slot;
    fresh.alive = node->alive;
    fresh.draining = node->draining;
    fresh.usable = node->usable;
    fresh.mark = node->mark;
    *node = fresh;
    sched__node_touch(node);
    index_node(v, node);
    v->max_price_dirty = 1;
    return 0;
}

void sched_view_remove_node(sched_view *v, sched_node *node)
{
    unindex_node(v, node);
    rc_map_remove(&v->by_id, node->id, RC_NODE_ID_SIZE);
    sched_node *moved = list_swap_remove(&v->nodes, node->slot);
    if (moved)
        moved->slot = node->slot;
    if (node->usable)
        v->n_usable--;
    v->max_price_dirty = 1;
    node_release_names(v, node);
    node_free_contents(node);
    rc_free(node);
}

sched_node *sched_view_find(const sched_view *v, const uint8_t id[RC_NODE_ID_SIZE])
{
    return rc_map_get(&v->by_id, id, RC_NODE_ID_SIZE);
}

size_t sched_view_node_count(const sched_view *v)
{
    return v->nodes.n;
}

sched_node *sched_view_node_at(const sched_view *v, size_t i)
{
    return i < v->nodes.n ? v->nodes.items[i] : NULL;
}

static void set_usable(sched_view *v, sched_node *n)
{
    uint8_t usable = n->alive && !n->draining;
    if (usable != n->usable) {
        if (usable)
            v->n_usable++;
        else
            v->n_usable--;
        n->usable = usable;
    }
}

void sched_node_set_alive(sched_view *v, sched_node *node, int alive)
{
    node->alive = alive != 0;
    set_usable(v, node);
}

void sched_node_set_draining(sched_view *v, sched_node *node, int draining)
{
    node->draining = draining != 0;
    set_usable(v, node);
}

int sched_node_set_available(sched_view *v, sched_node *node, uint32_t res_id, sched_amount amount)
{
    (void)v;
    if (amount < 0)
        amount = 0;
    if (res_id < SCHED_N_PREDEFINED) {
        if (amount > node->total[res_id])
            amount = node->total[res_id];
        if (res_id == SCHED_GPU)
            sched__node_spread_gpu(node, amount);
        else
            node->avail[res_id] = amount;
        sched__node_touch(node);
        return 0;
    }
    sched__res *r = sched__node_res(node, res_id);
    if (!r)
        return RC_ENOENT;
    r->avail = amount > r->total ? r->total : amount;
    return 0;
}

int sched_node_report_available(sched_view *v, sched_node *node, const sched_named_amount *avail,
                                size_t n_avail, sched_err *err)
{
    /* Validate everything first so a bad report changes nothing. */
    for (size_t i = 0; i < n_avail; i++) {
        if (!avail[i].name || !*avail[i].name) {
            set_err(err, "report entry %zu has an empty resource name", i);
            return RC_EINVAL;
        }
        if (!isfinite(avail[i].amount) || avail[i].amount < 0 ||
            avail[i].amount > (double)(SCHED_AMOUNT_MAX / SCHED_UNIT)) {
            set_err(err, "report for resource '%s': available %g must be a finite number >= 0",
                    avail[i].name, avail[i].amount);
            return RC_EINVAL;
        }
    }
    sched_amount pre[SCHED_N_PREDEFINED] = {0, 0, 0, 0};
    for (uint32_t j = 0; j < node->n_res; j++)
        node->res[j].avail = 0;
    for (size_t i = 0; i < n_avail; i++) {
        void *got = rc_map_get_str(&v->res_ids, avail[i].name);
        if (!got)
            continue; /* a resource the node doesn't have: nothing to record */
        uint32_t id = (uint32_t)((uintptr_t)got - 1);
        sched_amount a = (sched_amount)llround(avail[i].amount * (double)SCHED_UNIT);
        if (id < SCHED_N_PREDEFINED) {
            pre[id] = a > node->total[id] ? node->total[id] : a;
        } else {
            sched__res *r = sched__node_res(node, id);
            if (r)
                r->avail = a > r->total ? r->total : a;
        }
    }
    for (uint32_t r = 0; r < SCHED_N_PREDEFINED; r++) {
        if (r == SCHED_GPU)
            sched__node_spread_gpu(node, pre[r]);
        else
            node->avail[r] = pre[r];
    }
    sched__node_touch(node);
    return 0;
}

/* ---- candidates ---- */

static const sched__list empty_list = {NULL, 0, 0};

static const sched__list *narrow_by_selector(const sched_view *v, const sched__list *best,
                                             const sched_selector *s)
{
    for (size_t i = 0; i < sched_selector_count(s); i++) {
        const char *key, *value;
        if (!sched__selector_single_in(s, i, &key, &value))
            continue;
        char buf[512];
        size_t len;
        label_key(key, value, buf, sizeof(buf), &len);
        const sched__list *b = rc_map_get(&v->label_buckets, buf, len);
        if (!b)
            return &empty_list;
        if (b->n < best->n)
            best = b;
    }
    return best;
}

const sched__list *sched__candidates(const sched_view *v, const sched_request *r,
                                     const sched_selector *sel2)
{
    const sched__list *best = &v->nodes;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t id = r->id[i];
        const sched__list *b = id < v->n_res_names ? &v->buckets[id] : &empty_list;
        if (b->n < best->n)
            best = b;
    }
    if (r->selector)
        best = narrow_by_selector(v, best, r->selector);
    if (sel2)
        best = narrow_by_selector(v, best, sel2);
    return best;
}

/* ---- accessors ---- */

const uint8_t *sched_node_id(const sched_node *node)
{
    return node->id;
}

int sched_node_is_alive(const sched_node *node)
{
    return node->alive;
}

int sched_node_is_draining(const sched_node *node)
{
    return node->draining;
}

sched_amount sched_node_total(const sched_node *node, uint32_t res_id)
{
    if (res_id < SCHED_N_PREDEFINED)
        return node->total[res_id];
    const sched__res *r = sched__node_res(node, res_id);
    return r ? r->total : 0;
}

sched_amount sched_node_available(const sched_node *node, uint32_t res_id)
{
    if (res_id < SCHED_N_PREDEFINED)
        return node->avail[res_id];
    const sched__res *r = sched__node_res(node, res_id);
    return r ? r->avail : 0;
}

uint32_t sched_node_gpu_count(const sched_node *node)
{
    return node->n_gpus;
}

sched_amount sched_node_gpu_available(const sched_node *node, uint32_t instance)
{
    return instance < node->n_gpus ? node->gpu_avail[instance] : 0;
}

uint64_t sched_node_gpu_memory(const sched_node *node, uint32_t instance)
{
    return instance < node->n_gpus ? node->gpu_mem[instance] : 0;
}

double sched_node_utilization(const sched_node *node)
{
    return node->util;
}

double sched_node_price(const sched_node *node)
{
    return node->price;
}

const char *sched_node_label(const sched_node *node, const char *key)
{
    return sched__node_label(node, key);
}

const char *sched_node_accelerator_type(const sched_node *node)
{
    return node->accel;
}
