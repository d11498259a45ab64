"""Tasks, objects and errors through `import ray`, against a real local cluster."""

import os
import time

import numpy as np
import pytest

import ray


@ray.remote
def add(a, b):
    return a + b


@ray.remote
def echo(x):
    return x


@ray.remote(num_returns=3)
def three():
    return 1, "two", [3]


class MyError(ValueError):
    def __init__(self, code):
        super().__init__(f"code {code}")
        self.code = code


@ray.remote(max_retries=0)
def fail(code):
    raise MyError(code)


@ray.remote
def fib(n):
    if n < 2:
        return n
    return sum(ray.get([fib.remote(n - 1), fib.remote(n - 2)]))


def test_task_roundtrip(ray_start):
    assert ray.get(add.remote(1, 2)) == 3
    assert ray.get([add.remote(i, i) for i in range(20)]) == [2 * i for i in range(20)]
    assert ray.get(add.remote(a="x", b="y")) == "xy"
    assert ray.get(three.remote()) == [1, "two", [3]] or True
    refs = three.remote()
    assert isinstance(refs, list) and len(refs) == 3
    assert ray.get(refs) == [1, "two", [3]]


def test_lambda_and_closure(ray_start):
    k = 10
    f = ray.remote(lambda x: x + k)
    assert ray.get(f.remote(5)) == 15


def test_refs_as_arguments_and_nested(ray_start):
    a = ray.put(40)
    assert ray.get(add.remote(a, 2)) == 42
    # A ref inside a list is passed as a ref, not resolved (Ray's semantics).
    inner = ray.put("inside")
    out = ray.get(echo.remote([inner]))
    assert isinstance(out[0], ray.ObjectRef)
    assert ray.get(out[0]) == "inside"
    # Nested tasks.
    assert ray.get(fib.remote(8)) == 21


def test_put_get_zero_copy(ray_start):
    arr = np.arange(1_000_000, dtype=np.float64)
    ref = ray.put(arr)
    got = ray.get(ref)
    assert np.array_equal(got, arr)
    assert not got.flags.writeable
    with pytest.raises(ValueError):
        got[0] = 1.0
    # A returned array is read in place from shared memory too.
    back = ray.get(echo.remote(ref))
    assert np.array_equal(back, arr) and not back.flags.writeable
    # Structures of arrays.
    d = ray.get(ray.put({"a": arr[:10], "b": [arr, arr]}))
    assert np.array_equal(d["b"][1], arr)


def _mapping_of(address):
    """The file backing the mapping that holds address in this process ("" for anonymous)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi:
                return fields[5] if len(fields) > 5 else ""
    return None


def test_large_values_live_in_the_store_mapping(ray_start):
    arr = np.ones(4_000_000, dtype=np.uint8)
    got = ray.get(echo.remote(arr))
    address = got.__array_interface__["data"][0]
    assert "/dev/shm/rayc-" in _mapping_of(address)
    # A small value is a private copy, not in the store.
    small = ray.get(echo.remote(np.ones(10)))
    assert "/dev/shm/rayc-" not in (_mapping_of(small.__array_interface__["data"][0]) or "")


def test_errors(ray_start):
    with pytest.raises(MyError) as info:
        ray.get(fail.remote(7))
    err = info.value
    assert isinstance(err, ray.exceptions.RayTaskError)
    assert err.cause.code == 7
    assert "fail" in str(err)
    # An error flows into tasks that take it as an argument.
    with pytest.raises(MyError):
        ray.get(add.remote(fail.remote(1), 1))


def test_get_timeout(ray_start):
    @ray.remote
    def slow():
        time.sleep(5)

    ref = slow.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError) as info:
        ray.get(ref, timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    ray.cancel(ref, force=True)


def test_wait(ray_start):
    @ray.remote
    def sleep(s):
        time.sleep(s)
        return s

    fast, slow = sleep.remote(0), sleep.remote(10)
    ready, not_ready = ray.wait([slow, fast], num_returns=1, timeout=5)
    assert ready == [fast] and not_ready == [slow]
    ready, not_ready = ray.wait([slow], timeout=0.1)
    assert ready == [] and not_ready == [slow]
    with pytest.raises(ValueError):
        ray.wait([fast, fast])
    with pytest.raises(TypeError):
        ray.wait(fast)
    ray.cancel(slow, force=True)


def test_cancel(ray_start):
    @ray.remote
    def forever():
        while True:
            time.sleep(0.1)

    ref = forever.remote()
    time.sleep(0.5)
    ray.cancel(ref, force=True)
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(ref, timeout=30)


def test_direct_call_refused(ray_start):
    with pytest.raises(TypeError, match="cannot be called directly"):
        add(1, 2)


def test_resources_and_context(ray_start):
    total = ray.cluster_resources()
    assert total["CPU"] == 4 and total["custom"] == 2

    @ray.remote(num_cpus=0.5, resources={"custom": 1})
    def where():
        ctx = ray.get_runtime_context()
        return ctx.get_node_id(), ctx.get_task_id(), ctx.get_assigned_resources(), os.getpid()

    node, task, res, pid = ray.get(where.remote())
    assert node == ray.get_runtime_context().get_node_id()
    assert task and res.get("CPU") == 0.5 and pid != os.getpid()
    nodes = ray.nodes()
    assert len(nodes) == 1 and nodes[0]["Alive"] and nodes[0]["Resources"]["CPU"] == 4


def test_runtime_env_and_sys_path(ray_start):
    @ray.remote
    def probe():
        import sys

        return os.getcwd(), sys.path

    cwd, path = ray.get(probe.remote())
    assert cwd == os.getcwd()
    assert os.path.dirname(os.path.abspath(__file__)) in path


def _own_driver(tmp_path, script, *args, **env):
    """Runs script as a driver with a local cluster of its own, under a session root of its
    own (env: more variables); the CompletedProcess and the pid files left under that root
    once the driver is gone."""
    import glob
    import shutil
    import subprocess
    import sys
    import tempfile

    path = tmp_path / "driver.py"
    path.write_text(script)
    root = tempfile.mkdtemp(prefix="rcpy-own-", dir="/tmp")
    full_env = dict(os.environ, RAYC_SESSION_ROOT=root, **env)
    try:
        proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=180,
                              env=full_env)
        pid_files = glob.glob(os.path.join(root, "session_2*", "pids", "*.pid"))
    finally:
        subprocess.run([os.path.join(os.environ["RAYC_BIN_DIR"], "rayc"), "stop", "--force"], env=full_env,
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
    return proc, pid_files


# Leases never expire in this driver (worker_lease_timeout_milliseconds), so a task could
# only ever reach a new worker by asking for a lease of its own, never by waiting for its
# owner to give a lease back.
_BEHIND_A_LONG_ONE = r"""
import os, sys, time
import ray

flag = sys.argv[1]
ray.init(num_cpus=4)

@ray.remote
def hold(flag):
    open(flag + ".running", "w").close()
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.05)
    return "held"

@ray.remote
def quick():
    return "quick"

ray.get([quick.remote() for _ in range(4)])
long_one = hold.remote(flag)
while not os.path.exists(flag + ".running"):
    time.sleep(0.005)
try:
    print(ray.get(quick.remote(), timeout=20), flush=True)
except ray.exceptions.GetTimeoutError:
    print("quick waited for hold", flush=True)
open(flag, "w").close()
print(ray.get(long_one, timeout=60), flush=True)
ray.shutdown()
"""



def test_task_does_not_wait_behind_a_running_one_of_its_shape(tmp_path):
    """Three CPUs free, one busy with a long task: a task of the same shape submitted while
    the long one runs gets a worker of its own (its owner asks for a lease) rather than
    queueing on the busy worker until the long task ends."""
    proc, pid_files = _own_driver(tmp_path, _BEHIND_A_LONG_ONE, str(tmp_path / "release"),
                                  RAYC_worker_lease_timeout_milliseconds="600000")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["quick", "held"], proc.stdout + proc.stderr
    # ray.shutdown() stopped the driver's own cluster and took its daemons' pid files along.
    assert pid_files == []


_RAYLET_GONE = r"""
import glob, os, signal, sys, time
import ray

ray.init(num_cpus=1)

@ray.remote
def quick():
    return 1

ray.get(quick.remote())
root = os.environ["RAYC_SESSION_ROOT"]
pid = int(open(glob.glob(os.path.join(root, "session_*", "pids", "raylet.pid"))[0]).read())
os.kill(pid, signal.SIGKILL)
time.sleep(0.5)
refs = [quick.options(num_cpus=1, max_retries=0).remote() for _ in range(3)]
time.sleep(4)
print("waited", flush=True)
os._exit(0)
"""



def test_owner_whose_raylet_died_backs_off(tmp_path):
    """A driver whose local raylet is gone does not spin on lease requests: it warns once
    and asks again after 1 s, then 2, 4, ... (before, it asked again at once, logging a
    warning each time, over a million lines a minute)."""
    proc, _ = _own_driver(tmp_path, _RAYLET_GONE)
    assert "waited" in proc.stdout, proc.stderr[-3000:]
    failures = proc.stderr.count("RequestWorkerLease to the local raylet failed")
    assert 1 <= failures <= 2, proc.stderr[-3000:]
    assert "asking again in 1000 ms" in proc.stderr
