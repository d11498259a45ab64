/*
 * Batch inference on a rayc cluster: the model is put once into the object store, then
 * every shard of the input is scored by a task that reads the model by reference; the
 * predictions are gathered and summarized (inputs per second, class histogram). With
 * --actors N, a pool of N Scorer actors (Ray's ActorPool) loads the model once each and
 * shards go to whichever actor is free, at most two in flight per actor.
 *
 *   batch_inference [--shards N] [--shard-size N] [--actors N]
 *
 * Cluster: RAYC_ADDRESS (else a local one); functions: RAYC_CODE_SEARCH_PATH must name
 * libinference_functions.so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inference.h"
#include "rayc.h"

/* Adds a shard's predictions to the histogram; 1 if the shard failed. */
static int tally(const rayc_object *out, int i, long histogram[INFERENCE_CLASSES])
{
    if (out->error) {
        fprintf(stderr, "batch_inference: shard %d failed: %s\n", i, out->error_message);
        return 1;
    }
    const inference_predictions *p = out->data;
    for (int n = 0; n < p->count; n++)
        histogram[p->label[n]]++;
    return 0;
}

/* Rewritten in place on a terminal; one line per update otherwise (a log file). */
static void progress(int done, int shards)
{
    if (done % 8 == 0 || done == shards) {
        if (isatty(STDOUT_FILENO))
            printf("\rbatch_inference: %d/%d shards scored", done, shards);
        else
            printf("batch_inference: %d/%d shards scored\n", done, shards);
        fflush(stdout);
    }
}

/* Ray's ActorPool.map_unordered: keeps every actor busy (two shards in flight each) and
 * takes results as they come. Returns the number of failed shards, or -1. */
static int run_pool(const rayc_ref *model_ref, int shards, int shard_size, int actors, long histogram[INFERENCE_CLASSES])
{
    enum { DEPTH = 2 };
    rayc_actor *pool = calloc((size_t)actors, sizeof(*pool));
    for (int a = 0; a < actors; a++) {
        rayc_arg arg = RAYC_ARG_REF(model_ref);
        rayc_actor_options o;
        rayc_actor_options_init(&o);
        o.num_cpus = 1;
        o.max_restarts = 1;
        o.max_task_retries = 1;
        if (rayc_actor_create("Scorer", &arg, 1, &o, &pool[a]) != 0) {
            fprintf(stderr, "batch_inference: %s\n", rayc_last_error());
            free(pool);
            return -1;
        }
    }
    size_t slots = (size_t)actors * DEPTH;
    rayc_ref *refs = calloc(slots, sizeof(*refs));
    int *shard_of = calloc(slots, sizeof(*shard_of));
    uint8_t *mask = calloc(slots, 1);
    size_t in_flight = 0;
    int next = 0, done = 0, failed = 0;
    /* Slot s belongs to actor s / DEPTH; a free slot gets the next shard. */
    for (size_t s = 0; s < slots && next < shards; s++) {
        inference_shard shard = {next, shard_size};
        rayc_arg arg = RAYC_ARG_VALUE(&shard, sizeof(shard));
        rayc_actor_call(&pool[s / DEPTH], "score", &arg, 1, NULL, &refs[in_flight]);
        shard_of[in_flight++] = next++;
    }
    int *slot_actor = calloc(slots, sizeof(*slot_actor));
    for (size_t s = 0; s < in_flight; s++)
        slot_actor[s] = (int)(s / DEPTH);
    while (in_flight) {
        memset(mask, 0, slots);
        rayc_wait(refs, in_flight, 1, -1, 0, mask);
        for (size_t s = 0; s < in_flight;) {
            if (!mask[s]) {
                s++;
                continue;
            }
            rayc_object out;
            rayc_get(&refs[s], 1, -1, &out);
            failed += tally(&out, shard_of[s], histogram);
            rayc_object_release(&out, 1);
            rayc_ref_release(&refs[s]);
            progress(++done, shards);
            int actor = slot_actor[s];
            if (next < shards) { /* the actor that finished gets the next shard */
                inference_shard shard = {next, shard_size};
                rayc_arg arg = RAYC_ARG_VALUE(&shard, sizeof(shard));
                rayc_actor_call(&pool[actor], "score", &arg, 1, NULL, &refs[s]);
                shard_of[s] = next++;
                s++;
            } else { /* close the gap */
                in_flight--;
                refs[s] = refs[in_flight];
                shard_of[s] = shard_of[in_flight];
                slot_actor[s] = slot_actor[in_flight];
                mask[s] = mask[in_flight];
            }
        }
    }
    for (int a = 0; a < actors; a++)
        rayc_actor_release(&pool[a]);
    free(pool);
    free(refs);
    free(shard_of);
    free(slot_actor);
    free(mask);
    return failed;
}

int main(int argc, char **argv)
{
    int shards = 64, shard_size = 256, actors = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shards"))
            shards = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shard-size"))
            shard_size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--actors"))
            actors = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "batch_inference: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (shards < 1 || shards > 100000 || shard_size < 1 || shard_size > INFERENCE_MAX_SHARD || actors < 0 ||
        actors > 256) {
        fprintf(stderr, "batch_inference: --shards 1..100000, --shard-size 1..%d, --actors 0..256\n",
                INFERENCE_MAX_SHARD);
        return 2;
    }
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    if (rayc_init(&opts) != 0) {
        fprintf(stderr, "batch_inference: %s\n", rayc_last_error());
        return 1;
    }
    inference_model *model = malloc(sizeof(*model));
    uint64_t s = 42;
    float *w = (float *)model;
    for (size_t i = 0; i < sizeof(*model) / sizeof(float); i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = (float)((s >> 40) / 16777216.0 - 0.5) * 0.2f;
    }
    rayc_ref model_ref;
    if (rayc_put(model, sizeof(*model), &model_ref) != 0) {
        fprintf(stderr, "batch_inference: %s\n", rayc_last_error());
        return 1;
    }
    free(model);
    long histogram[INFERENCE_CLASSES] = {0};
    int failed = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (actors == 0) {
        /* One task per shard. */
        rayc_ref *refs = calloc((size_t)shards, sizeof(*refs));
        for (int i = 0; i < shards; i++) {
            inference_shard shard = {i, shard_size};
            rayc_arg args[] = {RAYC_ARG_REF(&model_ref), RAYC_ARG_VALUE(&shard, sizeof(shard))};
            if (rayc_submit("score_shard", args, 2, NULL, &refs[i]) != 0) {
                fprintf(stderr, "batch_inference: %s\n", rayc_last_error());
                return 1;
            }
        }
        for (int i = 0; i < shards; i++) {
            rayc_object out;
            rayc_get(&refs[i], 1, -1, &out);
            failed += tally(&out, i, histogram);
            rayc_object_release(&out, 1);
            rayc_ref_release(&refs[i]);
            progress(i + 1, shards);
        }
        free(refs);
    } else {
        failed = run_pool(&model_ref, shards, shard_size, actors, histogram);
        if (failed < 0)
            return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long total = (long)shards * shard_size;
    printf("%sbatch_inference: %ld inputs in %.2f s (%.0f inputs/s), %d shards failed\n",
           isatty(STDOUT_FILENO) ? "\n" : "", total, secs, (double)total / secs, failed);
    printf("  class histogram:");
    for (int k = 0; k < INFERENCE_CLASSES; k++)
        printf(" %d:%ld", k, histogram[k]);
    printf("\n");
    rayc_ref_release(&model_ref);
    rayc_shutdown();
    return failed ? 1 : 0;
}
