/*
 * gcs_metrics: rayc-gcs's Prometheus endpoint and the cluster's service-discovery file.
 *
 * /metrics on the metrics port (--metrics-export-port; 0: a free one) over rayc_http,
 * behind the cluster token. Gauges describing tables are rebuilt from the managers' tables
 * at each scrape, on the loop thread (http_server runs handlers there): Ray's ray_actors
 * {State,Name,JobId,Source="gcs"} (every actor the table holds, dead ones until evicted),
 * ray_placement_groups{State,Source="gcs"}, ray_cluster_active_nodes, and Ray's
 * ray_tasks{State,Name,IsRetry,JobId,Source="gcs"} from the task-event table (each attempt
 * it holds in the state it is in now: the newest task_events_max_num_task_in_gcs attempts,
 * so FINISHED and FAILED count those kept, not every attempt since start). The RPC layer
 * records rayc_rpc_server_latency_seconds and rayc_rpc_client_latency_seconds (the GCS's
 * calls to raylets and workers) itself.
 *
 * The service-discovery file is Prometheus's file_sd format (as Ray's
 * prom_metrics_service_discovery.json): one target group per daemon, the GCS and every
 * alive raylet that reported a metrics port, with labels job="ray", Component and, for
 * raylets, NodeId, and rayc-market when it runs (the address it keeps in the KV). Every
 * group carries __scheme__ ("https", or "http" on an --insecure cluster: every daemon of a
 * cluster serves its metrics as the cluster's RPC goes), which Prometheus takes as the
 * target's scheme, so a stock scrape config needs only the CA (tls_config). It lives
 * in the session directory, is replaced atomically (a temporary file and rename, so
 * Prometheus never reads half of it) and rewritten whenever the GCS publishes a node record
 * (joins, deaths, label changes) and every 5 s (as Ray's is).
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_actor_int.h"
#include "gcs_int.h"
#include "gcs_pg_int.h"
#include "http_server.h"
#include "rc_alloc.h"
#include "rc_buf.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_metrics.h"

#define GCS_METRICS_PORT_FILE "gcs_metrics_port"
/* Where rayc-market records its metrics address (market/market_metrics.h). */
#define GCS_MARKET_KV_NS "market"
#define GCS_MARKET_KV_KEY "metrics_address"
enum { GCS_SD_PERIOD_MS = 5000 };

struct gcs_metrics {
    gcs_server *gcs;
    rc_metrics *reg;
    rc_metric *actors, *pgs, *active_nodes, *tasks;
    http_server *http;
    int port;
    uv_timer_t *sd_timer; /* rewrites the file every GCS_SD_PERIOD_MS (the market's address) */
};

int gcs_metrics_init(gcs_server *gcs)
{
    gcs_metrics *m = RC_NEW(gcs_metrics);
    m->gcs = gcs;
    m->reg = rc_metrics_new();
    gcs->metrics = m;
    int rc = rc_metrics_add(m->reg, RC_METRIC_GAUGE, "ray_actors",
                            "Actors in the GCS's actor table by state (DEPENDENCIES_UNREADY, "
                            "PENDING_CREATION, ALIVE, RESTARTING, DEAD), class name and job.",
                            (const char *const[]){"State", "Name", "JobId", "Source", NULL}, NULL, 0,
                            &m->actors);
    if (rc == 0)
        rc = rc_metrics_add(m->reg, RC_METRIC_GAUGE, "ray_placement_groups",
                            "Placement groups by state (PENDING, PREPARED, CREATED, REMOVED, "
                            "RESCHEDULING); removed ones until the GCS evicts them.",
                            (const char *const[]){"State", "Source", NULL}, NULL, 0, &m->pgs);
    if (rc == 0)
        rc = rc_metrics_add(m->reg, RC_METRIC_GAUGE, "ray_tasks",
                            "Task attempts in the GCS's task-event table by current state, "
                            "function name, retry (attempt > 0) and job; finished and failed "
                            "ones until the bounded table drops them.",
                            (const char *const[]){"State", "Name", "IsRetry", "JobId", "Source", NULL}, NULL,
                            0, &m->tasks);
    if (rc == 0)
        rc = rc_metrics_add(m->reg, RC_METRIC_GAUGE, "ray_cluster_active_nodes",
                            "Nodes the GCS holds alive.", NULL, NULL, 0, &m->active_nodes);
    if (rc == 0)
        rc = rpc_server_set_metrics(gcs->srv, m->reg);
    if (rc == 0)
        rc = rpc_ctx_set_metrics(gcs->rpc, m->reg);
    return rc;
}

static const char *gcs__enum_name(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    return v ? v->name : "UNKNOWN";
}

static void gcs__count_task(int state, const char *name, const uint8_t *job_id, int32_t attempt, void *arg)
{
    char job[RC_ID_HEX_MAX];
    rc_id_hex(job_id, RC_JOB_ID_SIZE, job);
    const char *values[] = {gcs_task_status_name(state), name, attempt > 0 ? "1" : "0", job, "gcs"};
    rc_metric_add(arg, values, 1);
}

static void gcs__collect(gcs_metrics *m)
{
    gcs_server *gcs = m->gcs;
    rc_metric_clear(m->actors);
    rc_map_iter it = RC_MAP_ITER_INIT;
    void *v;
    while (gcs->actors && rc_map_next(&gcs->actors->actors, &it, NULL, NULL, &v)) {
        const gcs_actor *a = v;
        const Ray__Rpc__ActorTableData *d = a->data;
        char job[RC_ID_HEX_MAX] = "";
        if (d->job_id.len == RC_JOB_ID_SIZE)
            rc_id_hex(d->job_id.data, RC_JOB_ID_SIZE, job);
        const char *values[] = {
            gcs__enum_name(&ray__rpc__actor_table_data__actor_state__descriptor, (int)d->state),
            d->class_name ? d->class_name : "", job, "gcs"};
        rc_metric_add(m->actors, values, 1);
    }
    rc_metric_clear(m->pgs);
    it = (rc_map_iter)RC_MAP_ITER_INIT;
    while (gcs->pgs && rc_map_next(&gcs->pgs->groups, &it, NULL, NULL, &v)) {
        const gcs_pg *pg = v;
        const char *values[] = {
            gcs__enum_name(&ray__rpc__placement_group_table_data__placement_group_state__descriptor,
                           (int)pg->data->state),
            "gcs"};
        rc_metric_add(m->pgs, values, 1);
    }
    rc_metric_set(m->active_nodes, NULL, (double)gcs_node_num_alive(gcs->nodes));
    rc_metric_clear(m->tasks);
    if (gcs->task_events)
        gcs_task_foreach(gcs->task_events, gcs__count_task, m->tasks);
}

static void gcs__on_http(const http_request *req, http_response *resp, void *arg)
{
    gcs_metrics *m = arg;
    if (!http_metrics_request(req, resp))
        return;
    gcs__collect(m);
    rc_metrics_render(m->reg, &resp->body);
    resp->content_type = RC_METRICS_CONTENT_TYPE;
}

/* ---- service discovery ------------------------------------------------------------------ */

static void gcs__sd_group(rc_buf *b, const char *component, const char *node_hex, const char *ip,
                          int port)
{
    if (b->len > 1)
        rc_buf_puts(b, ",\n ");
    rc_buf_printf(b, "{\"labels\": {\"__scheme__\": \"%s\", \"job\": \"ray\", \"Component\": ",
                  rpc_security_get()->insecure ? "http" : "https");
    rc_buf_json_str(b, component, strlen(component));
    if (node_hex) {
        rc_buf_puts(b, ", \"NodeId\": ");
        rc_buf_json_str(b, node_hex, strlen(node_hex));
    }
    char target[300];
    snprintf(target, sizeof(target), strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
    rc_buf_puts(b, "}, \"targets\": [");
    rc_buf_json_str(b, target, strlen(target));
    rc_buf_puts(b, "]}");
}

static void gcs__sd_node(const Ray__Rpc__GcsNodeInfo *node, void *arg)
{
    if (node->metrics_export_port <= 0 || node->node_id.len != RC_NODE_ID_SIZE ||
        !node->node_manager_address || !*node->node_manager_address)
        return;
    char hex[RC_ID_HEX_MAX];
    rc_id_hex(node->node_id.data, RC_NODE_ID_SIZE, hex);
    gcs__sd_group(arg, "raylet", hex, node->node_manager_address, node->metrics_export_port);
}

static int gcs__write_atomic(const char *dir, const char *name, const char *text)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return RC_EIO;
    int bad = fputs(text, f) < 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        return RC_EIO;
    }
    return 0;
}

/* The market's address came back from storage (or not): the file is written now, from the
 * node table as it is at this moment. */
static void gcs__sd_market_read(int rc, const void *value, size_t vlen, void *arg)
{
    gcs_metrics *m = arg;
    gcs_server *gcs = m->gcs;
    if (!m->http || gcs->stopping)
        return;
    rc_buf b = RC_BUF_INIT;
    rc_buf_putc(&b, '[');
    gcs__sd_group(&b, "gcs", NULL, gcs->self_ip, m->port);
    gcs_node_foreach_alive(gcs->nodes, gcs__sd_node, &b);
    if (rc == 0 && vlen > 0 && vlen < 128) {
        char target[128];
        memcpy(target, value, vlen);
        target[vlen] = '\0';
        char *colon = strrchr(target, ':');
        int port = colon ? atoi(colon + 1) : 0;
        if (colon && port > 0) {
            *colon = '\0';
            char *host = target;
            if (host[0] == '[' && colon[-1] == ']') {
                host++;
                colon[-1] = '\0';
            }
            gcs__sd_group(&b, "market", NULL, host, port);
        }
    }
    rc_buf_puts(&b, "]\n");
    if (gcs__write_atomic(gcs->opts.session_dir, GCS_METRICS_SD_FILE, rc_buf_cstr(&b)) < 0)
        RC_WARN("gcs: cannot write %s/%s", gcs->opts.session_dir, GCS_METRICS_SD_FILE);
    rc_buf_free(&b);
}

static void gcs__write_sd(gcs_metrics *m)
{
    gcs_server *gcs = m->gcs;
    if (!gcs->opts.session_dir || !m->http || !gcs->store)
        return;
    size_t klen;
    char *key = gcs_kv_make_key(GCS_MARKET_KV_NS, strlen(GCS_MARKET_KV_NS), GCS_MARKET_KV_KEY,
                                strlen(GCS_MARKET_KV_KEY), &klen);
    if (gcs->store->ops->get(gcs->store, GCS_TABLE_KV, key, klen, gcs__sd_market_read, m) < 0)
        gcs__sd_market_read(RC_EIO, NULL, 0, m);
    rc_free(key);
}

static void gcs__sd_tick(uv_timer_t *t)
{
    gcs__write_sd(t->data);
}

static void gcs__free_handle(uv_handle_t *h)
{
    rc_free(h);
}

static void gcs__node_published(const Ray__Rpc__PubMessage *msg, void *arg)
{
    (void)msg;
    gcs__write_sd(arg);
}

int gcs_metrics_serve(gcs_server *gcs)
{
    gcs_metrics *m = gcs->metrics;
    http_server_options o = {0};
    o.host = gcs->opts.bind_all ? "0.0.0.0" : gcs->self_ip;
    o.port = gcs->opts.metrics_port;
    o.handler = gcs__on_http;
    o.arg = m;
    o.require_token = 1;
    o.auth = gcs->srv;
    int rc = http_server_start(gcs->loop, &o, &m->http);
    if (rc < 0) {
        RC_ERROR("gcs: cannot serve metrics on %s port %d: the port is in use or the address is "
                 "not local (--metrics-export-port)", o.host, o.port);
        return rc;
    }
    m->port = http_server_port(m->http);
    RC_INFO("gcs: metrics at %s://%s:%d/metrics", http_server_scheme(m->http), gcs->self_ip, m->port);
    if (gcs->opts.session_dir) {
        char text[32];
        snprintf(text, sizeof(text), "%d\n", m->port);
        if (gcs__write_atomic(gcs->opts.session_dir, GCS_METRICS_PORT_FILE, text) < 0)
            RC_WARN("gcs: cannot write %s/%s", gcs->opts.session_dir, GCS_METRICS_PORT_FILE);
    }
    gcs__write_sd(m);
    gcs_metrics_write_configs(gcs->opts.session_dir, gcs->opts.insecure ? NULL : gcs->opts.auth_dir);
    gcs_publisher_listen(gcs->pub, RAY__RPC__CHANNEL_TYPE__GCS_NODE_INFO_CHANNEL,
                         gcs__node_published, m);
    m->sd_timer = RC_NEW(uv_timer_t);
    uv_timer_init(gcs->loop, m->sd_timer);
    m->sd_timer->data = m;
    uv_timer_start(m->sd_timer, gcs__sd_tick, GCS_SD_PERIOD_MS, GCS_SD_PERIOD_MS);
    return 0;
}

void gcs_metrics_stop(gcs_server *gcs)
{
    gcs_metrics *m = gcs->metrics;
    if (!m)
        return;
    http_server_stop(m->http);
    m->http = NULL;
    if (m->sd_timer)
        uv_close((uv_handle_t *)m->sd_timer, gcs__free_handle);
    m->sd_timer = NULL;
}

void gcs_metrics_free(gcs_server *gcs)
{
    gcs_metrics *m = gcs->metrics;
    if (!m)
        return;
    rc_metrics_free(m->reg);
    rc_free(m);
    gcs->metrics = NULL;
}
