"""Logs, task events and the timeline on a real two-node cluster (security on, started with
`rayc start`): `rayc logs` lists and prints the nodes' files through their raylets
(--worker, --actor and --task, on the head and on the other node, and --follow), worker
logs rotate at RAYC_rotation_max_bytes keeping RAYC_rotation_backup_count backups, and the
task events the workers report make `rayc list tasks`, `rayc summary tasks` and
`rayc timeline` (a Chrome trace)."""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cli_cluster import RAYC, joined_cluster, nodes_by_name, rayc, run_driver, use_short_session_root, wait_for

use_short_session_root()  # sockets live under it: see cli_cluster

ROTATE_BYTES = 20000
os.environ["RAYC_rotation_max_bytes"] = str(ROTATE_BYTES)
os.environ["RAYC_rotation_backup_count"] = "2"
os.environ["RAYC_gcs_mark_task_failed_on_job_done_delay_ms"] = "2000"


@pytest.fixture(scope="module")
def cluster():
    with joined_cluster(dict(num_cpus=2, labels={"name": "head"}), dict(num_cpus=2, labels={"name": "w1"})) as c:
        yield c


def on(node_id):
    return NodeAffinitySchedulingStrategy(node_id, soft=False)


@ray.remote
def say(tag):
    print(f"TASK-LINE {tag}", flush=True)
    ctx = ray.get_runtime_context()
    return {"task_id": ctx.get_task_id(), "node_id": ctx.get_node_id(), "pid": os.getpid()}


@ray.remote(max_retries=0)
def boom():
    print("BOOM-LINE before the error", flush=True)
    raise ValueError("boom on purpose")


@ray.remote
def chatter(tag, rounds, size):
    """Writes `rounds` chunks of `size` bytes, a little more than a second apart (the worker
    checks its files' sizes once a second)."""
    for i in range(rounds):
        print(f"{tag}-{i} " + "x" * size, flush=True)
        time.sleep(1.3)
    return os.getpid()


@ray.remote
class Printer:
    def __init__(self):
        print("ACTOR-INIT-LINE", flush=True)

    def say(self, x):
        print(f"ACTOR-LINE {x}", flush=True)
        ctx = ray.get_runtime_context()
        return {"actor_id": ctx.get_actor_id(), "node_id": ctx.get_node_id(), "pid": os.getpid()}


@pytest.fixture(scope="module")
def ran(cluster):
    """Tasks on both nodes, one that fails, and an actor on the other node."""
    _, by_name = nodes_by_name()
    head, w1 = by_name["head"], by_name["w1"]
    on_head = ray.get(say.options(scheduling_strategy=on(head)).remote("on-head"))
    on_w1 = ray.get(say.options(scheduling_strategy=on(w1)).remote("on-w1"))
    with pytest.raises(Exception):
        ray.get(boom.options(scheduling_strategy=on(head)).remote())
    printer = Printer.options(scheduling_strategy=on(w1)).remote()
    actor = ray.get(printer.say.remote("hello-from-actor"))
    return {"head": head, "w1": w1, "on_head": on_head, "on_w1": on_w1, "actor": actor, "printer": printer}


def list_tasks(*args):
    out = rayc("list", "tasks", "--format", "json", "--limit", "10000", *args).stdout
    return json.loads(out)


def tasks_where(rows, **want):
    return [r for r in rows if all(r.get(k) == v for k, v in want.items())]


def settled():
    """The task rows once both halves of the fixture's tasks arrived: the owner's (the
    driver's) and the executors' (workers report once a second)."""
    def both_halves():
        rows = list_tasks()
        ok = [r for r in tasks_where(rows, name="say", state="FINISHED") if r["worker_pid"]]
        bad = [r for r in tasks_where(rows, name="boom", state="FAILED") if r["worker_pid"]]
        return rows if len(ok) >= 2 and bad else None

    return wait_for(both_halves, timeout=30, what="say FINISHED x2 and boom FAILED, with their workers")


def test_list_tasks_states_and_names(ran):
    rows = settled()
    by_id = {r["task_id"]: r for r in rows}
    for key, node in (("on_head", ran["head"]), ("on_w1", ran["w1"])):
        row = by_id[ran[key]["task_id"]]
        assert row["state"] == "FINISHED" and row["type"] == "NORMAL_TASK"
        assert row["node_id"] == node
        assert row["worker_pid"] == ran[key]["pid"]
        assert row["start_time_ms"] > 0 and row["end_time_ms"] >= row["start_time_ms"]
    assert by_id[ran["on_head"]["task_id"]]["func_or_class_name"].endswith("say")
    failed = tasks_where(rows, name="boom")[0]
    assert failed["state"] == "FAILED" and failed["error_type"] == "TASK_EXECUTION_EXCEPTION"
    method = wait_for(lambda: tasks_where(list_tasks(), type="ACTOR_TASK", state="FINISHED"), timeout=30,
                      what="the actor call FINISHED")
    assert method[0]["actor_id"] == ran["actor"]["actor_id"]
    # Ray's columns, and the filters the GCS applies.
    table = rayc("list", "tasks").stdout.splitlines()[0].split()
    assert table == ["TASK_ID", "ATTEMPT_NUMBER", "NAME", "STATE", "JOB_ID", "ACTOR_ID", "TYPE",
                     "FUNC_OR_CLASS_NAME", "PARENT_TASK_ID", "NODE_ID", "WORKER_ID", "ERROR_TYPE"]
    only_failed = list_tasks("--filter", "state=FAILED")
    assert only_failed and all(r["state"] == "FAILED" for r in only_failed)
    assert [r["name"] for r in list_tasks("--filter", "name=boom")] == ["boom"]
    # Several filters: all must hold (Ray's).
    assert [r["name"] for r in list_tasks("--filter", "state=FAILED", "--filter", "name=boom")] == ["boom"]
    assert list_tasks("--filter", "state=FINISHED", "--filter", "name=boom") == []
    tid = ran["on_head"]["task_id"]
    job = by_id[tid]["job_id"]
    assert [r["task_id"] for r in list_tasks("--filter", f"task_id={tid}", "--filter", f"job_id={job}")] == [tid]
    assert all(r["job_id"] == job for r in list_tasks("--filter", f"job_id={job}"))
    said = list_tasks("--filter", "name=say", "--filter", "state!=FAILED")
    assert len(said) >= 2 and all(r["name"] == "say" and r["state"] != "FAILED" for r in said)
    bad = rayc("list", "tasks", "--filter", "colour=red", check=False)
    assert bad.returncode == 2 and "cannot filter on 'colour'" in bad.stderr


def test_summary_tasks_counts(ran):
    settled()
    rows = list_tasks()
    summary = json.loads(rayc("summary", "tasks", "--format", "json").stdout)
    for func, group in summary["summary"].items():
        mine = [r for r in rows if r["func_or_class_name"] == func and r["type"] == group["type"]]
        counts = {}
        for r in mine:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        assert group["state_counts"] == counts, func
    assert summary["total_tasks"] == len(tasks_where(rows, type="NORMAL_TASK"))
    text = rayc("summary", "tasks").stdout
    assert "FUNC_OR_CLASS_NAME" in text and "FAILED: 1" in text
    actors = json.loads(rayc("summary", "actors", "--format", "json").stdout)
    assert actors["summary"]["Printer"]["state_counts"].get("ALIVE") == 1
    objects = json.loads(rayc("summary", "objects", "--format", "json").stdout)
    assert len(objects["nodes"]) == 2 and objects["total_bytes"] > 0


def test_timeline_is_a_chrome_trace(ran, tmp_path):
    settled()
    path = tmp_path / "trace.json"
    out = rayc("timeline", "--output", str(path)).stdout
    assert "Trace file written to" in out
    events = json.loads(path.read_text())
    runs = {}
    for e in events:
        assert e["ph"] == "X" and e["dur"] >= 0 and e["ts"] > 1.6e15  # µs since the epoch (after 2020)
        assert e["pid"].startswith("Node ") and e["tid"].startswith("Worker ")
        runs.setdefault(e["args"]["task_id"], []).append(e)
    assert all(len(v) == 1 for v in runs.values()), "one complete event per task run"
    for key in ("on_head", "on_w1"):
        (e,) = runs[ran[key]["task_id"]]
        assert e["name"] == "say" and f"(pid {ran[key]['pid']})" in e["tid"]
        assert e["dur"] < 60e6
    assert json.loads(rayc("timeline", "--output", "-").stdout)


def test_logs_lists_files_of_both_nodes(ran):
    out = rayc("logs").stdout
    headers = re.findall(r"^=== node ([0-9a-f]{56}) ", out, re.M)
    assert sorted(headers) == sorted([ran["head"], ran["w1"]])
    assert "raylet.out" in out and re.search(r"^worker-[0-9a-f]{8}\.out$", out, re.M)
    only = rayc("logs", "--node", ran["w1"][:12], "worker-*.err").stdout
    assert re.findall(r"^=== node ([0-9a-f]{56}) ", only, re.M) == [ran["w1"]]
    assert all(line.endswith(".err") for line in only.splitlines()[1:])
    missing = rayc("logs", "--node", ran["head"][:12], "no-such-file.log", check=False)
    assert missing.returncode == 1 and "no-such-file.log" in missing.stderr
    sneaky = rayc("logs", "--node", ran["head"][:12], "../../etc/passwd", check=False)
    assert sneaky.returncode != 0 and "root:" not in sneaky.stdout


def test_logs_by_actor_task_and_worker(ran):
    # The actor runs on w1: its lines come through w1's raylet.
    out = wait_for(lambda: rayc("logs", "--actor", ran["actor"]["actor_id"]).stdout, what="actor log")
    assert "ACTOR-INIT-LINE" in out and "ACTOR-LINE hello-from-actor" in out
    # A task's own lines, from the node that ran it (the head's and w1's).
    for key in ("on_head", "on_w1"):
        tid = ran[key]["task_id"]
        out = wait_for(lambda: rayc("logs", "--task", tid, check=False).stdout, timeout=30, what=f"{key} task log")
        other = "on-w1" if key == "on_head" else "on-head"
        assert f"TASK-LINE {key.replace('_', '-')}" in out
        assert f"TASK-LINE {other}" not in out
    # A worker by pid (the node found by asking each).
    out = rayc("logs", "--worker", str(ran["on_w1"]["pid"])).stdout
    assert "TASK-LINE on-w1" in out
    unknown = rayc("logs", "--worker", "999999999", check=False)
    assert unknown.returncode == 1 and "pid 999999999" in unknown.stderr


def test_logs_follow_sees_new_lines(ran):
    printer = ran["printer"]
    proc = subprocess.Popen([RAYC, "logs", "--actor", ran["actor"]["actor_id"], "--follow", "--tail", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        time.sleep(1.0)
        ray.get(printer.say.remote("appended-later"))
        wait_for(lambda: any("ACTOR-LINE appended-later" in l for l in lines), timeout=20,
                 what="the appended line through --follow")
        assert proc.poll() is None, "--follow keeps running"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_tasks_of_a_killed_driver_fail(cluster, tmp_path):
    """A driver killed while its task runs reports nothing more: once its job is finished
    (the raylet saw the driver go), the GCS fails the task that never ended."""
    proc = run_driver(
        "import os, signal, time\n"
        "import ray\n"
        "ray.init(address='auto')\n"
        "@ray.remote\n"
        "def orphan():\n"
        "    time.sleep(120)\n"
        "ref = orphan.remote()\n"
        "time.sleep(4)  # its states are reported (once a second)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n", tmp_path, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    try:
        rows = wait_for(lambda: tasks_where(list_tasks("--filter", "name=orphan"), state="FAILED"), timeout=40,
                        what="the killed driver's task FAILED")
    except AssertionError as e:
        raise AssertionError(f"{e}\ntasks: {list_tasks('--filter', 'name=orphan')}\n"
                             f"jobs:\n{rayc('list', 'jobs').stdout}") from None
    assert rows[0]["error_type"] == "WORKER_DIED" and "job finished" in rows[0]["error_message"]


def test_worker_logs_rotate(ran, cluster, capfd):
    w1 = ran["w1"]
    # 8 chunks of 11 kB at 20 kB per file: a rotation every second chunk, two backups kept.
    pid = ray.get(chatter.options(scheduling_strategy=on(w1)).remote("ROTATE", 8, 11000))
    time.sleep(1.5)  # the worker's next size check
    current = rayc("logs", "--worker", str(pid), "--tail", "-1").stdout
    assert current.startswith(":job_id:"), "a rotated file starts again with the job marker"
    assert len(current) < 3 * ROTATE_BYTES
    listing = rayc("logs", "--node", w1[:12]).stdout.splitlines()
    rotated = [l for l in listing if re.fullmatch(r"worker-[0-9a-f]{8}\.out\.\d+", l)]
    bases = {l.rsplit(".", 1)[0] for l in rotated}
    assert len(bases) == 1, rotated
    base = bases.pop()
    assert f"{base}.1" in listing and f"{base}.2" in listing
    assert f"{base}.3" not in listing, "backup count 2"
    newest = rayc("logs", "--node", w1[:12], f"{base}.1", "--tail", "-1").stdout
    assert "ROTATE-7 " in current + newest and "ROTATE-0 " not in current + newest
    # The driver's log monitor followed the file across rotations: every chunk, once.
    time.sleep(1.0)
    printed = capfd.readouterr().out
    for i in range(8):
        assert printed.count(f"ROTATE-{i} ") == 1, i
