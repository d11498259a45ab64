/*
 * sched_int.h: private structures of the scheduler library, shared by its files and by
 * nobody else (SQLite's XInt.h habit).
 *
 * Invariants the files rely on:
 *   - node->avail[r] <= node->total[r] and >= 0 for every resource, same for custom ones;
 *   - avail[SCHED_GPU] is the sum of gpu_avail[]; each gpu_avail[i] is in [0, SCHED_UNIT];
 *   - total[SCHED_GPU] == n_gpus * SCHED_UNIT;
 *   - node->res is sorted by id (custom resources only, ids >= SCHED_N_PREDEFINED);
 *   - node->labels is sorted by key, keys unique;
 *   - a node is in v->buckets[r] iff its total of r is > 0, in v->nongpu iff it has no GPU,
 *     in the label bucket "key\0value" iff it carries that label; the *_pos fields say
 *     where, so removal is a swap with the last entry;
 *   - node->util caches sched_node_utilization and is refreshed on every availability
 *     change (sched__node_touch).
 * Single-threaded like the view.
 */
#ifndef RAYC_SCHEDULER_SCHED_INT_H
#define RAYC_SCHEDULER_SCHED_INT_H

#include <stdint.h>

#include "rc_map.h"
#include "rayc_sched.h"

/* A list of nodes with O(1) append and swap-remove (an index bucket). */
typedef struct sched__list {
    sched_node **items;
    uint32_t n;
    uint32_t cap;
} sched__list;

typedef struct sched__res {
    uint32_t id;
    uint32_t bucket_pos; /* this node's position in v->buckets[id] */
    sched_amount total;
    sched_amount avail;
} sched__res;

typedef struct sched__label {
    char *key; /* owned */
    char *value;
    sched__list *bucket; /* the view's bucket for key=value */
    uint32_t bucket_pos;
} sched__label;

struct sched_node {
    /* Hot fields first: a feasibility check reads these and little else. */
    sched_amount total[SCHED_N_PREDEFINED];
    sched_amount avail[SCHED_N_PREDEFINED];
    float util; /* cached critical-resource utilization */
    uint8_t alive;
    uint8_t draining;
    uint8_t usable; /* alive && !draining */
    uint8_t pad_;
    uint32_t n_gpus;
    uint32_t n_res;
    sched__res *res;
    sched_amount *gpu_avail; /* n_gpus entries */
    uint64_t *gpu_mem;       /* n_gpus entries, bytes; 0 = unknown */
    uint32_t n_labels;
    sched__label *labels;
    uint32_t mark; /* bundle placement: == v->mark_gen while used by the group */
    uint32_t slot; /* position in v->nodes */
    uint32_t pre_pos[SCHED_N_PREDEFINED];
    uint32_t nongpu_pos;
    double price;
    char *accel; /* owned, or NULL */
    uint8_t id[RC_NODE_ID_SIZE];
};

typedef struct sched__scored {
    sched_node *node;
    double score;
} sched__scored;

struct sched_view {
    sched_view_config cfg;
    /* Resource registry: name -> id + 1 (as a pointer), id -> name (NULL: a free id) and
     * id -> references. Ids below n_res_names have been handed out; freed ones wait in the
     * free_ids ring (oldest first) to be handed out again. */
    rc_map res_ids;
    char **res_names;
    uint32_t *res_refs;
    uint32_t n_res_names;
    uint32_t cap_res_names;
    uint32_t n_live_names;
    uint32_t *free_ids; /* ring of cap_res_names entries */
    uint32_t free_head;
    uint32_t free_len;
    /* Index. */
    sched__list nodes;    /* every node, view order */
    sched__list *buckets; /* per resource id (n_res_names of them) */
    sched__list nongpu;   /* nodes without GPUs */
    rc_map label_buckets; /* "key\0value" -> sched__list * */
    rc_map by_id;         /* NodeID bytes -> sched_node * */
    uint32_t n_usable;    /* alive and not draining */
    uint32_t n_gpu_nodes; /* nodes whose total has GPUs */
    /* Highest price among nodes, recomputed lazily for the cost term. */
    double max_price;
    int max_price_dirty;
    /* SPREAD's round-robin position in view order (Ray's spread_scheduling_next_index). */
    uint32_t spread_next;
    /* Scratch for policies: one entry per node. */
    sched__scored *scratch;
    uint32_t scratch_cap;
    /* Scratch for bundle placement. */
    sched_alloc *b_allocs;
    sched_node **b_nodes;
    uint32_t *b_order;
    uint32_t b_cap;
    uint32_t mark_gen;
};

/* ---- sched_view.c: the registry ---- */
/* The ID of name, interning it (with no reference: the caller takes one right away or
 * calls sched__resource_drop_unused). */
uint32_t sched__intern(sched_view *v, const char *name);
/* Frees id if it is a custom name nothing refers to. */
void sched__resource_drop_unused(sched_view *v, uint32_t id);

/* ---- sched_resource.c ---- */
/* Writes a byte count in binary units ("40 GiB", "1.50 MiB"). */
void sched__fmt_bytes(double bytes, char *buf, size_t len);
/* Formats an amount of resource id the way people read it ("16 CPU", "40 GiB memory"). */
void sched__fmt_resource(const sched_view *v, uint32_t id, sched_amount amount, char *buf,
                         size_t len);
/* Formats a request's resources as "{CPU: 4, GPU: 1}". */
void sched__fmt_request(const sched_view *v, const sched_request *r, char *buf, size_t len);
/* Checks a request before scheduling; on a problem writes why and returns RC_EINVAL. */
int sched__request_check(const sched_view *v, const sched_request *r, char *why, size_t len);

/* ---- sched_node.c ---- */
/* Custom resource entry of node, or NULL. */
sched__res *sched__node_res(const sched_node *n, uint32_t id);
/* 1 if r's resources fit node's available amounts (avail=1) or totals (avail=0),
 * GPU instances and gpu_memory included; labels and liveness not checked. */
int sched__node_fits(const sched_node *n, const sched_request *r, int avail);
/* Recomputes util after availability changed. */
void sched__node_touch(sched_node *n);
/* Spreads a node-wide GPU amount over the instances (reports without instance detail). */
void sched__node_spread_gpu(sched_node *n, sched_amount amount);

/* ---- sched_label.c ---- */
/* Label value of node, or NULL (binary search over the sorted labels). */
const char *sched__node_label(const sched_node *n, const char *key);
/* For candidate narrowing: the i-th constraint if it is IN with exactly one value. */
int sched__selector_single_in(const sched_selector *s, size_t i, const char **key,
                              const char **value);
/* Validates a label key or value with Ray's rules; writes a message into err. */
int sched__label_key_check(const char *key, sched_err *err);
int sched__label_value_check(const char *key, const char *value, sched_err *err);

/* ---- sched_view.c ---- */
/* Smallest index list that holds every node that could fit r and match sel (sel2 too). */
const sched__list *sched__candidates(const sched_view *v, const sched_request *r,
                                     const sched_selector *sel2);
/* Makes the scratch array hold at least n entries. */
void sched__scratch_reserve(sched_view *v, uint32_t n);
/* Highest price among nodes (cached). */
double sched__max_price(sched_view *v);
/* Ray's top-k size for this view: max(top_k_absolute, fraction * usable nodes). */
uint32_t sched__top_k(const sched_view *v);
/* 1 if n could be used for r at all: usable, matches r's selector. */
static inline int sched__node_usable_for(const sched_node *n, const sched_request *r)
{
    return n->usable && (!r->selector || sched_selector_matches(r->selector, n));
}

/* ---- the policies, one per file (sched_policy.c's table) ---- */
sched_status sched__policy_hybrid(sched_view *v, const sched_request *r, const sched_options *o,
                                  sched_rng *rng, sched_decision *d);
sched_status sched__policy_spread(sched_view *v, const sched_request *r, const sched_options *o,
                                  sched_rng *rng, sched_decision *d);
sched_status sched__policy_affinity(sched_view *v, const sched_request *r, const sched_options *o,
                                    sched_rng *rng, sched_decision *d);
sched_status sched__policy_node_label(sched_view *v, const sched_request *r, const sched_options *o,
                                      sched_rng *rng, sched_decision *d);
sched_status sched__policy_cost(sched_view *v, const sched_request *r, const sched_options *o,
                                sched_rng *rng, sched_decision *d);

/* ---- sched_hybrid.c ---- */
/* Picks uniformly among the k best (lowest score, then node ID) of cand[0..n). */
sched_node *sched__pick_top_k(sched__scored *cand, uint32_t n, uint32_t k, sched_rng *rng);

/* ---- sched_explain.c (refusal path only) ---- */
/* Fills d as NEVER with a sentence naming what no node has. */
sched_status sched__explain_never(sched_view *v, const sched_request *r,
                                  const sched_selector *extra, sched_decision *d);
/* NEVER via sched__explain_never, except when avoid_local_node excluded the only node that
 * could hold r (then NOT_NOW without a node: the caller keeps the work local). */
sched_status sched__refuse_never(sched_view *v, const sched_request *r, const sched_options *o,
                                 const sched_selector *extra, sched_decision *d);
/* Writes why a single node can never hold r ("it has 1 GPU") into buf. */
void sched__explain_node(sched_view *v, const sched_node *n, const sched_request *r, char *buf,
                         size_t len);
/* Writes "ab12cd34…" (first 4 bytes in hex) for a node. */
char *sched__node_short(const sched_node *n, char *buf, size_t len);
/* Fills d as NOT_NOW (node may be NULL) explaining that count feasible nodes are busy. */
sched_status sched__explain_not_now(sched_view *v, const sched_request *r, sched_node *node,
                                    uint32_t feasible, sched_decision *d);

/* Writes a formatted sentence into d->why. */
void sched__why(sched_decision *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline sched_status sched__ok(sched_decision *d, sched_node *n)
{
    d->status = SCHED_OK;
    d->node = n;
    d->why[0] = '\0';
    return SCHED_OK;
}

#endif
