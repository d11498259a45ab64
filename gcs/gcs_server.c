/*
 * rayc-gcs server: wires the managers together, in a fixed order, over one store and one
 * RPC server, and holds the cluster identity.
 *
 * Start: connect storage (memory, or Redis for a restartable GCS, authenticating when it
 * wants a password) → load or create the cluster ID (KV namespace "cluster", key
 * "ray_cluster_id", as Ray stores it) → load the security state and set the process's TLS
 * identity (gcs_auth_manager.c; insecure mode: plaintext) → reload the node, job,
 * placement-group and actor tables, the KV sizes and the autoscaler's state (the market's
 * last report and the resource constraint, gcs_autoscaler.c) → listen and serve → place the groups
 * and schedule the actors that were waiting. State is written to storage before any mutating
 * call is answered, so a GCS restarted on the same Redis resumes exactly where it stopped:
 * same cluster ID, nodes still alive (and health-checked again), jobs and KV intact, live
 * actors still on their workers, created groups still reserved. After a restart the GCS
 * tells every live raylet (NotifyGCSRestart) so they subscribe again.
 *
 * The GCS leases workers for actors itself: its caller_address is this server's IP and
 * port with the worker ID GCS_WORKER_ID_BYTE × 28.
 *
 * Every call but GetClusterId that carries a "ray_cluster_id" metadata naming another
 * cluster is refused with UNAUTHENTICATED "WrongClusterID", as Ray's GCS does.
 *
 * The server listens on the host's address only (opts.host), or on every interface with
 * bind_all, and advertises opts.host either way. It accepts messages up to
 * kv_max_value_bytes + 1 MiB, so an oversize KV value is refused before it is buffered.
 *
 * Loop thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "autoscaler.pb-c.h"
#include "gcs_int.h"
#include "health.pb-c.h"
#include "rayc_market.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_net.h"

static const char kClusterIdNamespace[] = "cluster";
static const char kClusterIdKey[] = "ray_cluster_id";

void gcs__reply(rpc_call *call, ProtobufCMessage *reply, int code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    Ray__Rpc__GcsStatus status = RAY__RPC__GCS_STATUS__INIT;
    status.code = code;
    status.message = message;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(reply->descriptor, "status");
    if (f && f->type == PROTOBUF_C_TYPE_MESSAGE)
        *(Ray__Rpc__GcsStatus **)((char *)reply + f->offset) = &status;
    if (code != GCS_STATUS_OK)
        RC_DEBUG("%s -> %s: %s", rpc_call_method(call), gcs_status_name(code), message);
    rpc_reply(call, reply);
    if (f && f->type == PROTOBUF_C_TYPE_MESSAGE)
        *(Ray__Rpc__GcsStatus **)((char *)reply + f->offset) = NULL;
}

static int gcs__check_cluster_id(rpc_call *call, void *arg)
{
    gcs_server *gcs = arg;
    size_t len;
    const char *id = rpc_call_metadata(call, "ray_cluster_id", &len);
    if (!id || strcmp(rpc_call_method(call), "GetClusterId") == 0)
        return 0;
    if (len == strlen(gcs->cluster_id_hex) && memcmp(id, gcs->cluster_id_hex, len) == 0)
        return 0;
    rpc_reply_status(call, GRPC_STATUS_UNAUTHENTICATED,
                     "WrongClusterID: this GCS serves cluster %s, the caller names %.*s",
                     gcs->cluster_id_hex, (int)(len < 64 ? len : 64), id);
    return 1;
}

/* ---- start sequence ----------------------------------------------------------------- */

static void gcs__start_failed(gcs_server *gcs, int rc, const char *what)
{
    RC_ERROR("gcs: start failed: %s (%s)", what, rc_strerror(rc));
    gcs->exit_code = 1;
    if (gcs->on_ready)
        gcs->on_ready(gcs, rc);
}

static void gcs__notify_restart_done(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)arg;
    if (st->code != GRPC_STATUS_OK)
        RC_INFO("gcs: NotifyGCSRestart to a raylet failed: %s", st->message);
    rpc_msg_free(reply);
}

static void gcs__notify_one(const Ray__Rpc__GcsNodeInfo *node, void *arg)
{
    gcs_server *gcs = arg;
    rpc_client *cli = gcs_node_raylet_client(gcs->nodes, node->node_id.data);
    if (!cli)
        return;
    Ray__Rpc__NotifyGCSRestartRequest req = RAY__RPC__NOTIFY_GCSRESTART_REQUEST__INIT;
    rpc_client_call(cli, &ray__rpc__node_manager_service__descriptor, "NotifyGCSRestart", &req.base,
                    rc_cfg.gcs_rpc_timeout_ms, gcs__notify_restart_done, NULL);
}

static int gcs__write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return RC_EIO;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return RC_EIO;
    return 0;
}

/* "host:port", with brackets for an IPv6 host. */
static void gcs__host_port(const char *host, int port, char *out, size_t outlen)
{
    snprintf(out, outlen, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static void gcs__serve(gcs_server *gcs)
{
    rpc_server_options sopts = {.max_message_size = rc_cfg.kv_max_value_bytes + (1 << 20)};
    int rc = rpc_server_create(gcs->rpc, &sopts, &gcs->srv);
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot create the RPC server");
    rpc_server_set_interceptor(gcs->srv, gcs__check_cluster_id, gcs);
    gcs_auth_manager_attach(gcs->auth, gcs->srv);
    rpc_server_add_service(gcs->srv, &ray__rpc__node_info_gcs_service__descriptor, gcs_node_handlers,
                           gcs->nodes);
    rpc_server_add_service(gcs->srv, &ray__rpc__job_info_gcs_service__descriptor, gcs_job_handlers,
                           gcs->jobs);
    rpc_server_add_service(gcs->srv, &ray__rpc__internal_kvgcs_service__descriptor, gcs_kv_handlers,
                           gcs->kv);
    rpc_server_add_service(gcs->srv, &ray__rpc__node_resource_info_gcs_service__descriptor,
                           gcs_resource_handlers, gcs->res);
    rpc_server_add_service(gcs->srv, &rayc__rpc__resource_report_gcs_service__descriptor,
                           gcs_resource_report_handlers, gcs->res);
    rpc_server_add_service(gcs->srv, &ray__rpc__internal_pub_sub_gcs_service__descriptor,
                           gcs_publisher_handlers, gcs->pub);
    rpc_server_add_service(gcs->srv, &ray__rpc__actor_info_gcs_service__descriptor, gcs_actor_handlers,
                           gcs->actors);
    rpc_server_add_service(gcs->srv, &ray__rpc__placement_group_info_gcs_service__descriptor, gcs_pg_handlers,
                           gcs->pgs);
    rpc_server_add_service(gcs->srv, &ray__rpc__worker_info_gcs_service__descriptor, gcs_worker_handlers, gcs);
    rpc_server_add_service(gcs->srv, &rayc__rpc__auth_service__descriptor, gcs_auth_handlers, gcs->auth);
    rpc_server_add_service(gcs->srv, &ray__rpc__autoscaler__autoscaler_state_service__descriptor,
                           gcs_autoscaler_handlers, gcs->autoscaler);
    rpc_server_add_service(gcs->srv, &rayc__rpc__market_gcs_service__descriptor, gcs_market_handlers,
                           gcs->autoscaler);
    rpc_server_add_service(gcs->srv, &ray__rpc__task_info_gcs_service__descriptor, gcs_task_handlers,
                           gcs->task_events);
    char addr[300];
    gcs__host_port(gcs->opts.bind_all ? "0.0.0.0" : gcs->self_ip, gcs->opts.port, addr, sizeof(addr));
    rc = rpc_server_listen(gcs->srv, addr, &gcs->port);
    if (rc < 0) {
        RC_ERROR("gcs: cannot listen on %s: the port is in use or the address is not local", addr);
        return gcs__start_failed(gcs, rc, "cannot listen");
    }
    rc = gcs_metrics_init(gcs);
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot set up metrics");
    rpc_server_start(gcs->srv);
    gcs->self.port = gcs->port;
    rc = gcs_metrics_serve(gcs);
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot serve metrics");
    if (gcs->opts.port_file && gcs__write_port_file(gcs->opts.port_file, gcs->port) < 0)
        RC_WARN("gcs: cannot write the port file %s", gcs->opts.port_file);
    char bound[300];
    gcs__host_port(gcs->opts.bind_all ? "0.0.0.0" : gcs->self_ip, gcs->port, bound, sizeof(bound));
    RC_INFO("gcs: serving cluster %s on %s (advertised %s), %s, storage %s, %zu live nodes",
            gcs->cluster_id_hex, bound, gcs->self_ip,
            gcs->opts.insecure ? "INSECURE: plaintext, no credentials" : "TLS, credentials required",
            gcs->store->ops->name, gcs_node_num_alive(gcs->nodes));
    if (gcs->opts.insecure)
        fprintf(stderr,
                "rayc-gcs: --insecure: no TLS and no authentication; anyone who can reach %s "
                "controls this cluster. Use it on loopback for development only.\n",
                bound);
    if (gcs->restarted)
        gcs_node_foreach_alive(gcs->nodes, gcs__notify_one, gcs);
    gcs_pg_manager_start(gcs->pgs);
    gcs_actor_manager_start(gcs->actors);
    if (gcs->on_ready)
        gcs->on_ready(gcs, 0);
}

static void gcs__autoscaler_loaded(gcs_server *gcs, int rc)
{
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot read the autoscaler's state from the KV");
    gcs__serve(gcs);
}

static void gcs__kv_loaded(gcs_server *gcs, int rc)
{
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot read the KV table's sizes");
    rc = gcs_autoscaler_load(gcs->autoscaler, gcs__autoscaler_loaded);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot read the autoscaler's state from the KV");
}

static void gcs__actors_loaded(gcs_server *gcs, int rc)
{
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot load the actor tables");
    rc = gcs_kv_manager_load(gcs->kv, gcs__kv_loaded);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot read the KV table's sizes");
}

static void gcs__pgs_loaded(gcs_server *gcs, int rc)
{
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot load the placement group table");
    rc = gcs_actor_manager_load(gcs->actors, gcs__actors_loaded);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot load the actor tables");
}

static void gcs__jobs_loaded(gcs_server *gcs, int rc)
{
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot load the job table");
    rc = gcs_pg_manager_load(gcs->pgs, gcs__pgs_loaded);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot load the placement group table");
}

static void gcs__nodes_loaded(gcs_server *gcs, int rc)
{
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot load the node table");
    gcs->restarted = gcs_node_num_alive(gcs->nodes) > 0;
    rc = gcs_job_manager_load(gcs->jobs, gcs__jobs_loaded);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot load the job table");
}

static void gcs__auth_loaded(gcs_server *gcs, int rc)
{
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot set up the cluster's security");
    rc = gcs_node_manager_load(gcs->nodes, gcs__nodes_loaded);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot load the node table");
}

static void gcs__load_tables(gcs_server *gcs)
{
    int rc = gcs_auth_manager_load(gcs->auth, gcs__auth_loaded);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot set up the cluster's security");
}

static void gcs__cluster_id_stored(int rc, int64_t added, void *arg)
{
    gcs_server *gcs = arg;
    (void)added;
    if (rc < 0)
        return gcs__start_failed(gcs, rc, "cannot store the cluster ID");
    RC_INFO("gcs: new cluster %s", gcs->cluster_id_hex);
    gcs__load_tables(gcs);
}

static void gcs__cluster_id_loaded(int rc, const void *value, size_t len, void *arg)
{
    gcs_server *gcs = arg;
    if (rc == 0 && len == RC_CLUSTER_ID_SIZE) {
        memcpy(gcs->cluster_id, value, len);
        rc_id_hex(gcs->cluster_id, RC_CLUSTER_ID_SIZE, gcs->cluster_id_hex);
        RC_INFO("gcs: resuming cluster %s from storage", gcs->cluster_id_hex);
        gcs__load_tables(gcs);
        return;
    }
    if (rc < 0 && rc != RC_ENOENT)
        return gcs__start_failed(gcs, rc, "cannot read the cluster ID from storage");
    rc_id_random(gcs->cluster_id, RC_CLUSTER_ID_SIZE);
    rc_id_hex(gcs->cluster_id, RC_CLUSTER_ID_SIZE, gcs->cluster_id_hex);
    size_t klen;
    char *key = gcs_kv_make_key(kClusterIdNamespace, strlen(kClusterIdNamespace), kClusterIdKey,
                                strlen(kClusterIdKey), &klen);
    rc = gcs->store->ops->put(gcs->store, GCS_TABLE_KV, key, klen, gcs->cluster_id,
                              RC_CLUSTER_ID_SIZE, 1, gcs__cluster_id_stored, gcs);
    rc_free(key);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot store the cluster ID");
}

static void gcs__load_cluster_id(gcs_server *gcs)
{
    size_t klen;
    char *key = gcs_kv_make_key(kClusterIdNamespace, strlen(kClusterIdNamespace), kClusterIdKey,
                                strlen(kClusterIdKey), &klen);
    int rc = gcs->store->ops->get(gcs->store, GCS_TABLE_KV, key, klen, gcs__cluster_id_loaded, gcs);
    rc_free(key);
    if (rc < 0)
        gcs__start_failed(gcs, rc, "cannot read the cluster ID from storage");
}

static void gcs__redis_connected(int rc, int64_t unused, void *arg)
{
    gcs_server *gcs = arg;
    (void)unused;
    if (rc == RC_EAUTH) /* the store said which credentials were refused */
        return gcs__start_failed(gcs, rc, "Redis refused to let the GCS in");
    if (rc < 0) {
        RC_ERROR("gcs: Redis at %s:%d is not reachable; start redis-server there or drop "
                 "--redis-address to keep the tables in memory",
                 gcs->opts.redis_host, gcs->opts.redis_port);
        return gcs__start_failed(gcs, rc, "cannot connect to Redis");
    }
    gcs__load_cluster_id(gcs);
}

void gcs_server_on_node_dead(gcs_server *gcs, const Ray__Rpc__GcsNodeInfo *node)
{
    if (gcs->stopping || node->node_id.len != RC_NODE_ID_SIZE)
        return;
    gcs_pg_on_node_dead(gcs->pgs, node->node_id.data);
    gcs_actor_on_node_dead(gcs->actors, node);
}

/* The address the GCS advertises: its leases' caller address and its certificate's. */
static void gcs__init_self(gcs_server *gcs)
{
    const char *host = gcs->opts.host;
    if (host && *host && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
        snprintf(gcs->self_ip, sizeof(gcs->self_ip), "%s", host);
    else
        rc_net_primary_ip(gcs->self_ip, sizeof(gcs->self_ip));
    memset(gcs->self_worker_id, GCS_WORKER_ID_BYTE, sizeof(gcs->self_worker_id));
    ray__rpc__address__init(&gcs->self);
    gcs->self.ip_address = gcs->self_ip;
    gcs->self.port = gcs->opts.port;
    gcs->self.worker_id.data = gcs->self_worker_id;
    gcs->self.worker_id.len = sizeof(gcs->self_worker_id);
}

int gcs_server_start(gcs_server *gcs, uv_loop_t *loop, const gcs_server_options *opts)
{
    gcs->loop = loop;
    gcs->opts = *opts;
    int rc = rpc_ctx_create(loop, &gcs->rpc);
    if (rc < 0)
        return rc;
    gcs__init_self(gcs);
    gcs->pub = gcs_publisher_new(gcs);
    gcs->nodes = gcs_node_manager_new(gcs);
    gcs->view = gcs_view_new(gcs);
    gcs->res = gcs_resource_manager_new(gcs);
    gcs->jobs = gcs_job_manager_new(gcs);
    gcs->pgs = gcs_pg_manager_new(gcs);
    gcs->actors = gcs_actor_manager_new(gcs);
    gcs->kv = gcs_kv_manager_new(gcs);
    gcs->health = gcs_health_checker_new(gcs);
    gcs->auth = gcs_auth_manager_new(gcs);
    gcs->autoscaler = gcs_autoscaler_new(gcs);
    gcs->task_events = gcs_task_manager_new(gcs);
    if (!opts->redis_host) {
        gcs->store = gcs_store_memory_new();
        gcs__load_cluster_id(gcs);
        return 0;
    }
    gcs_store_redis_auth auth = {opts->redis_username, opts->redis_password};
    return gcs_store_redis_connect(loop, opts->redis_host, opts->redis_port,
                                   rc_cfg.external_storage_namespace, &auth, &gcs->store,
                                   gcs__redis_connected, gcs);
}

void gcs_server_stop(gcs_server *gcs)
{
    if (gcs->stopping)
        return;
    gcs->stopping = 1;
    /* 1. No new calls; nothing the managers hold starts new work. */
    gcs_metrics_stop(gcs);
    if (gcs->srv)
        rpc_server_destroy(gcs->srv);
    gcs_health_checker_shutdown(gcs->health);
    gcs_actor_manager_shutdown(gcs->actors);
    gcs_pg_manager_shutdown(gcs->pgs);
    gcs_publisher_shutdown(gcs->pub);
    gcs_node_manager_shutdown(gcs->nodes);
    /* 2. Storage operations in flight fail (RC_ECANCELED) and answer their calls. */
    if (gcs->store)
        gcs->store->ops->destroy(gcs->store);
    gcs->store = NULL;
    /* 3. Every last gRPC completion runs while the managers still exist. */
    rpc_ctx_drain(gcs->rpc);
    gcs_health_checker_free(gcs->health);
    gcs_actor_manager_free(gcs->actors);
    gcs->actors = NULL;
    gcs_pg_manager_free(gcs->pgs);
    gcs->pgs = NULL;
    gcs_publisher_free(gcs->pub);
    gcs_kv_manager_free(gcs->kv);
    gcs_job_manager_free(gcs->jobs);
    gcs_resource_manager_free(gcs->res);
    gcs_node_manager_free(gcs->nodes);
    gcs_auth_manager_free(gcs->auth);
    gcs->auth = NULL;
    gcs_view_free(gcs->view);
    gcs->view = NULL;
    gcs_autoscaler_free(gcs->autoscaler);
    gcs->autoscaler = NULL;
    gcs_task_manager_free(gcs->task_events);
    gcs->task_events = NULL;
    rpc_ctx_destroy(gcs->rpc);
    gcs_metrics_free(gcs);
}
