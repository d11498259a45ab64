"""rayc's implementation of Ray's Python API: `import ray` runs Ray scripts on rayc.

Runs under Debian's Python 3 (/usr/bin/python3) with cloudpickle; see README.md.
"""

import inspect as _inspect

from ray import exceptions  # noqa: F401
from ray._private.object_ref import ObjectRef, ObjectRefGenerator  # noqa: F401
from ray._private.worker import (  # noqa: F401
    LOCAL_MODE,
    SCRIPT_MODE,
    WORKER_MODE,
    available_resources,
    cancel,
    cluster_resources,
    get,
    get_gpu_ids,
    init,
    is_initialized,
    nodes,
    put,
    shutdown,
    wait,
)
from ray import actor  # noqa: F401
from ray.actor import get_actor, kill, method  # noqa: F401
from ray.remote_function import RemoteFunction  # noqa: F401
from ray.runtime_context import get_runtime_context  # noqa: F401
from ray import util  # noqa: F401
from ray import job_config  # noqa: F401

__version__ = "2.53.0"
__all__ = [
    "ObjectRef", "ObjectRefGenerator", "available_resources", "cancel", "cluster_resources", "exceptions",
    "get", "get_actor", "get_gpu_ids", "get_runtime_context", "init", "is_initialized", "kill", "method",
    "nodes", "put", "remote", "shutdown", "util", "wait",
]


def _make(target, options):
    if _inspect.isclass(target):
        from ray.actor import ActorClass

        return ActorClass(target, options)
    if callable(target):
        return RemoteFunction(target, options)
    raise TypeError("The @ray.remote decorator must be applied to either a function or a class.")


def remote(*args, **kwargs):
    """Makes a function a remote function, or a class an actor class (Ray's @ray.remote).

    Used bare (`@ray.remote`) or with options (`@ray.remote(num_cpus=2, num_gpus=0.5)`).
    """
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make(args[0], {})
    if args:
        raise TypeError(
            "The @ray.remote decorator must be applied either with no arguments and no parentheses, for example "
            "'@ray.remote', or it must be applied using some of the arguments in the list ['num_cpus', 'num_gpus', "
            "'resources', ...], for example '@ray.remote(num_returns=2, resources={\"CustomResource\": 1})'."
        )

    def decorator(target):
        return _make(target, kwargs)

    return decorator
