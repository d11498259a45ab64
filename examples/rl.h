/* RL rollouts' shapes: the cart-pole policy and what a rollout worker returns. */
#ifndef RAYC_EXAMPLES_RL_H
#define RAYC_EXAMPLES_RL_H

#include <stdint.h>

/* A linear policy: push right when w . [x, x_dot, theta, theta_dot] + b > 0. */
enum { RL_PARAMS = 5, RL_MAX_PERTURBATIONS = 64, RL_MAX_STEPS = 500 };

/* evaluate's request: score n antithetic pairs of perturbations of params. */
typedef struct rl_request {
    float params[RL_PARAMS];
    float sigma;
    uint64_t seed; /* perturbation k is drawn from (seed, k): the learner redraws it */
    int32_t n;
    int32_t episodes; /* per perturbation */
} rl_request;

typedef struct rl_result {
    int32_t n;
    int32_t env_steps;
    int64_t pid;
    float plus[RL_MAX_PERTURBATIONS], minus[RL_MAX_PERTURBATIONS];
} rl_result;

/* The perturbation (seed, k), shared by workers and learner. */
static inline void rl_noise(uint64_t seed, int k, float out[RL_PARAMS])
{
    for (int i = 0; i < RL_PARAMS; i++) {
        /* Box-Muller over a counter hash: the same numbers on every host. */
        uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)k * 1315423911ULL + (uint64_t)i * 2654435761ULL;
        uint64_t a = z, b = z ^ 0xda942042e4dd58b5ULL;
        a = (a ^ (a >> 31)) * 0x7fb5d329728ea185ULL;
        a = (a ^ (a >> 27)) * 0x81dadef4bc2dd44dULL;
        a ^= a >> 33;
        b = (b ^ (b >> 31)) * 0x7fb5d329728ea185ULL;
        b = (b ^ (b >> 27)) * 0x81dadef4bc2dd44dULL;
        b ^= b >> 33;
        double u1 = ((a >> 11) + 1.0) / 9007199254740993.0, u2 = (b >> 11) / 9007199254740992.0;
        out[i] = (float)(__builtin_sqrt(-2.0 * __builtin_log(u1)) * __builtin_cos(6.283185307179586 * u2));
    }
}

#endif
