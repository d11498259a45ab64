"""The rayc command line on real processes, where an admin meets its errors and its output:
a port in use is named (with the fix) on the first line, a failed start leaves nothing
behind, `rayc stop` stops rayc daemons that belong to no session (and only those of its own
session root), `rayc kv` takes large and binary values from stdin or a file and prints
binary ones escaped, and progress lines are one per update in a log, in place on a terminal.

Security is on: every cluster here has its CA and tokens. Each daemon started by hand gets a
session root of its own, so that the `rayc stop` of a test reaches only what it started.
"""

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from cli_cluster import BIN_DIR, RAYC, CliCluster

LIB_DIR = os.path.normpath(os.path.join(BIN_DIR, "..", "lib"))


def rayc_in(root, *args, stdin=None, text=True, timeout=120):
    env = dict(os.environ, RAYC_SESSION_ROOT=root)
    env.pop("RAYC_ADDRESS", None)
    return subprocess.run([RAYC, *args], capture_output=True, text=text, input=stdin, env=env, timeout=timeout)


@pytest.fixture
def own_root():
    root = tempfile.mkdtemp(prefix="rcops-", dir="/tmp")
    yield root
    rayc_in(root, "stop", "--force")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = CliCluster()
    c.start_head(num_cpus=2, num_gpus=2)
    yield c
    c.stop()


def listening_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def processes_of_root(root):
    """Live processes whose environment names this session root."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"RAYC_SESSION_ROOT={root}".encode() in env and state not in ("Z", "X"):
            found.append(int(pid))
    return found


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ---- errors and failed starts ---------------------------------------------------------------


def test_port_in_use_is_named_first_and_the_start_leaves_nothing(own_root):
    s, port = listening_socket()
    with s:
        p = rayc_in(own_root, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                    "--num-cpus", "1")
    assert p.returncode == 1, p
    first = p.stderr.splitlines()[0]
    assert first.startswith(f"rayc start: port {port} on 127.0.0.1 is in use"), p.stderr
    assert "pass --port" in first, first
    assert os.listdir(own_root) == [], "a failed start left files in the session root"
    assert processes_of_root(own_root) == []


def test_gcs_started_by_hand_says_port_in_use_in_one_line(own_root):
    s, port = listening_socket()
    with s:
        p = subprocess.run([os.path.join(BIN_DIR, "rayc-gcs"), "--auth-dir", own_root, "--host", "127.0.0.1",
                            "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p
    lines = p.stderr.splitlines()
    assert lines[0].startswith(f"rayc-gcs: port {port} on 127.0.0.1 is in use"), p.stderr
    assert "pass --port" in lines[0]
    assert len(lines) == 1, p.stderr


def test_a_start_whose_raylet_fails_stops_its_gcs_and_removes_its_session(own_root):
    s, port = listening_socket()
    with s:  # the raylet's port is taken: the GCS starts, the raylet cannot
        p = rayc_in(own_root, "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                    "--node-manager-port", str(port))
    assert p.returncode == 1, p
    assert p.stderr.startswith("rayc start: "), p.stderr
    first = p.stderr.splitlines()[0]
    assert first.startswith("rayc start: the raylet did not start: ") and f"port {port}" in first, p.stderr
    assert "nothing was left running" in p.stderr
    assert [d for d in os.listdir(own_root) if d.startswith("session")] == [], os.listdir(own_root)
    wait_for(lambda: processes_of_root(own_root) == [], what="the failed start's processes to go")


def test_an_interrupted_start_stops_what_it_started_and_removes_its_session(own_root):
    s, port = listening_socket()  # a "Redis" that accepts and never answers: the GCS waits
    with s:
        proc = subprocess.Popen([RAYC, "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
                                 "--num-cpus", "1", "--redis-address", f"127.0.0.1:{port}"],
                                env=dict(os.environ, RAYC_SESSION_ROOT=own_root), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(os.path.join(own_root, "session_latest")) or
                 any(d.startswith("session_") and os.path.exists(os.path.join(own_root, d, "pids", "gcs_server.pid"))
                     for d in os.listdir(own_root)), what="the start to run its GCS")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert err.startswith("rayc start: interrupted"), err
    assert [d for d in os.listdir(own_root) if d.startswith("session")] == [], os.listdir(own_root)
    wait_for(lambda: processes_of_root(own_root) == [], what="the interrupted start's GCS to go")


# ---- rayc stop and daemons of no session -------------------------------------------------------


def start_gcs_by_hand(root):
    port_file = os.path.join(root, "gcs_port")
    proc = subprocess.Popen([os.path.join(BIN_DIR, "rayc-gcs"), "--auth-dir", root, "--host", "127.0.0.1",
                             "--port", "0", "--port-file", port_file],
                            env=dict(os.environ, RAYC_SESSION_ROOT=root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: os.path.exists(port_file), what="the hand-started GCS to serve")
    return proc


def test_stop_stops_a_gcs_of_no_session_and_only_of_its_root(own_root):
    other_root = tempfile.mkdtemp(prefix="rcops-other-", dir="/tmp")
    mine = start_gcs_by_hand(own_root)
    other = start_gcs_by_hand(other_root)
    try:
        p = rayc_in(own_root, "stop")
        assert p.returncode == 0, p
        assert f"Stopped rayc-gcs (pid {mine.pid}), which belonged to no session." in p.stdout, p.stdout
        mine.wait(timeout=30)
        assert other.poll() is None, "rayc stop reached a daemon of another session root"
        p = rayc_in(other_root, "stop")
        assert f"Stopped rayc-gcs (pid {other.pid})" in p.stdout, p.stdout
        other.wait(timeout=30)
        assert "Did not find any active rayc processes" in rayc_in(own_root, "stop").stdout
    finally:
        for proc in (mine, other):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(other_root, ignore_errors=True)


# ---- rayc kv -----------------------------------------------------------------------------------------


def kv(cluster, *args, stdin=None, text=True):
    sub, rest = args[0], args[1:]  # --address first: after a '--' it would be an argument
    return rayc_in(cluster.root, "kv", sub, "--address", cluster.address, *rest, stdin=stdin, text=text)


def test_kv_put_from_stdin_and_from_a_file_round_trips_10_mb(cluster, tmp_path):
    value = os.urandom(10 * 1024 * 1024)
    p = kv(cluster, "put", "ops", "big", "-", stdin=value, text=False)
    assert p.returncode == 0 and p.stdout == b"added\n", p
    got = kv(cluster, "get", "--raw", "ops", "big", text=False)
    assert got.returncode == 0 and got.stdout == value, (got.returncode, len(got.stdout), got.stderr)

    other = os.urandom(10 * 1024 * 1024)
    path = tmp_path / "value.bin"
    path.write_bytes(other)
    p = kv(cluster, "put", "ops", "big", f"@{path}")
    assert p.returncode == 0 and p.stdout == "updated\n", p
    got = kv(cluster, "get", "ops", "big", "--raw", text=False)
    assert got.stdout == other


def test_kv_get_escapes_binary_values_unless_raw(cluster):
    binary = b"\x00\xff\x1b[31mred\\\n\t"
    assert kv(cluster, "put", "ops", "bin", "-", stdin=binary, text=False).returncode == 0
    p = kv(cluster, "get", "ops", "bin", text=False)
    assert p.returncode == 0 and p.stdout == b"\\x00\\xff\\x1b[31mred\\\\\\n\\t\n", p.stdout
    assert kv(cluster, "get", "ops", "bin", "--raw", text=False).stdout == binary

    text = "héllo ✓ 世界\nsecond line"
    assert kv(cluster, "put", "ops", "utf8", text).returncode == 0
    assert kv(cluster, "get", "ops", "utf8").stdout == text + "\n"
    # a value that begins with '-' follows '--'
    assert kv(cluster, "put", "ops", "dash", "--", "-5").returncode == 0
    assert kv(cluster, "get", "ops", "dash").stdout == "-5\n"
    # a value that is not valid UTF-8 (a lone continuation byte) is escaped
    assert kv(cluster, "put", "ops", "bad", "-", stdin=b"ok\x80", text=False).returncode == 0
    assert kv(cluster, "get", "ops", "bad").stdout == "ok\\x80\n"


# ---- progress lines ------------------------------------------------------------------------------------


def example_env(cluster, functions="libsweep_functions.so"):
    return dict(os.environ, RAYC_SESSION_ROOT=cluster.root, RAYC_ADDRESS=cluster.address,
                RAYC_CODE_SEARCH_PATH=os.path.join(LIB_DIR, functions))


def test_batch_inference_progress_in_a_log_is_one_line_per_update(cluster):
    p = subprocess.run([os.path.join(BIN_DIR, "batch_inference"), "--shards", "16", "--shard-size", "100"],
                       capture_output=True, env=example_env(cluster, "libinference_functions.so"), timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr.decode()[-3000:])
    assert "\r" not in out, repr(out)
    assert re.findall(r"^batch_inference: (\d+)/16 shards scored$", out, re.M) == ["8", "16"], out


def test_progress_is_one_line_per_update_in_a_log_and_in_place_on_a_terminal(cluster):
    sweep = os.path.join(BIN_DIR, "sweep")
    p = subprocess.run([sweep, "--epochs", "1"], capture_output=True, env=example_env(cluster), timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr.decode()[-3000:])
    assert "\r" not in out, repr(out)
    progress = re.findall(r"^sweep: (\d+)/16 trials done$", out, re.M)
    assert progress and progress[-1] == "16", out
    assert re.search(r"^sweep: finished in", out, re.M), out

    # On a terminal the same line is rewritten in place.
    master, slave = pty.openpty()
    proc = subprocess.Popen([sweep, "--epochs", "1"], stdout=slave, stderr=subprocess.DEVNULL,
                            env=example_env(cluster))
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the program exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    tty_out = b"".join(chunks).decode()
    assert "\rsweep: 16/16 trials done" in tty_out, repr(tty_out[-2000:])
