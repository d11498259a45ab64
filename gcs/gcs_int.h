/*
 * Private structures of rayc-gcs: the server and one manager per table (ARCHITECTURE §5).
 *
 * gcs_server owns everything. Managers keep their tables in memory and write through the
 * store before a mutating call is answered; on start each reloads its table. The start
 * order is fixed (gcs_server.c): store → cluster ID → publisher → nodes → resources →
 * jobs → KV → health checks → RPC server.
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
#include "rayc_gcs.pb-c.h"
#include "rc_ids.h"
#include "rc_map.h"
#include "rpc.h"
#include "store.h"

typedef struct gcs_server gcs_server;
typedef struct gcs_publisher gcs_publisher;
typedef struct gcs_node_manager gcs_node_manager;
typedef struct gcs_job_manager gcs_job_manager;
typedef struct gcs_kv_manager gcs_kv_manager;
typedef struct gcs_resource_manager gcs_resource_manager;
typedef struct gcs_health_checker gcs_health_checker;

typedef struct gcs_server_options {
    const char *host; /* address to listen on; default 0.0.0.0 */
    int port;         /* 0: any free port */
    const char *redis_host; /* NULL: memory storage */
    int redis_port;
    const char *port_file; /* if set, the bound port is written here once serving */
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
/* The client for the raylet of an alive node (created on first use), or NULL. */
rpc_client *gcs_node_raylet_client(gcs_node_manager *nm, const uint8_t *id);

/* gcs_resource_manager.c: NodeResourceInfoGcsService and rayc's ReportResourceUsage. */
gcs_resource_manager *gcs_resource_manager_new(gcs_server *gcs);
void gcs_resource_manager_free(gcs_resource_manager *rm);
extern const rpc_method_handler gcs_resource_handlers[];
extern const rpc_method_handler gcs_resource_report_handlers[];
void gcs_resource_on_node_added(gcs_resource_manager *rm, const Ray__Rpc__GcsNodeInfo *node);
void gcs_resource_on_node_removed(gcs_resource_manager *rm, const uint8_t *id);
/* The last report of node id (NULL before its first report). */
const Ray__Rpc__ResourcesData *gcs_resource_get(const gcs_resource_manager *rm, const uint8_t *id);
uint64_t gcs_resource_reports_received(const gcs_resource_manager *rm);

/* gcs_job_manager.c: JobInfoGcsService. */
gcs_job_manager *gcs_job_manager_new(gcs_server *gcs);
void gcs_job_manager_free(gcs_job_manager *jm);
int gcs_job_manager_load(gcs_job_manager *jm, gcs_load_cb cb);
extern const rpc_method_handler gcs_job_handlers[];

/* gcs_kv_manager.c: InternalKVGcsService (reads and writes go through the store). */
gcs_kv_manager *gcs_kv_manager_new(gcs_server *gcs);
void gcs_kv_manager_free(gcs_kv_manager *kv);
extern const rpc_method_handler gcs_kv_handlers[];
/* Ray's storage key of (ns, key): "@namespace_<ns>:<key>", or key itself for an empty ns.
 * Returns a new buffer of *len bytes that the caller frees with rc_free. */
char *gcs_kv_make_key(const void *ns, size_t ns_len, const void *key, size_t klen, size_t *len);

/* gcs_health_checker.c: grpc.health.v1 checks of every alive raylet. */
gcs_health_checker *gcs_health_checker_new(gcs_server *gcs);
/* Stops every check; per-node state goes once its timer is closed and its call has ended. */
void gcs_health_checker_shutdown(gcs_health_checker *hc);
void gcs_health_checker_free(gcs_health_checker *hc);
void gcs_health_add_node(gcs_health_checker *hc, const uint8_t *id);
void gcs_health_remove_node(gcs_health_checker *hc, const uint8_t *id);

#endif
