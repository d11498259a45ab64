"""Evolution strategies on a numpy CartPole, with rollout actors that survive a kill.

The driver is the learner: each iteration it sends the current policy parameters and a
list of noise seeds to RolloutWorker actors (default 3), which evaluate the antithetic
perturbations theta +/- sigma * eps (eps drawn from each seed) on 200-step CartPole
episodes and return the scores; the driver rebuilds eps from the seeds and steps theta
along the rank-weighted noise. The workers also score theta itself; training stops when
that mean score reaches the threshold (195 of 200). At one iteration the driver kills a
worker while its call is in flight (ray.kill(a, no_restart=False)): the actor has
max_restarts=1, so it comes back, and max_task_retries=1 re-runs the lost call on it;
the rollouts are deterministic in their seeds, so the run goes on as if nothing happened.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/rl_rollouts.py [--small] [--address ADDR]

Only Ray's public API is used: the script runs unchanged on Ray.
"""

import argparse
import os
import time

import numpy as np

import ray


class CartPole:
    """The classic cart-pole (Barto, Sutton & Anderson 1983), as in Gym's CartPole-v1."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_limit = 12 * 2 * np.pi / 360
    x_limit = 2.4

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.state = None

    def reset(self):
        self.state = self.rng.uniform(-0.05, 0.05, 4)
        return self.state

    def step(self, action):
        x, x_dot, th, th_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        total_mass = self.masscart + self.masspole
        pole_ml = self.masspole * self.length
        cos, sin = np.cos(th), np.sin(th)
        temp = (force + pole_ml * th_dot * th_dot * sin) / total_mass
        th_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos * cos / total_mass))
        x_acc = temp - pole_ml * th_acc * cos / total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * x_acc
        th = th + self.tau * th_dot
        th_dot = th_dot + self.tau * th_acc
        self.state = np.array([x, x_dot, th, th_dot])
        done = abs(x) > self.x_limit or abs(th) > self.theta_limit
        return self.state, 1.0, done


def policy_action(params, obs):
    """A linear policy (as in augmented random search): push right when w.obs + b > 0."""
    return 1 if params[:4] @ obs + params[4] > 0 else 0


NUM_PARAMS = 5


def episode(params, seed, max_steps):
    env = CartPole(seed)
    obs = env.reset()
    score = 0.0
    for _ in range(max_steps):
        obs, reward, done = env.step(policy_action(params, obs))
        score += reward
        if done:
            break
    return score


def noise(seed):
    return np.random.default_rng(seed).standard_normal(NUM_PARAMS)


@ray.remote(num_cpus=0.5, max_restarts=1, max_task_retries=1)
class RolloutWorker:
    def __init__(self, max_steps, episodes):
        self.max_steps = max_steps
        self.episodes = episodes
        self.pid = os.getpid()

    def ready(self):
        return self.pid

    def evaluate(self, theta, seeds, sigma, iteration):
        """The scores of theta + sigma*eps and theta - sigma*eps for eps of each seed."""
        out = []
        for s in seeds:
            eps = noise(s)
            env_seeds = [iteration * 100000 + s * 10 + e for e in range(self.episodes)]
            pos = np.mean([episode(theta + sigma * eps, k, self.max_steps) for k in env_seeds])
            neg = np.mean([episode(theta - sigma * eps, k, self.max_steps) for k in env_seeds])
            out.append((pos, neg))
        return np.array(out), self.pid

    def score(self, theta, seeds):
        """The mean score of theta itself over episodes started from the given seeds."""
        return float(np.mean([episode(theta, s, self.max_steps) for s in seeds]))


def centered_ranks(x):
    ranks = np.empty(x.size)
    ranks[x.ravel().argsort()] = np.arange(x.size)
    return (ranks / (x.size - 1) - 0.5).reshape(x.shape)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="cluster to join (default: this host's, else a new local one)")
    parser.add_argument("--small", action="store_true", help="a quick run (for tests)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--population", type=int, default=24, help="antithetic pairs per iteration")
    parser.add_argument("--max-steps", type=int, default=200, help="episode length")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--iterations", type=int, default=None, help="give up after this many")
    parser.add_argument("--kill-at", type=int, default=5, help="iteration at which a worker is killed")
    parser.add_argument("--chunk", type=int, default=1, help="antithetic pairs per call")
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    max_steps = args.max_steps
    threshold = args.threshold or (150.0 if args.small else 195.0)
    iterations = args.iterations or (40 if args.small else 60)
    population = args.population if not args.small else min(args.population, 12)

    start = time.time()
    ray.init(address=args.address)
    workers = [RolloutWorker.remote(max_steps, 2) for _ in range(args.workers)]
    pids = ray.get([w.ready.remote() for w in workers])
    print(f"{args.workers} rollout workers up (pids {pids}); {population} antithetic pairs per iteration, "
          f"{max_steps}-step episodes, threshold {threshold}")

    rng = np.random.default_rng(0)
    theta = np.zeros(NUM_PARAMS)
    progression = []
    killed_pid = None
    retried = 0
    reached = False
    for it in range(1, iterations + 1):
        theta_ref = ray.put(theta)
        seeds = rng.integers(0, 2**31 - 1, population)
        # Small calls (--chunk pairs each), dealt round-robin: each worker has a queue of them.
        chunks = [[int(s) for s in seeds[i:i + args.chunk]] for i in range(0, population, args.chunk)]
        owners = [j % len(workers) for j in range(len(chunks))]
        refs = [workers[o].evaluate.remote(theta_ref, c, args.sigma, it) for o, c in zip(owners, chunks)]
        eval_seeds = [10**9 + it * 100 + k for k in range(10)]
        score_refs = [w.score.remote(theta_ref, eval_seeds[i::len(workers)]) for i, w in enumerate(workers)]
        victim_refs = [r for r, o in zip(refs, owners) if o == len(workers) - 1]
        if it == args.kill_at:
            # Once the victim has finished its first call, kill it: its other calls are in
            # flight, and max_task_retries=1 re-runs them on the restarted actor.
            ray.wait(victim_refs[:1])
            killed_pid = pids[-1]
            ray.kill(workers[-1], no_restart=False)
            print(f"iteration {it}: killed rollout worker {len(workers) - 1} (pid {killed_pid}) with "
                  f"{len(victim_refs) - 1} of its calls in flight")
        results = ray.get(refs)
        scores = np.concatenate([r[0] for r in results])
        if it == args.kill_at:
            new_pids = {p for _, p in results if p not in pids}
            retried = sum(1 for _, p in results if p in new_pids)
            print(f"  {retried} calls were retried on the restarted actor (pid {sorted(new_pids)}); "
                  f"all {len(scores)} perturbations scored")
            pids[-1] = next(iter(new_pids), pids[-1])
        # The score of theta (before this update), averaged over 10 episodes.
        score = float(np.mean([s for s in ray.get(score_refs)]))
        progression.append(score)
        print(f"iteration {it:3d}: score {score:6.1f}  perturbations mean {scores.mean():6.1f} max {scores.max():6.1f}")
        if score >= threshold:
            reached = True
            break
        weights = centered_ranks(scores)
        eps = np.array([noise(int(s)) for s in seeds])
        grad = ((weights[:, 0] - weights[:, 1])[:, None] * eps).sum(0) / (2 * population * args.sigma)
        theta = theta + args.lr * grad

    print("score progression: " + " ".join(f"{s:.0f}" for s in progression))
    print(f"rl_rollouts: iterations={len(progression)} final_score={progression[-1]:.1f} threshold={threshold:.0f} "
          f"reached={reached} worker_killed={killed_pid is not None} retried_calls={retried} "
          f"time={time.time() - start:.1f}s")
    ray.shutdown()
    if not reached:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
