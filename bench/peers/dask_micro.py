#!/usr/bin/python3
"""The peer of rayc-bench's task and object benchmarks: the same operations on Dask
distributed (Debian's python3-distributed), a LocalCluster of 2 single-threaded worker
processes. One JSON object per figure on stdout, with rayc-bench's names.

Run with Debian's interpreter: /usr/bin/python3 dask_micro.py [--seconds S]
"""
import argparse
import json
import sys
import time

import numpy as np
from distributed import Client, LocalCluster, wait


def noop():
    return b"ok"


class Actor:
    """Ray's microbenchmark actor."""

    def small_value(self):
        return b"ok"


def report(name, value, unit):
    print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)


def timed(seconds, step):
    """Runs step() until `seconds` have passed; returns how many units it did per second."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += step()
    return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        client.gather(client.map(lambda i: i, range(64), pure=False))

        def sync_task():
            client.submit(noop, pure=False).result()
            return 1

        report("single_client_tasks_sync", timed(args.seconds, sync_task), "tasks/s")

        def batch():
            client.gather(client.map(lambda _: noop(), range(1000), pure=False))
            return 1000

        report("single_client_tasks_async", timed(args.seconds, batch), "tasks/s")
        report("single_client_tasks_and_get_batch", timed(args.seconds, batch) / 1000, "batches/s")

        def wait_1k():
            futures = client.map(lambda _: noop(), range(1000), pure=False)
            wait(futures)
            return 1

        report("single_client_wait_1k_refs", timed(args.seconds, wait_1k), "waits/s")

        # Actors: Dask's actors live in one worker; calls return ActorFutures.
        actor = client.submit(Actor, actor=True).result()

        def actor_sync():
            actor.small_value().result()
            return 1

        report("1_1_actor_calls_sync", timed(args.seconds, actor_sync), "calls/s")

        def actor_batch():
            futures = [actor.small_value() for _ in range(1000)]
            for f in futures:
                f.result()
            return 1000

        report("1_1_actor_calls_async", timed(args.seconds, actor_batch), "calls/s")

        # Puts: Dask's scatter keeps data on a worker, the closest thing to ray.put.
        def put_small():
            client.scatter(0)
            return 1

        report("single_client_put_calls_Plasma_Store", timed(args.seconds, put_small), "puts/s")
        ready = client.scatter(7)

        def get_small():
            ready.result()
            return 1

        report("single_client_get_calls_Plasma_Store", timed(args.seconds, get_small), "gets/s")
        big = np.ones(800 * 1000 * 1000 // 8, dtype=np.int64)

        def put_big():
            f = client.scatter(big, direct=True)
            del f
            return big.nbytes

        report("single_client_put_gigabytes", timed(args.seconds, put_big) / 1e9, "GB/s")
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
