"""Generator tasks and actor methods through `import ray`, against a real local cluster:
num_returns="dynamic" (the task's one ref resolves to an ObjectRefGenerator of refs),
num_returns="streaming" (the call returns an ObjectRefGenerator whose refs come as the
generator yields), Ray 2.53's default for generator functions (streaming), a static
num_returns on a generator, and what an exception in the generator does."""

import asyncio
import threading

import numpy as np
import pytest

import ray
from ray import ObjectRef, ObjectRefGenerator

from cli_cluster import use_short_session_root

use_short_session_root()  # sockets live under it: see cli_cluster


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=3)
    yield
    ray.shutdown()


@ray.remote(num_returns="dynamic")
def dynamic_squares(n):
    for i in range(n):
        yield i * i


@ray.remote(num_returns="streaming")
def streaming_count(n, big=False):
    for i in range(n):
        yield np.full(300_000, i, dtype=np.int64) if big else i


@ray.remote(max_retries=0)
def fails_after(n):
    for i in range(n):
        yield i
    raise ValueError(f"generator broke after {n}")


@ray.remote
class Gen:
    def dyn(self, n):
        for i in range(n):
            yield f"d{i}"

    def stream(self, n):
        for i in range(n):
            yield f"s{i}"

    async def astream(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield f"a{i}"

    def broken(self):
        yield "first"
        raise KeyError("actor generator broke")


# ---- dynamic --------------------------------------------------------------------------------


def test_dynamic_ref_resolves_to_generator_of_refs():
    ref = dynamic_squares.remote(5)
    assert isinstance(ref, ObjectRef)
    gen = ray.get(ref)
    assert isinstance(gen, ObjectRefGenerator)
    refs = list(gen)
    assert len(refs) == 5 and all(isinstance(r, ObjectRef) for r in refs)
    assert ray.get(refs) == [0, 1, 4, 9, 16]
    # Empty generator.
    assert list(ray.get(dynamic_squares.remote(0))) == []


def test_dynamic_generator_passed_to_tasks():
    @ray.remote
    def total(gen):
        return sum(ray.get(list(gen)))

    # The ref of the generator (resolved to the generator) or the generator itself.
    assert ray.get(total.remote(dynamic_squares.remote(4))) == 14
    assert ray.get(total.remote(ray.get(dynamic_squares.remote(4)))) == 14


def test_dynamic_large_values():
    @ray.remote(num_returns="dynamic")
    def arrays(n):
        for i in range(n):
            yield np.full(1_000_000, i, dtype=np.int8)

    values = [ray.get(r) for r in ray.get(arrays.remote(3))]
    assert [int(v[0]) for v in values] == [0, 1, 2]
    assert all(v.shape == (1_000_000,) and not v.flags.writeable for v in values)


def test_dynamic_in_actor_method():
    g = Gen.remote()
    gen = ray.get(g.dyn.options(num_returns="dynamic").remote(3))
    assert isinstance(gen, ObjectRefGenerator)
    assert [ray.get(r) for r in gen] == ["d0", "d1", "d2"]


# ---- streaming ------------------------------------------------------------------------------


def test_streaming_values_in_order():
    gen = streaming_count.remote(6)
    assert isinstance(gen, ObjectRefGenerator)
    refs = []
    for ref in gen:
        assert isinstance(ref, ObjectRef)
        refs.append(ref)
    assert ray.get(refs) == list(range(6))
    with pytest.raises(StopIteration):
        next(gen)
    big = [ray.get(r) for r in streaming_count.remote(3, big=True)]
    assert [int(a[-1]) for a in big] == [0, 1, 2]


def test_generator_function_streams_by_default():
    """Ray 2.53: a generator function with no num_returns is a streaming generator."""

    @ray.remote
    def plain(n):
        for i in range(n):
            yield i + 100

    gen = plain.remote(3)
    assert isinstance(gen, ObjectRefGenerator)
    assert [ray.get(r) for r in gen] == [100, 101, 102]


def test_actor_generator_method_streams_by_default():
    g = Gen.remote()
    gen = g.stream.remote(3)
    assert isinstance(gen, ObjectRefGenerator)
    assert [ray.get(r) for r in gen] == ["s0", "s1", "s2"]


def test_streaming_in_actor_methods():
    g = Gen.remote()
    assert [ray.get(r) for r in g.stream.options(num_returns="streaming").remote(4)] == ["s0", "s1", "s2", "s3"]


def test_streaming_async_generator_in_async_actor():
    g = Gen.remote()
    assert [ray.get(r) for r in g.astream.options(num_returns="streaming").remote(3)] == ["a0", "a1", "a2"]


def test_streaming_async_iteration_in_driver():
    async def main():
        out = []
        async for ref in streaming_count.remote(4):
            out.append(await ref)
        return out

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_streaming_yields_before_the_generator_finishes():
    """The first value is usable while the generator is still running."""

    @ray.remote(num_cpus=0)
    class Gate:
        def __init__(self):
            self.event = asyncio.Event()

        async def wait(self):
            await asyncio.wait_for(self.event.wait(), 60)

        async def open(self):
            self.event.set()

    @ray.remote(num_returns="streaming")
    def gated(gate):
        yield "before the gate"
        ray.get(gate.wait.remote())
        yield "after the gate"

    gate = Gate.remote()
    gen = gated.remote(gate)
    first = {}

    def take_first():
        first["value"] = ray.get(next(gen))

    t = threading.Thread(target=take_first, daemon=True)
    t.start()
    t.join(timeout=20)
    got_first_early = not t.is_alive()
    ray.get(gate.open.remote())  # let the generator finish either way
    t.join(timeout=60)
    assert got_first_early, "the first yielded value only came once the generator had finished"
    assert first["value"] == "before the gate"
    assert [ray.get(r) for r in gen] == ["after the gate"]


# ---- static num_returns on a generator ----------------------------------------------------------


def test_static_num_returns_from_a_generator():
    """Ray: a generator may stand for a fixed num_returns: one ref per yielded value."""

    @ray.remote(num_returns=3)
    def three():
        yield "a"
        yield "b"
        yield "c"

    refs = three.remote()
    assert isinstance(refs, list) and len(refs) == 3
    assert ray.get(refs) == ["a", "b", "c"]


# ---- exceptions -----------------------------------------------------------------------------------


def test_exception_in_dynamic_generator():
    """Ray: the values yielded before the exception are kept; the ref after them raises
    the generator's error."""
    gen = ray.get(fails_after.options(num_returns="dynamic").remote(2))
    refs = list(gen)
    assert len(refs) == 3
    assert ray.get(refs[:2]) == [0, 1]
    with pytest.raises(ValueError, match="generator broke after 2") as info:
        ray.get(refs[2])
    assert isinstance(info.value, ray.exceptions.RayTaskError)


def test_exception_in_streaming_generator():
    gen = fails_after.options(num_returns="streaming").remote(2)
    assert ray.get(next(gen)) == 0
    assert ray.get(next(gen)) == 1
    with pytest.raises(ValueError, match="generator broke after 2") as info:
        ray.get(next(gen))
    assert isinstance(info.value, ray.exceptions.RayTaskError)
    with pytest.raises(StopIteration):
        next(gen)


def test_exception_in_actor_generator():
    g = Gen.remote()
    gen = g.broken.options(num_returns="streaming").remote()
    assert ray.get(next(gen)) == "first"
    with pytest.raises(KeyError, match="actor generator broke"):
        ray.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)
    # The actor lives on.
    assert [ray.get(r) for r in g.stream.options(num_returns="streaming").remote(1)] == ["s0"]


def test_exception_in_generator_raises_the_error_somewhere():
    """However the values before it are delivered, the generator's error reaches the
    caller as its own type, in a RayTaskError naming it."""
    seen, error = [], None
    try:
        for ref in fails_after.options(num_returns="streaming").remote(3):
            seen.append(ray.get(ref))
    except ValueError as e:
        error = e
    assert isinstance(error, ray.exceptions.RayTaskError)
    assert "generator broke after 3" in str(error)


def test_yielded_exception_is_a_value():
    """An exception object that is yielded (not raised) is an ordinary value."""

    @ray.remote(num_returns="streaming")
    def yields_error():
        yield 1
        yield RuntimeError("just a value")
        yield 3

    values = [ray.get(r) for r in yields_error.remote()]
    assert values[0] == 1 and values[2] == 3
    assert isinstance(values[1], RuntimeError) and str(values[1]) == "just a value"


def test_many_values():
    refs = list(streaming_count.remote(300))
    assert len(refs) == 300 and len(set(refs)) == 300
    assert ray.get(refs) == list(range(300))
