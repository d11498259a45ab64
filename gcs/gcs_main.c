/*
 * rayc-gcs: the global control store daemon.
 *
 *   rayc-gcs (--auth-dir DIR | --insecure) [--host IP] [--bind-all] [--port N]
 *            [--redis-address HOST:PORT [--redis-username U]
 *             [--redis-password-file F | --redis-password P]] [--port-file PATH]
 *
 * Security is on by default (ARCHITECTURE §14): the cluster's CA, the admin token and the
 * GCS's certificate come from or go to --auth-dir (rayc start passes the session
 * directory); --insecure runs plaintext with no credentials, for loopback development. One
 * of the two is required, so that the admin token is always written somewhere.
 *
 * The GCS listens on --host (default: this host's primary address) and advertises exactly
 * that; --bind-all listens on every interface instead, still advertising --host.
 *
 * Without --redis-address the tables live in memory (lost when the process ends); with it
 * they live in Redis and a restarted GCS resumes the same cluster. A Redis that asks for a
 * password gets it from --redis-password-file (its first line) or --redis-password (visible
 * to other local users in the process list: prefer the file), with --redis-username for a
 * Redis ACL user. SIGTERM or SIGINT stop it cleanly. Exit status: 0 after a clean stop, 1 if
 * it could not start, 2 for bad arguments. Configuration comes from RAYC_<name> environment
 * variables (common/config_def.h).
 */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_int.h"
#include "rc_config.h"
#include "rc_log.h"
#include "rc_net.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rayc-gcs (--auth-dir DIR | --insecure) [--host IP] [--bind-all] [--port N]\n"
            "                [--redis-address HOST:PORT [--redis-username U]\n"
            "                 [--redis-password-file F | --redis-password P]] [--port-file PATH]\n"
            "                [--exit-with-parent]\n");
}

static int parse_port(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int is_ip(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int is_wildcard(const char *s)
{
    return strcmp(s, "0.0.0.0") == 0 || strcmp(s, "::") == 0;
}

/* The first line of path, without its line end, into out. 0, or -1 with errno (EINVAL for
 * an empty first line, ENAMETOOLONG for a line that does not fit). */
static int read_first_line(const char *path, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(out, (int)outlen, f) != NULL;
    int err = ok ? 0 : ferror(f) ? EIO : EINVAL;
    fclose(f);
    if (!ok) {
        errno = err;
        return -1;
    }
    size_t n = strlen(out);
    if (n == outlen - 1 && out[n - 1] != '\n') {
        explicit_bzero(out, outlen);
        errno = ENAMETOOLONG;
        return -1;
    }
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    if (n == 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    gcs_server *gcs = h->data;
    RC_INFO("gcs: signal %d, stopping", signum);
    uv_stop(gcs->loop);
}

/* --exit-with-parent: a local cluster's GCS ends with the driver that started it (an
 * adopted process's parent pid changes). */
static void on_parent_watch(uv_timer_t *t)
{
    if (getppid() != (pid_t)(intptr_t)t->data) {
        RC_INFO("gcs: the process that started it is gone; stopping");
        uv_timer_stop(t);
        kill(getpid(), SIGTERM);
    }
}

static void on_ready(gcs_server *gcs, int rc)
{
    if (rc < 0)
        uv_stop(gcs->loop);
}

/* Parsed flags that need checking together. */
typedef struct gcs_flags {
    gcs_server_options opts;
    const char *password_file;
    const char *password_flag;
    char redis_host[256];
    char password[1024];
    char host[64];
    int exit_with_parent;
} gcs_flags;

/* Parses argv into f. Returns -1 (after printing why) for exit status 2, 1 for --help. */
static int parse_flags(int argc, char **argv, gcs_flags *f)
{
    gcs_server_options *o = &f->opts;
    o->port = 6379;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--insecure")) {
            o->insecure = 1;
            continue;
        }
        if (!strcmp(a, "--bind-all")) {
            o->bind_all = 1;
            continue;
        }
        if (!strcmp(a, "--exit-with-parent")) {
            f->exit_with_parent = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "rayc-gcs: %s needs a value\n", a);
            usage(stderr);
            return -1;
        }
        i++;
        if (!strcmp(a, "--port")) {
            if (parse_port(v, &o->port) < 0) {
                fprintf(stderr, "rayc-gcs: --port needs a number in 0..65535, not '%s'\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--host")) {
            if (!is_ip(v)) {
                fprintf(stderr, "rayc-gcs: --host needs an IP address of this host, not '%s'\n", v);
                return -1;
            }
            snprintf(f->host, sizeof(f->host), "%s", v);
            o->host = f->host;
        } else if (!strcmp(a, "--port-file")) {
            o->port_file = v;
        } else if (!strcmp(a, "--auth-dir")) {
            if (!v[0]) {
                fprintf(stderr, "rayc-gcs: --auth-dir needs a directory\n");
                return -1;
            }
            o->auth_dir = v;
        } else if (!strcmp(a, "--redis-username")) {
            if (!v[0]) {
                fprintf(stderr, "rayc-gcs: --redis-username needs a name\n");
                return -1;
            }
            o->redis_username = v;
        } else if (!strcmp(a, "--redis-password")) {
            f->password_flag = v;
        } else if (!strcmp(a, "--redis-password-file")) {
            f->password_file = v;
        } else if (!strcmp(a, "--redis-address")) {
            const char *colon = strrchr(v, ':');
            if (!colon || colon == v || (size_t)(colon - v) >= sizeof(f->redis_host) ||
                parse_port(colon + 1, &o->redis_port) < 0 || o->redis_port == 0) {
                fprintf(stderr, "rayc-gcs: --redis-address needs HOST:PORT, not '%s'\n", v);
                return -1;
            }
            memcpy(f->redis_host, v, (size_t)(colon - v));
            f->redis_host[colon - v] = '\0';
            o->redis_host = f->redis_host;
        } else {
            fprintf(stderr, "rayc-gcs: unknown argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

/* The checks across flags, and the password file. -1 (after printing why) for exit 2. */
static int check_flags(gcs_flags *f)
{
    gcs_server_options *o = &f->opts;
    if (!o->insecure && !o->auth_dir) {
        fprintf(stderr, "rayc-gcs: security is on by default and needs --auth-dir DIR (where the "
                        "cluster CA and the admin token are kept); --insecure runs without TLS "
                        "and credentials, for development on loopback only\n");
        return -1;
    }
    if (o->host && is_wildcard(o->host) && !o->bind_all) {
        fprintf(stderr, "rayc-gcs: --host %s would listen on every interface; give this host's "
                        "address, or add --bind-all if that is what you want\n",
                o->host);
        return -1;
    }
    if (f->password_flag && f->password_file) {
        fprintf(stderr, "rayc-gcs: give --redis-password-file or --redis-password, not both\n");
        return -1;
    }
    if ((f->password_flag || f->password_file || o->redis_username) && !o->redis_host) {
        fprintf(stderr, "rayc-gcs: Redis credentials need --redis-address\n");
        return -1;
    }
    if (o->redis_username && !f->password_flag && !f->password_file) {
        fprintf(stderr, "rayc-gcs: --redis-username needs --redis-password-file (or "
                        "--redis-password)\n");
        return -1;
    }
    if (f->password_flag) {
        if (!f->password_flag[0]) {
            fprintf(stderr, "rayc-gcs: --redis-password is empty\n");
            return -1;
        }
        snprintf(f->password, sizeof(f->password), "%s", f->password_flag);
        o->redis_password = f->password;
    }
    if (f->password_file) {
        if (read_first_line(f->password_file, f->password, sizeof(f->password)) < 0) {
            fprintf(stderr, "rayc-gcs: cannot read the Redis password from %s: %s\n",
                    f->password_file,
                    errno == EINVAL ? "its first line is empty" : strerror(errno));
            return -1;
        }
        o->redis_password = f->password;
    }
    /* The advertised address: --host, else this host's primary one (never a wildcard). */
    if (!o->host || is_wildcard(o->host)) {
        rc_net_primary_ip(f->host, sizeof(f->host));
        o->host = f->host;
    }
    return 0;
}

/* A port in use gets one line that says so and what to pass instead, before gRPC (whose own
 * report of a failed bind is a multi-line dump) is asked to listen. -1 after printing it. */
static int check_port(const gcs_server_options *o)
{
    if (o->port == 0)
        return 0;
    int err = rc_net_try_bind(o->bind_all ? NULL : o->host, o->port);
    if (err == EADDRINUSE) {
        fprintf(stderr, "rayc-gcs: port %d on %s is in use (another rayc cluster, or a Redis?): pass --port with a "
                        "free port (--port 0: any free port), or stop what listens there\n",
                o->port, o->bind_all ? "every interface" : o->host);
        return -1;
    }
    if (err == EADDRNOTAVAIL) {
        fprintf(stderr, "rayc-gcs: %s is not an address of this host: pass --host with one of its addresses\n",
                o->host);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rc_config_init();
    rc_log_set_tag("gcs");
    signal(SIGPIPE, SIG_IGN);
    static gcs_flags flags;
    int rc = parse_flags(argc, argv, &flags);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (check_flags(&flags) < 0)
        return 2;
    if (check_port(&flags.opts) < 0)
        return 1;

    uv_loop_t loop;
    uv_loop_init(&loop);
    static gcs_server gcs;
    gcs.on_ready = on_ready;
    uv_signal_init(&loop, &gcs.sigterm);
    uv_signal_init(&loop, &gcs.sigint);
    gcs.sigterm.data = gcs.sigint.data = &gcs;
    uv_signal_start(&gcs.sigterm, on_signal, SIGTERM);
    uv_signal_start(&gcs.sigint, on_signal, SIGINT);
    rc = gcs_server_start(&gcs, &loop, &flags.opts);
    /* The store keeps its own copy of the password. */
    explicit_bzero(flags.password, sizeof(flags.password));
    if (rc < 0) {
        RC_ERROR("gcs: cannot start");
        return 1;
    }
    uv_timer_t parent_watch;
    if (flags.exit_with_parent) {
        parent_watch.data = (void *)(intptr_t)getppid();
        uv_timer_init(&loop, &parent_watch);
        uv_timer_start(&parent_watch, on_parent_watch, 500, 500);
        uv_unref((uv_handle_t *)&parent_watch);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (flags.exit_with_parent)
        uv_close((uv_handle_t *)&parent_watch, NULL);
    gcs_server_stop(&gcs);
    uv_close((uv_handle_t *)&gcs.sigterm, NULL);
    uv_close((uv_handle_t *)&gcs.sigint, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        RC_WARN("gcs: some handles were still open at exit");
    RC_INFO("gcs: stopped");
    return gcs.exit_code;
}
