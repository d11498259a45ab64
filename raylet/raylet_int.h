/*
 * Private structures of rayc-raylet (ARCHITECTURE §6). The raylet joins a cluster: it
 * detects its resources, serves NodeManagerService and the gRPC health service on TCP and
 * LocalRayletService on a unix socket, registers with the GCS, reports its resources and
 * demand, follows the node and job tables, keeps a cluster view for the scheduler, leases
 * workers (lease_manager.h) from its worker pool (worker_pool.h), and leaves cleanly.
 *
 * Start order (raylet_start): detect → join (raylet_auth.c: the node's certificate and the
 * process-wide TLS; the join token's labels) → session dir → cluster view with the local node →
 * worker pool → lease manager → bundle manager (placement-group bundles,
 * bundle_manager.h) → servers (TCP + unix socket; the object store module adds its tables
 * here) → GCS. Shutdown (raylet_cleanup) goes the other way: held lease calls answered,
 * bundles forgotten, workers killed, servers and GCS client closed (the last worker
 * failure reports with them), the view freed.
 *
 * Loop thread only.
 */
#ifndef RAYC_RAYLET_RAYLET_INT_H
#define RAYC_RAYLET_RAYLET_INT_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "bundle_manager.h"
#include "gcs_client.h"
#include "gcs_revocations.h"
#include "lease_manager.h"
#include "raylet.h"
#include "rc_buf.h"
#include "rc_ids.h"
#include "rc_map.h"
#include "rpc.h"
#include "rayc_sched.h"
#include "worker_pool.h"

enum { RAYLET_MAX_RESOURCES = RAYLET_MAX_CUSTOM + 16, RAYLET_MAX_ALL_LABELS = RAYLET_MAX_LABELS + 8 };

typedef struct raylet_resource {
    char *name;
    double total;
    double available;
} raylet_resource;

/* What this host has, after detection and flags. */
typedef struct raylet_node_spec {
    char ip[64];
    char hostname[256];
    double num_cpus;
    int num_gpus;
    char accelerator_type[64]; /* "" if unknown */
    int64_t gpu_memory;        /* bytes per GPU; 0 if unknown */
    int64_t memory;
    int64_t object_store_memory;
    raylet_resource resources[RAYLET_MAX_RESOURCES];
    size_t n_resources;
    raylet_kv labels[RAYLET_MAX_ALL_LABELS];
    size_t n_labels;
} raylet_node_spec;

typedef enum raylet_state {
    RAYLET_STARTING,
    RAYLET_RUNNING,
    RAYLET_STOPPING,
} raylet_state;

/*
 * Hook points for the object store (raylet/object_store.h, raylet/object_manager.h; another
 * module). Every field may be NULL: until the store is wired in, RegisterClient replies
 * with an empty store_path and a store_size of 0, and nothing is released.
 */
typedef struct raylet_object_hooks {
    /* A client of this node is gone: a worker was reaped (exited, killed, crashed) or a
     * worker or driver disconnected or died. Release its pins and abort what it was creating. */
    void (*client_gone)(void *arg, const uint8_t worker_id[RC_WORKER_ID_SIZE]);
    /* Fills the store fields of a RegisterClient reply (store_path stays owned by the store). */
    void (*describe_store)(void *arg, const char **store_path, uint64_t *store_size);
    /* Another node left the cluster (pulls from it must go elsewhere; what its workers
     * owned is lost). */
    void (*node_gone)(void *arg, const uint8_t node_id[RC_NODE_ID_SIZE]);
    void *arg;
} raylet_object_hooks;

struct raylet_store; /* raylet/object_store.h */
typedef struct raylet_auth raylet_auth; /* raylet_auth.c */
struct raylet_om;    /* raylet/object_manager.h */
typedef struct raylet_challenge raylet_challenge; /* raylet_challenge.c */

/* A driver registered on this node (workers live in the pool). */
typedef struct raylet_driver {
    uint8_t worker_id[RC_WORKER_ID_SIZE];
    uint8_t job_id[RC_JOB_ID_SIZE];
    pid_t pid;
    int port;
    int64_t registered_ms; /* wall clock */
} raylet_driver;

typedef struct raylet {
    uv_loop_t *loop;
    int start_call_tries; /* start-up calls to the GCS lost on the way and sent again */
    rpc_ctx *rpc;
    rpc_server *srv;
    raylet_options opts;
    raylet_auth *auth; /* credentials (raylet_auth.c) */
    raylet_node_spec spec;
    uint8_t node_id[RC_NODE_ID_SIZE];
    char node_id_hex[RC_ID_HEX_MAX];
    int port;
    raylet_state state;
    int exit_code;

    gcs_client *gcs;
    gcs_subscriber *sub;
    gcs_revocations *revocations; /* what the GCS revoked, refused by srv too (secure only) */
    uint8_t cluster_id[RC_CLUSTER_ID_SIZE];
    int64_t gcs_down_since_ms; /* 0 while the GCS answers */
    int verifying_cluster;     /* a GetClusterId re-check is out */

    rc_map live_nodes; /* node id -> Ray__Rpc__GcsNodeInfo (owned), from the node channel */

    char session_dir[PATH_MAX];
    char socket_path[PATH_MAX]; /* <session>/sockets/raylet.<8 hex>.sock */
    char worker_command[PATH_MAX];
    rpc_server *local_srv; /* LocalRayletService on socket_path */

    /* The scheduler's view: this node exactly (allocations go through it), the others from
     * the node channel (totals, labels) and GetAllAvailableResources polls (availability). */
    sched_view *view;
    sched_node *local_node;
    uv_timer_t view_poll_timer;
    int view_poll_in_flight;
    rc_map remote_totals; /* node id -> char *: the reported totals last applied (raylet_view.c) */

    worker_pool *pool;
    lease_manager *leases;
    bundle_manager *bundles;
    rc_map drivers; /* worker id -> raylet_driver */
    rc_map job_refetch; /* job id -> (void *)1: job fetches to retry once the GCS answers */
    uv_timer_t job_refetch_timer;
    uv_timer_t driver_check_timer;
    struct raylet_failures *failures; /* worker failure reports (raylet_failures.c) */

    /* The object store module's state and hooks (NULL until it is wired in). */
    struct raylet_store *store;
    struct raylet_om *object_manager;
    raylet_object_hooks object_hooks;

    raylet_challenge *challenge; /* ChallengeService (raylet_challenge.c) */

    uv_timer_t report_timer;
    int report_in_flight;
    uint8_t *last_report;
    size_t last_report_len;
    int64_t last_report_ms;
    int64_t idle_since_ms;

    uv_signal_t sigterm, sigint;
    uv_timer_t exit_timer; /* bounds a graceful unregister */

    struct {
        uint64_t leases_granted; /* since start */
        uint64_t spillbacks;     /* lease requests answered with another node */
    } counts;
    struct raylet_metrics *metrics; /* raylet_metrics.c */
    int metrics_port;               /* the /metrics port, reported in the node table */
} raylet;

/* raylet_resources.c */
/* Detects CPUs, memory and GPUs (NVML through dlopen), applies the flags, adds the implicit
 * resources and labels. err gets a message on failure. */
int raylet_detect(raylet_node_spec *spec, const raylet_options *opts, const char *node_id_hex,
                  char *err, size_t errlen);
void raylet_spec_free(raylet_node_spec *spec);
/* "NVIDIA A100-SXM4-80GB" -> "A100", "NVIDIA GeForce RTX 4090" -> "RTX4090". */
void raylet_accelerator_from_name(const char *gpu_name, char *out, size_t outlen);

/* The first GPU NVML sees: its model ("NVIDIA H100 80GB HBM3"), its memory in bytes, and how
 * many GPUs NVML sees (CUDA_VISIBLE_DEVICES not applied). 0, or RC_ENOENT when there is no
 * NVML or no GPU (the out-parameters are then untouched). Any thread; it loads NVML each
 * time (tens of milliseconds): keep it off the loop thread. */
int raylet_nvml_first_gpu(char *model, size_t modellen, uint64_t *memory, unsigned *count);

/* raylet_view.c: the cluster view */
/* Creates r->view with the local node. Returns 0 or RC_EINVAL (err says why). */
int raylet_view_init(raylet *r, char *err, size_t errlen);
/* A node record from the node channel (alive: add or update; dead: remove). */
void raylet_view_track(raylet *r, const Ray__Rpc__GcsNodeInfo *info);
/* Starts polling the GCS for the other nodes' availability. */
void raylet_view_start_polling(raylet *r);
void raylet_view_free(raylet *r);
/* Writes the local node's available amount of each resource into r->spec. */
void raylet_view_sync_spec(raylet *r);
/* Makes the local node's resources the detected ones plus extra (the committed bundles'
 * resources; the view copies the names). What leases hold stays held. Returns 0 or
 * RC_EINVAL with err. */
int raylet_view_set_local_extra(raylet *r, const sched_named_amount *extra, size_t n_extra, char *err, size_t errlen);

/* raylet_failures.c: WorkerInfoGcsService.ReportWorkerFailure for every worker process
 * reaped and every driver gone, sent in the background and retried while the GCS does not
 * answer (it may be restarting), within raylet_worker_failure_report_max_pending reports. */
typedef struct raylet_exit {
    const uint8_t *worker_id;
    int is_driver;
    pid_t pid;
    int port;               /* CoreWorkerService port, 0 if it never registered */
    int exit_type;          /* Ray__Rpc__WorkerExitType */
    const char *exit_detail;
    int64_t start_time_ms;  /* wall clock, 0 if unknown */
} raylet_exit;
void raylet_failures_init(raylet *r);
/* Queues the report of e (copied) and sends it when it can. */
void raylet_failures_report(raylet *r, const raylet_exit *e);
/* A worker said goodbye (DisconnectClient): its exit type and detail stand for it when it
 * is reaped. */
void raylet_failures_goodbye(raylet *r, const uint8_t worker_id[RC_WORKER_ID_SIZE], int exit_type, const char *detail);
/* The report of a reaped pool worker: exit type and detail from its goodbye, else from who
 * ended it (the raylet: INTENDED_SYSTEM_EXIT) and its wait status (signal or non-zero
 * status: SYSTEM_ERROR; status 0: INTENDED_USER_EXIT). */
void raylet_failures_worker_reaped(raylet *r, const worker *w);
/* Drops what is queued (shutdown: the node's death stands for its workers). */
void raylet_failures_cleanup(raylet *r);

/* local_service.c: LocalRayletService (RegisterClient, DisconnectClient, NotifyTaskBlocked,
 * NotifyTaskUnblocked, GetCredentials); arg is the raylet. */
extern const rpc_method_handler raylet_local_handlers[];
/* Watches the registered drivers' processes; a driver that died counts as disconnected. */
void raylet_local_start(raylet *r);
/* A client is gone: tell the lease manager (if it owned leases) and the object store. */
void raylet_client_gone(raylet *r, const uint8_t worker_id[RC_WORKER_ID_SIZE]);
void raylet_local_cleanup(raylet *r);

/* raylet_auth.c: joining and credentials (ARCHITECTURE §14) */
/* Before any server or GCS client exists, and before the loop runs (it blocks, retrying an
 * unreachable GCS for gcs_rpc_server_reconnect_timeout_s): makes the node's keys, gets the
 * CA (--ca-cert, or the GCS's pinned by --ca-cert-hash), joins with AuthService.JoinNode,
 * sets the process-wide security to mutual TLS with the node certificate, adds the join
 * token's labels to r->spec and writes --auth-dir. With --insecure: plaintext, and a
 * warning. Returns 0, or RC_EAUTH with a sentence in err (a refused token, a CA that does
 * not match the pin, a GCS that never answered). r->auth is set either way. */
int raylet_auth_join(raylet *r, char *err, size_t errlen);
/* Answers a GetCredentials call, now or (job_id not NULL: that job's token, from the GCS
 * unless cached) later: PERMISSION_DENIED with the GCS's sentence if it refuses. */
void raylet_auth_credentials(raylet *r, rpc_call *call, const uint8_t *job_id);
/* The job channel says job finished: its cached token is forgotten. */
void raylet_auth_job_finished(raylet *r, const uint8_t job_id[RC_JOB_ID_SIZE]);
/* After the rpc context has drained. */
void raylet_auth_cleanup(raylet *r);

/* raylet_challenge.c: ChallengeService (the market's verification challenge, admin only);
 * arg is the raylet_challenge. Create before the TCP server starts; destroy first thing in
 * raylet_cleanup, while the servers still run (a waiting RunChallenge is answered
 * UNAVAILABLE; a computation in progress is told to stop and frees its state when it
 * ends). */
extern const rpc_method_handler raylet_challenge_handlers[];
/* raylet_logs.c: the node's log files for admins: Ray's LogService.ListLogs and
 * rayc.rpc.LogReadService (ReadLog, FindWorkerLogs); arg is the raylet. */
extern const rpc_method_handler raylet_log_list_handlers[];
extern const rpc_method_handler raylet_log_read_handlers[];
int raylet_challenge_create(raylet *r, raylet_challenge **out);
void raylet_challenge_destroy(raylet_challenge *ch);

/* raylet_metrics.c: /metrics (Prometheus text) on the metrics port. init makes the
 * registry and hooks r->srv (before it starts); serve starts HTTP on the node IP (after
 * r->srv starts, whose token rules it applies) and sets r->metrics_port; stop ends serving
 * (first in cleanup); free releases the registry after the RPC context is gone. */
int raylet_metrics_init(raylet *r);
int raylet_metrics_serve(raylet *r);
void raylet_metrics_stop(raylet *r);
void raylet_metrics_free(raylet *r);

/* raylet_node.c */
int raylet_start(raylet *r, uv_loop_t *loop);
/* Leaves the cluster: unregisters (graceful) and stops the loop. reason goes to the GCS. */
void raylet_shutdown(raylet *r, int graceful, const char *reason, int exit_code);
/* After uv_run returned: releases everything. */
void raylet_cleanup(raylet *r);

#endif
