/*
 * RL rollouts on a rayc cluster: a learner (this driver) trains a cart-pole policy with
 * evolution strategies. Rollout workers are actors that keep their simulator between calls;
 * every iteration each scores antithetic perturbations of the current policy, and the
 * learner combines the returns into a step. Midway one rollout worker is killed while it
 * works: it restarts (max_restarts) and its call is retried on the new instance
 * (max_task_retries), so the learner never sees the failure.
 *
 *   rl [--workers N] [--iterations N] [--pairs N] [--kill-at I]   (--kill-at -1: no kill)
 *
 * Cluster: RAYC_ADDRESS (else a local one); RAYC_CODE_SEARCH_PATH must name
 * librl_functions.so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rayc.h"
#include "rl.h"

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
        fprintf(stderr, "rl: %s failed: %s\n", what, o.error_message ? o.error_message : "timed out");
        rayc_object_release(&o, 1);
        return -1;
    }
    memcpy(out, o.data, size);
    rayc_object_release(&o, 1);
    return 0;
}

static float score(const rayc_actor *w, const float params[RL_PARAMS])
{
    rayc_arg arg = RAYC_ARG_VALUE(params, sizeof(float) * RL_PARAMS);
    rayc_ref ref;
    float s = -1;
    if (rayc_actor_call(w, "score", &arg, 1, NULL, &ref) == 0)
        fetch(&ref, &s, sizeof(s), "score");
    rayc_ref_release(&ref);
    return s;
}

int main(int argc, char **argv)
{
    int workers = 4, iterations = 30, pairs = 8, kill_at = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--workers"))
            workers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iterations"))
            iterations = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pairs"))
            pairs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kill-at"))
            kill_at = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "rl: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (workers < 1 || workers > MAX_WORKERS || iterations < 1 || pairs < 1 || pairs > RL_MAX_PERTURBATIONS) {
        fprintf(stderr, "rl: --workers 1..%d, --iterations >= 1, --pairs 1..%d\n", MAX_WORKERS,
                RL_MAX_PERTURBATIONS);
        return 2;
    }
    rayc_init_options opts;
    rayc_init_options_init(&opts);
    if (rayc_init(&opts) != 0) {
        fprintf(stderr, "rl: %s\n", rayc_last_error());
        return 1;
    }
    rayc_actor pool[MAX_WORKERS];
    for (int i = 0; i < workers; i++) {
        int64_t index = i;
        rayc_arg arg = RAYC_ARG_VALUE(&index, sizeof(index));
        rayc_actor_options o;
        rayc_actor_options_init(&o);
        o.num_cpus = 1;
        o.max_restarts = -1;     /* a rollout worker that dies comes back ... */
        o.max_task_retries = -1; /* ... and its calls are retried there */
        o.strategy = RAYC_STRATEGY_SPREAD;
        if (rayc_actor_create("RolloutWorker", &arg, 1, &o, &pool[i]) != 0) {
            fprintf(stderr, "rl: %s\n", rayc_last_error());
            return 1;
        }
    }
    float params[RL_PARAMS] = {0};
    const float sigma = 0.5f, alpha = 0.2f;
    float first = score(&pool[0], params), last = first;
    printf("rl: %d rollout workers, %d perturbation pairs each; initial policy scores %.1f\n", workers, pairs, first);
    long env_steps = 0;
    int64_t pids[MAX_WORKERS] = {0};
    int restarted_seen = 0;
    double t0 = now_s();
    for (int it = 0; it < iterations; it++) {
        rayc_ref refs[MAX_WORKERS];
        rl_request reqs[MAX_WORKERS];
        for (int i = 0; i < workers; i++) {
            memcpy(reqs[i].params, params, sizeof(params));
            reqs[i].sigma = sigma;
            reqs[i].seed = (uint64_t)it * 1000 + (uint64_t)i;
            reqs[i].n = pairs;
            reqs[i].episodes = 2;
            rayc_arg arg = RAYC_ARG_VALUE(&reqs[i], sizeof(reqs[i]));
            rayc_actor_call(&pool[i], "evaluate", &arg, 1, NULL, &refs[i]);
        }
        if (it == kill_at && workers > 1) {
            /* A host vanishes under a rollout worker (as on a GPU market). */
            rayc_actor_kill(&pool[1], 0);
            printf("  iteration %d: rollout worker 1 killed while it worked\n", it);
        }
        static rl_result res[MAX_WORKERS];
        double sum = 0, sq = 0;
        int count = 0;
        for (int i = 0; i < workers; i++) {
            if (fetch(&refs[i], &res[i], sizeof(res[i]), "evaluate") != 0)
                return 1;
            rayc_ref_release(&refs[i]);
            env_steps += res[i].env_steps;
            if (pids[i] && pids[i] != res[i].pid) {
                rayc_actor_info info;
                rayc_actor_info_get(&pool[i], &info);
                printf("  iteration %d: rollout worker %d answered from a new process (pid %lld -> %lld, "
                       "restarts %d); its rollouts were retried there\n",
                       it, i, (long long)pids[i], (long long)res[i].pid, info.num_restarts);
                restarted_seen = 1;
            }
            pids[i] = res[i].pid;
            for (int k = 0; k < res[i].n; k++) {
                sum += res[i].plus[k] + res[i].minus[k];
                sq += res[i].plus[k] * res[i].plus[k] + res[i].minus[k] * res[i].minus[k];
                count += 2;
            }
        }
        double mean = sum / count, sd = sqrt(fmax(sq / count - mean * mean, 1e-6));
        /* The ES step: returns standardized, antithetic pairs. */
        float grad[RL_PARAMS] = {0};
        for (int i = 0; i < workers; i++) {
            for (int k = 0; k < res[i].n; k++) {
                float eps[RL_PARAMS];
                rl_noise(reqs[i].seed, k, eps);
                float w = (float)((res[i].plus[k] - res[i].minus[k]) / sd);
                for (int p = 0; p < RL_PARAMS; p++)
                    grad[p] += w * eps[p];
            }
        }
        for (int p = 0; p < RL_PARAMS; p++)
            params[p] += alpha * grad[p] / (float)(count / 2) / (2 * sigma) * sigma;
        if (it % 5 == 4 || it + 1 == iterations) {
            last = score(&pool[0], params);
            printf("  iteration %2d: perturbations return %.1f on average; the policy scores %.1f / %d\n", it, mean,
                   last, RL_MAX_STEPS);
        }
    }
    double secs = now_s() - t0;
    printf("rl: %d iterations in %.2f s, %ld simulator steps (%.0f steps/s); score %.1f -> %.1f\n", iterations, secs,
           env_steps, env_steps / secs, first, last);
    for (int i = 0; i < workers; i++)
        rayc_actor_release(&pool[i]);
    rayc_shutdown();
    if (kill_at >= 0 && kill_at < iterations && workers > 1 && !restarted_seen) {
        fprintf(stderr, "rl: the killed rollout worker was never seen restarted\n");
        return 1;
    }
    if (!(last >= 195)) { /* cart-pole counts as solved at 195 */
        fprintf(stderr, "rl: the policy did not learn to balance the pole\n");
        return 1;
    }
    return 0;
}
