"""Lineage reconstruction, after Ray's python/ray/tests/test_reconstruction.py: a task's
large result (in a node's shared-memory store) whose node is SIGKILLed is made again by
its owner on a node that can run the task, recursively through lost arguments and within
the task's max_retries (ObjectReconstructionFailedMaxAttemptsExceededError after); results
of actor calls cannot be made again (ObjectLostError), and a borrower whose owner died gets
OwnerDiedError.

The cluster: a head without CPUs (this driver's node, so what it fetches is not lost with
a worker node) and worker nodes with the resource "node1", started as from another host so
that each can be SIGKILLed alone and replaced."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ray
from cli_cluster import CliCluster, alive_nodes, use_short_session_root, wait_for

use_short_session_root()  # sockets live under it: see cli_cluster

# A killed node is noticed within a few seconds (its checks fail at once); a node merely
# slow on a loaded machine gets 2 s a check and five chances.
os.environ.update({"RAYC_health_check_initial_delay_ms": "200", "RAYC_health_check_period_ms": "300",
                   "RAYC_health_check_timeout_ms": "2000", "RAYC_health_check_failure_threshold": "5"})

SIZE = 10**7  # bytes: far above the 100 KiB kept inline


@pytest.fixture(scope="module")
def cluster():
    c = CliCluster()
    try:
        c.start_head(num_cpus=0, labels={"name": "head"})
        ray.init(address="auto")
        wait_for(lambda: len(alive_nodes()) == 1, what="the head alive")
        yield c
    finally:
        ray.shutdown()
        c.stop()


class Node1:
    """One worker node with the resource node1, killed with SIGKILL and replaced."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.root = None
        self.start()

    def start(self):
        before = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        self.root = self.cluster.add_outside_node(num_cpus=1, labels={"name": "node1"}, resources={"node1": 1})
        self.node_id = wait_for(lambda: next((n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] not in before),
                                             None), what="the new node alive")

    def raylet_pid(self):
        pids = glob.glob(os.path.join(self.root, "session_latest", "pids", "raylet*.pid"))
        assert pids, f"no raylet pid file under {self.root}"
        with open(pids[0]) as f:
            return int(f.read().strip())

    def wait_dead(self):
        wait_for(lambda: not any(n["Alive"] for n in ray.nodes() if n["NodeID"] == self.node_id),
                 timeout=30, what="the node marked dead")

    def kill(self):
        os.kill(self.raylet_pid(), signal.SIGKILL)
        self.wait_dead()
        self.cluster.stop_outside_node(self.root)

    def replace(self):
        self.kill()
        self.start()


@pytest.fixture
def node1(cluster):
    n = Node1(cluster)
    yield n
    if n.root:
        n.cluster.stop_outside_node(n.root)


def _pattern(seed):
    return (np.arange(SIZE, dtype=np.uint64) * 31 + seed).astype(np.uint8)


@ray.remote(max_retries=1)
def large_object(seed):
    return _pattern(seed)


@ray.remote
def dependent_task(x):
    return int(x.sum())


@ray.remote
def chain_step(x):
    return (x + 1).astype(np.uint8)


def test_basic_reconstruction(node1):
    obj = large_object.options(resources={"node1": 1}).remote(3)
    expected = int(_pattern(3).sum())
    assert ray.get(dependent_task.options(resources={"node1": 1}).remote(obj)) == expected

    node1.replace()
    # The only copy died with its node: the owner runs large_object again on the new node.
    assert ray.get(dependent_task.options(resources={"node1": 1}).remote(obj), timeout=120) == expected

    # Lost a second time: max_retries=1 is used up.
    node1.replace()
    with pytest.raises(ray.exceptions.ObjectReconstructionFailedMaxAttemptsExceededError) as info:
        ray.get(obj, timeout=120)
    assert isinstance(info.value, ray.exceptions.ObjectLostError)
    assert "max_retries=1" in str(info.value)


def test_max_retries_zero_not_reconstructed(node1):
    obj = large_object.options(resources={"node1": 1}, max_retries=0).remote(4)
    ray.wait([obj], fetch_local=False)
    node1.replace()
    with pytest.raises(ray.exceptions.ObjectReconstructionFailedMaxAttemptsExceededError):
        ray.get(obj, timeout=60)
    # A task that reads it fails too, with the same class of error.
    with pytest.raises(ray.exceptions.ObjectLostError):
        ray.get(dependent_task.options(resources={"node1": 1}).remote(obj), timeout=60)


def test_reconstruction_chain(node1):
    # Only the end of the chain is held: the links before it are kept as lineage (their
    # values released) and made again, in order, when the end is lost.
    obj = large_object.options(resources={"node1": 1}, max_retries=3).remote(5)
    for _ in range(3):
        obj = chain_step.options(resources={"node1": 1}, max_retries=3).remote(obj)
    ray.wait([obj], fetch_local=False)
    node1.replace()
    value = ray.get(obj, timeout=120)
    assert np.array_equal(value, (_pattern(5) + 3).astype(np.uint8))


def test_put_argument_of_lost_result(node1):
    # A put (on the driver's node, which lives) read by a task whose result is lost: the
    # task runs again with the put as its argument.
    arr = _pattern(6)
    ref = ray.put(arr)
    result = chain_step.options(resources={"node1": 1}).remote(ref)
    ray.wait([result], fetch_local=False)
    del ref
    node1.replace()
    assert np.array_equal(ray.get(result, timeout=120), (arr + 1).astype(np.uint8))


def test_actor_result_lost(node1):
    @ray.remote(resources={"node1": 1})
    class Maker:
        def make(self, seed):
            return _pattern(seed)

    maker = Maker.remote()
    obj = maker.make.remote(7)
    ray.wait([obj], fetch_local=False)
    node1.replace()
    with pytest.raises(ray.exceptions.ObjectLostError) as info:
        ray.get(obj, timeout=60)
    assert not isinstance(info.value, ray.exceptions.ObjectReconstructionFailedMaxAttemptsExceededError)
    assert "actor task" in str(info.value)


def test_owner_died(node1):
    @ray.remote(resources={"node1": 1})
    class Owner:
        def make(self):
            return [ray.put(_pattern(8))]

    owner = Owner.remote()
    [borrowed] = ray.get(owner.make.remote())
    node1.replace()  # the owner dies with its node
    start = time.time()
    with pytest.raises(ray.exceptions.OwnerDiedError):
        ray.get(borrowed, timeout=60)
    assert time.time() - start < 60


def test_owner_host_vanished(node1):
    # The owner's host stops answering without closing its connections (its raylet and the
    # owner frozen): once the node is marked dead, the borrower's get fails rather than
    # waiting on the silent owner.
    @ray.remote(resources={"node1": 1})
    class Owner:
        def make(self):
            return [ray.put(_pattern(9))]

        def pid(self):
            return os.getpid()

    owner = Owner.remote()
    [borrowed] = ray.get(owner.make.remote())
    frozen = [node1.raylet_pid(), ray.get(owner.pid.remote())]
    try:
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        start = time.time()
        with pytest.raises(ray.exceptions.OwnerDiedError):
            ray.get(borrowed, timeout=60)
        assert time.time() - start < 60
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGKILL)


def run_driver_through_loss(tmp_path, text, ready, env, lose):
    """Runs the driver script `text` in a process of its own (env added to this one's
    environment); once it prints `ready`, calls lose() and lets it go on. Returns the
    [error class name, message] the driver printed last."""
    script, flag = tmp_path / "driver.py", tmp_path / "lost"
    script.write_text(text)
    proc = subprocess.Popen([sys.executable, str(script), str(flag)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, **env), cwd=str(tmp_path))
    try:
        line = proc.stdout.readline()
        assert line.strip() == ready, line
        lose()
        flag.write_text("")
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return json.loads(out.strip().splitlines()[-1])


PUT_DRIVER = """
import json, os, sys, time
import numpy as np
import ray

ray.init(address="auto")
ref = ray.put(np.zeros(10**7, dtype=np.uint8))
ray.get(ref)
print("PUT", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.1)
try:
    ray.get(ref, timeout=60)
    print(json.dumps(["no error", ""]), flush=True)
except Exception as e:
    print(json.dumps([type(e).__name__, str(e)]), flush=True)
os._exit(0)
"""


def test_put_lost(node1, tmp_path):
    # A driver whose own node (where its puts live) dies: the put cannot be made again.
    sockets = glob.glob(os.path.join(node1.root, "session_latest", "sockets", "raylet.*.sock"))
    assert len(sockets) == 1, sockets

    def lose():
        node1.kill()
        node1.root = None

    name, message = run_driver_through_loss(tmp_path, PUT_DRIVER, "PUT",
                                            # the socket as the node registered it
                                            {"RAYC_RAYLET_SOCKET": os.path.realpath(sockets[0])}, lose)
    assert name == "ObjectLostError", (name, message)
    assert "created by a put" in message


EVICTED_DRIVER = """
import json, os, sys, time
import numpy as np
import ray

ray.init(address="auto")

@ray.remote(resources={"node1": 1})
def large_object():
    return np.zeros(10**7, dtype=np.uint8)

ref = large_object.remote()
ray.wait([ref], fetch_local=False)
print("READY", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.1)
try:
    ray.get(ref, timeout=60)
    print(json.dumps(["no error", ""]), flush=True)
except Exception as e:
    print(json.dumps([type(e).__name__, str(e)]), flush=True)
ray.shutdown()
"""


def test_lineage_evicted(node1, tmp_path):
    # A driver that keeps almost no lineage (max_lineage_bytes=1): its lost result cannot
    # be made again, and says why.
    name, message = run_driver_through_loss(tmp_path, EVICTED_DRIVER, "READY", {"RAYC_max_lineage_bytes": "1"},
                                            node1.replace)
    assert name == "ObjectReconstructionFailedLineageEvictedError", (name, message)
    assert "max_lineage_bytes" in message
