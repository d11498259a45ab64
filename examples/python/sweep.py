"""A hyperparameter sweep of scikit-learn models as Ray tasks with fractional resources.

Every configuration of a small grid (LogisticRegression, RandomForest, GradientBoosting)
is one task that cross-validates the model on a synthetic dataset (make_classification,
put in the object store once). Tasks ask for half a CPU; when the cluster has GPUs they
also ask for a quarter of one (num_gpus=0.25: a resource request only, the models run on
the CPU), so they run on the GPU nodes. When the nodes carry labels (other than system ones
such as ray.io/node-id), the trials are spread round-robin over the values of a label with
label_selector. Prints every trial, the best configuration and which node ran what.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/sweep.py [--small] [--address ADDR]

Only Ray's public API is used: the script runs unchanged on Ray.
"""

import argparse
import collections
import itertools
import time

import ray


def make_model(family, params):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if family == "LogisticRegression":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, **params))
    if family == "RandomForest":
        return RandomForestClassifier(random_state=0, n_jobs=1, **params)
    if family == "GradientBoosting":
        return GradientBoostingClassifier(random_state=0, **params)
    raise ValueError(family)


def grid(small):
    configs = [("LogisticRegression", {"C": c}) for c in ((0.01, 1.0) if small else (0.01, 0.1, 1.0, 10.0))]
    for n, d in itertools.product((30,) if small else (30, 80), (4, None) if small else (4, 8, None)):
        configs.append(("RandomForest", {"n_estimators": n, "max_depth": d}))
    for n, lr in itertools.product((30,) if small else (40, 80), (0.1, 0.3) if small else (0.05, 0.2)):
        configs.append(("GradientBoosting", {"n_estimators": n, "learning_rate": lr, "max_depth": 3}))
    return configs


@ray.remote
def trial(family, params, data):
    from sklearn.model_selection import cross_val_score

    start = time.time()
    x, y = data
    scores = cross_val_score(make_model(family, params), x, y, cv=3)
    return {
        "family": family,
        "params": params,
        "score": float(scores.mean()),
        "node": ray.get_runtime_context().get_node_id()[:8],
        "gpu_ids": ray.get_gpu_ids(),
        "seconds": time.time() - start,
    }


def user_labels(node):
    """The node's own labels: those with a domain prefix (ray.io/node-id, ...) are the system's."""
    return {k: v for k, v in (node.get("Labels") or {}).items() if "/" not in k}


def choose_label(nodes, need_gpu):
    """A label key the nodes carry, and those of its values with a node that can run a
    trial; (None, []) when the nodes carry no labels of their own."""
    keys = collections.Counter(k for n in nodes for k in user_labels(n))
    for key, _ in keys.most_common():
        values = sorted({
            user_labels(n)[key] for n in nodes
            if key in user_labels(n) and n["Resources"].get("CPU", 0) >= 0.5
            and (not need_gpu or n["Resources"].get("GPU", 0) >= 0.25)
        })
        if values:
            return key, values
    return None, []


def describe(config):
    family, params = config
    return f"{family}({', '.join(f'{k}={v}' for k, v in params.items())})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="cluster to join (default: this host's, else a new local one)")
    parser.add_argument("--small", action="store_true", help="a quick run (for tests)")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--cpus-per-trial", type=float, default=0.5)
    parser.add_argument("--gpus-per-trial", type=float, default=0.25, help="used only when the cluster has GPUs")
    args = parser.parse_args()
    samples = args.samples or (600 if args.small else 1500)

    from sklearn.datasets import make_classification

    start = time.time()
    ray.init(address=args.address)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    options = {"num_cpus": args.cpus_per_trial}
    if has_gpu:
        options["num_gpus"] = args.gpus_per_trial
    label_key, label_values = choose_label(nodes, has_gpu)
    print(f"{len(nodes)} nodes; cluster GPUs: {ray.cluster_resources().get('GPU', 0):g}; per trial: {options}"
          + (f"; trials spread over {label_key} in {label_values} by label_selector" if label_key else
             "; nodes carry no labels: no label_selector"))

    x, y = make_classification(n_samples=samples, n_features=20, n_informative=8, n_redundant=4,
                               n_clusters_per_class=2, flip_y=0.02, random_state=0)
    data = ray.put((x, y))
    configs = grid(args.small)
    refs = []
    for i, (family, params) in enumerate(configs):
        opts = dict(options)
        if label_key:
            opts["label_selector"] = {label_key: label_values[i % len(label_values)]}
        refs.append(trial.options(**opts).remote(family, params, data))
    results = ray.get(refs)

    node_info = {n["NodeID"][:8]: n for n in nodes}
    print(f"{'trial':<68} {'cv acc':>7} {'node':>9} {'secs':>5}")
    for r in sorted(results, key=lambda r: -r["score"]):
        print(f"{describe((r['family'], r['params'])):<68} {r['score']:7.4f} {r['node']:>9} {r['seconds']:5.1f}")
    print(f"{'node':<9} {'labels':<30} {'GPU':>4} {'trials':>6}  models")
    by_node = collections.defaultdict(list)
    for r in results:
        by_node[r["node"]].append(r["family"])
    for node, fams in sorted(by_node.items()):
        n = node_info.get(node, {})
        labels = ",".join(f"{k}={v}" for k, v in sorted(user_labels(n).items())) or "-"
        counts = ", ".join(f"{f} x{c}" for f, c in sorted(collections.Counter(fams).items()))
        print(f"{node:<9} {labels:<30} {n.get('Resources', {}).get('GPU', 0):>4g} {len(fams):>6}  {counts}")
    best = max(results, key=lambda r: r["score"])
    print(f"sweep: trials={len(results)} best={describe((best['family'], best['params']))} "
          f"best_score={best['score']:.4f} nodes_used={len(by_node)} gpus_per_trial={options.get('num_gpus', 0)} "
          f"time={time.time() - start:.1f}s")
    ray.shutdown()


if __name__ == "__main__":
    main()
