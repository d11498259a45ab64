/* Batch inference's messages: the model, a shard of inputs, its predictions. */
#ifndef RAYC_EXAMPLES_INFERENCE_H
#define RAYC_EXAMPLES_INFERENCE_H

#include <stdint.h>

enum { INFERENCE_IN = 256, INFERENCE_HIDDEN = 512, INFERENCE_CLASSES = 10, INFERENCE_MAX_SHARD = 512 };

/* About 540 KiB: larger than inline arguments, so it travels through the object store. */
typedef struct inference_model {
    float w1[INFERENCE_HIDDEN][INFERENCE_IN];
    float b1[INFERENCE_HIDDEN];
    float w2[INFERENCE_CLASSES][INFERENCE_HIDDEN];
    float b2[INFERENCE_CLASSES];
} inference_model;

typedef struct inference_shard {
    int32_t index;
    int32_t count;
} inference_shard;

typedef struct inference_predictions {
    int32_t index;
    int32_t count;
    uint8_t label[INFERENCE_MAX_SHARD];
} inference_predictions;

#endif
