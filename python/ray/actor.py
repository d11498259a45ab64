"""Actors: what @ray.remote makes of a class, their handles and methods."""

import inspect
import os
import pickle

import ray._raylet as _raylet
from ray import exceptions
from ray._private import options as _options
from ray._private import worker as _worker
from ray._private.ids import ActorID

_HANDLE_KEY = "ActorHandle:{}"


def method(*args, **kwargs):
    """Ray's @ray.method: options of one actor method (num_returns, concurrency_group)."""
    valid = {"num_returns", "concurrency_group", "max_task_retries", "retry_exceptions", "_generator_backpressure_num_objects",
             "enable_task_events", "tensor_transport"}
    if args or not kwargs:
        raise ValueError("The @ray.method decorator must be applied using at least one of the arguments in the list "
                         f"{sorted(valid)}, for example '@ray.method(num_returns=2)'.")
    for k in kwargs:
        if k not in valid:
            raise ValueError(f"Unexpected keyword argument to @ray.method: {k}. The supported keyword arguments are "
                             f"{sorted(valid)}")
    if kwargs.get("tensor_transport") not in (None, "object_store", "OBJECT_STORE"):
        raise ValueError("rayc does not support tensor_transport: tensors travel through the object store.")

    def annotate(m):
        if "num_returns" in kwargs:
            m.__ray_num_returns__ = kwargs["num_returns"]
        if kwargs.get("concurrency_group") is not None:
            m.__ray_concurrency_group__ = kwargs["concurrency_group"]
        return m

    return annotate


def _method_table(cls):
    """{name: num_returns} of a class's public methods, and whether any is async."""
    table = {}
    is_async = False
    for name, m in inspect.getmembers(cls, predicate=lambda x: inspect.isfunction(x) or inspect.ismethod(x)):
        if name.startswith("__") and name not in ("__call__",):
            continue
        # Ray 2.53: a generator method streams its values unless told otherwise.
        default = "streaming" if inspect.isgeneratorfunction(m) or inspect.isasyncgenfunction(m) else 1
        table[name] = getattr(m, "__ray_num_returns__", default)
        if inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m):
            is_async = True
    return table, is_async


class ActorClass:
    """An actor class: `Cls.remote(*args)` creates an actor and returns its handle."""

    def __init__(self, cls, options):
        _options.validate_actor_options(options, in_options=False)
        self.__ray_actor_class__ = cls
        self._cls = cls
        self._default_options = dict(options)
        self._class_name = cls.__name__
        self._methods, self._is_async = _method_table(cls)
        self._keys = {}
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__
        self.__doc__ = cls.__doc__

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "Actors cannot be instantiated directly. "
            f"Instead of '{self._class_name}()', use '{self._class_name}.remote()'."
        )

    def __reduce__(self):
        return ActorClass, (self._cls, self._default_options)

    def options(self, **actor_options):
        """A handle on this class with some options overridden for creation."""
        _options.validate_actor_options(actor_options, in_options=True)
        merged = {**self._default_options, **actor_options}
        cls = self

        class ActorOptionWrapper:
            def remote(self, *args, **kwargs):
                return cls._remote(args, kwargs, merged)

            def bind(self, *args, **kwargs):
                raise ValueError("rayc does not support Ray DAGs (.bind()); call .remote() instead.")

        return ActorOptionWrapper()

    def remote(self, *args, **kwargs):
        """Creates an actor (in the background: calls wait until it is up)."""
        return self._remote(args, kwargs, self._default_options)

    def bind(self, *args, **kwargs):
        raise ValueError("rayc does not support Ray DAGs (.bind()); call .remote() instead.")

    def _remote(self, args, kwargs, opts):
        _worker._check_connected(self._class_name)
        job = _worker.global_worker.job_id
        key = self._keys.get(job)
        if key is None:
            key = _worker.export("ActorClass", self._cls)
            self._keys[job] = key
        binding = dict(_options.actor_binding_options(opts, self._is_async))
        from ray.util.placement_group import check_request_fits

        check_request_fits(opts, f"{self._cls.__module__}.{self._cls.__qualname__}", is_actor=True)
        name = binding.get("name")
        namespace = binding.get("namespace") or _worker.global_worker.namespace
        if name and not binding.get("namespace") and namespace:
            binding["namespace"] = namespace
        concurrency = binding.get("max_concurrency") or 1
        if self._is_async:
            # Coroutines run on the actor's event loop, at most max_concurrency at once; one
            # core task thread hands them over (each call is answered when its coroutine ends).
            concurrency = binding.get("max_concurrency") or 1000
            binding["max_concurrency"] = 1
        groups = binding.pop("concurrency_groups", None) or {}
        for method_name, m in inspect.getmembers(self._cls, inspect.isfunction):
            group = getattr(m, "__ray_concurrency_group__", None)
            if group is not None and group not in groups:
                raise ValueError(f"{self._class_name}.{method_name} names concurrency group {group!r}, which the "
                                 f"actor does not define (its groups: {sorted(groups)})")
        # The worker learns the class key, the coroutines' concurrency, the actor's name and
        # its concurrency groups.
        import json

        head = f"{key}|{concurrency}|{name or ''}|{json.dumps(groups)}"
        core_args = [head.encode()] + _worker.pack_args(args, kwargs)
        try:
            actor_id = _raylet.actor_create(self._class_name, core_args, binding)
        except _raylet.RaycError as e:
            if e.args[0] == _raylet.RC_EEXIST:
                raise exceptions.ActorAlreadyExistsError(
                    f"The name {name} (namespace={namespace}) is already taken. Please use a different name or get "
                    f"the existing actor using ray.get_actor('{name}', namespace='{namespace}')"
                ) from None
            raise ValueError(e.args[1]) from None
        handle = ActorHandle(actor_id, self._class_name, self._methods, owner=not binding.get("detached"),
                             max_pending_calls=binding.get("max_pending_calls", -1))
        if name:
            # Others find this actor by name: they learn its methods from here.
            _raylet.kv_put(_worker.FUNCTION_KV_NAMESPACE, _HANDLE_KEY.format(actor_id.hex()),
                           pickle.dumps((self._class_name, self._methods)), True)
        return handle


def _rebuild_handle(actor_id, class_name, methods):
    return ActorHandle(actor_id, class_name, methods, owner=False)


class ActorHandle:
    """A handle on an actor: `handle.method.remote(*args)` calls a method.

    The handle made by `.remote()` owns a non-detached actor: once it is collected the
    actor ends after its pending calls, unless the handle was sent to another task or
    actor (holders elsewhere are not counted yet, so such an actor lives until its job
    ends)."""

    def __init__(self, actor_id, class_name, methods, owner=False, max_pending_calls=-1):
        self._ray_actor_id = bytes(actor_id)
        self._ray_max_pending_calls = max_pending_calls
        self._ray_class_name = class_name
        self._ray_methods = methods  # None: not known here (any method may be called)
        self._ray_owner = owner
        self._ray_shared = False

    def __getattr__(self, name):
        if name.startswith("_ray_") or (name.startswith("__") and name not in ("__ray_terminate__", "__ray_ready__")):
            raise AttributeError(name)
        methods = self._ray_methods
        if name in ("__ray_terminate__", "__ray_ready__"):
            return ActorMethod(self, name, 1)
        if methods is not None and name not in methods:
            raise AttributeError(f"'ActorHandle' object has no attribute '{name}'")
        return ActorMethod(self, name, methods.get(name, 1) if methods else 1)

    def __reduce__(self):
        self._ray_shared = True
        return _rebuild_handle, (self._ray_actor_id, self._ray_class_name, self._ray_methods)

    def __repr__(self):
        return f"Actor({self._ray_class_name}, {self._ray_actor_id.hex()})"

    def __hash__(self):
        return hash(self._ray_actor_id)

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._ray_actor_id == self._ray_actor_id

    @property
    def _actor_id(self):
        return ActorID(self._ray_actor_id)

    def __del__(self):
        if self._ray_owner and not self._ray_shared and _worker.global_worker.connected:
            try:
                _raylet.actor_release(self._ray_actor_id)
            except Exception:
                pass


class ActorMethod:
    """One method of an actor, bound to a handle."""

    def __init__(self, handle, name, num_returns):
        self._handle = handle
        self._name = name
        self._num_returns = num_returns

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "Actor methods cannot be called directly. Instead "
            f"of running 'object.{self._name}()', try 'object.{self._name}.remote()'."
        )

    def remote(self, *args, **kwargs):
        return self._remote(args, kwargs, self._num_returns, None)

    def options(self, **opts):
        for k in opts:
            if k not in ("num_returns", "name", "enable_task_events"):
                raise ValueError(f"rayc does not support the actor method option '{k}'; it takes num_returns and name.")
        method = self

        class FuncWrapper:
            def remote(self, *args, **kwargs):
                return method._remote(args, kwargs, opts.get("num_returns", method._num_returns), opts.get("name"))

        return FuncWrapper()

    def bind(self, *args, **kwargs):
        raise ValueError("rayc does not support Ray DAGs (.bind()); call .remote() instead.")

    def _remote(self, args, kwargs, num_returns, name):
        _worker._check_connected(self._name)
        generator = num_returns in ("dynamic", "streaming")
        meta = {"retries": 0, "retry_exceptions": False, "generator": num_returns} if generator else None
        n = 1 if generator or num_returns == 0 else num_returns
        h = self._handle
        try:
            refs = _raylet.actor_call(h._ray_actor_id, self._name, _worker.pack_args(args, kwargs, meta), n,
                                      name or f"{h._ray_class_name}.{self._name}", h._ray_max_pending_calls)
        except _raylet.RaycError as e:
            if e.args[0] == _raylet.RC_EBUSY:
                raise exceptions.PendingCallsLimitExceeded(
                    f"The task {self._name} could not be submitted to {h!r} because more than "
                    f"{h._ray_max_pending_calls} tasks are queued on the actor. This limit can be adjusted with the "
                    "`max_pending_calls` actor option."
                ) from None
            raise
        if num_returns == "streaming":
            from ray.remote_function import _StreamingGenerator

            return _StreamingGenerator(refs[0])
        if num_returns == 0:
            return None
        return refs[0] if n == 1 else refs


def get_actor(name: str, namespace=None):
    """The handle of the named actor (Ray's ray.get_actor)."""
    if not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError("namespace must be None or a string")
    _worker._check_connected("ray.get_actor")
    ns = namespace or _worker.global_worker.namespace
    actor_id = _raylet.get_actor(name, ns)
    if actor_id is None:
        raise ValueError(
            f"Failed to look up actor with name '{name}'. This could because 1. You are trying to look up a named "
            "actor you didn't create. 2. The named actor died. 3. You did not use a namespace matching the namespace "
            "of the actor."
        )
    meta = _raylet.kv_get(_worker.FUNCTION_KV_NAMESPACE, _HANDLE_KEY.format(actor_id.hex()))
    class_name, methods = pickle.loads(meta) if meta else ("Actor", None)
    return ActorHandle(actor_id, class_name, methods, owner=False)


def kill(actor, *, no_restart=True):
    """Ray's ray.kill: ends the actor now (its pending calls fail)."""
    if not isinstance(actor, ActorHandle):
        raise ValueError(f"ray.kill() only supported for actors. For tasks, try ray.cancel(). Got: {type(actor)}.")
    _worker._check_connected("ray.kill")
    _raylet.actor_kill(actor._ray_actor_id, bool(no_restart))


def exit_actor():
    """Ends the actor this method runs in (Ray's ray.actor.exit_actor): no restart."""
    ctx = _raylet.runtime_context()
    if not ctx["is_actor"]:
        raise TypeError("exit_actor API is called on a non-actor worker.")
    os.sys.stdout.flush()
    os.sys.stderr.flush()
    _raylet.actor_kill(ctx["actor_id"], True)
    os._exit(0)


def list_named_actors(all_namespaces: bool = False):
    """Ray's ray.util.list_named_actors: the names of the live named actors of the job's
    namespace, or dicts {"name", "namespace"} of every namespace's."""
    import json

    _worker._check_connected("ray.util.list_named_actors")
    found = json.loads(_raylet.named_actors_json(_worker.global_worker.namespace, bool(all_namespaces)))
    return found if all_namespaces else [a["name"] for a in found]
