"""Frozen hosts: a raylet stopped with SIGSTOP answers nothing while its connections stay
open. Work that would go to it moves elsewhere (owners' lease requests to it end at
worker_lease_spillback_timeout_ms); the GCS's health checks mark it dead after
health_check_failure_threshold missed checks and not before; a freeze shorter than that
costs nothing; a raylet that wakes up to find itself declared dead exits.

The cluster: a head (1 CPU) and a second node (2 CPUs) started as from another host,
under its own session root, so its raylet's pid is its own to stop.
"""

import os
import signal
import time

import pytest

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from cli_cluster import CliCluster, alive_nodes, pid_running, use_short_session_root, wait_for

# Detection: 5 checks of up to 1.5 s each, 1 s apart: at least 7.5 s after a freeze begins.
THRESHOLD, TIMEOUT_MS, PERIOD_MS = 5, 1500, 1000
CONFIG = {
    "RAYC_health_check_initial_delay_ms": "1000",
    "RAYC_health_check_period_ms": str(PERIOD_MS),
    "RAYC_health_check_timeout_ms": str(TIMEOUT_MS),
    "RAYC_health_check_failure_threshold": str(THRESHOLD),
    "RAYC_worker_lease_spillback_timeout_ms": "2000",
}
EARLIEST_DEATH_S = THRESHOLD * TIMEOUT_MS / 1000.0


@pytest.fixture(scope="module")
def cluster():
    use_short_session_root()
    saved = {k: os.environ.get(k) for k in CONFIG}
    os.environ.update(CONFIG)
    c = CliCluster()
    try:
        c.start_head(num_cpus=1, labels={"name": "head"})
        yield c
    finally:
        ray.shutdown()
        c.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _raylet_pid(root):
    with open(os.path.join(root, "session_latest", "pids", "raylet.pid")) as f:
        return int(f.read().strip())


def _start_b(cluster):
    root = cluster.add_outside_node(num_cpus=2, labels={"name": "b"})
    if not ray.is_initialized():
        ray.init(address="auto")
    b = wait_for(lambda: alive_nodes().get("b"), what="node b alive")
    wait_for(lambda: ray.available_resources().get("CPU") == 3, what="all CPUs free")
    return root, b


@ray.remote(num_cpus=1, max_retries=3)
def where(i):
    time.sleep(0.3)
    return i, ray.get_runtime_context().get_node_id()


def _node_alive(node_id):
    return any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes())


def test_short_freeze_is_no_death(cluster):
    root, b = _start_b(cluster)
    pid = _raylet_pid(root)
    try:
        os.kill(pid, signal.SIGSTOP)
        refs = [where.remote(i) for i in range(6)]
        end = time.time() + 3.0
        while time.time() < end:
            assert _node_alive(b), "node b was declared dead during a 3 s freeze"
            time.sleep(0.2)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert sorted(i for i, _ in ray.get(refs, timeout=60)) == list(range(6))
    # Well past the detection time: the node is still alive and its raylet runs.
    end = time.time() + EARLIEST_DEATH_S + 3
    while time.time() < end:
        assert _node_alive(b), "node b was declared dead after a 3 s freeze had ended"
        time.sleep(0.5)
    assert pid_running(pid)
    cluster.stop_outside_node(root)
    wait_for(lambda: not _node_alive(b), what="node b gone after its stop")


def _children(pid):
    """The processes whose parent is pid (a raylet's workers)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().split(")")[-1].split()[1]) == pid:
                        kids.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
    return kids


@ray.remote(num_cpus=1, max_retries=3)
def long_task(i, log, slow_node):
    """Runs 40 s on slow_node (longer than it takes to declare that node dead, so that it
    cannot finish there before its node freezes), half a second elsewhere."""
    node = ray.get_runtime_context().get_node_id()
    with open(log, "a") as f:
        f.write(f"{i} {node}\n")
    time.sleep(40 if node == slow_node else 0.5)
    return i, node


@ray.remote(num_cpus=1, max_retries=3)
def late_task():
    return ray.get_runtime_context().get_node_id()


def test_long_freeze_moves_work_marks_dead_and_raylet_exits(cluster, tmp_path):
    root, b = _start_b(cluster)
    head = alive_nodes()["head"]
    pid = _raylet_pid(root)
    # Workers on b first, so that tasks start there at once.
    ray.get([where.remote(i) for i in range(6)], timeout=60)
    log = str(tmp_path / "started")
    # Soft affinity: on b while b lives, elsewhere once it is dead.
    on_b = NodeAffinitySchedulingStrategy(b, soft=True)
    refs = [long_task.options(scheduling_strategy=on_b).remote(i, log, b) for i in range(3)]

    def started_on_b():
        try:
            with open(log) as f:
                return sum(1 for line in f if line.split()[1] == b)
        except FileNotFoundError:
            return 0

    wait_for(lambda: started_on_b() >= 1, timeout=30, what="a task running on node b")
    # The whole host stops: its raylet and its workers.
    # The raylet first, so that it starts no worker while its workers are being stopped.
    frozen_at = time.time()
    os.kill(pid, signal.SIGSTOP)
    frozen = [pid]
    todo = _children(pid)
    while todo:
        p = todo.pop()
        os.kill(p, signal.SIGSTOP)
        frozen.append(p)
        todo += _children(p)
    try:
        # Its lease request goes to b, which never answers it.
        late = late_task.options(scheduling_strategy=on_b).remote()
        seen_alive_until = 0.0
        dead_at = None
        while dead_at is None and time.time() - frozen_at < 60:
            if _node_alive(b):
                seen_alive_until = time.time() - frozen_at
            else:
                dead_at = time.time() - frozen_at
            time.sleep(0.2)
        assert dead_at is not None, "a raylet frozen for 60 s was never declared dead"
        # Not before THRESHOLD checks could have failed.
        assert seen_alive_until >= EARLIEST_DEATH_S - 1.0, (seen_alive_until, dead_at)
        # Its tasks are retried on the head, while b is still frozen.
        results = ray.get(refs, timeout=60)
        assert sorted(i for i, _ in results) == [0, 1, 2]
        assert {node for _, node in results} == {head}, results
        assert ray.get(late, timeout=60) == head
        assert pid_running(pid)  # still frozen: nothing killed it
    finally:
        for p in frozen:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
    # Awake, it learns that it was declared dead and leaves.
    wait_for(lambda: not pid_running(pid), timeout=60, what="the frozen raylet to exit after SIGCONT")
    with open(os.path.join(root, "session_latest", "logs", "raylet.err")) as f:
        raylet_log = f.read()
    assert "declared this node dead" in raylet_log, raylet_log[-2000:]
    assert not _node_alive(b)
    # The cluster goes on without it.
    assert len(ray.get([where.remote(i) for i in range(3)], timeout=60)) == 3
    cluster.stop_outside_node(root)
