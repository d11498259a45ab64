"""A rayc Python worker: the process a raylet starts for Python tasks.

    python3 -m ray._private.workers.default_worker --raylet-socket ... --node-id ...
        --node-ip-address ... --worker-id ... --job-id ... --gcs-address ...

The raylet starts it with the job's sys.path (PYTHONPATH) and working directory. It joins
the raylet through the core (ray._raylet.worker_main) and runs what the core hands over:
functions and classes are fetched from the GCS KV by key once, then cached. A user
exception becomes the task's value (a RayTaskError, raised again by whoever gets it);
the core only hears of failures of the worker machinery itself.

Output: the worker's stdout and stderr go to its log files, which the driver's log monitor
follows. Before the first line of each task that prints, a marker line names the task
(":task_name:<name>"), and the first line names the job and the pid (":job_id:<hex>:<pid>").
"""

import asyncio
import contextvars
import inspect
import os
import signal
import sys
import threading

import ray
import ray._raylet as _raylet
from ray import exceptions
from ray._private import serialization
from ray._private import worker as _worker

_ERROR = serialization.KIND_ERROR


class _MarkedStream:
    """A text stream that writes a marker line naming the current task before the first
    output of each task, so that the driver can prefix the lines as Ray does."""

    def __init__(self, stream):
        self._stream = stream
        self._last = None
        self._line_start = True
        self._lock = threading.Lock()

    def write(self, text):
        name = _log_name()
        with self._lock:
            if name != self._last and text:
                self._stream.write(("" if self._line_start else "\n") + f":task_name:{name}\n")
                self._last = name
            if text:
                self._line_start = text.endswith("\n")
            return self._stream.write(text)

    def __getattr__(self, attr):
        return getattr(self._stream, attr)


# Who is printing: an actor's name, else the running task's (None: ask the core). A context
# variable, so that each coroutine of an async actor keeps its own.
_printing_as = contextvars.ContextVar("rayc_printing_as", default=None)


def _log_name():
    name = _printing_as.get()
    if name is None:
        name = _raylet.runtime_context()["task_name"] or "worker"
    return name


def _proctitle(name):
    return f"ray::{name}"


class _Actor:
    """The actor this worker hosts: its instance and, for async actors, its event loop,
    where coroutine methods run (at most max_concurrency at once)."""

    def __init__(self, cls, instance, class_name, max_concurrency, groups):
        self.cls = cls
        self.instance = instance
        self.class_name = class_name
        self.loop = None
        self.semaphore = None
        self.group_semaphores = {}
        if any(inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
               for _, m in inspect.getmembers(cls, inspect.isfunction)):
            self.loop = asyncio.new_event_loop()
            self.semaphore = asyncio.Semaphore(max_concurrency)
            # Ray's concurrency groups: a method of a group runs at most that many at once,
            # the others share the default group (max_concurrency).
            self.group_semaphores = {g: asyncio.Semaphore(n) for g, n in groups.items()}
            t = threading.Thread(target=self._run_loop, daemon=True, name="rayc-actor-loop")
            t.start()

    def _run_loop(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def log_name(self):
        """What prefixes its output: its repr when the class defines one (Ray's rule)."""
        if type(self.instance).__repr__ is not object.__repr__:
            try:
                return repr(self.instance)
            except Exception:
                pass
        return self.class_name

    def __repr__(self):
        return f"{self.class_name}"


class Executor:
    """What the core calls on its task threads (see ray/_raylet.c)."""

    def __init__(self):
        self._cache = {}
        self._lock = threading.Lock()
        self._ip = None
        self._pid = os.getpid()

    def _load(self, key):
        obj = self._cache.get(key)
        if obj is None:
            import cloudpickle

            data = _raylet.kv_get(_worker.FUNCTION_KV_NAMESPACE, key)
            if data is None:
                raise RuntimeError(f"rayc: {key} is not in the GCS (was its job's driver connected to this cluster?)")
            obj = cloudpickle.loads(data)
            with self._lock:
                self._cache[key] = obj
        return obj

    def _node_ip(self):
        if self._ip is None:
            self._ip = ray.util.get_node_ip_address()
        return self._ip

    def _error_parts(self, exc, name, actor=None):
        err = exc
        if not isinstance(exc, exceptions.RayError) or isinstance(exc, exceptions.RayTaskError):
            err = exceptions.RayTaskError.from_exception(
                exc, name, _proctitle(name), self._pid, self._node_ip(),
                actor_repr=repr(actor.instance) if actor is not None else None,
                actor_id=_raylet.runtime_context()["actor_id"].hex() if actor is not None else None,
            )
        parts, _ = serialization.serialize(err, _ERROR)
        return parts

    def _generator_parts(self, refs, mode):
        """The value of a generator task: its values' refs (an ObjectRefGenerator for
        "dynamic", a list the driver's streaming generator walks for "streaming")."""
        if mode == "dynamic":
            from ray._private.object_ref import ObjectRefGenerator

            return [serialization.serialize(ObjectRefGenerator(refs))[0]]
        return [serialization.serialize(refs)[0]]

    def _put_values(self, values, name, actor):
        """Puts each value a generator yields; an error ends the values with an error ref."""
        refs = []
        try:
            for v in values:
                refs.append(ray.put(v))
        except Exception as e:
            refs.append(_raylet.put(self._error_parts(e, name, actor)))
        return refs

    def _stream(self, values, name, actor, report):
        """A streaming generator: each value goes to the owner as it is yielded (an error
        ends them as one more value); the task's result is how many there were."""
        index = 0
        try:
            for v in values:
                report(index, serialization.serialize(v)[0])
                index += 1
        except Exception as e:
            report(index, self._error_parts(e, name, actor))
            index += 1
        return [serialization.serialize(index)[0]]

    def _returns(self, result, num_returns, meta, name, actor=None):
        generator = meta.get("generator") if meta else None
        if generator == "streaming":
            return self._stream(result, name, actor, _raylet.report_generator_item)
        if generator:
            return self._generator_parts(self._put_values(result, name, actor), generator)
        if num_returns == 1:
            return [serialization.serialize(result)[0]]
        if inspect.isgenerator(result):
            result = list(result)
        if not isinstance(result, (list, tuple)) or len(result) != num_returns:
            got = len(result) if isinstance(result, (list, tuple)) else 1
            raise ValueError(f"Task returned {got} objects, but num_returns={num_returns}.")
        return [serialization.serialize(v)[0] for v in result]

    def _run(self, name, fn, args, num_returns, actor=None):
        """Runs fn with the task's arguments; its results, or its error as every result."""
        try:
            a, kw, meta = _worker.unpack_args(args)
        except Exception as e:  # an argument's task failed: so does this one
            return [self._error_parts(e, name, actor)] * num_returns
        attempts = 1 + (meta["retries"] if meta and meta.get("retry_exceptions") else 0)
        if meta and meta.get("retries") == -1 and meta.get("retry_exceptions"):
            attempts = float("inf")
        while True:
            attempts -= 1
            try:
                return self._returns(fn(*a, **kw), num_returns, meta, name, actor)
            except KeyboardInterrupt:  # ray.cancel without force (see _raylet.c)
                cancelled = exceptions.TaskCancelledError(_raylet.runtime_context()["task_id"].hex())
                return [serialization.serialize(cancelled, _ERROR)[0]] * num_returns
            except Exception as e:
                if attempts > 0 and self._retriable(e, meta["retry_exceptions"]):
                    continue
                return [self._error_parts(e, name, actor)] * num_returns

    @staticmethod
    def _retriable(exc, retry_exceptions):
        if retry_exceptions is True:
            return True
        if isinstance(retry_exceptions, (list, tuple)):
            return isinstance(exc, tuple(retry_exceptions))
        return False

    async def _run_async(self, actor, handle, name, fn, args, num_returns):
        """An async actor's coroutine (or async generator) method, on the actor's loop; the
        call is answered through its handle when it ends."""
        _printing_as.set(actor.log_name)
        group = getattr(fn, "__ray_concurrency_group__", None)
        async with actor.group_semaphores.get(group, actor.semaphore):
            try:
                a, kw, meta = _worker.unpack_args(args)
                generator = meta.get("generator") if meta else None
                if inspect.isasyncgenfunction(fn) and generator != "dynamic":
                    index = 0
                    try:
                        async for v in fn(*a, **kw):
                            handle.report_item(index, serialization.serialize(v)[0])
                            index += 1
                    except Exception as e:
                        handle.report_item(index, self._error_parts(e, name, actor))
                        index += 1
                    parts = [serialization.serialize(index)[0]] * num_returns
                elif inspect.isasyncgenfunction(fn):
                    values, error = [], None
                    try:
                        async for v in fn(*a, **kw):
                            values.append(ray.put(v))
                    except Exception as e:
                        error = e
                    if error is not None:
                        values.append(_raylet.put(self._error_parts(error, name, actor)))
                    parts = self._generator_parts(values, generator or "streaming")
                    parts = parts if num_returns == 1 else parts * num_returns
                else:
                    parts = self._returns(await fn(*a, **kw), num_returns, meta, name, actor)
            except Exception as e:
                parts = [self._error_parts(e, name, actor)] * num_returns
        handle.finish(parts)

    # ---- called by the core -----------------------------------------------------------

    def run_task(self, key, args, num_returns):
        _connected()
        _printing_as.set(None)  # the task's own name (it may be set by .options(name=...))
        fn = self._load(key)
        return self._run(getattr(fn, "__qualname__", key), fn, args, num_returns)

    def create_actor(self, class_name, args):
        _connected()
        import json

        key, concurrency, actor_name, groups = (bytes(args[0]).decode().split("|", 3) + ["", "", "{}"])[:4]
        _worker.global_worker.actor_name = actor_name or None
        cls = self._load(key)
        _printing_as.set(class_name)
        a, kw, _ = _worker.unpack_args(args[1:])
        instance = cls.__new__(cls)
        actor = _Actor(cls, instance, class_name, int(concurrency or 1000), json.loads(groups or "{}"))
        instance.__init__(*a, **kw)
        return actor

    def call_method(self, actor, method, args, num_returns, handle):
        name = f"{actor.class_name}.{method}"
        if method == "__ray_ready__":
            return [serialization.serialize(True)[0]] * num_returns
        if method == "__ray_terminate__":
            ray.actor.exit_actor()
        fn = getattr(actor.instance, method, None)
        if fn is None:
            err = AttributeError(f"'{actor.class_name}' object has no attribute '{method}'")
            return [self._error_parts(err, name, actor)] * num_returns
        if actor.loop is not None and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)):
            handle.defer()
            coro = self._run_async(actor, handle, name, fn, args, num_returns)
            actor.loop.call_soon_threadsafe(actor.loop.create_task, coro)
            return None
        _printing_as.set(actor.log_name)
        return self._run(name, fn, args, num_returns, actor)

    def destroy_actor(self, actor):
        if actor.loop is not None:
            actor.loop.call_soon_threadsafe(actor.loop.stop)


def main(argv):
    # ray.cancel interrupts a running task with SIGINT (see _raylet.c), even when the worker
    # was started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Lines, not blocks: the driver shows worker output as it comes.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    job = argv[argv.index("--job-id") + 1] if "--job-id" in argv else ""
    print(f":job_id:{job}:{os.getpid()}", flush=True)
    print(f":job_id:{job}:{os.getpid()}", file=sys.stderr, flush=True)
    sys.stdout = _MarkedStream(sys.stdout)
    sys.stderr = _MarkedStream(sys.stderr)
    global _SESSION_DIR
    _SESSION_DIR = _session_dir(argv)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    executor = Executor()
    return _raylet.worker_main(["rayc-python-worker"] + argv, executor)


def _session_dir(argv):
    """The node's session directory: the raylet's socket is <session>/sockets/<name>."""
    if "--raylet-socket" not in argv:
        return None
    sockets = os.path.dirname(argv[argv.index("--raylet-socket") + 1])
    return os.path.dirname(sockets) if os.path.basename(sockets) == "sockets" else None


_SESSION_DIR = None


def _connected():
    # The core has joined before it hands over the first task: the Python side learns its
    # IDs then, and puts the job's working_dir and py_modules in place.
    if not _worker.global_worker.connected:
        _worker.connect_worker(_SESSION_DIR)
    if _worker.global_worker.runtime_env_error:
        raise exceptions.RuntimeEnvSetupError(_worker.global_worker.runtime_env_error)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
