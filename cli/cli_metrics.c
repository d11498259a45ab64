/*
 * rayc metrics: a Prometheus server for the cluster on this host, as Ray's `ray metrics`.
 *
 *   rayc metrics launch-prometheus [--port N] [--host IP] [--prometheus PATH]
 *   rayc metrics shutdown-prometheus
 *
 * launch-prometheus runs the installed Prometheus (Debian's package; nothing is downloaded)
 * on the configuration the GCS wrote for its session (<session>/metrics/prometheus/
 * prometheus.yml: every daemon over TLS with the admin token), with its data in
 * <session>/metrics/prometheus/data and its output in <session>/logs/prometheus.{out,err}.
 * It waits until Prometheus answers /-/ready and prints where. Its pid goes to
 * <session>/metrics/prometheus/prometheus.pid, not pids/: it is not a rayc daemon, and
 * `rayc stop` leaves it alone, as `ray stop` leaves Ray's; shutdown-prometheus stops it.
 *
 * The session is the newest on this host whose GCS runs and that has the configuration
 * (other nodes of the cluster started on the same host have sessions of their own).
 *
 * Main thread only.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_int.h"
#include "rc_alloc.h"
#include "rc_err.h"
#include "rc_session.h"
#include "rc_time.h"

#define CLI__PROM_CONFIG "metrics/prometheus/prometheus.yml"
#define CLI__PROM_PID "metrics/prometheus/prometheus.pid"

/* 1 if the session's GCS runs. */
static int cli__gcs_alive(const char *session)
{
    char text[32];
    return rc_session_read(session, "pids/gcs_server.pid", text, sizeof(text)) == 0 && rc_pid_is_rayc((pid_t)atoi(text));
}

static int cli__newest_first(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*b)->d_name, (*a)->d_name); /* session_<date>_<time>_...: names sort by time */
}

/* The newest session under the root with a live GCS and the Prometheus configuration. */
static int cli__metrics_session(char *out, size_t len)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    struct dirent **names;
    int n = scandir(root, &names, NULL, cli__newest_first);
    int found = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char session[PATH_MAX + 300], config[PATH_MAX + 400];
        snprintf(session, sizeof(session), "%s/%s", root, name);
        snprintf(config, sizeof(config), "%s/%s", session, CLI__PROM_CONFIG);
        if (!found && !strncmp(name, "session_", 8) && strcmp(name, "session_latest") && access(config, R_OK) == 0 &&
            cli__gcs_alive(session)) {
            snprintf(out, len, "%s", session);
            found = 1;
        }
        free(names[i]);
    }
    free(names);
    return found ? CLI_OK : CLI_FAIL;
}

/* The pid of the Prometheus launched for session, if it still runs; else 0. */
static pid_t cli__prom_pid(const char *session)
{
    char text[32], path[64], comm[64] = "";
    if (rc_session_read(session, CLI__PROM_PID, text, sizeof(text)) < 0)
        return 0;
    pid_t pid = (pid_t)atoi(text);
    if (pid <= 1 || !rc_pid_running(pid))
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "prometheus", 10) == 0 ? pid : 0; /* a recycled pid is someone else */
}

/* The Prometheus program: path if given, else `prometheus` on PATH, else Debian's. */
static int cli__find_prometheus(const char *given, char *out, size_t len)
{
    if (given) {
        snprintf(out, len, "%s", given);
        return access(out, X_OK) == 0 ? CLI_OK : CLI_FAIL;
    }
    const char *path = getenv("PATH");
    char *dirs = rc_strdup(path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/prometheus", *d ? d : ".");
        if (access(out, X_OK) == 0) {
            rc_free(dirs);
            return CLI_OK;
        }
    }
    rc_free(dirs);
    snprintf(out, len, "/usr/bin/prometheus");
    return access(out, X_OK) == 0 ? CLI_OK : CLI_FAIL;
}

static size_t cli__discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* 1 once http://host:port/-/ready answers 200. */
static int cli__prom_ready(const char *host, int port)
{
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    char url[300];
    snprintf(url, sizeof(url), strchr(host, ':') ? "http://[%s]:%d/-/ready" : "http://%s:%d/-/ready", host, port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli__discard);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status == 200;
}

/* The last lines of <session>/logs/prometheus.err, to stderr. */
static void cli__print_log_tail(const char *session)
{
    char path[PATH_MAX + 400], buf[4096];
    snprintf(path, sizeof(path), "%s/logs/prometheus.err", session);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    fprintf(stderr, "--- %s (end) ---\n%s\n", path, buf);
}

static const cli_opt cli__launch_opts[] = {
    {"--port", NULL, "N", "9090", "the port Prometheus serves on (Prometheus's and Ray's default)", NULL},
    {"--host", NULL, "IP", "127.0.0.1", "the address it listens on (0.0.0.0: every interface; it has no login)",
     NULL},
    {"--prometheus", NULL, "PATH", "prometheus on PATH, else /usr/bin/prometheus",
     "the Prometheus program (Debian package prometheus)", NULL},
};
static const cli_spec cli__launch_spec = {
    "rayc metrics launch-prometheus", NULL,
    "Runs Prometheus on the configuration the GCS wrote for its session\n"
    "(<session>/metrics/prometheus/prometheus.yml: every daemon over TLS with the admin token)\n"
    "and waits until it is ready. Its data stay in <session>/metrics/prometheus/data.",
    "'rayc stop' leaves it running, as 'ray stop' does; 'rayc metrics shutdown-prometheus' stops it.\n",
    CLI_SPEC_OPTS(cli__launch_opts), 0, 0,
};

static int cli__launch(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__launch_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    long port;
    if (cli_arg_int(&a, "--port", 1, 65535, 9090, &port) != CLI_OK)
        return CLI_USAGE;
    const char *host = cli_arg(&a, "--host") ? cli_arg(&a, "--host") : "127.0.0.1";
    char prom[PATH_MAX];
    if (cli__find_prometheus(cli_arg(&a, "--prometheus"), prom, sizeof(prom)) != CLI_OK) {
        fprintf(stderr, "rayc metrics launch-prometheus: cannot run %s: install Debian's prometheus package "
                        "(scripts/install-deps.sh does) or give --prometheus PATH\n",
                cli_arg(&a, "--prometheus") ? prom : "prometheus");
        return CLI_FAIL;
    }
    char session[PATH_MAX + 300];
    if (cli__metrics_session(session, sizeof(session)) != CLI_OK) {
        fprintf(stderr, "rayc metrics launch-prometheus: no running cluster on this host has a Prometheus "
                        "configuration: start one with `rayc start --head` (its GCS writes %s)\n",
                CLI__PROM_CONFIG);
        return CLI_FAIL;
    }
    pid_t running = cli__prom_pid(session);
    if (running) {
        fprintf(stderr, "rayc metrics launch-prometheus: Prometheus (pid %d) already runs for %s; stop it with "
                        "`rayc metrics shutdown-prometheus`\n", (int)running, session);
        return CLI_FAIL;
    }
    char config[PATH_MAX + 400], data[PATH_MAX + 400], listen[300];
    snprintf(config, sizeof(config), "--config.file=%s/%s", session, CLI__PROM_CONFIG);
    snprintf(data, sizeof(data), "--storage.tsdb.path=%s/metrics/prometheus/data", session);
    snprintf(listen, sizeof(listen), strchr(host, ':') ? "--web.listen-address=[%s]:%ld" : "--web.listen-address=%s:%ld",
             host, port);
    char *args[] = {prom, config, data, listen, NULL};
    pid_t pid;
    if (rc_spawn_daemon(session, "prometheus", prom, args, &pid) < 0) {
        fprintf(stderr, "rayc metrics launch-prometheus: cannot start %s: %s\n", prom, strerror(errno));
        return CLI_FAIL;
    }
    /* Its pid where `rayc stop` does not look (it stops rayc's daemons only). */
    char text[32], stray[PATH_MAX + 400];
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    rc_session_write(session, CLI__PROM_PID, text);
    snprintf(stray, sizeof(stray), "%s/pids/prometheus.pid", session);
    unlink(stray);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int64_t deadline = rc_mono_ms() + 60000;
    int ready = 0;
    while (!ready && rc_pid_running(pid) && rc_mono_ms() < deadline) {
        ready = cli__prom_ready(host, (int)port);
        if (!ready)
            rc_sleep_ms(200);
    }
    curl_global_cleanup();
    if (!ready) {
        fprintf(stderr, "rayc metrics launch-prometheus: Prometheus %s (is port %ld taken?)\n",
                rc_pid_running(pid) ? "did not become ready within 60 s; stopped it" : "exited", port);
        if (rc_pid_running(pid))
            kill(pid, SIGKILL);
        cli__print_log_tail(session);
        return CLI_FAIL;
    }
    printf("Prometheus is running at http://%s:%ld (pid %d), scraping the cluster of %s.\n"
           "Stop it with `rayc metrics shutdown-prometheus`.\n",
           host, port, (int)pid, session);
    return CLI_OK;
}

static const cli_opt cli__shutdown_opts[] = {
    {"--timeout", NULL, "S", "10", "seconds to wait after SIGTERM before SIGKILL", NULL},
};
static const cli_spec cli__shutdown_spec = {
    "rayc metrics shutdown-prometheus", NULL,
    "Stops the Prometheus that 'rayc metrics launch-prometheus' started for this host's cluster.",
    NULL, CLI_SPEC_OPTS(cli__shutdown_opts), 0, 0,
};

static int cli__shutdown(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli__shutdown_spec, argc, argv, &a);
    if (rc != CLI_OK)
        return CLI_PARSED_EXIT(rc);
    long timeout;
    if (cli_arg_int(&a, "--timeout", 0, 3600, 10, &timeout) != CLI_OK)
        return CLI_USAGE;
    char session[PATH_MAX + 300];
    pid_t pid = 0;
    if (cli__metrics_session(session, sizeof(session)) == CLI_OK)
        pid = cli__prom_pid(session);
    if (!pid) {
        fprintf(stderr, "rayc metrics shutdown-prometheus: no Prometheus launched by `rayc metrics "
                        "launch-prometheus` runs for this host's cluster\n");
        return CLI_FAIL;
    }
    kill(pid, SIGTERM);
    int64_t deadline = rc_mono_ms() + timeout * 1000;
    while (rc_pid_running(pid) && rc_mono_ms() < deadline)
        rc_sleep_ms(100);
    if (rc_pid_running(pid)) {
        kill(pid, SIGKILL);
        while (rc_pid_running(pid))
            rc_sleep_ms(50);
    }
    char path[PATH_MAX + 400];
    snprintf(path, sizeof(path), "%s/%s", session, CLI__PROM_PID);
    unlink(path);
    printf("Stopped Prometheus (pid %d).\n", (int)pid);
    return CLI_OK;
}

static const cli_sub cli__metrics_subs[] = {
    {"launch-prometheus", "run Prometheus on the cluster's configuration", cli__launch},
    {"shutdown-prometheus", "stop it", cli__shutdown},
};
static const cli_group cli__metrics_group = {
    "rayc metrics", "A Prometheus server for the cluster on this host (Ray's 'ray metrics').", cli__metrics_subs,
    (int)(sizeof(cli__metrics_subs) / sizeof(cli__metrics_subs[0])),
};

int cli_cmd_metrics(int argc, char **argv)
{
    return cli_group_run(&cli__metrics_group, argc, argv);
}
