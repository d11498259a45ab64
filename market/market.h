/*
 * The market adapter's decision library (ARCHITECTURE §9): offers, demand, the budget
 * ledger, failure memory and the packing of pending demand into offers with cost as the
 * objective. Pure C: no I/O, no clock and no randomness of its own (times are passed in as
 * unix milliseconds), so that rayc-market, its tests and rayc-bench share it.
 *
 * Units: CPUs and GPUs as counts (fractional allowed), memory and GPU memory in GiB
 * (gpu_memory is per GPU), prices in dollars per hour, durations in seconds.
 *
 * Parse errors are sentences that name the offer or the config field but not the file: the
 * caller prefixes the path ("offers.json: offer \"a100-x\": ..."). Every function here is
 * single-threaded over its arguments (rayc-market calls them from its loop thread only).
 */
#ifndef RAYC_MARKET_MARKET_H
#define RAYC_MARKET_MARKET_H

#include <stddef.h>
#include <stdint.h>

/* ---- offers ------------------------------------------------------------------------------ */

/* How a local-provider host misbehaves on purpose (tests and demos). */
typedef enum mk_behaviour {
    MK_HONEST = 0,
    MK_LAUNCH_ERROR,     /* the provider refuses the launch */
    MK_NEVER_REGISTERS,  /* launched, but no raylet ever joins */
    MK_FAKE_GPU,         /* joins, claims GPUs, answers the challenge wrongly */
    MK_SLOW,             /* joins, answers the challenge too late for its class */
    MK_VANISH_AFTER,     /* joins and works, then dies after vanish_after_s */
} mk_behaviour;

typedef struct mk_offer {
    char *id;        /* unique within its provider */
    char *provider;  /* the provider's name in the config */
    char *gpu_name;  /* "" for a CPU-only host */
    double num_gpus;
    double gpu_memory; /* GiB per GPU */
    double num_cpus;
    double memory; /* GiB */
    double price_per_hour;
    int64_t billing_increment_s; /* 0: per second */
    char *region;
    double reliability;       /* claimed, 0..1 */
    int64_t lease_duration_s; /* 0: no end */
    int available;            /* hosts that can be leased on this offer (default 1) */
    mk_behaviour behaviour;
    int64_t vanish_after_s; /* MK_VANISH_AFTER */
    /* Labels the host's raylet will carry (besides the market's own); may be empty. */
    char **label_keys, **label_values;
    size_t n_labels;
    char *host; /* ssh: the one host of the provider's list that serves this offer; NULL: any */
} mk_offer;

/* The class of an offer, the unit of failure memory and of verified performance:
 * "<gpu_name>x<num_gpus>" ("cpu<num_cpus>" for CPU-only hosts). Writes at most outlen bytes. */
void mk_offer_class(const mk_offer *o, char *out, size_t outlen);

/* The value of label key on a host leased from o: ray.io/accelerator-type (gpu_name, absent
 * for CPU hosts) and ray.io/market-region (region, absent when "") first, then o's own
 * labels; NULL when absent. */
const char *mk_offer_label(const mk_offer *o, const char *key);

/* Parses an offers file (a JSON array; fields as in the README). On error returns a negative
 * RC_E* code (RC_EPARSE: not JSON; RC_EINVAL: a bad field) and a sentence naming the offer
 * and the field in err, and *out is NULL. Required per offer: "id", "num_cpus" and
 * "price_per_hour"; unknown keys, duplicate ids and labels under the reserved "ray.io/"
 * prefix are errors. The provider name is stored in every offer. The array in *out is freed
 * with mk_offers_free. */
int mk_offers_parse(const char *json, size_t len, const char *provider, mk_offer **out, size_t *n_out, char *err,
                    size_t errlen);
void mk_offers_free(mk_offer *offers, size_t n);

/* ---- config ------------------------------------------------------------------------------ */

typedef struct mk_provider_config {
    char *name;
    char *type;   /* "local" or "ssh" */
    char *offers; /* local: path of the offers file (relative paths are relative to the config) */
    /* ssh: the hosts the admin owns, each with what it offers (an offers file of its own). */
    char *ssh_user, *ssh_key, *ssh_options;
    char **ssh_hosts;
    size_t n_ssh_hosts;
    char *rayc_bin; /* ssh: the directory of rayc on the hosts; NULL: rayc-market's own */
} mk_provider_config;

typedef struct mk_class_limit {
    char *offer_class; /* as mk_offer_class, or a gpu_name */
    int min_hosts, max_hosts; /* max_hosts -1: no limit */
} mk_class_limit;

typedef struct mk_config {
    double budget_per_hour;    /* <= 0: no cap */
    double budget_total;       /* <= 0: no cap */
    int64_t idle_timeout_s;    /* default 60 */
    int max_hosts;             /* all leases together; -1: no limit */
    mk_class_limit *limits;
    size_t n_limits;
    /* verification */
    int verify;                  /* default 1 */
    uint32_t verify_n;           /* matrix order for a CPU host; default 256 */
    uint32_t verify_n_per_gib;   /* extra order per GiB of claimed GPU memory; default 0 */
    uint32_t verify_spot_checks; /* rows opened; default 8 */
    double verify_time_limit_s;  /* default time bound; default 10 */
    int64_t recheck_interval_s;  /* random re-checks; 0: none; default 600 */
    /* failure memory */
    double failure_half_life_s;    /* default 600 */
    double failure_retry_below;    /* a class is tried again once its score is below; default 0.25 */
    double failure_penalty;        /* relaunch penalty per unit score, as a fraction of price; default 1 */
    /* per-state timeouts */
    int64_t launch_timeout_s;   /* REQUESTED -> ALLOCATED; default 60 */
    int64_t register_timeout_s; /* ALLOCATED -> RAY_RUNNING; default 60 */
    int64_t round_interval_ms;  /* default 1000 */
    mk_provider_config *providers;
    size_t n_providers;
} mk_config;

/* Fills c with the defaults above and no providers (nothing to free). */
void mk_config_defaults(mk_config *c);
/* Parses the config JSON; defaults for what it leaves out. Unknown keys are errors (a typo
 * must not silently drop a budget). At least one provider is required. On error returns a
 * negative RC_E* code with a sentence naming the field in err and leaves *out empty; on
 * success the caller frees *out with mk_config_free. */
int mk_config_parse(const char *json, size_t len, mk_config *out, char *err, size_t errlen);
void mk_config_free(mk_config *c);
/* The limit that applies to offer o: the one naming its class, else the one naming its
 * gpu_name; NULL if none. */
const mk_class_limit *mk_config_limit(const mk_config *c, const mk_offer *o);

/* ---- demand ------------------------------------------------------------------------------ */

typedef struct mk_amount {
    const char *name; /* "CPU", "GPU", "memory" (bytes, as Ray reports it), "accelerator_type:A100", ... */
    double value;
} mk_amount;

/* One label condition of a selector: key in values (negate: not in; an absent label is
 * "not in" anything). The key "rayc.io/gpu-memory" is numeric: its values are per-GPU
 * memory in bytes as on the node label (a value below 1 MiB is taken as GiB), and "in"
 * means at least the smallest of them ("not in": less than that). */
typedef struct mk_label_cond {
    const char *key;
    const char **values;
    size_t n_values;
    int negate;
} mk_label_cond;

typedef struct mk_bundle {
    const mk_amount *res;
    size_t n_res;
    const mk_label_cond *conds;
    size_t n_conds;
} mk_bundle;

typedef struct mk_demand {
    mk_bundle shape;
    int64_t count;
} mk_demand;

/* A gang (a pending placement group): all bundles or none. strict_spread: each bundle on its
 * own host; strict_pack: all on one host. */
typedef struct mk_gang {
    const mk_bundle *bundles;
    size_t n_bundles;
    int strict_spread, strict_pack;
    const char *details; /* placement group id and strategy, for explanations */
} mk_gang;

/* Capacity already there or on its way (leases launching, nodes running with room): demand
 * is fitted onto these first, as Ray's autoscaler does. */
typedef struct mk_capacity {
    const mk_amount *res; /* free resources */
    size_t n_res;
    const char **label_keys, **label_values;
    size_t n_labels;
} mk_capacity;

/* ---- budget ledger ------------------------------------------------------------------------- */

/* Spend is reserved before a launch and released if it fails, so retries never exceed the
 * caps. Per hour: the sum of the prices of live and reserved leases. Total: money spent so
 * far plus, for each live or reserved lease, its next billing increment. */
typedef struct mk_ledger {
    double budget_per_hour, budget_total; /* <= 0: no cap */
    double committed_per_hour;            /* live leases */
    double reserved_per_hour;             /* launches not yet confirmed */
    double spent_total;                   /* billed so far */
    double reserved_total;                /* increments held for live and reserved leases */
} mk_ledger;

void mk_ledger_init(mk_ledger *l, double budget_per_hour, double budget_total);
/* Dollars one billing increment of a host at price costs (an increment of 0, per-second
 * billing, holds one second). */
double mk_increment_cost(double price_per_hour, int64_t billing_increment_s);
/* 1 if a host at price with this billing increment fits both caps now (reserves nothing). */
int mk_ledger_fits(const mk_ledger *l, double price_per_hour, int64_t billing_increment_s);
/* 0 if a host at price with this billing increment fits both caps (and then reserves it),
 * else RC_EBUDGET, reserving nothing, with a sentence in why (may be NULL) naming the cap. */
int mk_ledger_reserve(mk_ledger *l, double price_per_hour, int64_t billing_increment_s, char *why, size_t whylen);
/* A reservation's launch failed: the reservation is given back. */
void mk_ledger_release(mk_ledger *l, double price_per_hour, int64_t billing_increment_s);
/* A reservation became a live lease. */
void mk_ledger_commit(mk_ledger *l, double price_per_hour);
/* A live lease ended after billed_s seconds (rounded up to its increment by the caller's
 * mk_billed_seconds): its spend moves to spent_total. */
void mk_ledger_end(mk_ledger *l, double price_per_hour, int64_t billing_increment_s, double billed_s);
/* A live lease entered its next billing increment: the increment it held is spent and the
 * next one is held. RC_EBUDGET (nothing changes) if that would exceed the total cap: the
 * caller releases the host before the increment starts. Once a lease has been renewed,
 * mk_ledger_end takes only the seconds billed since its last renewal. */
int mk_ledger_renew(mk_ledger *l, double price_per_hour, int64_t billing_increment_s, char *why, size_t whylen);
/* Seconds billed for a lease that ran run_s seconds: rounded up to the increment (whole
 * seconds for per-second billing); 0 for run_s <= 0. */
double mk_billed_seconds(double run_s, int64_t billing_increment_s);

/* ---- failure memory ------------------------------------------------------------------------ */

/* A score per (provider, offer class, region) that decays exponentially with the configured
 * half-life; each failure adds its weight (1 for a launch error or a timeout, 2 for a failed
 * verification). Kept as (value, at_ms) so that it survives restarts as plain data. */
typedef struct mk_score {
    char *key; /* "<provider>/<class>/<region>" */
    double value;
    int64_t at_ms;
} mk_score;

typedef struct mk_scores {
    mk_score *items;
    size_t n, cap;
    double half_life_s;
} mk_scores;

/* items are kept sorted by key (lookups are binary searches). */
void mk_scores_init(mk_scores *s, double half_life_s);
void mk_scores_free(mk_scores *s);
void mk_score_key(const mk_offer *o, char *out, size_t outlen);
/* The decayed score of key at now_ms; 0 if unknown (or s is NULL). */
double mk_score_get(const mk_scores *s, const char *key, int64_t now_ms);
void mk_score_add(mk_scores *s, const char *key, double weight, int64_t now_ms);
/* Restores a score as it was stored (value at at_ms), replacing any for key. */
void mk_score_set(mk_scores *s, const char *key, double value, int64_t at_ms);

/* ---- the decision ---------------------------------------------------------------------------- */

typedef struct mk_decide_input {
    const mk_offer *offers;
    size_t n_offers;
    const int *leased; /* per offer: hosts already leased on it (count against available) */
    const mk_demand *demands;
    size_t n_demands;
    const mk_gang *gangs;
    size_t n_gangs;
    const mk_capacity *capacity;
    size_t n_capacity;
    const mk_ledger *ledger; /* not changed: the decision works on a copy; NULL: no caps */
    const mk_scores *scores; /* may be NULL */
    const mk_config *config; /* NULL: defaults */
    /* Verified performance per offer class (1.0 when not measured yet); may be NULL. */
    double (*performance)(const char *offer_class, void *arg);
    void *performance_arg;
    /* Hosts leased per offer class now, for min/max limits; NULL: counted from leased. */
    int (*class_hosts)(const char *offer_class, void *arg);
    void *class_hosts_arg;
    int64_t now_ms;
} mk_decide_input;

/* One host to launch. */
typedef struct mk_launch {
    size_t offer; /* index into offers */
    int is_gang;  /* chosen for a gang (then index is into gangs), else for demand or min_hosts */
    size_t index;
    double effective_cost; /* price / (reliability x performance) + relaunch penalty */
    int bundles;           /* demand bundles it was chosen for (0: to keep a class's min_hosts) */
} mk_launch;

/* Demand that no affordable, eligible offer can serve. reason is one of "budget",
 * "no offer fits", "max hosts", "failure memory" (every fitting class is scored down),
 * followed by ": " and a sentence. */
typedef struct mk_infeasible {
    int is_gang;
    size_t index; /* into demands or gangs */
    int64_t count;
    char reason[256];
} mk_infeasible;

/* Per offer: whether it is eligible and why not, and its effective cost. why always says
 * something: "eligible; ..." (chosen, or why not needed) or the reason it is not. */
typedef struct mk_offer_verdict {
    int eligible;
    int launches; /* hosts this decision leases on it */
    double effective_cost;
    double score; /* failure memory now */
    char why[160];
} mk_offer_verdict;

typedef struct mk_decision {
    mk_launch *launches;
    size_t n_launches;
    mk_infeasible *infeasible;
    size_t n_infeasible;
    mk_offer_verdict *verdicts; /* n_offers of them */
} mk_decision;

/* Ray v2's bin-packing with cost as the objective: gangs first (all or nothing), then demand
 * largest and most constrained first; demand that fits existing capacity launches nothing;
 * otherwise each step leases the offer with the lowest effective cost per bundle it
 * satisfies, within the ledger's caps and the host limits, until demand is met or nothing
 * fits. Label selectors are matched against the offer's labels plus
 * ray.io/accelerator-type = gpu_name and ray.io/market-region = region; a shape's
 * "accelerator_type:X" resource needs gpu_name X; "rayc.io/gpu-memory" label conditions and
 * the "gpu_memory" resource (GiB) need that much per GPU. */
/* Gangs are decided in input order, before demand; classes below min_hosts are topped up
 * first. Ties go to the lower price, then the lower offer id, so the result depends on the
 * input only. leased may be NULL (nothing leased). Returns 0, or RC_EINVAL for a NULL in or
 * out or a count without its array; the caller frees *out with mk_decision_free. */
int mk_decide(const mk_decide_input *in, mk_decision *out);
void mk_decision_free(mk_decision *d);

#endif
