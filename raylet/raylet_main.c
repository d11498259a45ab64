/*
 * rayc-raylet: the per-host daemon. See raylet.h for its flags. Exit status: 0 after a
 * clean leave, 1 when it could not join or lost its cluster, 2 for bad arguments.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "object_store.h"
#include "raylet_int.h"
#include "rc_config.h"
#include "rc_log.h"
#include "rc_session.h"

static void on_stale_store(const char *path, rc_stale_kind kind, long pid, void *arg)
{
    (void)kind, (void)pid, (void)arg;
    RC_INFO("raylet: removed %s, the object store of a raylet that is gone", path);
}

/* --exit-with-parent: a local cluster's raylet ends with its driver, however the driver
 * ended (a killed driver never calls rayc_shutdown). A process whose parent died is adopted,
 * so its parent pid changes. */
static void on_parent_watch(uv_timer_t *t)
{
    if (getppid() != (pid_t)(intptr_t)t->data) {
        RC_INFO("raylet: the process that started it is gone; stopping");
        uv_timer_stop(t);
        kill(getpid(), SIGTERM);
    }
}

int main(int argc, char **argv)
{
    rc_config_init();
    rc_log_set_tag("raylet");
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: rayc-raylet --gcs-address HOST:PORT [--head] [--num-cpus N] [--num-gpus N]\n"
               "       [--accelerator-type T] [--gpu-memory SIZE] [--memory SIZE]\n"
               "       [--object-store-memory SIZE] [--resources JSON] [--labels k=v,...]\n"
               "       [--node-ip-address IP] [--node-manager-port N] [--node-name NAME]\n"
               "       [--ready-file PATH] [--session-dir DIR] [--worker-command PATH]\n"
               "       [--python-executable PATH (default: $RAYC_PYTHON, else /usr/bin/python3)]\n"
               "       (--join-token T (--ca-cert-hash sha256:HEX | --ca-cert FILE) | --insecure)\n"
               "       [--auth-dir DIR] [--bind-all] [--exit-with-parent]\n"
               "  for tests and demos only (a host failing the market's verification on purpose):\n"
               "       [--testing-challenge-corrupt] [--testing-challenge-delay-ms N]\n");
        return 0;
    }
    static raylet r;
    char err[512];
    if (raylet_options_parse(&r.opts, argc - 1, argv + 1, 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "rayc-raylet: %s\n", err);
        raylet_options_free(&r.opts);
        return 2;
    }
    /* What raylets killed on this host left in /dev/shm (their owners are gone; live
     * raylets' stores are never touched). */
    rc_sweep_stores(NULL, 1, on_stale_store, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = raylet_start(&r, &loop);
    /* The store's owner lock, held until this process ends however it ends: a sweep by a
     * later `rayc start`, `rayc stop` or raylet knows the store is in use while it is held. */
    if (rc == 0 && r.store && rc_owner_lock(raylet_store_path(r.store)) < 0)
        RC_WARN("raylet: cannot lock the object store file %s: %s", raylet_store_path(r.store), strerror(errno));
    uv_timer_t parent_watch;
    if (rc == 0 && r.opts.exit_with_parent) {
        parent_watch.data = (void *)(intptr_t)getppid();
        uv_timer_init(&loop, &parent_watch);
        uv_timer_start(&parent_watch, on_parent_watch, 500, 500);
        uv_unref((uv_handle_t *)&parent_watch);
    }
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    else
        r.exit_code = 1;
    raylet_cleanup(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    RC_INFO("raylet: exit %d", r.exit_code);
    return r.exit_code;
}
