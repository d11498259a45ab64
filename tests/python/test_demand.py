"""Pending demand is exactly the work that waits, seen as an admin sees it: a head and two
raylets started with `rayc start` (secure), Python drivers whose tasks spill over all three
nodes, one of them killed with SIGKILL while it has queued work; afterwards `rayc status`
shows no demands, and keeps showing none across more than two report periods.
(tests/integration/test_demand.c covers the same ground through the demand API.)
"""

import signal
import subprocess
import time

import pytest

from cli_cluster import CliCluster, PYTHON, rayc, run_driver, use_short_session_root, wait_for

use_short_session_root()  # sockets live under it: see cli_cluster

SPREAD = (
    "import ray, time\n"
    "ray.init(address='auto')\n"
    "@ray.remote(num_cpus=1)\n"
    "def work(i):\n"
    "    time.sleep(0.02)\n"
    "    return i\n"
    "assert sum(ray.get([work.remote(i) for i in range(150)])) == sum(range(150))\n"
    "print('done')\n"
)

QUEUED_THEN_KILLED = (
    "import ray, sys, time\n"
    "ray.init(address='auto')\n"
    "@ray.remote(num_cpus=1)\n"
    "def slow(i):\n"
    "    time.sleep(0.5)\n"
    "    return i\n"
    "refs = [slow.remote(i) for i in range(150)]\n"
    "print('pending', flush=True)\n"
    "time.sleep(600)\n"
)


def status():
    return rayc("status", check=False).stdout


def no_demand(text):
    return "(no resource demands)" in text and "pending tasks/actors" not in text


def assert_demand_drains(after):
    wait_for(lambda: no_demand(status()), timeout=30, what=f"no demand after {after}")
    deadline = time.time() + 2.5  # more than two report periods (1 s each)
    while time.time() < deadline:
        text = status()
        assert no_demand(text), f"demand came back after {after}:\n{text}"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def cluster():
    c = CliCluster()
    try:
        c.start_head(num_cpus=2)
        c.add_node(num_cpus=2)
        c.add_node(num_cpus=2)
        wait_for(lambda: "6.0 CPU" in status(), what="three nodes with 6 CPUs")
        yield c
    finally:
        c.stop()


def test_spilled_jobs_leave_no_demand(cluster, tmp_path):
    for name in ("a.py", "b.py"):
        proc = run_driver(SPREAD, tmp_path, name=name)
        assert proc.returncode == 0, proc.stderr
    assert_demand_drains("two jobs of spilled-back tasks")


def test_killed_driver_leaves_no_demand(cluster, tmp_path):
    path = tmp_path / "killed.py"
    path.write_text(QUEUED_THEN_KILLED)
    proc = subprocess.Popen([PYTHON, str(path)], stdout=subprocess.PIPE, text=True, cwd=str(tmp_path))
    try:
        assert proc.stdout.readline().strip() == "pending"
        wait_for(lambda: "pending tasks/actors" in status(), what="the queued tasks shown as demand")
        time.sleep(1.5)  # backlog reports have reached the raylets
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert_demand_drains("a driver with queued tasks was killed")


PENDING_ACTORS = (
    "import ray, time\n"
    "ray.init(address='auto')\n"
    "@ray.remote(resources={'rare_accelerator': 2})\n"
    "class Needy:\n"
    "    def ping(self):\n"
    "        return 1\n"
    "@ray.remote\n"
    "class Plain:\n"
    "    def ping(self):\n"
    "        return 1\n"
    "a = Needy.remote()\n"
    "b = Plain.remote()\n"
    "assert ray.get(b.ping.remote(), timeout=60) == 1\n"
    "print('pending', flush=True)\n"
    "time.sleep(600)\n"
)


def test_pending_actor_demand_has_its_own_shape(cluster, tmp_path):
    # An actor that names a resource is pending with what it holds, as in Ray (1 CPU and
    # the resource: the demand a market leases hosts for), not with the one CPU a default
    # actor is placed by.
    path = tmp_path / "actors.py"
    path.write_text(PENDING_ACTORS)
    proc = subprocess.Popen([PYTHON, str(path)], stdout=subprocess.PIPE, text=True, cwd=str(tmp_path))
    try:
        assert proc.stdout.readline().strip() == "pending"
        wait_for(lambda: "{'CPU': 1, 'rare_accelerator': 2}: 1+ pending tasks/actors" in status(),
                 what="the actor's own shape under Demands")
        text = status()
        assert "{'CPU': 1}: " not in text, text
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert_demand_drains("a driver with a pending actor was killed")
