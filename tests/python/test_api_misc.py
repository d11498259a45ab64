"""Assorted parts of Ray's API through `import ray`, against a real local cluster that
declares two GPUs (ray.init(num_gpus=2): IDs are assigned, no GPU is touched): GPU IDs of
tasks and actors, ray.cancel and ray.kill, ActorDiedError's attributes, Ray's error texts
for common misuse, options refused at decoration, awaiting ObjectRefs, the node IP, and
work that no node can run."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import ray

from cli_cluster import use_short_session_root, wait_for

use_short_session_root()  # sockets live under it: see cli_cluster

NUM_CPUS = 4


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=NUM_CPUS, num_gpus=2)
    yield
    ray.shutdown()


@ray.remote(num_cpus=0)
class Gate:
    """Holds callers of wait() until open() (or until `n` callers have arrived)."""

    def __init__(self, n=None):
        self.n = n
        self.arrived = 0
        self.event = asyncio.Event()

    async def wait(self):
        self.arrived += 1
        if self.n is not None and self.arrived >= self.n:
            self.event.set()
        await asyncio.wait_for(self.event.wait(), 60)
        return True

    async def open(self):
        self.event.set()


@ray.remote(num_cpus=0)
class Log:
    def __init__(self):
        self.items = []

    def add(self, x):
        self.items.append(x)

    def get(self):
        return self.items


@ray.remote
def plain_echo(x):
    return x


def all_cpus_free():
    wait_for(lambda: ray.available_resources().get("CPU") == NUM_CPUS, what="every CPU free")


# ---- GPU IDs ---------------------------------------------------------------------------------


@ray.remote(num_cpus=0)
def gpu_view(gate):
    ids = ray.get_gpu_ids()
    accel = ray.get_runtime_context().get_accelerator_ids()["GPU"]
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    ray.get(gate.wait.remote())  # all of them hold their GPUs at once
    return ids, accel, cvd


def test_cluster_declares_gpus():
    assert ray.cluster_resources()["GPU"] == 2


def test_whole_gpus_are_distinct():
    gate = Gate.remote(2)
    views = ray.get([gpu_view.options(num_gpus=1).remote(gate) for _ in range(2)], timeout=60)
    for ids, accel, cvd in views:
        assert len(ids) == 1
        assert accel == [str(ids[0])]
        assert cvd == str(ids[0])
    assert sorted(int(v[0][0]) for v in views) == [0, 1]


def test_two_gpus_in_one_task():
    gate = Gate.remote(1)
    ids, accel, cvd = ray.get(gpu_view.options(num_gpus=2).remote(gate), timeout=60)
    assert sorted(int(i) for i in ids) == [0, 1]
    assert sorted(accel) == ["0", "1"]
    assert sorted(cvd.split(",")) == ["0", "1"]


def test_fractional_gpus_share_one_id():
    gate = Gate.remote(4)
    views = ray.get([gpu_view.options(num_gpus=0.5).remote(gate) for _ in range(4)], timeout=60)
    seen = {}
    for ids, accel, cvd in views:
        assert len(ids) == 1 and accel == [str(ids[0])] and cvd == str(ids[0])
        seen[int(ids[0])] = seen.get(int(ids[0]), 0) + 1
    # Four halves on two GPUs: two tasks on each.
    assert seen == {0: 2, 1: 2}


def test_no_gpus_requested_sees_none():
    gate = Gate.remote(1)
    ids, accel, _ = ray.get(gpu_view.remote(gate), timeout=60)
    assert ids == [] and accel == []


def test_gpu_actors_keep_their_gpu():
    @ray.remote(num_gpus=1, num_cpus=0)
    class Trainer:
        def ids(self):
            return ray.get_gpu_ids()

    a, b = Trainer.remote(), Trainer.remote()
    ids_a = ray.get([a.ids.remote() for _ in range(3)], timeout=60)
    ids_b = ray.get(b.ids.remote(), timeout=60)
    assert ids_a[0] == ids_a[1] == ids_a[2] and len(ids_a[0]) == 1
    assert sorted(ids_a[0] + ids_b) == [0, 1]
    # Both GPUs are held: a third waits until one is released.
    c = Trainer.remote()
    ready, _ = ray.wait([c.ids.remote()], timeout=2)
    assert ready == []
    ray.kill(a)
    assert ray.get(c.ids.remote(), timeout=60) == ids_a[0]
    ray.kill(b)
    ray.kill(c)


# ---- ray.cancel --------------------------------------------------------------------------------


@ray.remote(num_cpus=NUM_CPUS)
def hold_every_cpu(flag, log):
    """Holds every CPU until the file `flag` exists. It polls rather than blocking in
    ray.get, which would lend its CPUs out meanwhile (as Ray does)."""
    ray.get(log.add.remote("holding"))
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.05)
    return "held"


@ray.remote
def record(log, x):
    ray.get(log.add.remote(x))
    return x


@pytest.mark.parametrize("force", [False, True])
def test_cancel_queued_task_never_runs(force, tmp_path):
    all_cpus_free()
    flag = str(tmp_path / "release")
    log = Log.remote()
    blocker = hold_every_cpu.remote(flag, log)
    wait_for(lambda: ray.get(log.get.remote()) == ["holding"], what="every CPU held")
    queued = [record.remote(log, i) for i in range(4)]
    time.sleep(0.5)
    # The first waits in the raylet for a lease, the others behind it: both kinds are
    # cancelled at once, while the CPUs are still held.
    ray.cancel(queued[0], force=force)
    ray.cancel(queued[2], force=force)
    try:
        for i in (2, 0):
            with pytest.raises(ray.exceptions.TaskCancelledError):
                ray.get(queued[i], timeout=10)
    finally:
        open(flag, "w").close()
    assert ray.get(blocker, timeout=60) == "held"
    assert ray.get([queued[1], queued[3]], timeout=60) == [1, 3]
    time.sleep(0.5)
    assert ray.get(log.get.remote())[1:] in ([1, 3], [3, 1])


@ray.remote(num_cpus=1)
def hold_one_cpu(flag, log, i):
    ray.get(log.add.remote(f"holding {i}"))
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.05)
    return i


def test_cancel_task_queued_behind_running_ones_of_its_shape(tmp_path):
    """Every CPU busy with 1-CPU tasks; another 1-CPU task waits for one of them. Cancelled,
    it fails at once rather than when a CPU frees up."""
    all_cpus_free()
    flag = str(tmp_path / "release")
    log = Log.remote()
    holders = [hold_one_cpu.remote(flag, log, i) for i in range(NUM_CPUS)]
    wait_for(lambda: len(ray.get(log.get.remote())) == NUM_CPUS, what="every CPU held")
    waiting = hold_one_cpu.remote(flag, log, "late")
    time.sleep(0.5)
    ray.cancel(waiting)
    try:
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(waiting, timeout=10)
    finally:
        open(flag, "w").close()
    assert ray.get(holders, timeout=60) == list(range(NUM_CPUS))
    assert "holding late" not in ray.get(log.get.remote())


@ray.remote
def spin(log):
    ray.get(log.add.remote("started"))
    while True:
        time.sleep(0.05)


def test_cancel_running_task_with_force():
    all_cpus_free()
    log = Log.remote()
    ref = spin.remote(log)
    wait_for(lambda: ray.get(log.get.remote()) == ["started"], what="the task running")
    ray.cancel(ref, force=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    all_cpus_free()  # its CPU is given back


def test_cancel_running_task_without_force_interrupts_it():
    """Ray raises KeyboardInterrupt in the running task; the caller gets
    TaskCancelledError."""
    all_cpus_free()
    log = Log.remote()
    ref = spin.remote(log)
    wait_for(lambda: ray.get(log.get.remote()) == ["started"], what="the task running")
    ray.cancel(ref)
    try:
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(ref, timeout=15)
    finally:
        ray.cancel(ref, force=True)


def test_cancel_finished_task_keeps_its_value():
    ref = plain_echo.remote("done")
    assert ray.get(ref) == "done"
    ray.cancel(ref)
    ray.cancel(ref, force=True)
    assert ray.get(ref) == "done"


def test_cancel_misuse():
    with pytest.raises(TypeError, match=re.escape(
            "ray.cancel() only supported for object refs. For actors, try ray.kill(). Got: <class 'int'>.")):
        ray.cancel(1)


def test_cancel_actor_handle_is_refused():
    log = Log.remote()
    with pytest.raises(TypeError, match=re.escape("ray.cancel() only supported for object refs. For actors, "
                                                  "try ray.kill().")):
        ray.cancel(log)


# ---- ray.kill and ActorDiedError --------------------------------------------------------------------


@ray.remote(num_cpus=0)
class Victim:
    def pid(self):
        return os.getpid()

    def slow(self):
        time.sleep(30)
        return "finished"


def test_kill_actor_fails_pending_calls():
    v = Victim.remote()
    ray.get(v.pid.remote(), timeout=60)
    pending = [v.slow.remote() for _ in range(3)]
    time.sleep(0.3)
    ray.kill(v)
    for ref in pending:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(ref, timeout=30)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(v.pid.remote(), timeout=30)


def test_actor_died_error_after_kill_names_the_actor():
    v = Victim.remote()
    ray.get(v.pid.remote(), timeout=60)
    ray.kill(v)
    with pytest.raises(ray.exceptions.ActorDiedError) as info:
        ray.get(v.pid.remote(), timeout=30)
    assert isinstance(info.value, ray.exceptions.RayActorError)
    assert info.value.actor_id == v._actor_id.hex()
    assert "it was killed by `ray.kill" in str(info.value)


def test_actor_died_error_when_its_worker_dies():
    v = Victim.remote()
    pid = ray.get(v.pid.remote(), timeout=60)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ray.exceptions.RayActorError) as info:
        ray.get(v.pid.remote(), timeout=30)
    assert info.value.actor_id == v._actor_id.hex()


def test_kill_misuse():
    with pytest.raises(ValueError, match=re.escape("ray.kill() only supported for actors. For tasks, try "
                                                   "ray.cancel(). Got: <class 'int'>.")):
        ray.kill(1)


# ---- misuse errors: Ray's texts ----------------------------------------------------------------------


def module_level_function():
    return 1


remote_fn = ray.remote(module_level_function)


def test_calling_remote_function_directly():
    name = f"{__name__}.module_level_function"
    with pytest.raises(TypeError, match=re.escape(
            f"Remote functions cannot be called directly. Instead of running '{name}()', try '{name}.remote()'.")):
        remote_fn()


def test_calling_actor_class_and_methods_directly():
    with pytest.raises(TypeError, match=re.escape(
            "Actors cannot be instantiated directly. Instead of 'Victim()', use 'Victim.remote()'.")):
        Victim()
    v = Victim.remote()
    with pytest.raises(TypeError, match=re.escape(
            "Actor methods cannot be called directly. Instead of running 'object.pid()', try "
            "'object.pid.remote()'.")):
        v.pid()
    ray.kill(v)


def test_get_on_a_non_ref():
    with pytest.raises(ValueError, match=re.escape(
            "Invalid type of object refs, <class 'int'>, is given. 'object_refs' must either be an ObjectRef or "
            "a list of ObjectRefs.")):
        ray.get(1)


def test_get_on_a_list_with_a_non_ref():
    with pytest.raises(TypeError, match=re.escape(
            "Attempting to call `get` on the value 1, which is not an ray.ObjectRef.")):
        ray.get([ray.put(0), 1])


def test_put_of_an_object_ref():
    with pytest.raises(TypeError, match=re.escape(
            "Calling 'put' on an ray.ObjectRef is not allowed. If you really want to do this, you can wrap the "
            "ray.ObjectRef in a list and call 'put' on it.")):
        ray.put(ray.put(1))
    # Wrapped in a list, as the message says, it works.
    inner = ray.put(1)
    assert ray.get(ray.get(ray.put([inner]))[0]) == 1


def test_wait_with_duplicates():
    ref = ray.put(1)
    with pytest.raises(ValueError, match=re.escape("Wait requires a list of unique ray_waitables.")):
        ray.wait([ref, ref])


def test_wait_on_a_single_ref():
    with pytest.raises(TypeError, match=re.escape(
            "wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, got a single ray.ObjectRef")):
        ray.wait(ray.put(1))


def test_wait_more_returns_than_refs():
    refs = [ray.put(i) for i in range(2)]
    with pytest.raises(ValueError, match=re.escape(
            "num_returns cannot be greater than the number of ray_waitables provided to ray.wait.")):
        ray.wait(refs, num_returns=3)


def test_wait_argument_checks():
    refs = [ray.put(i) for i in range(2)]
    with pytest.raises(ValueError, match=re.escape("Invalid number of objects to return 0.")):
        ray.wait(refs, num_returns=0)
    with pytest.raises(ValueError, match=re.escape("The 'timeout' argument must be nonnegative. Received -1")):
        ray.wait(refs, timeout=-1)


# ---- options rayc cannot honour: refused when declared --------------------------------------------


# (option, also refused in .options(): False where Ray itself refuses it there)
@pytest.mark.parametrize("options,in_options", [
    ({"max_calls": 1}, False),
    ({"memory": 1024}, True),
    ({"runtime_env": {"pip": ["requests"]}}, True),
    ({"_metadata": {"k": "v"}}, True),
])
def test_unsupported_task_options_refused_at_decoration(options, in_options):
    def f():
        return 1

    with pytest.raises(ValueError, match="rayc does not support"):
        ray.remote(**options)(f)
    if in_options:
        with pytest.raises(ValueError, match="rayc does not support"):
            ray.remote(f).options(**options)


@pytest.mark.parametrize("options,in_options", [
    ({"runtime_env": {"conda": "env"}}, True),
    ({"memory": 1 << 30}, True),
])
def test_unsupported_actor_options_refused_at_decoration(options, in_options):
    class C:
        def f(self):
            return 1

    with pytest.raises(ValueError, match="rayc does not support"):
        ray.remote(**options)(C)
    if in_options:
        with pytest.raises(ValueError, match="rayc does not support"):
            ray.remote(C).options(**options)


def test_options_ray_refuses_in_options():
    with pytest.raises(ValueError, match=re.escape("Setting 'max_calls' is not supported in '.options()'.")):
        plain_echo.options(max_calls=1)


def test_supported_options_run():
    f = ray.remote(num_cpus=0.5, num_gpus=0, max_retries=2, retry_exceptions=False, name="named-task",
                   scheduling_strategy="SPREAD")(module_level_function)
    assert ray.get(f.remote()) == 1
    assert ray.get(f.options(num_cpus=1, name="other").remote()) == 1


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="Invalid option keyword bogus for remote functions"):
        ray.remote(bogus=1)(module_level_function)


# ---- awaiting ObjectRefs ---------------------------------------------------------------------


@ray.remote
def slow_value(x, s):
    time.sleep(s)
    return x


@ray.remote
def raise_value_error(msg):
    raise ValueError(msg)


def test_await_refs_inside_async_actor():
    @ray.remote
    class Awaiter:
        async def from_arg(self, wrapped):
            return await wrapped[0]

        async def from_task(self):
            return await slow_value.remote("inner", 0.1)

        async def gathered(self, n):
            return await asyncio.gather(*[slow_value.remote(i, 0.05) for i in range(n)])

        async def failing(self):
            try:
                await raise_value_error.remote("awaited failure")
            except ValueError as e:
                return "caught: " + str(e).splitlines()[-1]

    a = Awaiter.remote()
    assert ray.get(a.from_arg.remote([ray.put("passed")]), timeout=60) == "passed"
    assert ray.get(a.from_task.remote(), timeout=60) == "inner"
    assert ray.get(a.gathered.remote(5), timeout=60) == [0, 1, 2, 3, 4]
    assert ray.get(a.failing.remote(), timeout=60) == "caught: ValueError: awaited failure"


def test_await_refs_in_driver_asyncio():
    async def main():
        values = await asyncio.gather(*[slow_value.remote(i, 0.05) for i in range(4)])
        with pytest.raises(ValueError, match="driver awaited failure"):
            await raise_value_error.remote("driver awaited failure")
        return values

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_await_given_up_leaves_no_error_behind():
    """asyncio.wait_for gives up on a ref; when its value arrives later nothing fails."""
    errors = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        async def main():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(slow_value.remote("late", 1), timeout=0.2)

        asyncio.run(main())
        time.sleep(2)  # the value arrives meanwhile
    finally:
        threading.excepthook = previous
    assert errors == []


def test_ref_future():
    fut = slow_value.remote("via future", 0.1).future()
    assert fut.result(timeout=60) == "via future"


# ---- node IP -----------------------------------------------------------------------------------


def test_get_node_ip_address():
    ip = ray.util.get_node_ip_address()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip)
    assert ip == ray.nodes()[0]["NodeManagerAddress"]

    @ray.remote
    def ip_in_task():
        return ray.util.get_node_ip_address()

    assert ray.get(ip_in_task.remote()) == ip


# ---- infeasible work -------------------------------------------------------------------------------


def test_infeasible_task_stays_pending():
    ref = plain_echo.options(resources={"nonexistent": 1}).remote(1)
    ready, not_ready = ray.wait([ref], timeout=2)
    assert ready == [] and not_ready == [ref]
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=2)
    ray.cancel(ref)
    # Feasible work still runs meanwhile.
    assert ray.get(plain_echo.remote("fine"), timeout=60) == "fine"


def test_infeasible_actor_stays_pending():
    @ray.remote(resources={"nonexistent": 1})
    class Nowhere:
        def ping(self):
            return "pong"

    n = Nowhere.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(n.ping.remote(), timeout=2)
    ray.kill(n)


def test_infeasible_timeout_says_why():
    ref = plain_echo.options(resources={"nonexistent": 1}).remote(1)
    try:
        with pytest.raises(ray.exceptions.GetTimeoutError) as info:
            ray.get(ref, timeout=5)  # the owner asks its raylet why after 3 s
        assert "nonexistent" in str(info.value)
    finally:
        ray.cancel(ref)


def test_init_labels_reach_the_local_node():
    code = (
        "import ray\n"
        "ray.init('local', num_cpus=1, labels={'region': 'eu', 'tier': 'gold'})\n"
        "print(ray.nodes()[0]['Labels'].get('region'), ray.nodes()[0]['Labels'].get('tier'))\n"
        "f = ray.remote(lambda: 'placed')\n"
        "print(ray.get(f.options(label_selector={'region': 'eu'}).remote(), timeout=60))\n"
        "ray.shutdown()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["eu gold", "placed"]


def test_current_placement_group_and_named_actor_list():
    from ray.util.placement_group import get_current_placement_group, placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    assert get_current_placement_group() is None  # the driver runs in no group
    pg = placement_group([{"CPU": 1}])
    assert pg.wait(30)
    inside = PlacementGroupSchedulingStrategy(pg)

    @ray.remote(num_cpus=0)
    def where():
        current = get_current_placement_group()
        return current.id.hex() if current else None, ray.get_runtime_context().get_placement_group_id()

    @ray.remote(num_cpus=0)
    class InGroup:
        def group(self):
            return get_current_placement_group().bundle_specs

    assert ray.get(where.options(scheduling_strategy=inside).remote()) == (pg.id.hex(), pg.id.hex())
    assert ray.get(where.remote()) == (None, None)
    a = InGroup.options(scheduling_strategy=inside, name="in-group").remote()
    assert ray.get(a.group.remote()) == [{"CPU": 1.0}]
    assert "in-group" in ray.util.list_named_actors()
    ray.kill(a)
    remove_placement_group(pg)


def test_cancel_is_recursive():
    @ray.remote
    def child(log):
        ray.get(log.add.remote("child started"))
        time.sleep(60)
        ray.get(log.add.remote("child finished"))

    @ray.remote
    def parent(log):
        ref = child.remote(log)
        ray.get(ref)

    log = Log.remote()
    p = parent.remote(log)
    wait_for(lambda: "child started" in ray.get(log.get.remote()), timeout=60, what="the child running")
    ray.cancel(p)  # recursive by default, as in Ray: the child is interrupted too
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(p, timeout=30)
    wait_for(lambda: ray.available_resources().get("CPU", 0) == NUM_CPUS, timeout=30, what="every CPU free again")
    assert "child finished" not in ray.get(log.get.remote())


def test_init_runtime_env_working_dir_and_modules(tmp_path):
    """working_dir and py_modules are packaged at ray.init (as Ray uploads them): workers run
    in an unpacked copy and import from it, even once the driver's folders are gone, so they
    would on any node; `excludes` leaves files out."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "helper_mod.py").write_text("VALUE = 'from the working dir'\n")
    (work / "data" / "table.txt").write_text("a table\n")
    (work / "data" / "huge.bin").write_bytes(b"x" * 1000)
    (work / "notes.log").write_text("left out\n")
    libs = tmp_path / "libs"
    (libs / "extra_pkg").mkdir(parents=True)
    (libs / "extra_pkg" / "__init__.py").write_text("NAME = 'extra'\n")
    (libs / "single_mod.py").write_text("WHAT = 'a module file'\n")
    (libs / "not_shipped.py").write_text("X = 1\n")
    code = (
        "import os, shutil, ray\n"
        f"ray.init('local', num_cpus=1, runtime_env={{'working_dir': {str(work)!r}, 'py_modules': [{str(libs / 'extra_pkg')!r}, "
        f"{str(libs / 'single_mod.py')!r}], 'excludes': ['*.log', 'data/huge.bin'], 'env_vars': {{'GREETING': 'hi'}}}})\n"
        f"shutil.move({str(work)!r}, {str(work) + '.moved'!r})\n"
        f"shutil.move({str(libs)!r}, {str(libs) + '.moved'!r})\n"
        "@ray.remote\n"
        "def probe():\n"
        "    import helper_mod, extra_pkg, single_mod\n"
        "    try:\n"
        "        import not_shipped\n"
        "        shipped_too = True\n"
        "    except ImportError:\n"
        "        shipped_too = False\n"
        "    return (os.getcwd(), helper_mod.VALUE, extra_pkg.NAME, single_mod.WHAT, shipped_too,\n"
        "            open('data/table.txt').read().strip(), sorted(os.listdir('.')), sorted(os.listdir('data')),\n"
        "            os.environ.get('GREETING'))\n"
        "print(repr(ray.get(probe.remote(), timeout=60)))\n"
        "ray.shutdown()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    cwd, value, name, what, shipped_too, table, top, data, greeting = eval(out.stdout.strip().splitlines()[-1])
    assert "/runtime_resources/packages/_ray_pkg_" in cwd and not cwd.startswith(str(work))
    assert (value, name, what, table, greeting) == ("from the working dir", "extra", "a module file", "a table", "hi")
    assert not shipped_too  # a py_modules file ships alone, not its folder
    assert top == ["data", "helper_mod.py"] and data == ["table.txt"]  # excludes, and no __pycache__
    from ray._private.worker import _job_runtime_env

    with pytest.raises(ValueError, match="pip"):
        _job_runtime_env({"pip": ["requests"]})  # the check ray.init(runtime_env=...) makes


def test_packages_are_content_addressed_and_bounded(tmp_path, monkeypatch):
    from ray._private import runtime_env_packages as pk

    d = tmp_path / "d"
    d.mkdir()
    (d / "a.py").write_text("A = 1\n")
    uri1, zip1 = pk.package(str(d), "working_dir")
    os.utime(d / "a.py", (1, 1))  # a new timestamp is the same package
    assert pk.package(str(d), "working_dir") == (uri1, zip1)
    assert re.fullmatch(r"gcs://_ray_pkg_[0-9a-f]{40}\.zip", uri1)
    (d / "a.py").write_text("A = 2\n")
    assert pk.package(str(d), "working_dir")[0] != uri1
    monkeypatch.setattr(pk, "MAX_PACKAGE_BYTES", len(zip1) + 200)
    (d / "big.bin").write_bytes(os.urandom(1000))
    with pytest.raises(ValueError, match=r"Package size of runtime_env\['working_dir'\].*exceeds the maximum size"):
        pk.package(str(d), "working_dir")
    assert pk.package(str(d), "working_dir", excludes=["big.bin"])[0] != uri1


def test_packages_travel_in_pieces_and_are_checked(tmp_path, monkeypatch):
    """A package is stored in pieces under the GCS's value limit; a worker puts it together,
    checks it against its name, and unpacks it once."""
    from ray._private import runtime_env_packages as pk

    kv = {}

    def kv_put(ns, key, value, overwrite):
        if overwrite or (ns, key) not in kv:
            kv[(ns, key)] = bytes(value)

    def kv_get(ns, key):
        return kv.get((ns, key))

    d = tmp_path / "d"
    d.mkdir()
    (d / "blob.bin").write_bytes(os.urandom(5000))
    (d / "mod_in_pieces.py").write_text("OK = True\n")
    monkeypatch.setattr(pk, "CHUNK_BYTES", 1024)
    uri, data = pk.package(str(d), "working_dir")
    pk.record(kv_put, kv_get, "01000000", [(uri, data)], has_working_dir=True)
    assert len([k for k in kv if k[1].startswith(uri + "#")]) == -(-len(data) // 1024) > 1
    # A second job with the same folder sends nothing but its own record.
    puts = []
    pk.record(lambda *a: (puts.append(a[1]), kv_put(*a)), kv_get, "02000000", [(uri, data)], has_working_dir=True)
    assert puts == ["job:02000000"]
    base = tmp_path / "node"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    pk.install(kv_get, "01000000", str(base))
    assert os.getcwd().startswith(str(base / "runtime_resources" / "packages" / "_ray_pkg_"))
    assert open("blob.bin", "rb").read() == (d / "blob.bin").read_bytes() and sys.path[0] == os.getcwd()
    # A piece that does not match the package's name is refused, never unpacked.
    kv[(pk.KV_NAMESPACE, uri + "#1")] = b"x" * 1024
    with pytest.raises(RuntimeError, match="does not match its name"):
        pk.install(kv_get, "01000000", str(tmp_path / "other_node"))
    assert not (tmp_path / "other_node" / "runtime_resources" / "packages" / uri[6:-4]).exists()


def test_runtime_context_node_labels():
    labels = ray.get_runtime_context().get_node_labels()
    assert labels.get("ray.io/node-id") == ray.get_runtime_context().get_node_id()
