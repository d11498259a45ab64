"""Fair share between jobs on a saturated node (a head with 4 CPUs started with
`rayc start`): two driver processes, each its own job, keep far more tasks queued than the
node has CPUs; tasks sleep for a fixed time and report when they ran. Every figure is a
count over the tasks' own start and end times (CPU-seconds inside a window where both jobs
were backlogged), never a wall-clock bound.

- weights 1 and 3 get 25% and 75% (+-10%) of the CPU-seconds while both wait;
- a job of higher priority started after another's backlog runs before the rest of it;
- `rayc status` lists each running job with its priority, weight and the CPUs it holds;
- bad priorities and weights are refused (Python's JobConfig, the C API) with a clear error.
"""

import subprocess
import time

import pytest

from cli_cluster import (PYTHON, CliCluster, driver_result, rayc, start_driver, use_short_session_root,
                         wait_driver_ready, wait_for)

use_short_session_root()  # sockets live under it: see cli_cluster

CPUS = 4

DRIVER = r"""
import json, os, sys, time
import ray
from ray.job_config import JobConfig

priority, weight, n, dur, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
ray.init(address="auto", job_config=JobConfig(metadata={"rayc.job_priority": priority, "rayc.job_weight": weight}))

@ray.remote(num_cpus=1, max_retries=0)
def work(d):
    t0 = time.time()
    time.sleep(d)
    return (t0, time.time())

ray.get(work.remote(0))  # a worker of this job is up
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
refs = [work.remote(dur) for _ in range(n)]
print(json.dumps(ray.get(refs)), flush=True)
ray.shutdown()
"""


@pytest.fixture(scope="module")
def cluster():
    c = CliCluster()
    try:
        c.start_head(num_cpus=CPUS)
        yield c
    finally:
        c.stop()


def _start(tmp_path, name, priority, weight, n, dur, go):
    return start_driver(DRIVER, tmp_path, priority, weight, n, dur, go, name=f"{name}.py")


def _cpu_seconds(spans, lo, hi):
    return sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in spans)


def test_weights_share_cpu_seconds(cluster, tmp_path):
    go = tmp_path / "go"
    light = _start(tmp_path, "light", 0, 1, 360, 0.1, go)
    heavy = _start(tmp_path, "heavy", 0, 3, 360, 0.1, go)
    for p in (light, heavy):
        wait_driver_ready(p)
    go.write_text("")
    # While both are backlogged, `rayc status` shows both jobs with their weights.
    seen = {}

    def both_listed():
        out = rayc("status", check=False).stdout
        seen["status"] = out
        return "priority 0, weight 1:" in out and "priority 0, weight 3:" in out and " CPU held (" in out

    wait_for(both_listed, timeout=60, interval=0.5, what="rayc status listing both jobs")
    print(seen["status"][seen["status"].index("Jobs (fair share)"):])
    spans_l, spans_h = driver_result(light), driver_result(heavy)
    # The window: from when both had started running (plus two seconds to settle) to when
    # the first of them stopped being backlogged at the raylet. An owner pipelines up to
    # max_tasks_in_flight_per_worker (16) tasks per leased worker, so a job still asks for
    # leases only while more than CPUS * 16 of its tasks have not started: the window ends
    # at the start of each job's task with PIPELINED + 16 tasks still behind it.
    behind = CPUS * 16 + 16
    lo = max(min(s for s, _ in spans_l), min(s for s, _ in spans_h)) + 2.0
    hi = min(sorted(s for s, _ in spans_l)[-behind], sorted(s for s, _ in spans_h)[-behind])
    assert hi - lo > 3.0, f"the window where both jobs were backlogged is too short: {hi - lo:.2f}s"
    cl, ch = _cpu_seconds(spans_l, lo, hi), _cpu_seconds(spans_h, lo, hi)
    share = ch / (cl + ch)
    print(f"window {hi - lo:.1f}s: weight 1 {cl:.1f} CPU-s, weight 3 {ch:.1f} CPU-s: "
          f"heavy share {share:.1%} (target 75%)")
    assert 0.65 <= share <= 0.85, f"weight-3 job got {share:.1%} of the CPU-seconds (want 75% +- 10%)"
    # The node was saturated in the window: fair share did not leave CPUs idle.
    assert cl + ch >= 0.8 * CPUS * (hi - lo), f"only {cl + ch:.1f} CPU-s used in {hi - lo:.1f}s on {CPUS} CPUs"


def test_higher_priority_runs_first(cluster, tmp_path):
    go_low, go_high = tmp_path / "go_low", tmp_path / "go_high"
    low = _start(tmp_path, "low", 0, 1, 160, 0.1, go_low)
    high = _start(tmp_path, "high", 5, 1, 60, 0.1, go_high)
    for p in (low, high):
        wait_driver_ready(p)
    go_low.write_text("")
    time.sleep(1.5)  # the low job holds every CPU, with a long backlog
    go_high.write_text("")
    spans_low, spans_high = driver_result(low), driver_result(high)
    first_high = min(s for s, _ in spans_high)
    last_high = max(s for s, _ in spans_high)
    last_low = max(s for s, _ in spans_low)
    low_during = sum(1 for s, _ in spans_low if first_high < s <= last_high)
    print(f"high-priority tasks started over {last_high - first_high:.1f}s; low-priority tasks started "
          f"meanwhile: {low_during}; low's last start {last_low - last_high:.1f}s after high's")
    # The high job's 60 tasks all started while the low job still had work queued, and
    # the low job started few tasks meanwhile (only on leases it held when the high job
    # arrived, until they expired), where equal shares would have given it about 60.
    assert last_high < last_low, "the low-priority job ran out of work before the high-priority job finished"
    assert low_during <= 12, f"{low_during} low-priority tasks started while the high-priority job waited"


def test_bad_priority_and_weight_are_refused(cluster, tmp_path):
    code = r"""
import sys
import ray
from ray.job_config import JobConfig
for md in ({"rayc.job_weight": "0"}, {"rayc.job_weight": "-2"}, {"rayc.job_weight": "nan"},
           {"rayc.job_weight": "x"}, {"rayc.job_priority": "1.5"}, {"rayc.job_priority": str(2**40)}):
    try:
        JobConfig(metadata=md)
    except ValueError as e:
        print("REFUSED", e)
    else:
        print("ACCEPTED", md)
# The C API refuses it too (rayc_init_options.job_weight), before it connects.
from ray import _raylet
try:
    _raylet.init(address=sys.argv[1], job_weight=-1.0)
except _raylet.RaycError as e:
    print("C REFUSED", e.args[1])
else:
    print("C ACCEPTED")
ray.init(address="auto", job_config=JobConfig(metadata={"rayc.job_priority": "-3", "rayc.job_weight": "0.5"}))
print("OK", ray.get(ray.remote(lambda: 7).remote()))
"""
    path = tmp_path / "bad.py"
    path.write_text(code)
    p = subprocess.run([PYTHON, str(path), cluster.address], capture_output=True, text=True, timeout=120,
                       cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert sum(1 for ln in lines if ln.startswith("REFUSED")) == 6, p.stdout
    assert any("rayc.job_weight" in ln and "> 0" in ln for ln in lines), p.stdout
    assert any(ln.startswith("C REFUSED") and "job_weight -1 must be a finite number > 0" in ln for ln in lines), p.stdout
    assert "OK 7" in lines, p.stdout
