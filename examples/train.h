/* Data-parallel training's shapes: the model size, the shard each trainer holds, what a
 * gradient carries. */
#ifndef RAYC_EXAMPLES_TRAIN_H
#define RAYC_EXAMPLES_TRAIN_H

#include <stdint.h>

/* 32768 weights: a gradient is 128 KiB, above the inline limit, so gradients travel
 * through the object store (shared memory on a node, pulled across nodes). */
enum { TRAIN_DIM = 32768, TRAIN_SAMPLES = 192, TRAIN_HELD_OUT = 64 };

typedef struct train_setup {
    int32_t rank, world_size;
    uint64_t seed; /* the data set (same for every trainer; each takes its rank's shard) */
} train_setup;

/* A gradient: TRAIN_DIM floats, then the trainer's loss at the weights it was taken at. */
typedef struct train_grad {
    float g[TRAIN_DIM];
    float loss;
    float accuracy; /* on held-out samples */
} train_grad;

typedef struct train_where {
    int64_t pid;
    uint8_t node_id[28];
    int32_t n_gpus;
    int32_t gpus[4];
} train_where;

#endif
