/*
 * Data-parallel training on a rayc cluster: a placement group reserves one bundle per
 * trainer (gang scheduling: all or nothing), one Trainer actor is placed in each bundle,
 * and every step is an all-reduce through the object store: each trainer computes its
 * gradient, then each receives all of them by reference, averages and steps. The loss must
 * fall and the replicas must agree, or the program fails.
 *
 *   train [--workers N] [--steps N] [--lr F] [--strategy PACK|SPREAD|STRICT_PACK|STRICT_SPREAD]
 *         [--gpus-per-worker F]
 *
 * Cluster: RAYC_ADDRESS (else a local one); RAYC_CODE_SEARCH_PATH must name
 * libtrain_functions.so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rayc.h"
#include "train.h"

enum { MAX_WORKERS = 32 };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int fetch(const rayc_ref *ref, void *out, size_t size, const char *what)
{
    rayc_object o;
    if (rayc_get(ref, 1, 300000, &o) != 0 || o.error || o.size != size) {
        fprintf(stderr, "train: %s failed: %s\n", what, o.error_message ? o.error_message : "timed out");
        rayc_object_release(&o, 1);
        return -1;
    }
    memcpy(out, o.data, size);
    rayc_object_release(&o, 1);
    return 0;
}

int main(int argc, char **argv)
{
    int workers = 4, steps = 30;
    float lr = 0.05f;
    double gpus = 0;
    rayc_pg_strategy strategy = RAYC_PG_PACK;
    static const char *names[] = {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--workers"))
            workers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lr"))
            lr = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--gpus-per-worker"))
            gpus = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--strategy")) {
            int found = 0;
            for (int s = 0; s < 4; s++)
                if (!strcmp(argv[i + 1], names[s])) {
                    strategy = (rayc_pg_strategy)s;
                    found = 1;
                }
            if (!found) {
                fprintf(stderr, "train: --strategy is one of PACK, SPREAD, STRICT_PACK, STRICT_SPREAD\n");
                return 2;
            }
        } else {
            fprintf(stderr, "train: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (workers < 1 || workers > MAX_WORKERS || steps < 1 || steps > 100000 || gpus < 0 || lr <= 0) {
        fprintf(stderr, "train: --workers 1..%d, --steps >= 1, --lr > 0, --gpus-per-worker >= 0\n", MAX_WORKERS);
        return 2;
    }
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    if (rayc_init(&opts) != 0) {
        fprintf(stderr, "train: %s\n", rayc_last_error());
        return 1;
    }

    /* One bundle per trainer, reserved together. */
    rayc_bundle bundles[MAX_WORKERS];
    memset(bundles, 0, sizeof(bundles));
    for (int i = 0; i < workers; i++) {
        bundles[i].num_cpus = 1;
        bundles[i].num_gpus = gpus;
    }
    rayc_pg pg;
    double t0 = now_s();
    if (rayc_pg_create(bundles, (size_t)workers, strategy, NULL, &pg) != 0 || rayc_pg_wait(&pg, 60000) != 0) {
        fprintf(stderr, "train: placement group: %s\n", rayc_last_error());
        return 1;
    }
    printf("train: %s placement group of %d x {CPU: 1, GPU: %g} reserved in %.0f ms\n", names[strategy], workers,
           gpus, (now_s() - t0) * 1000);

    rayc_actor trainers[MAX_WORKERS];
    for (int i = 0; i < workers; i++) {
        train_setup setup = {i, workers, 20261128};
        rayc_arg arg = RAYC_ARG_VALUE(&setup, sizeof(setup));
        rayc_actor_options o;
        rayc_actor_options_init(&o);
        o.num_cpus = 1;
        o.num_gpus = gpus;
        o.placement_group = &pg;
        o.bundle_index = i;
        if (rayc_actor_create("Trainer", &arg, 1, &o, &trainers[i]) != 0) {
            fprintf(stderr, "train: %s\n", rayc_last_error());
            return 1;
        }
    }
    for (int i = 0; i < workers; i++) {
        rayc_ref ref;
        train_where w;
        rayc_actor_call(&trainers[i], "where", NULL, 0, NULL, &ref);
        if (fetch(&ref, &w, sizeof(w), "where") != 0)
            return 1;
        rayc_ref_release(&ref);
        char node[16];
        for (int k = 0; k < 6; k++)
            snprintf(node + 2 * k, 3, "%02x", w.node_id[k]);
        printf("  trainer %d: node %s, pid %lld, GPUs", i, node, (long long)w.pid);
        for (int g = 0; g < w.n_gpus; g++)
            printf(" %d", w.gpus[g]);
        printf("%s\n", w.n_gpus ? "" : " none");
    }

    float first_loss = -1, last_loss = -1, last_acc = 0;
    t0 = now_s();
    for (int step = 0; step < steps; step++) {
        rayc_ref grads[MAX_WORKERS], stats[MAX_WORKERS];
        for (int i = 0; i < workers; i++)
            rayc_actor_call(&trainers[i], "grad", NULL, 0, NULL, &grads[i]);
        rayc_arg args[MAX_WORKERS + 1];
        args[0] = RAYC_ARG_VALUE(&lr, sizeof(lr));
        for (int i = 0; i < workers; i++)
            args[i + 1] = RAYC_ARG_REF(&grads[i]);
        for (int i = 0; i < workers; i++)
            rayc_actor_call(&trainers[i], "apply", args, (size_t)workers + 1, NULL, &stats[i]);
        float s[2] = {0, 0};
        for (int i = 0; i < workers; i++) {
            if (fetch(&stats[i], s, sizeof(s), "apply") != 0)
                return 1;
            rayc_ref_release(&stats[i]);
            rayc_ref_release(&grads[i]);
        }
        if (first_loss < 0)
            first_loss = s[0];
        last_loss = s[0];
        last_acc = s[1];
        if (step % 5 == 0 || step + 1 == steps)
            printf("  step %3d: loss %.4f, held-out accuracy %.3f\n", step, s[0], s[1]);
    }
    double secs = now_s() - t0;
    /* Every replica applied the same averaged gradients: their weights must be identical. */
    uint64_t sums[MAX_WORKERS];
    int agree = 1;
    for (int i = 0; i < workers; i++) {
        rayc_ref ref;
        rayc_actor_call(&trainers[i], "checksum", NULL, 0, NULL, &ref);
        if (fetch(&ref, &sums[i], sizeof(sums[i]), "checksum") != 0)
            return 1;
        rayc_ref_release(&ref);
        agree &= sums[i] == sums[0];
    }
    printf("train: %d steps in %.2f s (%.1f steps/s, %d gradients of %zu KiB per step); loss %.4f -> %.4f, "
           "held-out accuracy %.3f, replicas %s\n",
           steps, secs, steps / secs, workers, sizeof(train_grad) / 1024, first_loss, last_loss, last_acc,
           agree ? "identical" : "DIFFER");
    for (int i = 0; i < workers; i++)
        rayc_actor_release(&trainers[i]);
    rayc_pg_remove(&pg);
    rayc_shutdown();
    if (!agree || !(last_loss < first_loss * 0.8f)) {
        fprintf(stderr, "train: %s\n", agree ? "the loss did not fall" : "the replicas disagree");
        return 1;
    }
    return 0;
}
