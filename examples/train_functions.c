/*
 * Data-parallel training, the actor half: a Trainer holds one shard of a synthetic
 * classification data set and a replica of the model (logistic regression over TRAIN_DIM
 * features). Each step every trainer computes its gradient (grad), then every trainer
 * receives every gradient by reference, averages them and applies the same update (apply),
 * so the replicas stay identical without a parameter server: an all-reduce through the
 * object store.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rayc.h"
#include "train.h"

typedef struct trainer {
    train_setup setup;
    float *x; /* TRAIN_SAMPLES x TRAIN_DIM, then TRAIN_HELD_OUT held-out samples */
    float y[TRAIN_SAMPLES + TRAIN_HELD_OUT];
    float w[TRAIN_DIM];
    int steps;
} trainer;

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float uniform(uint64_t key)
{
    return (float)((mix(key) >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

/* The data: each sample is a point u in a 16-dimensional latent space seen through a fixed
 * random projection into TRAIN_DIM features (plus a little noise), labelled by the sign of
 * a hidden linear rule on u, 5% flipped. The model sees only the features: it has to find
 * the rule through the projection, and held-out samples tell whether it did. */
enum { LATENT = 16 };

static void *trainer_create(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    if (nargs != 1 || args[0].size != sizeof(train_setup)) {
        rayc_task_fail(ctx, "Trainer takes a train_setup");
        return NULL;
    }
    trainer *t = calloc(1, sizeof(*t));
    t->x = malloc(sizeof(float) * (TRAIN_SAMPLES + TRAIN_HELD_OUT) * TRAIN_DIM);
    if (!t->x) {
        free(t);
        rayc_task_fail(ctx, "no memory for the shard");
        return NULL;
    }
    memcpy(&t->setup, args[0].data, sizeof(t->setup));
    float *proj = malloc(sizeof(float) * TRAIN_DIM * LATENT);
    for (size_t k = 0; k < (size_t)TRAIN_DIM * LATENT; k++)
        proj[k] = uniform(t->setup.seed * 104729 + k);
    float rule[LATENT];
    for (int k = 0; k < LATENT; k++)
        rule[k] = uniform(t->setup.seed * 7919 + (uint64_t)k);
    for (int i = 0; i < TRAIN_SAMPLES + TRAIN_HELD_OUT; i++) {
        /* Training samples are the rank's shard; held-out ones come after every shard. */
        uint64_t sample = i < TRAIN_SAMPLES ? (uint64_t)t->setup.rank * TRAIN_SAMPLES + (uint64_t)i
                                            : (uint64_t)t->setup.world_size * TRAIN_SAMPLES +
                                                  (uint64_t)t->setup.rank * TRAIN_HELD_OUT + (uint64_t)(i - TRAIN_SAMPLES);
        float u[LATENT];
        double z = 0;
        for (int k = 0; k < LATENT; k++) {
            u[k] = uniform((t->setup.seed << 40) ^ (sample * LATENT + (uint64_t)k));
            z += (double)rule[k] * u[k];
        }
        float *xi = t->x + (size_t)i * TRAIN_DIM;
        for (int j = 0; j < TRAIN_DIM; j++) {
            const float *pj = proj + (size_t)j * LATENT;
            float v = 0.1f * uniform((t->setup.seed << 20) ^ (sample * TRAIN_DIM + (uint64_t)j));
            for (int k = 0; k < LATENT; k++)
                v += pj[k] * u[k];
            xi[j] = v / 4;
        }
        int flip = mix(sample * 31 + t->setup.seed) % 20 == 0;
        t->y[i] = (z > 0) != flip ? 1.0f : 0.0f;
    }
    free(proj);
    return t;
}

static void trainer_destroy(void *self)
{
    trainer *t = self;
    free(t->x);
    free(t);
}

/* grad(): the gradient of the mean logistic loss on this shard at the current weights,
 * with the loss and the accuracy on this trainer's held-out samples. */
static int trainer_grad(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    trainer *t = self;
    train_grad *g = calloc(1, sizeof(*g));
    double loss = 0;
    int correct = 0;
    for (int i = 0; i < TRAIN_SAMPLES; i++) {
        const float *xi = t->x + (size_t)i * TRAIN_DIM;
        double z = 0;
        for (int j = 0; j < TRAIN_DIM; j++)
            z += (double)t->w[j] * xi[j];
        double p = 1.0 / (1.0 + exp(-z));
        loss += t->y[i] > 0.5f ? -log(p + 1e-12) : -log(1 - p + 1e-12);
        float d = (float)(p - t->y[i]) / TRAIN_SAMPLES;
        for (int j = 0; j < TRAIN_DIM; j++)
            g->g[j] += d * xi[j];
    }
    for (int i = TRAIN_SAMPLES; i < TRAIN_SAMPLES + TRAIN_HELD_OUT; i++) {
        const float *xi = t->x + (size_t)i * TRAIN_DIM;
        double z = 0;
        for (int j = 0; j < TRAIN_DIM; j++)
            z += (double)t->w[j] * xi[j];
        correct += (z > 0) == (t->y[i] > 0.5f);
    }
    g->loss = (float)(loss / TRAIN_SAMPLES);
    g->accuracy = (float)correct / TRAIN_HELD_OUT;
    int rc = rayc_return(ctx, 0, g, sizeof(*g));
    free(g);
    return rc;
}

/* apply(lr, grad_0, ..., grad_{n-1}): averages the gradients (read zero-copy from the
 * node's object store) and steps; returns {mean loss, mean accuracy} at the old weights. */
static int trainer_apply(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    trainer *t = self;
    if (nargs < 2 || args[0].size != sizeof(float))
        return rayc_task_fail(ctx, "apply takes a learning rate and the gradients");
    float lr;
    memcpy(&lr, args[0].data, sizeof(lr));
    size_t n = nargs - 1;
    float stats[2] = {0, 0};
    for (size_t k = 1; k < nargs; k++) {
        if (args[k].size != sizeof(train_grad))
            return rayc_task_fail(ctx, "gradient %zu holds %zu bytes", k - 1, args[k].size);
        const train_grad *g = args[k].data;
        for (int j = 0; j < TRAIN_DIM; j++)
            t->w[j] -= lr * g->g[j] / (float)n;
        stats[0] += g->loss / (float)n;
        stats[1] += g->accuracy / (float)n;
    }
    t->steps++;
    return rayc_return(ctx, 0, stats, sizeof(stats));
}

/* checksum(): a digest of the weights (every replica must agree). */
static int trainer_checksum(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    trainer *t = self;
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *p = (const uint8_t *)t->w;
    for (size_t i = 0; i < sizeof(t->w); i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return rayc_return(ctx, 0, &h, sizeof(h));
}

static int trainer_where(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    (void)self;
    (void)args;
    (void)nargs;
    train_where w;
    memset(&w, 0, sizeof(w));
    w.pid = getpid();
    rayc_runtime_context rc;
    rayc_get_runtime_context(&rc);
    memcpy(w.node_id, rc.node_id, sizeof(w.node_id));
    int ids[4];
    w.n_gpus = rayc_get_gpu_ids(ids, 4);
    for (int i = 0; i < w.n_gpus && i < 4; i++)
        w.gpus[i] = ids[i];
    return rayc_return(ctx, 0, &w, sizeof(w));
}

static const rayc_actor_method trainer_methods[] = {
    {"grad", trainer_grad},
    {"apply", trainer_apply},
    {"checksum", trainer_checksum},
    {"where", trainer_where},
    {NULL, NULL},
};

static const rayc_actor_class Trainer = {"Trainer", trainer_create, trainer_destroy, trainer_methods};
RAYC_ACTOR_CLASS(Trainer)
