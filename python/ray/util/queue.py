"""A first-in, first-out queue shared by drivers, tasks and actors, as in Ray.

The items live in an asyncio actor; a Queue object is a light handle to it and
can be passed to tasks and actors like any other value.
"""

import asyncio
import queue
from collections.abc import Iterable
from typing import Any, Dict, List, Optional

import ray


class Empty(queue.Empty):
    """Raised when getting from an empty Queue without waiting, or after a timeout."""


class Full(queue.Full):
    """Raised when putting into a full Queue without waiting, or after a timeout."""


def _check_timeout(timeout: Optional[float]) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class Queue:
    """A FIFO queue on the cluster, with blocking, non-blocking and async access.

    Puts block while the queue is full and gets block while it is empty, unless
    told not to or until their timeout; batch operations move many items in one
    call. With several producers on a full queue (or consumers on an empty one)
    the order in which the waiting calls go through is not defined.

    Args:
        maxsize: Most items the queue holds; 0 means no limit.
        actor_options: Options for the actor holding the items, passed to
            `.options(...)`, e.g. ``{"num_cpus": 1}``.

    Example::

        q = Queue(maxsize=10)
        q.put("work")
        assert q.get() == "work"
    """

    def __init__(self, maxsize: int = 0, actor_options: Optional[Dict] = None) -> None:
        self.maxsize = maxsize
        self.actor = (
            ray.remote(_QueueActor).options(**(actor_options or {})).remote(maxsize)
        )

    def _handle(self):
        if self.actor is None:
            raise RuntimeError("This Queue has been shut down; create a new Queue.")
        return self.actor

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """The number of items in the queue."""
        return ray.get(self._handle().qsize.remote())

    def qsize(self) -> int:
        """The number of items in the queue."""
        return self.size()

    def empty(self) -> bool:
        """Whether the queue holds no item."""
        return ray.get(self._handle().empty.remote())

    def full(self) -> bool:
        """Whether the queue holds maxsize items."""
        return ray.get(self._handle().full.remote())

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        """Adds an item at the end of the queue.

        Args:
            block: Wait while the queue is full; if False, raise Full at once.
            timeout: When blocking, raise Full after this many seconds; None
                waits as long as needed.

        Raises:
            Full: The queue stayed full.
            ValueError: `timeout` is negative.
        """
        if block:
            _check_timeout(timeout)
            added = ray.get(self._handle().put.remote(item, timeout))
        else:
            added = ray.get(self._handle().put_nowait.remote(item))
        if not added:
            raise Full(f"The queue is full (maxsize {self.maxsize}).")

    async def put_async(
        self, item: Any, block: bool = True, timeout: Optional[float] = None
    ) -> None:
        """Like put(), for asyncio code: awaits instead of blocking the thread."""
        if block:
            _check_timeout(timeout)
            added = await self._handle().put.remote(item, timeout)
        else:
            added = await self._handle().put_nowait.remote(item)
        if not added:
            raise Full(f"The queue is full (maxsize {self.maxsize}).")

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Removes and returns the item at the front of the queue.

        Args:
            block: Wait while the queue is empty; if False, raise Empty at once.
            timeout: When blocking, raise Empty after this many seconds; None
                waits as long as needed.

        Raises:
            Empty: The queue stayed empty.
            ValueError: `timeout` is negative.
        """
        if block:
            _check_timeout(timeout)
            found, item = ray.get(self._handle().get.remote(timeout))
        else:
            found, item = ray.get(self._handle().get_nowait.remote())
        if not found:
            raise Empty("The queue is empty.")
        return item

    async def get_async(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Like get(), for asyncio code: awaits instead of blocking the thread."""
        if block:
            _check_timeout(timeout)
            found, item = await self._handle().get.remote(timeout)
        else:
            found, item = await self._handle().get_nowait.remote()
        if not found:
            raise Empty("The queue is empty.")
        return item

    def put_nowait(self, item: Any) -> None:
        """Same as put(item, block=False)."""
        self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable) -> None:
        """Adds all `items`, in order, in one call; adds none if they do not all fit.

        Raises:
            Full: The items do not fit in the queue.
        """
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        error = ray.get(self._handle().put_nowait_batch.remote(list(items)))
        if error:
            raise Full(error)

    def get_nowait(self) -> Any:
        """Same as get(block=False)."""
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> List[Any]:
        """Removes and returns `num_items` items, in order, in one call.

        Raises:
            Empty: The queue holds fewer than `num_items` items; none are taken.
        """
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        items, error = ray.get(self._handle().get_nowait_batch.remote(num_items))
        if error:
            raise Empty(error)
        return items

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """Stops the actor holding the queue, releasing its resources.

        The items still in the queue are lost and this object can no longer be used.

        Args:
            force: Kill the actor at once. Otherwise ask it to exit and kill it
                only if it has not exited after `grace_period_s` seconds.
            grace_period_s: How long a graceful exit may take.
        """
        if self.actor is not None:
            if force:
                ray.kill(self.actor, no_restart=True)
            else:
                done = self.actor.__ray_terminate__.remote()
                _, not_done = ray.wait([done], timeout=grace_period_s)
                if not_done:
                    ray.kill(self.actor, no_restart=True)
        self.actor = None


class _QueueActor:
    """The actor holding a Queue's items.

    Expected outcomes are returned, not raised: puts return whether the item was
    added, gets return a (found, item) pair and batch calls return an error text.
    Every method is async so that all of them run on the actor's event loop, the
    only thread allowed to touch the asyncio.Queue.
    """

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.queue = asyncio.Queue(maxsize)

    async def qsize(self) -> int:
        return self.queue.qsize()

    async def empty(self) -> bool:
        return self.queue.empty()

    async def full(self) -> bool:
        return self.queue.full()

    async def put(self, item, timeout=None) -> bool:
        # Checking first lets a zero timeout succeed when there is room.
        if not self.queue.full():
            self.queue.put_nowait(item)
            return True
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def get(self, timeout=None):
        if not self.queue.empty():
            return True, self.queue.get_nowait()
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return False, None

    async def put_nowait(self, item) -> bool:
        if self.queue.full():
            return False
        self.queue.put_nowait(item)
        return True

    async def put_nowait_batch(self, items) -> Optional[str]:
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            return (
                f"Cannot add {len(items)} items to queue of size "
                f"{self.queue.qsize()} and maxsize {self.maxsize}."
            )
        for item in items:
            self.queue.put_nowait(item)
        return None

    async def get_nowait(self):
        if self.queue.empty():
            return False, None
        return True, self.queue.get_nowait()

    async def get_nowait_batch(self, num_items: int):
        if num_items > self.queue.qsize():
            return None, (
                f"Cannot get {num_items} items from queue of size "
                f"{self.queue.qsize()}."
            )
        return [self.queue.get_nowait() for _ in range(num_items)], None
