"""Data-parallel training with torch.distributed (gloo) on trainer actors, with a fault.

N Trainer actors (default 2) are gang-scheduled in a PACK placement group (one {"CPU": 1}
bundle each) and form a gloo process group: the first trainer picks a free port on its
node's IP and the others rendezvous there. They train an MLP wrapped in
DistributedDataParallel on a synthetic classification task, each on its own shard. Every
K steps the driver asks trainer 0 for its state (model and optimizer state_dicts) and
keeps that ObjectRef: the checkpoint lives in the object store. Midway the driver kills
one trainer (ray.kill(..., no_restart=False); the actors have max_restarts=1), then tears
the process group down on every trainer, forms a new one (a new rendezvous port), restores
every trainer from the last checkpoint and trains on to the end. At the end it checks that
every replica holds the same parameters.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/train_ddp.py [--small] [--address ADDR]

Only Ray's public API is used: the script runs unchanged on Ray.
"""

import argparse
import datetime
import os
import socket
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

NUM_FEATURES = 20
NUM_CLASSES = 3
SHARD_ROWS = 4096
BATCH = 64


def make_model():
    torch.manual_seed(0)  # every replica starts from the same weights
    return nn.Sequential(nn.Linear(NUM_FEATURES, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                         nn.Linear(64, NUM_CLASSES))


def make_shard(rank):
    """This rank's shard of a synthetic 3-class problem (Gaussian blobs of varying spread)."""
    centers = np.random.default_rng(7).standard_normal((NUM_CLASSES, NUM_FEATURES)).astype(np.float32)
    rng = np.random.default_rng(100 + rank)
    y = rng.integers(0, NUM_CLASSES, SHARD_ROWS)
    x = centers[y] + 2.0 * rng.standard_normal((SHARD_ROWS, NUM_FEATURES)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


@ray.remote(num_cpus=1, max_restarts=1)
class Trainer:
    def __init__(self, rank, world_size):
        torch.set_num_threads(1)
        self.rank = rank
        self.world_size = world_size
        self.x, self.y = make_shard(rank)
        self.ddp = None
        self.opt = None
        self.step = 0

    def node(self):
        return ray.get_runtime_context().get_node_id()[:8], os.getpid()

    def rendezvous_address(self):
        """A free port on this node's IP, for the group's TCP store (called on rank 0)."""
        ip = ray.util.get_node_ip_address()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
            return ip, s.getsockname()[1]

    def setup(self, ip, port, timeout_s):
        """Joins the process group at ip:port and wraps a fresh model in DDP."""
        dist.init_process_group("gloo", init_method=f"tcp://{ip}:{port}", rank=self.rank,
                                world_size=self.world_size, timeout=datetime.timedelta(seconds=timeout_s))
        self.ddp = nn.parallel.DistributedDataParallel(make_model())
        self.opt = torch.optim.SGD(self.ddp.parameters(), lr=0.05, momentum=0.9)
        self.step = 0
        return self.rank

    def teardown(self):
        """Leaves the process group (a no-op in a trainer that has none)."""
        if dist.is_initialized():
            dist.destroy_process_group()
        self.ddp = None
        self.opt = None
        return self.rank

    def train(self, steps):
        """Runs `steps` synchronous steps; returns the loss of each (averaged over ranks)."""
        losses = []
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(steps):
            g = torch.Generator().manual_seed(self.step * 1000 + self.rank)  # replayable batches
            idx = torch.randint(0, SHARD_ROWS, (BATCH,), generator=g)
            self.opt.zero_grad()
            loss = loss_fn(self.ddp(self.x[idx]), self.y[idx])
            loss.backward()  # DDP all-reduces the gradients here
            self.opt.step()
            mean = loss.detach().clone()
            dist.all_reduce(mean)
            losses.append(mean.item() / self.world_size)
            self.step += 1
        return losses

    def checkpoint(self):
        return {"step": self.step, "model": self.ddp.module.state_dict(), "optimizer": self.opt.state_dict()}

    def restore(self, ckpt):
        self.ddp.module.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.step = ckpt["step"]
        return self.step

    def parameters(self):
        return torch.cat([p.detach().flatten() for p in self.ddp.module.parameters()]).numpy()


def form_group(trainers, timeout_s):
    """Rank 0 reports a rendezvous address; every trainer joins the new group there."""
    ip, port = ray.get(trainers[0].rendezvous_address.remote())
    ray.get([t.setup.remote(ip, port, timeout_s) for t in trainers])
    return f"{ip}:{port}"


def wait_alive(actor, deadline_s=60):
    """Waits until the actor answers (a killed actor with restarts left comes back)."""
    end = time.time() + deadline_s
    while True:
        try:
            return ray.get(actor.node.remote(), timeout=10)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            if time.time() > end:
                raise
            time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="cluster to join (default: this host's, else a new local one)")
    parser.add_argument("--small", action="store_true", help="a quick run (for tests)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None, help="K: steps between checkpoints")
    parser.add_argument("--kill-at", type=int, default=None, help="kill a trainer during the round from this step")
    parser.add_argument("--gloo-timeout", type=float, default=60.0)
    args = parser.parse_args()
    steps = args.steps or (60 if args.small else 300)
    every = args.checkpoint_every or (10 if args.small else 25)
    kill_at = args.kill_at if args.kill_at is not None else (steps // every // 2) * every

    start = time.time()
    ray.init(address=args.address)
    pg = placement_group([{"CPU": 1}] * args.workers, strategy="PACK")
    ray.get(pg.ready(), timeout=120)
    trainers = [
        Trainer.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            placement_group=pg, placement_group_bundle_index=i)).remote(i, args.workers)
        for i in range(args.workers)
    ]
    for i, (node, pid) in enumerate(ray.get([t.node.remote() for t in trainers])):
        print(f"trainer {i}: node {node} pid {pid}")
    print(f"process group formed at {form_group(trainers, args.gloo_timeout)}")

    curve = {}  # step -> mean loss over ranks
    ckpt_ref, ckpt_step = ray.put(ray.get(trainers[0].checkpoint.remote())), 0
    killed = False
    step = 0
    round_s = 0.1
    while step < steps:
        n = min(every, steps - step)
        t0 = time.time()
        refs = [t.train.remote(n) for t in trainers]
        if not killed and step >= kill_at:
            time.sleep(round_s / 2)  # let the round get going, then fail a trainer in the middle of it
            victim = trainers[-1]
            print(f"step {step}: killing trainer {len(trainers) - 1} (ray.kill, no_restart=False)")
            ray.kill(victim, no_restart=False)
            killed = True
            for r in refs:  # the victim's call fails; its peers fail or finish
                try:
                    ray.get(r)
                except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as e:
                    print(f"  round failed as expected: {type(e).__name__}")
            node, pid = wait_alive(victim)
            print(f"  trainer {len(trainers) - 1} restarted: node {node} pid {pid}")
            ray.get([t.teardown.remote() for t in trainers])
            print(f"  new process group formed at {form_group(trainers, args.gloo_timeout)}")
            restored = ray.get([t.restore.remote(ckpt_ref) for t in trainers])
            print(f"  every trainer restored from the checkpoint of step {ckpt_step}: {restored}")
            step = ckpt_step
            curve = {s: v for s, v in curve.items() if s < step}
            continue
        results = ray.get(refs)
        round_s = time.time() - t0
        for i, loss in enumerate(np.mean(results, axis=0)):
            curve[step + i] = float(loss)
        step += n
        # The checkpoint: trainer 0's state, kept in the object store by the driver.
        ckpt_ref, ckpt_step = ray.put(ray.get(trainers[0].checkpoint.remote())), step
        print(f"step {step:4d}: loss {np.mean([curve[s] for s in range(step - n, step)]):.4f} (checkpointed)")

    params = ray.get([t.parameters.remote() for t in trainers])
    identical = all(np.array_equal(params[0], p) for p in params[1:])
    ray.get([t.teardown.remote() for t in trainers])
    losses = [curve[s] for s in range(steps)]
    w = max(1, min(10, steps // 10))
    first, last = float(np.mean(losses[:w])), float(np.mean(losses[-w:]))
    marks = [0, steps // 4, steps // 2, 3 * steps // 4, steps - w]
    print("loss curve: " + ", ".join(f"step {s}: {np.mean(losses[s:s + w]):.3f}" for s in marks))
    print(f"train_ddp: workers={args.workers} steps={steps} loss {first:.4f} -> {last:.4f} "
          f"restarts={int(killed)} replicas identical: {identical} time={time.time() - start:.1f}s")
    for t in trainers:
        ray.kill(t)
    remove_placement_group(pg)
    ray.shutdown()


if __name__ == "__main__":
    main()
