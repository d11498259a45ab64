/*
 * rayc-worker: the process a raylet starts to run C tasks (docs/tasks.md has its contract).
 *
 *   rayc-worker --raylet-socket PATH --node-id HEX --node-ip-address IP --worker-id HEX
 *               --job-id HEX --gcs-address HOST:PORT [--code-search-path P1:P2]
 *
 * It loads the libraries on the code search path (their RAYC_REMOTE functions register
 * themselves), joins its raylet, and runs pushed tasks on its main thread until told to
 * exit, killed, or orphaned by its raylet (rayc_worker_main, which Python workers call too).
 */
#include "rayc.h"

int main(int argc, char **argv)
{
    return rayc_worker_main(argc, argv);
}
