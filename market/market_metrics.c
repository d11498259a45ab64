/*
 * market_metrics: rayc-market's Prometheus endpoint (/metrics on --metrics-export-port,
 * behind the cluster token, over rayc_http on the address this host uses to reach the GCS).
 *
 * Rebuilt from the market's state at each scrape (handlers run on the loop thread):
 *   rayc_market_leases{State,Provider}  the leases the market keeps, by Ray's instance state
 *       (ended ones while the market remembers them);
 *   rayc_market_spend_dollars  money billed so far (ended leases and the increments of live
 *       ones), the ledger's spent total;
 *   rayc_market_spend_rate_dollars_per_hour{Kind="committed"|"reserved"}  the hourly prices
 *       of live leases and of launches not yet confirmed;
 *   rayc_market_budget_dollars{Window="hour"|"total"}  the caps (absent when uncapped).
 * The address is written to the GCS's KV (namespace "market", key "metrics_address"), from
 * which the GCS adds it to the service-discovery file.
 *
 * HTTPS on a secure cluster: the market holds no certificate of its own (it is a client of
 * the GCS with the admin token), so it makes one at start with the cluster CA's key where
 * the head keeps it (http_tls_issue): the first directory holding a ca.key whose ca.crt is
 * the CA the market trusts, of: the one of $RAYC_CA_CERT, the latest session, every session
 * on this host (the head's, when other nodes were started on its host since).
 *
 * Loop thread only.
 */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "gcs_service.pb-c.h"
#include "http_server.h"
#include "market_daemon.h"
#include "market_metrics.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_metrics.h"
#include "rc_net.h"
#include "rc_session.h"

struct market_metrics {
    market *m;
    rc_metrics *reg;
    rc_metric *leases, *spend, *rate, *budget;
    http_server *http;
    char address[128];
};

static void mk__collect(market_metrics *mm)
{
    market *m = mm->m;
    rc_metric_clear(mm->leases);
    for (size_t i = 0; i < m->n_leases; i++) {
        const mk_lease *l = &m->leases[i];
        rc_metric_add(mm->leases, (const char *const[]){mk_state_name(l->state), l->provider}, 1);
    }
    rc_metric_set(mm->spend, NULL, m->ledger.spent_total);
    rc_metric_set(mm->rate, (const char *const[]){"committed"}, m->ledger.committed_per_hour);
    rc_metric_set(mm->rate, (const char *const[]){"reserved"}, m->ledger.reserved_per_hour);
    rc_metric_clear(mm->budget);
    if (m->ledger.budget_per_hour > 0)
        rc_metric_set(mm->budget, (const char *const[]){"hour"}, m->ledger.budget_per_hour);
    if (m->ledger.budget_total > 0)
        rc_metric_set(mm->budget, (const char *const[]){"total"}, m->ledger.budget_total);
}

static void mk__on_http(const http_request *req, http_response *resp, void *arg)
{
    market_metrics *mm = arg;
    if (!http_metrics_request(req, resp))
        return;
    mk__collect(mm);
    rc_metrics_render(mm->reg, &resp->body);
    resp->content_type = RC_METRICS_CONTENT_TYPE;
}

static void mk__address_stored(const rpc_status *st, ProtobufCMessage *reply, void *arg)
{
    (void)arg;
    if (st->code != GRPC_STATUS_OK)
        RC_WARN("market: cannot record the metrics address in the GCS: %s", st->message);
    rpc_msg_free(reply);
}

/* 1 if dir holds the key of the CA ca_pem (its ca.crt is that CA, and a ca.key is there). */
static int mk__holds_ca_key(const char *dir, const char *ca_pem)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/ca.key", dir);
    if (access(path, R_OK) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    char *cert = NULL;
    int same = auth_read_file(path, &cert) == 0 && !strcmp(cert, ca_pem);
    rc_free(cert);
    return same;
}

/* The certificate the market serves HTTPS with (see the top of the file). */
static int mk__tls(const market *m, const char *ip, char **cert, char **key)
{
    char dir[PATH_MAX + 300], root[PATH_MAX], err[PATH_MAX + 256];
    rc_session_root(root, sizeof(root));
    const char *ca = getenv("RAYC_CA_CERT");
    int found = 0;
    if (ca && *ca) {
        snprintf(dir, sizeof(dir), "%s", ca);
        snprintf(dir, sizeof(dir), "%s", dirname(dir));
        found = mk__holds_ca_key(dir, m->ca_pem);
    }
    char link[PATH_MAX + 32];
    snprintf(link, sizeof(link), "%s/session_latest", root);
    if (!found && realpath(link, dir))
        found = mk__holds_ca_key(dir, m->ca_pem);
    DIR *d = found ? NULL : opendir(root);
    struct dirent *e;
    while (d && !found && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "session_", 8) != 0 || !strcmp(e->d_name, "session_latest"))
            continue;
        snprintf(dir, sizeof(dir), "%s/%.255s", root, e->d_name);
        found = mk__holds_ca_key(dir, m->ca_pem);
    }
    if (d)
        closedir(d);
    if (!found) {
        fprintf(stderr, "rayc-market: cannot serve metrics over HTTPS: no session under %s holds the key of the "
                        "cluster CA (ca.key); run the market on the head\n", root);
        return RC_ENOENT;
    }
    int rc = http_tls_issue(dir, "market", (const char *const[]){ip}, 1, cert, key, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "rayc-market: cannot serve metrics over HTTPS: %s\n", err);
    return rc;
}

int market_metrics_start(market *m, const char *gcs_address, int port, market_metrics **out)
{
    market_metrics *mm = RC_NEW(market_metrics);
    mm->m = m;
    mm->reg = rc_metrics_new();
    *out = mm;
    int rc = rc_metrics_add(mm->reg, RC_METRIC_GAUGE, "rayc_market_leases",
                            "Leases the market keeps, by instance state and provider.",
                            (const char *const[]){"State", "Provider", NULL}, NULL, 0, &mm->leases);
    rc = rc ? rc : rc_metrics_add(mm->reg, RC_METRIC_GAUGE, "rayc_market_spend_dollars",
                                  "Dollars billed so far: ended leases and the billing increments "
                                  "live leases have entered.", NULL, NULL, 0, &mm->spend);
    rc = rc ? rc : rc_metrics_add(mm->reg, RC_METRIC_GAUGE, "rayc_market_spend_rate_dollars_per_hour",
                                  "Hourly prices of live leases (committed) and of launches not yet "
                                  "confirmed (reserved).",
                                  (const char *const[]){"Kind", NULL}, NULL, 0, &mm->rate);
    rc = rc ? rc : rc_metrics_add(mm->reg, RC_METRIC_GAUGE, "rayc_market_budget_dollars",
                                  "The market's budget caps: per hour and in total.",
                                  (const char *const[]){"Window", NULL}, NULL, 0, &mm->budget);
    rc = rc ? rc : rpc_ctx_set_metrics(m->rpc, mm->reg);
    char ip[64];
    if (rc == 0 && rc_net_local_ip_for(gcs_address, ip, sizeof(ip)) < 0)
        snprintf(ip, sizeof(ip), "127.0.0.1");
    http_server_options o = {0};
    o.host = ip;
    o.port = port;
    o.handler = mk__on_http;
    o.arg = mm;
    o.require_token = 1; /* the process-wide security: the cluster's CA, or insecure */
    char *cert = NULL, *key = NULL;
    if (rc == 0 && !rpc_security_get()->insecure && (rc = mk__tls(m, ip, &cert, &key)) == 0) {
        o.tls_cert_pem = cert;
        o.tls_key_pem = key;
    }
    if (rc == 0 && (rc = http_server_start(m->loop, &o, &mm->http)) < 0)
        fprintf(stderr, "rayc-market: cannot serve metrics on %s port %d (--metrics-export-port)\n", ip, port);
    rc_free(cert);
    if (key) {
        explicit_bzero(key, strlen(key));
        rc_free(key);
    }
    if (rc < 0)
        return rc;
    snprintf(mm->address, sizeof(mm->address), strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip,
             http_server_port(mm->http));
    RC_INFO("market: metrics at %s://%s/metrics", http_server_scheme(mm->http), mm->address);
    Ray__Rpc__InternalKVPutRequest req = RAY__RPC__INTERNAL_KVPUT_REQUEST__INIT;
    req.namespace_.data = (uint8_t *)MK_KV_NAMESPACE;
    req.namespace_.len = strlen(MK_KV_NAMESPACE);
    req.key.data = (uint8_t *)MARKET_METRICS_KV_KEY;
    req.key.len = strlen(MARKET_METRICS_KV_KEY);
    req.value.data = (uint8_t *)mm->address;
    req.value.len = strlen(mm->address);
    req.overwrite = 1;
    rpc_client_call(gcs_client_rpc(m->gcs), &ray__rpc__internal_kvgcs_service__descriptor, "InternalKVPut",
                    &req.base, 10000, mk__address_stored, NULL);
    return 0;
}

void market_metrics_stop(market_metrics *mm)
{
    if (mm) {
        http_server_stop(mm->http);
        mm->http = NULL;
    }
}

void market_metrics_free(market_metrics *mm)
{
    if (!mm)
        return;
    rc_metrics_free(mm->reg);
    rc_free(mm);
}
