"""ActorPool: spread work over a fixed set of actors, as in Ray."""

from typing import Any, Callable, List, TypeVar

V = TypeVar("V")

_TIMEOUT_MSG = "Timed out waiting for result"


def _key(future):
    """A hashable key for what `fn` returned: an ObjectRef or a list of them."""
    return tuple(future) if isinstance(future, list) else future


class ActorPool:
    """Runs work on a fixed pool of actors, one call per idle actor at a time.

    Work is given as `fn(actor, value)`, a function that calls a method of the
    actor and returns its ObjectRef; the actor counts as busy until that result
    has been returned by get_next() or get_next_unordered(). Work submitted while
    every actor is busy waits in the pool and starts when an actor is returned.

    Example::

        @ray.remote
        class Doubler:
            def double(self, v):
                return 2 * v

        pool = ActorPool([Doubler.remote(), Doubler.remote()])
        list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4]))  # [2, 4, 6, 8]

    Args:
        actors: The actor handles to use.
    """

    def __init__(self, actors: list):
        self._idle_actors = list(actors)
        # ObjectRef key -> (submission index, actor running it)
        self._future_to_actor = {}
        # submission index -> ObjectRef (or list of ObjectRefs)
        self._index_to_future = {}
        self._next_task_index = 0
        self._next_return_index = 0
        # (fn, value) pairs waiting for an idle actor, oldest first
        self._pending_submits = []

    def map(self, fn: Callable[[Any, V], Any], values: List[V]):
        """Runs `fn` over `values` on the pool; yields the results in input order.

        Results still pending from earlier submissions are dropped first. The
        work starts right away, but only iterating collects its results.
        """
        while self.has_next():
            try:
                self.get_next(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next()

        return results()

    def map_unordered(self, fn: Callable[[Any, V], Any], values: List[V]):
        """Like map(), but yields each result as soon as it is ready."""
        while self.has_next():
            try:
                self.get_next_unordered(timeout=0)
            except TimeoutError:
                pass
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next_unordered()

        return results()

    def submit(self, fn: Callable[[Any, V], Any], value: V) -> None:
        """Schedules `fn(actor, value)` on an idle actor, or queues it until one is free.

        Collect the result with get_next() or get_next_unordered().
        """
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        future = fn(actor, value)
        self._future_to_actor[_key(future)] = (self._next_task_index, actor)
        self._index_to_future[self._next_task_index] = future
        self._next_task_index += 1

    def has_next(self) -> bool:
        """Whether some submitted work has a result not yet returned."""
        return bool(self._future_to_actor)

    def get_next(self, timeout=None, ignore_if_timedout=False):
        """Returns the result of the oldest submission not yet returned.

        Args:
            timeout: Seconds to wait for the result; None waits as long as needed.
            ignore_if_timedout: On timeout, give up on this submission (its actor
                becomes idle again and its result is never returned) before
                raising TimeoutError.

        Raises:
            StopIteration: Nothing is pending.
            TimeoutError: The result was not ready in time.
            ValueError: get_next_unordered() has already been used on this pool.
        """
        import ray

        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError(
                "It is not allowed to call get_next() after get_next_unordered()."
            )
        future = self._index_to_future[self._next_return_index]
        timed_out = False
        if timeout is not None:
            refs = list(future) if isinstance(future, list) else [future]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            if len(ready) < len(refs):
                if not ignore_if_timedout:
                    raise TimeoutError(_TIMEOUT_MSG)
                timed_out = True
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        self._return_actor(actor)
        if timed_out:
            raise TimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        return ray.get(future)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        """Returns the result of any finished submission, waiting for one if needed.

        Faster than get_next() when some work takes longer than other work; once
        used, get_next() can no longer be called on this pool. Works with work
        that returns a single ObjectRef.

        Args:
            timeout: Seconds to wait; None waits as long as needed.
            ignore_if_timedout: On timeout, give up on one pending submission
                before raising TimeoutError.

        Raises:
            StopIteration: Nothing is pending.
            TimeoutError: No result was ready in time.
        """
        import ray

        if not self.has_next():
            raise StopIteration("No more results to get")
        pending = list(self._future_to_actor)
        ready, _ = ray.wait(pending, num_returns=1, timeout=timeout)
        if ready:
            future = ready[0]
        elif ignore_if_timedout:
            future = pending[0]
        else:
            raise TimeoutError(_TIMEOUT_MSG)
        index, actor = self._future_to_actor.pop(future)
        self._return_actor(actor)
        del self._index_to_future[index]
        self._next_return_index = max(self._next_return_index, index + 1)
        if not ready:
            raise TimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        return ray.get(future)

    def _return_actor(self, actor) -> None:
        """Marks `actor` idle and hands it the oldest queued work, if any."""
        self._idle_actors.append(actor)
        if self._pending_submits:
            self.submit(*self._pending_submits.pop(0))

    def has_free(self) -> bool:
        """Whether an actor is idle and no work is queued."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Removes an idle actor from the pool and returns it; None if none is free."""
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor) -> None:
        """Adds `actor` to the pool as an idle actor; it takes queued work at once.

        Raises:
            ValueError: The actor is already in the pool.
        """
        busy = [a for _, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)
