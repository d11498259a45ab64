"""Remote functions: what @ray.remote makes of a function."""

import functools
import inspect

import ray._raylet as _raylet
from ray._private import options as _options
from ray._private import worker as _worker
from ray._private.object_ref import ObjectRefGenerator


class RemoteFunction:
    """A function that runs as a task somewhere in the cluster: `f.remote(*args)` submits
    it and returns ObjectRefs; `f.options(...)` overrides the decorator's options."""

    def __init__(self, function, options):
        if inspect.iscoroutinefunction(function):
            raise ValueError(
                "'async def' should not be used for remote tasks. You can wrap the async function with "
                "`asyncio.run(f())`. See more at:https://docs.ray.io/en/latest/ray-core/actors/async_api.html "
            )
        _options.validate_task_options(options, in_options=False)
        self._function = function
        self._default_options = dict(options)
        if inspect.isgeneratorfunction(function) and "num_returns" not in options:
            self._default_options["num_returns"] = "streaming"  # Ray 2.53's default for generators
        self._function_name = f"{function.__module__}.{function.__qualname__}"
        self._name = function.__qualname__
        self._keys = {}  # job id -> exported key
        self._binding_cache = {}
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "Remote functions cannot be called directly. Instead "
            f"of running '{self._function_name}()', try '{self._function_name}.remote()'."
        )

    def __reduce__(self):
        return RemoteFunction, (self._function, self._default_options)

    def options(self, **task_options):
        """A handle on this function with some options overridden for its calls."""
        _options.validate_task_options(task_options, in_options=True)
        merged = {**self._default_options, **task_options}
        func = self

        class FuncWrapper:
            def remote(self, *args, **kwargs):
                return func._remote(args, kwargs, merged)

            def bind(self, *args, **kwargs):
                raise ValueError("rayc does not support Ray DAGs (.bind()); call .remote() instead.")

        return FuncWrapper()

    def remote(self, *args, **kwargs):
        """Submits a call; returns its ObjectRef (or a list for num_returns > 1)."""
        return self._remote(args, kwargs, self._default_options)

    def bind(self, *args, **kwargs):
        raise ValueError("rayc does not support Ray DAGs (.bind()); call .remote() instead.")

    def _binding(self, opts):
        key = id(opts)
        cached = self._binding_cache.get(key)
        if cached is None or cached[0] is not opts:
            binding, retry = _options.task_binding_options(opts)
            from ray.util.placement_group import check_request_fits

            check_request_fits(opts, self._function_name, is_actor=False)
            binding = dict(binding)
            binding.setdefault("name", opts.get("name") or self._name)
            cached = (opts, binding, retry)
            if len(self._binding_cache) > 64:
                self._binding_cache.clear()
            self._binding_cache[key] = cached
        return cached[1], cached[2]

    def _remote(self, args, kwargs, opts):
        _worker._check_connected(self._function_name)
        job = _worker.global_worker.job_id
        fkey = self._keys.get(job)
        if fkey is None:
            fkey = _worker.export("RemoteFunction", self._function)
            self._keys[job] = fkey
        binding, retry = self._binding(opts)
        num_returns = binding.get("num_returns", 1)
        generator = num_returns in ("dynamic", "streaming")
        wanted = None if generator else num_returns
        call = binding
        if generator or num_returns == 0:
            call = dict(binding, num_returns=1)
        meta = None
        if generator or (retry is not None and retry[1] and retry[0] != 0):
            meta = {
                "retries": retry[0] if retry else 0,
                "retry_exceptions": retry[1] if retry else False,
                "generator": num_returns if generator else None,
            }
        packed = _worker.pack_args(args, kwargs, meta)
        refs = _raylet.submit(fkey, packed, call)
        if num_returns == "streaming":
            return _StreamingGenerator(refs[0])
        if wanted == 0:
            return None
        if wanted == 1 or generator:
            return refs[0]
        return refs


class _StreamingGenerator(ObjectRefGenerator):
    """num_returns="streaming": each value's ref as soon as the executor has yielded it
    (the task's owner receives the values one by one); iteration ends when the task has
    ended and every value was taken, and raises the task's failure if it failed."""

    def __init__(self, ref):
        super().__init__([])
        self._ref = ref
        self._done = False

    def _next_ref(self):
        import ray._raylet as _raylet

        while not self._done:
            item = _raylet.generator_next(self._ref, self._next, 100)
            if item is None and _raylet.wait([self._ref], 1, 0, False)[0]:
                # The task ended: every value it yielded was reported before.
                item = _raylet.generator_next(self._ref, self._next, 0)
                if item is None:
                    self._done = True
                    import ray

                    ray.get(self._ref)  # raises the task's failure, if it failed
                    break
            if item is not None:
                self._next += 1
                return item
        raise StopIteration

    def __next__(self):
        return self._next_ref()

    async def __anext__(self):
        import asyncio

        def step():
            try:
                return self._next_ref()
            except StopIteration:
                return None

        item = await asyncio.get_running_loop().run_in_executor(None, step)
        if item is None:
            raise StopAsyncIteration
        return item

    def __len__(self):
        raise TypeError("a streaming generator's length is not known until it ends")

    def completed(self):
        return self._done
