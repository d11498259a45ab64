"""Tests of ray.exceptions that need no running cluster."""

import os
import pickle
import re
import subprocess
import sys
import threading

import cloudpickle
import pytest

import ray.exceptions as rex
from ray.exceptions import (
    ActorAlreadyExistsError,
    ActorDiedError,
    ActorPlacementGroupRemoved,
    ActorUnavailableError,
    ActorUnschedulableError,
    GetTimeoutError,
    LocalRayletDiedError,
    ObjectFetchTimedOutError,
    ObjectLostError,
    ObjectReconstructionFailedError,
    OwnerDiedError,
    RayActorError,
    RayChannelTimeoutError,
    RayError,
    RaySystemError,
    RayTaskError,
    ReferenceCountingAssertionError,
    RuntimeEnvSetupError,
    TaskCancelledError,
    TaskPlacementGroupRemoved,
    TaskUnschedulableError,
)

PICKLERS = [pickle, cloudpickle]


class ModuleLevelError(Exception):
    """A user exception importable from this module."""


def plain(text):
    """Drops the colour codes of a task header."""
    return re.sub(r"\x1b\[\d+m", "", text)


def raise_and_wrap(exc, function_name="f", **kwargs):
    """Raises exc from a nested call and wraps it as the worker would."""

    def inner():
        raise exc

    try:
        inner()
    except Exception as e:
        return RayTaskError.from_exception(
            e, function_name, f"ray::{function_name}", 4242, "10.0.0.7", **kwargs
        )


def test_hierarchy():
    assert issubclass(GetTimeoutError, RayError)
    assert issubclass(GetTimeoutError, TimeoutError)
    assert issubclass(ActorDiedError, RayActorError)
    assert issubclass(ActorUnavailableError, RayActorError)
    assert issubclass(RayActorError, RayError)
    assert issubclass(OwnerDiedError, ObjectLostError)
    assert issubclass(ObjectFetchTimedOutError, ObjectLostError)
    assert issubclass(ReferenceCountingAssertionError, AssertionError)
    assert issubclass(ReferenceCountingAssertionError, ObjectLostError)
    assert issubclass(ActorAlreadyExistsError, ValueError)
    assert issubclass(RayChannelTimeoutError, TimeoutError)
    assert issubclass(RayChannelTimeoutError, RaySystemError)
    for cls in rex.RAY_EXCEPTION_TYPES:
        assert issubclass(cls, RayError), cls


def test_task_error_str_shows_remote_traceback():
    err = raise_and_wrap(ValueError("bad value"))
    text = plain(str(err))
    lines = text.split("\n")
    assert lines[0] == "ray::f() (pid=4242, ip=10.0.0.7)"
    assert "in inner" in text
    assert lines[-1] == "ValueError: bad value"
    assert "Traceback (most recent call last)" not in text
    assert isinstance(err.cause, ValueError)
    assert (err.function_name, err.pid, err.ip) == ("f", 4242, "10.0.0.7")


def test_task_error_header_for_actor_method():
    err = raise_and_wrap(
        KeyError("k"), "A.m", actor_repr="<A object>", actor_id="ab" * 16
    )
    first = plain(str(err)).split("\n")[0]
    assert first == (
        f"ray::A.m() (pid=4242, ip=10.0.0.7, actor_id={'ab' * 16}, repr=<A object>)"
    )
    assert err.actor_id == "ab" * 16


def test_task_error_defaults():
    err = RayTaskError("g", "Traceback (most recent call last):\nValueError: x", None)
    assert err.proctitle == "ray::g"
    assert err.pid == os.getpid()
    assert err.ip


def test_internal_frames_are_stripped(monkeypatch):
    monkeypatch.setattr(rex, "_INTERNAL_DIR", "/opt/rayc/ray/_private/")
    worker_src = "def execute(fn):\n    return fn()\n"
    namespace = {}
    exec(compile(worker_src, "/opt/rayc/ray/_private/worker.py", "exec"), namespace)

    def user_fn():
        raise RuntimeError("from user")

    try:
        namespace["execute"](user_fn)
    except RuntimeError as e:
        err = RayTaskError.from_exception(e, "user_fn", "ray::user_fn", 1, "ip")
    assert "_private" not in err.traceback_str
    assert "in user_fn" in err.traceback_str
    assert str(err).endswith("RuntimeError: from user")


def test_nested_task_error_keeps_original_cause():
    inner = raise_and_wrap(ValueError("deep")).as_instanceof_cause()
    outer = raise_and_wrap(inner, "outer")
    assert type(outer.cause) is ValueError
    text = plain(str(outer))
    assert text.startswith("ray::outer()")
    assert "ray::f()" in text


def test_as_instanceof_cause():
    cause = ModuleLevelError("custom")
    cause.detail = 17
    err = raise_and_wrap(cause)
    dual = err.as_instanceof_cause()
    assert isinstance(dual, RayTaskError)
    assert isinstance(dual, ModuleLevelError)
    assert type(dual).__name__ == "RayTaskError(ModuleLevelError)"
    assert dual.cause is err.cause
    assert dual.detail == 17
    assert str(dual) == str(err)
    assert plain(str(dual)).startswith("ray::f() (pid=4242, ip=10.0.0.7)")
    with pytest.raises(ModuleLevelError):
        raise dual


def test_as_instanceof_cause_of_ray_error_is_self():
    err = raise_and_wrap(RayError("internal"))
    assert err.as_instanceof_cause() is err


def test_as_instanceof_cause_falls_back_when_class_cannot_be_subclassed(monkeypatch):
    class Sealed(Exception):
        def __init_subclass__(cls, **kwargs):
            raise TypeError("Sealed cannot be subclassed")

    warnings = []
    monkeypatch.setattr(rex.logger, "warning", warnings.append)
    err = raise_and_wrap(Sealed("no subclass"))
    assert err.as_instanceof_cause() is err
    assert len(warnings) == 1 and "can't be subclassed" in warnings[0]


def test_as_instanceof_cause_with_exception_group():
    group = ExceptionGroup("several", [ValueError(1), KeyError(2)])
    dual = raise_and_wrap(group).as_instanceof_cause()
    assert isinstance(dual, ExceptionGroup)
    assert isinstance(dual, RayTaskError)
    assert dual.message == "several"
    assert len(dual.exceptions) == 2
    copy = cloudpickle.loads(cloudpickle.dumps(dual))
    assert isinstance(copy, ExceptionGroup) and len(copy.exceptions) == 2


def test_unserializable_cause_is_replaced():
    cause = ValueError("holds a lock")
    cause.lock = threading.Lock()
    err = raise_and_wrap(cause)
    assert type(err.cause) is RayError
    assert "isn't serializable" in str(err.cause)
    pickle.loads(pickle.dumps(err))


@pytest.mark.parametrize("pickler", PICKLERS)
def test_task_error_round_trip_module_level_class(pickler):
    err = raise_and_wrap(ModuleLevelError("m"), "A.m", actor_repr="<A>", actor_id="cd")
    for original in (err, err.as_instanceof_cause()):
        copy = pickler.loads(pickler.dumps(original))
        assert type(copy).__name__ == type(original).__name__
        assert str(copy) == str(original)
        assert isinstance(copy.cause, ModuleLevelError)
        assert (copy.actor_repr, copy.actor_id) == ("<A>", "cd")
    copy = pickler.loads(pickler.dumps(err.as_instanceof_cause()))
    assert isinstance(copy, ModuleLevelError) and isinstance(copy, RayTaskError)


def test_task_error_round_trip_function_local_class():
    class LocalError(Exception):
        pass

    dual = raise_and_wrap(LocalError("local")).as_instanceof_cause()
    copy = cloudpickle.loads(cloudpickle.dumps(dual))
    assert isinstance(copy, RayTaskError)
    assert type(copy.cause).__name__ == "LocalError"
    assert type(copy).__name__ == "RayTaskError(LocalError)"
    assert isinstance(copy, type(copy.cause))
    assert str(copy) == str(dual)


MAIN_SCRIPT = """
import sys, cloudpickle
from ray.exceptions import RayTaskError

class MainError(Exception):
    pass

try:
    raise MainError("from __main__")
except MainError as e:
    err = RayTaskError.from_exception(e, "f", "ray::f", 1, "1.1.1.1")
sys.stdout.write(cloudpickle.dumps([err, err.as_instanceof_cause()]).hex())
"""

LOAD_SCRIPT = """
import sys, cloudpickle
from ray.exceptions import RayTaskError
err, dual = cloudpickle.loads(bytes.fromhex(sys.stdin.read()))
assert isinstance(err, RayTaskError) and type(err.cause).__name__ == "MainError"
assert isinstance(dual, RayTaskError) and isinstance(dual, type(dual.cause))
assert str(dual).endswith("MainError: from __main__"), str(dual)
print("ok")
"""


def test_main_module_exception_crosses_processes():
    dumped = subprocess.run(
        [sys.executable, "-c", MAIN_SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT],
        input=dumped, capture_output=True, text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "ok"


def sample_errors():
    actor_hex = "01" * 16
    task_error = raise_and_wrap(ValueError("init failed"), "A.__init__", actor_id=actor_hex,
                                actor_repr="<A>")
    return [
        RayError("generic"),
        rex.CrossLanguageError("CPP", "std::runtime_error: x"),
        TaskCancelledError("ab12", "cancelled by user"),
        task_error,
        RayActorError("ff" * 16),
        ActorDiedError(),
        ActorDiedError(task_error),
        ActorDiedError({"class_name": "A", "actor_id": bytes.fromhex(actor_hex), "pid": 9,
                        "error_message": "The actor was killed.", "preempted": True}),
        ActorUnavailableError("connection reset", bytes.fromhex(actor_hex)),
        LocalRayletDiedError(),
        rex.WorkerCrashedError(),
        RaySystemError("raylet gone", "trace"),
        rex.ObjectStoreFullError("object abc"),
        rex.OutOfDiskError("object abc"),
        rex.OutOfMemoryError("node ran out of memory"),
        rex.NodeDiedError("node died"),
        ObjectLostError("aa" * 28, None, "a.py:1 | b.py:2"),
        ObjectFetchTimedOutError("aa" * 28, None, ""),
        ReferenceCountingAssertionError("aa" * 28, None, ""),
        rex.ObjectFreedError("aa" * 28, None, ""),
        OwnerDiedError("aa" * 28, {"ip_address": "10.0.0.1", "worker_id": b"\x02" * 28}, ""),
        ObjectReconstructionFailedError("aa" * 28, None, ""),
        rex.ObjectReconstructionFailedMaxAttemptsExceededError("aa" * 28, None, ""),
        rex.ObjectReconstructionFailedLineageEvictedError("aa" * 28, None, ""),
        GetTimeoutError("Get timed out: some object(s) not ready."),
        rex.PlasmaObjectNotAvailable(),
        rex.AsyncioActorExit(),
        RuntimeEnvSetupError("pip failed"),
        TaskPlacementGroupRemoved(),
        ActorPlacementGroupRemoved(),
        rex.PendingCallsLimitExceeded("too many calls"),
        TaskUnschedulableError("node is dead"),
        ActorUnschedulableError("node is dead"),
        rex.ObjectRefStreamEndOfStreamError(),
        rex.RpcError("unavailable", rpc_code=14),
        rex.UnserializableException("Traceback ...\nBadError: x"),
        ActorAlreadyExistsError("Actor with name 'a' already exists in the namespace n"),
        rex.AuthenticationError("Token is missing"),
        rex.UserCodeException("user"),
        rex.OufOfBandObjectRefSerializationException("out of band"),
    ]


@pytest.mark.parametrize("pickler", PICKLERS)
def test_every_error_round_trips(pickler):
    for error in sample_errors():
        copy = pickler.loads(pickler.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy).keys() == vars(error).keys()


def test_actor_errors():
    assert str(RayActorError()) == RayActorError.BASE_ERROR_MSG
    assert str(ActorDiedError()) == (
        "The actor died unexpectedly before finishing this task."
    )
    died = ActorDiedError({
        "class_name": "Counter",
        "actor_id": b"\x01" * 16,
        "pid": 77,
        "name": "counter",
        "ray_namespace": "ns",
        "node_ip_address": "10.0.0.2",
        "error_message": "The actor was killed by `ray.kill`.",
        "never_started": False,
        "preempted": True,
    })
    assert str(died) == "\n".join([
        "The actor died unexpectedly before finishing this task.",
        "\tclass_name: Counter",
        f"\tactor_id: {'01' * 16}",
        "\tpid: 77",
        "\tname: counter",
        "\tnamespace: ns",
        "\tip: 10.0.0.2",
        "The actor was killed by `ray.kill`.",
    ])
    assert died.actor_id == "01" * 16
    assert died.preempted and not died.actor_init_failed

    task_error = raise_and_wrap(ValueError(3), "A.__init__", actor_id="ab" * 16,
                                actor_repr="<A>")
    init_failed = ActorDiedError.from_task_error(task_error)
    assert init_failed.actor_init_failed
    assert init_failed.actor_id == "ab" * 16
    assert str(init_failed).startswith(
        "The actor died because of an error raised in its creation task, "
    )
    assert plain(str(init_failed)).endswith("ValueError: 3")

    unavailable = ActorUnavailableError("the worker is restarting", b"\x0a" * 16)
    assert unavailable.actor_id == "0a" * 16
    assert str(unavailable) == (
        f"The actor {'0a' * 16} is unavailable: the worker is restarting. The task "
        "may or may not have been executed on the actor."
    )


def test_texts_match_ray():
    assert str(TaskUnschedulableError("x")) == "The task is not schedulable: x"
    assert str(ActorUnschedulableError("x")) == "The actor is not schedulable: x"
    assert str(TaskPlacementGroupRemoved()) == (
        "The placement group corresponding to this task has been removed."
    )
    assert str(ActorPlacementGroupRemoved()) == (
        "The placement group corresponding to this Actor has been removed."
    )
    assert str(LocalRayletDiedError()) == (
        "The task's local raylet died. Check raylet.out for more information."
    )
    assert str(RuntimeEnvSetupError()) == "Failed to set up runtime environment."
    assert str(RuntimeEnvSetupError("pip failed")) == (
        "Failed to set up runtime environment.\npip failed"
    )
    assert str(RaySystemError("boom")) == "System error: boom"
    assert str(RaySystemError("boom", "tb")) == "System error: boom\ntraceback: tb"
    assert str(TaskCancelledError("t1")) == "Task: t1 was cancelled. "
    assert str(TaskCancelledError()) == ""
    assert str(rex.WorkerCrashedError()).startswith(
        "The worker died unexpectedly while executing this task."
    )

    lost = ObjectLostError("aa" * 28, None, "a.py:1 | b.py:2")
    assert lost.call_site == "a.py:1\n  b.py:2"
    assert str(lost).startswith(
        f"Failed to retrieve object {'aa' * 28}. The ObjectRef was created at: a.py:1"
    )
    assert f"All copies of {'aa' * 28} have been lost due to node failure." in str(lost)
    assert str(ObjectReconstructionFailedError("bb", None, "x")).endswith(
        "The object cannot be reconstructed because it was created by an actor, "
        "ray.put() call, or its ObjectRef was created by a different worker."
    )
    owner = OwnerDiedError("cc", {"ip_address": "10.0.0.1", "worker_id": b"\x02" * 28}, "")
    assert "The object's owner has exited." in str(owner)
    assert f"*{'02' * 28}*` at IP address 10.0.0.1" in str(owner)
