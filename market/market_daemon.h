/*
 * rayc-market's private declarations: the daemon's state (leases through Ray's instance
 * states, the ledger, failure memory, recent decisions), its persistence in the GCS's
 * internal KV, and the verification of new hosts.
 *
 * Files: market_main.c (flags, loop, signals), market_daemon.c (the rounds: demand,
 * reconciliation with providers and nodes, decisions, launches, drains, reports),
 * market_state.c (state and status as JSON), market_verify.c (the challenge),
 * provider_local.c and provider_ssh.c (providers).
 *
 * Loop thread only.
 */
#ifndef RAYC_MARKET_MARKET_DAEMON_H
#define RAYC_MARKET_MARKET_DAEMON_H

#include <stdint.h>
#include <uv.h>

#include "autoscaler.pb-c.h"
#include "gcs_client.h"
#include "market.h"
#include "market_provider.h"
#include "rc_buf.h"
#include "rc_ids.h"
#include "rpc.h"

/* KV namespace and keys of the market's records in the GCS. */
#define MK_KV_NAMESPACE "market"
#define MK_KV_STATE "state"   /* everything needed to restart (JSON) */
#define MK_KV_STATUS "status" /* what `rayc market status` prints (JSON) */
#define MK_KV_OFFERS "offers" /* what `rayc market offers` prints (JSON) */
/* The label a leased host carries (set by its join token, so the host cannot choose it). */
#define MK_LEASE_LABEL "rayc.io/market-lease"

/* Ray's instance states (autoscaler v2 Instance.InstanceStatus), those a lease goes through. */
#define MK_LEASE_STATES(X)                                                                           \
    X(QUEUED)             /* chosen, budget reserved, join token being made */                      \
    X(REQUESTED)          /* launch asked of the provider */                                       \
    X(ALLOCATED)          /* the provider runs the host; billing runs */                           \
    X(RAY_RUNNING)        /* its raylet registered (gets work once verified) */                    \
    X(RAY_STOPPING)       /* drained; released at its time */                                      \
    X(TERMINATED)         /* released at the provider */                                           \
    X(ALLOCATION_FAILED)  /* the provider refused the launch */                                    \
    X(ALLOCATION_TIMEOUT) /* the host did not come up in time */

typedef enum mk_lease_state {
#define MK__STATE_ENUM(name) MK_##name,
    MK_LEASE_STATES(MK__STATE_ENUM)
#undef MK__STATE_ENUM
        MK_N_STATES
} mk_lease_state;

const char *mk_state_name(mk_lease_state s);
int mk_state_parse(const char *name);

typedef struct mk_lease {
    char id[24]; /* "lease-<hex>": the idempotency key and the host's label */
    char provider[64];
    char offer_id[128];
    char offer_class[96];
    char region[64];
    char gpu_name[64];
    double num_cpus, num_gpus, gpu_memory, memory;
    double price_per_hour;
    int64_t billing_increment_s;
    int64_t lease_duration_s;
    mk_lease_state state;
    char node_id[2 * RC_NODE_ID_SIZE + 1]; /* hex, "" until it registers */
    int64_t queued_ms, requested_ms, allocated_ms, running_ms, ended_ms;
    int verified; /* 0 not yet, 1 passed, -1 failed */
    char verification[256];
    double verify_seconds;
    int64_t next_check_ms; /* next random re-check */
    int64_t release_at_ms; /* RAY_STOPPING: when to terminate */
    char reason[256];      /* why it ended, or why it is stopping */
    double spend;          /* dollars billed (when ended) */
    char replaced_by[24];  /* an expiring lease's successor */
    /* not persisted */
    int busy; /* an RPC chain for it is in flight */
    int verify_running;
    int64_t idle_ms; /* idle duration from the last cluster state */
    int node_seen;   /* the node was in the last cluster state */
    int node_dead;
} mk_lease;

typedef struct mk_failure {
    char provider[64];
    char offer_id[128];
    char reason[320];
    int64_t at_ms;
} mk_failure;

enum { MK_MAX_FAILURES = 64, MK_MAX_DECISIONS = 32, MK_MAX_ENDED = 64 };

typedef struct mk_perf {
    char offer_class[96];
    double best_s, last_s;
} mk_perf;

typedef struct mk_provider_slot {
    mk_provider *p;
    const mk_offer *offers;
    size_t n_offers;
    int reachable;
    char error[512];
    mk_instance *instances; /* from the last list that succeeded this round */
    size_t n_instances;
    int listed; /* the list of this round succeeded */
} mk_provider_slot;

/* An instance a provider runs that no lease accounts for: terminated after a grace. */
typedef struct mk_orphan {
    char provider[64];
    char key[64];
    int64_t first_seen_ms;
} mk_orphan;

typedef struct market {
    uv_loop_t *loop;
    rpc_ctx *rpc;
    gcs_client *gcs;
    mk_config cfg;
    char *config_path, *config_dir, *state_dir;
    char *ca_file, *ca_pem;
    mk_provider_slot *providers;
    size_t n_providers;

    mk_lease *leases;
    size_t n_leases, cap_leases;
    mk_ledger ledger;
    mk_scores scores;
    mk_perf *perf;
    size_t n_perf;
    mk_failure failures[MK_MAX_FAILURES];
    size_t n_failures;
    char decisions[MK_MAX_DECISIONS][768];
    int64_t decision_at[MK_MAX_DECISIONS];
    size_t n_decisions;
    mk_orphan *orphans;
    size_t n_orphans;
    uint64_t serial;

    /* the round */
    uv_timer_t timer;
    int round_running;
    int gcs_ok;
    char gcs_error[256];
    int64_t autoscaler_version;
    int64_t cluster_version;
    Ray__Rpc__Autoscaler__ClusterResourceState *cluster; /* the last one read */
    mk_decision last_decision;
    size_t last_decision_n_offers; /* the offers its verdicts are for, in provider order */
    int have_decision;
    rc_buf pending_json; /* the pending demand and why, for the status */
    Ray__Rpc__Autoscaler__ResourceRequest **infeasible;
    char **infeasible_reasons;
    size_t n_infeasible;
    /* Gangs no affordable offers can serve whole; details carry the reason. */
    Ray__Rpc__Autoscaler__GangResourceRequest **infeasible_gangs;
    size_t n_infeasible_gangs;
    int dirty;
    int stopping;    /* SIGTERM: leave the leases, exit */
    int release_all; /* SIGUSR2 or `rayc market stop --release-all` */
    int exit_persisting, exit_persisted;
    int64_t exit_deadline_ms;
    int64_t orphan_grace_ms;
} market;

int64_t mk_now_ms(void);

/* market_daemon.c */
int market_start(market *m);
void market_round_now(market *m);
void market_log_decision(market *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void market_record_failure(market *m, const char *provider, const char *offer_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
mk_lease *market_find_lease(market *m, const char *id);
/* Ends a lease: terminates it at its provider (unless the provider cannot be reached; then
 * it is tried again next round), moves its spend to the ledger. */
void market_end_lease(market *m, mk_lease *l, mk_lease_state final, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Stores the state in the GCS (fire and forget; a failed put leaves dirty set). */
void market_persist(market *m);

/* market_state.c */
void mk_state_to_json(const market *m, rc_buf *out);
int mk_state_from_json(market *m, const char *json, size_t len, char *err, size_t errlen);
void mk_status_to_json(const market *m, rc_buf *out);
void mk_offers_to_json(const market *m, rc_buf *out);
/* The performance of an offer class (1 until measured) and its update after a check. */
double mk_perf_get(const market *m, const char *offer_class);
void mk_perf_record(market *m, const char *offer_class, double seconds);
/* Dollars a lease has cost up to now_ms (billed in whole increments once allocated). */
double mk_lease_spend(const mk_lease *l, int64_t now_ms);

/* market_verify.c: runs the challenge on a lease's node and records the verdict at the GCS
 * (SetNodeVerification); the lease is failed and released when it does not pass. */
void market_verify(market *m, mk_lease *l, const char *node_address);

#endif
