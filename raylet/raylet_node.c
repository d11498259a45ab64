/*
 * The raylet's life in the cluster.
 *
 * Start: detect resources → serve NodeManagerService and grpc.health.v1 → connect to the
 * GCS (cluster ID) → adopt the GCS's configuration (GetInternalConfig) → RegisterNode →
 * follow the node channel → report resources every raylet_report_resources_period_ms when
 * they changed, and at least every raylet_report_keepalive_ms.
 *
 * The GCS may restart. While it is unreachable the raylet keeps running and retrying; once
 * it answers again the raylet checks the cluster ID: same cluster (a GCS backed by Redis)
 * → carry on with the same node ID and subscribe again; another cluster (a GCS that lost
 * its state) → exit with a message saying so. Unreachable for longer than
 * gcs_rpc_server_reconnect_timeout_s → exit. Declared dead by the GCS → exit.
 *
 * SIGTERM / SIGINT / ShutdownRaylet(graceful): unregister (EXPECTED_TERMINATION, with the
 * reason) and exit 0.
 *
 * Around that life (raylet_int.h has the start order): the session directory, the cluster
 * view, the worker pool, the lease manager, the bundle manager and LocalRayletService on
 * the node's unix socket, advertised as GcsNodeInfo.raylet_socket_name. The job channel
 * tells the pool each job's code search path and when a job finished. Reports carry the
 * real availability (committed bundles' resources included) and the lease manager's demand
 * by shape. Every worker reaped is reported to the GCS (raylet_failures.c).
 *
 * Loop thread only.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.pb-c.h"
#include "gcs.pb-c.h"
#include "health.pb-c.h"
#include "node_manager.pb-c.h"
#include "object_manager.h"
#include "object_manager.pb-c.h"
#include "object_store.h"
#include "raylet_int.h"
#include "rayc_gcs.pb-c.h"
#include "rayc_logs.pb-c.h"
#include "rayc_market.pb-c.h"
#include "rayc_raylet.pb-c.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"
#include "rc_time.h"
#include "reporter.pb-c.h"

enum { RAYLET__UNREGISTER_TIMEOUT_MS = 3000, RAYLET__EXIT_GRACE_MS = 5000, RAYLET__JOB_REFETCH_MS = 1000 };

static void raylet__stop_loop(raylet *r)
{
    uv_stop(r->loop);
}

/* Start-up calls to the GCS (GetInternalConfig, RegisterNode) lost on the way are sent
 * again this many times in all before the raylet gives up. */
#define RAYLET__START_CALL_TRIES 5

static void raylet__fatal(raylet *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Leaves without unregistering: for when the cluster no longer has a place for us. */
static void raylet__fatal(raylet *r, const char *fmt, ...)
{
    char message[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    RC_ERROR("raylet: %s", message);
    fprintf(stderr, "rayc-raylet: %s\n", message);
    raylet_shutdown(r, 0, message, 1);
}

/* ---- messages ----------------------------------------------------------------------- */

/* Scratch memory for building messages; everything in it goes with raylet__scratch_free. */
typedef struct raylet__scratch {
    void *ptrs[16];
    size_t n;
} raylet__scratch;

static void *raylet__alloc(raylet__scratch *s, size_t size)
{
    void *p = rc_calloc(1, size ? size : 1);
    if (s->n < RC_ARRAY_LEN(s->ptrs))
        s->ptrs[s->n++] = p;
    return p;
}

static void raylet__scratch_free(raylet__scratch *s)
{
    for (size_t i = 0; i < s->n; i++)
        rc_free(s->ptrs[i]);
    s->n = 0;
}

/* Builds the map<string,double> entries of the resources, the detected ones and the
 * committed bundles'; available or total. All map entry types of these messages share one
 * layout ({base; char *key; double value}). Stores the count in *n. */
static void **raylet__resource_map(raylet *r, raylet__scratch *s, int available,
                                   const ProtobufCMessageDescriptor *entry_desc, size_t *n_out)
{
    size_t n = r->spec.n_resources, nb = bundle_manager_resource_count(r->bundles);
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *entries = raylet__alloc(s, (n + nb) * sizeof(*entries));
    void **ptrs = raylet__alloc(s, (n + nb) * sizeof(*ptrs));
    for (size_t i = 0; i < n + nb; i++) {
        ray__rpc__gcs_node_info__resources_total_entry__init(&entries[i]);
        entries[i].base.descriptor = entry_desc;
        if (i < n) {
            entries[i].key = r->spec.resources[i].name;
            entries[i].value = available ? r->spec.resources[i].available : r->spec.resources[i].total;
        } else {
            const char *name;
            double total, avail;
            bundle_manager_resource_at(r->bundles, i - n, &name, &total, &avail);
            entries[i].key = (char *)name;
            entries[i].value = available ? avail : total;
        }
        ptrs[i] = &entries[i];
    }
    *n_out = n + nb;
    return ptrs;
}

static void **raylet__label_map(raylet *r, raylet__scratch *s, const ProtobufCMessageDescriptor *entry_desc)
{
    size_t n = r->spec.n_labels;
    Ray__Rpc__GcsNodeInfo__LabelsEntry *entries = raylet__alloc(s, n * sizeof(*entries));
    void **ptrs = raylet__alloc(s, n * sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        ray__rpc__gcs_node_info__labels_entry__init(&entries[i]);
        entries[i].base.descriptor = entry_desc;
        entries[i].key = r->spec.labels[i].key;
        entries[i].value = r->spec.labels[i].value;
        ptrs[i] = &entries[i];
    }
    return ptrs;
}

/* d->resource_load_by_shape is allocated: free it with lease_manager_load_free. */
static void raylet__resources_data(raylet *r, Ray__Rpc__ResourcesData *d, raylet__scratch *s)
{
    bundle_manager_flush(r->bundles);
    if (r->view)
        raylet_view_sync_spec(r);
    if ((r->leases && lease_manager_busy(r->leases)) || bundle_manager_count(r->bundles))
        r->idle_since_ms = rc_mono_ms();
    if (r->store) { /* the store's free bytes are the node's available object_store_memory */
        raylet_store_stats st;
        raylet_store_stats_get(r->store, &st);
        for (size_t i = 0; i < r->spec.n_resources; i++)
            if (!strcmp(r->spec.resources[i].name, "object_store_memory"))
                r->spec.resources[i].available = (double)(st.capacity > st.used ? st.capacity - st.used : 0);
    }
    ray__rpc__resources_data__init(d);
    d->node_id.data = r->node_id;
    d->node_id.len = RC_NODE_ID_SIZE;
    d->resources_available = (Ray__Rpc__ResourcesData__ResourcesAvailableEntry **)raylet__resource_map(
        r, s, 1, &ray__rpc__resources_data__resources_available_entry__descriptor, &d->n_resources_available);
    d->resources_total = (Ray__Rpc__ResourcesData__ResourcesTotalEntry **)raylet__resource_map(
        r, s, 0, &ray__rpc__resources_data__resources_total_entry__descriptor, &d->n_resources_total);
    d->n_labels = r->spec.n_labels;
    d->labels = (Ray__Rpc__ResourcesData__LabelsEntry **)raylet__label_map(
        r, s, &ray__rpc__resources_data__labels_entry__descriptor);
    d->node_manager_address = r->spec.ip;
    d->resource_load_by_shape = r->leases ? lease_manager_load(r->leases) : NULL;
    if (r->leases)
        d->rayc_job_usage = lease_manager_job_usage(r->leases, &d->n_rayc_job_usage);
    d->idle_duration_ms = rc_mono_ms() - r->idle_since_ms;
    d->is_draining = r->state == RAYLET_STOPPING;
}

static void raylet__node_info(raylet *r, Ray__Rpc__GcsNodeInfo *info, raylet__scratch *s)
{
    ray__rpc__gcs_node_info__init(info);
    info->node_id.data = r->node_id;
    info->node_id.len = RC_NODE_ID_SIZE;
    info->node_manager_address = r->spec.ip;
    info->node_manager_port = r->port;
    info->object_manager_port = r->port;
    info->metrics_export_port = r->metrics_port;
    info->raylet_socket_name = r->socket_path;
    info->node_manager_hostname = r->spec.hostname;
    info->node_name = r->opts.node_name ? r->opts.node_name : r->spec.ip;
    info->state = RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    info->is_head_node = r->opts.is_head;
    info->start_time_ms = (uint64_t)rc_wall_ms();
    info->resources_total = (Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry **)raylet__resource_map(
        r, s, 0, &ray__rpc__gcs_node_info__resources_total_entry__descriptor, &info->n_resources_total);
    info->n_labels = r->spec.n_labels;
    info->labels = (Ray__Rpc__GcsNodeInfo__LabelsEntry **)raylet__label_map(
        r, s, &ray__rpc__gcs_node_info__labels_entry__descriptor);
}

/* ---- GCS liveness and identity ------------------------------------------------------ */

static void raylet__cluster_checked(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    r->verifying_cluster = 0;
    if (r->state == RAYLET_STOPPING || st->code != GRPC_STATUS_OK) {
        rpc_msg_free(reply);
        return;
    }
    Ray__Rpc__GetClusterIdReply *cr = (Ray__Rpc__GetClusterIdReply *)reply;
    char mine[RC_ID_HEX_MAX], theirs[RC_ID_HEX_MAX];
    rc_id_hex(r->cluster_id, RC_CLUSTER_ID_SIZE, mine);
    if (cr->cluster_id.len == RC_CLUSTER_ID_SIZE)
        rc_id_hex(cr->cluster_id.data, RC_CLUSTER_ID_SIZE, theirs);
    else
        snprintf(theirs, sizeof(theirs), "(malformed)");
    int same = cr->cluster_id.len == RC_CLUSTER_ID_SIZE &&
               memcmp(cr->cluster_id.data, r->cluster_id, RC_CLUSTER_ID_SIZE) == 0;
    rpc_msg_free(reply);
    if (same) {
        RC_INFO("raylet: the GCS at %s is back and serves our cluster %s", gcs_client_address(r->gcs), mine);
        return;
    }
    raylet__fatal(r,
                  "the GCS at %s now serves cluster %s, but this raylet belongs to cluster %s: the GCS "
                  "restarted without its previous state (give it --redis-address to keep state across "
                  "restarts). Exiting.",
                  gcs_client_address(r->gcs), theirs, mine);
}

/* Asks the GCS which cluster it serves; exits if it is not ours. */
static void raylet__verify_cluster(raylet *r)
{
    if (r->verifying_cluster)
        return;
    Ray__Rpc__GetClusterIdRequest req = RAY__RPC__GET_CLUSTER_ID_REQUEST__INIT;
    if (rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__node_info_gcs_service__descriptor, "GetClusterId",
                        &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__cluster_checked, r) == 0)
        r->verifying_cluster = 1;
}

/* Records the outcome of a call to the GCS; returns 1 if the raylet goes on. */
static int raylet__gcs_outcome(raylet *r, const rpc_status *st)
{
    if (st->code == GRPC_STATUS_OK) {
        if (r->gcs_down_since_ms) {
            r->gcs_down_since_ms = 0;
            raylet__verify_cluster(r);
        }
        return 1;
    }
    if (st->code == GRPC_STATUS_UNAUTHENTICATED) {
        raylet__verify_cluster(r); /* it names the clusters and exits */
        return 0;
    }
    int64_t now = rc_mono_ms();
    if (!r->gcs_down_since_ms) {
        r->gcs_down_since_ms = now;
        RC_WARN("raylet: the GCS at %s does not answer (%s); retrying for up to %lld s",
                gcs_client_address(r->gcs), st->message, (long long)rc_cfg.gcs_rpc_server_reconnect_timeout_s);
    } else if (now - r->gcs_down_since_ms > rc_cfg.gcs_rpc_server_reconnect_timeout_s * 1000) {
        raylet__fatal(r, "the GCS at %s has been unreachable for %lld s (last error: %s). Exiting.",
                      gcs_client_address(r->gcs), (long long)((now - r->gcs_down_since_ms) / 1000), st->message);
        return 0;
    }
    return 1;
}

/* ---- resource reports --------------------------------------------------------------- */

static void raylet__reported(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    r->report_in_flight = 0;
    const char *message = "";
    int code = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, &message) : GCS_STATUS_OK;
    if (r->state != RAYLET_RUNNING) {
        rpc_msg_free(reply);
        return;
    }
    if (!raylet__gcs_outcome(r, st) || st->code != GRPC_STATUS_OK) {
        r->last_report_len = 0; /* send in full once the GCS is back */
        rpc_msg_free(reply);
        return;
    }
    if (code == GCS_STATUS_NOT_FOUND) {
        char m[300];
        snprintf(m, sizeof(m), "%s", message);
        rpc_msg_free(reply);
        raylet__fatal(r, "the GCS no longer knows this node as alive (%s). Exiting.", m);
        return;
    }
    rpc_msg_free(reply);
}

static void raylet__report_tick(uv_timer_t *t)
{
    raylet *r = t->data;
    if (r->state != RAYLET_RUNNING || r->report_in_flight)
        return;
    raylet__scratch s = {0};
    Ray__Rpc__ResourcesData d;
    raylet__resources_data(r, &d, &s);
    d.idle_duration_ms = 0; /* compared below: only real changes count */
    size_t len;
    uint8_t *bytes = rpc_msg_pack(&d.base, &len);
    int64_t now = rc_mono_ms();
    int changed = len != r->last_report_len || memcmp(bytes, r->last_report, len) != 0;
    if (!changed && now - r->last_report_ms < rc_cfg.raylet_report_keepalive_ms) {
        rc_free(bytes);
        lease_manager_load_free(d.resource_load_by_shape);
        raylet__scratch_free(&s);
        return;
    }
    d.idle_duration_ms = now - r->idle_since_ms;
    Rayc__Rpc__ReportResourceUsageRequest req = RAYC__RPC__REPORT_RESOURCE_USAGE_REQUEST__INIT;
    req.resources = &d;
    if (rpc_client_call(gcs_client_rpc(r->gcs), &rayc__rpc__resource_report_gcs_service__descriptor,
                        "ReportResourceUsage", &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__reported, r) == 0) {
        r->report_in_flight = 1;
        rc_free(r->last_report);
        r->last_report = bytes;
        r->last_report_len = len;
        r->last_report_ms = now;
    } else {
        rc_free(bytes);
    }
    lease_manager_load_free(d.resource_load_by_shape);
    raylet__scratch_free(&s);
}

/* ---- node channel ------------------------------------------------------------------- */

static void raylet__track_node(raylet *r, const Ray__Rpc__GcsNodeInfo *info)
{
    if (info->node_id.len != RC_NODE_ID_SIZE)
        return;
    void *old;
    if (info->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD) {
        old = rc_map_remove(&r->live_nodes, info->node_id.data, RC_NODE_ID_SIZE);
        if (old) {
            char hex[RC_ID_HEX_MAX];
            RC_INFO("raylet: node %s left the cluster (%zu alive)",
                    rc_id_hex(info->node_id.data, RC_NODE_ID_SIZE, hex), rc_map_size(&r->live_nodes));
            /* Object manager hook: pulls from that node must go elsewhere. */
            if (r->object_hooks.node_gone)
                r->object_hooks.node_gone(r->object_hooks.arg, info->node_id.data);
            /* Leases here of owners that ran there are nobody's any more. */
            if (r->leases && memcmp(info->node_id.data, r->node_id, RC_NODE_ID_SIZE) != 0)
                lease_manager_owner_node_gone(r->leases, info->node_id.data);
        }
        if (memcmp(info->node_id.data, r->node_id, RC_NODE_ID_SIZE) == 0 && r->state == RAYLET_RUNNING) {
            rpc_msg_free(old);
            const char *why = info->death_info && info->death_info->reason_message ? info->death_info->reason_message : "";
            raylet__fatal(r, "the GCS declared this node dead: %s. Exiting.", why);
            return;
        }
    } else {
        old = rc_map_put(&r->live_nodes, info->node_id.data, RC_NODE_ID_SIZE, rpc_msg_dup(&info->base));
    }
    rpc_msg_free(old);
    raylet_view_track(r, info);
}

/* A job record (channel or fetch): its config (code search path, Python path, working
 * directory, runtime env) and liveness go to the pool. */
static void raylet__track_job(raylet *r, const Ray__Rpc__JobTableData *job)
{
    if (!r->pool || job->job_id.len != RC_JOB_ID_SIZE)
        return;
    if (job->is_dead) {
        raylet_auth_job_finished(r, job->job_id.data);
        if (r->leases)
            lease_manager_job_finished(r->leases, job->job_id.data);
    }
    if (r->leases)
        lease_manager_job_info(r->leases, job->job_id.data, job->config, job->is_dead);
    worker_pool_job_info(r->pool, job->job_id.data, job->config, job->is_dead);
}

static void raylet__on_gcs_message(const Ray__Rpc__PubMessage *m, void *arg)
{
    raylet *r = arg;
    if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_NODE_INFO_MESSAGE)
        raylet__track_node(r, m->node_info_message);
    else if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_JOB_MESSAGE)
        raylet__track_job(r, m->job_message);
    else if (m->inner_message_case == RAY__RPC__PUB_MESSAGE__INNER_MESSAGE_WORKER_DELTA_MESSAGE &&
             m->worker_delta_message->worker_id.len == RC_WORKER_ID_SIZE && r->leases)
        /* A worker died somewhere (its raylet reported it): the leases it owns here end. */
        lease_manager_owner_gone(r->leases, m->worker_delta_message->worker_id.data);
}

typedef struct raylet__job_fetch {
    raylet *r;
    uint8_t job_id[RC_JOB_ID_SIZE];
} raylet__job_fetch;

static void raylet__fetch_job(void *arg, const uint8_t job_id[RC_JOB_ID_SIZE]);

/* Fetches of jobs that could not be asked about (the GCS is restarting) are sent again
 * every RAYLET__JOB_REFETCH_MS; their leases wait, as they would for a starting worker. */
static void raylet__refetch_jobs(uv_timer_t *t)
{
    raylet *r = t->data;
    rc_map_iter it = RC_MAP_ITER_INIT;
    const void *key;
    size_t klen;
    void *v;
    while (r->state != RAYLET_STOPPING && rc_map_next(&r->job_refetch, &it, &key, &klen, &v)) {
        uint8_t job_id[RC_JOB_ID_SIZE];
        memcpy(job_id, key, RC_JOB_ID_SIZE);
        rc_map_iter_remove(&r->job_refetch, &it);
        raylet__fetch_job(r, job_id);
    }
    if (!rc_map_size(&r->job_refetch))
        uv_timer_stop(t);
}

static void raylet__job_fetched(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet__job_fetch *f = arg;
    raylet *r = f->r;
    const char *message = "";
    int code = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, &message) : GCS_STATUS_OK;
    char hex[RC_ID_HEX_MAX], why[600];
    rc_id_hex(f->job_id, RC_JOB_ID_SIZE, hex);
    if (!r->pool || r->state == RAYLET_STOPPING) {
        /* nothing waits any more */
    } else if (st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED) {
        RC_WARN("raylet: cannot ask the GCS about job %s (%s); asking again", hex, st->message);
        rc_map_put(&r->job_refetch, f->job_id, RC_JOB_ID_SIZE, (void *)1);
        if (!uv_is_active((uv_handle_t *)&r->job_refetch_timer))
            uv_timer_start(&r->job_refetch_timer, raylet__refetch_jobs, RAYLET__JOB_REFETCH_MS, RAYLET__JOB_REFETCH_MS);
    } else if (st->code != GRPC_STATUS_OK || code != GCS_STATUS_OK) {
        snprintf(why, sizeof(why), "cannot learn job %s from the GCS: %s", hex,
                 st->code != GRPC_STATUS_OK ? st->message : message);
        worker_pool_job_refused(r->pool, f->job_id, RC_EUNAVAIL, why);
    } else {
        const Ray__Rpc__GetAllJobInfoReply *jr = (const void *)reply;
        int found = 0;
        for (size_t i = 0; i < jr->n_job_info_list; i++) {
            const Ray__Rpc__JobTableData *job = jr->job_info_list[i];
            if (job->job_id.len == RC_JOB_ID_SIZE && !memcmp(job->job_id.data, f->job_id, RC_JOB_ID_SIZE)) {
                raylet__track_job(r, job);
                found = 1;
            }
        }
        /* ARCHITECTURE §14: no worker (and no code search path, not even the default one)
         * for a job that no authenticated client created. */
        if (!found) {
            snprintf(why, sizeof(why),
                     "job %s is unknown to the GCS: a raylet runs workers only for jobs that an authenticated "
                     "client created with AddJob",
                     hex);
            worker_pool_job_refused(r->pool, f->job_id, RC_EAUTH, why);
        }
    }
    rpc_msg_free(reply);
    rc_free(f);
}

/* The pool wants a job's config before starting its first worker. */
static void raylet__fetch_job(void *arg, const uint8_t job_id[RC_JOB_ID_SIZE])
{
    raylet *r = arg;
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(job_id, RC_JOB_ID_SIZE, hex);
    Ray__Rpc__GetAllJobInfoRequest req = RAY__RPC__GET_ALL_JOB_INFO_REQUEST__INIT;
    req._job_or_submission_id_case = RAY__RPC__GET_ALL_JOB_INFO_REQUEST___JOB_OR_SUBMISSION_ID_JOB_OR_SUBMISSION_ID;
    req.job_or_submission_id = hex;
    raylet__job_fetch *f = RC_NEW(raylet__job_fetch);
    f->r = r;
    memcpy(f->job_id, job_id, RC_JOB_ID_SIZE);
    if (!r->gcs || rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__job_info_gcs_service__descriptor,
                                   "GetAllJobInfo", &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__job_fetched, f) < 0) {
        rc_free(f);
        char why[200];
        snprintf(why, sizeof(why), "cannot ask the GCS about job %s", hex);
        worker_pool_job_refused(r->pool, job_id, RC_EUNAVAIL, why);
    }
}

static void raylet__worker_dead(void *arg, worker *w, const char *why)
{
    raylet *r = arg;
    raylet_failures_worker_reaped(r, w);
    if (r->leases)
        lease_manager_worker_dead(r->leases, w, why);
    /* A registered worker may have owned leases (nested tasks) and pinned objects. */
    if (w->port)
        raylet_client_gone(r, w->id);
}

static void raylet__free_node(void *p)
{
    rpc_msg_free(p);
}

static void raylet__nodes_fetched(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    if (r->state != RAYLET_RUNNING || st->code != GRPC_STATUS_OK) {
        rpc_msg_free(reply);
        return;
    }
    Ray__Rpc__GetAllNodeInfoReply *nr = (Ray__Rpc__GetAllNodeInfoReply *)reply;
    rc_map_destroy(&r->live_nodes, raylet__free_node);
    for (size_t i = 0; i < nr->n_node_info_list && r->state == RAYLET_RUNNING; i++)
        raylet__track_node(r, nr->node_info_list[i]);
    RC_INFO("raylet: %zu nodes alive in the cluster", rc_map_size(&r->live_nodes));
    rpc_msg_free(reply);
}

/* (Re)subscribed: fetch the whole table, since messages may have been missed. */
static void raylet__on_subscribed(void *arg)
{
    raylet *r = arg;
    Ray__Rpc__GetAllNodeInfoRequest req = RAY__RPC__GET_ALL_NODE_INFO_REQUEST__INIT;
    rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                    &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__nodes_fetched, r);
}

/* ---- joining ------------------------------------------------------------------------ */

static void raylet__write_ready_file(raylet *r)
{
    if (!r->opts.ready_file)
        return;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", r->opts.ready_file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        RC_WARN("raylet: cannot write %s", tmp);
        return;
    }
    fprintf(f, "{\"node_id\": \"%s\", \"node_manager_port\": %d, \"node_ip_address\": \"%s\", \"pid\": %d}\n",
            r->node_id_hex, r->port, r->spec.ip, (int)getpid());
    if (fclose(f) != 0 || rename(tmp, r->opts.ready_file) != 0)
        RC_WARN("raylet: cannot write %s", r->opts.ready_file);
}

/* 1 if a start-up call to the GCS that ended with st should be sent again: lost on the way
 * (a broken connection, no reply by the deadline), a few times. */
static int raylet__start_call_lost(raylet *r, const rpc_status *st, const char *method)
{
    if ((st->code != GRPC_STATUS_UNAVAILABLE && st->code != GRPC_STATUS_DEADLINE_EXCEEDED) ||
        r->start_call_tries >= RAYLET__START_CALL_TRIES)
        return 0;
    r->start_call_tries++;
    RC_WARN("raylet: %s to the GCS failed (%s); sending it again", method, st->message);
    return 1;
}

static void raylet__register(raylet *r);
static void raylet__ask_config(raylet *r);

static void raylet__registered(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    if (r->state != RAYLET_STARTING) {
        rpc_msg_free(reply);
        return;
    }
    if (raylet__start_call_lost(r, st, "RegisterNode")) {
        raylet__register(r); /* the same record again: a repeated registration stores it again */
        return;
    }
    const char *message = "";
    int code = st->code == GRPC_STATUS_OK ? gcs_reply_status(reply, &message) : -1;
    if (code != GCS_STATUS_OK) {
        char m[400];
        snprintf(m, sizeof(m), "%s", st->code == GRPC_STATUS_OK ? message : st->message);
        rpc_msg_free(reply);
        raylet__fatal(r, "the GCS refused to register this node: %s", m);
        return;
    }
    rpc_msg_free(reply);
    r->state = RAYLET_RUNNING;
    r->idle_since_ms = rc_mono_ms();
    RC_INFO("raylet: node %s registered with the GCS at %s (%s:%d, %.4g CPU, %d GPU %s)", r->node_id_hex,
            gcs_client_address(r->gcs), r->spec.ip, r->port, r->spec.num_cpus, r->spec.num_gpus,
            r->spec.accelerator_type);
    gcs_subscriber_callbacks cbs = {raylet__on_gcs_message, raylet__on_subscribed, r};
    r->sub = gcs_subscriber_new(r->gcs, &cbs);
    gcs_subscriber_subscribe(r->sub, RAY__RPC__CHANNEL_TYPE__GCS_NODE_INFO_CHANNEL, NULL, 0);
    gcs_subscriber_subscribe(r->sub, RAY__RPC__CHANNEL_TYPE__GCS_JOB_CHANNEL, NULL, 0);
    gcs_subscriber_subscribe(r->sub, RAY__RPC__CHANNEL_TYPE__GCS_WORKER_DELTA_CHANNEL, NULL, 0);
    raylet_view_start_polling(r);
    uv_timer_start(&r->report_timer, raylet__report_tick, 0,
                   (uint64_t)(rc_cfg.raylet_report_resources_period_milliseconds > 0
                                  ? rc_cfg.raylet_report_resources_period_milliseconds
                                  : 100));
    raylet__write_ready_file(r);
}

static void raylet__register(raylet *r)
{
    raylet__scratch s = {0};
    Ray__Rpc__GcsNodeInfo info;
    raylet__node_info(r, &info, &s);
    Ray__Rpc__RegisterNodeRequest req = RAY__RPC__REGISTER_NODE_REQUEST__INIT;
    req.node_info = &info;
    int rc = rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__node_info_gcs_service__descriptor,
                             "RegisterNode", &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__registered, r);
    raylet__scratch_free(&s);
    if (rc < 0)
        raylet__fatal(r, "cannot send RegisterNode: %s", rc_strerror(rc));
}

static void raylet__got_config(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    if (r->state != RAYLET_STARTING) {
        rpc_msg_free(reply);
        return;
    }
    if (raylet__start_call_lost(r, st, "GetInternalConfig")) {
        raylet__ask_config(r);
        return;
    }
    if (st->code != GRPC_STATUS_OK) {
        char m[300];
        snprintf(m, sizeof(m), "%s", st->message);
        rpc_msg_free(reply);
        raylet__fatal(r, "cannot read the cluster configuration from the GCS: %s", m);
        return;
    }
    Ray__Rpc__GetInternalConfigReply *cr = (Ray__Rpc__GetInternalConfigReply *)reply;
    if (cr->config && rc_config_apply_json(cr->config, strlen(cr->config)) < 0)
        RC_WARN("raylet: ignoring a malformed configuration from the GCS");
    rpc_msg_free(reply);
    raylet__register(r);
}

static void raylet__connected(gcs_client *gc, int rc, const char *message, void *arg)
{
    raylet *r = arg;
    if (r->state != RAYLET_STARTING)
        return;
    if (rc < 0) {
        raylet__fatal(r, "%s", message);
        return;
    }
    memcpy(r->cluster_id, gcs_client_cluster_id(gc), RC_CLUSTER_ID_SIZE);
    raylet__ask_config(r);
}

static void raylet__ask_config(raylet *r)
{
    Ray__Rpc__GetInternalConfigRequest req = RAY__RPC__GET_INTERNAL_CONFIG_REQUEST__INIT;
    if (rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__internal_kvgcs_service__descriptor,
                        "GetInternalConfig", &req.base, rc_cfg.gcs_rpc_timeout_ms, raylet__got_config, r) < 0)
        raylet__fatal(r, "cannot ask the GCS for its configuration");
}

/* ---- services ----------------------------------------------------------------------- */

static void handle_health_check(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    (void)request;
    Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    reply.status = r->state == RAYLET_STOPPING ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                                               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_reply(call, &reply.base);
}

static const rpc_method_handler health_handlers[] = {{"Check", handle_health_check}, {NULL, NULL}};

static void handle_notify_gcs_restart(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    (void)request;
    Ray__Rpc__NotifyGCSRestartReply reply = RAY__RPC__NOTIFY_GCSRESTART_REPLY__INIT;
    RC_INFO("raylet: the GCS restarted; subscribing again and reporting in full");
    if (r->sub)
        gcs_subscriber_resubscribe(r->sub);
    r->last_report_len = 0;
    raylet__verify_cluster(r);
    rpc_reply(call, &reply.base);
}

static void handle_get_resource_load(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    (void)request;
    Ray__Rpc__GetResourceLoadReply reply = RAY__RPC__GET_RESOURCE_LOAD_REPLY__INIT;
    raylet__scratch s = {0};
    Ray__Rpc__ResourcesData d;
    raylet__resources_data(r, &d, &s);
    reply.resources = &d;
    rpc_reply(call, &reply.base);
    lease_manager_load_free(d.resource_load_by_shape);
    raylet__scratch_free(&s);
}

static void handle_shutdown_raylet(rpc_call *call, const ProtobufCMessage *request, void *arg)
{
    raylet *r = arg;
    const Ray__Rpc__ShutdownRayletRequest *req = (const void *)request;
    Ray__Rpc__ShutdownRayletReply reply = RAY__RPC__SHUTDOWN_RAYLET_REPLY__INIT;
    rpc_reply(call, &reply.base);
    RC_INFO("raylet: ShutdownRaylet (graceful=%d) from %s", (int)req->graceful, rpc_call_peer(call));
    raylet_shutdown(r, req->graceful, "the raylet was drained (ShutdownRaylet)", 0);
}

static const rpc_method_handler node_manager_handlers[] = {
    {"NotifyGCSRestart", handle_notify_gcs_restart},
    {"GetResourceLoad", handle_get_resource_load},
    {"ShutdownRaylet", handle_shutdown_raylet},
    {NULL, NULL},
};

/* ---- lifetime ----------------------------------------------------------------------- */

static void raylet__on_signal(uv_signal_t *h, int signum)
{
    raylet *r = h->data;
    char reason[64];
    snprintf(reason, sizeof(reason), "received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    raylet_shutdown(r, 1, reason, 0);
}

static int raylet__mkdir_p(const char *path)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return RC_EIO;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? RC_EIO : 0;
}

/* The unix socket's directory: ours and 0700, so that only this node's user reaches
 * LocalRayletService (whose callers are trusted as local: ARCHITECTURE §14). A directory
 * of another user, or a link, is refused rather than fixed. */
static int raylet__private_dir(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        fprintf(stderr, "rayc-raylet: cannot read %s: %s\n", dir, strerror(errno));
        return RC_EIO;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        fprintf(stderr, "rayc-raylet: %s is %s; the raylet's socket directory must be a directory of its own user "
                        "(uid %d)\n", dir, S_ISDIR(st.st_mode) ? "owned by another user" : "not a directory",
                (int)geteuid());
        return RC_EIO;
    }
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0) {
        fprintf(stderr, "rayc-raylet: cannot make %s private (chmod 0700): %s\n", dir, strerror(errno));
        return RC_EIO;
    }
    return 0;
}

/* The session directory: --session-dir; else the current session (session_latest, which
 * `rayc start` made just before starting us); else a new one. Then logs/ and sockets/ in
 * it, the socket path and the worker command. */
static int raylet__session(raylet *r)
{
    char root[PATH_MAX], latest[PATH_MAX + 32], resolved[PATH_MAX];
    struct stat st;
    if (r->opts.session_dir) {
        snprintf(r->session_dir, sizeof(r->session_dir), "%s", r->opts.session_dir);
    } else {
        rc_session_root(root, sizeof(root));
        snprintf(latest, sizeof(latest), "%s/session_latest", root);
        if (realpath(latest, resolved) && stat(resolved, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(r->session_dir, sizeof(r->session_dir), "%s", resolved);
        } else if (rc_session_create(r->session_dir, sizeof(r->session_dir)) < 0) {
            fprintf(stderr, "rayc-raylet: cannot create a session directory under %s: %s\n", root, strerror(errno));
            return RC_EIO;
        }
    }
    char sub[PATH_MAX + 16];
    const char *dirs[] = {"logs", "sockets"};
    for (size_t i = 0; i < RC_ARRAY_LEN(dirs); i++) {
        snprintf(sub, sizeof(sub), "%s/%s", r->session_dir, dirs[i]);
        if (raylet__mkdir_p(sub) < 0) {
            fprintf(stderr, "rayc-raylet: cannot create %s: %s\n", sub, strerror(errno));
            return RC_EIO;
        }
    }
    snprintf(sub, sizeof(sub), "%s/sockets", r->session_dir);
    if (raylet__private_dir(sub) < 0)
        return RC_EIO;
    /* Absolute, since workers and drivers find the socket through it from anywhere. */
    char absolute[PATH_MAX];
    if (realpath(r->session_dir, absolute))
        snprintf(r->session_dir, sizeof(r->session_dir), "%s", absolute);
    int n = snprintf(r->socket_path, sizeof(r->socket_path), "%s/sockets/raylet.%.8s.sock", r->session_dir,
                     r->node_id_hex);
    if (n < 0 || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "rayc-raylet: the socket path %s is longer than a unix socket allows (107 bytes); "
                        "use a shorter --session-dir\n", r->socket_path);
        return RC_EINVAL;
    }
    if (r->opts.worker_command) {
        snprintf(r->worker_command, sizeof(r->worker_command), "%s", r->opts.worker_command);
    } else {
        char dir[PATH_MAX - 32];
        if (rc_exe_dir(dir, sizeof(dir)) < 0)
            snprintf(dir, sizeof(dir), ".");
        snprintf(r->worker_command, sizeof(r->worker_command), "%s/rayc-worker", dir);
    }
    if (access(r->worker_command, X_OK) != 0)
        RC_WARN("raylet: the worker program %s is not executable (%s); leases will fail until it is",
                r->worker_command, strerror(errno));
    return 0;
}

/* ---- the object store ----------------------------------------------------------------- */

static void raylet__objects_client_gone(void *arg, const uint8_t worker_id[RC_WORKER_ID_SIZE])
{
    raylet *r = arg;
    raylet_store_client_gone(r->store, worker_id);
    raylet_store_owner_gone(r->store, worker_id, NULL);
}

static void raylet__objects_describe(void *arg, const char **store_path, uint64_t *store_size)
{
    raylet *r = arg;
    *store_path = raylet_store_path(r->store);
    *store_size = raylet_store_capacity(r->store);
}

static void raylet__objects_node_gone(void *arg, const uint8_t node_id[RC_NODE_ID_SIZE])
{
    raylet *r = arg;
    raylet_om_node_gone(r->object_manager, node_id);
    raylet_store_owner_gone(r->store, NULL, node_id);
}

/* The object manager's address book: a live node's raylet ("ip:port"), or NULL. */
static const char *raylet__node_address(void *arg, const uint8_t *node_id)
{
    raylet *r = arg;
    static char address[300];
    const Ray__Rpc__GcsNodeInfo *info = rc_map_get(&r->live_nodes, node_id, RC_NODE_ID_SIZE);
    if (!info)
        return NULL;
    snprintf(address, sizeof(address), "%s:%d", info->node_manager_address,
             info->object_manager_port ? info->object_manager_port : info->node_manager_port);
    return address;
}

/* The node's shared-memory store (object_store_memory bytes under plasma_directory, /dev/shm
 * by default; the name is what rc_sweep_stores looks for) and the object
 * manager that moves objects to and from other nodes. */
static int raylet__objects_start(raylet *r)
{
    char path[PATH_MAX], err[512];
    snprintf(path, sizeof(path), "%s/rayc-%s", rc_cfg.plasma_directory, r->node_id_hex);
    if (raylet_store_create(r->loop, path, (uint64_t)r->spec.object_store_memory, err, sizeof(err), &r->store) < 0) {
        fprintf(stderr, "rayc-raylet: cannot create the object store: %s\n", err);
        return RC_ENOSPC;
    }
    int prefault = r->opts.object_store_prefault >= 0 ? r->opts.object_store_prefault : rc_cfg.object_store_prefault;
    if (!prefault)
        RC_INFO("object store: pre-fault off");
    else if (raylet_store_prefault_start(r->store, rc_cfg.object_store_prefault_keep_available, NULL) < 0)
        RC_WARN("object store: no pre-fault: object_store_prefault_keep_available must be between 0 and 1 (is %g)",
                rc_cfg.object_store_prefault_keep_available);
    raylet_om_options o = {0};
    o.node_id = r->node_id;
    o.node_address = raylet__node_address;
    o.node_address_arg = r;
    o.chunk_size = (uint64_t)rc_cfg.object_manager_default_chunk_size;
    o.chunks_in_flight = (int)rc_cfg.object_manager_max_chunks_in_flight;
    o.rpc_timeout_ms = rc_cfg.object_manager_rpc_timeout_ms;
    o.pull_retry_ms = rc_cfg.object_manager_pull_retry_ms;
    o.pull_retry_max_ms = rc_cfg.object_manager_pull_retry_max_ms;
    o.transfer_idle_ms = rc_cfg.object_manager_transfer_idle_ms;
    if (raylet_om_create(r->rpc, r->store, &o, &r->object_manager) < 0) {
        fprintf(stderr, "rayc-raylet: cannot create the object manager\n");
        return RC_EIO;
    }
    r->object_hooks = (raylet_object_hooks){raylet__objects_client_gone, raylet__objects_describe,
                                            raylet__objects_node_gone, r};
    rpc_server_add_service(r->srv, &ray__rpc__object_manager_service__descriptor, raylet_object_manager_handlers,
                           r->object_manager);
    rpc_server_add_service(r->srv, &ray__rpc__node_manager_service__descriptor, raylet_store_pin_handlers, r->store);
    return 0;
}

/* Serves LocalRayletService on the node's unix socket. */
static int raylet__serve_local(raylet *r)
{
    rpc_server_create(r->rpc, NULL, &r->local_srv);
    rpc_server_add_service(r->local_srv, &rayc__rpc__local_raylet_service__descriptor, raylet_local_handlers, r);
    if (r->store)
        rpc_server_add_service(r->local_srv, &rayc__rpc__local_raylet_service__descriptor, raylet_store_handlers,
                               r->store);
    unlink(r->socket_path);
    char addr[PATH_MAX + 8];
    snprintf(addr, sizeof(addr), "unix:%s", r->socket_path);
    if (rpc_server_listen(r->local_srv, addr, NULL) < 0) {
        fprintf(stderr, "rayc-raylet: cannot listen on %s\n", r->socket_path);
        return RC_EIO;
    }
    return rpc_server_start(r->local_srv);
}

/* Listens for NodeManagerService on the node IP only (ARCHITECTURE §14), or on every
 * interface with --bind-all; either way the node IP is what the cluster is told. */
static int raylet__listen_tcp(raylet *r)
{
    char addr[96];
    const char *host = r->opts.bind_all ? "0.0.0.0" : r->spec.ip;
    int v6 = strchr(host, ':') != NULL;
    snprintf(addr, sizeof(addr), "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", r->opts.node_manager_port);
    int rc = rpc_server_listen(r->srv, addr, &r->port);
    if (rc == 0)
        return 0;
    if (r->opts.bind_all)
        fprintf(stderr, "rayc-raylet: cannot listen on port %d: it is in use\n", r->opts.node_manager_port);
    else
        fprintf(stderr,
                "rayc-raylet: cannot listen on %s port %d: the port is in use, or %s is not an address of this "
                "host (--node-ip-address names one of its own addresses; --bind-all listens on every interface)\n",
                r->spec.ip, r->opts.node_manager_port, r->spec.ip);
    return rc;
}

int raylet_start(raylet *r, uv_loop_t *loop)
{
    r->loop = loop;
    r->state = RAYLET_STARTING;
    rc_map_init(&r->live_nodes);
    rc_map_init(&r->job_refetch);
    uv_timer_init(loop, &r->report_timer);
    uv_timer_init(loop, &r->exit_timer);
    uv_timer_init(loop, &r->view_poll_timer);
    uv_timer_init(loop, &r->job_refetch_timer);
    r->report_timer.data = r->exit_timer.data = r->view_poll_timer.data = r->job_refetch_timer.data = r;
    uv_signal_init(loop, &r->sigterm);
    uv_signal_init(loop, &r->sigint);
    r->sigterm.data = r->sigint.data = r;
    raylet_local_start(r);
    raylet_failures_init(r);

    rc_id_random(r->node_id, RC_NODE_ID_SIZE);
    rc_id_hex(r->node_id, RC_NODE_ID_SIZE, r->node_id_hex);
    char err[768];
    int rc = raylet_detect(&r->spec, &r->opts, r->node_id_hex, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "rayc-raylet: %s\n", err);
        return rc;
    }
    /* Joining comes before anything else talks to the GCS or serves: every server and
     * client created afterwards uses the security it sets. */
    if ((rc = rpc_ctx_create(loop, &r->rpc)) < 0)
        return rc;
    if ((rc = raylet_auth_join(r, err, sizeof(err))) < 0) {
        RC_ERROR("raylet: %s", err);
        fprintf(stderr, "rayc-raylet: %s\n", err);
        return rc;
    }
    if ((rc = raylet__session(r)) < 0)
        return rc;
    if ((rc = raylet_view_init(r, err, sizeof(err))) < 0) {
        fprintf(stderr, "rayc-raylet: %s\n", err);
        return rc;
    }
    /* The default code search path applies to the jobs the GCS knows only (the pool starts
     * no worker for any other job). */
    const char *code_path = getenv("RAYC_CODE_SEARCH_PATH");
    worker_pool_config pool_cfg = {
        .worker_command = r->worker_command,
        .python_executable = raylet_python_executable(&r->opts),
        .session_dir = r->session_dir,
        .raylet_socket = r->socket_path,
        .node_id_hex = r->node_id_hex,
        .node_ip = r->spec.ip,
        .gcs_address = r->opts.gcs_address,
        .num_cpus = r->spec.num_cpus,
        .default_code_search_path = code_path,
    };
    worker_pool_callbacks pool_cbs = {raylet__worker_dead, raylet__fetch_job, r};
    if ((rc = worker_pool_create(loop, &pool_cfg, &pool_cbs, &r->pool)) < 0)
        return rc;
    if ((rc = lease_manager_create(r, &r->leases)) < 0)
        return rc;
    if ((rc = bundle_manager_create(r, &r->bundles)) < 0)
        return rc;

    rpc_server_create(r->rpc, NULL, &r->srv);
    rpc_server_add_service(r->srv, &ray__rpc__node_manager_service__descriptor, node_manager_handlers, r);
    rpc_server_add_service(r->srv, &ray__rpc__node_manager_service__descriptor, lease_manager_handlers, r->leases);
    rpc_server_add_service(r->srv, &ray__rpc__node_manager_service__descriptor, bundle_manager_handlers, r->bundles);
    rpc_server_add_service(r->srv, &grpc__health__v1__health__descriptor, health_handlers, r);
    if ((rc = raylet_challenge_create(r, &r->challenge)) < 0)
        return rc;
    rpc_server_add_service(r->srv, &rayc__rpc__challenge_service__descriptor, raylet_challenge_handlers, r->challenge);
    rpc_server_add_service(r->srv, &ray__rpc__log_service__descriptor, raylet_log_list_handlers, r);
    rpc_server_add_service(r->srv, &rayc__rpc__log_read_service__descriptor, raylet_log_read_handlers, r);
    gcs_revocations_attach(r->srv, &r->revocations);
    if ((rc = raylet__listen_tcp(r)) < 0)
        return rc;
    if ((rc = raylet_metrics_init(r)) < 0)
        return rc;
    if ((rc = raylet__objects_start(r)) < 0)
        return rc;
    if ((rc = raylet__serve_local(r)) < 0)
        return rc;
    rpc_server_start(r->srv);
    if ((rc = raylet_metrics_serve(r)) < 0)
        return rc;

    uv_signal_start(&r->sigterm, raylet__on_signal, SIGTERM);
    uv_signal_start(&r->sigint, raylet__on_signal, SIGINT);

    if ((rc = gcs_client_create(r->rpc, r->opts.gcs_address, &r->gcs)) < 0) {
        fprintf(stderr, "rayc-raylet: bad GCS address %s\n", r->opts.gcs_address);
        return rc;
    }
    gcs_revocations_follow(r->revocations, r->gcs);
    RC_INFO("raylet: node %s on %s:%d%s joining the GCS at %s; session %s, socket %s, workers %s, Python workers "
            "run by %s",
            r->node_id_hex, r->spec.ip, r->port, r->opts.bind_all ? " (listening on every interface)" : "",
            r->opts.gcs_address, r->session_dir, r->socket_path, r->worker_command,
            raylet_python_executable(&r->opts));
    return gcs_client_connect(r->gcs, rc_cfg.gcs_rpc_server_reconnect_timeout_s * 1000, raylet__connected, r);
}

static void raylet__unregistered(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    raylet *r = arg;
    if (st->code != GRPC_STATUS_OK)
        RC_WARN("raylet: UnregisterNode failed: %s", st->message);
    rpc_msg_free(reply);
    raylet__stop_loop(r);
}

static void raylet__exit_grace_over(uv_timer_t *t)
{
    raylet *r = t->data;
    RC_WARN("raylet: the GCS did not acknowledge the unregistration in time; exiting anyway");
    raylet__stop_loop(r);
}

void raylet_shutdown(raylet *r, int graceful, const char *reason, int exit_code)
{
    if (r->state == RAYLET_STOPPING)
        return;
    int was_running = r->state == RAYLET_RUNNING;
    r->state = RAYLET_STOPPING;
    r->exit_code = exit_code;
    uv_timer_stop(&r->report_timer);
    uv_timer_stop(&r->view_poll_timer);
    uv_timer_stop(&r->job_refetch_timer);
    if (!graceful || !was_running || !r->gcs) {
        raylet__stop_loop(r);
        return;
    }
    RC_INFO("raylet: leaving the cluster: %s", reason);
    Ray__Rpc__NodeDeathInfo death = RAY__RPC__NODE_DEATH_INFO__INIT;
    death.reason = RAY__RPC__NODE_DEATH_INFO__REASON__EXPECTED_TERMINATION;
    death.reason_message = (char *)reason;
    Ray__Rpc__UnregisterNodeRequest req = RAY__RPC__UNREGISTER_NODE_REQUEST__INIT;
    req.node_id.data = r->node_id;
    req.node_id.len = RC_NODE_ID_SIZE;
    req.node_death_info = &death;
    if (rpc_client_call(gcs_client_rpc(r->gcs), &ray__rpc__node_info_gcs_service__descriptor, "UnregisterNode",
                        &req.base, RAYLET__UNREGISTER_TIMEOUT_MS, raylet__unregistered, r) < 0) {
        raylet__stop_loop(r);
        return;
    }
    uv_timer_start(&r->exit_timer, raylet__exit_grace_over, RAYLET__EXIT_GRACE_MS, 0);
}

void raylet_cleanup(raylet *r)
{
    r->state = RAYLET_STOPPING;
    raylet_metrics_stop(r);
    /* Held lease calls are answered while the servers still run; then no handler runs
     * again (servers refuse dispatch once destroyed). */
    raylet_challenge_destroy(r->challenge);
    r->challenge = NULL;
    lease_manager_destroy(r->leases);
    r->leases = NULL;
    bundle_manager_destroy(r->bundles);
    r->bundles = NULL;
    worker_pool_destroy(r->pool);
    r->pool = NULL;
    /* The object manager, then the store: the workers that mapped the region are gone, and
     * the servers that dispatch to them are destroyed in this same callback below. */
    if (r->object_manager)
        raylet_om_destroy(r->object_manager);
    r->object_manager = NULL;
    if (r->store)
        raylet_store_destroy(r->store);
    r->store = NULL;
    r->object_hooks = (raylet_object_hooks){0};
    if (r->sub)
        gcs_subscriber_destroy(r->sub);
    gcs_revocations_stop(r->revocations);
    if (r->gcs)
        gcs_client_destroy(r->gcs);
    if (r->srv)
        rpc_server_destroy(r->srv);
    if (r->local_srv)
        rpc_server_destroy(r->local_srv);
    if (r->rpc)
        rpc_ctx_drain(r->rpc);
    raylet_failures_cleanup(r); /* after the drain: the last report callbacks have run */
    raylet_auth_cleanup(r);     /* likewise the last IssueJobToken callbacks */
    gcs_revocations_free(r->revocations); /* likewise its last poll */
    r->revocations = NULL;
    rc_map_destroy(&r->job_refetch, NULL);
    if (r->socket_path[0])
        unlink(r->socket_path);
    raylet_local_cleanup(r);
    raylet_view_free(r);
    rc_map_destroy(&r->live_nodes, raylet__free_node);
    rc_free(r->last_report);
    r->last_report = NULL;
    uv_close((uv_handle_t *)&r->report_timer, NULL);
    uv_close((uv_handle_t *)&r->exit_timer, NULL);
    uv_close((uv_handle_t *)&r->view_poll_timer, NULL);
    uv_close((uv_handle_t *)&r->job_refetch_timer, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    if (r->rpc)
        rpc_ctx_destroy(r->rpc);
    raylet_metrics_free(r);
    raylet_spec_free(&r->spec);
    raylet_options_free(&r->opts);
}
