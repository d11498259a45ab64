"""Helpers of the multi-node suites (test_placement_groups.py, test_cluster.py): a cluster
of several raylets on this host started through the `rayc` command line, as an admin
starts one, and driver scripts run in subprocesses against it.

Every node is started under $RAYC_SESSION_ROOT (the suite's own root under ctest), so
`rayc stop` at the end stops exactly this suite's processes. A node can also be started
"as another host would": under a root of its own, joining with a join token and the CA
hash, so that it can be stopped alone.
"""

import contextlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.environ.get("RAYC_BIN_DIR") or os.path.normpath(os.path.join(HERE, "..", "..", "build", "bin"))
RAYC = os.path.join(BIN_DIR, "rayc")
PYTHON = sys.executable


# A raylet's socket is <root>/session_<date>_<time>_<usec>_<pid>/sockets/raylet.<id>.sock,
# which must fit a unix socket path (107 bytes): roots longer than this leave no room.
_MAX_ROOT_LEN = 32


def use_short_session_root():
    """Points $RAYC_SESSION_ROOT at a short directory of this process's own when the one
    given is too long for the sockets under it (ctest's build/pysessions/<suite> roots
    are, for suites named longer than test_tasks); removed again at exit."""
    root = os.environ.get("RAYC_SESSION_ROOT")
    if root and len(os.path.abspath(root)) <= _MAX_ROOT_LEN:
        return root
    short = tempfile.mkdtemp(prefix="rayc-py-")
    os.environ["RAYC_SESSION_ROOT"] = short
    import atexit

    atexit.register(shutil.rmtree, short, True)
    return short


def session_root():
    """The suite's session root ($RAYC_SESSION_ROOT, made when it is not set)."""
    root = os.environ.get("RAYC_SESSION_ROOT")
    if not root:
        root = tempfile.mkdtemp(prefix="rayc-pytest-")
        os.environ["RAYC_SESSION_ROOT"] = root
    os.makedirs(root, exist_ok=True)
    return root


def cluster_tls(session):
    """An SSL context that trusts only the cluster CA of session (its ca.crt), as an admin's
    client of the HTTPS ports (dashboard, /metrics) does."""
    return ssl.create_default_context(cafile=os.path.join(session, "ca.crt"))


def rayc(*args, root=None, check=True, timeout=120):
    """Runs `rayc ARGS` (under `root` if given); the CompletedProcess."""
    env = dict(os.environ)
    if root is not None:
        env["RAYC_SESSION_ROOT"] = root
    proc = subprocess.run([RAYC, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"rayc {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _node_flags(num_cpus, labels, resources, num_gpus):
    flags = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus)]
    if num_gpus:
        flags += ["--num-gpus", str(num_gpus)]
    if labels:
        flags += ["--labels", ",".join(f"{k}={v}" for k, v in labels.items())]
    if resources:
        flags += ["--resources", json.dumps(resources)]
    return flags


class CliCluster:
    """A head and more raylets on this host, all under the suite's session root."""

    def __init__(self):
        self.root = session_root()
        self.address = None
        self.outsiders = []
        rayc("stop", "--force", check=False)  # whatever an interrupted run left here

    def start_head(self, num_cpus=2, labels=None, resources=None, num_gpus=0):
        # The dashboard on a free port: parallel suites must not race for 8265.
        rayc("start", "--head", "--port", "0", "--dashboard-port", "0",
             *_node_flags(num_cpus, labels, resources, num_gpus))
        with open(os.path.join(self.root, "session_latest", "gcs_address")) as f:
            self.address = f.read().strip()
        return self.address

    def add_node(self, num_cpus=2, labels=None, resources=None, num_gpus=0):
        """A raylet joining from the head's host (start mints its own join token)."""
        rayc("start", "--address", self.address, *_node_flags(num_cpus, labels, resources, num_gpus))

    def add_outside_node(self, num_cpus=2, labels=None, resources=None):
        """A raylet joining as from another host: its own session root, a join token and
        the CA's hash. Returns its root; stop_outside_node(root) stops it alone."""
        out = rayc("token", "create", "--ttl", "1h").stdout
        token = re.search(r"[0-9a-f]{16}\.[0-9a-f]{32}", out).group(0)
        ca_hash = re.search(r"sha256:[0-9a-f]{64}", out).group(0)
        root = tempfile.mkdtemp(prefix="rayc-pytest-other-")
        rayc("start", "--address", self.address, *_node_flags(num_cpus, labels, resources, 0),
             "--join-token", token, "--ca-cert-hash", ca_hash, root=root)
        self.outsiders.append(root)
        return root

    def stop_outside_node(self, root):
        rayc("stop", root=root, check=False)
        shutil.rmtree(root, ignore_errors=True)
        if root in self.outsiders:
            self.outsiders.remove(root)

    def stop(self):
        for root in list(self.outsiders):
            self.stop_outside_node(root)
        rayc("stop", check=False)
        rayc("stop", "--force", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def joined_cluster(head, *others):
    """A head and more raylets on this host (each a dict of start_head/add_node keywords),
    with this process connected as a driver once every node is up and every CPU is free."""
    import ray

    c = CliCluster()
    try:
        c.start_head(**head)
        for node in others:
            c.add_node(**node)
        ray.init(address="auto")
        total = sum(n.get("num_cpus", 2) for n in (head,) + others)
        wait_for(lambda: len(alive_nodes()) == 1 + len(others), what="every node alive")
        wait_for(lambda: ray.available_resources().get("CPU") == total, what="all CPUs free")
        yield c
    finally:
        ray.shutdown()
        c.stop()


def nodes_by_name():
    """({node ID: name}, {name: node ID}) of the alive nodes."""
    by_name = alive_nodes()
    return {v: k for k, v in by_name.items()}, by_name


def alive_nodes():
    """{name label: node ID hex} of the alive nodes (each node here has a `name` label)."""
    import ray

    return {n["Labels"].get("name"): n["NodeID"] for n in ray.nodes() if n["Alive"]}


def pid_running(pid):
    """Whether pid runs: not gone, not a zombie nobody has reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")


def wait_for(predicate, timeout=20.0, interval=0.2, what="condition"):
    """Polls predicate() until it is truthy; its last value, or AssertionError."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {value!r})")
        time.sleep(interval)


def run_driver(code, tmpdir, *, env=None, timeout=120, name="driver.py"):
    """Runs `code` as a driver script in a new Python process; the CompletedProcess
    (text stdout and stderr)."""
    path = os.path.join(str(tmpdir), name)
    with open(path, "w") as f:
        f.write(code)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([PYTHON, path], capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=str(tmpdir))


def last_json_line(proc):
    """The value of the last line of proc's stdout that parses as JSON (what a driver
    script printed as its result), with its output in the error when there is none."""
    for line in reversed(proc.stdout.splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise AssertionError(f"driver printed no result (exit {proc.returncode}):\n"
                         f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")


def start_driver(code, tmpdir, *args, name="driver.py"):
    """Starts `code` as a driver script with args in a new Python process that keeps
    running (a Popen with text stdout and stderr pipes): for drivers a test coordinates,
    which say "READY" (wait_driver_ready) and print their result last (driver_result)."""
    path = os.path.join(str(tmpdir), name)
    with open(path, "w") as f:
        f.write(code)
    return subprocess.Popen([PYTHON, path, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=str(tmpdir))


def wait_driver_ready(p):
    """Waits for a started driver's "READY" line; kills it and fails with its output if it
    says anything else first."""
    line = p.stdout.readline()
    if line.strip() != "READY":
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"driver did not start: {line}{out}\n{err}")


def driver_result(p, timeout=240):
    """A started driver's result, the last JSON line of its stdout, once it has exited 0."""
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"driver exited {p.returncode}:\n{out}\n{err}"
    return last_json_line(subprocess.CompletedProcess(p.args, p.returncode, out, err))
