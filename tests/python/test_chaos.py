"""Chaos, bounded: real clusters (a head and more raylets started with `rayc start`, TLS and
tokens on) under processes killed with SIGKILL while a workload runs, after Ray's release
chaos tests (KillWorker, KillRaylet; task and actor workloads):

- a worker-kill loop under nested tasks (tasks that submit tasks, max_retries);
- a raylet kill-and-replace loop under nested tasks, and under a workload whose large
  objects (in the shared-memory store) travel between tasks on different nodes;
- actors with max_restarts=-1 and max_task_retries=-1, their processes and nodes killed
  while a caller sends numbered calls: every number arrives at least once;
- a task using its node's store while that raylet is killed: retried elsewhere;
- owners that die (their worker, then their node) holding a lease on another node: the
  lease ends there and its CPU is free again;
- objects whose only copy was on a killed node rebuilt from their lineage.

Every result is checked, and every CPU is free again within 60 s of the workload's end.
The killers run in a thread of the test process and only ever kill processes of this
suite's own cluster: raylets they started, and workers that those raylets started.
ctest runs each test as an entry of its own (tests/python/CMakeLists.txt).
"""

import json
import os
import random
import re
import shutil
import signal
import tempfile
import threading
import time

import numpy as np
import pytest

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cli_cluster import CliCluster, pid_running, rayc, use_short_session_root, wait_for

use_short_session_root()  # sockets live under it: see cli_cluster

# A SIGKILLed raylet is found dead after three failed checks a second apart; a raylet
# that is merely slow (this machine is shared) gets 2 s per check.
FAST_DEATH = {"RAYC_health_check_initial_delay_ms": "1000", "RAYC_health_check_period_ms": "1000",
              "RAYC_health_check_timeout_ms": "2000", "RAYC_health_check_failure_threshold": "3"}

STORE = "256MiB"  # each node's shared-memory store: room for the workloads below
BIG = 256 * 1024  # bytes of a "large" object: well above the 100 KiB kept inline


# ---- the cluster and its killers -----------------------------------------------------------------


def _children(ppid):
    """PIDs of the live processes whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == ppid:
            out.append(int(d))
    return out


def _is_python_worker(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"default_worker" in f.read()
    except OSError:
        return False


class ChaosCluster:
    """A head (never killed: the driver and the GCS live there) and killable nodes, each
    started as from another host (a session root of its own, a join token and the CA
    hash), so that each can be killed and stopped alone."""

    def __init__(self, head_cpus=2, head_resources=None):
        self.cli = CliCluster()
        self.cli.start_head(num_cpus=head_cpus, labels={"name": "head"}, resources=head_resources)
        self.head_cpus = head_cpus
        self.nodes = {}  # name -> {"root", "pid", "node_id", "cpus"}
        self.dead = []  # the nodes killed: {"root", "node_id", "workers"}
        self.generation = 0

    def add_node(self, num_cpus=2, resources=None):
        """Starts a raylet joining as from another host; its name."""
        self.generation += 1
        name = f"n{self.generation}"
        out = rayc("token", "create", "--ttl", "1h").stdout
        token = re.search(r"[0-9a-f]{16}\.[0-9a-f]{32}", out).group(0)
        ca_hash = re.search(r"sha256:[0-9a-f]{64}", out).group(0)
        root = tempfile.mkdtemp(prefix="rayc-chaos-")
        flags = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus), "--labels", f"name={name}",
                 "--object-store-memory", STORE]
        if resources:
            flags += ["--resources", json.dumps(resources)]
        try:
            rayc("start", "--address", self.cli.address, *flags, "--join-token", token, "--ca-cert-hash", ca_hash,
                 root=root)
        except Exception:
            shutil.rmtree(root, ignore_errors=True)
            raise
        with open(os.path.join(root, "session_latest", "raylet_ready.json")) as f:
            ready = json.load(f)
        self.nodes[name] = {"root": root, "pid": ready["pid"], "node_id": ready["node_id"], "cpus": num_cpus}
        return name

    def raylet_pids(self):
        """The raylets of this cluster that run now, the head's included."""
        pids = []
        with open(os.path.join(self.cli.root, "session_latest", "pids", "raylet.pid")) as f:
            pids.append(int(f.read().strip()))
        pids += [n["pid"] for n in self.nodes.values()]
        return [p for p in pids if pid_running(p)]

    def workers(self):
        """The Python workers of this cluster's raylets."""
        return [w for r in self.raylet_pids() for w in _children(r) if _is_python_worker(w)]

    def kill_node(self, name):
        """SIGKILLs the raylet of node `name`; its workers are left to notice."""
        n = self.nodes.pop(name)
        workers = [w for w in _children(n["pid"]) if _is_python_worker(w)]
        os.kill(n["pid"], signal.SIGKILL)
        self.dead.append({"root": n["root"], "node_id": n["node_id"], "workers": workers})
        return n["node_id"]

    def total_cpus(self):
        return self.head_cpus + sum(n["cpus"] for n in self.nodes.values())

    def orphans(self):
        """Workers of killed raylets that still run."""
        return [w for d in self.dead for w in d["workers"] if pid_running(w)]

    def diagnose(self):
        """What a failed check prints: `rayc status`, each raylet's workers, and where the
        logs of every node (the killed ones' too) were copied."""
        keep = tempfile.mkdtemp(prefix="rayc-chaos-logs-")
        roots = [("head", self.cli.root)] + [(k, n["root"]) for k, n in self.nodes.items()]
        roots += [(f"dead-{d['node_id'][:8]}", d["root"]) for d in self.dead]
        for name, root in roots:
            shutil.copytree(os.path.join(root, "session_latest", "logs"), os.path.join(keep, name),
                            ignore_dangling_symlinks=True, dirs_exist_ok=True)
        status = rayc("status", check=False)
        workers = {r: [w for w in _children(r) if _is_python_worker(w)] for r in self.raylet_pids()}
        return f"rayc status:\n{status.stdout}{status.stderr}\nworkers by raylet pid: {workers}\nlogs: {keep}"

    def stop(self):
        for n in list(self.nodes.values()):
            rayc("stop", root=n["root"], check=False)
            rayc("stop", "--force", root=n["root"], check=False)
            shutil.rmtree(n["root"], ignore_errors=True)
        self.nodes.clear()
        for d in self.dead:
            rayc("stop", "--force", root=d["root"], check=False)
            shutil.rmtree(d["root"], ignore_errors=True)
            for w in d["workers"]:  # only ever our own raylets' workers
                if pid_running(w) and _is_python_worker(w):
                    os.kill(w, signal.SIGKILL)
            # The store of a raylet killed with SIGKILL (nobody else removes it).
            try:
                os.unlink(f"/dev/shm/rayc-{d['node_id']}")
            except OSError:
                pass
        self.cli.stop()


@pytest.fixture
def chaos(monkeypatch):
    """Makes a ChaosCluster (this process joined to it as the driver) and stops it after
    the test. make(head_cpus, nodes=[(cpus, resources), ...], head_resources)."""
    for k, v in FAST_DEATH.items():
        monkeypatch.setenv(k, v)
    made = []

    def make(head_cpus=2, nodes=(), head_resources=None):
        c = ChaosCluster(head_cpus, head_resources)
        made.append(c)
        for cpus, resources in nodes:
            c.add_node(cpus, resources)
        ray.init(address="auto")
        wait_for(lambda: len([n for n in ray.nodes() if n["Alive"]]) == 1 + len(nodes), timeout=60,
                 what="every node alive")
        wait_for(lambda: ray.available_resources().get("CPU") == c.total_cpus(), timeout=60, what="all CPUs free")
        return c

    yield make
    try:
        ray.shutdown()
    finally:
        for c in made:
            c.stop()


class Killer(threading.Thread):
    """Calls strike() every `interval` seconds (each call one kill, or None when it found
    nothing to kill) until stopped or `max_kills` kills are done."""

    def __init__(self, strike, interval, max_kills=None, start_after=0.0):
        super().__init__(daemon=True)
        self.strike = strike
        self.interval = interval
        self.max_kills = max_kills
        self.start_after = start_after
        self.kills = []
        self.times = []  # seconds after start of each kill
        self.t0 = time.time()
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        if self.halt.wait(self.start_after):
            return
        while not self.halt.is_set():
            try:
                what = self.strike()
            except Exception as e:  # reported by stop(): a killer that fails fails the test
                self.errors.append(repr(e))
                return
            if what is not None:
                self.kills.append(what)
                self.times.append(round(time.time() - self.t0, 1))
                if self.max_kills is not None and len(self.kills) >= self.max_kills:
                    return
            self.halt.wait(self.interval)

    @property
    def done(self):
        return not self.is_alive()

    def stop(self):
        self.halt.set()
        self.join(120)
        assert not self.is_alive(), "the killer did not stop"
        assert not self.errors, self.errors
        return self.kills


def all_cpus_free_within_60s(c):
    """Ray's consistency check after a chaos workload: the cluster's CPUs (alive nodes
    only) all free again, and the killed nodes gone from the totals."""
    try:
        wait_for(lambda: ray.cluster_resources().get("CPU") == c.total_cpus(), timeout=60,
                 what=f"the cluster's CPUs to be the {c.total_cpus()} of its alive nodes")
        wait_for(lambda: ray.available_resources().get("CPU") == ray.cluster_resources().get("CPU"), timeout=60,
                 what=f"every CPU free ({ray.available_resources().get('CPU')} "
                      f"of {ray.cluster_resources().get('CPU')} free when the wait began)")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{c.diagnose()}") from None


def workers_of_killed_nodes_exit(c):
    """A worker whose raylet is gone has nobody to work for: it exits."""
    wait_for(lambda: not c.orphans(), timeout=30, what=f"the workers of the killed raylets to exit ({c.orphans()})")


def run_waves_until(killer, wave, timeout=240):
    """Runs wave(k) (it submits work and checks every result) again and again while the
    killer works, and once more after it is done; the number of waves."""
    k = 0
    deadline = time.time() + timeout
    try:
        while not killer.done:
            assert time.time() < deadline, "the workload did not keep up with the killer"
            wave(k)
            k += 1
    finally:
        killer.stop()
    wave(k)  # once more on the cluster the killer left
    print(f"chaos: {k + 1} waves, kills at {killer.times}")
    return k + 1


# ---- 1. a worker-kill loop under nested tasks ---------------------------------------------------


def _busy(markers):
    """Marks this worker busy (a file named after its pid): the worker killer's targets."""
    path = os.path.join(markers, str(os.getpid()))
    open(path, "w").close()
    return path


def _idle(path):
    try:
        os.unlink(path)
    except OSError:
        pass


@ray.remote(num_cpus=1, max_retries=-1)
def leaf(i, markers):
    mark = _busy(markers)
    try:
        time.sleep(0.2)
        return np.full(50 * 1024, i % 251, dtype=np.uint8)  # 50 KiB, as Ray's chaos task returns
    finally:
        _idle(mark)


@ray.remote(num_cpus=1, max_retries=-1)
def nested(i, markers):
    mark = _busy(markers)
    try:
        time.sleep(0.3)
        # Spread: the children often run on the other node, so that a killed parent
        # leaves a lease behind there that must be freed.
        a, b = ray.get([leaf.options(scheduling_strategy="SPREAD").remote(i + k * 1000, markers) for k in (0, 1)])
        return i, int(a.sum()), int(b.sum())
    finally:
        _idle(mark)


def test_worker_kill_loop_nested_tasks(chaos, tmp_path):
    c = chaos(head_cpus=2, nodes=[(2, None)])
    markers = str(tmp_path / "busy")
    os.mkdir(markers)

    def strike():
        """SIGKILLs one worker of this cluster that runs a task now."""
        ours = set(c.workers())
        busy = [int(p) for p in os.listdir(markers) if int(p) in ours]
        for p in os.listdir(markers):
            if int(p) not in ours:
                _idle(os.path.join(markers, p))  # a worker already gone
        if not busy:
            return None
        victim = random.choice(busy)
        os.kill(victim, signal.SIGKILL)
        _idle(os.path.join(markers, str(victim)))
        return victim

    killer = Killer(strike, interval=0.5, max_kills=15, start_after=1.0)
    killer.start()
    size = 50 * 1024

    def wave(k):
        ids = range(k * 100, k * 100 + 20)
        got = ray.get([nested.remote(i, markers) for i in ids], timeout=120)
        assert got == [(i, size * (i % 251), size * ((i + 1000) % 251)) for i in ids]

    waves = run_waves_until(killer, wave)
    # The chaos happened: workers running tasks were killed, many times each node's CPUs.
    assert len(killer.kills) == 15 and waves >= 2, (killer.kills, waves)
    all_cpus_free_within_60s(c)


# ---- 2. a raylet kill-and-replace loop ---------------------------------------------------------


def node_killer(c, kills, node_cpus=2, node_resources=None):
    """strike(): SIGKILLs a random non-head raylet and starts a new node in its place."""

    def strike():
        if len(c.nodes) == 0:
            return None
        name = random.choice(sorted(c.nodes))
        killed = c.kill_node(name)
        c.add_node(node_cpus, node_resources)
        return killed

    return Killer(strike, interval=3.0, max_kills=kills, start_after=2.0)


@ray.remote(num_cpus=1, max_retries=-1)
def spread_leaf(i):
    time.sleep(0.3)
    return i * i, ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=1, max_retries=-1)
def spread_parent(i):
    time.sleep(0.2)
    kids = ray.get([spread_leaf.options(scheduling_strategy="SPREAD").remote(i * 10 + j) for j in range(3)])
    return i, [v for v, _ in kids], [n for _, n in kids]


def test_raylet_kill_and_replace_nested_tasks(chaos):
    c = chaos(head_cpus=2, nodes=[(2, None), (2, None)])
    killer = node_killer(c, kills=3)
    killer.start()
    seen_nodes = set()

    def wave(k):
        ids = range(k * 100, k * 100 + 8)
        got = ray.get([spread_parent.options(scheduling_strategy="SPREAD").remote(i) for i in ids], timeout=120)
        assert [(i, squares) for i, squares, _ in got] == [(i, [(i * 10 + j) ** 2 for j in range(3)]) for i in ids]
        seen_nodes.update(n for _, _, nodes in got for n in nodes)

    waves = run_waves_until(killer, wave)
    assert len(killer.kills) == 3 and waves >= 2
    killed = set(killer.kills)
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert not killed & alive, "a killed raylet is still listed alive"
    # Work ran on the nodes that were killed and on their replacements.
    assert killed & seen_nodes and (seen_nodes - killed) & {n["node_id"] for n in c.nodes.values()}
    all_cpus_free_within_60s(c)
    workers_of_killed_nodes_exit(c)


def _pattern(i):
    return (np.arange(BIG, dtype=np.uint64) * (i + 1) % 251).astype(np.uint8)


@ray.remote(num_cpus=1, max_retries=-1)
def consume(arr, shared, i):
    """Reads a large object made elsewhere (and one the driver put): a checksum of each."""
    time.sleep(0.1)
    assert arr.nbytes == BIG and shared.nbytes == 4 * BIG
    expect = _pattern(i)
    return int(np.count_nonzero(arr != expect)), int(shared.sum(dtype=np.int64)), ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=1, max_retries=-1)
def produce_and_pass(i, shared):
    """Puts a large object into this node's store and has consumers on other nodes read it."""
    arr = ray.put(_pattern(i))
    outs = ray.get([consume.options(scheduling_strategy="SPREAD").remote(arr, shared, i) for _ in range(3)])
    return i, [(bad, total) for bad, total, _ in outs], [n for _, _, n in outs], ray.get_runtime_context().get_node_id()


def test_raylet_kill_and_replace_large_objects(chaos):
    c = chaos(head_cpus=2, nodes=[(2, None), (2, None)])
    shared_arr = np.arange(4 * BIG, dtype=np.uint8)  # 1 MiB, in the head's store
    shared = ray.put(shared_arr)
    shared_sum = int(shared_arr.sum(dtype=np.int64))
    killer = node_killer(c, kills=3)
    killer.start()
    crossed = []

    def wave(k):
        refs = [produce_and_pass.options(scheduling_strategy="SPREAD").remote(k * 100 + i, shared) for i in range(6)]
        for idx, (i, checks, readers, maker) in enumerate(ray.get(refs, timeout=120)):
            assert i == k * 100 + idx
            assert checks == [(0, shared_sum)] * 3, (i, checks)
            crossed.extend(r for r in readers if r != maker)

    run_waves_until(killer, wave)
    assert len(killer.kills) == 3
    assert crossed, "no large object was read on a node other than its maker's"
    all_cpus_free_within_60s(c)
    workers_of_killed_nodes_exit(c)


# ---- a task whose raylet is killed under it is retried ------------------------------------


@ray.remote(num_cpus=1, max_retries=2, resources={"a": 1})
def put_until(stop_file, markers):
    """Puts large objects into this node's store until stop_file exists; how many."""
    _busy(markers)
    n = 0
    deadline = time.time() + 90
    while not os.path.exists(stop_file) and time.time() < deadline:
        ref = ray.put(np.full(BIG, n % 251, dtype=np.uint8))
        assert int(ray.get(ref)[-1]) == n % 251
        del ref
        n += 1
    return os.path.exists(stop_file), ray.get_runtime_context().get_node_id()


def test_task_on_a_killed_raylet_is_retried(chaos, tmp_path):
    """The raylet under a task that uses its store (ray.put, ray.get) is killed: the
    task's calls to it fail, and the worker exits so that its owner retries the task
    elsewhere (Ray's behaviour), rather than the task failing with the lost connection."""
    c = chaos(head_cpus=1, nodes=[(1, {"a": 1})])
    markers = str(tmp_path / "busy")
    os.mkdir(markers)
    stop_file = str(tmp_path / "stop")
    ref = put_until.remote(stop_file, markers)
    (first,) = c.nodes
    wait_for(lambda: [p for p in os.listdir(markers) if int(p) in _children(c.nodes[first]["pid"])], timeout=60,
             what="the task running on the node to kill")
    time.sleep(0.5)  # well into its puts
    killed = c.kill_node(first)
    c.add_node(1, {"a": 1})
    open(stop_file, "w").close()
    stopped, where = ray.get(ref, timeout=90)
    assert stopped and where != killed
    all_cpus_free_within_60s(c)
    workers_of_killed_nodes_exit(c)


# ---- owners that die: the leases they held elsewhere are freed ----------------------------


@ray.remote(num_cpus=1, max_retries=0, resources={"b": 1})
def held_child(markers):
    _busy(markers)
    time.sleep(600)  # held until its owner's death ends its lease


@ray.remote(num_cpus=1, max_retries=0, resources={"a": 1})
def owner_parent(markers):
    _busy(markers)
    return ray.get(held_child.remote(markers))


def test_owner_death_frees_its_leases(chaos, tmp_path):
    """A task owning a lease on another node dies (its worker killed, then its whole node
    killed): the lease is freed there, its worker killed, and the CPU is free again
    (Ray's raylet does this on a worker or node failure it hears of from the GCS)."""
    c = chaos(head_cpus=1, nodes=[(2, {"a": 2}), (2, {"b": 2})])
    a_name, b_name = sorted(c.nodes)
    for kill_node in (False, True):
        markers = str(tmp_path / f"busy-{kill_node}")
        os.mkdir(markers)
        ref = owner_parent.remote(markers)

        def both_running():
            pids = [int(p) for p in os.listdir(markers)]
            a_workers = set(_children(c.nodes[a_name]["pid"]))
            b_workers = set(_children(c.nodes[b_name]["pid"]))
            return ([p for p in pids if p in a_workers], [p for p in pids if p in b_workers])

        parents, children = wait_for(lambda: all(both_running()) and both_running(), timeout=60,
                                     what="the parent on node a and its child on node b running")
        parent_pid, child_pid = parents[0], children[0]
        if kill_node:
            c.kill_node(a_name)
        else:
            os.kill(parent_pid, signal.SIGKILL)
        with pytest.raises(ray.exceptions.RayError):
            ray.get(ref, timeout=60)
        # The child's worker, whose owner is gone, is killed and its CPU freed.
        wait_for(lambda: not pid_running(child_pid), timeout=60, what="the orphaned child's worker killed")
        all_cpus_free_within_60s(c)
        if kill_node:
            workers_of_killed_nodes_exit(c)


# ---- 3. actors with restarts, called at least once ---------------------------------------------


@ray.remote(num_cpus=0, max_task_retries=-1)
class Ledger:
    """The side store on the head (never killed): every sequence number reported, and
    the processes the reporters ran in."""

    def __init__(self):
        self.seen = set()
        self.pids = []

    def add(self, seq):
        self.seen.add(seq)

    def started(self, pid):
        self.pids.append(pid)

    def report(self):
        return sorted(self.seen), list(self.pids)


@ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1, resources={"victim": 1})
class Reporter:
    def __init__(self, ledger, pid_dir):
        self.ledger = ledger
        ray.get(ledger.started.remote(os.getpid()))
        open(os.path.join(pid_dir, str(os.getpid())), "w").close()

    def add(self, seq):
        time.sleep(0.02)
        ray.get(self.ledger.add.remote(seq))
        return seq


def test_actor_restarts_at_least_once(chaos, tmp_path):
    c = chaos(head_cpus=1, nodes=[(2, {"victim": 2}), (2, {"victim": 2})])
    head = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Labels"].get("name") == "head")
    ledger = Ledger.options(scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False)).remote()
    pid_dir = str(tmp_path / "reporters")
    os.mkdir(pid_dir)
    reporters = [Reporter.remote(ledger, pid_dir) for _ in range(2)]
    strikes = [0]

    def strike():
        """Kills a reporter's process, and every third time its whole node (replaced)."""
        ours = set(c.workers())
        live = [int(p) for p in os.listdir(pid_dir) if int(p) in ours]
        if not live:
            return None
        strikes[0] += 1
        victim = random.choice(live)
        if strikes[0] % 3 == 0:
            name = next((k for k, n in c.nodes.items() if victim in _children(n["pid"])), None)
            if name is not None:
                c.kill_node(name)
                c.add_node(2, {"victim": 2})
                return ("node", victim)
        os.kill(victim, signal.SIGKILL)
        return ("worker", victim)

    killer = Killer(strike, interval=1.5, max_kills=6, start_after=1.5)
    killer.start()
    # Numbered calls, a few at a time to each reporter, for as long as the killer works.
    calls = {r: [] for r in range(len(reporters))}
    seq = 0

    def send():
        nonlocal seq
        for r, a in enumerate(reporters):
            for _ in range(5):
                calls[r].append((seq, a.add.remote(seq)))
                seq += 1

    deadline = time.time() + 150
    try:
        while not killer.done:
            assert time.time() < deadline, "the killer did not finish"
            send()
            time.sleep(0.3)
    finally:
        kills = killer.stop()
    send()  # and more to the actors as the last kill left them
    print(f"chaos: {seq} calls, kills {kills} at {killer.times}")
    for r, sent in calls.items():
        assert ray.get([ref for _, ref in sent], timeout=120) == [s for s, _ in sent]
    seen, pids = ray.get(ledger.report.remote(), timeout=60)
    assert seen == list(range(seq)), f"sequence numbers lost: {sorted(set(range(seq)) - set(seen))[:20]}"
    assert len(kills) >= 3, kills
    assert any(kind == "node" for kind, _ in kills), kills
    # Each kill made its actor start again in a new process. A node's kill takes its
    # workers a moment to notice (they may still answer the last calls), and the actor
    # starts again only once the GCS has declared the node dead: wait for that.
    restarted = time.time() + 60
    while len(set(pids)) < len(reporters) + len(kills) and time.time() < restarted:
        time.sleep(0.5)
        pids = ray.get(ledger.report.remote(), timeout=60)[1]
    assert len(set(pids)) >= len(reporters) + len(kills), (pids, kills)
    for a in reporters:
        ray.kill(a)
    all_cpus_free_within_60s(c)
    workers_of_killed_nodes_exit(c)


# ---- 4. object reconstruction under node kills --------------------------------------------------


@ray.remote(num_cpus=1, max_retries=-1, num_returns=2, resources={"victim": 1})
def make_big(i):
    """A large object in this node's store, and where it was made."""
    return _pattern(i), ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=1, max_retries=-1, num_returns=2, resources={"victim": 1})
def grow(arr, i):
    """A large object made from another (a lost argument is rebuilt first)."""
    return arr ^ np.uint8(i % 256), ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=1, max_retries=-1)
def mismatches(arr, i):
    return int(np.count_nonzero(arr != (_pattern(i) ^ np.uint8(i % 256))))


def test_reconstruction_under_node_kills(chaos):
    """Objects made by tasks on a node that is then killed are made again from their
    lineage (the task and, recursively, its lost arguments) when a later task needs them."""
    c = chaos(head_cpus=1, nodes=[(2, {"victim": 2}), (2, {"victim": 2})])
    rebuilt = 0
    for k in range(3):
        ids = range(k * 100, k * 100 + 6)
        made = [make_big.remote(i) for i in ids]
        grown = [grow.remote(arr, i) for i, (arr, _) in zip(ids, made)]
        where = ray.get([w for _, w in grown], timeout=120)  # every object made; none fetched here
        victim = random.choice(sorted(c.nodes))
        victim_id = c.nodes[victim]["node_id"]
        c.kill_node(victim)
        c.add_node(2, {"victim": 2})
        wait_for(lambda: victim_id not in {n["NodeID"] for n in ray.nodes() if n["Alive"]}, timeout=30,
                 what="the killed node marked dead")
        rebuilt += sum(1 for w in where if w == victim_id)
        assert ray.get([mismatches.remote(arr, i) for i, (arr, _) in zip(ids, grown)], timeout=120) == [0] * 6
    assert rebuilt > 0, "no object lived on a killed node"
    all_cpus_free_within_60s(c)
    workers_of_killed_nodes_exit(c)
