"""Spillback loops: two raylets whose views of the cluster disagree. The second raylet
reports its resources once, at registration, and never again (its report period is set to
ten minutes), so the rest of the cluster believes it free while it is busy. The driver's
own raylet (the head's), busy too, keeps sending a task's lease request there, and that
raylet keeps rejecting it (grant_or_reject). The owner follows only a bounded number of such
spillbacks, then waits with an explanation and asks again later; the task runs once a CPU
is really free."""

import glob
import os
import shutil
import tempfile
import time

import pytest

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cli_cluster import CliCluster, alive_nodes, use_short_session_root, wait_for

use_short_session_root()  # sockets live under it: see cli_cluster

STALE = {"RAYC_raylet_report_resources_period_milliseconds": "600000", "RAYC_raylet_report_keepalive_ms": "600000"}
# The head (GCS and raylet) runs with the defaults.
FRESH = {"RAYC_raylet_report_resources_period_milliseconds": "100", "RAYC_raylet_report_keepalive_ms": "1000"}
REJECTED = "rejected (grant_or_reject"
SPILLED = "spills back to node"
MAX_BOUNCES = 3  # lease_spillback_max_bounces' default
BUSY_S = 20


def log_count(root, text):
    """Lines holding text in the raylet logs of every session under root."""
    n = 0
    for path in glob.glob(os.path.join(root, "session_2*", "logs", "raylet.err")):
        with open(path, errors="replace") as f:
            n += sum(text in line for line in f)
    return n


@pytest.fixture
def cluster(monkeypatch):
    # Object stores in a directory of the test's own: its raylets and `rayc stop` sweep only
    # there (other clusters may share this host).
    shm = tempfile.mkdtemp(prefix="rayc-spill-", dir="/dev/shm")
    monkeypatch.setenv("RAYC_plasma_directory", shm)
    c = CliCluster()
    try:
        with monkeypatch.context() as m:
            for k, v in FRESH.items():
                m.setenv(k, v)
            c.start_head(num_cpus=1, labels={"name": "fresh"})
        with monkeypatch.context() as m:
            for k, v in STALE.items():
                m.setenv(k, v)
            c.add_node(num_cpus=1, labels={"name": "stale"})
        ray.init(address="auto")
        wait_for(lambda: len(alive_nodes()) == 2, what="both nodes alive")
        wait_for(lambda: ray.available_resources().get("CPU") == 2, what="both CPUs free")
        yield c
    finally:
        ray.shutdown()
        c.stop()
        shutil.rmtree(shm, ignore_errors=True)


@ray.remote(num_cpus=1)
def occupy(marker, seconds):
    open(marker, "w").close()
    time.sleep(seconds)
    return ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=1)
def quick():
    return ray.get_runtime_context().get_node_id()


def test_spillback_between_disagreeing_views_is_bounded(cluster, tmp_path, capfd):
    by_name = alive_nodes()
    # The driver's raylet is the head's: the fresh one.
    assert ray.get_runtime_context().get_node_id() == by_name["fresh"]
    on = {n: NodeAffinitySchedulingStrategy(by_name[n], soft=False) for n in by_name}
    a = occupy.options(scheduling_strategy=on["fresh"]).remote(str(tmp_path / "a"), BUSY_S)
    b = occupy.options(scheduling_strategy=on["stale"]).remote(str(tmp_path / "b"), BUSY_S)
    wait_for(lambda: (tmp_path / "a").exists() and (tmp_path / "b").exists(), timeout=90,
             what="a task running on each node")
    # The stale node never reported its CPU taken: the cluster's view still has it free.
    assert ray.available_resources().get("CPU", 0) >= 1

    rejected_before = log_count(cluster.root, REJECTED)
    spilled_before = log_count(cluster.root, SPILLED)
    started = time.time()
    where = ray.get(quick.remote(), timeout=180)
    waited = time.time() - started
    rejected = log_count(cluster.root, REJECTED) - rejected_before
    spilled = log_count(cluster.root, SPILLED) - spilled_before
    with capfd.disabled():
        print(f"\nthe task waited {waited:.1f} s; spillbacks {spilled}, rejected {rejected}")

    # It ran once a CPU was really free (no sooner: both were busy).
    assert where in by_name.values()
    assert ray.get([a, b], timeout=60) == [by_name["fresh"], by_name["stale"]]
    # The views did disagree: the request was bounced...
    assert rejected >= MAX_BOUNCES, (rejected, spilled)
    # ...a bounded number of times: the bound, then one try per wait (1 s, 2 s, 4 s, then
    # 5 s each) while the CPUs stayed busy, not once per round trip for as long as they did.
    holds = 3 + BUSY_S // 5 + 2
    assert rejected <= MAX_BOUNCES + holds, (rejected, spilled, waited)
    err = capfd.readouterr().err
    assert "went back and forth between raylets" in err, err[-3000:]
    assert "their views disagree" in err
