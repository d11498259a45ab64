/*
 * market_decide.c: mk_decide, Ray autoscaler v2's bin-packing of pending demand into market
 * offers, with cost as the objective.
 *
 * One round:
 *   1. Every offer gets its effective cost, price / (reliability x verified performance) +
 *      price x failure_penalty x failure score, and a static verdict (eligible, or scored
 *      down, none available, class at max hosts, max hosts, over budget).
 *   2. Offers with the same host (GPU model and count, GPU memory, CPUs, memory, region,
 *      labels) form a group; a group's eligible members are sorted by (effective cost,
 *      price, id), so the group's best launchable offer is found by a cursor that only moves
 *      forward (whatever makes an offer unlaunchable within a round — its hosts taken, its
 *      class or the cluster at max hosts, the budget spent — stays so until a gang is rolled
 *      back, which rewinds the cursors).
 *   3. Classes under their min_hosts are topped up with their cheapest launchable offers.
 *   4. Gangs, in input order, all or nothing: every bundle is placed on existing capacity
 *      or on a host launched for it (STRICT_SPREAD: a host of its own per bundle;
 *      STRICT_PACK: one host for the sum), else everything the gang did is undone and it is
 *      reported infeasible.
 *   5. Demand, largest and most constrained first: first fit onto capacity that is there or
 *      launched this round; what remains leases, step by step, the group whose best offer
 *      has the lowest effective cost per bundle of this shape it takes (ties: lower price,
 *      then lower offer id), reserving each launch in a copy of the ledger.
 * The cost per step is O(groups fitting the shape); a shape is matched against every group
 * once. Demand that cannot be placed is reported with the reason of the offers that would
 * fit it ("budget", "max hosts", "failure memory", "no offer fits").
 *
 * Pure: no I/O, no clock (now_ms is an input), no randomness. Single-threaded over its
 * arguments.
 */
#define _GNU_SOURCE /* qsort_r */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "market.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_map.h"

#define EPS 1e-9
#define GIB 1073741824.0
#define GPU_MEMORY_LABEL "rayc.io/gpu-memory"

/* Why an offer cannot be launched (bit flags, so a group can hold several). */
enum {
    R_BUDGET = 1,
    R_MAX_HOSTS = 2,
    R_SCORE = 4,
    R_NONE_LEFT = 8,
    R_PERF = 16,
};

/* What one bundle (or the sum of a STRICT_PACK gang) needs of one host. */
typedef struct need {
    double cpu, gpus, mem_gib, gpu_mem_gib;
    const char *accel;  /* from "accelerator_type:X"; NULL: any */
    mk_amount *custom;  /* other resources (offers have none of them) */
    size_t n_custom;
    const mk_label_cond **conds;
    size_t n_conds;
    const char *conflict; /* set when the need can never be met (e.g. two accelerator types) */
} need;

/* A host with room: existing capacity, a host launched this round, or an offer's template. */
typedef struct host {
    double cpu, gpus, mem_gib, gpu_mem_gib;
    const char *gpu_name;   /* NULL or "": no GPU model */
    const mk_offer *offer;  /* labels from the offer, or */
    const mk_capacity *cap; /* labels and custom resources from capacity */
    double *cap_free;       /* cap: free amount of each of cap->res */
    long launch;            /* index into launches, -1 for capacity */
    size_t gang_mark;       /* 1 + the gang that used it last */
} host;

typedef struct group {
    host tmpl;
    size_t *members; /* eligible offers, best first */
    size_t n_members, cursor;
    unsigned static_flags, skip_flags;
    int fits_pending;
    double min_price; /* of its eligible members, for explanations */
} group;

/* A mutation a gang made, undone if the gang fails. */
typedef struct undo {
    size_t host;
    int64_t copies;
    const need *n;
} undo;

typedef struct dstate {
    const mk_decide_input *in;
    const mk_config *cfg;
    mk_config defaults;
    mk_ledger ledger;
    size_t n_offers;
    /* per offer */
    double *eff, *score;
    int *left;
    size_t *cls;       /* class index */
    unsigned *static_why, *dyn_why;
    /* per class */
    size_t n_classes;
    long *class_limit; /* index into cfg->limits, -1: none */
    int *class_now;
    /* per limit */
    int *limit_now, *limit_launched;
    int total_now, total_launched;
    group *groups;
    size_t n_groups;
    host *hosts;
    size_t n_hosts, cap_hosts;
    /* per-shape scratch: fitting groups and how many bundles one host of each takes */
    size_t *fit_group;
    int64_t *fit_k;
    size_t n_fit;
    undo *undo;
    size_t n_undo, cap_undo;
    mk_decision *out;
    size_t cap_launches, cap_infeasible;
} dstate;

/* ---- needs -------------------------------------------------------------------------------- */

static double label_gib(const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || !(x >= 0))
        return -1;
    return x >= 1048576.0 ? x / GIB : x;
}

static void need_add_bundle(need *n, const mk_bundle *b)
{
    for (size_t i = 0; i < b->n_res; i++) {
        const mk_amount *a = &b->res[i];
        if (!a->name || !(a->value > 0))
            continue;
        if (!strcmp(a->name, "CPU"))
            n->cpu += a->value;
        else if (!strcmp(a->name, "GPU"))
            n->gpus += a->value;
        else if (!strcmp(a->name, "memory"))
            n->mem_gib += a->value / GIB;
        else if (!strcmp(a->name, "gpu_memory"))
            n->gpu_mem_gib = fmax(n->gpu_mem_gib, a->value);
        else if (!strcmp(a->name, "object_store_memory"))
            continue; /* every host has an object store */
        else if (!strncmp(a->name, "accelerator_type:", 17)) {
            const char *t = a->name + 17;
            if (n->accel && strcmp(n->accel, t))
                n->conflict = "bundles ask for different accelerator types";
            n->accel = t;
        } else {
            size_t k = 0;
            while (k < n->n_custom && strcmp(n->custom[k].name, a->name))
                k++;
            if (k == n->n_custom) {
                n->custom = rc_realloc(n->custom, (k + 1) * sizeof(*n->custom));
                n->custom[k] = (mk_amount){a->name, 0};
                n->n_custom++;
            }
            n->custom[k].value += a->value;
        }
    }
    if (b->n_conds) {
        n->conds = rc_realloc(n->conds, (n->n_conds + b->n_conds) * sizeof(*n->conds));
        for (size_t i = 0; i < b->n_conds; i++)
            n->conds[n->n_conds++] = &b->conds[i];
    }
}

static void need_free(need *n)
{
    rc_free(n->custom);
    rc_free(n->conds);
}

static int constraints(const need *n)
{
    return (int)n->n_conds + (n->accel != NULL) + (int)n->n_custom + (n->gpu_mem_gib > 0);
}

/* Larger first (GPUs, GPU memory, CPUs, memory), then more constrained. */
static int need_cmp(const need *a, const need *b)
{
    if (a->gpus != b->gpus)
        return a->gpus > b->gpus ? -1 : 1;
    if (a->gpu_mem_gib != b->gpu_mem_gib)
        return a->gpu_mem_gib > b->gpu_mem_gib ? -1 : 1;
    if (a->cpu != b->cpu)
        return a->cpu > b->cpu ? -1 : 1;
    if (a->mem_gib != b->mem_gib)
        return a->mem_gib > b->mem_gib ? -1 : 1;
    return constraints(b) - constraints(a);
}

static int bundle_equal(const mk_bundle *a, const mk_bundle *b)
{
    if (a->n_res != b->n_res || a->n_conds != b->n_conds)
        return 0;
    for (size_t i = 0; i < a->n_res; i++)
        if (strcmp(a->res[i].name, b->res[i].name) || a->res[i].value != b->res[i].value)
            return 0;
    for (size_t i = 0; i < a->n_conds; i++) {
        const mk_label_cond *x = &a->conds[i], *y = &b->conds[i];
        if (strcmp(x->key, y->key) || x->negate != y->negate || x->n_values != y->n_values)
            return 0;
        for (size_t v = 0; v < x->n_values; v++)
            if (strcmp(x->values[v], y->values[v]))
                return 0;
    }
    return 1;
}

/* "{CPU: 4, GPU: 1, accelerator_type:A100, memory: 16 GiB}" and the label conditions. */
static void need_describe(const need *n, char *out, size_t outlen)
{
    rc_buf b = RC_BUF_INIT;
    const char *sep = "";
    rc_buf_putc(&b, '{');
#define PART(...)                          \
    do {                                   \
        rc_buf_puts(&b, sep);              \
        rc_buf_printf(&b, __VA_ARGS__);    \
        sep = ", ";                        \
    } while (0)
    if (n->cpu > 0)
        PART("CPU: %g", n->cpu);
    if (n->gpus > 0)
        PART("GPU: %g", n->gpus);
    if (n->accel)
        PART("accelerator_type:%s", n->accel);
    if (n->gpu_mem_gib > 0)
        PART("gpu_memory: %g GiB", n->gpu_mem_gib);
    if (n->mem_gib > 0)
        PART("memory: %g GiB", n->mem_gib);
    for (size_t i = 0; i < n->n_custom; i++)
        PART("%s: %g", n->custom[i].name, n->custom[i].value);
    for (size_t i = 0; i < n->n_conds; i++) {
        const mk_label_cond *c = n->conds[i];
        PART("%s %s (", c->key, c->negate ? "not in" : "in");
        for (size_t v = 0; v < c->n_values; v++)
            rc_buf_printf(&b, "%s%s", v ? "," : "", c->values[v]);
        rc_buf_putc(&b, ')');
    }
#undef PART
    rc_buf_putc(&b, '}');
    snprintf(out, outlen, "%s", rc_buf_cstr(&b));
    rc_buf_free(&b);
}

/* ---- hosts -------------------------------------------------------------------------------- */

static const char *host_label(const host *h, const char *key)
{
    if (h->offer)
        return mk_offer_label(h->offer, key);
    for (size_t i = 0; i < h->cap->n_labels; i++)
        if (!strcmp(h->cap->label_keys[i], key))
            return h->cap->label_values[i];
    return NULL;
}

static int cond_holds(const host *h, const mk_label_cond *c)
{
    if (!strcmp(c->key, GPU_MEMORY_LABEL)) {
        double least = HUGE_VAL;
        for (size_t v = 0; v < c->n_values; v++) {
            double g = label_gib(c->values[v]);
            if (g >= 0 && g < least)
                least = g;
        }
        int at_least = h->gpus > 0 && h->gpu_mem_gib + EPS >= least;
        return c->negate ? !at_least : at_least;
    }
    const char *v = host_label(h, c->key);
    int in = 0;
    for (size_t k = 0; v && k < c->n_values && !in; k++)
        in = !strcmp(v, c->values[k]);
    return c->negate ? !in : in;
}

static double cap_custom(const host *h, const char *name, size_t *idx)
{
    if (!h->cap)
        return 0;
    for (size_t i = 0; i < h->cap->n_res; i++)
        if (h->cap->res[i].name && !strcmp(h->cap->res[i].name, name)) {
            *idx = i;
            return h->cap_free[i];
        }
    return 0;
}

static inline double room(double avail, double want)
{
    return want > EPS ? floor(avail / want + EPS) : HUGE_VAL;
}

static inline double min2(double a, double b)
{
    return a < b ? a : b;
}

/* How many copies of n fit on h, at most limit. */
static int64_t copies(const host *h, const need *n, int64_t limit)
{
    /* Cheap numeric rejections first: this runs for every host with room and every shape. */
    if (n->gpus > h->gpus + EPS || n->cpu > h->cpu + EPS || n->mem_gib > h->mem_gib + EPS || n->conflict)
        return 0;
    if (n->accel && (!h->gpu_name || strcmp(h->gpu_name, n->accel)))
        return 0;
    if (n->gpu_mem_gib > 0 && (h->gpus <= 0 || h->gpu_mem_gib + EPS < n->gpu_mem_gib))
        return 0;
    double k = (double)limit;
    k = min2(k, room(h->cpu, n->cpu));
    k = min2(k, room(h->gpus, n->gpus));
    k = min2(k, room(h->mem_gib, n->mem_gib));
    for (size_t i = 0; i < n->n_custom && k >= 1; i++) {
        size_t idx;
        k = min2(k, room(cap_custom(h, n->custom[i].name, &idx), n->custom[i].value));
    }
    if (k < 1)
        return 0;
    for (size_t i = 0; i < n->n_conds; i++)
        if (!cond_holds(h, n->conds[i]))
            return 0;
    return (int64_t)k;
}

static void host_take(host *h, const need *n, int64_t c)
{
    double x = (double)c;
    h->cpu -= x * n->cpu;
    h->gpus -= x * n->gpus;
    h->mem_gib -= x * n->mem_gib;
    for (size_t i = 0; i < n->n_custom && h->cap; i++) {
        size_t idx = h->cap->n_res;
        cap_custom(h, n->custom[i].name, &idx);
        if (idx < h->cap->n_res)
            h->cap_free[idx] -= x * n->custom[i].value;
    }
}

static host host_of_offer(const mk_offer *o)
{
    return (host){.cpu = o->num_cpus,
                  .gpus = o->num_gpus,
                  .mem_gib = o->memory,
                  .gpu_mem_gib = o->gpu_memory,
                  .gpu_name = o->gpu_name,
                  .offer = o,
                  .launch = -1};
}

static host host_of_capacity(const mk_capacity *c)
{
    host h = {.cap = c, .launch = -1};
    h.cap_free = rc_calloc(c->n_res + 1, sizeof(double));
    for (size_t i = 0; i < c->n_res; i++) {
        const mk_amount *a = &c->res[i];
        h.cap_free[i] = a->value;
        if (!a->name)
            continue;
        if (!strcmp(a->name, "CPU"))
            h.cpu = a->value;
        else if (!strcmp(a->name, "GPU"))
            h.gpus = a->value;
        else if (!strcmp(a->name, "memory"))
            h.mem_gib = a->value / GIB;
        else if (!strncmp(a->name, "accelerator_type:", 17) && a->value > 0)
            h.gpu_name = a->name + 17;
    }
    for (size_t i = 0; i < c->n_labels; i++) {
        if (!strcmp(c->label_keys[i], GPU_MEMORY_LABEL)) {
            double g = label_gib(c->label_values[i]);
            h.gpu_mem_gib = g > 0 ? g : 0;
        } else if (!h.gpu_name && !strcmp(c->label_keys[i], "ray.io/accelerator-type")) {
            h.gpu_name = c->label_values[i];
        }
    }
    return h;
}

static size_t host_push(dstate *s, host h)
{
    if (s->n_hosts == s->cap_hosts) {
        s->cap_hosts = s->cap_hosts ? s->cap_hosts * 2 : 64;
        s->hosts = rc_realloc(s->hosts, s->cap_hosts * sizeof(*s->hosts));
    }
    s->hosts[s->n_hosts] = h;
    return s->n_hosts++;
}

/* ---- offers: cost, verdicts, groups --------------------------------------------------------- */

static int limit_max(const dstate *s, size_t c)
{
    long l = s->class_limit[c];
    return l < 0 ? -1 : s->cfg->limits[l].max_hosts;
}

/* Why offer o cannot be launched now (0: it can). */
static unsigned launch_block(const dstate *s, size_t o)
{
    const mk_offer *of = &s->in->offers[o];
    if (s->left[o] <= 0)
        return R_NONE_LEFT;
    size_t c = s->cls[o];
    long l = s->class_limit[c];
    if (l >= 0 && s->cfg->limits[l].max_hosts >= 0 &&
        s->limit_now[l] + s->limit_launched[l] >= s->cfg->limits[l].max_hosts)
        return R_MAX_HOSTS;
    if (s->cfg->max_hosts >= 0 && s->total_now + s->total_launched >= s->cfg->max_hosts)
        return R_MAX_HOSTS;
    if (!mk_ledger_fits(&s->ledger, of->price_per_hour, of->billing_increment_s))
        return R_BUDGET;
    return 0;
}

/* The group's best launchable offer, or -1; what it skips is remembered. */
static long group_head(dstate *s, group *g)
{
    while (g->cursor < g->n_members) {
        size_t o = g->members[g->cursor];
        unsigned why = launch_block(s, o);
        if (!why)
            return (long)o;
        g->skip_flags |= why;
        s->dyn_why[o] = why;
        g->cursor++;
    }
    return -1;
}

static int offer_better(const dstate *s, size_t a, size_t b)
{
    const mk_offer *x = &s->in->offers[a], *y = &s->in->offers[b];
    if (s->eff[a] != s->eff[b])
        return s->eff[a] < s->eff[b] ? -1 : 1;
    if (x->price_per_hour != y->price_per_hour)
        return x->price_per_hour < y->price_per_hour ? -1 : 1;
    int c = strcmp(x->id ? x->id : "", y->id ? y->id : "");
    if (c)
        return c;
    return a < b ? -1 : a > b;
}

static int member_cmp(const void *pa, const void *pb, void *state)
{
    return offer_better(state, *(const size_t *)pa, *(const size_t *)pb);
}

static size_t class_index(dstate *s, rc_map *classes, const char *name)
{
    void *v = rc_map_get_str(classes, name);
    if (v)
        return (size_t)(uintptr_t)v - 1;
    size_t c = s->n_classes++;
    rc_map_put_str(classes, name, (void *)(uintptr_t)(c + 1));
    return c;
}

static void verdict(mk_offer_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verdict(mk_offer_verdict *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof(v->why), fmt, ap);
    va_end(ap);
}

static void set_why(mk_offer_verdict *v, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof(v->why))
        n = sizeof(v->why) - 1;
    memcpy(v->why, text, n);
    v->why[n] = '\0';
}

/* Effective costs, classes, limits and the static verdict of every offer. */
static void prepare_offers(dstate *s)
{
    const mk_decide_input *in = s->in;
    size_t n = s->n_offers;
    s->eff = rc_calloc(n + 1, sizeof(double));
    s->score = rc_calloc(n + 1, sizeof(double));
    s->left = rc_calloc(n + 1, sizeof(int));
    s->cls = rc_calloc(n + 1, sizeof(size_t));
    s->static_why = rc_calloc(n + 1, sizeof(unsigned));
    s->dyn_why = rc_calloc(n + 1, sizeof(unsigned));
    rc_map classes = RC_MAP_INIT;
    char **class_names = rc_calloc(n + 1, sizeof(char *));
    double *class_perf = rc_calloc(n + 1, sizeof(double));
    char name[160], key[320];
    for (size_t o = 0; o < n; o++) {
        const mk_offer *of = &in->offers[o];
        mk_offer_class(of, name, sizeof(name));
        size_t c = class_index(s, &classes, name);
        s->cls[o] = c;
        if (!class_names[c]) {
            class_names[c] = rc_strdup(name);
            class_perf[c] = in->performance ? in->performance(name, in->performance_arg) : 1.0;
        }
        mk_score_key(of, key, sizeof(key));
        s->score[o] = mk_score_get(in->scores, key, in->now_ms);
        s->left[o] = of->available - (in->leased ? in->leased[o] : 0);
        double rel = of->reliability > 0 ? of->reliability : 1e-6;
        double perf = class_perf[c];
        s->eff[o] = of->price_per_hour / (rel * (perf > 0 ? perf : 1e-6)) +
                    of->price_per_hour * s->cfg->failure_penalty * s->score[o];
        if (in->leased)
            s->total_now += in->leased[o];
    }
    /* Classes: limits and hosts now. */
    s->class_limit = rc_calloc(s->n_classes + 1, sizeof(long));
    s->class_now = rc_calloc(s->n_classes + 1, sizeof(int));
    s->limit_now = rc_calloc(s->cfg->n_limits + 1, sizeof(int));
    s->limit_launched = rc_calloc(s->cfg->n_limits + 1, sizeof(int));
    for (size_t c = 0; c < s->n_classes; c++)
        s->class_limit[c] = -2; /* not resolved yet */
    for (size_t o = 0; o < n; o++) {
        size_t c = s->cls[o];
        if (s->class_limit[c] == -2) {
            const mk_class_limit *l = mk_config_limit(s->cfg, &in->offers[o]);
            s->class_limit[c] = l ? (long)(l - s->cfg->limits) : -1;
            if (in->class_hosts)
                s->class_now[c] = in->class_hosts(class_names[c], in->class_hosts_arg);
        }
        if (!in->class_hosts && in->leased)
            s->class_now[c] += in->leased[o];
    }
    for (size_t c = 0; c < s->n_classes; c++)
        if (s->class_limit[c] >= 0)
            s->limit_now[s->class_limit[c]] += s->class_now[c];
    /* Static verdicts. */
    for (size_t o = 0; o < n; o++) {
        const mk_offer *of = &in->offers[o];
        mk_offer_verdict *v = &s->out->verdicts[o];
        size_t c = s->cls[o];
        v->effective_cost = s->eff[o];
        v->score = s->score[o];
        unsigned why = 0;
        if (class_perf[c] <= 0) {
            why = R_PERF;
            verdict(v, "not eligible: class %s failed verification (verified performance 0)", class_names[c]);
        } else if (s->score[o] >= s->cfg->failure_retry_below) {
            why = R_SCORE;
            verdict(v,
                    "not eligible: scored down after recent failures (failure score %.2f >= retry_below %.2f); "
                    "eligible again once it decays",
                    s->score[o], s->cfg->failure_retry_below);
        } else if (s->left[o] <= 0) {
            why = R_NONE_LEFT;
            verdict(v, "not eligible: none available (%d of %d leased)", of->available - s->left[o], of->available);
        } else if ((why = launch_block(s, o)) == R_MAX_HOSTS) {
            long l = s->class_limit[c];
            if (l >= 0 && limit_max(s, c) >= 0 && s->limit_now[l] >= limit_max(s, c))
                verdict(v, "not eligible: class at max hosts (%s: %d of max_hosts %d)", s->cfg->limits[l].offer_class,
                        s->limit_now[l], limit_max(s, c));
            else
                verdict(v, "not eligible: max hosts reached (%d of max_hosts %d)", s->total_now, s->cfg->max_hosts);
        } else if (why == R_BUDGET) {
            mk_ledger tmp = s->ledger;
            char reason[128];
            mk_ledger_reserve(&tmp, of->price_per_hour, of->billing_increment_s, reason, sizeof(reason));
            verdict(v, "not eligible: over budget: %s", reason);
        }
        s->static_why[o] = why;
        v->eligible = why == 0;
    }
    for (size_t c = 0; c < s->n_classes; c++)
        rc_free(class_names[c]);
    rc_free(class_names);
    rc_free(class_perf);
    rc_map_destroy(&classes, NULL);
}

static void group_key(rc_buf *b, const mk_offer *o)
{
    rc_buf_clear(b);
    double nums[5] = {o->num_gpus, o->gpu_memory, o->num_cpus, o->memory, (double)o->n_labels};
    rc_buf_append(b, nums, sizeof(nums));
    rc_buf_append(b, o->gpu_name ? o->gpu_name : "", strlen(o->gpu_name ? o->gpu_name : "") + 1);
    rc_buf_append(b, o->region ? o->region : "", strlen(o->region ? o->region : "") + 1);
    for (size_t i = 0; i < o->n_labels; i++) {
        rc_buf_append(b, o->label_keys[i], strlen(o->label_keys[i]) + 1);
        rc_buf_append(b, o->label_values[i], strlen(o->label_values[i]) + 1);
    }
}

static void build_groups(dstate *s)
{
    size_t n = s->n_offers;
    size_t *gid = rc_calloc(n + 1, sizeof(size_t));
    rc_map index = RC_MAP_INIT;
    rc_buf key = RC_BUF_INIT;
    s->groups = rc_calloc(n + 1, sizeof(group));
    for (size_t o = 0; o < n; o++) {
        group_key(&key, &s->in->offers[o]);
        void *v = rc_map_get(&index, key.data, key.len);
        size_t g;
        if (v) {
            g = (size_t)(uintptr_t)v - 1;
        } else {
            g = s->n_groups++;
            rc_map_put(&index, key.data, key.len, (void *)(uintptr_t)(g + 1));
            s->groups[g].tmpl = host_of_offer(&s->in->offers[o]);
        }
        gid[o] = g;
        if (s->static_why[o])
            s->groups[g].static_flags |= s->static_why[o];
        else
            s->groups[g].n_members++;
    }
    for (size_t g = 0; g < s->n_groups; g++) {
        s->groups[g].members = rc_calloc(s->groups[g].n_members + 1, sizeof(size_t));
        s->groups[g].n_members = 0;
    }
    for (size_t o = 0; o < n; o++)
        if (!s->static_why[o]) {
            group *g = &s->groups[gid[o]];
            g->members[g->n_members++] = o;
        }
    for (size_t g = 0; g < s->n_groups; g++) {
        group *gr = &s->groups[g];
        qsort_r(gr->members, gr->n_members, sizeof(size_t), member_cmp, s);
        gr->min_price = HUGE_VAL;
        for (size_t m = 0; m < gr->n_members; m++)
            gr->min_price = fmin(gr->min_price, s->in->offers[gr->members[m]].price_per_hour);
    }
    s->fit_group = rc_calloc(s->n_groups + 1, sizeof(size_t));
    s->fit_k = rc_calloc(s->n_groups + 1, sizeof(int64_t));
    rc_buf_free(&key);
    rc_map_destroy(&index, NULL);
    rc_free(gid);
}

/* ---- launching ------------------------------------------------------------------------------ */

static void launch(dstate *s, size_t o, int is_gang, size_t index, const need *n, int64_t k)
{
    const mk_offer *of = &s->in->offers[o];
    mk_decision *d = s->out;
    mk_ledger_reserve(&s->ledger, of->price_per_hour, of->billing_increment_s, NULL, 0);
    s->left[o]--;
    long l = s->class_limit[s->cls[o]];
    if (l >= 0)
        s->limit_launched[l]++;
    s->total_launched++;
    if (d->n_launches == s->cap_launches) {
        s->cap_launches = s->cap_launches ? s->cap_launches * 2 : 16;
        d->launches = rc_realloc(d->launches, s->cap_launches * sizeof(*d->launches));
    }
    d->launches[d->n_launches] = (mk_launch){
        .offer = o, .is_gang = is_gang, .index = index, .effective_cost = s->eff[o], .bundles = (int)k};
    s->out->verdicts[o].launches++;
    host h = host_of_offer(of);
    h.launch = (long)d->n_launches++;
    if (n && k > 0)
        host_take(&h, n, k);
    host_push(s, h);
}

/* Matches n against every group once: s->fit_group/fit_k hold those a host of which takes at
 * least one copy (at most limit). */
static void fit_groups(dstate *s, const need *n, int64_t limit)
{
    s->n_fit = 0;
    for (size_t g = 0; g < s->n_groups; g++) {
        int64_t k = copies(&s->groups[g].tmpl, n, limit);
        if (k < 1)
            continue;
        s->groups[g].fits_pending = 1;
        s->fit_group[s->n_fit] = g;
        s->fit_k[s->n_fit++] = k;
    }
}

/* The cheapest launchable offer per bundle among the fitting groups for r more bundles;
 * -1 if none. *k_out: bundles one host takes. */
static long choose(dstate *s, int64_t r, int64_t *k_out)
{
    long best = -1;
    double best_cost = 0;
    int64_t best_k = 0;
    for (size_t i = 0; i < s->n_fit; i++) {
        long o = group_head(s, &s->groups[s->fit_group[i]]);
        if (o < 0)
            continue;
        int64_t k = s->fit_k[i] < r ? s->fit_k[i] : r;
        double cost = s->eff[o] / (double)k;
        int better = best < 0 || cost < best_cost - 1e-12 * fmax(1, best_cost);
        if (!better && fabs(cost - best_cost) <= 1e-12 * fmax(1, best_cost))
            better = offer_better(s, (size_t)o, (size_t)best) < 0;
        if (better) {
            best = o;
            best_cost = cost;
            best_k = k;
        }
    }
    *k_out = best_k;
    return best;
}

/* The reason no offer can take n, for mk_infeasible.reason. */
static void infeasible_reason(dstate *s, const need *n, const char *prefix, char *dst, size_t dstlen)
{
    /* Written whole here, then cut to dstlen. */
    char out[1024];
    size_t outlen = sizeof(out);
    char shape[160];
    need_describe(n, shape, sizeof(shape));
    unsigned flags = 0;
    size_t fitting = 0;
    double cheapest = HUGE_VAL;
    for (size_t g = 0; g < s->n_groups; g++) {
        group *gr = &s->groups[g];
        if (copies(&gr->tmpl, n, 1) < 1)
            continue;
        fitting++;
        group_head(s, gr);
        flags |= gr->static_flags | gr->skip_flags;
        cheapest = fmin(cheapest, gr->min_price);
    }
    if (n->conflict)
        snprintf(out, outlen, "no offer fits: %s%s: %s", prefix, shape, n->conflict);
    else if (!fitting)
        snprintf(out, outlen, "no offer fits: %s%s: no offer has a host that large or with those labels", prefix,
                 shape);
    else if (flags & R_BUDGET) {
        if (cheapest < HUGE_VAL)
            snprintf(out, outlen,
                     "budget: %s%s: the cheapest fitting offer ($%.2f/h) would exceed the budget "
                     "($%.2f/h of $%.2f/h in use or reserved)",
                     prefix, shape, cheapest, s->ledger.committed_per_hour + s->ledger.reserved_per_hour,
                     s->ledger.budget_per_hour);
        else
            snprintf(out, outlen, "budget: %s%s: every fitting offer is over the budget", prefix, shape);
    } else if (flags & R_MAX_HOSTS)
        snprintf(out, outlen, "max hosts: %s%s: the offers that fit are at max_hosts (cluster or class limit)",
                 prefix, shape);
    else if (flags & (R_SCORE | R_PERF))
        snprintf(out, outlen,
                 "failure memory: %s%s: every class that fits is scored down after recent failures; it is "
                 "tried again once its score decays below retry_below %.2f",
                 prefix, shape, s->cfg->failure_retry_below);
    else
        snprintf(out, outlen, "no offer fits: %s%s: the %zu offer shape(s) that fit have no hosts left", prefix,
                 shape, fitting);
    size_t len = strnlen(out, sizeof(out));
    if (dstlen) {
        if (len >= dstlen)
            len = dstlen - 1;
        memcpy(dst, out, len);
        dst[len] = '\0';
    }
}

static void report_infeasible(dstate *s, int is_gang, size_t index, int64_t count, const need *n,
                              const char *prefix)
{
    mk_decision *d = s->out;
    if (d->n_infeasible == s->cap_infeasible) {
        s->cap_infeasible = s->cap_infeasible ? s->cap_infeasible * 2 : 8;
        d->infeasible = rc_realloc(d->infeasible, s->cap_infeasible * sizeof(*d->infeasible));
    }
    mk_infeasible *f = &d->infeasible[d->n_infeasible++];
    *f = (mk_infeasible){.is_gang = is_gang, .index = index, .count = count};
    infeasible_reason(s, n, prefix, f->reason, sizeof(f->reason));
}

/* First fit of up to r copies of n onto hosts with room; returns how many were placed.
 * avoid_mark: skip hosts with this gang mark (0: none); mark: set on hosts used (0: none);
 * at_most_one: one copy per host. Records undo entries while a gang is being placed. */
static int64_t fit_hosts(dstate *s, const need *n, int64_t r, size_t avoid_mark, size_t mark, int at_most_one,
                         int log_undo)
{
    int64_t placed = 0;
    for (size_t i = 0; i < s->n_hosts && placed < r; i++) {
        host *h = &s->hosts[i];
        if (avoid_mark && h->gang_mark == avoid_mark)
            continue;
        int64_t c = copies(h, n, at_most_one ? 1 : r - placed);
        if (c < 1)
            continue;
        host_take(h, n, c);
        if (h->launch >= 0)
            s->out->launches[h->launch].bundles += (int)c;
        if (mark)
            h->gang_mark = mark;
        if (log_undo) {
            if (s->n_undo == s->cap_undo) {
                s->cap_undo = s->cap_undo ? s->cap_undo * 2 : 16;
                s->undo = rc_realloc(s->undo, s->cap_undo * sizeof(*s->undo));
            }
            s->undo[s->n_undo++] = (undo){i, c, n};
        }
        placed += c;
    }
    return placed;
}

/* Places r copies of n: existing room first, then launches. Returns how many could not be
 * placed (0: all). */
static int64_t place(dstate *s, const need *n, int64_t r, int is_gang, size_t index, size_t mark, int one_per_host,
                     int log_undo)
{
    r -= fit_hosts(s, n, r, mark, mark, one_per_host, log_undo);
    if (r <= 0)
        return 0;
    fit_groups(s, n, one_per_host ? 1 : r);
    while (r > 0) {
        int64_t k;
        long o = choose(s, r, &k);
        if (o < 0)
            break;
        launch(s, (size_t)o, is_gang, index, n, k);
        s->hosts[s->n_hosts - 1].gang_mark = mark;
        r -= k;
    }
    return r;
}

/* ---- the round ------------------------------------------------------------------------------ */

static void rewind_groups(dstate *s)
{
    for (size_t g = 0; g < s->n_groups; g++) {
        s->groups[g].cursor = 0;
        s->groups[g].skip_flags = 0;
    }
}

static void top_up_min_hosts(dstate *s)
{
    for (size_t l = 0; l < s->cfg->n_limits; l++) {
        const mk_class_limit *lim = &s->cfg->limits[l];
        while (s->limit_now[l] + s->limit_launched[l] < lim->min_hosts) {
            long best = -1;
            for (size_t o = 0; o < s->n_offers; o++) {
                if (s->static_why[o] || s->class_limit[s->cls[o]] != (long)l || launch_block(s, o))
                    continue;
                if (best < 0 || offer_better(s, o, (size_t)best) < 0)
                    best = (long)o;
            }
            if (best < 0)
                break;
            launch(s, (size_t)best, 0, 0, NULL, 0);
        }
    }
}

typedef struct gang_bundle {
    need n;
    size_t first; /* its first bundle's index in the gang, for explanations */
    int64_t count;
} gang_bundle;

static int gang_bundle_cmp(const void *a, const void *b)
{
    const gang_bundle *x = a, *y = b;
    int c = need_cmp(&x->n, &y->n);
    return c ? c : (x->first < y->first ? -1 : x->first > y->first);
}

static void decide_gang(dstate *s, size_t gi)
{
    const mk_gang *gang = &s->in->gangs[gi];
    if (!gang->n_bundles)
        return;
    size_t mark = gi + 1;
    gang_bundle *gb = rc_calloc(gang->n_bundles + 1, sizeof(*gb));
    size_t n_gb = 0;
    if (gang->strict_pack) {
        for (size_t b = 0; b < gang->n_bundles; b++)
            need_add_bundle(&gb[0].n, &gang->bundles[b]);
        gb[0].count = 1;
        n_gb = 1;
    } else {
        /* Identical bundles become one run, so a host that takes several is priced for them. */
        for (size_t b = 0; b < gang->n_bundles; b++) {
            size_t k = 0;
            while (k < n_gb && !bundle_equal(&gang->bundles[gb[k].first], &gang->bundles[b]))
                k++;
            if (k == n_gb) {
                need_add_bundle(&gb[k].n, &gang->bundles[b]);
                gb[k].first = b;
                n_gb++;
            }
            gb[k].count++;
        }
        qsort(gb, n_gb, sizeof(*gb), gang_bundle_cmp);
    }
    mk_ledger saved_ledger = s->ledger;
    size_t saved_launches = s->out->n_launches, saved_hosts = s->n_hosts;
    s->n_undo = 0;
    int one_per_host = gang->strict_spread;
    size_t failed = n_gb;
    int64_t short_by = 0;
    for (size_t i = 0; i < n_gb && failed == n_gb; i++) {
        short_by = place(s, &gb[i].n, gb[i].count, 1, gi, one_per_host ? mark : 0, one_per_host, 1);
        if (short_by > 0)
            failed = i;
    }
    if (failed < n_gb) {
        char prefix[200];
        const char *strategy = gang->strict_pack ? "STRICT_PACK" : gang->strict_spread ? "STRICT_SPREAD" : "gang";
        if (gang->strict_pack)
            snprintf(prefix, sizeof(prefix), "placement group %s: all %zu bundles on one host ",
                     gang->details ? gang->details : strategy, gang->n_bundles);
        else
            snprintf(prefix, sizeof(prefix), "placement group %s: %lld of %lld bundle(s) ",
                     gang->details ? gang->details : strategy, (long long)short_by, (long long)gb[failed].count);
        report_infeasible(s, 1, gi, (int64_t)gang->n_bundles, &gb[failed].n, prefix);
        /* All or nothing: undo what this gang placed and launched. */
        for (size_t u = s->n_undo; u-- > 0;) {
            host *h = &s->hosts[s->undo[u].host];
            host_take(h, s->undo[u].n, -s->undo[u].copies);
            if (h->launch >= 0)
                s->out->launches[h->launch].bundles -= (int)s->undo[u].copies;
        }
        for (size_t L = saved_launches; L < s->out->n_launches; L++) {
            size_t o = s->out->launches[L].offer;
            s->left[o]++;
            long l = s->class_limit[s->cls[o]];
            if (l >= 0)
                s->limit_launched[l]--;
            s->total_launched--;
            s->out->verdicts[o].launches--;
        }
        s->out->n_launches = saved_launches;
        s->n_hosts = saved_hosts;
        s->ledger = saved_ledger;
        rewind_groups(s);
    }
    s->n_undo = 0;
    for (size_t i = 0; i < n_gb; i++)
        need_free(&gb[i].n);
    rc_free(gb);
}

typedef struct demand_order {
    need n;
    size_t index;
} demand_order;

static int demand_cmp(const void *a, const void *b)
{
    const demand_order *x = a, *y = b;
    int c = need_cmp(&x->n, &y->n);
    return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

static void decide_demand(dstate *s)
{
    const mk_decide_input *in = s->in;
    demand_order *order = rc_calloc(in->n_demands + 1, sizeof(*order));
    for (size_t i = 0; i < in->n_demands; i++) {
        need_add_bundle(&order[i].n, &in->demands[i].shape);
        order[i].index = i;
    }
    qsort(order, in->n_demands, sizeof(*order), demand_cmp);
    for (size_t i = 0; i < in->n_demands; i++) {
        int64_t count = in->demands[order[i].index].count;
        if (count <= 0)
            continue;
        int64_t left = place(s, &order[i].n, count, 0, order[i].index, 0, 0, 0);
        if (left > 0) {
            char prefix[48];
            snprintf(prefix, sizeof(prefix), "%lld x ", (long long)left);
            report_infeasible(s, 0, order[i].index, left, &order[i].n, prefix);
        }
    }
    for (size_t i = 0; i < in->n_demands; i++)
        need_free(&order[i].n);
    rc_free(order);
}

static void final_verdicts(dstate *s)
{
    for (size_t o = 0; o < s->n_offers; o++) {
        mk_offer_verdict *v = &s->out->verdicts[o];
        if (!v->eligible)
            continue;
        if (v->launches > 0)
            verdict(v, "eligible; chosen for %d host(s) this round", v->launches);
        else if (s->dyn_why[o] == R_BUDGET)
            set_why(v, "eligible; not chosen: over budget after this round's launches");
        else if (s->dyn_why[o] == R_MAX_HOSTS)
            set_why(v, "eligible; not chosen: max hosts reached by this round's launches");
        else
            set_why(v, "eligible; not chosen: fits no pending shape");
    }
    /* Unused offers whose host fits some pending shape: cheaper offers served it. */
    for (size_t g = 0; g < s->n_groups; g++) {
        if (!s->groups[g].fits_pending)
            continue;
        for (size_t m = 0; m < s->groups[g].n_members; m++) {
            size_t o = s->groups[g].members[m];
            mk_offer_verdict *v = &s->out->verdicts[o];
            if (!v->launches && !s->dyn_why[o])
                set_why(v, "eligible; not chosen: cheaper offers serve the pending demand it fits");
        }
    }
}

static void state_free(dstate *s)
{
    rc_free(s->eff);
    rc_free(s->score);
    rc_free(s->left);
    rc_free(s->cls);
    rc_free(s->static_why);
    rc_free(s->dyn_why);
    rc_free(s->class_limit);
    rc_free(s->class_now);
    rc_free(s->limit_now);
    rc_free(s->limit_launched);
    for (size_t g = 0; g < s->n_groups; g++)
        rc_free(s->groups[g].members);
    rc_free(s->groups);
    for (size_t h = 0; h < s->n_hosts; h++)
        rc_free(s->hosts[h].cap_free);
    rc_free(s->hosts);
    rc_free(s->fit_group);
    rc_free(s->fit_k);
    rc_free(s->undo);
}

int mk_decide(const mk_decide_input *in, mk_decision *out)
{
    if (!in || !out)
        return RC_EINVAL;
    memset(out, 0, sizeof(*out));
    if ((in->n_offers && !in->offers) || (in->n_demands && !in->demands) || (in->n_gangs && !in->gangs) ||
        (in->n_capacity && !in->capacity))
        return RC_EINVAL;
    dstate s = {.in = in, .n_offers = in->n_offers, .out = out};
    mk_config_defaults(&s.defaults);
    s.cfg = in->config ? in->config : &s.defaults;
    if (in->ledger)
        s.ledger = *in->ledger;
    else
        mk_ledger_init(&s.ledger, 0, 0);
    out->verdicts = rc_calloc(in->n_offers + 1, sizeof(*out->verdicts));
    prepare_offers(&s);
    build_groups(&s);
    for (size_t c = 0; c < in->n_capacity; c++)
        host_push(&s, host_of_capacity(&in->capacity[c]));
    top_up_min_hosts(&s);
    for (size_t g = 0; g < in->n_gangs; g++)
        decide_gang(&s, g);
    decide_demand(&s);
    final_verdicts(&s);
    state_free(&s);
    return 0;
}

void mk_decision_free(mk_decision *d)
{
    if (!d)
        return;
    rc_free(d->launches);
    rc_free(d->infeasible);
    rc_free(d->verdicts);
    memset(d, 0, sizeof(*d));
}
