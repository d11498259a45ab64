/* The hyperparameter sweep's messages: a trial to run and its result. */
#ifndef RAYC_EXAMPLES_SWEEP_H
#define RAYC_EXAMPLES_SWEEP_H

#include <stdint.h>

typedef struct sweep_trial {
    double learning_rate;
    double l2;
    uint64_t seed;
    int32_t epochs;
    int32_t index;
} sweep_trial;

typedef struct sweep_result {
    sweep_trial trial;
    double val_loss;
    double accuracy;
    uint8_t node_id[28];
    int32_t n_gpus;
    int32_t gpu_ids[8];
} sweep_result;

#endif
