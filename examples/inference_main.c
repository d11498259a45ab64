/*
 * Batch inference on a rayc cluster: the model is put once into the object store, then
 * every shard of the input is scored by a task that reads the model by reference; the
 * predictions are gathered and summarized (inputs per second, class histogram).
 *
 *   batch_inference [--shards N] [--shard-size N]
 *
 * Cluster: RAYC_ADDRESS (else a local one); functions: RAYC_CODE_SEARCH_PATH must name
 * libinference_functions.so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inference.h"
#include "rayc.h"

int main(int argc, char **argv)
{
    int shards = 64, shard_size = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shards"))
            shards = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shard-size"))
            shard_size = atoi(argv[i + 1]);
    }
    if (shards < 1 || shards > 100000 || shard_size < 1 || shard_size > INFERENCE_MAX_SHARD) {
        fprintf(stderr, "batch_inference: --shards 1..100000, --shard-size 1..%d\n", INFERENCE_MAX_SHARD);
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
    rayc_ref *refs = calloc((size_t)shards, sizeof(*refs));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < shards; i++) {
        inference_shard shard = {i, shard_size};
        rayc_arg args[] = {RAYC_ARG_REF(&model_ref), RAYC_ARG_VALUE(&shard, sizeof(shard))};
        if (rayc_submit("score_shard", args, 2, NULL, &refs[i]) != 0) {
            fprintf(stderr, "batch_inference: %s\n", rayc_last_error());
            return 1;
        }
    }
    long histogram[INFERENCE_CLASSES] = {0};
    int failed = 0;
    for (int i = 0; i < shards; i++) {
        rayc_object out;
        rayc_get(&refs[i], 1, -1, &out);
        if (out.error) {
            failed++;
            fprintf(stderr, "batch_inference: shard %d failed: %s\n", i, out.error_message);
        } else {
            const inference_predictions *p = out.data;
            for (int n = 0; n < p->count; n++)
                histogram[p->label[n]]++;
        }
        rayc_object_release(&out, 1);
        rayc_ref_release(&refs[i]);
        if ((i + 1) % 8 == 0 || i + 1 == shards) {
            printf("\rbatch_inference: %d/%d shards scored", i + 1, shards);
            fflush(stdout);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long total = (long)shards * shard_size;
    printf("\nbatch_inference: %ld inputs in %.2f s (%.0f inputs/s), %d shards failed\n", total, secs,
           (double)total / secs, failed);
    printf("  class histogram:");
    for (int k = 0; k < INFERENCE_CLASSES; k++)
        printf(" %d:%ld", k, histogram[k]);
    printf("\n");
    rayc_ref_release(&model_ref);
    free(refs);
    rayc_shutdown();
    return failed ? 1 : 0;
}
