/*
 * Hyperparameter sweep on a rayc cluster: a grid of learning rates and L2 strengths, one
 * task per trial (half a GPU each, so two trials share a GPU), results gathered as they
 * finish with a progress line (rewritten in place on a terminal, one line per update
 * otherwise, so that a log file reads line by line), then the best trial and which node ran
 * what.
 *
 *   sweep [--gpus-per-trial F] [--epochs N]
 *
 * Cluster: RAYC_ADDRESS (else a local one); functions: RAYC_CODE_SEARCH_PATH must name
 * libsweep_functions.so (the Makefile's demo sets both).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rayc.h"
#include "sweep.h"

enum { MAX_TRIALS = 64, MAX_NODES = 16 };

int main(int argc, char **argv)
{
    double gpus = 0.5;
    int epochs = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--gpus-per-trial"))
            gpus = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--epochs"))
            epochs = atoi(argv[i + 1]);
    }
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    if (rayc_init(&opts) != 0) {
        fprintf(stderr, "sweep: %s\n", rayc_last_error());
        return 1;
    }
    static const double lrs[] = {0.3, 0.1, 0.03, 0.01};
    static const double l2s[] = {0.0, 1e-4, 1e-3, 1e-2};
    sweep_trial trials[MAX_TRIALS];
    rayc_ref refs[MAX_TRIALS];
    int n = 0;
    rayc_task_options o;
    rayc_task_options_init(&o);
    o.num_cpus = 1;
    o.num_gpus = gpus;
    o.max_retries = 2;
    o.name = "train_eval";
    for (size_t a = 0; a < sizeof(lrs) / sizeof(lrs[0]); a++) {
        for (size_t b = 0; b < sizeof(l2s) / sizeof(l2s[0]); b++) {
            sweep_trial t = {lrs[a], l2s[b], 1000 + (uint64_t)n, epochs, n};
            trials[n] = t;
            rayc_arg arg = RAYC_ARG_VALUE(&trials[n], sizeof(trials[n]));
            if (rayc_submit("train_eval", &arg, 1, &o, &refs[n]) != 0) {
                fprintf(stderr, "sweep: %s\n", rayc_last_error());
                return 1;
            }
            n++;
        }
    }
    printf("sweep: %d trials (%.2g GPU each) submitted\n", n, gpus);
    sweep_result results[MAX_TRIALS];
    int done[MAX_TRIALS] = {0}, ok[MAX_TRIALS] = {0}, finished = 0, failed = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int tty = isatty(STDOUT_FILENO);
    while (finished < n) {
        uint8_t ready[MAX_TRIALS];
        rayc_wait(refs, (size_t)n, (size_t)finished + 1 <= (size_t)n ? (size_t)finished + 1 : (size_t)n, 120000, 0,
                  ready);
        for (int i = 0; i < n; i++) {
            if (!ready[i] || done[i])
                continue;
            rayc_object out;
            rayc_get(&refs[i], 1, -1, &out);
            done[i] = 1;
            finished++;
            if (out.error) {
                failed++;
                fprintf(stderr, "%ssweep: trial %d failed: %s\n", tty ? "\n" : "", i, out.error_message);
            } else {
                memcpy(&results[i], out.data, sizeof(results[i]));
                ok[i] = 1;
            }
            rayc_object_release(&out, 1);
        }
        if (tty)
            printf("\rsweep: %d/%d trials done", finished, n);
        else
            printf("sweep: %d/%d trials done\n", finished, n);
        fflush(stdout);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%ssweep: finished in %.2f s (%d failed)\n\n", tty ? "\n" : "", secs, failed);
    int best = -1;
    for (int i = 0; i < n; i++)
        if (ok[i] && (best < 0 || results[i].val_loss < results[best].val_loss))
            best = i;
    /* Which node ran what. */
    uint8_t nodes[MAX_NODES][28];
    int per_node[MAX_NODES] = {0}, n_nodes = 0;
    for (int i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        int k = 0;
        while (k < n_nodes && memcmp(nodes[k], results[i].node_id, 28))
            k++;
        if (k == n_nodes && n_nodes < MAX_NODES)
            memcpy(nodes[n_nodes++], results[i].node_id, 28);
        if (k < MAX_NODES)
            per_node[k]++;
    }
    printf("  %-4s %-8s %-8s %-10s %-9s %-10s %s\n", "#", "lr", "l2", "val_loss", "accuracy", "node", "GPUs");
    for (int i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        const sweep_result *r = &results[i];
        char gpus_text[64] = "";
        for (int g = 0; g < r->n_gpus && g < 8; g++)
            snprintf(gpus_text + strlen(gpus_text), sizeof(gpus_text) - strlen(gpus_text), "%s%d", g ? "," : "",
                     r->gpu_ids[g]);
        printf("  %-4d %-8g %-8g %-10.4f %-9.3f %02x%02x%02x%02x   %s%s\n", i, r->trial.learning_rate, r->trial.l2,
               r->val_loss, r->accuracy, r->node_id[0], r->node_id[1], r->node_id[2], r->node_id[3],
               gpus_text[0] ? gpus_text : "-", i == best ? "   <- best" : "");
    }
    printf("\n  trials per node:");
    for (int k = 0; k < n_nodes; k++)
        printf("  %02x%02x%02x%02x: %d", nodes[k][0], nodes[k][1], nodes[k][2], nodes[k][3], per_node[k]);
    printf("\n");
    if (best >= 0)
        printf("\nsweep: best trial %d: learning rate %g, L2 %g -> validation loss %.4f, accuracy %.3f\n", best,
               results[best].trial.learning_rate, results[best].trial.l2, results[best].val_loss,
               results[best].accuracy);
    for (int i = 0; i < n; i++)
        rayc_ref_release(&refs[i]);
    rayc_shutdown();
    return failed ? 1 : 0;
}
