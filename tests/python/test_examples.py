"""The Python example workloads (examples/python/) run end to end with --small.

Each script runs as a subprocess that starts its own local cluster through ray.init()
(the environment is inherited: PYTHONPATH=build/python and RAYC_SESSION_ROOT come from
the ctest entry). This module starts no cluster itself (ray_start is deliberately not
used), and each script gets a fresh session root (below RAYC_SESSION_ROOT when its socket
paths fit there, else in /tmp), so its ray.init() finds no running cluster and starts its own.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python")
TIMEOUT_S = 300


# A session's raylet socket is <root>/session_<date>_<time>_<usec>_<pid>/sockets/raylet.<id>.sock,
# which must fit in a unix socket path (107 bytes): up to 73 bytes after the root.
SOCKET_PATH_MAX = 107
SESSION_SUFFIX_MAX = 75


def session_root():
    """A fresh session root: below RAYC_SESSION_ROOT when the socket paths fit, else in /tmp."""
    root = os.environ.get("RAYC_SESSION_ROOT")
    if root:
        root = os.path.abspath(root)
        if len(root) + len("/ex12345678") + SESSION_SUFFIX_MAX <= SOCKET_PATH_MAX:
            os.makedirs(root, exist_ok=True)
            return tempfile.mkdtemp(prefix="ex", dir=root)
    return tempfile.mkdtemp(prefix="rayc-ex-", dir="/tmp")


def run_example(name):
    path = os.path.normpath(os.path.join(EXAMPLES, name))
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.pop("RAYC_ADDRESS", None)  # a fresh local cluster, never one running elsewhere
    env["RAYC_SESSION_ROOT"] = session_root()
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run([sys.executable, path, "--small"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S)
    out = proc.stdout
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{out[-6000:]}"
    shutil.rmtree(env["RAYC_SESSION_ROOT"], ignore_errors=True)
    return out


def summary(out, prefix):
    lines = [ln for ln in out.splitlines() if ln.startswith(prefix + ":")]
    assert lines, f"no '{prefix}:' summary line in:\n{out[-6000:]}"
    return lines[-1]


def number(line, key):
    m = re.search(rf"\b{key}=([0-9.]+)", line)
    assert m, f"no {key}= in {line!r}"
    return float(m.group(1))


@pytest.fixture(autouse=True)
def no_cluster_here():
    import ray

    assert not ray.is_initialized()
    yield
    assert not ray.is_initialized()


def test_batch_inference():
    line = summary(run_example("batch_inference.py"), "batch_inference")
    assert number(line, "accuracy") > 0.85, line
    assert number(line, "throughput") > 0, line
    assert number(line, "rows") == 40000, line


def test_train_ddp():
    out = run_example("train_ddp.py")
    line = summary(out, "train_ddp")
    assert "replicas identical: True" in line, line
    assert "restarts=1" in line, line
    assert "restarted" in out and "new process group formed" in out, out[-4000:]
    m = re.search(r"loss ([0-9.]+) -> ([0-9.]+)", line)
    assert m and float(m.group(2)) < 0.75 * float(m.group(1)), line


def test_sweep():
    line = summary(run_example("sweep.py"), "sweep")
    assert number(line, "trials") == 6, line
    assert number(line, "best_score") > 0.85, line


def test_rl_rollouts():
    out = run_example("rl_rollouts.py")
    line = summary(out, "rl_rollouts")
    assert "reached=True" in line, line
    assert "worker_killed=True" in line, line
    assert number(line, "final_score") >= number(line, "threshold"), line
    assert "score progression:" in out
