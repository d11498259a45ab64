/*
 * rayc-dashboard: the head's HTTP service for operators (ARCHITECTURE §15): Ray's Jobs REST
 * API (jobs.h) on port 8265, behind the cluster token. `rayc start --head` runs it as a
 * daemon of its session (pids/dashboard.pid, logs/dashboard.{out,err}) and `rayc stop`
 * stops it. It is a client of the GCS with the admin credentials the head keeps in its
 * session, and it answers only the admin token (a job's token is scoped to its job).
 *
 *   rayc-dashboard --session-dir DIR --gcs-address HOST:PORT [--host IP] [--port N]
 *
 * It serves HTTPS with a certificate it makes at start with the cluster CA's key in the
 * session (http_tls_issue: the listening IP, 127.0.0.1, localhost and this host's name), so
 * browsers and clients that trust the session's ca.crt accept it; plain HTTP only on an
 * --insecure cluster. Once it listens it writes <session>/dashboard_url
 * ("https://IP:PORT"), where `rayc job` finds it. SIGTERM and SIGINT stop it, and the
 * entrypoints it runs with it.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dashboard_api.h"
#include "gcs_client_auth.h"
#include "http_server.h"
#include "jobs.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_net.h"
#include "rc_session.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rayc-dashboard --session-dir DIR --gcs-address HOST:PORT [--host IP] [--port N]\n"
               "  --session-dir DIR    the head's session (credentials, job logs, dashboard_url)\n"
               "  --gcs-address A      the cluster's GCS\n"
               "  --host IP            the address to listen on (default 127.0.0.1)\n"
               "  --port N             the port (default 8265, Ray's; 0: any free port)\n"
               "Normally started by `rayc start --head` (--dashboard-host, --dashboard-port).\n");
}

typedef struct dash {
    jobs *jobs;
    dash_api *api; /* the web UI and its JSON endpoints */
    http_server *http;
} dash;

static void on_request(const http_request *req, http_response *resp, void *arg)
{
    dash *d = arg;
    /* A job's token is scoped to its job; running shell commands on the head is the admin's. */
    if (req->identity && req->identity->role != RPC_ROLE_ADMIN) {
        char who[100];
        rpc_identity_text(req->identity, who, sizeof(who));
        resp->status = 403;
        rc_buf_printf(&resp->body,
                      "403 Forbidden: the dashboard needs the cluster's admin token (`rayc get-auth-token` on "
                      "the head); this caller is %s\n", who);
        return;
    }
    if (dash_api_handle(d->api, req, resp) || jobs_handle(d->jobs, req, resp))
        return;
    if (!strcmp(req->path, "/api/version")) {
        resp->content_type = "application/json";
        rc_buf_puts(&resp->body, "{\"version\": \"rayc\", \"ray_version\": \"2.53.0\", \"api\": [\"/api/jobs/\"]}");
        return;
    }
    resp->status = 404;
    rc_buf_printf(&resp->body, "404: no such endpoint %s (the Jobs API is under /api/jobs/)\n", req->path);
}

static void on_signal(uv_signal_t *s, int signum)
{
    RC_INFO("dashboard: signal %d; stopping", signum);
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    rc_config_init();
    rc_log_set_tag("dashboard");
    signal(SIGPIPE, SIG_IGN);
    const char *session = NULL, *address = NULL, *host = "127.0.0.1";
    int port = 8265;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "rayc-dashboard: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--session-dir")) {
            session = argv[++i];
        } else if (!strcmp(a, "--gcs-address")) {
            address = argv[++i];
        } else if (!strcmp(a, "--host")) {
            host = argv[++i];
        } else if (!strcmp(a, "--port")) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p < 0 || p > 65535) {
                fprintf(stderr, "rayc-dashboard: --port needs a port number in 0..65535, not '%s'\n", argv[i]);
                return 2;
            }
            port = (int)p;
        } else {
            fprintf(stderr, "rayc-dashboard: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!session || !address) {
        fprintf(stderr, "rayc-dashboard: --session-dir and --gcs-address are required\n");
        usage(stderr);
        return 2;
    }
    /* The head's credentials, from its session. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/" GCS_AUTH_INSECURE_FILE, session);
    int insecure = access(path, F_OK) == 0;
    if (insecure) {
        setenv("RAYC_INSECURE", "1", 1);
    } else {
        snprintf(path, sizeof(path), "%s/" GCS_AUTH_CA_CERT_FILE, session);
        setenv("RAYC_CA_CERT", path, 1);
        snprintf(path, sizeof(path), "%s/" GCS_AUTH_TOKEN_FILE, session);
        setenv("RAYC_AUTH_TOKEN_PATH", path, 1);
        unsetenv("RAYC_AUTH_TOKEN");
    }
    char err[1024];
    if (gcs_auth_client_security(address, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc-dashboard: the dashboard needs the head's admin credentials: %s\n", err);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    rpc_ctx *rpc = NULL;
    gcs_client *gcs = NULL;
    rpc_server *auth = NULL;
    if (rpc_ctx_create(&loop, &rpc) < 0 || gcs_client_create(rpc, address, &gcs) < 0 ||
        rpc_server_create(rpc, NULL, &auth) < 0) {
        fprintf(stderr, "rayc-dashboard: cannot set up a client of %s\n", address);
        return 1;
    }
    if (gcs_client_connect_sync(gcs, 15000, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc-dashboard: cannot reach the GCS at %s: %s\n", address, err);
        return 1;
    }
    static dash d;
    jobs_options jo = {.session = session, .gcs_address = address, .insecure = insecure};
    const char *wait = getenv("RAY_JOB_STOP_WAIT_TIME_S");
    jo.stop_wait_s = wait ? atoi(wait) : 3;
    if (jobs_start(&loop, gcs, &jo, &d.jobs, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc-dashboard: cannot read the job records from the GCS: %s\n", err);
        return 1;
    }
    dash_api_start(&loop, rpc, gcs, session, &d.api);
    /* The HTTP side answers only the admin token in force (the session's, followed when the
     * admin replaces it). */
    rpc_server_set_revocation(auth, dash_api_revoked, d.api);
    /* The address clients use: the listening IP, or for a wildcard the one this host reaches
     * the GCS from. */
    char url_host[64];
    int wildcard = !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
    if (!wildcard || rc_net_local_ip_for(address, url_host, sizeof(url_host)) < 0)
        snprintf(url_host, sizeof(url_host), "%s", host);
    char *cert = NULL, *key = NULL;
    if (!insecure && http_tls_issue(session, "dashboard", (const char *const[]){url_host}, 1, &cert, &key, err,
                                    sizeof(err)) < 0) {
        fprintf(stderr, "rayc-dashboard: %s\n", err);
        jobs_shutdown(d.jobs);
        return 1;
    }
    http_server_options ho = {.host = host, .port = port, .handler = on_request, .arg = &d, .require_token = 1,
                              .auth = auth, .is_public = dash_api_is_public, .max_body = 8 << 20,
                              .tls_cert_pem = cert, .tls_key_pem = key};
    int started = http_server_start(&loop, &ho, &d.http);
    rc_free(cert);
    if (key) {
        explicit_bzero(key, strlen(key));
        rc_free(key);
    }
    if (started < 0) {
        fprintf(stderr, "rayc-dashboard: cannot listen on %s port %d (in use? pick another with "
                        "--dashboard-port)\n", host, port);
        jobs_shutdown(d.jobs);
        return 1;
    }
    char url[300];
    snprintf(url, sizeof(url), strchr(url_host, ':') ? "%s://[%s]:%d\n" : "%s://%s:%d\n",
             http_server_scheme(d.http), url_host, http_server_port(d.http));
    if (rc_session_write(session, "dashboard_url", url) < 0)
        RC_WARN("dashboard: cannot write %s/dashboard_url", session);
    RC_INFO("dashboard: serving the Jobs API at %.*s", (int)strlen(url) - 1, url);
    printf("rayc-dashboard: listening on %s", url);
    fflush(stdout);

    uv_signal_t sigs[2];
    int signums[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&loop, &sigs[i]);
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    http_server_stop(d.http);
    dash_api_stop(d.api);
    jobs_shutdown(d.jobs);
    RC_INFO("dashboard: stopped");
    return 0;
}
