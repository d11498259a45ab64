/*
 * gcs_grafana: ready-made Prometheus and Grafana configuration for the session, as Ray
 * writes under <session>/metrics when its dashboard starts.
 *
 *   <session>/metrics/prometheus/prometheus.yml
 *       one scrape job "ray" over the GCS's service-discovery file, with the cluster's
 *       admin token (authorization.credentials_file) and CA (tls_config.ca_file) on a
 *       secure cluster: `prometheus --config.file=<that file>` on the head scrapes it all;
 *   <session>/metrics/grafana/grafana.ini, provisioning/datasources/default.yml,
 *   provisioning/dashboards/default.yml
 *       `grafana-server --config <session>/metrics/grafana/grafana.ini` provisions a
 *       Prometheus data source (uid rayc_prometheus, at prometheus_host) and the folder of
 *       dashboards below;
 *   <session>/metrics/grafana/dashboards/default_grafana_dashboard.json
 *       the default dashboard: one panel per row of gcs__panels, every query over the
 *       metric names the daemons serve (README, Metrics).
 *
 * The files are written once, when the GCS starts serving metrics; they name files of the
 * session (the token, the CA, the discovery file) by absolute path and hold no secret.
 * Loop thread (called from gcs_metrics_serve).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gcs_int.h"
#include "rc_buf.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"

typedef struct gcs__query {
    const char *expr;
    const char *legend;
} gcs__query;

typedef struct gcs__panel {
    const char *title;
    const char *description;
    const char *unit; /* Grafana's unit ids: "short", "bytes", "percent", "s", "reqps", "currencyUSD" */
    gcs__query queries[3];
} gcs__panel;

/* The default dashboard. Two panels a row; a query per series family. */
static const gcs__panel gcs__panels[] = {
    {"Tasks by state", "Tasks not finished yet, by their current state (task events kept by the GCS).", "short",
     {{"sum(ray_tasks{State!~\"FINISHED|FAILED\"}) by (State)", "{{State}}"}}},
    {"Finished and failed tasks", "Task attempts that ended, among those the GCS keeps.", "short",
     {{"sum(ray_tasks{State=~\"FINISHED|FAILED\"}) by (State)", "{{State}}"}}},
    {"Active tasks by name", "Tasks not finished yet, by function.", "short",
     {{"sum(ray_tasks{State!~\"FINISHED|FAILED\"}) by (Name)", "{{Name}}"}}},
    {"Actors by state", "Actors in the GCS's table by state.", "short",
     {{"sum(ray_actors) by (State)", "{{State}}"}}},
    {"Logical CPUs", "CPUs of the resource view: in use and in total.", "short",
     {{"sum(ray_resources{Name=\"CPU\",State=\"USED\"})", "used"},
      {"sum(ray_resources{Name=\"CPU\"})", "total"}}},
    {"Logical GPUs", "GPUs of the resource view: in use and in total.", "short",
     {{"sum(ray_resources{Name=\"GPU\",State=\"USED\"})", "used"},
      {"sum(ray_resources{Name=\"GPU\"})", "total"}}},
    {"Object store memory", "Bytes of the nodes' shared-memory stores by object state.", "bytes",
     {{"sum(ray_object_store_memory) by (ObjectState)", "{{ObjectState}}"}}},
    {"Node CPU utilization", "Each host's CPU use since the previous scrape.", "percent",
     {{"ray_node_cpu_utilization", "{{ip}}"}}},
    {"Node memory", "Memory in use on each host, and the cluster's total.", "bytes",
     {{"ray_node_mem_used", "{{ip}}"}, {"sum(ray_node_mem_total)", "total"}}},
    {"Alive nodes", "Nodes the GCS holds alive.", "short", {{"ray_cluster_active_nodes", "nodes"}}},
    {"Placement groups by state", "Placement groups in the GCS's table by state.", "short",
     {{"sum(ray_placement_groups) by (State)", "{{State}}"}}},
    {"Worker leases", "Leases at the raylets by state, and grants per second.", "short",
     {{"sum(rayc_leases) by (State)", "{{State}}"},
      {"sum(rate(rayc_leases_granted_total[1m]))", "granted/s"}}},
    {"Spillbacks", "Lease requests sent on to another node, per second.", "reqps",
     {{"sum(rate(rayc_spillbacks_total[1m]))", "spillbacks/s"}}},
    {"RPC latency (p99, served)", "99th percentile of the time from a call's arrival to its answer, by method.", "s",
     {{"histogram_quantile(0.99, sum(rate(rayc_rpc_server_latency_seconds_bucket[5m])) by (le, Method))",
       "{{Method}}"}}},
    {"Market spend", "Dollars billed by rented hosts so far, and the current rate per hour (rayc-market).",
     "currencyUSD",
     {{"sum(rayc_market_spend_dollars)", "spent"},
      {"sum(rayc_market_spend_rate_dollars_per_hour)", "per hour"}}},
    {"Market leases", "Hosts rented through rayc-market by state.", "short",
     {{"sum(rayc_market_leases) by (State)", "{{State}}"}}},
};

static int gcs__mkdirs(const char *base, const char *rel)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", base, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return RC_EINVAL;
    for (char *p = path + strlen(base) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return RC_EIO;
        *p = '/';
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? RC_EIO : 0;
}

static int gcs__write(const char *dir, const char *rel, const rc_buf *text)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return RC_EIO;
    int bad = text->len && fwrite(text->data, 1, text->len, f) != text->len;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        return RC_EIO;
    }
    return 0;
}

/* A YAML scalar: JSON's double-quoted string is one (YAML 1.2 flow scalar). */
static void gcs__yaml_str(rc_buf *b, const char *s)
{
    rc_buf_json_str(b, s, strlen(s));
}

static void gcs__prometheus_yml(rc_buf *b, const char *session, const char *auth_dir)
{
    char path[4200];
    rc_buf_puts(b, "# rayc: Prometheus for this session: prometheus --config.file=<this file>\n"
                   "global:\n  scrape_interval: 10s\n  evaluation_interval: 10s\n"
                   "scrape_configs:\n  - job_name: ray\n");
    if (auth_dir) {
        snprintf(path, sizeof(path), "%s/auth_token", auth_dir); /* gcs_auth_manager.c */
        rc_buf_puts(b, "    authorization:\n      type: Bearer\n      credentials_file: ");
        gcs__yaml_str(b, path);
        snprintf(path, sizeof(path), "%s/ca.crt", auth_dir);
        rc_buf_puts(b, "\n    tls_config:\n      ca_file: ");
        gcs__yaml_str(b, path);
        rc_buf_putc(b, '\n');
    }
    snprintf(path, sizeof(path), "%s/%s", session, GCS_METRICS_SD_FILE);
    rc_buf_puts(b, "    file_sd_configs:\n      - files:\n          - ");
    gcs__yaml_str(b, path);
    rc_buf_putc(b, '\n');
}

static void gcs__dashboard_json(rc_buf *b)
{
    static const char uid[] = "rayc_prometheus";
    rc_buf_puts(b, "{\n  \"title\": \"rayc\",\n  \"uid\": \"rayc_default\",\n  \"tags\": [\"rayc\"],\n"
                   "  \"schemaVersion\": 39,\n  \"version\": 1,\n  \"editable\": true,\n"
                   "  \"refresh\": \"10s\",\n  \"time\": {\"from\": \"now-30m\", \"to\": \"now\"},\n"
                   "  \"panels\": [");
    size_t n = sizeof(gcs__panels) / sizeof(gcs__panels[0]);
    for (size_t i = 0; i < n; i++) {
        const gcs__panel *p = &gcs__panels[i];
        rc_buf_printf(b, "%s\n    {\"id\": %zu, \"type\": \"timeseries\", \"title\": ", i ? "," : "", i + 1);
        gcs__yaml_str(b, p->title);
        rc_buf_puts(b, ", \"description\": ");
        gcs__yaml_str(b, p->description);
        rc_buf_printf(b,
                      ", \"gridPos\": {\"h\": 8, \"w\": 12, \"x\": %d, \"y\": %zu},"
                      " \"datasource\": {\"type\": \"prometheus\", \"uid\": \"%s\"},"
                      " \"fieldConfig\": {\"defaults\": {\"unit\": \"%s\"}, \"overrides\": []},"
                      " \"targets\": [",
                      (int)(i % 2) * 12, (i / 2) * 8, uid, p->unit);
        for (size_t q = 0; q < sizeof(p->queries) / sizeof(p->queries[0]) && p->queries[q].expr; q++) {
            rc_buf_printf(b, "%s{\"refId\": \"%c\", \"datasource\": {\"type\": \"prometheus\", \"uid\": \"%s\"}, "
                             "\"expr\": ",
                          q ? ", " : "", (char)('A' + q), uid);
            gcs__yaml_str(b, p->queries[q].expr);
            rc_buf_puts(b, ", \"legendFormat\": ");
            gcs__yaml_str(b, p->queries[q].legend);
            rc_buf_putc(b, '}');
        }
        rc_buf_puts(b, "]}");
    }
    rc_buf_puts(b, "\n  ]\n}\n");
}

int gcs_metrics_write_configs(const char *session, const char *auth_dir)
{
    if (!session)
        return 0;
    if (gcs__mkdirs(session, "metrics/prometheus") < 0 || gcs__mkdirs(session, "metrics/grafana/dashboards") < 0 ||
        gcs__mkdirs(session, "metrics/grafana/provisioning/datasources") < 0 ||
        gcs__mkdirs(session, "metrics/grafana/provisioning/dashboards") < 0) {
        RC_WARN("gcs: cannot create %s/metrics: %s", session, strerror(errno));
        return RC_EIO;
    }
    char path[4200];
    rc_buf prom = RC_BUF_INIT, ini = RC_BUF_INIT, ds = RC_BUF_INIT, prov = RC_BUF_INIT, dash = RC_BUF_INIT;
    gcs__prometheus_yml(&prom, session, auth_dir);

    snprintf(path, sizeof(path), "%s/metrics/grafana/provisioning", session);
    rc_buf_puts(&ini, "# rayc: Grafana for this session: grafana-server --config <this file>\n"
                      "[security]\nallow_embedding = true\n\n"
                      "[auth.anonymous]\nenabled = true\norg_name = Main Org.\norg_role = Viewer\n\n"
                      "[paths]\n");
    rc_buf_printf(&ini, "provisioning = %s\n", path);

    rc_buf_puts(&ds, "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    uid: rayc_prometheus\n"
                     "    type: prometheus\n    access: proxy\n    isDefault: true\n    url: ");
    gcs__yaml_str(&ds, rc_cfg.prometheus_host);
    rc_buf_putc(&ds, '\n');

    snprintf(path, sizeof(path), "%s/metrics/grafana/dashboards", session);
    rc_buf_puts(&prov, "apiVersion: 1\nproviders:\n  - name: rayc\n    folder: rayc\n    type: file\n"
                       "    options:\n      path: ");
    gcs__yaml_str(&prov, path);
    rc_buf_putc(&prov, '\n');

    gcs__dashboard_json(&dash);

    int rc = gcs__write(session, "metrics/prometheus/prometheus.yml", &prom);
    rc = rc ? rc : gcs__write(session, "metrics/grafana/grafana.ini", &ini);
    rc = rc ? rc : gcs__write(session, "metrics/grafana/provisioning/datasources/default.yml", &ds);
    rc = rc ? rc : gcs__write(session, "metrics/grafana/provisioning/dashboards/default.yml", &prov);
    rc = rc ? rc : gcs__write(session, "metrics/grafana/dashboards/default_grafana_dashboard.json", &dash);
    if (rc < 0)
        RC_WARN("gcs: cannot write the Prometheus and Grafana files under %s/metrics", session);
    rc_buf_free(&prom);
    rc_buf_free(&ini);
    rc_buf_free(&ds);
    rc_buf_free(&prov);
    rc_buf_free(&dash);
    return rc;
}
