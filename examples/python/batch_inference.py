"""Batch inference with an ActorPool of model replicas.

The driver trains a small PyTorch MLP on a synthetic 4-class problem for a few epochs,
puts its weights in the object store once, and starts a pool of Replica actors that each
build the model from those weights once. The test set is cut into shards (each put in
the object store) and scored through ray.util.ActorPool; the driver checks the
predictions against the labels it kept and reports accuracy and throughput.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/batch_inference.py [--small] [--address ADDR]

Only Ray's public API is used: the script runs unchanged on Ray.
"""

import argparse
import collections
import time

import numpy as np
import torch
import torch.nn as nn

import ray
from ray.util import ActorPool

NUM_FEATURES = 16
NUM_CLASSES = 4


def make_model():
    return nn.Sequential(
        nn.Linear(NUM_FEATURES, 64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, NUM_CLASSES),
    )


def make_data(n, seed):
    """A synthetic, nonlinearly separable 4-class problem: the class is given by the
    signs of two fixed random projections of the features (with a little label noise)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, NUM_FEATURES)).astype(np.float32)
    proj = np.random.default_rng(1234).standard_normal((NUM_FEATURES, 2)).astype(np.float32)
    z = x @ proj
    y = (z[:, 0] > 0).astype(np.int64) * 2 + (z[:, 1] * z[:, 0] > 0).astype(np.int64)
    flip = rng.random(n) < 0.02
    y[flip] = rng.integers(0, NUM_CLASSES, flip.sum())
    return x, y


def train(epochs, n_train):
    """Trains the model in the driver; returns its state_dict and training accuracy."""
    torch.manual_seed(0)
    x, y = make_data(n_train, seed=1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        perm = torch.randperm(n_train)
        for i in range(0, n_train, 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, acc, loss.item()


@ray.remote(num_cpus=1)
class Replica:
    """One model replica: builds the model from the weights once, then scores shards."""

    def __init__(self, state_dict):
        torch.set_num_threads(1)
        self.model = make_model()
        self.model.load_state_dict(state_dict)
        self.model.eval()
        self.node_id = ray.get_runtime_context().get_node_id()[:8]
        self.rows = 0

    def predict(self, shard_index, features):
        with torch.no_grad():
            preds = self.model(torch.tensor(features)).argmax(1).numpy().astype(np.int8)
        self.rows += len(features)
        return shard_index, preds, self.node_id

    def ready(self):
        return self.node_id


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="cluster to join (default: this host's, else a new local one)")
    parser.add_argument("--small", action="store_true", help="a quick run (for tests)")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--shard-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    shards = args.shards or (8 if args.small else 40)
    shard_size = args.shard_size or (5000 if args.small else 20000)
    epochs = args.epochs or (8 if args.small else 10)

    start = time.time()
    ray.init(address=args.address)
    torch.set_num_threads(1)  # small matrices: one thread is fastest, and fair to the workers

    t0 = time.time()
    state, train_acc, last_loss = train(epochs, n_train=4000 if args.small else 8000)
    print(f"trained MLP in the driver: {epochs} epochs, {time.time() - t0:.1f}s, "
          f"train accuracy {train_acc:.3f}, last batch loss {last_loss:.3f}")

    model_ref = ray.put(state)  # the weights, once in the object store
    replicas = [Replica.remote(model_ref) for _ in range(args.replicas)]
    pool = ActorPool(replicas)

    x, y = make_data(shards * shard_size, seed=2)
    shard_refs = [ray.put(x[i * shard_size:(i + 1) * shard_size]) for i in range(shards)]
    ray.get([r.ready.remote() for r in replicas])  # replicas up: time only scoring

    t0 = time.time()
    preds = [None] * shards
    per_node = collections.Counter()
    for shard_index, p, node in pool.map_unordered(lambda a, v: a.predict.remote(v[0], v[1]),
                                                   list(enumerate(shard_refs))):
        preds[shard_index] = p
        per_node[node] += len(p)
    elapsed = time.time() - t0

    pred = np.concatenate(preds)
    accuracy = float((pred == y).mean())
    rows = len(pred)
    for node, n in sorted(per_node.items()):
        print(f"  node {node}: {n} rows")
    print(f"batch_inference: replicas={args.replicas} shards={shards} rows={rows} accuracy={accuracy:.4f} "
          f"throughput={rows / elapsed:.0f} rows/s scoring={elapsed:.2f}s total={time.time() - start:.1f}s")
    ray.shutdown()


if __name__ == "__main__":
    main()
