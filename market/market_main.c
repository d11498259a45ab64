/*
 * rayc-market: the market adapter daemon (ARCHITECTURE §9). Usually started by
 * `rayc market start --config FILE` (or `rayc start --head --market FILE`) on the head, as
 * a client of the cluster's GCS with the admin's credentials found on this host.
 *
 *   rayc-market --config FILE [--address HOST:PORT] [--state-dir DIR]
 *
 * SIGTERM and SIGINT stop it and leave its hosts leased (a new market adopts them);
 * SIGUSR2 releases every lease first (`rayc market stop --release-all`).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "gcs_client_auth.h"
#include "market_daemon.h"
#include "market_metrics.h"
#include "rc_alloc.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_log.h"
#include "rc_session.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rayc-market --config FILE [--address HOST:PORT] [--state-dir DIR] [--metrics-export-port N]\n"
               "  --config FILE     the market's config (JSON: budget, idle timeout, verification, providers)\n"
               "  --address A       the GCS (default: the cluster started on this host)\n"
               "  --state-dir DIR   where providers keep their records (default: <session>/market)\n"
               "  --metrics-export-port N  serve Prometheus metrics at /metrics on N (cluster token\n"
               "                    required); 0 (the default): any free port\n"
               "Normally started with `rayc market start --config FILE`.\n");
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    rc_buf b = {0};
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc_buf_append(&b, chunk, got);
    fclose(f);
    rc_buf_putc(&b, '\0');
    *len = b.len - 1;
    return b.data;
}

static void on_signal(uv_signal_t *s, int signum)
{
    market *m = s->data;
    if (signum == SIGUSR2) {
        RC_INFO("market: asked to release every lease and stop");
        m->release_all = 1;
        market_round_now(m);
        return;
    }
    RC_INFO("market: stopping; leased hosts stay (a new rayc-market adopts them)");
    m->stopping = 1;
}

/* Once stopping, the state is written once more and the loop ends when the GCS has it (or
 * after a few seconds without an answer). */
static void on_tick(uv_timer_t *t)
{
    market *m = t->data;
    if (!m->stopping || m->round_running)
        return;
    if (!m->exit_persisting) {
        m->exit_persisting = 1;
        m->exit_deadline_ms = mk_now_ms() + 3000;
        market_persist(m);
        return;
    }
    if (m->exit_persisted || mk_now_ms() >= m->exit_deadline_ms)
        uv_stop(m->loop);
}

int main(int argc, char **argv)
{
    rc_config_init();
    rc_log_set_tag("market");
    signal(SIGPIPE, SIG_IGN);
    const char *config = NULL, *address = NULL, *state_dir = NULL;
    int metrics_port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--metrics-export-port") && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || p < 0 || p > 65535) {
                fprintf(stderr, "rayc-market: --metrics-export-port needs a port number (0: any free port), "
                                "not '%s'\n", argv[i]);
                return 2;
            }
            metrics_port = (int)p;
        } else if ((!strcmp(a, "--config") || !strcmp(a, "--address") || !strcmp(a, "--state-dir")) && i + 1 < argc) {
            const char **dst = !strcmp(a, "--config") ? &config : !strcmp(a, "--address") ? &address : &state_dir;
            *dst = argv[++i];
        } else {
            fprintf(stderr, "rayc-market: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "rayc-market: --config FILE is required (the market's budget and providers)\n");
        usage(stderr);
        return 2;
    }
    static market m;
    char err[1024];
    size_t len = 0;
    char *text = read_file(config, &len, err, sizeof(err));
    if (!text) {
        fprintf(stderr, "rayc-market: %s\n", err);
        return 2;
    }
    char cerr[512];
    int rc = mk_config_parse(text, len, &m.cfg, cerr, sizeof(cerr));
    rc_free(text);
    if (rc < 0) {
        fprintf(stderr, "rayc-market: %s: %s\n", config, cerr);
        return 2;
    }
    char abs[PATH_MAX];
    if (!realpath(config, abs)) {
        fprintf(stderr, "rayc-market: cannot resolve %s: %s\n", config, strerror(errno));
        return 2;
    }
    m.config_path = rc_strdup(abs);
    m.config_dir = rc_strdup(dirname(abs));

    char addr[256];
    if (!address) {
        if (rc_session_latest_address(addr, sizeof(addr)) < 0) {
            fprintf(stderr, "rayc-market: no cluster runs on this host; start one with `rayc start --head` or give "
                            "--address\n");
            return 1;
        }
        address = addr;
    }
    if (gcs_auth_client_security(address, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc-market: %s\n", err);
        return 1;
    }
    gcs_admin_creds creds = {0};
    if (gcs_admin_creds_find(&creds, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc-market: the market needs the cluster's admin credentials on this host: %s\n", err);
        return 1;
    }
    char dir[PATH_MAX + 16];
    if (state_dir) {
        snprintf(dir, sizeof(dir), "%s", state_dir);
    } else {
        char root[PATH_MAX];
        rc_session_root(root, sizeof(root));
        snprintf(dir, sizeof(dir), "%s/market", root);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "rayc-market: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    m.state_dir = rc_strdup(dir);
    char ca[PATH_MAX + 32];
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    if (auth_write_secret(ca, creds.ca_cert_pem) < 0) {
        fprintf(stderr, "rayc-market: cannot write %s\n", ca);
        return 1;
    }
    m.ca_file = rc_strdup(ca);
    m.ca_pem = rc_strdup(creds.ca_cert_pem);
    gcs_admin_creds_free(&creds);

    uv_loop_t loop;
    uv_loop_init(&loop);
    m.loop = &loop;
    if (rpc_ctx_create(&loop, &m.rpc) < 0 || gcs_client_create(m.rpc, address, &m.gcs) < 0) {
        fprintf(stderr, "rayc-market: cannot set up a client of %s\n", address);
        return 1;
    }
    if (gcs_client_connect_sync(m.gcs, 15000, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc-market: cannot reach the GCS at %s: %s\n", address, err);
        return 1;
    }
    if (market_start(&m) < 0)
        return 1;
    market_metrics *metrics = NULL;
    if (market_metrics_start(&m, address, metrics_port, &metrics) < 0)
        return 1;
    RC_INFO("market: running against %s with %zu provider%s; budget $%.2f/h, $%.2f in total", address,
            m.n_providers, m.n_providers == 1 ? "" : "s", m.cfg.budget_per_hour, m.cfg.budget_total);
    printf("rayc-market: running (GCS %s, %zu provider%s)\n", address, m.n_providers, m.n_providers == 1 ? "" : "s");
    fflush(stdout);

    uv_signal_t sigs[3];
    int signums[3] = {SIGTERM, SIGINT, SIGUSR2};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&loop, &sigs[i]);
        sigs[i].data = &m;
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    tick.data = &m;
    uv_timer_start(&tick, on_tick, 100, 100);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* The last state write gets a moment to reach the GCS. */
    uv_timer_stop(&m.timer);
    uv_timer_stop(&tick);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&m.timer, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    market_metrics_stop(metrics);
    gcs_client_destroy(m.gcs);
    rpc_ctx_destroy(m.rpc);
    uv_run(&loop, UV_RUN_DEFAULT);
    market_metrics_free(metrics);
    RC_INFO("market: stopped");
    return 0;
}
