"""ObjectRef, Ray's handle on a remote value, and ObjectRefGenerator for generator tasks."""

import asyncio
import concurrent.futures
import threading

import ray._raylet as _raylet


def _rebuild_ref(data):
    """An ObjectRef unpickled in another process: it borrows the object from its owner."""
    return _raylet.deserialize_ref(data)


class ObjectRef(_raylet.ObjectRef):
    """A reference to an object in the cluster (a task's return value or a put).

    Holding it keeps the object alive; `ray.get` fetches its value, and `await ref` does
    the same inside async code.
    """

    __slots__ = ()

    def __reduce__(self):
        return _rebuild_ref, (_raylet.serialize_ref(self),)

    def __repr__(self):
        return f"ObjectRef({self.hex()})"

    def task_id(self):
        """The ID of the task that makes this object (its first 24 bytes)."""
        from ray._private.ids import TaskID

        return TaskID(self.binary()[:24])

    def job_id(self):
        from ray._private.ids import JobID

        return JobID(self.binary()[20:24])

    def is_nil(self):
        return self.binary() == bytes(28)

    def future(self) -> concurrent.futures.Future:
        """A concurrent.futures.Future that completes with the object's value."""
        fut = concurrent.futures.Future()

        def fetch():
            import ray

            try:
                value, error = ray.get(self), None
            except BaseException as e:  # the future reports it
                value, error = None, e
            if not fut.set_running_or_notify_cancel():
                return  # nobody waits any more (e.g. asyncio.wait_for timed out)
            if error is None:
                fut.set_result(value)
            else:
                fut.set_exception(error)

        threading.Thread(target=fetch, daemon=True, name="rayc-ref-future").start()
        return fut

    def as_future(self, _internal=False) -> asyncio.Future:
        """An asyncio future on the running loop that completes with the value."""
        return asyncio.wrap_future(self.future())

    def __await__(self):
        return self.as_future().__await__()


_raylet.set_ref_class(ObjectRef)


class ObjectRefGenerator:
    """The refs of a generator task's values, in order (num_returns="dynamic" or
    "streaming"). Iterating yields ObjectRefs; `async for` works too."""

    def __init__(self, refs):
        self._refs = list(refs)
        self._next = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._next >= len(self._refs):
            raise StopIteration
        ref = self._refs[self._next]
        self._next += 1
        return ref

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._next >= len(self._refs):
            raise StopAsyncIteration
        ref = self._refs[self._next]
        self._next += 1
        return ref

    def __len__(self):
        return len(self._refs)

    def completed(self):
        return self._next >= len(self._refs)
