/*
 * Hyperparameter sweep, the remote half: train_eval trains a logistic-regression model with
 * SGD on a generated data set for one (learning rate, L2) pair and reports its validation
 * loss and accuracy. Loaded by workers from the code search path.
 *
 * The data set is the same on every node (generated from a fixed seed), so trials differ
 * only in their hyperparameters.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rayc.h"
#include "sweep.h"

enum { FEATURES = 32, TRAIN = 4000, VALID = 1000 };

static uint64_t next_rand(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return (double)(next_rand(s) >> 11) / 9007199254740992.0;
}

/* Points around a hidden linear boundary with label noise. */
static void make_data(float *x, int *y, int n, uint64_t seed)
{
    uint64_t s = 12345;
    double w[FEATURES];
    for (int j = 0; j < FEATURES; j++)
        w[j] = uniform(&s) * 2 - 1;
    s = seed;
    for (int i = 0; i < n; i++) {
        double dot = 0;
        for (int j = 0; j < FEATURES; j++) {
            x[i * FEATURES + j] = (float)(uniform(&s) * 2 - 1);
            dot += w[j] * x[i * FEATURES + j];
        }
        y[i] = (dot + (uniform(&s) - 0.5) * 0.6) > 0;
    }
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static int train_eval(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    sweep_trial trial;
    if (nargs != 1 || args[0].size != sizeof(trial))
        return rayc_task_fail(ctx, "train_eval takes one sweep_trial");
    memcpy(&trial, args[0].data, sizeof(trial));
    float *x = malloc(sizeof(float) * FEATURES * (TRAIN + VALID));
    int *y = malloc(sizeof(int) * (TRAIN + VALID));
    if (!x || !y) {
        free(x);
        free(y);
        return rayc_task_fail(ctx, "out of memory");
    }
    make_data(x, y, TRAIN + VALID, 777);
    double w[FEATURES] = {0}, b = 0;
    uint64_t s = trial.seed;
    for (int epoch = 0; epoch < trial.epochs; epoch++) {
        for (int step = 0; step < TRAIN; step++) {
            int i = (int)(next_rand(&s) % TRAIN);
            const float *xi = &x[i * FEATURES];
            double z = b;
            for (int j = 0; j < FEATURES; j++)
                z += w[j] * xi[j];
            double g = sigmoid(z) - y[i];
            for (int j = 0; j < FEATURES; j++)
                w[j] -= trial.learning_rate * (g * xi[j] + trial.l2 * w[j]);
            b -= trial.learning_rate * g;
        }
    }
    sweep_result r;
    memset(&r, 0, sizeof(r));
    r.trial = trial;
    int correct = 0;
    double loss = 0;
    for (int i = TRAIN; i < TRAIN + VALID; i++) {
        const float *xi = &x[i * FEATURES];
        double z = b;
        for (int j = 0; j < FEATURES; j++)
            z += w[j] * xi[j];
        double p = sigmoid(z);
        loss += -(y[i] ? log(p + 1e-12) : log(1 - p + 1e-12));
        correct += (p > 0.5) == y[i];
    }
    r.val_loss = loss / VALID;
    r.accuracy = (double)correct / VALID;
    rayc_runtime_context rc;
    rayc_get_runtime_context(&rc);
    memcpy(r.node_id, rc.node_id, sizeof(r.node_id));
    r.n_gpus = rayc_get_gpu_ids(r.gpu_ids, 8);
    free(x);
    free(y);
    return rayc_return(ctx, 0, &r, sizeof(r));
}
RAYC_REMOTE(train_eval)
