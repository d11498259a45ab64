"""Exceptions raised by the rayc runtime, named and shaped as in Ray 2.53.

The worker wraps an exception raised by user code with

    RayTaskError.from_exception(exc, function_name, proctitle, pid, ip,
                                actor_repr=None, actor_id=None) -> RayTaskError

which records the user's traceback without the frames of rayc's own machinery
(files inside the package's ``_private`` folder). ``ray.get`` then raises
``error.as_instanceof_cause()`` so callers can catch the user's own class.

Every exception here survives ``pickle`` and ``cloudpickle``.
"""

import logging
import os
import socket
import traceback
from collections.abc import Mapping
from typing import Optional

import cloudpickle

logger = logging.getLogger(__name__)

# Ray colours the task header of a remote traceback the same way.
_CYAN = "\x1b[36m"
_RESET = "\x1b[39m"

# Where rayc writes the logs of the current session.
_LOG_DIR = "/tmp/rayc/session_latest/logs"

# Call sites of ObjectRefs arrive with their frames joined by this marker.
_CALL_STACK_LINE_DELIMITER = " | "

# Frames from files below this folder belong to rayc's worker machinery.
_INTERNAL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_private") + os.sep


def _node_ip() -> str:
    """Returns the address this host uses to reach other hosts."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("8.8.8.8", 80))  # UDP: no packet is sent
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def _field(info, name, default=None):
    """Reads `name` from a mapping or from an object's attributes."""
    if isinstance(info, Mapping):
        return info.get(name, default)
    return getattr(info, name, default)


def _hex(identifier):
    """Returns an ID as a hex string, whether given as bytes, str or an ID object."""
    if identifier is None or isinstance(identifier, str):
        return identifier
    if isinstance(identifier, (bytes, bytearray)):
        return bytes(identifier).hex()
    return identifier.hex()


class RayError(Exception):
    """Base class of every Ray exception."""


class CrossLanguageError(RayError):
    """Raised by code written in another language.

    rayc jobs written in C report their failures with this error; the argument is
    the foreign exception's language and formatted text.
    """

    def __init__(self, language: str, formatted_exception: str):
        self.language = language
        self.formatted_exception = formatted_exception

    def __str__(self):
        return f"An exception raised from {self.language}:\n{self.formatted_exception}"


class TaskCancelledError(RayError):
    """Raised when getting the result of a task that was cancelled."""

    def __init__(self, task_id=None, error_message: Optional[str] = None):
        self.task_id = task_id
        self.error_message = error_message

    def __str__(self):
        msg = f"Task: {self.task_id} was cancelled. " if self.task_id else ""
        return msg + (self.error_message or "")


def _strip_internal_frames(te: traceback.TracebackException, seen: set) -> None:
    """Drops rayc's own frames from a traceback and from its chained exceptions."""
    if id(te) in seen:
        return
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if not f.filename.startswith(_INTERNAL_DIR)]
    )
    for linked in (te.__cause__, te.__context__, *(getattr(te, "exceptions", None) or ())):
        if linked is not None:
            _strip_internal_frames(linked, seen)


class RayTaskError(RayError):
    """A task or actor method raised an exception while running.

    The error is stored as the task's result; getting it raises the error again
    in the caller, showing where the remote code failed.

    Attributes:
        function_name: Name of the remote function or method.
        traceback_str: The remote traceback, formatted.
        cause: The exception raised by the user's code.
        proctitle: Title of the worker process, e.g. ``ray::f``.
        pid: Process ID of that worker.
        ip: IP address of the worker's node.
        actor_repr: repr() of the actor, for actor methods.
        actor_id: Hex ID of the actor, for actor methods.
    """

    def __init__(
        self,
        function_name,
        traceback_str,
        cause,
        proctitle=None,
        pid=None,
        ip=None,
        actor_repr=None,
        actor_id=None,
    ):
        if traceback_str is None:
            raise ValueError("RayTaskError needs the remote traceback text, got None.")
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.proctitle = proctitle or f"ray::{function_name}"
        self.pid = pid or os.getpid()
        self.ip = ip or _node_ip()
        self.actor_repr = actor_repr
        self._actor_id = actor_id
        self.cause = cause
        try:
            cloudpickle.dumps(cause)
        except Exception as e:
            msg = (
                f"The original cause of the RayTaskError ({type(cause)}) isn't "
                f"serializable: {e}. Overwriting the cause to a RayError."
            )
            logger.warning(msg)
            self.cause = RayError(msg)
        self.args = (function_name, traceback_str, self.cause, proctitle, pid, ip)

    @classmethod
    def from_exception(
        cls, exc, function_name, proctitle, pid, ip, actor_repr=None, actor_id=None
    ) -> "RayTaskError":
        """Wraps an exception raised by user code in a remote function or method.

        The traceback is taken from `exc` itself, so call this while handling it.
        When `exc` is already a RayTaskError (the task called ray.get on a failed
        task), its cause is kept instead of nesting wrappers; the traceback text
        still shows both failures.
        """
        te = traceback.TracebackException.from_exception(exc)
        _strip_internal_frames(te, set())
        cause = exc.cause if isinstance(exc, RayTaskError) else exc
        return cls(
            function_name, "".join(te.format()), cause, proctitle, pid, ip,
            actor_repr, actor_id,
        )

    @property
    def actor_id(self):
        return self._actor_id

    def _init_args(self):
        return (
            self.function_name, self.traceback_str, self.cause, self.proctitle,
            self.pid, self.ip, self.actor_repr, self._actor_id,
        )

    def __reduce__(self):
        return type(self), self._init_args()

    def as_instanceof_cause(self):
        """Returns this error as an instance of both RayTaskError and the cause's class.

        The result carries the cause's attributes as well as this error's. When the
        cause's class cannot be subclassed, logs a warning and returns self; the
        user's exception is then at `.cause`.
        """
        cause_cls = type(self.cause)
        if issubclass(RayTaskError, cause_cls):
            return self
        try:
            return _dual_class(cause_cls)(*self._init_args())
        except TypeError as e:
            logger.warning(
                f"User exception type {cause_cls} in RayTaskError can't be "
                "subclassed! This exception is raised as RayTaskError only. You can "
                "use `ray_task_error.cause` to access the user exception. Failure in "
                f"subclassing: {e}"
            )
            return self

    def _header(self):
        line = f"{_CYAN}{self.proctitle}(){_RESET} (pid={self.pid}, ip={self.ip}"
        if self.actor_repr:
            return line + f", actor_id={self._actor_id}, repr={self.actor_repr})"
        return line + ")"

    def __str__(self):
        """The remote traceback, each 'Traceback' line replaced by the task header."""
        header = self._header()
        lines = [
            header if line.startswith("Traceback ") else line
            for line in self.traceback_str.strip().split("\n")
        ]
        if header not in lines:  # a traceback without frames still names the task
            lines.insert(0, header)
        return "\n".join(lines)


def _rebuild_as_cause(task_error: RayTaskError):
    return task_error.as_instanceof_cause()


def _dual_class(cause_cls):
    """Builds the class `RayTaskError(<cause class>)` deriving from both."""

    def __reduce__(self):
        # The class is made at run time and cannot be found by name when loading:
        # store the plain error and convert it again.
        return _rebuild_as_cause, (RayTaskError(*self._init_args()),)

    def __getattr__(self, name):
        # Attributes not found on the error come from the user's exception.
        cause = self.__dict__.get("cause")
        if cause is None:
            raise AttributeError(name)
        return getattr(cause, name)

    namespace = {"__reduce__": __reduce__, "__getattr__": __getattr__}
    if issubclass(cause_cls, BaseExceptionGroup):
        # Exception groups must be created with their message and members.
        def __new__(cls, function_name, traceback_str, cause, *rest):
            return BaseExceptionGroup.__new__(cls, cause.message, cause.exceptions)

        namespace["__new__"] = __new__
    name = f"RayTaskError({cause_cls.__name__})"
    cls = type(name, (RayTaskError, cause_cls), namespace)
    cls.__qualname__ = name
    return cls


class LocalRayletDiedError(RayError):
    """The raylet of the task's node died."""

    def __str__(self):
        return "The task's local raylet died. Check raylet.out for more information."


class WorkerCrashedError(RayError):
    """The worker process died while running the task."""

    def __str__(self):
        return (
            "The worker died unexpectedly while executing this task. "
            f"Check the worker logs in {_LOG_DIR} for more information."
        )


class RayActorError(RayError):
    """The actor failed before it could finish this task.

    Raised as ActorDiedError when the actor is dead and as ActorUnavailableError
    when it cannot be reached for now.
    """

    BASE_ERROR_MSG = "The actor experienced an error before finishing this task."

    def __init__(
        self,
        actor_id: Optional[str] = None,
        error_msg: str = BASE_ERROR_MSG,
        actor_init_failed: bool = False,
        preempted: bool = False,
    ):
        self.actor_id = actor_id
        self.error_msg = error_msg
        self._actor_init_failed = actor_init_failed
        self._preempted = preempted

    def __str__(self) -> str:
        return self.error_msg

    def __reduce__(self):
        state = (self.actor_id, self.error_msg, self._actor_init_failed, self._preempted)
        return _rebuild_actor_error, (type(self), state)

    @property
    def preempted(self) -> bool:
        """Whether the actor died because its node was preempted."""
        return self._preempted

    @property
    def actor_init_failed(self) -> bool:
        """Whether the actor died while running its __init__."""
        return self._actor_init_failed


def _rebuild_actor_error(cls, state):
    error = cls.__new__(cls)
    RayActorError.__init__(error, *state)
    return error


class ActorDiedError(RayActorError):
    """The actor died before finishing the task, or the task went to a dead actor.

    Args:
        cause: A RayTaskError when the actor's __init__ raised; otherwise what is
            known about the death, as a mapping or object with the fields of Ray's
            ActorDiedErrorContext (class_name, actor_id, pid, name, ray_namespace,
            node_ip_address, error_message, never_started, preempted); or None.
    """

    BASE_ERROR_MSG = "The actor died unexpectedly before finishing this task."

    def __init__(self, cause=None):
        actor_id = None
        error_msg = ActorDiedError.BASE_ERROR_MSG
        actor_init_failed = False
        preempted = False
        if isinstance(cause, RayTaskError):
            actor_init_failed = True
            actor_id = cause.actor_id
            error_msg = (
                "The actor died because of an error raised in its creation task, "
                f"{cause}"
            )
        elif cause is not None:
            actor_id = _hex(_field(cause, "actor_id"))
            lines = [ActorDiedError.BASE_ERROR_MSG]
            lines.append(f"\tclass_name: {_field(cause, 'class_name', '')}")
            lines.append(f"\tactor_id: {actor_id}")
            for label, key in (
                ("pid", "pid"),
                ("name", "name"),
                ("namespace", "ray_namespace"),
                ("ip", "node_ip_address"),
            ):
                value = _field(cause, key)
                if value:
                    lines.append(f"\t{label}: {value}")
            lines.append(_field(cause, "error_message", ""))
            if _field(cause, "never_started", False):
                lines.append(
                    "The actor never ran - it was cancelled before it started running."
                )
            preempted = bool(_field(cause, "preempted", False))
            error_msg = "\n".join(lines)
        super().__init__(actor_id, error_msg, actor_init_failed, preempted)

    @staticmethod
    def from_task_error(task_error: RayTaskError) -> "ActorDiedError":
        return ActorDiedError(task_error)


class ActorUnavailableError(RayActorError):
    """The actor cannot be reached for now but may come back later."""

    def __init__(self, error_message: str, actor_id=None):
        actor_id = _hex(actor_id)
        super().__init__(
            actor_id,
            f"The actor {actor_id} is unavailable: {error_message}. The task may or "
            "may not have been executed on the actor.",
        )


class RaySystemError(RayError):
    """rayc itself failed, e.g. because the raylet was killed."""

    def __init__(self, client_exc, traceback_str=None):
        self.client_exc = client_exc
        self.traceback_str = traceback_str

    def __str__(self):
        msg = f"System error: {self.client_exc}"
        if self.traceback_str:
            msg += f"\ntraceback: {self.traceback_str}"
        return msg


class AuthenticationError(RayError):
    """The cluster refused the caller's token."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.__suppress_context__ = True

    def __str__(self) -> str:
        return (
            f"{self.message}. Ensure that the cluster's token is available in "
            "RAYC_AUTH_TOKEN, in the file named by RAYC_AUTH_TOKEN_PATH or in the "
            "session directory; `rayc get-auth-token` on a cluster node prints it."
        )


class UserCodeException(RayError):
    """Wraps an exception raised by user code; retries still look at its cause."""


class ObjectStoreFullError(RayError):
    """The object could not be stored: the object store stayed full after retries."""

    def __str__(self):
        return super().__str__() + (
            "\nThe local object store is full of objects that are still in scope "
            "and cannot be evicted. Tip: `rayc status` shows object store usage; "
            "release ObjectRefs you no longer need."
        )


class OutOfDiskError(RayError):
    """The object could not be stored: the object store and the disk are full."""

    def __str__(self):
        return super().__str__() + (
            "\nThe object cannot be created because the local object store is full "
            "and the local disk's utilization is over capacity (95% by default). "
            "Tip: Use `df` on this node to check disk usage."
        )


class OutOfMemoryError(RayError):
    """The node ran low on memory and killed tasks or actors to recover."""

    def __init__(self, message):
        self.message = message

    def __str__(self):
        return self.message


class NodeDiedError(RayError):
    """The node is dead or cannot be reached."""

    def __init__(self, message):
        self.message = message

    def __str__(self):
        return self.message


class ObjectLostError(RayError):
    """Every copy of the object was lost, e.g. to a node failure.

    Attributes:
        object_ref_hex: Hex ID of the object.
        owner_address: Address of the object's owner, if known.
        call_site: Where the ObjectRef was created, if recorded.
    """

    def __init__(self, object_ref_hex, owner_address, call_site):
        self.object_ref_hex = object_ref_hex
        self.owner_address = owner_address
        self.call_site = (call_site or "").replace(_CALL_STACK_LINE_DELIMITER, "\n  ")

    rayc_reason = None  # rayc's sentence on why the object is gone, when it gave one

    def _base_str(self):
        msg = f"Failed to retrieve object {self.object_ref_hex}. "
        if self.rayc_reason:
            msg += f"({self.rayc_reason}) "
        if self.call_site:
            return msg + f"The ObjectRef was created at: {self.call_site}"
        return msg + "rayc did not record where this ObjectRef was created."

    def __str__(self):
        return self._base_str() + (
            f"\n\nAll copies of {self.object_ref_hex} have been lost due to node "
            f"failure. Check cluster logs (`{_LOG_DIR}`) for more information "
            "about the failure."
        )


class ObjectFetchTimedOutError(ObjectLostError):
    """No location of the object could be found in time."""

    def __str__(self):
        return self._base_str() + (
            f"\n\nFetch for object {self.object_ref_hex} timed out because no "
            "locations were found for the object. This may indicate a "
            "system-level bug."
        )


class RpcError(RayError):
    """A remote procedure call between rayc processes failed."""

    def __init__(self, message, rpc_code=None):
        self.message = message
        self.rpc_code = rpc_code

    def __str__(self):
        return self.message


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    """The object was deleted while something still referred to it."""

    def __str__(self):
        return self._base_str() + (
            "\n\nThe object has already been deleted by the reference counting "
            "protocol. This should not happen."
        )


class ObjectFreedError(ObjectLostError):
    """The application freed the object explicitly."""

    def __str__(self):
        return self._base_str() + (
            "\n\nThe object was manually freed using the internal `free` call. "
            "Please ensure that `free` is only called once the object is no "
            "longer needed."
        )


class OwnerDiedError(ObjectLostError):
    """The worker that owned the object exited while the object was still referenced.

    `owner_address`, when given, is a mapping or object with `ip_address` and
    `worker_id`; the message then points at that worker's logs.
    """

    def __str__(self):
        log_loc = f"`{_LOG_DIR}`"
        ip = _field(self.owner_address, "ip_address") if self.owner_address else None
        worker = _field(self.owner_address, "worker_id") if self.owner_address else None
        if ip and worker:
            log_loc = f"`{_LOG_DIR}/*{_hex(worker)}*` at IP address {ip}"
        return self._base_str() + (
            "\n\nThe object's owner has exited. This is the Python worker that "
            "first created the ObjectRef via `.remote()` or `ray.put()`. Check "
            f"cluster logs ({log_loc}) for more information about the Python "
            "worker failure."
        )


class ObjectReconstructionFailedError(ObjectLostError):
    """The lost object cannot be recreated by rerunning its task."""

    def __str__(self):
        return self._base_str() + (
            "\n\nThe object cannot be reconstructed because it was created by an "
            "actor, ray.put() call, or its ObjectRef was created by a different "
            "worker."
        )


class ObjectReconstructionFailedMaxAttemptsExceededError(ObjectLostError):
    """The lost object's task already used up its retries."""

    def __str__(self):
        return self._base_str() + (
            "\n\nThe object cannot be reconstructed because the maximum number of "
            "task retries has been exceeded. To prevent this error, set "
            "`@ray.remote(max_retries=<num retries>)` (default 3)."
        )


class ObjectReconstructionFailedLineageEvictedError(ObjectLostError):
    """The lost object's lineage was evicted to save memory."""

    def __str__(self):
        return self._base_str() + (
            "\n\nThe object cannot be reconstructed because its lineage has been "
            "evicted to reduce memory pressure."
        )


class GetTimeoutError(RayError, TimeoutError):
    """ray.get or ray.wait ran past its timeout."""


class PlasmaObjectNotAvailable(RayError):
    """The object was not available within the timeout."""


class AsyncioActorExit(RayError):
    """An asyncio actor asked to exit with exit_actor()."""


class RuntimeEnvSetupError(RayError):
    """The runtime environment of a task or actor could not be set up."""

    def __init__(self, error_message: Optional[str] = None):
        self.error_message = error_message

    def __str__(self):
        msgs = ["Failed to set up runtime environment."]
        if self.error_message:
            msgs.append(self.error_message)
        return "\n".join(msgs)


class TaskPlacementGroupRemoved(RayError):
    """The task's placement group was removed."""

    def __str__(self):
        return "The placement group corresponding to this task has been removed."


class ActorPlacementGroupRemoved(RayError):
    """The actor's placement group was removed."""

    def __str__(self):
        return "The placement group corresponding to this Actor has been removed."


class PendingCallsLimitExceeded(RayError):
    """The caller has more calls pending on the actor than its max_pending_calls."""


class TaskUnschedulableError(RayError):
    """The task can never be scheduled, e.g. its NodeAffinitySchedulingStrategy
    names a dead node."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __str__(self):
        return f"The task is not schedulable: {self.error_message}"


class ActorUnschedulableError(RayError):
    """The actor can never be scheduled, e.g. its NodeAffinitySchedulingStrategy
    names a dead node."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __str__(self):
        return f"The actor is not schedulable: {self.error_message}"


class ObjectRefStreamEndOfStreamError(RayError):
    """A streaming generator has no more ObjectRefs to return."""


class OufOfBandObjectRefSerializationException(RayError):
    """An ObjectRef was pickled with cloudpickle outside of rayc's serializer."""


class RayChannelError(RaySystemError):
    """A Compiled Graph channel failed (rayc has no Compiled Graphs)."""


class RayChannelTimeoutError(RayChannelError, TimeoutError):
    """A Compiled Graph channel operation timed out."""


class RayCgraphCapacityExceeded(RaySystemError):
    """A Compiled Graph channel's buffer is full."""


class UnserializableException(RayError):
    """A remote exception could not be unpickled; its text is shown instead."""

    def __init__(self, original_stack_trace: str):
        self._original_stack_trace = original_stack_trace

    def __str__(self):
        return (
            "Failed to deserialize exception. Give the exception class a "
            "__reduce__ method or make it importable where it is raised again.\n"
            "Original exception:\n"
            f"{self._original_stack_trace}"
        )


class ActorAlreadyExistsError(ValueError, RayError):
    """An actor with this name already exists (also a ValueError, as in Ray)."""

    def __init__(self, error_message: str):
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self):
        return self.error_message


RAY_EXCEPTION_TYPES = [
    PlasmaObjectNotAvailable,
    RayError,
    RayTaskError,
    WorkerCrashedError,
    RayActorError,
    ObjectStoreFullError,
    ObjectLostError,
    ObjectFetchTimedOutError,
    ReferenceCountingAssertionError,
    ObjectReconstructionFailedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
    ObjectReconstructionFailedLineageEvictedError,
    OwnerDiedError,
    GetTimeoutError,
    AsyncioActorExit,
    RuntimeEnvSetupError,
    TaskPlacementGroupRemoved,
    ActorPlacementGroupRemoved,
    PendingCallsLimitExceeded,
    LocalRayletDiedError,
    TaskUnschedulableError,
    ActorDiedError,
    ActorUnschedulableError,
    ActorUnavailableError,
    RayChannelError,
    RayChannelTimeoutError,
    OufOfBandObjectRefSerializationException,
    RayCgraphCapacityExceeded,
    UnserializableException,
    ActorAlreadyExistsError,
    AuthenticationError,
]
