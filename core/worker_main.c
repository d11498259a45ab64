/*
 * rayc-worker: the process a raylet starts to run C tasks (docs/tasks.md has its contract).
 *
 *   rayc-worker --raylet-socket PATH --node-id HEX --node-ip-address IP --worker-id HEX
 *               --job-id HEX --gcs-address HOST:PORT [--code-search-path P1:P2]
 *
 * It loads the libraries on the code search path (their RAYC_REMOTE functions register
 * themselves), joins its raylet, and runs pushed tasks on its main thread until told to
 * exit, killed, or orphaned by its raylet (rayc_worker_main, which Python workers call too).
 *
 * Its log files (stdout, stderr) start with the line ":job_id:<hex>:<pid>", as Python
 * workers' do: `rayc logs --worker PID` finds a worker's files by it.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rayc.h"

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--job-id") && strlen(argv[i + 1]) < 64) {
            printf(":job_id:%s:%d\n", argv[i + 1], (int)getpid());
            fflush(stdout);
            fprintf(stderr, ":job_id:%s:%d\n", argv[i + 1], (int)getpid());
            break;
        }
    return rayc_worker_main(argc, argv);
}
