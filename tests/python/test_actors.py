"""Actors through `import ray`: sync, threaded and async actors, handles passed around,
named and detached actors, kill and restart, exit_actor."""

import asyncio
import os
import threading
import time

import pytest

import ray


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def inc(self, by=1):
        self.n += by
        return self.n

    def get(self):
        return self.n

    @ray.method(num_returns=2)
    def pair(self):
        return self.n, -self.n

    def pid(self):
        return os.getpid()

    def boom(self):
        raise KeyError("boom")

    def leave(self):
        ray.actor.exit_actor()


def test_calls_in_order(ray_start):
    c = Counter.remote(5)
    refs = [c.inc.remote() for _ in range(50)]
    assert ray.get(refs) == list(range(6, 56))
    a, b = c.pair.remote()
    assert ray.get([a, b]) == [55, -55]
    with pytest.raises(KeyError):
        ray.get(c.boom.remote())
    assert ray.get(c.get.remote()) == 55  # an error does not kill the actor
    with pytest.raises(AttributeError):
        c.nope
    with pytest.raises(TypeError, match="cannot be instantiated directly"):
        Counter()


def test_handle_passed_to_tasks_and_actors(ray_start):
    c = Counter.remote()

    @ray.remote
    def bump(counter, k):
        return ray.get([counter.inc.remote() for _ in range(k)])[-1]

    ray.get([bump.remote(c, 5) for _ in range(4)])
    assert ray.get(c.get.remote()) == 20

    @ray.remote
    class Caller:
        def __init__(self, counter):
            self.counter = counter

        def call(self):
            return ray.get(self.counter.inc.remote(100))

    caller = Caller.remote(c)
    assert ray.get(caller.call.remote()) == 120


def test_threaded_actor(ray_start):
    @ray.remote(max_concurrency=4)
    class Gate:
        def __init__(self):
            self.event = threading.Event()
            self.waiting = 0

        def wait(self):
            self.waiting += 1
            return self.event.wait(20)

        def open(self):
            self.event.set()
            return self.waiting

    g = Gate.remote()
    waits = [g.wait.remote() for _ in range(3)]
    time.sleep(1)
    assert ray.get(g.open.remote()) == 3  # the three waits run at once
    assert ray.get(waits) == [True] * 3


def test_async_actor(ray_start):
    @ray.remote
    class AsyncActor:
        def __init__(self):
            self.event = asyncio.Event()

        async def wait(self):
            await self.event.wait()
            return "done"

        async def release(self):
            self.event.set()
            return True

        async def compute(self, ref_list):
            return sum(await asyncio.gather(*ref_list))

    a = AsyncActor.remote()
    waits = [a.wait.remote() for _ in range(10)]
    time.sleep(0.5)
    ray.get(a.release.remote())
    assert ray.get(waits) == ["done"] * 10
    assert ray.get(a.compute.remote([ray.put(i) for i in range(5)])) == 10


def test_await_refs_in_driver(ray_start):
    c = Counter.remote()

    async def main():
        return await c.inc.remote(3)

    assert asyncio.run(main()) == 3


def test_named_and_get_actor(ray_start):
    c = Counter.options(name="counter-1").remote(7)
    again = ray.get_actor("counter-1")
    assert ray.get(again.inc.remote()) == 8
    with pytest.raises(ValueError, match="Failed to look up actor"):
        ray.get_actor("no-such-actor")
    with pytest.raises(ValueError, match="already taken"):
        Counter.options(name="counter-1").remote()
    same = Counter.options(name="counter-1", get_if_exists=True).remote()
    assert ray.get(same.get.remote()) == 8
    del c


def test_kill_and_restart(ray_start):
    @ray.remote(max_restarts=1)
    class Phoenix:
        def pid(self):
            return os.getpid()

    p = Phoenix.remote()
    pid = ray.get(p.pid.remote())
    ray.kill(p, no_restart=False)
    deadline = time.time() + 60
    while True:
        try:
            new_pid = ray.get(p.pid.remote(), timeout=30)
            break
        except ray.exceptions.RayActorError:
            assert time.time() < deadline
            time.sleep(0.5)
    assert new_pid != pid
    ray.kill(p)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(p.pid.remote(), timeout=30)


def test_exit_actor(ray_start):
    c = Counter.remote()
    ray.get(c.inc.remote())
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(c.leave.remote(), timeout=30)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(c.get.remote(), timeout=30)


def test_constructor_failure(ray_start):
    @ray.remote
    class Broken:
        def __init__(self):
            raise RuntimeError("cannot build")

        def f(self):
            return 1

    b = Broken.remote()
    with pytest.raises(ray.exceptions.ActorDiedError) as info:
        ray.get(b.f.remote(), timeout=30)
    assert "cannot build" in str(info.value)


def test_names_are_shared_between_driver_and_tasks(ray_start):
    keep = Counter.options(name="shared-counter").remote(3)  # collected handles end their actor

    @ray.remote
    def use_and_create():
        found = ray.get_actor("shared-counter")
        Counter.options(name="made-in-task", lifetime="detached").remote(40)
        return ray.get(found.inc.remote())

    assert ray.get(use_and_create.remote()) == 4
    made = ray.get_actor("made-in-task")
    assert ray.get(made.inc.remote(2)) == 42
    ray.kill(made)
    del keep


def test_runtime_context_in_actors(ray_start):
    @ray.remote(max_restarts=1)
    class Who:
        def who(self):
            ctx = ray.get_runtime_context()
            return ctx.get_actor_name(), ctx.get_actor_id(), ctx.was_current_actor_reconstructed, os.getpid()

    named = Who.options(name="who-am-i").remote()
    name, actor_id, restarted, pid = ray.get(named.who.remote())
    assert (name, actor_id, restarted) == ("who-am-i", named._actor_id.hex(), False)
    os.kill(pid, 9)
    deadline = time.time() + 60
    while True:
        try:
            name, _, restarted, new_pid = ray.get(named.who.remote(), timeout=30)
            break
        except ray.exceptions.RayActorError:
            assert time.time() < deadline
            time.sleep(0.5)
    assert (name, restarted) == ("who-am-i", True) and new_pid != pid
    assert ray.get(Who.remote().who.remote())[0] is None
    ray.kill(named)


def test_max_pending_calls(ray_start):
    @ray.remote(max_pending_calls=2)
    class Slow:
        def wait(self, seconds):
            time.sleep(seconds)
            return seconds

    s = Slow.remote()
    first = [s.wait.remote(1), s.wait.remote(0)]
    with pytest.raises(ray.exceptions.PendingCallsLimitExceeded, match="max_pending_calls"):
        s.wait.remote(0)
    assert ray.get(first) == [1, 0]
    assert ray.get(s.wait.remote(0)) == 0  # room again once they finished


def test_concurrency_groups_on_async_actors(ray_start):
    @ray.remote(concurrency_groups={"io": 1, "compute": 3})
    class Grouped:
        def __init__(self):
            self.running = {"io": 0, "compute": 0}
            self.peak = {"io": 0, "compute": 0}

        async def _work(self, group):
            self.running[group] += 1
            self.peak[group] = max(self.peak[group], self.running[group])
            await asyncio.sleep(0.3)
            self.running[group] -= 1

        @ray.method(concurrency_group="io")
        async def read(self):
            await self._work("io")

        @ray.method(concurrency_group="compute")
        async def compute(self):
            await self._work("compute")

        async def peaks(self):
            return self.peak

    g = Grouped.remote()
    ray.get([g.read.remote() for _ in range(3)] + [g.compute.remote() for _ in range(6)])
    assert ray.get(g.peaks.remote()) == {"io": 1, "compute": 3}

    with pytest.raises(ValueError, match="async actors only"):
        @ray.remote(concurrency_groups={"io": 1})
        class Sync:
            def f(self):
                return 1

        Sync.remote()
