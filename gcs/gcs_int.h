/*
 * Private structures of rayc-gcs: the server and one manager per table (ARCHITECTURE §5).
 *
 * gcs_server owns everything. Managers keep their tables in memory and write through the
 * store before a mutating call is answered; on start each reloads its table. The start
 * order is fixed (gcs_server.c): store → cluster ID → publisher → nodes → resources (and
 * the scheduler's view) → jobs → placement groups → actors → KV → health checks → auth →
 * RPC server. Tables load in the order auth (which sets the process's TLS identity before
 * any server or client exists) → nodes → jobs → placement groups → actors → KV.
 *
 * Loop thread only.
 */
#ifndef RAYC_GCS_GCS_INT_H
#define RAYC_GCS_GCS_INT_H

#include <stdint.h>
#include <uv.h>

#include "common.pb-c.h"
#include "gcs.pb-c.h"
#include "gcs_service.pb-c.h"
#include "gcs_status.h"
#include "node_manager.pb-c.h"
#include "pubsub.pb-c.h"
#include "rayc_auth.pb-c.h"
#include "rayc_gcs.pb-c.h"
#include "rc_ids.h"
#include "rc_map.h"
#include "rayc_sched.h"
#include "rpc.h"
#include "store.h"
#include "task_events.pb-c.h"

typedef struct gcs_server gcs_server;
typedef struct gcs_publisher gcs_publisher;
typedef struct gcs_node_manager gcs_node_manager;
typedef struct gcs_job_manager gcs_job_manager;
typedef struct gcs_kv_manager gcs_kv_manager;
typedef struct gcs_resource_manager gcs_resource_manager;
typedef struct gcs_health_checker gcs_health_checker;
typedef struct gcs_view gcs_view;
typedef struct gcs_actor_manager gcs_actor_manager;
typedef struct gcs_pg_manager gcs_pg_manager;
typedef struct gcs_auth_manager gcs_auth_manager;
typedef struct gcs_autoscaler gcs_autoscaler;
typedef struct gcs_metrics gcs_metrics;
typedef struct gcs_task_manager gcs_task_manager;

/* The label a node that joined with a verification-required join token carries: "pending"
 * until the market's verdict, then "passed" or "failed" (with GCS_VERIFICATION_REASON_LABEL).
 * Only the GCS sets it (from the node's auth record); a node cannot claim it. */
#define GCS_VERIFICATION_LABEL "rayc.io/verification"
#define GCS_VERIFICATION_REASON_LABEL "rayc.io/verification-reason"

/* The worker ID the GCS puts in caller_address when it leases workers for actors. */
#define GCS_WORKER_ID_BYTE 0xff /* all RC_WORKER_ID_SIZE bytes (Ray's nil worker ID) */

typedef struct gcs_server_options {
    const char *host; /* this host's IP: listened on (unless bind_all) and advertised;
                         NULL: rc_net_primary_ip */
    int port;         /* 0: any free port */
    int bind_all;     /* listen on every interface (0.0.0.0), still advertising host */
    const char *redis_host; /* NULL: memory storage */
    int redis_port;
    const char *redis_username; /* Redis ACL user; NULL: the default user */
    const char *redis_password; /* NULL: Redis asks for none */
    const char *port_file; /* if set, the bound port is written here once serving */
    int insecure;          /* plaintext, no credentials: every caller is admin */
    const char *auth_dir;  /* secure mode: ca.crt, ca.key and auth_token live here */
    int metrics_port;        /* the /metrics HTTP port; 0: any free port */
    const char *session_dir; /* where the metrics service-discovery file goes; NULL: none */
} gcs_server_options;

struct gcs_server {
    uv_loop_t *loop;
    rpc_ctx *rpc;
    rpc_server *srv;
    gcs_store *store;
    gcs_server_options opts;
    int port;
    uint8_t cluster_id[RC_CLUSTER_ID_SIZE];
    char cluster_id_hex[RC_ID_HEX_MAX];
    int restarted; /* tables came back from storage with live nodes */
    gcs_publisher *pub;
    gcs_node_manager *nodes;
    gcs_job_manager *jobs;
    gcs_kv_manager *kv;
    gcs_resource_manager *res;
    gcs_health_checker *health;
    gcs_view *view;           /* the scheduler's view of the cluster (actors, groups) */
    gcs_actor_manager *actors;
    gcs_pg_manager *pgs;
    gcs_auth_manager *auth;
    gcs_autoscaler *autoscaler;
    gcs_metrics *metrics;
    gcs_task_manager *task_events; /* TaskInfoGcsService (memory only) */
    Ray__Rpc__Address self;   /* caller_address of the GCS's own leases (ip, port, worker) */
    char self_ip[64];
    uint8_t self_worker_id[RC_WORKER_ID_SIZE];
    uv_signal_t sigterm, sigint;
    int stopping;
    int exit_code;
    void (*on_ready)(gcs_server *gcs, int rc); /* start finished (rc 0) or failed */
};

/* gcs_server.c */
int gcs_server_start(gcs_server *gcs, uv_loop_t *loop, const gcs_server_options *opts);
void gcs_server_stop(gcs_server *gcs);
/* Sets the GcsStatus field named "status" of reply and answers call with it. */
void gcs__reply(rpc_call *call, ProtobufCMessage *reply, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define gcs__reply_ok(call, reply) gcs__reply((call), (reply), GCS_STATUS_OK, "%s", "")
/* The node manager's hook: node id has just died (stored, published). Tells the actor and
 * placement-group managers, which restart or fail what ran there. */
void gcs_server_on_node_dead(gcs_server *gcs, const Ray__Rpc__GcsNodeInfo *node);

/* gcs_publisher.c: Ray's long-poll publisher. */
gcs_publisher *gcs_publisher_new(gcs_server *gcs);
/* Answers every held poll and stops the sweep timer. */
void gcs_publisher_shutdown(gcs_publisher *pub);
void gcs_publisher_free(gcs_publisher *pub);
extern const rpc_method_handler gcs_publisher_handlers[];
/* Publishes msg (channel_type and key_id set by the caller; sequence_id is assigned here) to
 * every subscriber of its channel and key. msg is copied. */
void gcs_publish(gcs_publisher *pub, const Ray__Rpc__PubMessage *msg);
void gcs_publish_node(gcs_publisher *pub, const Ray__Rpc__GcsNodeInfo *node);
void gcs_publish_job(gcs_publisher *pub, const Ray__Rpc__JobTableData *job);
void gcs_publish_actor(gcs_publisher *pub, const Ray__Rpc__ActorTableData *actor);
/* An in-process listener of a channel: fn runs for every node, job and actor record the
 * GCS publishes on it (gcs_publish_node/job/actor; not messages clients send), after the
 * subscribers' mailboxes got it, with msg valid during the call only. At most 8 listeners
 * in all; they live as long as the publisher. */
typedef void (*gcs_listener_fn)(const Ray__Rpc__PubMessage *msg, void *arg);
void gcs_publisher_listen(gcs_publisher *pub, Ray__Rpc__ChannelType channel, gcs_listener_fn fn,
                          void *arg);
size_t gcs_publisher_num_subscribers(const gcs_publisher *pub);

/* gcs_node_manager.c: NodeInfoGcsService. */
typedef void (*gcs_load_cb)(gcs_server *gcs, int rc);
gcs_node_manager *gcs_node_manager_new(gcs_server *gcs);
/* Destroys the raylet clients (their calls end with CANCELLED). */
void gcs_node_manager_shutdown(gcs_node_manager *nm);
void gcs_node_manager_free(gcs_node_manager *nm);
int gcs_node_manager_load(gcs_node_manager *nm, gcs_load_cb cb);
extern const rpc_method_handler gcs_node_handlers[];
/* The live record of node_id, or NULL when it is not alive. */
const Ray__Rpc__GcsNodeInfo *gcs_node_get_alive(const gcs_node_manager *nm, const uint8_t *id);
size_t gcs_node_num_alive(const gcs_node_manager *nm);
/* Calls fn for every alive node. */
void gcs_node_foreach_alive(const gcs_node_manager *nm,
                            void (*fn)(const Ray__Rpc__GcsNodeInfo *node, void *arg), void *arg);
/* Marks an alive node dead (stored, published) with reason; used by health checks. */
void gcs_node_mark_dead(gcs_node_manager *nm, const uint8_t *id,
                        Ray__Rpc__NodeDeathInfo__Reason reason, const char *message);
/* The same, then done(arg) runs once the death is stored and published, or at once (before
 * this returns) when the node is not alive or its death is already being stored. done runs
 * exactly once. */
void gcs_node_kill(gcs_node_manager *nm, const uint8_t *id, Ray__Rpc__NodeDeathInfo__Reason reason,
                   const char *message, void (*done)(void *arg), void *arg);
/* Calls fn for every dead node record kept. */
void gcs_node_foreach_dead(const gcs_node_manager *nm,
                           void (*fn)(const Ray__Rpc__GcsNodeInfo *node, void *arg), void *arg);
/* Sets label key to value (NULL: removes it) on alive node id's record, stores the record
 * and publishes it. RC_ENOENT if the node is not alive. */
int gcs_node_set_label(gcs_node_manager *nm, const uint8_t *id, const char *key, const char *value);
/* 1 if node id is in the node table, alive or among the dead records kept. */
int gcs_node_known(const gcs_node_manager *nm, const uint8_t *id);
/* The client for the raylet of an alive node (created on first use), or NULL. */
rpc_client *gcs_node_raylet_client(gcs_node_manager *nm, const uint8_t *id);

/* gcs_resource_manager.c: NodeResourceInfoGcsService and rayc's ReportResourceUsage. */
gcs_resource_manager *gcs_resource_manager_new(gcs_server *gcs);
void gcs_resource_manager_free(gcs_resource_manager *rm);
extern const rpc_method_handler gcs_resource_handlers[];
extern const rpc_method_handler gcs_resource_report_handlers[];
void gcs_resource_on_node_added(gcs_resource_manager *rm, const Ray__Rpc__GcsNodeInfo *node);
void gcs_resource_on_node_removed(gcs_resource_manager *rm, const uint8_t *id);
/* Takes data as node data->node_id's latest report (a raylet's own, or one the GCS asked
 * for with GetResourceLoad): stored and fed to the view. RC_ENOENT if the node is not
 * alive. */
int gcs_resource_update(gcs_resource_manager *rm, const Ray__Rpc__ResourcesData *data);
/* Adds (add 1) or takes away (0) the bundle resources of committed bundles[0..n) to the
 * GCS's last report of node: for bundle i of group pg and each unit resource R of amount
 * a, R_group_<i>_<pghex> = a and R_group_<pghex> += a, plus Ray's label resource
 * bundle_group_<i>_<pghex> = 1000 and bundle_group_<pghex> += 1000 (unless the bundle names
 * "bundle" itself), totals and available alike, as the raylet will report them. A bundle
 * the report already shows (or no longer shows) is left alone; the raylet's next report
 * replaces all of it anyway. */
void gcs_resource_bundles(gcs_resource_manager *rm, const uint8_t *node, const Ray__Rpc__Bundle *const *bundles,
                          size_t n, int add);
/* The last report of node id (NULL before its first report). */
const Ray__Rpc__ResourcesData *gcs_resource_get(const gcs_resource_manager *rm, const uint8_t *id);
uint64_t gcs_resource_reports_received(const gcs_resource_manager *rm);
/* Calls fn for each shape of the cluster's pending demand, summed as GetAllResourceUsage
 * sums it (the raylets' queues and backlogs, and the actors the GCS holds back); sum is
 * valid during the call only. */
void gcs_resource_demand_foreach(gcs_resource_manager *rm,
                                 void (*fn)(const Ray__Rpc__ResourceDemand *sum, void *arg), void *arg);
/* Sets is_draining and draining_deadline_timestamp_ms of node id's last report (what
 * GetAllResourceUsage shows raylets); nothing before its first report. */
void gcs_resource_set_draining(gcs_resource_manager *rm, const uint8_t *id, int draining, int64_t deadline_ms);

/* gcs_view.c: the GCS's sched_view (alive nodes: totals and labels from registration,
 * availability from the raylets' reports). Bundle resources ("..._group_...") stay out of it:
 * the GCS places work in a group by the group's own bundle table. */
gcs_view *gcs_view_new(gcs_server *gcs);
void gcs_view_free(gcs_view *v);
sched_view *gcs_view_sched(gcs_view *v);
sched_rng *gcs_view_rng(gcs_view *v);
void gcs_view_node_added(gcs_view *v, const Ray__Rpc__GcsNodeInfo *node);
void gcs_view_node_removed(gcs_view *v, const uint8_t *id);
void gcs_view_report(gcs_view *v, const Ray__Rpc__ResourcesData *data);
/* Takes node id out of (draining 1) or back into (0) the GCS's own scheduling, and shows
 * it so in its last report (GetAllResourceUsage), which raylets read for spillback. */
void gcs_view_set_draining(gcs_view *v, const uint8_t *id, int draining, int64_t deadline_ms);

/* A request for the scheduler built from Ray's messages, with the selectors it owns. */
typedef struct gcs_sched_req {
    sched_view *sv; /* whose names req holds */
    sched_request req;
    sched_options opts;
    sched_selector *selector, *hard, *soft;
} gcs_sched_req;

/* Every map<string, double> entry of Ray's messages has this layout. */
typedef struct gcs_res_entry {
    ProtobufCMessage base;
    char *key;
    double value;
} gcs_res_entry;

/* 0 if entries[0..n) are valid resource amounts (names: printable without spaces; amounts
 * by Ray's rules); else RC_EINVAL with a sentence in err. Interns nothing. */
int gcs_view_check_resources(const gcs_res_entry *const *entries, size_t n, const char *what,
                             char *err, size_t errlen);
/* Fills out from resources, Ray's label_selector, scheduling strategy (not placement
 * groups) and rayc's extras. Returns 0 or RC_EINVAL with err; clear out with
 * gcs_sched_req_clear either way. */
int gcs_view_build_request(gcs_view *v, const gcs_res_entry *const *entries, size_t n,
                           const Ray__Rpc__LabelSelector *selector,
                           const Ray__Rpc__SchedulingStrategy *strategy,
                           const Rayc__Rpc__SchedulingExtras *extras, gcs_sched_req *out,
                           char *err, size_t errlen);
/* The request of one placement-group bundle (unit_resources and its label_selector). */
int gcs_view_bundle_request(gcs_view *v, const Ray__Rpc__Bundle *b, gcs_sched_req *out,
                            char *err, size_t errlen);
void gcs_sched_req_clear(gcs_sched_req *r);

/* gcs_actor_manager.c: ActorInfoGcsService and the actor lifecycle (docs/actors.md). */
gcs_actor_manager *gcs_actor_manager_new(gcs_server *gcs);
/* Stops scheduling; worker calls in flight end with CANCELLED. */
void gcs_actor_manager_shutdown(gcs_actor_manager *am);
void gcs_actor_manager_free(gcs_actor_manager *am);
int gcs_actor_manager_load(gcs_actor_manager *am, gcs_load_cb cb);
/* After load, once serving: schedule the actors that were pending before a restart. */
void gcs_actor_manager_start(gcs_actor_manager *am);
extern const rpc_method_handler gcs_actor_handlers[];
/* Events from the rest of the GCS. */
void gcs_actor_on_node_dead(gcs_actor_manager *am, const Ray__Rpc__GcsNodeInfo *node);
void gcs_actor_on_worker_dead(gcs_actor_manager *am, const Ray__Rpc__WorkerTableData *worker);
void gcs_actor_on_job_finished(gcs_actor_manager *am, const uint8_t *job_id);
void gcs_actor_on_pg_removed(gcs_actor_manager *am, const uint8_t *pg_id);
/* Resources may have become free (placement_changed 0), or nodes joined or left or a
 * group was placed (1: actors no node could hold and actors waiting for their group are
 * looked at again too): try pending actors again (soon, coalesced). */
void gcs_actor_manager_kick(gcs_actor_manager *am, int placement_changed);
/* Calls fn for the demand of actors the GCS holds back (no raylet has them queued). */
void gcs_actor_manager_demand(gcs_actor_manager *am,
                              void (*fn)(const Ray__Rpc__ResourceDemand *d, void *arg), void *arg);

/* gcs_pg_manager.c: PlacementGroupInfoGcsService, placement and two-phase reservation. */
gcs_pg_manager *gcs_pg_manager_new(gcs_server *gcs);
void gcs_pg_manager_shutdown(gcs_pg_manager *pm);
void gcs_pg_manager_free(gcs_pg_manager *pm);
int gcs_pg_manager_load(gcs_pg_manager *pm, gcs_load_cb cb);
/* Once serving: release what raylets hold for no known group, then place pending groups. */
void gcs_pg_manager_start(gcs_pg_manager *pm);
extern const rpc_method_handler gcs_pg_handlers[];
void gcs_pg_on_node_dead(gcs_pg_manager *pm, const uint8_t *node_id);
void gcs_pg_on_actor_dead(gcs_pg_manager *pm, const uint8_t *actor_id);
void gcs_pg_manager_kick(gcs_pg_manager *pm, int nodes_changed);
/* Where a bundle of group pg_id runs: 0 and the node in node_out (index -1: any bundle's
 * node, rotating), RC_EBUSY while the group is not placed (or that bundle is being placed
 * again), RC_ENOENT if the group is unknown or removed, RC_ERANGE for a bad index. */
int gcs_pg_bundle_node(gcs_pg_manager *pm, const uint8_t *pg_id, int64_t index,
                       uint8_t node_out[RC_NODE_ID_SIZE]);
/* The groups waiting to be placed, for GetAllResourceUsage: *out gets a new array of n
 * records borrowed from the manager (free the array with rc_free; records stay valid until
 * the loop runs again). */
size_t gcs_pg_manager_pending(gcs_pg_manager *pm, Ray__Rpc__PlacementGroupTableData ***out);

/* gcs_task_manager.c: TaskInfoGcsService, the bounded table of task events (memory only).
 * gcs may be NULL (tests). */
gcs_task_manager *gcs_task_manager_new(gcs_server *gcs);
void gcs_task_manager_free(gcs_task_manager *tm);
extern const rpc_method_handler gcs_task_handlers[];
/* Merges a batch (AddTaskEventData); RC_EINVAL when some records were malformed (the rest
 * are kept). */
int gcs_task_add_events(gcs_task_manager *tm, const Ray__Rpc__TaskEventData *data);
/* Fills reply (events newest first, counts) for req; the records point into the table:
 * free with gcs_task_events_reply_free before the table changes. */
void gcs_task_get_events(gcs_task_manager *tm, const Ray__Rpc__GetTaskEventsRequest *req,
                         Ray__Rpc__GetTaskEventsReply *reply);
void gcs_task_events_reply_free(Ray__Rpc__GetTaskEventsReply *reply);
size_t gcs_task_manager_size(const gcs_task_manager *tm);
/* Task attempts dropped so far: evicted here or dropped by workers before sending. */
int64_t gcs_task_manager_dropped(const gcs_task_manager *tm);
/* Job job_id finished at now_ns (wall clock): its tasks that never report an end count as
 * FAILED (WORKER_DIED) from gcs_mark_task_failed_on_job_done_delay_ms after it. */
void gcs_task_on_job_finished(gcs_task_manager *tm, const uint8_t *job_id, int64_t now_ns);
/* "FINISHED" for RAY__RPC__TASK_STATUS__FINISHED, "NIL" for unknown values. */
const char *gcs_task_status_name(int status);
/* Calls fn for every attempt in the table, oldest first, with its current state (a
 * TaskStatus), its name ("" when no owner reported it yet), job and attempt number. */
typedef void (*gcs_task_visit_fn)(int state, const char *name, const uint8_t *job_id, int32_t attempt, void *arg);
void gcs_task_foreach(const gcs_task_manager *tm, gcs_task_visit_fn fn, void *arg);

/* gcs_worker_manager.c: WorkerInfoGcsService (raylets report dead workers). */
extern const rpc_method_handler gcs_worker_handlers[];

/* gcs_job_manager.c: JobInfoGcsService. */
gcs_job_manager *gcs_job_manager_new(gcs_server *gcs);
void gcs_job_manager_free(gcs_job_manager *jm);
int gcs_job_manager_load(gcs_job_manager *jm, gcs_load_cb cb);
extern const rpc_method_handler gcs_job_handlers[];
/* The record of job id (4 bytes), or NULL when the GCS does not know it. */
const Ray__Rpc__JobTableData *gcs_job_get(const gcs_job_manager *jm, const uint8_t *id);
/* The driver with this worker ID died: its job, if still running, is marked finished. */
void gcs_job_on_driver_dead(gcs_job_manager *jm, const uint8_t *worker_id);

/* gcs_kv_manager.c: InternalKVGcsService (reads and writes go through the store), with the
 * limits kv_max_value_bytes and kv_max_namespace_bytes. */
gcs_kv_manager *gcs_kv_manager_new(gcs_server *gcs);
void gcs_kv_manager_free(gcs_kv_manager *kv);
/* Reads every entry's size (the limits' accounting); before serving. */
int gcs_kv_manager_load(gcs_kv_manager *kv, gcs_load_cb cb);
extern const rpc_method_handler gcs_kv_handlers[];
/* Ray's storage key of (ns, key): "@namespace_<ns>:<key>", or key itself for an empty ns.
 * Returns a new buffer of *len bytes that the caller frees with rc_free. */
char *gcs_kv_make_key(const void *ns, size_t ns_len, const void *key, size_t klen, size_t *len);

/* gcs_auth_manager.c: the cluster's CA, the admin token, join tokens, node identities and
 * revocations (table AUTH), and AuthService. In insecure mode it holds nothing and its
 * methods answer INVALID. */
gcs_auth_manager *gcs_auth_manager_new(gcs_server *gcs);
void gcs_auth_manager_free(gcs_auth_manager *am);
/* Loads the AUTH table, then the CA (store, else <auth_dir>/ca.crt and ca.key, else a new
 * one), the admin token (<auth_dir>/auth_token if valid, else a new one), issues the GCS's
 * certificate and sets the process's security (rpc_security_set); insecure mode sets
 * insecure security only. cb(gcs, 0) once done, or with an RC_E* after logging why. */
int gcs_auth_manager_load(gcs_auth_manager *am, gcs_load_cb cb);
/* Hooks the revocation check into srv (secure mode). */
void gcs_auth_manager_attach(gcs_auth_manager *am, rpc_server *srv);
extern const rpc_method_handler gcs_auth_handlers[];
/* RegisterNode: forces the labels of the join token node info->node_id joined with onto
 * info (info owns its parts: rpc_msg_dup'ed). RC_EAUTH with err when the node was revoked. */
int gcs_auth_admit_node(gcs_auth_manager *am, Ray__Rpc__GcsNodeInfo *info, char *err,
                        size_t errlen);

/* Records the verification verdict on node id (which joined with a verification-required
 * join token) in its auth record, stored before done(gcs, rc, arg) runs. A failed verdict
 * is final. Returns 0 (done will run), or RC_ENOENT (no such node, or it needs no
 * verification) / RC_EINVAL (the verdict is final already) with err; done then never runs. */
/* Drops the cached token of a job the GCS no longer keeps (finished and evicted). */
void gcs_auth_forget_job(gcs_auth_manager *am, const uint8_t *job_id);
/* Why a node passed or failed verification (free text; NULL if it has no verdict). */
const char *gcs_auth_verification_reason(const gcs_auth_manager *am, const uint8_t *node_id);
int gcs_auth_set_verification(gcs_auth_manager *am, const uint8_t *id, int passed, const char *reason,
                              void (*done)(gcs_server *gcs, int rc, void *arg), void *arg, char *err,
                              size_t errlen);

/* gcs_autoscaler.c: Ray's AutoscalerStateService (what rayc-market reads and reports) and
 * rayc's MarketGcsService (verification verdicts). Holds the drains it accepted and keeps
 * nodes awaiting or failing verification out of scheduling. */
gcs_autoscaler *gcs_autoscaler_new(gcs_server *gcs);
void gcs_autoscaler_free(gcs_autoscaler *as);
/* Reads the last autoscaling state and constraint from the KV (namespace rayc_autoscaler). */
int gcs_autoscaler_load(gcs_autoscaler *as, gcs_load_cb cb);
extern const rpc_method_handler gcs_autoscaler_handlers[];
extern const rpc_method_handler gcs_market_handlers[];
/* A raylet's report arrived (stored as the node's last): idle time bookkeeping. */
void gcs_autoscaler_on_report(gcs_autoscaler *as, const Ray__Rpc__ResourcesData *d);
void gcs_autoscaler_on_node_removed(gcs_autoscaler *as, const uint8_t *id);
/* 1 if node info must get no new work: drained (deadline in *deadline_ms, may be NULL), or
 * awaiting or failing verification. */
int gcs_autoscaler_excluded(const gcs_autoscaler *as, const Ray__Rpc__GcsNodeInfo *info, int64_t *deadline_ms);

/* gcs_metrics.c: /metrics (Prometheus text) and the service-discovery file. init makes
 * the registry and hooks the RPC server (before it starts); serve starts the HTTP server
 * (after the RPC server, whose token rules it applies); stop ends serving (first in the
 * shutdown); free releases the registry once the RPC layer is gone (last). */
int gcs_metrics_init(gcs_server *gcs);
int gcs_metrics_serve(gcs_server *gcs);
/* gcs_grafana.c: writes <session>/metrics/prometheus/prometheus.yml and the Grafana files
 * (grafana.ini, provisioning, the default dashboard) for this session; auth_dir (where the
 * admin token and CA live) NULL on an insecure cluster. 0 or RC_EIO (logged). */
int gcs_metrics_write_configs(const char *session_dir, const char *auth_dir);
#define GCS_METRICS_SD_FILE "prom_metrics_service_discovery.json"
void gcs_metrics_stop(gcs_server *gcs);
void gcs_metrics_free(gcs_server *gcs);

/* gcs_health_checker.c: grpc.health.v1 checks of every alive raylet. */
gcs_health_checker *gcs_health_checker_new(gcs_server *gcs);
/* Stops every check; per-node state goes once its timer is closed and its call has ended. */
void gcs_health_checker_shutdown(gcs_health_checker *hc);
void gcs_health_checker_free(gcs_health_checker *hc);
void gcs_health_add_node(gcs_health_checker *hc, const uint8_t *id);
void gcs_health_remove_node(gcs_health_checker *hc, const uint8_t *id);

#endif
