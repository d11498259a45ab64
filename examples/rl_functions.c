/*
 * RL rollouts, the actor half: a RolloutWorker owns a cart-pole simulator (the classic
 * control problem: keep a pole upright on a cart by pushing it left or right; the episode
 * ends when the pole leans past 12 degrees, the cart leaves the track, or after 500 steps)
 * and scores perturbed linear policies for an evolution-strategies learner.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rayc.h"
#include "rl.h"

typedef struct cartpole {
    double x, x_dot, theta, theta_dot;
    uint64_t rng;
} cartpole;

static double cp_uniform(cartpole *e)
{
    e->rng = e->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(e->rng >> 11) / 9007199254740992.0;
}

static void cp_reset(cartpole *e)
{
    e->x = cp_uniform(e) * 0.1 - 0.05;
    e->x_dot = cp_uniform(e) * 0.1 - 0.05;
    e->theta = cp_uniform(e) * 0.1 - 0.05;
    e->theta_dot = cp_uniform(e) * 0.1 - 0.05;
}

/* One step of the dynamics (Euler, 20 ms); returns 1 while the episode goes on. */
static int cp_step(cartpole *e, int right)
{
    const double gravity = 9.8, m_cart = 1.0, m_pole = 0.1, half_len = 0.5, force_mag = 10.0, tau = 0.02;
    double force = right ? force_mag : -force_mag;
    double c = cos(e->theta), s = sin(e->theta);
    double total = m_cart + m_pole, pml = m_pole * half_len;
    double temp = (force + pml * e->theta_dot * e->theta_dot * s) / total;
    double theta_acc = (gravity * s - c * temp) / (half_len * (4.0 / 3.0 - m_pole * c * c / total));
    double x_acc = temp - pml * theta_acc * c / total;
    e->x += tau * e->x_dot;
    e->x_dot += tau * x_acc;
    e->theta += tau * e->theta_dot;
    e->theta_dot += tau * theta_acc;
    return fabs(e->x) <= 2.4 && fabs(e->theta) <= 12 * 2 * M_PI / 360;
}

typedef struct rollout_worker {
    cartpole env;
} rollout_worker;

static float episode(rollout_worker *w, const float p[RL_PARAMS], int *steps)
{
    cp_reset(&w->env);
    int t = 0;
    while (t < RL_MAX_STEPS) {
        double a = p[0] * w->env.x + p[1] * w->env.x_dot + p[2] * w->env.theta + p[3] * w->env.theta_dot + p[4];
        t++;
        if (!cp_step(&w->env, a > 0))
            break;
    }
    *steps += t;
    return (float)t;
}

static void *worker_create(rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    int64_t index = 0;
    if (nargs && args[0].size == sizeof(index))
        memcpy(&index, args[0].data, sizeof(index));
    else if (nargs) {
        rayc_task_fail(ctx, "RolloutWorker takes an int64 index");
        return NULL;
    }
    rollout_worker *w = calloc(1, sizeof(*w));
    w->env.rng = 0x5eed0000ULL + (uint64_t)index * 7919 + (uint64_t)getpid();
    return w;
}

static void worker_destroy(void *self)
{
    free(self);
}

/* evaluate(rl_request): returns for each pair k the mean return of params + sigma*eps_k and
 * params - sigma*eps_k. */
static int worker_evaluate(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    rollout_worker *w = self;
    if (nargs != 1 || args[0].size != sizeof(rl_request))
        return rayc_task_fail(ctx, "evaluate takes an rl_request");
    rl_request req;
    memcpy(&req, args[0].data, sizeof(req));
    if (req.n < 1 || req.n > RL_MAX_PERTURBATIONS || req.episodes < 1 || req.episodes > 100)
        return rayc_task_fail(ctx, "evaluate: n must be 1..%d and episodes 1..100", RL_MAX_PERTURBATIONS);
    rl_result r;
    memset(&r, 0, sizeof(r));
    r.n = req.n;
    r.pid = getpid();
    for (int k = 0; k < req.n; k++) {
        float eps[RL_PARAMS], plus[RL_PARAMS], minus[RL_PARAMS];
        rl_noise(req.seed, k, eps);
        for (int i = 0; i < RL_PARAMS; i++) {
            plus[i] = req.params[i] + req.sigma * eps[i];
            minus[i] = req.params[i] - req.sigma * eps[i];
        }
        for (int e = 0; e < req.episodes; e++) {
            r.plus[k] += episode(w, plus, &r.env_steps) / (float)req.episodes;
            r.minus[k] += episode(w, minus, &r.env_steps) / (float)req.episodes;
        }
    }
    return rayc_return(ctx, 0, &r, sizeof(r));
}

/* score(params): the mean return of params over 10 episodes. */
static int worker_score(void *self, rayc_task_ctx *ctx, const rayc_object *args, size_t nargs)
{
    rollout_worker *w = self;
    if (nargs != 1 || args[0].size != sizeof(float) * RL_PARAMS)
        return rayc_task_fail(ctx, "score takes %d floats", RL_PARAMS);
    float p[RL_PARAMS];
    memcpy(p, args[0].data, sizeof(p));
    int steps = 0;
    float total = 0;
    for (int e = 0; e < 10; e++)
        total += episode(w, p, &steps);
    float mean = total / 10;
    return rayc_return(ctx, 0, &mean, sizeof(mean));
}

static const rayc_actor_method worker_methods[] = {
    {"evaluate", worker_evaluate},
    {"score", worker_score},
    {NULL, NULL},
};

static const rayc_actor_class RolloutWorker = {"RolloutWorker", worker_create, worker_destroy, worker_methods};
RAYC_ACTOR_CLASS(RolloutWorker)
