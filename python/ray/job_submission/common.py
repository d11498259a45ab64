"""The Jobs API's records (Ray's ray.job_submission types): JobStatus, JobErrorType, JobInfo,
JobType, DriverInfo and JobDetails, as the dashboard's REST API answers them.

Ray builds JobDetails and DriverInfo with pydantic; rayc's are plain classes with the same
fields, the same keyword construction (JobDetails(**reply), unknown keys ignored as pydantic
ignores them) and pydantic's dict()/json() and model_dump()/model_dump_json(), so that code
written against Ray's works without pydantic installed.
"""

import dataclasses
import json
from enum import Enum
from typing import Any, Dict, Optional, Union

__all__ = ["JobStatus", "JobErrorType", "JobInfo", "JobType", "DriverInfo", "JobDetails"]


class JobStatus(str, Enum):
    """A job's status. PENDING: not started yet (waiting for its resources or its runtime
    environment); RUNNING; then one of the terminal STOPPED, SUCCEEDED, FAILED."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return f"{self.value}"

    def is_terminal(self) -> bool:
        """Whether the status can no longer change (STOPPED, SUCCEEDED or FAILED)."""
        return self.value in {"STOPPED", "SUCCEEDED", "FAILED"}


class JobErrorType(str, Enum):
    """Why a job FAILED (JobDetails.error_type)."""

    RUNTIME_ENV_SETUP_FAILURE = "RUNTIME_ENV_SETUP_FAILURE"
    JOB_SUPERVISOR_ACTOR_START_TIMEOUT = "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"
    JOB_SUPERVISOR_ACTOR_START_FAILURE = "JOB_SUPERVISOR_ACTOR_START_FAILURE"
    JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE = "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
    JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE = "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE"
    JOB_SUPERVISOR_ACTOR_DIED = "JOB_SUPERVISOR_ACTOR_DIED"
    JOB_ENTRYPOINT_COMMAND_START_ERROR = "JOB_ENTRYPOINT_COMMAND_START_ERROR"
    JOB_ENTRYPOINT_COMMAND_ERROR = "JOB_ENTRYPOINT_COMMAND_ERROR"


def _asks_for_resources(info) -> bool:
    return bool((info.entrypoint_num_cpus or 0) > 0 or (info.entrypoint_num_gpus or 0) > 0
                or (info.entrypoint_memory or 0) > 0 or info.entrypoint_resources)


@dataclasses.dataclass
class JobInfo:
    """What is recorded of a submitted job (Ray's JobInfo)."""

    status: JobStatus
    entrypoint: str
    message: Optional[str] = None
    error_type: Optional[JobErrorType] = None
    start_time: Optional[int] = None  # ms since the epoch
    end_time: Optional[int] = None  # ms since the epoch, once terminal
    metadata: Optional[Dict[str, str]] = None
    runtime_env: Optional[Dict[str, Any]] = None
    entrypoint_num_cpus: Optional[Union[int, float]] = None
    entrypoint_num_gpus: Optional[Union[int, float]] = None
    entrypoint_memory: Optional[int] = None
    entrypoint_resources: Optional[Dict[str, float]] = None
    driver_agent_http_address: Optional[str] = None
    driver_node_id: Optional[str] = None
    driver_exit_code: Optional[int] = None

    def __post_init__(self):
        if isinstance(self.status, str):
            self.status = JobStatus(self.status)
        if self.message is None:
            if self.status == JobStatus.PENDING:
                self.message = "Job has not started yet."
                if _asks_for_resources(self):
                    self.message += (" It may be waiting for resources (CPUs, GPUs, memory, custom resources) to "
                                     "become available.")
                if self.runtime_env not in (None, {}):
                    self.message += " It may be waiting for the runtime environment to be set up."
            else:
                self.message = {
                    JobStatus.RUNNING: "Job is currently running.",
                    JobStatus.STOPPED: "Job was intentionally stopped.",
                    JobStatus.SUCCEEDED: "Job finished successfully.",
                    JobStatus.FAILED: "Job failed.",
                }[self.status]


class JobType(str, Enum):
    """SUBMISSION: submitted through the Jobs API; DRIVER: a driver started otherwise."""

    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"


class _Model:
    """Keyword-built records with pydantic's reading side: required fields, defaults,
    conversions, unknown keys ignored, dict()/json()."""

    _fields: Dict[str, Any] = {}  # name -> default (_REQUIRED: must be given)
    _convert: Dict[str, Any] = {}

    def __init__(self, **data):
        missing = [k for k, d in self._fields.items() if d is _REQUIRED and k not in data]
        if missing:
            raise TypeError(f"{type(self).__name__}: missing required field(s) {', '.join(missing)}")
        for name, default in self._fields.items():
            value = data.get(name, None if default is _REQUIRED else default)
            conv = self._convert.get(name)
            if conv is not None and value is not None:
                value = conv(value)
            setattr(self, name, value)

    def dict(self) -> Dict[str, Any]:
        out = {}
        for name in self._fields:
            v = getattr(self, name)
            out[name] = v.dict() if isinstance(v, _Model) else v
        return out

    model_dump = dict

    def json(self) -> str:
        return json.dumps(self.dict(), default=lambda v: v.value if isinstance(v, Enum) else str(v))

    model_dump_json = json

    def __eq__(self, other):
        return type(self) is type(other) and self.dict() == other.dict()

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields) + ")"


_REQUIRED = object()


class DriverInfo(_Model):
    """The driver of a job: its job ID (hex), the address of its node and its pid."""

    _fields = {"id": _REQUIRED, "node_ip_address": _REQUIRED, "pid": _REQUIRED}
    _convert = {"pid": str}


def _driver_info(v):
    return v if isinstance(v, DriverInfo) else DriverInfo(**v)


class JobDetails(_Model):
    """A job as the Jobs API lists it (Ray's JobDetails): type, job_id, submission_id,
    driver_info, status, entrypoint, message, error_type, start_time, end_time (ms since the
    epoch), metadata, runtime_env, driver_agent_http_address, driver_node_id,
    driver_exit_code."""

    _fields = {
        "type": _REQUIRED,
        "job_id": None,
        "submission_id": None,
        "driver_info": None,
        "status": _REQUIRED,
        "entrypoint": _REQUIRED,
        "message": None,
        "error_type": None,
        "start_time": None,
        "end_time": None,
        "metadata": None,
        "runtime_env": None,
        "driver_agent_http_address": None,
        "driver_node_id": None,
        "driver_exit_code": None,
    }
    _convert = {"type": JobType, "status": JobStatus, "driver_info": _driver_info}
