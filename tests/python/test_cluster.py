"""A real multi-node cluster as Ray scripts use one: a head and two more raylets on this
host (2 CPUs each, started with `rayc start`), the test process joined with
ray.init(address="auto"), and more drivers run as subprocesses against it: node and
resource listings, objects and actor handles crossing nodes, SPREAD, how ray.init()
finds (or does not find) the cluster, and named and detached actors across drivers."""

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cli_cluster import (alive_nodes, joined_cluster, last_json_line, nodes_by_name, run_driver,
                         use_short_session_root, wait_for)

use_short_session_root()  # sockets live under it: see cli_cluster

TOTAL_CPUS = 6


@pytest.fixture(scope="module")
def cluster():
    with joined_cluster(dict(num_cpus=2, labels={"name": "head"}, resources={"head_only": 3}),
                        dict(num_cpus=2, labels={"name": "w1"}),
                        dict(num_cpus=2, labels={"name": "w2"}, resources={"w2_only": 1})) as c:
        yield c


@pytest.fixture
def nodes(cluster):
    return nodes_by_name()


def on(node_id):
    return NodeAffinitySchedulingStrategy(node_id, soft=False)


@ray.remote
def node_id():
    return ray.get_runtime_context().get_node_id()


# ---- nodes and resources ---------------------------------------------------------------------


def test_nodes_fields(nodes):
    names, by_name = nodes
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert sorted(n["Labels"]["name"] for n in alive) == ["head", "w1", "w2"]
    for n in alive:
        assert re.fullmatch(r"[0-9a-f]{56}", n["NodeID"])
        assert n["alive"] is True
        assert n["NodeManagerAddress"] == "127.0.0.1"
        assert isinstance(n["NodeManagerPort"], int) and n["NodeManagerPort"] > 0
        assert n["Resources"]["CPU"] == 2
        assert n["Resources"]["node:127.0.0.1"] == 1
        assert n["Labels"]["ray.io/node-id"] == n["NodeID"]
    heads = [n for n in alive if "node:__internal_head__" in n["Resources"]]
    assert [n["Labels"]["name"] for n in heads] == ["head"]
    assert next(n for n in alive if n["Labels"]["name"] == "w2")["Resources"]["w2_only"] == 1
    # Work reports the node it runs on, one of these.
    assert ray.get(node_id.options(scheduling_strategy=on(by_name["w1"])).remote()) == by_name["w1"]
    assert ray.get_runtime_context().get_node_id() in names


def test_cluster_and_available_resources(nodes):
    total = ray.cluster_resources()
    assert total["CPU"] == TOTAL_CPUS
    assert total["head_only"] == 3 and total["w2_only"] == 1
    assert total["node:127.0.0.1"] == 3
    wait_for(lambda: ray.available_resources().get("CPU") == TOTAL_CPUS, what="all CPUs free")

    @ray.remote(num_cpus=2, resources={"w2_only": 1})
    class Holder:
        def ready(self):
            return True

    h = Holder.remote()
    assert ray.get(h.ready.remote(), timeout=60)
    wait_for(lambda: ray.available_resources().get("CPU") == TOTAL_CPUS - 2, what="2 CPUs in use")
    # A resource all of which is in use is left out of available_resources, as in Ray.
    assert "w2_only" not in ray.available_resources()
    assert ray.cluster_resources()["CPU"] == TOTAL_CPUS
    ray.kill(h)
    wait_for(lambda: ray.available_resources().get("CPU") == TOTAL_CPUS, what="the CPUs back")
    assert ray.available_resources()["w2_only"] == 1


# ---- objects across nodes ------------------------------------------------------------------------


@ray.remote
def make_array(n):
    return np.full(n, 7, dtype=np.uint8)


@ray.remote
def inspect_array(arr):
    try:
        arr[0] = 1
        wrote = True
    except ValueError:
        wrote = False
    return {"node": ray.get_runtime_context().get_node_id(), "sum": int(arr.sum(dtype=np.int64)),
            "size": int(arr.size), "writeable": bool(arr.flags.writeable), "wrote": wrote}


def test_large_object_made_on_one_node_read_on_another(nodes):
    _, by_name = nodes
    n = 50 * 1024 * 1024
    ref = make_array.options(scheduling_strategy=on(by_name["w1"])).remote(n)
    seen = ray.get(inspect_array.options(scheduling_strategy=on(by_name["w2"])).remote(ref), timeout=120)
    assert seen["node"] == by_name["w2"]
    assert seen["size"] == n and seen["sum"] == 7 * n
    # The consumer reads the copy in its node's store in place: read-only.
    assert seen["writeable"] is False and seen["wrote"] is False
    # The driver (on the head) gets it too, zero-copy and read-only as well.
    arr = ray.get(ref, timeout=120)
    assert arr.shape == (n,) and arr[0] == 7 and arr[-1] == 7
    assert not arr.flags.writeable


def test_put_object_read_on_every_node(nodes):
    _, by_name = nodes
    data = np.arange(4_000_000, dtype=np.int64)  # 32 MB
    ref = ray.put(data)
    seen = ray.get([inspect_array.options(scheduling_strategy=on(nid)).remote(ref) for nid in by_name.values()],
                   timeout=120)
    assert sorted(s["node"] for s in seen) == sorted(by_name.values())
    assert all(s["sum"] == int(data.sum()) and not s["writeable"] for s in seen)


def test_refs_inside_values_resolve_on_other_nodes(nodes):
    """A ref nested in an argument travels as a ref; the task on another node gets it
    from the owner (the driver) and the node that holds the value."""
    _, by_name = nodes
    inner = make_array.options(scheduling_strategy=on(by_name["w1"])).remote(3 * 1024 * 1024)

    @ray.remote
    def total(holder):
        return int(ray.get(holder["ref"]).sum(dtype=np.int64)), ray.get_runtime_context().get_node_id()

    s, where = ray.get(total.options(scheduling_strategy=on(by_name["w2"])).remote({"ref": inner}), timeout=120)
    assert s == 7 * 3 * 1024 * 1024 and where == by_name["w2"]


# ---- spreading ---------------------------------------------------------------------------------


@ray.remote(num_cpus=0)
class Barrier:
    """Holds every caller until `n` have arrived, so that the callers run at once."""

    def __init__(self, n):
        import asyncio

        self.n = n
        self.arrived = 0
        self.event = asyncio.Event()

    async def arrive(self):
        import asyncio

        self.arrived += 1
        if self.arrived >= self.n:
            self.event.set()
        await asyncio.wait_for(self.event.wait(), 60)
        return True


def settle():
    """Lets every raylet's view of the others catch up with the work earlier tests did
    (Ray's own SPREAD test sleeps for this too)."""
    wait_for(lambda: ray.available_resources().get("CPU") == TOTAL_CPUS, what="all CPUs free")
    time.sleep(2)


def test_spread_nested_tasks(nodes):
    """A task fans out children with the SPREAD strategy; they land on every node."""
    names, _ = nodes
    settle()

    @ray.remote(num_cpus=0.5)
    def child(barrier):
        ray.get(barrier.arrive.remote())
        return ray.get_runtime_context().get_node_id()

    @ray.remote(num_cpus=0)
    def parent(k):
        barrier = Barrier.remote(k)
        return ray.get([child.options(scheduling_strategy="SPREAD").remote(barrier) for _ in range(k)])

    ran = ray.get(parent.remote(6), timeout=120)
    assert {names[n] for n in ran} == {"head", "w1", "w2"}


def test_spread_from_the_driver(nodes):
    names, _ = nodes
    settle()

    @ray.remote(num_cpus=1)
    def one(barrier):
        ray.get(barrier.arrive.remote())
        return ray.get_runtime_context().get_node_id()

    barrier = Barrier.remote(3)
    ran = ray.get([one.options(scheduling_strategy="SPREAD").remote(barrier) for _ in range(3)], timeout=120)
    assert sorted(names[n] for n in ran) == ["head", "w1", "w2"]


# ---- actors across nodes ---------------------------------------------------------------------------


@ray.remote(num_cpus=0)
class Ledger:
    def __init__(self):
        self.entries = []

    def add(self, who, where):
        self.entries.append((who, where))
        return len(self.entries)

    def entries_(self):
        return self.entries

    def node(self):
        return ray.get_runtime_context().get_node_id()


def test_actor_handles_passed_across_nodes(nodes):
    names, by_name = nodes
    ledger = Ledger.options(scheduling_strategy=on(by_name["w2"])).remote()
    assert ray.get(ledger.node.remote(), timeout=60) == by_name["w2"]

    @ray.remote
    def writer(handle, who):
        return ray.get(handle.add.remote(who, ray.get_runtime_context().get_node_id()))

    counts = ray.get([writer.options(scheduling_strategy=on(by_name[n])).remote(ledger, n)
                      for n in ("head", "w1", "w2")], timeout=60)
    assert sorted(counts) == [1, 2, 3]

    @ray.remote(num_cpus=0)
    class Forwarder:
        def __init__(self, handle):
            self.handle = handle

        def forward(self, who):
            return ray.get(self.handle.add.remote(who, ray.get_runtime_context().get_node_id()))

    fwd = Forwarder.options(scheduling_strategy=on(by_name["w1"])).remote(ledger)
    assert ray.get(fwd.forward.remote("forwarder"), timeout=60) == 4
    entries = ray.get(ledger.entries_.remote())
    assert {who: names[where] for who, where in entries} == {
        "head": "head", "w1": "w1", "w2": "w2", "forwarder": "w1"}

    # A handle made inside a task on one node, returned and used from the driver.
    @ray.remote
    def make_ledger():
        h = Ledger.options(scheduling_strategy=on(by_name["w1"])).remote()
        ray.get(h.add.remote("maker", "x"))
        return h

    made = ray.get(make_ledger.options(scheduling_strategy=on(by_name["head"])).remote(), timeout=60)
    assert ray.get(made.add.remote("driver", "y"), timeout=60) == 2
    assert ray.get(made.node.remote()) == by_name["w1"]


def test_worker_output_from_every_node_reaches_the_driver(cluster, tmp_path):
    proc = run_driver(
        "import json, os, ray\n"
        "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy\n"
        "ray.init(address='auto')\n"
        "ids = {n['Labels']['name']: n['NodeID'] for n in ray.nodes() if n['Alive']}\n"
        "@ray.remote\n"
        "def shout(name):\n"
        "    print('hello from', name)\n"
        "    return os.getpid()\n"
        "pids = {n: ray.get(shout.options(scheduling_strategy=NodeAffinitySchedulingStrategy(i, soft=False))\n"
        "                   .remote(n)) for n, i in ids.items()}\n"
        "print(json.dumps(pids))\n",
        tmp_path, timeout=120)
    pids = last_json_line(proc)
    for name, pid in pids.items():
        # Ray leaves ", ip=..." out for workers on the driver's own IP.
        line = r"^\(shout pid=" + str(pid) + r"(, ip=127\.0\.0\.1)?\) hello from " + name + "$"
        assert re.search(line, proc.stdout, re.MULTILINE), proc.stdout


def test_working_dir_reaches_every_node(cluster, tmp_path):
    """ray.init(runtime_env={"working_dir": ...}): each node unpacks the job's package in
    its own session and runs the job's tasks there (Ray uploads it to the GCS the same way),
    so a node that never saw the driver's folder imports from it and reads its files."""
    work = tmp_path / "proj"
    work.mkdir()
    (work / "proj_helper.py").write_text("def answer():\n    return open('answer.txt').read().strip()\n")
    (work / "answer.txt").write_text("42\n")
    proc = run_driver(
        "import json, os, shutil, ray\n"
        "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy\n"
        f"ray.init(address='auto', runtime_env={{'working_dir': {str(work)!r}}})\n"
        f"shutil.rmtree({str(work)!r})  # workers only have the package now\n"
        "ids = {n['Labels']['name']: n['NodeID'] for n in ray.nodes() if n['Alive']}\n"
        "@ray.remote\n"
        "def where():\n"
        "    import proj_helper\n"
        "    return os.getcwd(), proj_helper.answer()\n"
        "print(json.dumps({n: ray.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(i, soft=False))\n"
        "                             .remote(), timeout=90) for n, i in ids.items()}))\n",
        tmp_path, timeout=150)
    seen = last_json_line(proc)
    assert sorted(seen) == ["head", "w1", "w2"], proc.stderr
    assert {answer for _, answer in seen.values()} == {"42"}
    cwds = {cwd for cwd, _ in seen.values()}
    sessions = {cwd.split("/runtime_resources/")[0] for cwd in cwds}
    assert len(cwds) == 3 and len(sessions) == 3, seen  # one copy per node, in that node's session
    assert len({os.path.basename(c) for c in cwds}) == 1  # the same package everywhere


# ---- ray.init() discovery --------------------------------------------------------------------------

NODE_IDS_SCRIPT = (
    "import json, sys, ray\n"
    "args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}\n"
    "ray.init(*args.get('args', []), **args.get('kwargs', {}))\n"
    "print(json.dumps(sorted(n['NodeID'] for n in ray.nodes() if n['Alive'])))\n"
)


def driver_nodes(tmp_path, *args, env=None, **kwargs):
    path = tmp_path / "nodes_driver.py"
    path.write_text(NODE_IDS_SCRIPT)
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, str(path), json.dumps({"args": list(args), "kwargs": kwargs})],
                          capture_output=True, text=True, timeout=120, env=full_env, cwd=str(tmp_path))
    return proc


def test_plain_init_joins_the_running_cluster(nodes, tmp_path):
    _, by_name = nodes
    assert last_json_line(driver_nodes(tmp_path)) == sorted(by_name.values())


def test_init_auto_and_explicit_address_join(cluster, nodes, tmp_path):
    _, by_name = nodes
    expected = sorted(by_name.values())
    assert last_json_line(driver_nodes(tmp_path, "auto")) == expected
    assert last_json_line(driver_nodes(tmp_path, address="auto")) == expected
    assert last_json_line(driver_nodes(tmp_path, cluster.address)) == expected
    assert last_json_line(driver_nodes(tmp_path, env={"RAY_ADDRESS": cluster.address})) == expected


def test_init_with_resources_against_a_running_cluster_is_refused(nodes, tmp_path):
    proc = driver_nodes(tmp_path, address="auto", num_cpus=3)
    assert proc.returncode != 0
    assert "When connecting to an existing cluster, num_cpus and num_gpus must not be provided" in proc.stderr


def test_init_auto_without_a_cluster_raises_connection_error(tmp_path):
    empty_root = tmp_path / "no-cluster-here"
    empty_root.mkdir()
    proc = run_driver(
        "import json, ray\n"
        "try:\n"
        "    ray.init(address='auto')\n"
        "    print(json.dumps('connected'))\n"
        "except ConnectionError as e:\n"
        "    print(json.dumps(['ConnectionError', str(e)]))\n",
        tmp_path, env={"RAYC_SESSION_ROOT": str(empty_root), "RAY_ADDRESS": "", "RAYC_ADDRESS": ""})
    kind, message = last_json_line(proc)
    assert kind == "ConnectionError"
    assert "Could not find any running Ray instance" in message


# ---- named and detached actors across drivers ----------------------------------------------------

KEEPER = (
    "import json, ray\n"
    "@ray.remote(num_cpus=0)\n"
    "class Keeper:\n"
    "    def __init__(self):\n"
    "        self.n = 0\n"
    "    def inc(self):\n"
    "        self.n += 1\n"
    "        return self.n\n"
    "    def namespace(self):\n"
    "        return ray.get_runtime_context().namespace\n"
)


def lookup(name, namespace=None):
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def test_detached_actor_outlives_its_driver(nodes, tmp_path):
    made = run_driver(
        KEEPER +
        "ray.init(address='auto')\n"
        "k = Keeper.options(name='x', lifetime='detached', namespace='ns').remote()\n"
        "t = Keeper.options(name='temp', namespace='ns').remote()\n"
        "print(json.dumps([ray.get(k.inc.remote()), ray.get(t.inc.remote())]))\n",
        tmp_path, name="driver_a.py")
    assert last_json_line(made) == [1, 1]
    used = run_driver(
        "import json, ray\n"
        "ray.init(address='auto')\n"
        "k = ray.get_actor('x', namespace='ns')\n"
        "print(json.dumps(ray.get(k.inc.remote())))\n",
        tmp_path, name="driver_b.py")
    assert last_json_line(used) == 2  # the same actor, with its state
    # The test process (another driver) finds it too, in its namespace only.
    k = ray.get_actor("x", namespace="ns")
    assert ray.get(k.inc.remote()) == 3
    assert lookup("x") is None
    assert lookup("x", namespace="other") is None
    # The non-detached one went with its driver.
    wait_for(lambda: lookup("temp", namespace="ns") is None, what="'temp' gone with its driver")
    ray.kill(k)
    wait_for(lambda: lookup("x", namespace="ns") is None, what="the killed actor's name released")


def test_driver_namespace_is_the_default_for_names(nodes, tmp_path):
    made = run_driver(
        KEEPER +
        "ray.init(address='auto', namespace='team')\n"
        "k = Keeper.options(name='svc', lifetime='detached').remote()\n"
        "print(json.dumps([ray.get(k.inc.remote()), ray.get(k.namespace.remote())]))\n",
        tmp_path, name="driver_a.py")
    count, inside = last_json_line(made)
    assert count == 1
    used = run_driver(
        "import json, ray\n"
        "ray.init(address='auto', namespace='team')\n"
        "k = ray.get_actor('svc')\n"
        "print(json.dumps([ray.get(k.inc.remote()), ray.get_runtime_context().namespace]))\n",
        tmp_path, name="driver_b.py")
    assert last_json_line(used) == [2, "team"]
    k = ray.get_actor("svc", namespace="team")
    ray.kill(k)
    assert inside == "team"  # an actor runs in its job's namespace


def test_namespaces_isolate_names(nodes):
    @ray.remote(num_cpus=0)
    class Tag:
        def __init__(self, tag):
            self.tag = tag

        def get(self):
            return self.tag

    one = Tag.options(name="dup", namespace="ns1").remote("one")
    two = Tag.options(name="dup", namespace="ns2").remote("two")
    assert ray.get([one.get.remote(), two.get.remote()]) == ["one", "two"]
    assert ray.get(ray.get_actor("dup", namespace="ns1").get.remote()) == "one"
    assert ray.get(ray.get_actor("dup", namespace="ns2").get.remote()) == "two"
    with pytest.raises(ValueError, match="already taken"):
        Tag.options(name="dup", namespace="ns1").remote("three")
    assert lookup("dup", namespace="ns3") is None
    ray.kill(one)
    ray.kill(two)


def test_list_named_actors(nodes):
    @ray.remote(num_cpus=0)
    class Named:
        def ping(self):
            return "pong"

    a = Named.options(name="listed-a", namespace="lister").remote()
    b = Named.options(name="listed-b", namespace="elsewhere").remote()
    ray.get([a.ping.remote(), b.ping.remote()])
    everywhere = ray.util.list_named_actors(all_namespaces=True)
    assert {"name": "listed-a", "namespace": "lister"} in everywhere
    assert {"name": "listed-b", "namespace": "elsewhere"} in everywhere
    ray.kill(a)
    ray.kill(b)


def test_infeasible_until_a_node_that_can_run_it_joins(cluster, nodes):
    """Work no node can run waits (Ray's behaviour), says why when a get times out, and
    runs once a node with what it needs joins."""
    @ray.remote(num_cpus=0, resources={"special": 1})
    def needs_special():
        return ray.get_runtime_context().get_node_id()

    ref = needs_special.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError, match="special"):
        ray.get(ref, timeout=5)  # the owner asks why after 3 s
    root = cluster.add_outside_node(num_cpus=1, labels={"name": "late"}, resources={"special": 1})
    try:
        node = ray.get(ref, timeout=120)
        assert node == alive_nodes()["late"]
    finally:
        cluster.stop_outside_node(root)


# ---- a separate local cluster (last: it starts a second cluster under the same root) -----------


def test_init_local_starts_a_separate_cluster(cluster, nodes, tmp_path):
    _, by_name = nodes
    latest = os.path.join(cluster.root, "session_latest")
    before = os.readlink(latest)
    try:
        local = last_json_line(driver_nodes(tmp_path, "local", num_cpus=1))
        assert len(local) == 1 and local[0] not in by_name.values()
        # Once that driver (and its cluster) is gone, drivers still find the running cluster.
        assert last_json_line(driver_nodes(tmp_path, "auto")) == sorted(by_name.values())
        assert last_json_line(driver_nodes(tmp_path)) == sorted(by_name.values())
    finally:
        if os.readlink(latest) != before:  # leave the root as the other tests expect it
            tmp_link = latest + ".restore"
            os.symlink(before, tmp_link)
            os.replace(tmp_link, latest)
