/*
 * rayc_sched.h: rayc's scheduler library, the decision-making core that raylets (task leases,
 * spillback) and the GCS (actors, placement groups) share. ARCHITECTURE §7.
 *
 * What it holds:
 *   - fixed-point resource amounts (1 unit = 0.0001, Ray's precision) with Ray's validation
 *     rules, resource names interned to small integer IDs per view;
 *   - a cluster view of nodes (totals, availability, labels, per-instance GPUs with their
 *     memory, accelerator type, price per hour, alive/draining) with an index from resource
 *     and label to the nodes that have them;
 *   - the policies behind one function-pointer interface: DEFAULT (Ray's hybrid), SPREAD,
 *     NODE_AFFINITY, NODE_LABEL, COST; and placement-group bundle placement (PACK, SPREAD,
 *     STRICT_PACK, STRICT_SPREAD);
 *   - an explanation for every refusal.
 *
 * Rules: no I/O, no clock, no global mutable state, no randomness of its own. Randomness
 * comes from a sched_rng the caller seeds and owns, so the same view, request, options and
 * seed give the same decision. A view and everything reached through it belong to one
 * thread (the loop thread in daemons); schedule calls use scratch space inside the view,
 * so even "read-only" decisions need exclusive access.
 *
 * Memory: the caller frees what it creates with the matching *_free; decisions carry their
 * explanation in a fixed buffer, so a decision owns no heap memory. Node handles
 * (sched_node *) stay valid until sched_view_remove_node or sched_view_free.
 *
 * Typical use (a raylet choosing where a task runs):
 *
 *     sched_view *v = sched_view_new(NULL);            // freed with sched_view_free
 *     sched_view_add_node(v, node_id, &spec, &local, &err);
 *     sched_request r;
 *     sched_request_init(&r);
 *     sched_request_set(v, &r, "CPU", 1, &err);         // RC_EINVAL + err.msg if invalid
 *     sched_request_set(v, &r, "GPU", 0.5, &err);
 *     sched_options o;
 *     sched_options_init(&o);
 *     o.preferred_node = local;
 *     sched_decision d;
 *     if (sched_schedule(v, &r, &o, &rng, &d) == SCHED_OK &&
 *         sched_node_allocate(v, d.node, &r, &alloc) == 0)
 *         ... alloc.gpu_index[] -> CUDA_VISIBLE_DEVICES; later sched_node_free(v, d.node, &alloc)
 *     else
 *         ... d.status says queue (NOT_NOW), give up (NEVER) or fix the request; d.why says why
 */
#ifndef RAYC_SCHEDULER_SCHED_H
#define RAYC_SCHEDULER_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "rc_ids.h"

/* ---------------------------------------------------------------------------------------
 * Fixed-point amounts
 * ------------------------------------------------------------------------------------- */

/* A resource amount in units of 1/SCHED_UNIT (0.0001), like Ray's FixedPoint. Memory
 * resources are bytes, so 1 GiB of memory is 2^30 * SCHED_UNIT units. */
typedef int64_t sched_amount;

#define SCHED_UNIT ((sched_amount)10000)
/* The largest amount a resource may have: 10^14 whole (e.g. 90 TiB of memory), so that
 * sums over a placement group's bundles cannot overflow. */
#define SCHED_AMOUNT_MAX ((sched_amount)1000000000000000000LL)

/* Predefined resource IDs; custom resources get IDs from SCHED_N_PREDEFINED up. */
enum {
    SCHED_CPU = 0,
    SCHED_GPU = 1,
    SCHED_MEMORY = 2,
    SCHED_OBJECT_STORE_MEMORY = 3,
    SCHED_N_PREDEFINED = 4,
};

enum {
    SCHED_REQ_MAX_RESOURCES = 16, /* distinct resources in one request or bundle */
    SCHED_MAX_GPUS = 32,          /* GPU instances per node */
    SCHED_WHY_MAX = 320,          /* explanation buffer, NUL included */
    SCHED_ERR_MAX = 256,          /* validation message buffer, NUL included */
};

/* A validation message. Functions taking sched_err *err write a sentence naming the
 * offending resource, label or value when they return RC_EINVAL; err may be NULL. */
typedef struct sched_err {
    char msg[SCHED_ERR_MAX];
} sched_err;

/* Converts a user-facing amount for resource `name` to fixed point with Ray's rules:
 * finite, not negative, not finer than 0.0001 when non-zero, a whole number when above 1,
 * at most SCHED_AMOUNT_MAX. Returns 0 or RC_EINVAL with a message in err. */
int sched_amount_from_double(const char *name, double value, sched_amount *out, sched_err *err);
/* Writes amount as a decimal without trailing zeros ("0.5", "16") into buf. Returns buf. */
char *sched_amount_format(sched_amount amount, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------
 * Randomness (caller-owned; splitmix64)
 * ------------------------------------------------------------------------------------- */

typedef struct sched_rng {
    uint64_t state;
} sched_rng;

void sched_rng_seed(sched_rng *rng, uint64_t seed);
uint64_t sched_rng_next(sched_rng *rng);
/* Uniform in [0, n); n must be at least 1. */
uint32_t sched_rng_below(sched_rng *rng, uint32_t n);

/* ---------------------------------------------------------------------------------------
 * Label selectors (Ray's label_selector and NodeLabelSchedulingStrategy expressions)
 * ------------------------------------------------------------------------------------- */

typedef enum sched_label_op {
    SCHED_LABEL_IN,             /* key: value, key: in(a,b)  */
    SCHED_LABEL_NOT_IN,         /* key: !value, key: !in(a,b); also matches nodes without key */
    SCHED_LABEL_EXISTS,         /* NodeLabelSchedulingStrategy Exists */
    SCHED_LABEL_DOES_NOT_EXIST, /* NodeLabelSchedulingStrategy DoesNotExist */
} sched_label_op;

/* A conjunction of label constraints. An empty selector matches every node. */
typedef struct sched_selector sched_selector;

/* Returns a new empty selector; free it with sched_selector_free. */
sched_selector *sched_selector_new(void);
void sched_selector_free(sched_selector *s);
/* Adds one entry of Ray's label_selector dict: key plus a value expression "v", "!v",
 * "in(a,b,...)" or "!in(a,b,...)". Keys and values follow Ray's (Kubernetes') rules.
 * Returns 0 or RC_EINVAL with a message naming the key and expression. */
int sched_selector_add(sched_selector *s, const char *key, const char *expr, sched_err *err);
/* Adds a NodeLabelSchedulingStrategy expression: In/NotIn need at least one value,
 * Exists/DoesNotExist take none. Returns 0 or RC_EINVAL. */
int sched_selector_add_expr(sched_selector *s, const char *key, sched_label_op op,
                            const char *const *values, size_t n_values, sched_err *err);
/* Parses "key: expr, key: expr" (commas inside in(...) belong to the list) into a new
 * selector in *out, freed by the caller with sched_selector_free. "" gives an empty
 * selector. Returns 0 or RC_EINVAL (nothing stored in *out). */
int sched_selector_parse(const char *text, sched_selector **out, sched_err *err);
/* Number of constraints. */
size_t sched_selector_count(const sched_selector *s);
/* Constraint i (< sched_selector_count) of s: its key, operator and values (borrowed from s,
 * valid while s lives). Returns 0 or RC_ERANGE. */
int sched_selector_constraint(const sched_selector *s, size_t i, const char **key, sched_label_op *op,
                              const char *const **values, size_t *n_values);
/* Writes the selector in the text form sched_selector_parse reads ("region: in(us,eu)")
 * into buf (truncated to len). Returns buf. */
char *sched_selector_format(const sched_selector *s, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------
 * Cluster view
 * ------------------------------------------------------------------------------------- */

typedef struct sched_view sched_view;
typedef struct sched_node sched_node;

typedef struct sched_view_config {
    double spread_threshold; /* Ray's scheduler_spread_threshold: 0.5 */
    double top_k_fraction;   /* Ray's scheduler_top_k_fraction: 0.2 */
    uint32_t top_k_absolute; /* Ray's scheduler_top_k_absolute: 1 */
    int avoid_gpu_nodes;     /* Ray's scheduler_avoid_gpu_nodes: 1 */
    /* Bundle placement scores at most this many candidate nodes per bundle (0: all).
     * Ray scores every node; sampling keeps 1k-node clusters fast (default 16). */
    uint32_t bundle_sample;
} sched_view_config;

void sched_view_config_default(sched_view_config *cfg);

/* Returns a new empty view (cfg NULL: defaults); free with sched_view_free. */
sched_view *sched_view_new(const sched_view_config *cfg);
/* Frees the view and every node in it (handles become invalid). */
void sched_view_free(sched_view *v);

/* Resource names are interned per view and reference-counted. The predefined names
 * (SCHED_CPU...) are permanent. A custom name lives while something refers to it: a node
 * that has the resource, a request entry set by name, or a caller that holds a reference
 * from sched_view_resource_id or sched_view_resource_retain. When the last reference goes
 * the name is freed and its ID may later name something else, so an ID is only good while
 * a reference is held on it. */

/* Interns a resource name and takes a reference on it for the caller (release it with
 * sched_view_resource_release), returning its ID in *out. Returns 0 or RC_EINVAL for an
 * empty name. */
int sched_view_resource_id(sched_view *v, const char *name, uint32_t *out);
/* The ID of a name that is interned now, without taking a reference: 0 or RC_ENOENT. */
int sched_view_resource_find(const sched_view *v, const char *name, uint32_t *out);
/* Takes / drops one reference on a live ID (no-ops for predefined or unknown IDs). */
void sched_view_resource_retain(sched_view *v, uint32_t id);
void sched_view_resource_release(sched_view *v, uint32_t id);
/* Number of live names, the four predefined ones included. */
size_t sched_view_resource_count(const sched_view *v);
/* References held on a live custom ID (UINT32_MAX for a predefined one, 0 if unknown). */
uint32_t sched_view_resource_refs(const sched_view *v, uint32_t id);
/* The name of a resource ID, or NULL if unknown or freed. Valid while the ID is held. */
const char *sched_view_resource_name(const sched_view *v, uint32_t id);

typedef struct sched_named_amount {
    const char *name;
    double amount;
} sched_named_amount;

typedef struct sched_label {
    const char *key;
    const char *value;
} sched_label;

/* What a node has. Everything is copied by the view. */
typedef struct sched_node_spec {
    const sched_named_amount *resources; /* totals: CPU, GPU, memory, custom... */
    size_t n_resources;
    const sched_label *labels;
    size_t n_labels;
    /* Memory of each GPU instance in bytes: none (unknown, 0), one value for all, or one
     * per GPU instance. */
    const uint64_t *gpu_memory;
    size_t n_gpu_memory;
    /* e.g. "A100"; NULL: the label ray.io/accelerator-type if present. A node with an
     * accelerator type gets label ray.io/accelerator-type and resource
     * accelerator_type:<T> = 1, as Ray's raylet does. */
    const char *accelerator_type;
    /* Dollars per hour; NaN: parse label rayc.io/price-per-hour, else 0 (owned host). */
    double price_per_hour;
} sched_node_spec;

/* Initialises spec to an empty node (no resources, price NaN). */
void sched_node_spec_init(sched_node_spec *spec);

/* Adds a node (alive, not draining, everything available). Returns 0 and the handle in
 * *out (out may be NULL), RC_EEXIST if the ID is present, or RC_EINVAL with a message. */
int sched_view_add_node(sched_view *v, const uint8_t id[RC_NODE_ID_SIZE],
                        const sched_node_spec *spec, sched_node **out, sched_err *err);
/* Replaces a node's totals, labels, GPU memory, accelerator type and price. What is in use
 * (total - available) stays in use; GPU instance state is kept when the GPU count is
 * unchanged, otherwise all instances start free. Returns 0 or RC_EINVAL (node unchanged). */
int sched_view_update_node(sched_view *v, sched_node *node, const sched_node_spec *spec,
                           sched_err *err);
/* Removes and frees the node; outstanding allocations on it are forgotten. */
void sched_view_remove_node(sched_view *v, sched_node *node);
/* Returns the node with this ID, or NULL. */
sched_node *sched_view_find(const sched_view *v, const uint8_t id[RC_NODE_ID_SIZE]);
/* Nodes in view order (changes when nodes are removed); i < sched_view_node_count. */
size_t sched_view_node_count(const sched_view *v);
sched_node *sched_view_node_at(const sched_view *v, size_t i);

/* Dead nodes are never chosen and don't count for feasibility; draining nodes are treated
 * the same (they will go away), as Ray's is_node_available does. */
void sched_node_set_alive(sched_view *v, sched_node *node, int alive);
void sched_node_set_draining(sched_view *v, sched_node *node, int draining);

/* Applies a resource report: the listed amounts become the node's available amounts and
 * resources not listed become 0 (Ray's reports carry the whole map). Amounts are clamped
 * to the totals. A changed GPU amount is spread over the instances greedily (whole free
 * instances first, then one partial). Returns 0 or RC_EINVAL (node unchanged). */
int sched_node_report_available(sched_view *v, sched_node *node, const sched_named_amount *avail,
                                size_t n_avail, sched_err *err);
/* Sets one resource's available amount by ID (clamped to [0, total]): the cheap path for
 * incremental updates. GPU goes through the same instance spreading. Returns 0, or
 * RC_ENOENT if res_id is a custom resource the node lacks. */
int sched_node_set_available(sched_view *v, sched_node *node, uint32_t res_id, sched_amount amount);

const uint8_t *sched_node_id(const sched_node *node);
int sched_node_is_alive(const sched_node *node);
int sched_node_is_draining(const sched_node *node);
sched_amount sched_node_total(const sched_node *node, uint32_t res_id);
sched_amount sched_node_available(const sched_node *node, uint32_t res_id);
uint32_t sched_node_gpu_count(const sched_node *node);
sched_amount sched_node_gpu_available(const sched_node *node, uint32_t instance);
uint64_t sched_node_gpu_memory(const sched_node *node, uint32_t instance);
/* Ray's critical-resource utilization: the highest of 1 - available/total over CPU,
 * memory and object store memory. */
double sched_node_utilization(const sched_node *node);
double sched_node_price(const sched_node *node);
/* The value of a label, or NULL. Valid until the node is updated or removed. */
const char *sched_node_label(const sched_node *node, const char *key);
/* The accelerator type, or NULL. */
const char *sched_node_accelerator_type(const sched_node *node);
/* 1 if the node's labels satisfy every constraint of s (NULL matches). */
int sched_selector_matches(const sched_selector *s, const sched_node *node);

/* ---------------------------------------------------------------------------------------
 * Requests and allocations
 * ------------------------------------------------------------------------------------- */

#define SCHED_NO_RESOURCE UINT32_MAX

/* What a task, actor or bundle needs. Plain data, built with the functions below, which
 * keep ids sorted, unique and amounts positive. Each entry set by name (sched_request_set,
 * _set_custom, _set_accelerator_type) holds a reference on its resource name until
 * sched_request_release; entries set by ID borrow the caller's. A struct copy shares the
 * original's references: a copy that outlives it takes its own with sched_request_retain. */
typedef struct sched_request {
    uint32_t n;
    uint32_t held; /* bit i: entry i holds a reference on its name */
    uint32_t id[SCHED_REQ_MAX_RESOURCES];
    sched_amount amount[SCHED_REQ_MAX_RESOURCES];
    uint64_t gpu_memory;            /* bytes each GPU instance must have; 0: any */
    uint32_t accelerator_id;        /* accelerator_type:<T> resource, or SCHED_NO_RESOURCE */
    const sched_selector *selector; /* Ray's label_selector (hard); borrowed; NULL: any */
} sched_request;

void sched_request_init(sched_request *r);
/* Sets the amount of a resource by name (CPU, GPU, memory, object_store_memory or custom);
 * 0 removes it. Returns 0 or RC_EINVAL with a message (and r unchanged). */
int sched_request_set(sched_view *v, sched_request *r, const char *name, double amount,
                      sched_err *err);
/* Same for one entry of Ray's resources={...} dict: rejects the predefined names, which
 * have their own options (num_cpus, num_gpus, memory, object_store_memory). */
int sched_request_set_custom(sched_view *v, sched_request *r, const char *name, double amount,
                             sched_err *err);
/* Sets an already validated amount by ID (0 removes). A new entry borrows the caller's
 * reference on id. Returns 0, or RC_ERANGE when the request already has
 * SCHED_REQ_MAX_RESOURCES resources or amount is out of range. */
int sched_request_set_id(sched_request *r, uint32_t id, sched_amount amount);
/* Drops the references r's entries hold and empties r (its other fields stay). */
void sched_request_release(sched_view *v, sched_request *r);
/* Takes another reference for each entry of r that holds one (for a copy of r). */
void sched_request_retain(sched_view *v, const sched_request *r);
/* Ray's accelerator_type option: adds resource accelerator_type:<type> = 0.001, which only
 * nodes of that accelerator type have. Returns 0 or RC_EINVAL. */
int sched_request_set_accelerator_type(sched_view *v, sched_request *r, const char *type,
                                       sched_err *err);
/* The amount of a resource in r (0 if absent). */
sched_amount sched_request_get(const sched_request *r, uint32_t id);

/* What an allocation took from a node, to be given back exactly by sched_node_free. Its IDs
 * borrow: whoever holds the allocation keeps a reference on its names (usually through the
 * request it was made from) until it is freed. */
typedef struct sched_alloc {
    uint32_t n;
    uint32_t id[SCHED_REQ_MAX_RESOURCES];
    sched_amount amount[SCHED_REQ_MAX_RESOURCES];
    uint32_t n_gpus;                         /* instances used */
    uint8_t gpu_index[SCHED_MAX_GPUS];       /* ascending: CUDA_VISIBLE_DEVICES */
    sched_amount gpu_amount[SCHED_MAX_GPUS]; /* taken from each instance */
} sched_alloc;

/* Takes r's resources from node if they are available now: fractional GPUs go best-fit to
 * the fullest instance that still fits (and has gpu_memory), whole GPUs to whole free
 * instances. Labels and liveness are the policy's business, not checked here. Returns 0
 * with *out filled, or RC_EBUSY (nothing taken). */
int sched_node_allocate(sched_view *v, sched_node *node, const sched_request *r, sched_alloc *out);
/* Gives back what a was given (clamped to the totals, in case a report or update came in
 * between). Returns 0, or RC_EINVAL if a names a resource or instance the node lacks. */
int sched_node_free(sched_view *v, sched_node *node, const sched_alloc *a);
/* Writes the GPU instance indices of a as "0,2" into buf (what CUDA_VISIBLE_DEVICES gets).
 * Returns buf. */
char *sched_alloc_gpu_list(const sched_alloc *a, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------
 * Decisions and policies
 * ------------------------------------------------------------------------------------- */

typedef enum sched_status {
    SCHED_OK,          /* node has the resources free now */
    SCHED_NOT_NOW,     /* feasible, busy: queue (on node, when set) and retry */
    SCHED_NEVER,       /* no node in the view could ever hold it; why says what is unmet */
    SCHED_UNAVAILABLE, /* busy and the options asked to fail rather than queue */
    SCHED_INVALID,     /* the request or options are malformed; why says how */
} sched_status;

const char *sched_status_name(sched_status s);

typedef struct sched_decision {
    sched_status status;
    /* OK: the chosen node. NOT_NOW: the feasible node to queue on (Ray queues there), or
     * NULL when the options require an available node. Otherwise NULL. */
    sched_node *node;
    /* "" for OK; otherwise a sentence. Written only on the refusal path. */
    char why[SCHED_WHY_MAX];
} sched_decision;

typedef enum sched_strategy {
    SCHED_STRATEGY_DEFAULT,       /* Ray's hybrid policy */
    SCHED_STRATEGY_SPREAD,        /* round-robin over available nodes */
    SCHED_STRATEGY_NODE_AFFINITY, /* Ray's NodeAffinitySchedulingStrategy */
    SCHED_STRATEGY_NODE_LABEL,    /* Ray's NodeLabelSchedulingStrategy */
    SCHED_STRATEGY_COST,          /* cheapest available node, then least utilized */
    SCHED_STRATEGY_COUNT,
} sched_strategy;

typedef struct sched_options {
    sched_strategy strategy;
    /* Ray's preferred (local) node: DEFAULT prefers it while it is the least utilized
     * (any node below the spread threshold counts as least). NULL: none. */
    const sched_node *preferred_node;
    int avoid_local_node;  /* never choose preferred_node (Ray's force_spillback) */
    int require_available; /* refuse NOT_NOW-with-node: only a node free now will do */
    /* DEFAULT: 0 keeps Ray's scoring; w > 0 adds w * price / highest price to each node's
     * score (and scores every candidate, so it is slower). */
    double cost_weight;
    /* NODE_AFFINITY */
    uint8_t affinity_node[RC_NODE_ID_SIZE];
    int affinity_soft;
    int spill_on_unavailable; /* soft only: busy target -> DEFAULT */
    int fail_on_unavailable;  /* hard only: busy target -> SCHED_UNAVAILABLE */
    /* NODE_LABEL: hard must match, soft is preferred (both borrowed; NULL: none). */
    const sched_selector *label_hard;
    const sched_selector *label_soft;
} sched_options;

void sched_options_init(sched_options *o);

/* The policy interface: one function per strategy, each in its own file. It fills d and
 * returns d->status. */
typedef sched_status (*sched_schedule_fn)(sched_view *v, const sched_request *r,
                                          const sched_options *o, sched_rng *rng,
                                          sched_decision *d);
typedef struct sched_policy {
    const char *name;
    sched_schedule_fn schedule;
} sched_policy;

/* The policy for a strategy, or NULL if out of range. */
const sched_policy *sched_policy_get(sched_strategy s);

/* Validates r and o (SCHED_INVALID with why), then runs o->strategy's policy. o NULL:
 * DEFAULT with no preferred node. Returns d->status. */
sched_status sched_schedule(sched_view *v, const sched_request *r, const sched_options *o,
                            sched_rng *rng, sched_decision *d);

/* ---------------------------------------------------------------------------------------
 * Placement groups
 * ------------------------------------------------------------------------------------- */

typedef enum sched_pg_strategy {
    SCHED_PG_PACK,
    SCHED_PG_SPREAD,
    SCHED_PG_STRICT_PACK,
    SCHED_PG_STRICT_SPREAD,
} sched_pg_strategy;

const char *sched_pg_strategy_name(sched_pg_strategy s);

/* Chooses a node for each of n bundles (each bundle's selector applies to it; STRICT_PACK
 * needs a node matching all of them). On SCHED_OK nodes_out[i] is bundle i's node;
 * otherwise nodes_out is left alone. Bundles placed earlier in the group count against a
 * node's availability for later ones. The view is unchanged on return: allocate with
 * sched_bundles_allocate. NOT_NOW: every bundle fits some existing node's totals (so a
 * node like one we have could take it) but the group can't be placed now; this includes
 * STRICT_SPREAD with more bundles than suitable nodes, which Ray keeps pending. NEVER: some
 * bundle (for STRICT_PACK: the whole group) fits no existing node even when empty. */
sched_status sched_place_bundles(sched_view *v, const sched_request *bundles, size_t n,
                                 sched_pg_strategy strategy, sched_rng *rng, sched_node **nodes_out,
                                 sched_decision *d);
/* Allocates bundle i on nodes[i] for every i, or nothing: on failure what was taken is
 * given back. Returns 0 with allocs[0..n) filled, or RC_EBUSY. */
int sched_bundles_allocate(sched_view *v, const sched_request *bundles, size_t n,
                           sched_node *const *nodes, sched_alloc *allocs);
/* Frees what sched_bundles_allocate took. */
void sched_bundles_free(sched_view *v, size_t n, sched_node *const *nodes,
                        const sched_alloc *allocs);

#endif
