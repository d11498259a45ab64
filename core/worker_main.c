/*
 * rayc-worker: the process a raylet starts to run tasks (docs/tasks.md has its contract).
 *
 *   rayc-worker --raylet-socket PATH --node-id HEX --node-ip-address IP --worker-id HEX
 *               --job-id HEX --gcs-address HOST:PORT [--code-search-path P1:P2]
 *
 * It loads the libraries on the code search path (their RAYC_REMOTE functions register
 * themselves), joins its raylet, and runs pushed tasks on its main thread until told to
 * exit, killed, or orphaned by its raylet.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_int.h"
#include "rc_config.h"
#include "rc_err.h"
#include "rc_ids.h"
#include "rc_log.h"

int core_worker_init(const char *gcs_address, const char *raylet_socket, const uint8_t *worker_id,
                     const uint8_t *node_id, const char *node_ip, const uint8_t *job_id, const char *code_search_path);

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
    /* The task thread may be inside user code: leave at once, as Ray's workers do. */
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *socket = NULL, *node_hex = NULL, *ip = NULL, *worker_hex = NULL, *job_hex = NULL, *gcs = NULL,
               *path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--raylet-socket"))
            socket = v;
        else if (!strcmp(k, "--node-id"))
            node_hex = v;
        else if (!strcmp(k, "--node-ip-address"))
            ip = v;
        else if (!strcmp(k, "--worker-id"))
            worker_hex = v;
        else if (!strcmp(k, "--job-id"))
            job_hex = v;
        else if (!strcmp(k, "--gcs-address"))
            gcs = v;
        else if (!strcmp(k, "--code-search-path"))
            path = v;
        else {
            fprintf(stderr, "rayc-worker: unknown argument '%s'\n", k);
            return 2;
        }
    }
    uint8_t node_id[RC_NODE_ID_SIZE], worker_id[RC_WORKER_ID_SIZE], job_id[RC_JOB_ID_SIZE];
    if (!socket || !ip || !gcs || !node_hex || !worker_hex || !job_hex ||
        rc_id_from_hex(node_hex, node_id, sizeof(node_id)) < 0 ||
        rc_id_from_hex(worker_hex, worker_id, sizeof(worker_id)) < 0 ||
        rc_id_from_hex(job_hex, job_id, sizeof(job_id)) < 0) {
        fprintf(stderr, "rayc-worker: started without a complete command line (it is started by a raylet: "
                        "--raylet-socket --node-id --node-ip-address --worker-id --job-id --gcs-address)\n");
        return 2;
    }
    rc_config_init();
    rc_log_set_tag("worker");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    const char *search = path ? path : getenv("RAYC_CODE_SEARCH_PATH");
    char err[1024] = "";
    if (search && core_load_libraries(search, err, sizeof(err)) < 0)
        RC_ERROR("worker: %s", err); /* tasks naming missing functions will say so */
    if (core_worker_init(gcs, socket, worker_id, node_id, ip, job_id, search) < 0) {
        RC_ERROR("worker: cannot join the raylet at %s", socket);
        return 1;
    }
    RC_INFO("worker: ready (pid %d)", (int)getpid());
    core_exec_run_loop(core__cw);
    rayc_shutdown();
    return 0;
}
