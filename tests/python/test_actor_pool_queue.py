"""End-to-end tests of ray.util.actor_pool and ray.util.queue on a local cluster."""

import asyncio
import time

import pytest

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.actor_pool import ActorPool
from ray.util.queue import Empty, Full, Queue


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2)
    yield
    ray.shutdown()


@ray.remote
class Worker:
    def double(self, v, delay=0.0):
        time.sleep(delay)
        return 2 * v

    def fail(self, v):
        raise ValueError(f"cannot handle {v}")


def double(actor, v):
    return actor.double.remote(v)


# ActorPool


def test_map_keeps_input_order():
    pool = ActorPool([Worker.remote(), Worker.remote()])
    # Early values take longest, so they finish last.
    results = pool.map(lambda a, v: a.double.remote(v, 0.05 * (4 - v)), [0, 1, 2, 3])
    assert list(results) == [0, 2, 4, 6]
    assert not pool.has_next()


def test_map_unordered_returns_every_result():
    pool = ActorPool([Worker.remote(), Worker.remote()])
    results = list(pool.map_unordered(double, range(10)))
    assert sorted(results) == [2 * v for v in range(10)]


def test_map_drops_results_pending_from_before():
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.double.remote(v, 0.5), 100)
    assert list(pool.map(double, [1, 2])) == [2, 4]


def test_map_raises_the_task_error():
    pool = ActorPool([Worker.remote()])
    with pytest.raises(ValueError, match="cannot handle 1"):
        list(pool.map(lambda a, v: a.fail.remote(v), [1]))


def test_submit_queues_work_beyond_the_pool():
    pool = ActorPool([Worker.remote()])
    for v in range(4):
        pool.submit(double, v)
    assert not pool.has_free()
    assert [pool.get_next() for _ in range(4)] == [0, 2, 4, 6]
    assert pool.has_free()
    with pytest.raises(StopIteration):
        pool.get_next()
    with pytest.raises(StopIteration):
        pool.get_next_unordered()


def test_get_next_timeout_keeps_the_work():
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.double.remote(v, 1.0), 5)
    with pytest.raises(TimeoutError, match="Timed out waiting for result"):
        pool.get_next(timeout=0.1)
    assert pool.has_next()
    assert pool.get_next() == 10


def test_get_next_timeout_can_ignore_the_work():
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.double.remote(v, 1.0), 5)
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next(timeout=0.1, ignore_if_timedout=True)
    assert not pool.has_next()
    assert pool.has_free()
    pool.submit(double, 3)
    assert pool.get_next() == 6


def test_get_next_unordered_timeout():
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.double.remote(v, 1.0), 5)
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.1)
    assert pool.get_next_unordered() == 10


def test_get_next_after_get_next_unordered_is_refused():
    pool = ActorPool([Worker.remote(), Worker.remote()])
    pool.submit(lambda a, v: a.double.remote(v, 1.0), 1)
    pool.submit(double, 2)
    assert pool.get_next_unordered() == 4
    with pytest.raises(ValueError, match="after get_next_unordered"):
        pool.get_next()
    assert pool.get_next_unordered() == 2


def test_pop_idle_and_push():
    a1, a2 = Worker.remote(), Worker.remote()
    pool = ActorPool([a1])
    pool.submit(double, 1)
    assert pool.pop_idle() is None
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a1)
    assert pool.get_next() == 2
    assert pool.pop_idle() == a1
    assert not pool.has_free()
    assert pool.pop_idle() is None

    pool.push(a2)
    assert pool.has_free()
    with pytest.raises(ValueError, match="Actor already belongs to current ActorPool"):
        pool.push(a2)


def test_push_takes_queued_work():
    extra = Worker.remote()
    assert ray.get(extra.double.remote(0)) == 0  # started before the timing below
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.double.remote(v, 2.0), 1)
    pool.submit(double, 2)
    pool.push(extra)
    assert not pool.has_free()  # the pushed actor runs the queued work
    assert pool.get_next_unordered() == 4
    assert pool.get_next_unordered() == 2


# Queue


@ray.remote
def get_from(q, timeout=None):
    return q.get(timeout=timeout)


@ray.remote
def put_into(q, item):
    q.put(item)


def test_queue_is_fifo():
    q = Queue()
    for item in range(10):
        q.put(item)
    assert [q.get() for _ in range(10)] == list(range(10))


def test_queue_get():
    q = Queue()
    q.put("a")
    assert q.get(block=False) == "a"
    q.put("b")
    assert q.get(timeout=0.2) == "b"
    q.put("c")
    assert q.get(timeout=0) == "c"
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.get(timeout=-1)
    with pytest.raises(Empty):
        q.get_nowait()
    start = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0.3)
    assert time.monotonic() - start >= 0.25


def test_queue_put():
    q = Queue(maxsize=1)
    q.put(1, block=False)
    assert q.full()
    with pytest.raises(Full):
        q.put_nowait(2)
    with pytest.raises(Full):
        q.put(2, timeout=0.2)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.put(2, timeout=-1)
    assert q.get() == 1
    q.put(3, timeout=0)
    assert q.get_nowait() == 3


def test_queue_sizes():
    q = Queue(maxsize=3)
    assert q.empty() and not q.full()
    assert q.qsize() == q.size() == len(q) == 0
    for n in range(1, 4):
        q.put(n)
        assert q.qsize() == n
    assert q.full() and not q.empty()


def test_queue_batches():
    q = Queue(maxsize=2)
    with pytest.raises(Full, match="Cannot add 3 items to queue of size 0 and maxsize 2."):
        q.put_nowait_batch([1, 2, 3])
    with pytest.raises(Empty, match="Cannot get 1 items from queue of size 0."):
        q.get_nowait_batch(1)
    with pytest.raises(TypeError):
        q.put_nowait_batch(5)
    with pytest.raises(TypeError):
        q.get_nowait_batch("2")
    with pytest.raises(ValueError):
        q.get_nowait_batch(-1)

    big = Queue(maxsize=100)
    big.put_nowait_batch(v for v in range(100))
    assert big.get_nowait_batch(0) == []
    assert big.get_nowait_batch(100) == list(range(100))


def test_queue_async():
    async def exercise():
        q = Queue(maxsize=1)
        await q.put_async("x")
        with pytest.raises(Full):
            await q.put_async("y", block=False)
        with pytest.raises(Full):
            await q.put_async("y", timeout=0.1)
        assert await q.get_async() == "x"
        with pytest.raises(Empty):
            await q.get_async(block=False)
        with pytest.raises(Empty):
            await q.get_async(timeout=0.1)
        with pytest.raises(ValueError):
            await q.get_async(timeout=-1)

    asyncio.run(exercise())


def test_queue_from_tasks():
    q = Queue()
    waiting = get_from.remote(q)
    with pytest.raises(GetTimeoutError):
        ray.get(waiting, timeout=0.3)
    q.put("for the task")
    assert ray.get(waiting) == "for the task"

    ray.get([put_into.remote(q, i) for i in range(3)])
    assert sorted(q.get_nowait_batch(3)) == [0, 1, 2]
    with pytest.raises(Empty):
        ray.get(get_from.remote(q, timeout=0.1))


def test_queue_blocked_put_from_task():
    q = Queue(maxsize=1)
    q.put(1)
    blocked = put_into.remote(q, 2)
    with pytest.raises(GetTimeoutError):
        ray.get(blocked, timeout=0.3)
    assert q.get() == 1
    ray.get(blocked)
    assert q.get() == 2


def test_queue_shared_with_actor():
    @ray.remote
    class Consumer:
        def __init__(self, q):
            self.q = q

        def take(self, n):
            return [self.q.get(timeout=5) for _ in range(n)]

    q = Queue()
    consumer = Consumer.remote(q)
    q.put_nowait_batch(["a", "b"])
    assert ray.get(consumer.take.remote(2)) == ["a", "b"]


def test_queue_actor_options():
    q = Queue(actor_options={"num_cpus": 1})
    q.put(1)
    assert q.get() == 1
    q.shutdown(force=True)


def test_queue_shutdown():
    q = Queue()
    actor = q.actor
    q.shutdown()
    assert q.actor is None
    with pytest.raises(RayActorError):
        ray.get(actor.empty.remote())
    with pytest.raises(RuntimeError, match="shut down"):
        q.put(1)
    q.shutdown()  # a second call does nothing
