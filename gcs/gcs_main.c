/*
 * rayc-gcs: the global control store daemon.
 *
 *   rayc-gcs [--host ADDR] [--port N] [--redis-address HOST:PORT] [--port-file PATH]
 *
 * Without --redis-address the tables live in memory (lost when the process ends); with it
 * they live in Redis and a restarted GCS resumes the same cluster. SIGTERM or SIGINT stop
 * it cleanly. Exit status: 0 after a clean stop, 1 if it could not start, 2 for bad
 * arguments. Configuration comes from RAYC_<name> environment variables (common/config_def.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcs_int.h"
#include "rc_config.h"
#include "rc_log.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rayc-gcs [--host ADDR] [--port N] [--redis-address HOST:PORT] "
               "[--port-file PATH]\n");
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

static void on_signal(uv_signal_t *h, int signum)
{
    gcs_server *gcs = h->data;
    RC_INFO("gcs: signal %d, stopping", signum);
    uv_stop(gcs->loop);
}

static void on_ready(gcs_server *gcs, int rc)
{
    if (rc < 0)
        uv_stop(gcs->loop);
}

int main(int argc, char **argv)
{
    rc_config_init();
    rc_log_set_tag("gcs");
    signal(SIGPIPE, SIG_IGN);
    gcs_server_options opts = {NULL, 6379, NULL, 0, NULL};
    static char redis_host[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "rayc-gcs: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port")) {
            if (parse_port(v, &opts.port) < 0) {
                fprintf(stderr, "rayc-gcs: --port needs a number in 0..65535, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--host")) {
            opts.host = v;
        } else if (!strcmp(a, "--port-file")) {
            opts.port_file = v;
        } else if (!strcmp(a, "--redis-address")) {
            const char *colon = strrchr(v, ':');
            if (!colon || colon == v || (size_t)(colon - v) >= sizeof(redis_host) ||
                parse_port(colon + 1, &opts.redis_port) < 0 || opts.redis_port == 0) {
                fprintf(stderr, "rayc-gcs: --redis-address needs HOST:PORT, not '%s'\n", v);
                return 2;
            }
            memcpy(redis_host, v, (size_t)(colon - v));
            redis_host[colon - v] = '\0';
            opts.redis_host = redis_host;
        } else {
            fprintf(stderr, "rayc-gcs: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    static gcs_server gcs;
    gcs.on_ready = on_ready;
    uv_signal_init(&loop, &gcs.sigterm);
    uv_signal_init(&loop, &gcs.sigint);
    gcs.sigterm.data = gcs.sigint.data = &gcs;
    uv_signal_start(&gcs.sigterm, on_signal, SIGTERM);
    uv_signal_start(&gcs.sigint, on_signal, SIGINT);
    if (gcs_server_start(&gcs, &loop, &opts) < 0) {
        RC_ERROR("gcs: cannot start");
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    gcs_server_stop(&gcs);
    uv_close((uv_handle_t *)&gcs.sigterm, NULL);
    uv_close((uv_handle_t *)&gcs.sigint, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        RC_WARN("gcs: some handles were still open at exit");
    RC_INFO("gcs: stopped");
    return gcs.exit_code;
}
