"""Worker output at the driver: what tasks and actors print reaches the driver's stdout and
stderr, each line prefixed as Ray prefixes it: `(name pid=123, ip=10.0.0.5) text`, where
name is the task's name, or for an actor its class name (its repr once __init__ has run,
when the class defines __repr__). Ray leaves `, ip=...` out for workers on the driver's
own host; both forms are accepted here. Each test runs a driver script in a subprocess
(with its own local cluster) and reads what it printed."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from cli_cluster import RAYC, last_json_line, run_driver, use_short_session_root

use_short_session_root()  # sockets live under it: see cli_cluster

IP = r"(?:, ip=\d+\.\d+\.\d+\.\d+)?"


def prefixed(name, pid, text):
    """A regex for one prefixed line of worker output."""
    return re.compile(r"^\(" + re.escape(name) + r" pid=" + str(pid) + IP + r"\) " + re.escape(text) + r"$",
                      re.MULTILINE)


def drive(code, tmp_path, **kwargs):
    proc = run_driver(code, tmp_path, timeout=120, **kwargs)
    assert proc.returncode == 0, f"driver failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def test_task_stdout_and_stderr(tmp_path):
    proc = drive(
        "import json, os, sys, ray\n"
        "ray.init(num_cpus=2)\n"
        "@ray.remote\n"
        "def foo():\n"
        "    print('foo says out')\n"
        "    print('foo says err', file=sys.stderr)\n"
        "    return os.getpid()\n"
        "@ray.remote\n"
        "def bar(x):\n"
        "    print('bar got', x)\n"
        "    return os.getpid()\n"
        "print(json.dumps(ray.get([foo.remote(), bar.remote(41)])))\n",
        tmp_path)
    foo_pid, bar_pid = last_json_line(proc)
    assert prefixed("foo", foo_pid, "foo says out").search(proc.stdout), proc.stdout
    assert prefixed("foo", foo_pid, "foo says err").search(proc.stderr), proc.stderr
    assert prefixed("bar", bar_pid, "bar got 41").search(proc.stdout), proc.stdout
    # Each stream goes to its own stream.
    assert "says err" not in proc.stdout
    assert "says out" not in proc.stderr


def test_task_name_option_names_the_prefix(tmp_path):
    proc = drive(
        "import json, os, ray\n"
        "ray.init(num_cpus=1)\n"
        "@ray.remote\n"
        "def work():\n"
        "    print('renamed work ran')\n"
        "    return os.getpid()\n"
        "print(json.dumps(ray.get(work.options(name='custom-name').remote())))\n",
        tmp_path)
    pid = last_json_line(proc)
    assert prefixed("custom-name", pid, "renamed work ran").search(proc.stdout), proc.stdout


def test_actor_output_is_prefixed_with_the_class_name(tmp_path):
    """As in Ray: an actor's lines carry its class name (not the method's name)."""
    proc = drive(
        "import json, os, sys, ray\n"
        "ray.init(num_cpus=2)\n"
        "@ray.remote\n"
        "class Greeter:\n"
        "    def __init__(self):\n"
        "        print('greeter built')\n"
        "    def hello(self, who):\n"
        "        print('hello', who)\n"
        "        print('hello on err', file=sys.stderr)\n"
        "        return os.getpid()\n"
        "g = Greeter.remote()\n"
        "print(json.dumps(ray.get(g.hello.remote('there'))))\n",
        tmp_path)
    pid = last_json_line(proc)
    assert prefixed("Greeter", pid, "greeter built").search(proc.stdout), proc.stdout
    assert prefixed("Greeter", pid, "hello there").search(proc.stdout), proc.stdout
    assert prefixed("Greeter", pid, "hello on err").search(proc.stderr), proc.stderr


def test_actor_repr_names_the_prefix_after_init(tmp_path):
    """Ray: before __init__ finishes the prefix is the class name; after, the actor's
    repr when its class defines __repr__."""
    proc = drive(
        "import json, os, ray\n"
        "ray.init(num_cpus=2)\n"
        "@ray.remote\n"
        "class Worker:\n"
        "    def __init__(self, label):\n"
        "        print('init of', label)\n"
        "        self.label = label\n"
        "    def __repr__(self):\n"
        "        return 'Worker-' + self.label\n"
        "    def run(self):\n"
        "        print('running now')\n"
        "        return os.getpid()\n"
        "w = Worker.remote('blue')\n"
        "print(json.dumps(ray.get(w.run.remote())))\n",
        tmp_path)
    pid = last_json_line(proc)
    assert prefixed("Worker", pid, "init of blue").search(proc.stdout), proc.stdout
    assert prefixed("Worker-blue", pid, "running now").search(proc.stdout), proc.stdout


def test_async_actor_and_nested_task_output(tmp_path):
    proc = drive(
        "import json, os, ray\n"
        "ray.init(num_cpus=2)\n"
        "@ray.remote\n"
        "def inner(k):\n"
        "    print('inner number', k)\n"
        "    return os.getpid()\n"
        "@ray.remote\n"
        "def outer():\n"
        "    print('outer starts')\n"
        "    return os.getpid(), ray.get(inner.remote(7))\n"
        "@ray.remote\n"
        "class Loop:\n"
        "    async def tick(self):\n"
        "        print('async tick')\n"
        "        return os.getpid()\n"
        "outer_pid, inner_pid = ray.get(outer.remote())\n"
        "loop_pid = ray.get(Loop.remote().tick.remote())\n"
        "print(json.dumps([outer_pid, inner_pid, loop_pid]))\n",
        tmp_path)
    outer_pid, inner_pid, loop_pid = last_json_line(proc)
    assert prefixed("outer", outer_pid, "outer starts").search(proc.stdout), proc.stdout
    assert prefixed("inner", inner_pid, "inner number 7").search(proc.stdout), proc.stdout
    assert prefixed("Loop", loop_pid, "async tick").search(proc.stdout), proc.stdout


def test_many_lines_arrive_complete_and_in_order(tmp_path):
    proc = drive(
        "import json, os, ray\n"
        "ray.init(num_cpus=1)\n"
        "@ray.remote\n"
        "def chatty(n):\n"
        "    for i in range(n):\n"
        "        print(f'line {i:04d} of chatty')\n"
        "    return os.getpid()\n"
        "print(json.dumps(ray.get(chatty.remote(500))))\n",
        tmp_path)
    pid = last_json_line(proc)
    got = [int(m.group(1)) for m in re.finditer(
        r"^\(chatty pid=" + str(pid) + IP + r"\) line (\d{4}) of chatty$", proc.stdout, re.MULTILINE)]
    assert got == list(range(500))


def test_driver_output_is_untouched(tmp_path):
    proc = drive(
        "import ray\n"
        "ray.init(num_cpus=1)\n"
        "print('plain driver line')\n"
        "@ray.remote\n"
        "def f():\n"
        "    return 1\n"
        "ray.get(f.remote())\n",
        tmp_path)
    assert re.search(r"^plain driver line$", proc.stdout, re.MULTILINE), proc.stdout


def test_log_to_driver_false_suppresses_worker_output(tmp_path):
    proc = drive(
        "import json, os, sys, ray\n"
        "ray.init(num_cpus=2, log_to_driver=False)\n"
        "@ray.remote\n"
        "def quiet():\n"
        "    print('should stay in the log file')\n"
        "    print('also this one', file=sys.stderr)\n"
        "    return os.getpid()\n"
        "@ray.remote\n"
        "class A:\n"
        "    def m(self):\n"
        "        print('actor line stays too')\n"
        "        return 1\n"
        "print(json.dumps([ray.get(quiet.remote()), ray.get(A.remote().m.remote())]))\n",
        tmp_path)
    pid, one = last_json_line(proc)
    assert isinstance(pid, int) and one == 1
    for text in ("should stay in the log file", "also this one", "actor line stays too"):
        assert text not in proc.stdout and text not in proc.stderr
    assert "pid=" not in proc.stdout


@pytest.fixture
def cli_head(tmp_path):
    """A one-node cluster started with `rayc start --head` under a root of the test's own."""
    root = tempfile.mkdtemp(prefix="rayc-out-")  # short: socket paths live under it
    env = dict(os.environ, RAYC_SESSION_ROOT=root)
    try:
        started = subprocess.run([RAYC, "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
                                  "--num-cpus", "2"], capture_output=True, text=True, env=env, timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        yield root
    finally:
        subprocess.run([RAYC, "stop"], capture_output=True, env=env, timeout=120)
        subprocess.run([RAYC, "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_only_the_drivers_own_job_is_shown(cli_head, tmp_path):
    """Two drivers of one cluster: each sees its own workers' lines, not the other's."""
    script = (
        "import json, os, sys, ray\n"
        "ray.init(address='auto')\n"
        "tag = sys.argv[1]\n"
        "@ray.remote\n"
        "def speak():\n"
        "    print('spoken by', tag)\n"
        "    return os.getpid()\n"
        "print(json.dumps(ray.get(speak.remote())))\n"
    )
    path = tmp_path / "speaker.py"
    path.write_text(script)
    env = dict(os.environ, RAYC_SESSION_ROOT=cli_head)
    outs = []
    for tag in ("first-job", "second-job"):
        proc = subprocess.run([sys.executable, str(path), tag], capture_output=True, text=True, env=env,
                              timeout=120, cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr
        outs.append(proc)
    first, second = outs
    assert prefixed("speak", last_json_line(first), "spoken by first-job").search(first.stdout), first.stdout
    assert prefixed("speak", last_json_line(second), "spoken by second-job").search(second.stdout), second.stdout
    assert "first-job" not in second.stdout
    assert "second-job" not in first.stdout
