"""Multi-host over a real network: every node in its own network namespace with its own
address, real TCP (and TLS with the cluster's certificates) between them.

The namespaces hang off a bridge that lives in a namespace of its own (a "switch"), so the
host's firewall never sees their traffic. Delay and loss come from the RPC fault injection
(testing_rpc_delay_us, testing_rpc_drop), a blackout from taking a node's port on the switch
down, as a pulled cable would: the node's connections stay open and nothing answers.

  switch ns:  br0 -- p1 (head) -- p2 (n1) -- p3 (n2)
  head ns:    10.77.0.1  GCS, a raylet with no CPU, the driver
  n1, n2 ns:  10.77.0.2, 10.77.0.3  a raylet each (2 CPUs), joined with a join token

Needs root and iproute2 (`ip netns`); skipped with the reason otherwise. Every namespace
and process made here is removed at the end, also when a test fails.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from cli_cluster import RAYC, last_json_line, pid_running

PYTHON = sys.executable
SUBNET = "10.77.0"
TAG = f"rcnt{os.getpid() % 100000}"
NODES = {"head": 1, "n1": 2, "n2": 3}

# Detection: 5 missed checks of up to 2 s, 1 s apart: 10 s at the earliest, ~15 s typically.
HEALTH = {
    "RAYC_health_check_initial_delay_ms": "1000",
    "RAYC_health_check_period_ms": "1000",
    "RAYC_health_check_timeout_ms": "2000",
    "RAYC_health_check_failure_threshold": "5",
}


def _why_not():
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if not shutil.which("ip"):
        return "no `ip` command (iproute2; scripts/install-deps.sh installs it)"
    probe = f"{TAG}-probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot make a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


_REASON = _why_not()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class Net:
    """The switch and one namespace per node."""

    def __init__(self):
        self.sw = f"{TAG}-sw"
        self.ns = {name: f"{TAG}-{name}" for name in NODES}
        _ip("netns", "add", self.sw)
        _ip("-n", self.sw, "link", "set", "lo", "up")
        _ip("-n", self.sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.sw, "link", "set", "br0", "up")
        for name, i in NODES.items():
            ns = self.ns[name]
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}", "netns", self.sw)
            _ip("-n", ns, "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", self.sw, "link", "set", f"p{i}", "master", "br0")
            _ip("-n", self.sw, "link", "set", f"p{i}", "up")

    def addr(self, name):
        return f"{SUBNET}.{NODES[name]}"

    def cable(self, name, up):
        """Plugs node name's cable in or pulls it out (its port on the switch)."""
        _ip("-n", self.sw, "link", "set", f"p{NODES[name]}", "up" if up else "down")

    def destroy(self):
        for ns in list(self.ns.values()) + [self.sw]:
            # Whatever still runs there was started by this suite.
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", ns, check=False)


class Cluster:
    """A rayc cluster over Net: a session root per node, commands run in its namespace."""

    def __init__(self, net, env):
        self.net = net
        self.env = dict(os.environ)
        self.env.update(env)
        self.roots = {name: tempfile.mkdtemp(prefix=f"rcns-{name}-", dir="/tmp") for name in NODES}
        self.address = None

    def run(self, name, argv, timeout=120, check=True):
        env = dict(self.env)
        env["RAYC_SESSION_ROOT"] = self.roots[name]
        r = subprocess.run(["ip", "netns", "exec", self.net.ns[name], *argv], capture_output=True,
                           text=True, timeout=timeout, env=env)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {name} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def start(self):
        self.run("head", [RAYC, "start", "--head", "--port", "0", "--node-ip-address", self.net.addr("head"),
                          "--num-cpus", "0", "--labels", "name=head"])
        with open(os.path.join(self.roots["head"], "session_latest", "gcs_address")) as f:
            self.address = f.read().strip()
        assert self.address.startswith(self.net.addr("head") + ":"), self.address
        out = self.run("head", [RAYC, "token", "create", "--ttl", "1h"]).stdout
        token = re.search(r"[0-9a-f]{16}\.[0-9a-f]{32}", out).group(0)
        ca_hash = re.search(r"sha256:[0-9a-f]{64}", out).group(0)
        for name in ("n1", "n2"):
            self.run(name, [RAYC, "start", "--address", self.address, "--node-ip-address", self.net.addr(name),
                            "--num-cpus", "2", "--labels", f"name={name}", "--join-token", token,
                            "--ca-cert-hash", ca_hash])

    def raylet_pid(self, name):
        with open(os.path.join(self.roots[name], "session_latest", "pids", "raylet.pid")) as f:
            return int(f.read().strip())

    def raylet_log(self, name):
        with open(os.path.join(self.roots[name], "session_latest", "logs", "raylet.err")) as f:
            return f.read()

    def driver(self, code, timeout=120):
        """Runs code as a driver in the head's namespace; the JSON it printed last."""
        path = os.path.join(self.roots["head"], "driver.py")
        with open(path, "w") as f:
            f.write(code)
        r = self.run("head", [PYTHON, path], timeout=timeout, check=False)
        return last_json_line(r)

    def stop(self):
        for name in NODES:
            try:
                self.run(name, [RAYC, "stop"], timeout=60, check=False)
            except subprocess.TimeoutExpired:
                pass
        for root in self.roots.values():
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cluster_with(request):
    """cluster_with(env) starts a cluster over a fresh network with env for every process."""
    made = []

    def make(env):
        net = Net()
        made.append(net)
        c = Cluster(net, env)
        made.append(c)
        c.start()
        return c

    yield make
    for thing in reversed(made):
        try:
            if isinstance(thing, Cluster):
                thing.stop()
            else:
                thing.destroy()
        except Exception as e:  # clean up the rest regardless
            print(f"cleanup: {e}", file=sys.stderr)


PRELUDE = """
import json, os, sys, time
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="auto")
def wait_for(pred, timeout=60, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")
def alive():
    return {n["Labels"].get("name"): n["NodeID"] for n in ray.nodes() if n["Alive"]}
wait_for(lambda: {"n1", "n2"} <= set(alive()), what="n1 and n2 alive")
wait_for(lambda: ray.available_resources().get("CPU") == 4, what="4 CPUs free")
@ray.remote(num_cpus=1, max_retries=5)
def square(x):
    return x * x, ray.get_runtime_context().get_node_id()
@ray.remote(num_cpus=1, max_retries=5)
def total(arr):
    return int(sum(arr)), ray.get_runtime_context().get_node_id()
"""


def test_workload_over_slow_lossy_network(cluster_with):
    """50 ms round trips (25 ms each way) and 1% of calls dropped, on every call that
    crosses the network; tasks across both nodes and objects moved between them finish."""
    env = dict(HEALTH)
    env.update({
        "RAYC_testing_rpc_delay_us": "*=25000:25000",
        "RAYC_testing_rpc_drop": "*=0.5:0.5",
        "RAYC_testing_rpc_failure_avoid_intra_node_failures": "1",
    })
    c = cluster_with(env)
    out = c.driver(PRELUDE + """
nodes = alive()
# The head has no CPU: every task runs across the network, so each of these waits for at
# least one PushTask round trip (25 ms out, 25 ms back).
rtts = []
for i in range(5):
    t = time.time()
    ray.get(square.remote(i), timeout=60)
    rtts.append(time.time() - t)
results = ray.get([square.remote(i) for i in range(60)], timeout=240)
big = ray.put(list(range(200000)))
sums = ray.get([total.remote(big) for _ in range(6)], timeout=240)
print(json.dumps({"squares": [r for r, _ in results], "on": sorted({n for _, n in results}),
                  "sums": [s for s, _ in sums], "nodes": nodes, "rtts": rtts}))
""", timeout=300)
    assert out["squares"] == [i * i for i in range(60)]
    assert out["sums"] == [sum(range(200000))] * 6
    assert set(out["on"]) <= {out["nodes"]["n1"], out["nodes"]["n2"]}
    assert min(out["rtts"]) >= 0.05, out["rtts"]
    # The raylets saw the injection too (they log its seed when it starts, and each call
    # they failed or dropped).
    logs = c.raylet_log("n1") + c.raylet_log("n2") + c.raylet_log("head")
    assert "fault injection on" in c.raylet_log("n1")
    print(f"\none task at a time took {min(out['rtts']) * 1000:.0f}-{max(out['rtts']) * 1000:.0f} ms; "
          f"the raylets dropped {logs.count('rpc: injecting a')} calls")


def test_short_blackout_is_no_death(cluster_with):
    """A 5 s cable pull, shorter than the detection time: nobody is declared dead, and the
    node serves work again once it is back."""
    c = cluster_with(HEALTH)
    pid = c.raylet_pid("n1")
    out = c.driver(PRELUDE + """
import subprocess
nodes = alive()
seen_dead = []
t0 = time.time()
subprocess.run(["ip", "-n", os.environ["SW_NS"], "link", "set", "p2", "down"], check=True)
while time.time() - t0 < 5:
    if "n1" not in alive():
        seen_dead.append(time.time() - t0)
    time.sleep(0.25)
subprocess.run(["ip", "-n", os.environ["SW_NS"], "link", "set", "p2", "up"], check=True)
end = time.time() + 15
while time.time() < end:
    if "n1" not in alive():
        seen_dead.append(time.time() - t0)
    time.sleep(0.25)
wait_for(lambda: ray.available_resources().get("CPU") == 4, what="4 CPUs free again")
@ray.remote(num_cpus=1, max_retries=5)
def on_node():
    return ray.get_runtime_context().get_node_id()
on_n1 = NodeAffinitySchedulingStrategy(nodes["n1"], soft=False)
ran = set(ray.get([on_node.options(scheduling_strategy=on_n1).remote() for _ in range(4)], timeout=120))
print(json.dumps({"seen_dead": seen_dead, "ran": sorted(ran), "nodes": nodes}))
""".replace('os.environ["SW_NS"]', repr(c.net.sw)), timeout=200)
    assert out["seen_dead"] == [], out
    assert out["nodes"]["n1"] in out["ran"], out
    assert pid_running(pid)


def test_long_blackout_marks_dead_moves_work_and_node_exits(cluster_with):
    """A cable pulled for longer than the detection time: the node is declared dead, the
    tasks it was running are retried on the other node, and when the cable is back the
    node's raylet learns that it was declared dead and exits."""
    c = cluster_with(HEALTH)
    pid = c.raylet_pid("n1")
    out = c.driver(PRELUDE + """
import subprocess
nodes = alive()
log = os.path.join(os.environ["LOGDIR"], "started")
@ray.remote(num_cpus=1, max_retries=5)
def slow(i):
    node = ray.get_runtime_context().get_node_id()
    with open(log, "a") as f:
        f.write(f"{i} {node}\\n")
    time.sleep(60 if node == nodes["n1"] else 0.5)
    return i, node
# Soft affinity: on n1 while it lives, elsewhere once it is dead.
on_n1 = NodeAffinitySchedulingStrategy(nodes["n1"], soft=True)
refs = [slow.options(scheduling_strategy=on_n1).remote(i) for i in range(4)]
def started_on_n1():
    try:
        return sum(1 for l in open(log) if l.split()[1] == nodes["n1"])
    except FileNotFoundError:
        return 0
wait_for(lambda: started_on_n1() >= 1, what="a task running on n1")
t0 = time.time()
subprocess.run(["ip", "-n", SW, "link", "set", "p2", "down"], check=True)
wait_for(lambda: "n1" not in alive(), timeout=60, what="n1 declared dead")
dead_after = time.time() - t0
results = ray.get(refs, timeout=120)
subprocess.run(["ip", "-n", SW, "link", "set", "p2", "up"], check=True)
print(json.dumps({"dead_after": dead_after, "results": results, "nodes": nodes}))
""".replace("SW,", repr(c.net.sw) + ",").replace('os.environ["LOGDIR"]', repr(c.roots["head"])), timeout=240)
    assert out["dead_after"] >= 9.0, out  # 5 checks of 2 s at the earliest
    assert sorted(i for i, _ in out["results"]) == [0, 1, 2, 3]
    assert {n for _, n in out["results"]} == {out["nodes"]["n2"]}, out
    # Back on the network, n1 learns that it was declared dead and leaves.
    end = time.time() + 90
    while time.time() < end and pid_running(pid):
        time.sleep(0.5)
    assert not pid_running(pid), c.raylet_log("n1")[-3000:]
    # Whichever it hears first: the node channel saying it is dead, or the GCS refusing
    # its reports as those of a node that is not alive.
    log = c.raylet_log("n1")
    assert "declared this node dead" in log or "no longer knows this node as alive" in log, log[-3000:]
