"""The process's connection to a rayc cluster and Ray's top-level API over it.

A driver calls init(); a worker is connected by default_worker before it runs tasks.
Everything else (remote functions, actors, placement groups) goes through the global
state here and the C binding `ray._raylet`, which releases the GIL whenever it blocks.
"""

import atexit
import json
import logging
import os
import socket
import sys
import threading

import ray._raylet as _raylet
from ray import exceptions
from ray._private import runtime_env_packages, serialization
from ray._private.object_ref import ObjectRef

logger = logging.getLogger("ray")

# Ray's mode constants.
SCRIPT_MODE = 0
WORKER_MODE = 1
LOCAL_MODE = 2

# Namespace of the GCS KV where functions and classes are exported.
FUNCTION_KV_NAMESPACE = "fun"

# Values above this many bytes are put in the object store and passed by reference.
_INLINE_ARG_LIMIT = 100 * 1024


class _GlobalState:
    """What this process knows of its cluster connection."""

    def __init__(self):
        self.lock = threading.RLock()
        self.connected = False
        self.mode = None
        self.namespace = None
        self.job_id = None
        self.node_ip = None
        self.gcs_address = None
        self.log_to_driver = True
        self.actor_name = None  # in an actor's worker: its name, if it has one
        self.exported = {}  # (job, key) already in the KV
        self.runtime_env_error = None  # in a worker: why its job's runtime env is not set up


global_worker = _GlobalState()


def is_initialized() -> bool:
    """Whether ray.init() has been called (or this is a worker)."""
    return global_worker.connected


def _check_connected(what):
    if not global_worker.connected:
        # Ray initializes on first use; so does rayc.
        if global_worker.mode is None:
            init()
        else:
            raise exceptions.RaySystemError(f"Ray has not been started yet. You can start Ray with 'ray.init()'. ({what})")


# ---- the local cluster's Python workers ----------------------------------------------------


class _LocalWorkersPython:
    """While init may start a local cluster, its raylet runs Python workers with this
    interpreter (RAYC_PYTHON) unless the environment names another; the environment is as it
    was afterwards, so that nothing leaks into later clusters or child processes. (librayc
    finds the daemons themselves next to itself or on PATH.)"""

    def __enter__(self):
        self._set = "RAYC_PYTHON" not in os.environ
        if self._set:
            os.environ["RAYC_PYTHON"] = sys.executable
        return self

    def __exit__(self, *exc):
        if self._set:
            os.environ.pop("RAYC_PYTHON", None)


# ---- init / shutdown ---------------------------------------------------------------------


def init(
    address=None,
    *,
    num_cpus=None,
    num_gpus=None,
    resources=None,
    labels=None,
    object_store_memory=None,
    local_mode=False,
    ignore_reinit_error=False,
    include_dashboard=None,
    dashboard_host=None,
    dashboard_port=None,
    job_config=None,
    configure_logging=True,
    logging_level=logging.INFO,
    logging_format=None,
    log_to_driver=True,
    namespace=None,
    runtime_env=None,
    **kwargs,
):
    """Connects to a rayc cluster, or starts a local one (Ray's ray.init).

    address: None joins the cluster `rayc start` runs on this host if there is one, else
    starts a local cluster; "auto" must find one; "local" always starts a new one;
    "host:port" is a GCS address ("ray://" client addresses are not supported).
    """
    with global_worker.lock:
        if global_worker.connected:
            if ignore_reinit_error:
                logger.info("Calling ray.init() again after it has already been called.")
                return RayContext(_context_info())
            raise RuntimeError(
                "Maybe you called ray.init twice by accident? This error can be suppressed by passing in "
                "'ignore_reinit_error=True' or by calling 'ray.shutdown()' prior to 'ray.init()'."
            )
        unsupported = {k for k in kwargs if not k.startswith("_")}
        if unsupported:
            raise TypeError(f"Unknown keyword argument(s): {', '.join(sorted(unsupported))}")
        if local_mode:
            raise ValueError("rayc does not support local_mode: run with a local cluster (the default) instead.")
        if object_store_memory not in (None, 0):
            raise ValueError("rayc sizes the object store itself: object_store_memory is not supported; omit it.")
        if labels is not None and (not isinstance(labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
            raise ValueError(f"labels must be a dict of str to str, got {labels!r}")
        if job_config is not None and getattr(job_config, "runtime_env", None):
            runtime_env = {**job_config.runtime_env, **(runtime_env or {})}
        # A submitted job's runtime env (`rayc job submit`), set by the dashboard that runs
        # this driver: the job's default, as in Ray; what ray.init is given wins.
        submitted = _submitted_runtime_env()
        if submitted:
            runtime_env = {**submitted, **(runtime_env or {})}
        if job_config is not None and namespace is None:
            namespace = getattr(job_config, "ray_namespace", None)
        job_priority, job_weight = job_config._fair_share() if hasattr(job_config, "_fair_share") else (0, 1.0)
        env_vars, working_dir, module_paths, excludes = _job_runtime_env(runtime_env)
        # Zipped before connecting: a package too large fails ray.init before it starts anything.
        packages = [runtime_env_packages.package(working_dir, "working_dir", excludes)] if working_dir else []
        packages += [runtime_env_packages.package(p, "py_modules", excludes) for p in module_paths]

        if address is None:
            address = os.environ.get("RAY_ADDRESS") or os.environ.get("RAYC_ADDRESS")
        if address in (None, ""):
            # The cluster `rayc start` runs on this host (librayc finds it as ray.init does),
            # else a local one.
            address = "auto" if _raylet.find_cluster() else "local"
        elif address == "auto":
            if _raylet.find_cluster() is None:
                raise ConnectionError(
                    "Could not find any running Ray instance. Please specify the one to connect to by setting "
                    "`--address` flag or `RAY_ADDRESS` environment variable."
                )
        elif address.startswith("ray://"):
            raise ValueError("rayc does not support Ray Client (ray://) addresses: run the script on a cluster node.")
        if address != "local" and (num_cpus is not None or num_gpus is not None or resources or labels):
            what = "resources" if resources else "labels" if labels else "num_cpus and num_gpus"
            raise ValueError(f"When connecting to an existing cluster, {what} must not be provided.")
        sys_path = [p if p else os.getcwd() for p in sys.path]
        script_dir = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else None
        if script_dir and script_dir not in sys_path:
            sys_path.insert(0, script_dir)
        try:
            with _LocalWorkersPython():
                _raylet.init(
                    address=address,
                    namespace=namespace,
                    num_cpus=float(num_cpus) if num_cpus is not None else -1.0,
                    num_gpus=float(num_gpus) if num_gpus is not None else -1.0,
                    resources_json=json.dumps(resources) if resources else None,
                    sys_path=sys_path,
                    cwd=os.getcwd(),
                    runtime_env_json=json.dumps({"env_vars": env_vars}) if env_vars else None,
                    labels=",".join(f"{k}={v}" for k, v in labels.items()) if labels else None,
                    job_priority=job_priority,
                    job_weight=job_weight,
                )
        except _raylet.RaycError as e:
            raise ConnectionError(e.args[1]) from None
        _connected(SCRIPT_MODE, namespace)
        # The job's working_dir and py_modules, for its workers wherever they run.
        if packages:
            try:
                runtime_env_packages.record(_raylet.kv_put, _raylet.kv_get, global_worker.job_id.hex(), packages,
                                            has_working_dir=working_dir is not None)
            except Exception as e:
                shutdown()
                raise exceptions.RuntimeEnvSetupError(
                    f"cannot store the job's working_dir and py_modules in the GCS: {e}") from None
        # The job's workers look names up in the driver's namespace (Ray's rule).
        _raylet.kv_put(FUNCTION_KV_NAMESPACE, _JOB_NAMESPACE_KEY.format(global_worker.job_id.hex()),
                       (namespace or "").encode(), True)
        global_worker.log_to_driver = log_to_driver
        if log_to_driver:
            from ray._private import log_monitor

            log_monitor.start()
        atexit.register(shutdown)
        return RayContext(_context_info())


def _submitted_runtime_env():
    """The runtime_env of RAY_JOB_CONFIG_JSON_ENV_VAR ({"runtime_env": {...}}), or None."""
    text = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not text:
        return None
    try:
        env = json.loads(text).get("runtime_env")
    except (ValueError, AttributeError):
        raise ValueError(f"RAY_JOB_CONFIG_JSON_ENV_VAR is not a JSON object with a runtime_env: {text[:200]!r}") from None
    return env if isinstance(env, dict) else None


def _job_runtime_env(runtime_env):
    """(env_vars, working_dir, py_modules paths, excludes) of a job's runtime_env, as rayc
    honours it: env_vars reach every worker; working_dir (a local directory) and py_modules
    (local directories or files, or imported modules) are zipped into the GCS at init and
    unpacked for every worker of the job, on any node (runtime_env_packages); excludes
    leaves files out of them. Anything else raises ValueError."""
    if not runtime_env:
        return {}, None, [], []
    if not isinstance(runtime_env, dict):
        raise TypeError("runtime_env must be a dict")
    other = set(runtime_env) - {"env_vars", "working_dir", "py_modules", "excludes", "config"}
    if other:
        raise ValueError(
            f"rayc supports env_vars, working_dir and py_modules (local paths) in runtime_env, not {sorted(other)}: "
            "install what the job needs on every node, or pass it through env_vars."
        )
    env_vars = runtime_env.get("env_vars") or {}
    if not isinstance(env_vars, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()):
        raise TypeError("runtime_env['env_vars'] must be a dict of str to str")
    working_dir = runtime_env.get("working_dir")
    if working_dir is not None:
        if not isinstance(working_dir, str) or not os.path.isdir(working_dir):
            raise ValueError(f"runtime_env['working_dir'] must be a local directory; rayc does not fetch "
                             f"{working_dir!r} (remote URIs and zip files are not supported)")
        working_dir = os.path.abspath(working_dir)
    module_paths = []
    for m in runtime_env.get("py_modules") or []:
        # A package: its folder (or the imported package's); a module: its file.
        path = getattr(m, "__file__", None) if not isinstance(m, str) else m
        if path and os.path.basename(path) == "__init__.py":
            path = os.path.dirname(path)
        if not path or not os.path.exists(path):
            raise ValueError(f"runtime_env['py_modules'] entries must be local paths or imported modules, not {m!r}")
        module_paths.append(os.path.abspath(path))
    excludes = runtime_env.get("excludes") or []
    if not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes):
        raise TypeError("runtime_env['excludes'] must be a list of str")
    return env_vars, working_dir, module_paths, excludes


def _connected(mode, namespace):
    ctx = _raylet.runtime_context()
    global_worker.connected = True
    global_worker.mode = mode
    global_worker.namespace = namespace or ctx["namespace"] or None
    global_worker.job_id = ctx["job_id"]
    global_worker.node_ip = ctx["node_ip"] or None
    global_worker.exported = {}


_JOB_NAMESPACE_KEY = "JobNamespace:{}"


def connect_worker(session_dir=None):
    """Marks this process as a connected worker (default_worker, after the core joined):
    it works in its job's namespace, which the driver recorded at init, with its job's
    working_dir and py_modules (unpacked under session_dir, this node's session). A runtime
    env that cannot be set up is kept in global_worker.runtime_env_error."""
    _connected(WORKER_MODE, None)
    job_hex = global_worker.job_id.hex()
    ns = _raylet.kv_get(FUNCTION_KV_NAMESPACE, _JOB_NAMESPACE_KEY.format(job_hex))
    global_worker.namespace = ns.decode() if ns else None
    try:
        runtime_env_packages.install(_raylet.kv_get, job_hex, session_dir)
    except Exception as e:
        global_worker.runtime_env_error = f"{type(e).__name__}: {e}"


def shutdown(_exiting_interpreter=False):
    """Disconnects from the cluster (stopping a cluster that init() started)."""
    with global_worker.lock:
        if not global_worker.connected or global_worker.mode != SCRIPT_MODE:
            return
        from ray._private import log_monitor

        log_monitor.stop()
        global_worker.connected = False
        global_worker.mode = None
        global_worker.exported = {}
        _raylet.shutdown()


class RayContext(dict):
    """What ray.init returns: a dict of the connection, with Ray's attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutdown()

    def disconnect(self):
        shutdown()


def _context_info():
    ctx = _raylet.runtime_context()
    return {
        "node_id": ctx["node_id"].hex(),
        "job_id": ctx["job_id"].hex(),
        "namespace": global_worker.namespace,
        "gcs_address": os.environ.get("RAYC_ADDRESS"),
        "address_info": {},
        "dashboard_url": None,
    }


# ---- exporting functions and classes -----------------------------------------------------


def export(kind, obj, pickled_hash=None):
    """Puts obj (a function or class) into the GCS KV once per job; returns its key."""
    import hashlib

    import cloudpickle

    data = cloudpickle.dumps(obj)
    digest = hashlib.sha1(data).hexdigest()[:24]
    key = f"{kind}:{global_worker.job_id.hex()}:{digest}"
    if key not in global_worker.exported:
        _raylet.kv_put(FUNCTION_KV_NAMESPACE, key, data, False)
        global_worker.exported[key] = True
    return key


# ---- arguments -----------------------------------------------------------------------------


class RefArg:
    """Stands for the i-th object passed by reference in a task's argument list."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def __reduce__(self):
        return RefArg, (self.index,)


_NO_ARGS = b""


def pack_args(args, kwargs, meta=None):
    """The core's argument list for a call: [template, ref, ref, ...].

    Top-level ObjectRef arguments travel by reference (the core resolves them to their
    values before the task runs, as Ray does); everything else is pickled into the
    template, which is itself put in the object store when it is large.
    """
    if not args and not kwargs and meta is None:
        return [_NO_ARGS]
    refs = []

    def mark(v):
        if isinstance(v, ObjectRef):
            refs.append(v)
            return RefArg(len(refs) - 1)
        return v

    template = (tuple(mark(a) for a in args), {k: mark(v) for k, v in kwargs.items()}, meta)
    parts, size = serialization.serialize(template)
    if size > _INLINE_ARG_LIMIT:
        head = _raylet.put(parts)
    else:
        head = b"".join(parts)
    return [head] + refs


def unpack_args(buffers):
    """The (args, kwargs, meta) of a task from its resolved argument buffers."""
    if not buffers or len(buffers[0]) == 0:
        return (), {}, None
    _, (args, kwargs, meta) = serialization.deserialize(buffers[0])
    if len(buffers) == 1:
        return args, kwargs, meta
    values = []
    for b in buffers[1:]:
        kind, value = serialization.deserialize(b)
        if kind == serialization.KIND_ERROR:
            raise value  # an upstream task failed: this one fails with its error
        values.append(value)

    def fill(v):
        return values[v.index] if isinstance(v, RefArg) else v

    return tuple(fill(a) for a in args), {k: fill(v) for k, v in kwargs.items()}, meta


# ---- objects -------------------------------------------------------------------------------


def _error_from_code(code, message, ref):
    m = message or ""
    if code == _raylet.ERR_TIMEOUT:
        why = m.partition("timeout: ")[2] if "cannot be scheduled" in m else ""
        return exceptions.GetTimeoutError("Get timed out: some object(s) not ready." + (f" {why[:1].upper()}{why[1:]}" if why else ""))
    if code == _raylet.ERR_WORKER_DIED:
        return exceptions.WorkerCrashedError()
    if code == _raylet.ERR_NODE_DIED:
        return exceptions.NodeDiedError(m)
    if code == _raylet.ERR_UNSCHEDULABLE:
        return exceptions.TaskUnschedulableError(m)
    if code == _raylet.ERR_CANCELLED:
        return exceptions.TaskCancelledError(error_message=m or None)
    lost = {
        _raylet.ERR_OWNER_DIED: exceptions.OwnerDiedError,
        _raylet.ERR_OBJECT_UNRECONSTRUCTABLE: exceptions.ObjectReconstructionFailedError,
        _raylet.ERR_OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS: exceptions.ObjectReconstructionFailedMaxAttemptsExceededError,
        _raylet.ERR_OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED: exceptions.ObjectReconstructionFailedLineageEvictedError,
    }
    if code == _raylet.ERR_OBJECT_LOST or code in lost:
        if code in lost:
            cls = lost[code]
        else:
            cls = exceptions.ObjectFreedError if "freed" in m else exceptions.ObjectLostError
        err = cls(ref.hex(), None, None)
        err.rayc_reason = m  # the core's sentence: why it is gone
        return err
    if code == _raylet.ERR_ACTOR_DIED:
        # An actor call's object ID: 8 unique bytes, then the actor's 16-byte ID.
        if "ray.kill" in m:
            m = f"The actor is dead because it was killed by `ray.kill`. ({m})"
        return exceptions.ActorDiedError({"error_message": m, "actor_id": ref.binary()[8:24].hex()})
    if code == _raylet.ERR_PG_REMOVED:
        return exceptions.TaskPlacementGroupRemoved(m)
    return exceptions.RaySystemError(m)


def _value_of(ref, item):
    code, message, buf = item
    if code != 0:
        raise _error_from_code(code, message, ref)
    kind, value = serialization.deserialize(buf)
    if kind == serialization.KIND_ERROR:
        if isinstance(value, exceptions.RayTaskError):
            raise value.as_instanceof_cause()
        raise value
    return value


def get(object_refs, *, timeout=None):
    """Ray's ray.get: the values of one ObjectRef or a list of them."""
    _check_connected("ray.get")
    single = isinstance(object_refs, ObjectRef)
    if single:
        refs = [object_refs]
    elif isinstance(object_refs, list):
        refs = object_refs
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(
                    "Attempting to call `get` on the value {}, which is not an ray.ObjectRef.".format(r)
                )
    else:
        from ray._private.object_ref import ObjectRefGenerator

        if isinstance(object_refs, ObjectRefGenerator):
            raise TypeError("Attempting to call `get` on an ObjectRefGenerator: iterate over it instead.")
        raise ValueError(
            f"Invalid type of object refs, {type(object_refs)}, is given. "
            "'object_refs' must either be an ObjectRef or a list of ObjectRefs. "
        )
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative value.")
    timeout_ms = -1 if timeout is None else int(timeout * 1000)
    items = _raylet.get(refs, timeout_ms)
    values = [_value_of(r, it) for r, it in zip(refs, items)]
    return values[0] if single else values


def put(value, *, _owner=None):
    """Ray's ray.put: stores value in the object store, returns its ObjectRef."""
    _check_connected("ray.put")
    if isinstance(value, ObjectRef):
        raise TypeError("Calling 'put' on an ray.ObjectRef is not allowed. If you really want to do this, "
                        "you can wrap the ray.ObjectRef in a list and call 'put' on it.")
    if _owner is not None:
        raise ValueError("rayc does not support ray.put(_owner=...): the caller owns what it puts.")
    parts, _ = serialization.serialize(value)
    return _raylet.put(parts)


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """Ray's ray.wait: (ready, not ready), each in the order given."""
    _check_connected("ray.wait")
    if isinstance(object_refs, ObjectRef):
        raise TypeError(
            "wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, got a single ray.ObjectRef or "
            f"ray.ObjectRefGenerator {object_refs}"
        )
    if not isinstance(object_refs, list):
        raise TypeError(f"wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, got {type(object_refs)}")
    for r in object_refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(
                f"wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, got list containing {type(r)}"
            )
    if timeout is not None and timeout < 0:
        raise ValueError("The 'timeout' argument must be nonnegative. Received {}".format(timeout))
    if len(set(object_refs)) != len(object_refs):
        raise ValueError("Wait requires a list of unique ray_waitables.")
    if num_returns <= 0:
        raise ValueError("Invalid number of objects to return %d." % num_returns)
    if num_returns > len(object_refs):
        raise ValueError("num_returns cannot be greater than the number of ray_waitables provided to ray.wait.")
    if not object_refs:
        return [], []
    timeout_ms = -1 if timeout is None else int(timeout * 1000)
    mask = _raylet.wait(object_refs, num_returns, timeout_ms, bool(fetch_local))
    ready = [r for r, ok in zip(object_refs, mask) if ok][:num_returns]
    chosen = set(ready)
    return ready, [r for r in object_refs if r not in chosen]


def cancel(ref, *, force=False, recursive=True):
    """Ray's ray.cancel: a queued task never runs; a running one is interrupted
    (KeyboardInterrupt), or its worker killed with force; recursive: the tasks it submitted
    are cancelled too."""
    _check_connected("ray.cancel")
    from ray.actor import ActorHandle

    if not isinstance(ref, ObjectRef) or isinstance(ref, ActorHandle):
        raise TypeError("ray.cancel() only supported for object refs. For actors, try ray.kill(). Got: {}.".format(type(ref)))
    _raylet.cancel(ref, bool(force), bool(recursive))


# ---- cluster information -----------------------------------------------------------------


def nodes():
    """Ray's ray.nodes(): one dict per node the cluster has known."""
    _check_connected("ray.nodes")
    return json.loads(_raylet.nodes_json())


def _resources(available):
    raw = json.loads(_raylet.resources_json(available))
    return {k: v for k, v in raw.items() if not available or v > 0}


def cluster_resources():
    """Every resource summed over the alive nodes."""
    _check_connected("ray.cluster_resources")
    return _resources(False)


def available_resources():
    """What is free now (reported by the nodes every few hundred milliseconds)."""
    _check_connected("ray.available_resources")
    return _resources(True)


def get_gpu_ids():
    """The GPU IDs this worker may use (what CUDA_VISIBLE_DEVICES names)."""
    _check_connected("ray.get_gpu_ids")
    return list(_raylet.runtime_context()["gpu_ids"])


def get_node_ip_address():
    """This node's IP address as the cluster knows it."""
    if global_worker.connected:
        ip = global_worker.node_ip
        if ip:
            return ip
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("8.8.8.8", 80))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
