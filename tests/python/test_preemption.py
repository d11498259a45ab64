"""Preemption of retriable tasks for jobs of higher priority (job_fair_share_preemption),
on a saturated single-node cluster started with `rayc start` (2 CPUs, security on).

A job of priority 0 runs two long tasks that hold both CPUs: one retriable
(max_retries=1), then one not (max_retries=0), of the same shape. Once both run, a job of priority 5 submits a
short task. Every figure comes from the tasks' own start times, compared with each other,
never with a wall-clock bound:

- preemption off (the default): the high-priority task starts only once a low-priority
  task has finished; each low-priority task ran once;
- preemption on, with the CPUs held by an actor and the non-retriable task: nothing is
  preempted, the high-priority task waits as without preemption;
- preemption on (set on `rayc start --head`, which hands it to the raylets): the
  high-priority task starts while the non-retriable low-priority task still runs; the
  retriable one was killed and ran again (its result is still right) without using its
  one retry: its second attempt crashes and a third runs; the non-retriable one ran
  exactly once, undisturbed; the raylet logged the preemption.
"""

import glob
import os

from cli_cluster import (CliCluster, driver_result, session_root, start_driver, use_short_session_root,
                         wait_driver_ready, wait_for)

use_short_session_root()  # sockets live under it: see cli_cluster

CPUS = 2
LONG_S = 12.0  # a low-priority task's first attempt; later attempts are short

LOW = r"""
import json, os, sys, time
import ray
from ray.job_config import JobConfig

logdir, go, dur, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ray.init(address="auto", job_config=JobConfig(metadata={"rayc.job_priority": "0"}))

@ray.remote(num_cpus=1)
def work(tag, x):
    path = os.path.join(logdir, tag)
    attempt = 1
    if os.path.exists(path):
        with open(path) as f:
            attempt = len(f.read().splitlines()) + 1
    t0 = time.time()
    with open(path, "a") as f:
        f.write(f"{t0} {os.getpid()}\n")
    if tag == "retry" and attempt == 2:
        os._exit(1)  # a crash after a preemption: only a retry the preemption did not use runs it again
    time.sleep(dur if attempt == 1 else 0.2)
    return {"value": x * 10, "start": t0, "end": time.time(), "attempt": attempt}

@ray.remote(num_cpus=1)
def warm():
    return os.getpid()

@ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)
class Holder:
    def hold(self, d):
        t0 = time.time()
        with open(os.path.join(logdir, "actor"), "a") as f:
            f.write(f"{t0} {os.getpid()}\n")
        time.sleep(d)
        return {"start": t0, "end": time.time()}

ray.get([warm.remote() for _ in range(2)])  # workers of this job are up
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
first_tag = "retry" if mode == "tasks" else "actor"
if mode == "tasks":
    first = work.options(max_retries=1).remote("retry", 2)
else:  # an actor (restartable) holds the other CPU
    first = Holder.remote().hold.remote(dur)
while not os.path.exists(os.path.join(logdir, first_tag)):
    time.sleep(0.01)
# Granted last, so the first a careless raylet would take (most recently granted first).
keep = work.options(max_retries=0).remote("keep", 1)
print(json.dumps({"keep": ray.get(keep), first_tag: ray.get(first)}), flush=True)
ray.shutdown()
"""

HIGH = r"""
import json, os, sys, time
import ray
from ray.job_config import JobConfig

go = sys.argv[1]
ray.init(address="auto", job_config=JobConfig(metadata={"rayc.job_priority": "5"}))

@ray.remote(num_cpus=1, max_retries=0)
def quick():
    return time.time()

ray.get(quick.remote())  # a worker of this job is up
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
submitted = time.time()
start = ray.get(quick.remote())
print(json.dumps({"submitted": submitted, "start": start}), flush=True)
ray.shutdown()
"""


def _raylet_log():
    text = ""
    for path in glob.glob(os.path.join(session_root(), "session_2*", "logs", "raylet.err")):
        with open(path, errors="replace") as f:
            text += f.read()
    return text


def _run(tmp_path, preemption, mode="tasks"):
    """One cluster, the scenario of the module comment; (low result, high result, starts per
    low task, the raylet's log)."""
    saved = os.environ.get("RAYC_job_fair_share_preemption")
    if preemption:
        os.environ["RAYC_job_fair_share_preemption"] = "1"
    c = CliCluster()
    try:
        try:
            c.start_head(num_cpus=CPUS)
        finally:
            if saved is None:
                os.environ.pop("RAYC_job_fair_share_preemption", None)
            else:
                os.environ["RAYC_job_fair_share_preemption"] = saved
        logdir = tmp_path / "starts"
        logdir.mkdir()
        go_low, go_high = tmp_path / "go_low", tmp_path / "go_high"
        # The high-priority driver first, alone: its first task must not find the CPUs held
        # by the low-priority job's first tasks (whose workers may take seconds to start
        # under load), or it would rightly preempt one of them before the scenario begins.
        high = start_driver(HIGH, tmp_path, go_high, name="high.py")
        low = None
        try:
            wait_driver_ready(high)
            low = start_driver(LOW, tmp_path, logdir, go_low, LONG_S, mode, name="low.py")
            wait_driver_ready(low)
            go_low.write_text("")
            # Both low-priority tasks hold the node's CPUs.
            first_tag = "retry" if mode == "tasks" else "actor"
            wait_for(lambda: (logdir / "keep").exists() and (logdir / first_tag).exists(), timeout=60,
                     what="both CPUs held by the low-priority job")
            go_high.write_text("")
            hi, lo = driver_result(high), driver_result(low)
        finally:
            for p in (low, high):
                if p is not None and p.poll() is None:
                    p.kill()
        starts = {tag: (logdir / tag).read_text().splitlines() for tag in ("keep", first_tag)}
        return lo, hi, starts, _raylet_log()
    finally:
        c.stop()


def test_running_tasks_are_not_preempted_by_default(tmp_path):
    lo, hi, starts, log = _run(tmp_path, preemption=False)
    print(f"high-priority task waited {hi['start'] - hi['submitted']:.1f}s")
    assert lo["keep"]["value"] == 10 and lo["retry"]["value"] == 20
    assert len(starts["keep"]) == 1 and len(starts["retry"]) == 1, starts
    assert lo["keep"]["attempt"] == 1 and lo["retry"]["attempt"] == 1, lo
    first_end = min(lo["keep"]["end"], lo["retry"]["end"])
    # It waited for a low-priority task to finish (the clocks are this host's).
    assert hi["start"] >= first_end - 0.05, (hi, lo)
    assert "preempting lease" not in log


def test_preemption_makes_room_for_a_higher_priority_job(tmp_path):
    lo, hi, starts, log = _run(tmp_path, preemption=True)
    print(f"high-priority task waited {hi['start'] - hi['submitted']:.1f}s")
    # The high-priority task ran while the non-retriable task still ran its 12 s: it got
    # the CPU of the retriable one.
    assert hi["start"] < lo["keep"]["end"], (hi, lo)
    # Every result is right; the retriable task ran again, the other one only once. The
    # preemption did not use the retriable task's one retry: its second attempt crashed
    # and a third one ran.
    assert lo["keep"]["value"] == 10 and lo["retry"]["value"] == 20
    assert len(starts["keep"]) == 1 and lo["keep"]["attempt"] == 1, (starts, lo)
    assert len(starts["retry"]) == 3 and lo["retry"]["attempt"] == 3, (starts, lo)
    # The retry started after the high-priority task had its CPU, not before.
    assert lo["retry"]["start"] >= hi["start"] - 0.05, (hi, lo)
    # The raylet logged it: which lease, job, task and worker, for which job.
    lines = [ln for ln in log.splitlines() if "preempting lease" in ln]
    first_pid = int(starts["retry"][0].split()[1])
    assert len(lines) == 1, "\n".join(lines)
    assert "priority 0, asked for task '" in lines[0] and f"pid {first_pid})" in lines[0], lines
    assert "priority 5, task 'quick'" in lines[0], lines


def test_actors_and_non_retriable_tasks_are_never_preempted(tmp_path):
    """With preemption on, a low-priority job whose CPUs are held by an actor (restartable)
    and a max_retries=0 task keeps both: the high-priority task waits for the task to end."""
    lo, hi, starts, log = _run(tmp_path, preemption=True, mode="actor")
    print(f"high-priority task waited {hi['start'] - hi['submitted']:.1f}s")
    assert lo["keep"]["value"] == 10 and lo["keep"]["attempt"] == 1, lo
    assert len(starts["keep"]) == 1 and len(starts["actor"]) == 1, starts
    assert hi["start"] >= min(lo["keep"]["end"], lo["actor"]["end"]) - 0.05, (hi, lo)
    assert "preempting lease" not in log
