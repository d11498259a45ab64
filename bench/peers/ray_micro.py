#!/usr/bin/python3
"""rayc's Python figures: Ray's microbenchmark shapes (`ray microbenchmark`, ray_perf.py)
through Ray's public Python API, on rayc's `ray` package. One JSON object per figure on
stdout, in rayc-bench's format, named py_<Ray's name>; progress and notes on stderr.

    PYTHONPATH=build/python RAYC_BIN_DIR=build/bin \\
        /usr/bin/python3 bench/peers/ray_micro.py [--seconds S] [--warmup S] [--quick]
        [--address HOST:PORT] [--only SUBSTR[,SUBSTR]] [--rss-tasks N]

Without --address it starts a local cluster of its own (ray.init(address="local") with
{"custom": 100} for the placement-group figure, as Ray's script re-inits with). Each timed
figure runs as Ray's timeit does: a warm-up (--warmup s, at least one call), then calls in
steps of a tenth of the warm-up's count until --seconds have passed. Nothing is cached
between calls: every call submits, serializes and gets as Ray's script does. rayc-bench
runs this as its `python` group (bench/bench_python.c) and reports each figure beside the
C figure of the same name.
"""
import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import ray

ARGS = None


# ---- output --------------------------------------------------------------------------------


def _num(v):
    return "%.6g" % v


def report(name, value, unit, peer=None, peer_value=None):
    """One line exactly as rayc-bench's bench_report writes it."""
    line = '{"name":%s,"value":%s,"unit":%s,"peer":' % (json.dumps(name), _num(value), json.dumps(unit))
    if peer and peer_value and peer_value > 0 and value == value:
        lower = unit in ("s", "ms", "us", "ns", "MiB", "KiB", "%cpu")
        ratio = (peer_value / value if lower else value / peer_value) if value > 0 else None
        line += '%s,"peer_value":%s,"ratio":%s}' % (json.dumps(peer), _num(peer_value),
                                                     "%.4g" % ratio if ratio is not None else "null")
    else:
        line += 'null,"ratio":null}'
    print(line, flush=True)
    note("%-44s %14.6g %s" % (name, value, unit))


def note(msg):
    print("ray_micro: " + msg, file=sys.stderr, flush=True)


def wanted(name):
    if not ARGS.only:
        return True
    return any(p and p in name for p in ARGS.only.split(","))


def timeit(name, fn, multiplier=1, unit="calls/s"):
    """Ray's timeit, with the durations of this run: warm up, then run fn in steps until
    --seconds have passed; reports multiplier * calls per second (mean of --repeats)."""
    if not wanted(name):
        return None
    start = time.perf_counter()
    count = 0
    while count == 0 or time.perf_counter() - start < ARGS.warmup:
        fn()
        count += 1
    step = count // 10 + 1
    stats = []
    for _ in range(ARGS.repeats):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < ARGS.seconds:
            for _ in range(step):
                fn()
            count += step
        stats.append(multiplier * count / (time.perf_counter() - start))
    mean = float(np.mean(stats))
    if len(stats) > 1:
        note("%s: %s +- %.2f" % (name, _num(mean), float(np.std(stats))))
    report(name, mean, unit)
    return mean


# ---- Ray's remote functions and actors (ray_perf.py) ---------------------------------------


@ray.remote(num_cpus=0)
class Actor:
    def small_value(self):
        return b"ok"

    def small_value_arg(self, x):
        return b"ok"


@ray.remote
class AsyncActor:
    async def small_value(self):
        return b"ok"


@ray.remote(num_cpus=0)
class Client:
    def __init__(self, servers):
        if not isinstance(servers, list):
            servers = [servers]
        self.servers = servers

    def small_value_batch(self, n):
        results = []
        for s in self.servers:
            results.extend([s.small_value.remote() for _ in range(n)])
        ray.get(results)


@ray.remote
def small_value():
    return b"ok"


@ray.remote
def create_object_containing_ref():
    obj_refs = []
    for _ in range(10000):
        obj_refs.append(ray.put(1))
    return obj_refs


@ray.remote
def getpid():
    return os.getpid()


# ---- memory ---------------------------------------------------------------------------------


def _status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def idle_worker_rss():
    """VmRSS of the Python workers that just ran a task each, once they are idle."""
    if not wanted("py_idle_worker_rss_mib"):
        return
    pids = set(ray.get([getpid.remote() for _ in range(8)]))
    time.sleep(1.0)
    rss = {p: _status_kib(p, "VmRSS") for p in pids}
    rss = {p: v / 1024.0 for p, v in rss.items() if v > 0}
    if not rss:
        note("py_idle_worker_rss_mib: no worker's /proc entry is readable (a remote cluster?)")
        return
    note("idle workers' VmRSS (MiB): " + ", ".join("%d: %.1f" % kv for kv in sorted(rss.items())))
    report("py_idle_worker_rss_mib", max(rss.values()), "MiB")


def driver_rss_growth():
    """The driver's RssAnon (private memory: not the store's shared pages) after 10,000
    and after --rss-tasks released no-op tasks, in batches of 1,000."""
    if not wanted("py_driver_rss_growth"):
        return
    total = max(ARGS.rss_tasks, 20000)
    rss_10k = 0.0
    start = time.perf_counter()
    for done in range(0, total, 1000):
        ray.get([small_value.remote() for _ in range(1000)])
        if done + 1000 == 10000:
            rss_10k = _status_kib(os.getpid(), "RssAnon") / 1024.0
    time.sleep(0.5)  # let the last releases land
    rss_end = _status_kib(os.getpid(), "RssAnon") / 1024.0
    note("%d tasks in %.1f s%s" % (total, time.perf_counter() - start,
                                   " (not Ray's 1,000,000: --quick or --rss-tasks)" if total != 1000000 else ""))
    report("py_driver_rss_after_10k_tasks", rss_10k, "MiB")
    report("py_driver_rss_after_%dk_tasks" % (total // 1000), rss_end, "MiB", "py_driver_rss_after_10k_tasks", rss_10k)
    report("py_driver_rss_growth", rss_end / rss_10k if rss_10k > 0 else float("nan"), "ratio")


# ---- init to first result --------------------------------------------------------------------

_INIT_CHILD = r"""
import sys, time
t0 = time.perf_counter()
import ray
t1 = time.perf_counter()
ray.init()
@ray.remote
def one():
    return 1
assert ray.get(one.remote()) == 1
t2 = time.perf_counter()
print("%.6f %.6f" % (t1 - t0, t2 - t1), flush=True)
ray.shutdown()
"""


def init_to_first_result():
    """Seconds from ray.init() (after `import ray`) to the first task's result, in a fresh
    process with a fresh session root (no cluster on this host to join); median of 3."""
    if not wanted("py_init_to_first_result"):
        return
    runs = []
    for _ in range(3):
        root = tempfile.mkdtemp(prefix="ray_micro_init_")
        env = dict(os.environ, RAYC_SESSION_ROOT=root)
        for k in ("RAY_ADDRESS", "RAYC_ADDRESS"):
            env.pop(k, None)
        try:
            out = subprocess.run([sys.executable, "-c", _INIT_CHILD], env=env, capture_output=True, text=True,
                                 timeout=120)
            if out.returncode != 0:
                note("init child failed: " + out.stderr.strip()[-2000:])
                return
            imp, first = (float(x) for x in out.stdout.split()[-2:])
            runs.append((first, imp))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    runs.sort()
    note("init to first result (s): %s; import ray (s): %s" % (
        ", ".join("%.3f" % r[0] for r in runs), ", ".join("%.3f" % r[1] for r in runs)))
    report("py_init_to_first_result", runs[len(runs) // 2][0], "s")


# ---- the figures -------------------------------------------------------------------------------


def objects():
    value = ray.put(0)

    def get_small():
        ray.get(value)

    timeit("py_single_client_get_calls", get_small, unit="gets/s")

    def put_small():
        ray.put(0)

    timeit("py_single_client_put_calls", put_small, unit="puts/s")

    if wanted("py_single_client_put_gigabytes") or wanted("py_memcpy_gigabytes"):
        # Ray's array is np.zeros(100 * 1024 * 1024): untouched zero pages, which read
        # faster than memory does. This one is 800 MB written once (rayc-bench's C size),
        # and the copy and the put read the same pages.
        arr = np.ones(100 * 1000 * 1000, dtype=np.int64)
        dst = np.empty_like(arr)
        np.copyto(dst, arr)  # first touch of dst, untimed
        gb = arr.nbytes / 1e9

        def copy_large():
            np.copyto(dst, arr)

        memcpy = timeit("py_memcpy_gigabytes", copy_large, gb, unit="GB/s")
        del dst

        def put_large():
            ray.put(arr)

        if wanted("py_single_client_put_gigabytes"):
            put_large()  # warm-up: one put, as Ray's 1 s warm-up is at this size
            times = []
            start = time.perf_counter()
            while len(times) < 2 or time.perf_counter() - start < ARGS.seconds:
                t = time.perf_counter()
                put_large()
                times.append(time.perf_counter() - t)
            rate = gb * len(times) / (time.perf_counter() - start)
            # A put into store pages this process has not touched yet pays their first-touch
            # faults; later puts reuse warm ranges. The log shows which this run measured.
            slow = [x for x in times if x > 5 * min(times)]
            note("%d puts of %.1f GB: median %.3f s (%.2f GB/s), %d slower than 5x the fastest (%s s)" % (
                len(times), gb, float(np.median(times)), gb / float(np.median(times)), len(slow),
                ", ".join("%.2f" % x for x in slow)))
            report("py_single_client_put_gigabytes", rate, "GB/s", "py_memcpy_gigabytes" if memcpy else None, memcpy)
        del arr

    def small_value_batch():
        ray.get([small_value.remote() for _ in range(1000)])

    timeit("py_single_client_tasks_and_get_batch", small_value_batch, unit="batches/s")

    if wanted("py_single_client_get_object_containing_10k_refs"):
        obj_containing_ref = create_object_containing_ref.remote()
        ray.get(obj_containing_ref)

        def get_containing_object_ref():
            ray.get(obj_containing_ref)

        timeit("py_single_client_get_object_containing_10k_refs", get_containing_object_ref, unit="gets/s")
        del obj_containing_ref


def tasks():
    def small_task():
        ray.get(small_value.remote())

    timeit("py_single_client_tasks_sync", small_task, unit="tasks/s")

    def small_task_async():
        ray.get([small_value.remote() for _ in range(1000)])

    timeit("py_single_client_tasks_async", small_task_async, 1000, unit="tasks/s")


def _ready(*actors):
    ray.get([a.__ray_ready__.remote() for a in actors])


def _kill(*actors):
    for a in actors:
        ray.kill(a)


def actors():
    n_cpu = max(1, multiprocessing.cpu_count() // 2)  # Ray's count of servers and callers
    if wanted("py_1_1_actor_calls_sync"):
        a = Actor.remote()
        _ready(a)

        def actor_sync():
            ray.get(a.small_value.remote())

        timeit("py_1_1_actor_calls_sync", actor_sync)
        _kill(a)

    if wanted("py_1_1_actor_calls_async"):
        a = Actor.remote()
        _ready(a)

        def actor_async():
            ray.get([a.small_value.remote() for _ in range(1000)])

        timeit("py_1_1_actor_calls_async", actor_async, 1000)
        _kill(a)

    if wanted("py_1_1_actor_calls_concurrent"):
        a = Actor.options(max_concurrency=16).remote()
        _ready(a)

        def actor_concurrent():
            ray.get([a.small_value.remote() for _ in range(1000)])

        timeit("py_1_1_actor_calls_concurrent", actor_concurrent, 1000)
        _kill(a)

    if wanted("py_1_n_actor_calls_async"):
        n = 5000
        servers = [Actor.remote() for _ in range(n_cpu)]
        client = Client.remote(servers)
        _ready(client, *servers)

        def actor_async_direct():
            ray.get(client.small_value_batch.remote(n))

        note("1:n: one Client actor calling %d server actor(s), %d calls each" % (len(servers), n))
        timeit("py_1_n_actor_calls_async", actor_async_direct, n * len(servers))
        _kill(client, *servers)

    if wanted("py_n_n_actor_calls_async"):
        n, m = 5000, 4
        servers = [Actor.remote() for _ in range(n_cpu)]
        _ready(*servers)

        @ray.remote
        def work(actors):
            ray.get([actors[i % n_cpu].small_value.remote() for i in range(n)])

        def actor_multi2():
            ray.get([work.remote(servers) for _ in range(m)])

        note("n:n: %d tasks calling %d actor(s), %d calls each" % (m, len(servers), n))
        timeit("py_n_n_actor_calls_async", actor_multi2, m * n)
        _kill(*servers)

    if wanted("py_1_1_async_actor_calls_sync"):
        a = AsyncActor.remote()
        _ready(a)

        def async_actor_sync():
            ray.get(a.small_value.remote())

        timeit("py_1_1_async_actor_calls_sync", async_actor_sync)
        _kill(a)

    if wanted("py_1_1_async_actor_calls_async"):
        a = AsyncActor.remote()
        _ready(a)

        def async_actor():
            ray.get([a.small_value.remote() for _ in range(1000)])

        timeit("py_1_1_async_actor_calls_async", async_actor, 1000)
        _kill(a)


def placement_groups():
    if not wanted("py_placement_group_create_removal"):
        return
    from ray.util import placement_group, remove_placement_group

    num_pgs = 100
    resource = "custom" if ray.cluster_resources().get("custom", 0) >= 1 else "CPU"

    def placement_group_create_removal():
        pgs = [placement_group(bundles=[{resource: 0.001}]) for _ in range(num_pgs)]
        [pg.wait(timeout_seconds=30) for pg in pgs]
        for pg in pgs:
            remove_placement_group(pg)

    timeit("py_placement_group_create_removal", placement_group_create_removal, num_pgs, unit="groups/s")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="measuring time of each figure (Ray: 2 s x 4; rayc-bench passes its --seconds)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up of each figure (default seconds/4)")
    parser.add_argument("--repeats", type=int, default=1, help="measuring runs per figure, averaged (Ray: 4)")
    parser.add_argument("--quick", action="store_true",
                        help="0.5 s per figure and 100,000 tasks (not 1,000,000) for the driver's RSS growth")
    parser.add_argument("--rss-tasks", type=int, default=None, help="tasks of py_driver_rss_growth (1,000,000)")
    parser.add_argument("--address", default=None, help="an existing cluster's GCS address (default: start one)")
    parser.add_argument("--only", default=os.environ.get("TESTS_TO_RUN"), help="figures whose names contain one of these")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.seconds = min(ARGS.seconds, 0.5)
    if ARGS.warmup is None:
        ARGS.warmup = max(0.1, ARGS.seconds / 4)
    if ARGS.rss_tasks is None:
        ARGS.rss_tasks = 100000 if ARGS.quick else 1000000

    t0 = time.perf_counter()
    init_to_first_result()  # first: nothing else runs on this host yet
    if ARGS.address:
        ray.init(address=ARGS.address)
    else:
        ray.init(address="local", resources={"custom": 100})
    try:
        ray.get([small_value.remote() for _ in range(64)])  # start the workers
        idle_worker_rss()
        objects()
        tasks()
        actors()
        placement_groups()
        driver_rss_growth()
    finally:
        ray.shutdown()
    note("done in %.1f s" % (time.perf_counter() - t0))


if __name__ == "__main__":
    sys.exit(main())
