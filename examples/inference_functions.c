/*
 * Batch inference, the remote half: score_shard runs a small fixed two-layer network over a
 * shard of inputs and returns one predicted class per input. The model's weights come as an
 * object reference (put once by the driver, read zero-copy from each node's shared memory);
 * the shard is generated from its index so the driver only sends a few bytes per task.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inference.h"
#include "rayc.h"

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int score_shard(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    if (nargs != 2 || args[0].size != sizeof(inference_model) || args[1].size != sizeof(inference_shard))
        return rayc_task_fail(ctx, "score_shard takes (model, shard)");
    const inference_model *m = args[0].data;
    inference_shard shard;
    memcpy(&shard, args[1].data, sizeof(shard));
    if (shard.count <= 0 || shard.count > INFERENCE_MAX_SHARD)
        return rayc_task_fail(ctx, "shard %d has %d inputs", shard.index, shard.count);
    inference_predictions out;
    memset(&out, 0, sizeof(out));
    out.index = shard.index;
    out.count = shard.count;
    for (int n = 0; n < shard.count; n++) {
        float x[INFERENCE_IN], h[INFERENCE_HIDDEN];
        uint64_t s = ((uint64_t)shard.index << 20) + (uint64_t)n;
        for (int i = 0; i < INFERENCE_IN; i++)
            x[i] = (float)((mix(s * 131 + (uint64_t)i) >> 11) / 9007199254740992.0) * 2 - 1;
        for (int j = 0; j < INFERENCE_HIDDEN; j++) {
            float z = m->b1[j];
            for (int i = 0; i < INFERENCE_IN; i++)
                z += m->w1[j][i] * x[i];
            h[j] = z > 0 ? z : 0;
        }
        int best = 0;
        float best_z = -1e30f;
        for (int k = 0; k < INFERENCE_CLASSES; k++) {
            float z = m->b2[k];
            for (int j = 0; j < INFERENCE_HIDDEN; j++)
                z += m->w2[k][j] * h[j];
            if (z > best_z) {
                best_z = z;
                best = k;
            }
        }
        out.label[n] = (uint8_t)best;
    }
    return rayc_return(ctx, 0, &out, sizeof(out));
}
RAYC_REMOTE(score_shard)

/* ---- the actor pool variant ------------------------------------------------------------- */

/* A Scorer loads the model once (its constructor argument) and scores shards with it: the
 * weights are read once per actor instead of once per task. */
typedef struct scorer {
    inference_model model;
    int64_t shards;
} scorer;

static void *scorer_create(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    if (nargs != 1 || args[0].size != sizeof(inference_model)) {
        rayc_task_fail(ctx, "Scorer takes the model");
        return NULL;
    }
    scorer *s = malloc(sizeof(*s));
    if (!s) {
        rayc_task_fail(ctx, "no memory for the model");
        return NULL;
    }
    memcpy(&s->model, args[0].data, sizeof(s->model));
    s->shards = 0;
    return s;
}

static void scorer_destroy(void *self)
{
    free(self);
}

static int scorer_score(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    scorer *s = self;
    if (nargs != 1)
        return rayc_task_fail(ctx, "score takes a shard");
    rayc_object in[2] = {{RAYC_OK, &s->model, sizeof(s->model), NULL, NULL}, args[0]};
    s->shards++;
    return score_shard(ctx, in, 2);
}

static const rayc_actor_method scorer_methods[] = {{"score", scorer_score}, {NULL, NULL}};
static const rayc_actor_class Scorer = {"Scorer", scorer_create, scorer_destroy, scorer_methods};
RAYC_ACTOR_CLASS(Scorer)
