/*
 * rayc start / rayc stop.
 *
 * start validates every flag first (the raylet's own parser), then creates a session
 * directory, starts rayc-gcs (head only) and rayc-raylet as daemons in it, waits until the
 * GCS serves and the raylet has registered, records the GCS address in the session and
 * prints it in Ray's form. If a daemon dies on the way, its last log lines are printed and
 * what was started is stopped again.
 *
 * stop signals every rayc process recorded in the pid files of every session under the
 * session root (raylets first, so they unregister while the GCS is still there), waits for
 * them, and kills those that do not go within the grace period. A pid is signalled only if
 * it still is a rayc process.
 *
 * Main thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_int.h"
#include "raylet.h"
#include "rc_err.h"
#include "rc_net.h"
#include "rc_session.h"
#include "rc_time.h"

enum { CLI__MAX_ARGS = 128, CLI__GCS_WAIT_MS = 15000, CLI__RAYLET_WAIT_MS = 60000, CLI__STOP_GRACE_MS = 10000 };

typedef struct cli__daemon {
    const char *name;
    pid_t pid;
} cli__daemon;

static void cli__print_log_tail(const char *session, const char *name)
{
    char path[PATH_MAX + 64], tail[2048];
    snprintf(path, sizeof(path), "%s/logs/%s.err", session, name);
    rc_file_tail(path, tail, sizeof(tail));
    if (tail[0])
        fprintf(stderr, "--- last lines of %s ---\n%s%s", path, tail, tail[strlen(tail) - 1] == '\n' ? "" : "\n");
}

/* Waits until session/<file> exists (0), the daemon exits (its exit status, >= 0 means it
 * died) or the time is up (RC_ETIMEDOUT). */
static int cli__wait_for_file(const char *session, const char *file, pid_t pid, int64_t timeout_ms, int *exit_status)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", session, file);
    int64_t deadline = rc_mono_ms() + timeout_ms;
    while (rc_mono_ms() < deadline) {
        if (access(path, R_OK) == 0)
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return RC_ESTATE;
        }
        rc_sleep_ms(20);
    }
    return RC_ETIMEDOUT;
}

static void cli__kill_and_reap(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        rc_sleep_ms(25);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static volatile sig_atomic_t cli__block_signal;

static void cli__on_block_signal(int sig)
{
    cli__block_signal = sig;
}

int cli_cmd_start(int argc, char **argv)
{
    int head = 0, block = 0, port = 6379;
    const char *address = NULL, *redis = NULL, *ip_flag = NULL;
    char *raylet_args[CLI__MAX_ARGS];
    int n_raylet_args = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--head")) {
            head = 1;
        } else if (!strcmp(a, "--block")) {
            block = 1;
        } else if (!strcmp(a, "--port") || !strcmp(a, "--address") || !strcmp(a, "--redis-address")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "rayc start: %s needs a value\n", a);
                return CLI_USAGE;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--port")) {
                char *end;
                long p = strtol(v, &end, 10);
                if (*end || end == v || p < 0 || p > 65535) {
                    fprintf(stderr, "rayc start: --port needs a port number in 0..65535 (0: any free "
                                    "port), not '%s'\n", v);
                    return CLI_USAGE;
                }
                port = (int)p;
            } else if (!strcmp(a, "--address")) {
                address = v;
            } else {
                redis = v;
            }
        } else {
            int arity = raylet_flag_arity(a);
            if (arity < 0 || !strcmp(a, "--gcs-address") || !strcmp(a, "--ready-file")) {
                fprintf(stderr, "rayc start: unknown flag '%s' (see rayc --help)\n", a);
                return CLI_USAGE;
            }
            if (n_raylet_args + 2 >= CLI__MAX_ARGS) {
                fprintf(stderr, "rayc start: too many flags\n");
                return CLI_USAGE;
            }
            raylet_args[n_raylet_args++] = argv[i];
            if (arity == 1) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "rayc start: %s needs a value\n", a);
                    return CLI_USAGE;
                }
                if (!strcmp(a, "--node-ip-address"))
                    ip_flag = argv[i + 1];
                raylet_args[n_raylet_args++] = argv[++i];
            }
        }
    }
    if (head == !!address) {
        fprintf(stderr, "rayc start: give either --head (start a new cluster) or --address HOST:PORT "
                        "(join one)\n");
        return CLI_USAGE;
    }
    if (redis && !head) {
        fprintf(stderr, "rayc start: --redis-address is for the head node (its GCS keeps state there)\n");
        return CLI_USAGE;
    }
    raylet_options check;
    char err[512];
    if (raylet_options_parse(&check, n_raylet_args, raylet_args, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc start: %s\n", err);
        raylet_options_free(&check);
        return CLI_USAGE;
    }
    raylet_options_free(&check);
    if (redis) {
        const char *colon = strrchr(redis, ':');
        if (!colon || colon == redis || atoi(colon + 1) <= 0) {
            fprintf(stderr, "rayc start: --redis-address needs HOST:PORT, not '%s'\n", redis);
            return CLI_USAGE;
        }
    }

    char gcs_address[300];
    char ip[64];
    if (address) {
        snprintf(gcs_address, sizeof(gcs_address), "%s", address);
        size_t n = strlen(gcs_address);
        if (n >= 2 && gcs_address[0] == '\'' && gcs_address[n - 1] == '\'') {
            memmove(gcs_address, gcs_address + 1, n - 2);
            gcs_address[n - 2] = '\0';
        }
        /* Fail fast with a clear message rather than leave a raylet retrying for a minute. */
        cli_conn c;
        int rc = cli_connect(&c, gcs_address);
        if (rc != CLI_OK)
            return rc;
        cli_disconnect(&c);
        if (ip_flag)
            snprintf(ip, sizeof(ip), "%s", ip_flag);
        else if (rc_net_local_ip_for(gcs_address, ip, sizeof(ip)) < 0)
            snprintf(ip, sizeof(ip), "127.0.0.1");
    } else if (ip_flag) {
        snprintf(ip, sizeof(ip), "%s", ip_flag);
    } else {
        rc_net_primary_ip(ip, sizeof(ip));
    }

    char bin[PATH_MAX], session[PATH_MAX];
    if (rc_exe_dir(bin, sizeof(bin)) < 0) {
        fprintf(stderr, "rayc start: cannot find the directory of the rayc executables\n");
        return CLI_FAIL;
    }
    if (rc_session_create(session, sizeof(session)) < 0) {
        char root[PATH_MAX];
        rc_session_root(root, sizeof(root));
        fprintf(stderr, "rayc start: cannot create a session directory under %s: %s\n", root, strerror(errno));
        return CLI_FAIL;
    }

    cli__daemon daemons[2];
    int n_daemons = 0, status = 0, rc;
    char exe[PATH_MAX + 32], port_text[16], port_file[PATH_MAX + 32], ready_file[PATH_MAX + 32];
    if (head) {
        snprintf(exe, sizeof(exe), "%s/rayc-gcs", bin);
        snprintf(port_text, sizeof(port_text), "%d", port);
        snprintf(port_file, sizeof(port_file), "%s/gcs_port", session);
        char *gcs_argv[10] = {exe, "--port", port_text, "--port-file", port_file, NULL};
        if (redis) {
            gcs_argv[5] = "--redis-address";
            gcs_argv[6] = (char *)redis;
            gcs_argv[7] = NULL;
        }
        pid_t pid;
        if (rc_spawn_daemon(session, "gcs_server", exe, gcs_argv, &pid) < 0) {
            fprintf(stderr, "rayc start: cannot run %s: %s\n", exe, strerror(errno));
            return CLI_FAIL;
        }
        daemons[n_daemons++] = (cli__daemon){"gcs_server", pid};
        rc = cli__wait_for_file(session, "gcs_port", pid, CLI__GCS_WAIT_MS, &status);
        if (rc < 0) {
            if (rc == RC_ETIMEDOUT) {
                fprintf(stderr, "rayc start: the GCS did not start serving within %d s\n", CLI__GCS_WAIT_MS / 1000);
                cli__kill_and_reap(pid);
            } else {
                fprintf(stderr, "rayc start: the GCS exited with status %d\n", status);
            }
            cli__print_log_tail(session, "gcs_server");
            return CLI_FAIL;
        }
        char bound[32];
        if (rc_session_read(session, "gcs_port", bound, sizeof(bound)) == 0 && atoi(bound) > 0)
            port = atoi(bound); /* --port 0 asked for any free port */
        snprintf(gcs_address, sizeof(gcs_address), "%s:%d", ip, port);
    }

    snprintf(exe, sizeof(exe), "%s/rayc-raylet", bin);
    snprintf(ready_file, sizeof(ready_file), "%s/raylet_ready.json", session);
    char *r_argv[CLI__MAX_ARGS + 8];
    int n = 0;
    r_argv[n++] = exe;
    r_argv[n++] = "--gcs-address";
    r_argv[n++] = gcs_address;
    r_argv[n++] = "--ready-file";
    r_argv[n++] = ready_file;
    if (head)
        r_argv[n++] = "--head";
    if (!ip_flag) {
        r_argv[n++] = "--node-ip-address";
        r_argv[n++] = ip;
    }
    for (int i = 0; i < n_raylet_args; i++)
        r_argv[n++] = raylet_args[i];
    r_argv[n] = NULL;
    pid_t raylet_pid;
    if (rc_spawn_daemon(session, "raylet", exe, r_argv, &raylet_pid) < 0) {
        fprintf(stderr, "rayc start: cannot run %s: %s\n", exe, strerror(errno));
        for (int i = 0; i < n_daemons; i++)
            cli__kill_and_reap(daemons[i].pid);
        return CLI_FAIL;
    }
    daemons[n_daemons++] = (cli__daemon){"raylet", raylet_pid};
    rc = cli__wait_for_file(session, "raylet_ready.json", raylet_pid, CLI__RAYLET_WAIT_MS, &status);
    if (rc < 0) {
        if (rc == RC_ETIMEDOUT)
            fprintf(stderr, "rayc start: the raylet did not register within %d s\n", CLI__RAYLET_WAIT_MS / 1000);
        else
            fprintf(stderr, "rayc start: the raylet exited with status %d\n", status);
        cli__print_log_tail(session, "raylet");
        for (int i = n_daemons; i-- > 0;)
            cli__kill_and_reap(daemons[i].pid);
        return CLI_FAIL;
    }
    char line[400];
    snprintf(line, sizeof(line), "%s\n", gcs_address);
    rc_session_write(session, "gcs_address", line);

    printf("Local node IP: %s\n", ip);
    printf("Session: %s\n\n", session);
    printf("--------------------\nrayc runtime started.\n--------------------\n\n");
    printf("Next steps\n");
    if (head) {
        printf("  To add another node to this cluster, run\n    rayc start --address='%s'\n\n", gcs_address);
        printf("  To connect to this cluster from a program, set RAYC_ADDRESS=%s\n\n", gcs_address);
    }
    printf("  To see the status of the cluster, use\n    rayc status\n\n");
    printf("  To terminate the rayc runtime, run\n    rayc stop\n");
    fflush(stdout);

    if (!block)
        return CLI_OK;
    /* --block: stay in the foreground; a signal here stops the daemons of this start. */
    signal(SIGINT, cli__on_block_signal);
    signal(SIGTERM, cli__on_block_signal);
    while (!cli__block_signal) {
        int alive = 0;
        for (int i = 0; i < n_daemons; i++)
            if (daemons[i].pid > 0 && waitpid(daemons[i].pid, NULL, WNOHANG) == 0)
                alive++;
            else
                daemons[i].pid = -1;
        if (!alive) {
            fprintf(stderr, "rayc start: every process of this node has exited\n");
            return CLI_FAIL;
        }
        rc_sleep_ms(200);
    }
    for (int i = n_daemons; i-- > 0;)
        if (daemons[i].pid > 0)
            cli__kill_and_reap(daemons[i].pid);
    return CLI_OK;
}

/* ---- stop --------------------------------------------------------------------------- */

typedef struct cli__victim {
    pid_t pid;
    int is_gcs;
    char pid_file[PATH_MAX + 600];
} cli__victim;

static size_t cli__collect(cli__victim *out, size_t cap)
{
    char root[PATH_MAX];
    rc_session_root(root, sizeof(root));
    DIR *d = opendir(root);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        if (strncmp(e->d_name, "session_", 8) || !strcmp(e->d_name, "session_latest"))
            continue;
        char pids[PATH_MAX + 300];
        snprintf(pids, sizeof(pids), "%s/%s/pids", root, e->d_name);
        DIR *pd = opendir(pids);
        if (!pd)
            continue;
        struct dirent *pe;
        while ((pe = readdir(pd)) && n < cap) {
            size_t len = strlen(pe->d_name);
            if (len < 5 || strcmp(pe->d_name + len - 4, ".pid"))
                continue;
            char text[32];
            char name[300];
            snprintf(name, sizeof(name), "pids/%s", pe->d_name);
            char session[PATH_MAX + 300];
            snprintf(session, sizeof(session), "%s/%s", root, e->d_name);
            if (rc_session_read(session, name, text, sizeof(text)) < 0)
                continue;
            cli__victim *v = &out[n];
            v->pid = (pid_t)atoi(text);
            v->is_gcs = strncmp(pe->d_name, "gcs", 3) == 0;
            snprintf(v->pid_file, sizeof(v->pid_file), "%s/%s", pids, pe->d_name);
            if (!rc_pid_is_rayc(v->pid)) {
                unlink(v->pid_file); /* stale: the process is gone */
                continue;
            }
            n++;
        }
        closedir(pd);
    }
    closedir(d);
    return n;
}

static int cli__wait_gone(cli__victim *v, size_t n, int gcs, int64_t timeout_ms)
{
    int64_t deadline = rc_mono_ms() + timeout_ms;
    for (;;) {
        int left = 0;
        for (size_t i = 0; i < n; i++)
            if (v[i].is_gcs == gcs && rc_pid_is_rayc(v[i].pid))
                left++;
        if (!left || rc_mono_ms() >= deadline)
            return left;
        rc_sleep_ms(50);
    }
}

int cli_cmd_stop(int argc, char **argv)
{
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")) {
            force = 1;
        } else {
            fprintf(stderr, "rayc stop: unknown argument '%s' (only --force)\n", argv[i]);
            return CLI_USAGE;
        }
    }
    static cli__victim victims[4096];
    size_t n = cli__collect(victims, sizeof(victims) / sizeof(victims[0]));
    if (!n) {
        printf("Did not find any active rayc processes.\n");
        return CLI_OK;
    }
    int sig = force ? SIGKILL : SIGTERM;
    /* Raylets first, so each unregisters while its GCS still listens. */
    for (int gcs = 0; gcs <= 1; gcs++) {
        for (size_t i = 0; i < n; i++)
            if (victims[i].is_gcs == gcs)
                kill(victims[i].pid, sig);
        if (cli__wait_gone(victims, n, gcs, force ? 2000 : CLI__STOP_GRACE_MS) > 0) {
            for (size_t i = 0; i < n; i++)
                if (victims[i].is_gcs == gcs && rc_pid_is_rayc(victims[i].pid)) {
                    fprintf(stderr, "rayc stop: process %d did not stop in time; killing it\n", (int)victims[i].pid);
                    kill(victims[i].pid, SIGKILL);
                }
            cli__wait_gone(victims, n, gcs, 2000);
        }
    }
    size_t stopped = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc_pid_is_rayc(victims[i].pid)) {
            fprintf(stderr, "rayc stop: process %d is still running\n", (int)victims[i].pid);
            continue;
        }
        unlink(victims[i].pid_file);
        stopped++;
    }
    printf("Stopped %zu rayc process%s.\n", stopped, stopped == 1 ? "" : "es");
    return stopped == n ? CLI_OK : CLI_FAIL;
}
