/*
 * raylet_metrics: rayc-raylet's Prometheus endpoint (/metrics on --metrics-export-port,
 * behind the cluster token, over rayc_http on the node IP).
 *
 * Rebuilt from the raylet's state at each scrape (handlers run on the loop thread):
 *   ray_resources{Name,State="USED"|"AVAILABLE"}  logical resources of this node, as in its
 *       resource reports (object_store_memory: the store's free bytes);
 *   ray_object_store_memory{Location="MMAP_SHM",ObjectState="SEALED"|"UNSEALED"}  bytes of
 *       the node's shared-memory store (rayc has no disk fallback and no spilling, so no
 *       MMAP_DISK or SPILLED series);
 *   rayc_leases{State="QUEUED"|"STARTING"|"GRANTED"} (an owner runs many tasks of one
 *       shape in sequence on one lease: tasks themselves are the GCS's ray_tasks, from the
 *       task events), rayc_leases_granted_total,
 *       rayc_spillbacks_total;
 *   ray_node_cpu_count (the host's online CPUs, not the --num-cpus resource),
 *       ray_node_cpu_utilization (percent, since the previous scrape),
 *       ray_node_mem_total, ray_node_mem_used, ray_node_mem_available (bytes, /proc/meminfo;
 *       used = total - available), all with labels ip and NodeId.
 * The RPC layer records rayc_rpc_server_latency_seconds (the TCP server's methods) and
 * rayc_rpc_client_latency_seconds (calls to the GCS, other raylets, workers) itself.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http_server.h"
#include "object_store.h"
#include "raylet_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_metrics.h"

struct raylet_metrics {
    raylet *r;
    rc_metrics *reg;
    rc_metric *resources, *store, *leases, *granted, *spillbacks;
    rc_metric *cpu_count, *cpu_util, *mem_total, *mem_used, *mem_avail;
    http_server *http;
    unsigned long long last_busy, last_total; /* /proc/stat at the previous scrape */
};

static int raylet__gauge(rc_metrics *reg, const char *name, const char *help,
                         const char *const *labels, rc_metric **out)
{
    return rc_metrics_add(reg, RC_METRIC_GAUGE, name, help, labels, NULL, 0, out);
}

int raylet_metrics_init(raylet *r)
{
    struct raylet_metrics *m = RC_NEW(struct raylet_metrics);
    m->r = r;
    m->reg = rc_metrics_new();
    r->metrics = m;
    static const char *const node[] = {"ip", "NodeId", NULL};
    int rc = raylet__gauge(m->reg, "ray_resources",
                           "Logical resources of this node by state (USED, AVAILABLE).",
                           (const char *const[]){"Name", "State", NULL}, &m->resources);
    rc = rc ? rc : raylet__gauge(m->reg, "ray_object_store_memory",
                                 "Bytes of this node's object store by location and object state.",
                                 (const char *const[]){"Location", "ObjectState", NULL}, &m->store);
    rc = rc ? rc : raylet__gauge(m->reg, "rayc_leases",
                                 "Worker leases at this raylet: QUEUED (waiting for resources), "
                                 "STARTING (waiting for a worker process), GRANTED.",
                                 (const char *const[]){"State", NULL}, &m->leases);
    rc = rc ? rc : rc_metrics_add(m->reg, RC_METRIC_COUNTER, "rayc_leases_granted_total",
                                  "Worker leases granted by this raylet since it started.", NULL,
                                  NULL, 0, &m->granted);
    rc = rc ? rc : rc_metrics_add(m->reg, RC_METRIC_COUNTER, "rayc_spillbacks_total",
                                  "Lease requests this raylet answered with another node's address.",
                                  NULL, NULL, 0, &m->spillbacks);
    rc = rc ? rc : raylet__gauge(m->reg, "ray_node_cpu_count", "Online CPUs of this host.", node, &m->cpu_count);
    rc = rc ? rc : raylet__gauge(m->reg, "ray_node_cpu_utilization",
                                 "CPU use of this host in percent, over the time since the "
                                 "previous scrape.", node, &m->cpu_util);
    rc = rc ? rc : raylet__gauge(m->reg, "ray_node_mem_total", "Memory of this host in bytes.", node,
                                 &m->mem_total);
    rc = rc ? rc : raylet__gauge(m->reg, "ray_node_mem_used",
                                 "Memory in use on this host in bytes (total - available).", node,
                                 &m->mem_used);
    rc = rc ? rc : raylet__gauge(m->reg, "ray_node_mem_available",
                                 "Memory available on this host in bytes.", node, &m->mem_avail);
    rc = rc ? rc : rpc_server_set_metrics(r->srv, m->reg);
    rc = rc ? rc : rpc_ctx_set_metrics(r->rpc, m->reg);
    return rc;
}

/* busy and total jiffies of all CPUs (first line of /proc/stat). */
static int raylet__cpu_times(unsigned long long *busy, unsigned long long *total)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return RC_EIO;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 4)
        return RC_EIO;
    *total = 0;
    for (int i = 0; i < 8; i++) /* guest time is already in user time */
        *total += v[i];
    *busy = *total - v[3] - v[4]; /* idle and iowait */
    return 0;
}

static int raylet__meminfo(unsigned long long *total, unsigned long long *avail)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return RC_EIO;
    char line[256];
    *total = *avail = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            *total = kb * 1024;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            *avail = kb * 1024;
    }
    fclose(f);
    return *total ? 0 : RC_EIO;
}

static void raylet__collect_node(struct raylet_metrics *m)
{
    raylet *r = m->r;
    const char *node[] = {r->spec.ip, r->node_id_hex};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 0)
        rc_metric_set(m->cpu_count, node, (double)ncpu);
    unsigned long long busy, total;
    if (raylet__cpu_times(&busy, &total) == 0) {
        unsigned long long db = busy - m->last_busy, dt = total - m->last_total;
        if (dt > 0 && busy >= m->last_busy)
            rc_metric_set(m->cpu_util, node, 100.0 * (double)db / (double)dt);
        m->last_busy = busy;
        m->last_total = total;
    }
    unsigned long long mem_total, mem_avail;
    if (raylet__meminfo(&mem_total, &mem_avail) == 0) {
        rc_metric_set(m->mem_total, node, (double)mem_total);
        rc_metric_set(m->mem_avail, node, (double)mem_avail);
        rc_metric_set(m->mem_used, node, (double)(mem_total > mem_avail ? mem_total - mem_avail : 0));
    }
}

static void raylet__collect(struct raylet_metrics *m)
{
    raylet *r = m->r;
    raylet_store_stats st = {0};
    if (r->store)
        raylet_store_stats_get(r->store, &st);
    if (r->view)
        raylet_view_sync_spec(r);
    rc_metric_clear(m->resources);
    for (size_t i = 0; i < r->spec.n_resources; i++) {
        const raylet_resource *res = &r->spec.resources[i];
        double avail = res->available;
        if (r->store && !strcmp(res->name, "object_store_memory"))
            avail = (double)(st.capacity > st.used ? st.capacity - st.used : 0);
        double used = res->total - avail;
        rc_metric_set(m->resources, (const char *const[]){res->name, "USED"}, used > 0 ? used : 0);
        rc_metric_set(m->resources, (const char *const[]){res->name, "AVAILABLE"}, avail);
    }
    rc_metric_clear(m->store);
    if (r->store) {
        rc_metric_set(m->store, (const char *const[]){"MMAP_SHM", "SEALED"}, (double)st.sealed_bytes);
        rc_metric_set(m->store, (const char *const[]){"MMAP_SHM", "UNSEALED"},
                      (double)(st.used > st.sealed_bytes ? st.used - st.sealed_bytes : 0));
    }
    size_t queued = 0, starting = 0, granted = 0;
    if (r->leases)
        lease_manager_count(r->leases, &queued, &starting, &granted);
    rc_metric_set(m->leases, (const char *const[]){"QUEUED"}, (double)queued);
    rc_metric_set(m->leases, (const char *const[]){"STARTING"}, (double)starting);
    rc_metric_set(m->leases, (const char *const[]){"GRANTED"}, (double)granted);
    rc_metric_clear(m->granted);
    rc_metric_add(m->granted, NULL, (double)r->counts.leases_granted);
    rc_metric_clear(m->spillbacks);
    rc_metric_add(m->spillbacks, NULL, (double)r->counts.spillbacks);
    raylet__collect_node(m);
}

static void raylet__on_http(const http_request *req, http_response *resp, void *arg)
{
    struct raylet_metrics *m = arg;
    if (!http_metrics_request(req, resp))
        return;
    raylet__collect(m);
    rc_metrics_render(m->reg, &resp->body);
    resp->content_type = RC_METRICS_CONTENT_TYPE;
}

int raylet_metrics_serve(raylet *r)
{
    struct raylet_metrics *m = r->metrics;
    http_server_options o = {0};
    o.host = r->opts.bind_all ? (strchr(r->spec.ip, ':') ? "::" : "0.0.0.0") : r->spec.ip;
    o.port = r->opts.metrics_export_port;
    o.handler = raylet__on_http;
    o.arg = m;
    o.require_token = 1;
    o.auth = r->srv;
    int rc = http_server_start(r->loop, &o, &m->http);
    if (rc < 0) {
        fprintf(stderr, "rayc-raylet: cannot serve metrics on %s port %d: %s\n", o.host, o.port,
                rc == RC_EIO ? "the port is in use (--metrics-export-port; 0 picks a free one)"
                             : "HTTPS is not available (see the log)");
        return rc;
    }
    r->metrics_port = http_server_port(m->http);
    RC_INFO("raylet: metrics at %s://%s:%d/metrics", http_server_scheme(m->http), r->spec.ip, r->metrics_port);
    return 0;
}

void raylet_metrics_stop(raylet *r)
{
    if (r->metrics) {
        http_server_stop(r->metrics->http);
        r->metrics->http = NULL;
    }
}

void raylet_metrics_free(raylet *r)
{
    if (!r->metrics)
        return;
    rc_metrics_free(r->metrics->reg);
    rc_free(r->metrics);
    r->metrics = NULL;
}
