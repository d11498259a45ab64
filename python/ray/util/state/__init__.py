"""Ray's state API (ray.util.state): the cluster's nodes, jobs, actors, placement groups and
task attempts as Ray's state objects (NodeState, JobState, ActorState, PlacementGroupState,
TaskState), read fresh from the GCS through this process's own connection.

Differences from Ray, on purpose: the calls go through the driver's connection rather than
the dashboard's HTTP API (a process that is not connected yet is connected first, to
`address` or to the cluster on this host, as ray.init does); `timeout` and `_explain` are
accepted and do not change anything; objects, workers, runtime envs and logs are not
listed (`rayc logs`, `rayc summary objects`); truncated or dropped data is logged as a warning,
never raised (raise_on_missing_output). Filters are Ray's: (key, "=" or "!=", value),
all of which must hold; string values compare without regard to case.
"""

import json
import logging

import ray
import ray._raylet as _raylet

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
DEFAULT_RPC_TIMEOUT = 30


class RayStateApiException(Exception):
    """A state API call that cannot be answered as asked (a bad filter, an unreachable GCS)."""


class StateSchema:
    """A row of Ray's state API: attributes (and item access) for its columns. Columns
    that are not `detail` ones are filled in every row; the detail ones only with
    detail=True (None otherwise), as in Ray."""

    BASE = ()
    DETAIL = ()
    FILTERABLE = ()

    def __init__(self, **kwargs):
        for name in self.list_columns(detail=True):
            setattr(self, name, kwargs.get(name))

    @classmethod
    def list_columns(cls, detail=True):
        return list(cls.BASE) + (list(cls.DETAIL) if detail else [])

    @classmethod
    def columns(cls):
        return set(cls.list_columns(detail=True))

    @classmethod
    def filterable_columns(cls):
        return set(cls.FILTERABLE)

    @classmethod
    def base_columns(cls):
        return set(cls.BASE)

    @classmethod
    def detail_columns(cls):
        return set(cls.DETAIL)

    def asdict(self):
        return {name: getattr(self, name) for name in self.list_columns(detail=True)}

    def __getitem__(self, key):
        if key not in self.columns():
            raise KeyError(key)
        return getattr(self, key)

    def __eq__(self, other):
        return type(self) is type(other) and self.asdict() == other.asdict()

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self.asdict().items())
        return f"{type(self).__name__}({fields})"


class NodeState(StateSchema):
    BASE = ("node_id", "node_ip", "is_head_node", "state", "state_message", "node_name", "resources_total", "labels")
    DETAIL = ("start_time_ms", "end_time_ms")
    FILTERABLE = ("node_id", "node_ip", "is_head_node", "state", "node_name")


class JobState(StateSchema):
    BASE = ("job_id", "submission_id", "type", "status", "entrypoint", "message", "error_type", "start_time",
            "end_time", "metadata", "runtime_env", "driver_info", "driver_agent_http_address", "driver_node_id",
            "driver_exit_code")
    FILTERABLE = ("job_id", "submission_id", "type", "status", "entrypoint")


class ActorState(StateSchema):
    BASE = ("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid", "ray_namespace")
    DETAIL = ("serialized_runtime_env", "required_resources", "death_cause", "is_detached", "placement_group_id",
              "repr_name", "num_restarts", "num_restarts_due_to_lineage_reconstruction",
              "num_restarts_due_to_node_preemption", "call_site", "label_selector")
    FILTERABLE = ("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid", "ray_namespace",
                  "placement_group_id", "repr_name")


class PlacementGroupState(StateSchema):
    BASE = ("placement_group_id", "name", "creator_job_id", "state")
    DETAIL = ("bundles", "is_detached", "stats")
    FILTERABLE = ("placement_group_id", "name", "creator_job_id", "state", "is_detached")


class TaskState(StateSchema):
    BASE = ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name",
            "parent_task_id", "node_id", "worker_id", "worker_pid", "error_type")
    DETAIL = ("language", "required_resources", "runtime_env_info", "placement_group_id", "events",
              "profiling_data", "creation_time_ms", "start_time_ms", "end_time_ms", "task_log_info",
              "error_message", "is_debugger_paused", "call_site", "label_selector")
    FILTERABLE = ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name",
                  "parent_task_id", "node_id", "worker_id", "worker_pid", "error_type", "language",
                  "placement_group_id")


# ---- rows from the GCS, in Ray's shape ---------------------------------------------------------


def _node(r):
    death = r.get("death_info") or {}
    return dict(r, state_message=death.get("reason_message") or None)


def _job(r):
    submission = r.get("submission_id")
    # Ray's status of a job known only from the GCS's job table: RUNNING until its driver
    # ends, then SUCCEEDED (the Jobs API keeps a submitted job's own status: rayc job status).
    return dict(job_id=r["job_id"], submission_id=submission, type="SUBMISSION" if submission else "DRIVER",
                status="SUCCEEDED" if r.get("is_dead") else "RUNNING", entrypoint=r.get("entrypoint"),
                message=None, error_type=None, start_time=r.get("start_time"), end_time=r.get("end_time") or None,
                metadata={}, runtime_env={}, driver_info={"id": r["job_id"], "node_ip_address": r.get("driver_ip_address"),
                                                          "pid": str(r.get("driver_pid"))},
                driver_agent_http_address=None, driver_node_id=None, driver_exit_code=None)


def _actor(r):
    return dict(r, num_restarts_due_to_lineage_reconstruction=0, num_restarts_due_to_node_preemption=0)


def _pg(r):
    return r


def _task(r):
    return r


_RESOURCES = {
    "nodes": (NodeState, _node, "node_id"),
    "jobs": (JobState, _job, "submission_id"),
    "actors": (ActorState, _actor, "actor_id"),
    "placement_groups": (PlacementGroupState, _pg, "placement_group_id"),
    "tasks": (TaskState, _task, "task_id"),
}


def _connect(address):
    if not ray.is_initialized():
        ray.init(address=address or "auto")


def _matches(value, predicate, wanted):
    if isinstance(value, bool):
        have = str(value).lower()
    elif value is None:
        have = ""
    else:
        have = str(value).lower()
    equal = have == str(wanted).lower()
    return equal if predicate == "=" else not equal


def _check_filters(schema, filters):
    for f in filters or []:
        if not isinstance(f, (tuple, list)) or len(f) != 3:
            raise RayStateApiException(f"A filter is (key, predicate, value), not {f!r}")
        key, predicate, _ = f
        if key not in schema.filterable_columns():
            raise RayStateApiException(
                f"Given filter column {key} is not supported. Enter filters with one of "
                f"{sorted(schema.filterable_columns())}.")
        if predicate not in ("=", "!="):
            raise RayStateApiException(f"Unsupported filter predicate {predicate}. Supported predicates: =, !=")


def _list(resource, address, filters, limit, detail, raise_on_missing_output):
    schema, shape, _ = _RESOURCES[resource]
    _check_filters(schema, filters)
    if not isinstance(limit, int) or limit <= 0:
        raise RayStateApiException(f"limit must be a positive integer, not {limit!r}")
    _connect(address)
    # Task attempts are many: the GCS applies the limit itself unless filters need them all.
    try:
        answer = json.loads(_raylet.state_json(resource, 0 if filters else limit))
    except _raylet.RaycError as e:
        raise RayStateApiException(f"Failed to list {resource}: {e.args[-1]}") from None
    rows = [shape(r) for r in answer["rows"]]
    rows = [r for r in rows if all(_matches(r.get(k), p, v) for k, p, v in (filters or []))]
    total = len(rows) + (answer.get("truncated") or 0)
    if total > limit:
        logger.warning(f"The returned data may contain incomplete result. {limit} ({total} total from the "
                       f"cluster) {resource} are retrieved: raise the limit to see more.")
    if answer.get("dropped"):
        logger.warning(f"{answer['dropped']} task attempts were dropped (the GCS keeps the newest "
                       "task_events_max_num_task_in_gcs): the result may be incomplete.")
    out = []
    for r in rows[:limit]:
        values = {k: r.get(k) for k in schema.list_columns(detail=detail)}
        out.append(schema(**values))
    return out


def _get(resource, id, address):
    _, _, key = _RESOURCES[resource]
    found = _list(resource, address, [(key, "=", id)], 10000, True, False)
    if resource == "tasks":
        return None if not found else found[0] if len(found) == 1 else found
    return found[0] if found else None


# ---- Ray's functions --------------------------------------------------------------------------


def list_nodes(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT, detail=False,
               raise_on_missing_output=True, _explain=False):
    """The cluster's nodes, alive and dead, as NodeState."""
    return _list("nodes", address, filters, limit, detail, raise_on_missing_output)


def list_jobs(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT, detail=False,
              raise_on_missing_output=True, _explain=False):
    """The cluster's jobs (drivers, submitted or not), as JobState."""
    return _list("jobs", address, filters, limit, detail, raise_on_missing_output)


def list_actors(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT, detail=False,
                raise_on_missing_output=True, _explain=False):
    """The cluster's actors (dead ones too), as ActorState."""
    return _list("actors", address, filters, limit, detail, raise_on_missing_output)


def list_placement_groups(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT,
                          detail=False, raise_on_missing_output=True, _explain=False):
    """The cluster's placement groups, as PlacementGroupState."""
    return _list("placement_groups", address, filters, limit, detail, raise_on_missing_output)


def list_tasks(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=DEFAULT_RPC_TIMEOUT, detail=False,
               raise_on_missing_output=True, _explain=False):
    """Task attempts the GCS keeps (newest first), as TaskState."""
    return _list("tasks", address, filters, limit, detail, raise_on_missing_output)


def get_node(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    return _get("nodes", id, address)


def get_actor(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    return _get("actors", id, address)


def get_placement_group(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    return _get("placement_groups", id, address)


def get_job(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The job with submission ID (or, for a driver, job ID) id."""
    return _get("jobs", id, address) or (_list("jobs", address, [("job_id", "=", id)], 1, True, False) or [None])[0]


def get_task(id, address=None, timeout=DEFAULT_RPC_TIMEOUT, _explain=False):
    """The task's attempt (a list when it ran more than once), or None."""
    return _get("tasks", id, address)


def summarize_tasks(address=None, timeout=DEFAULT_RPC_TIMEOUT, raise_on_missing_output=True, _explain=False):
    """Task attempts counted by function (or actor method) and state, in Ray's shape."""
    tasks = _list("tasks", address, None, 10**9, False, raise_on_missing_output)
    summary = {}
    for t in tasks:
        s = summary.setdefault(t.func_or_class_name, {"func_or_class_name": t.func_or_class_name, "type": t.type,
                                                      "state_counts": {}})
        s["state_counts"][t.state] = s["state_counts"].get(t.state, 0) + 1
    return {"cluster": {"summary": summary, "total_tasks": sum(t.type == "NORMAL_TASK" for t in tasks),
                        "total_actor_tasks": sum(t.type == "ACTOR_TASK" for t in tasks),
                        "total_actor_scheduled": sum(t.type == "ACTOR_CREATION_TASK" for t in tasks),
                        "summary_by": "func_name"}}


def summarize_actors(address=None, timeout=DEFAULT_RPC_TIMEOUT, raise_on_missing_output=True, _explain=False):
    """Actors counted by class and state, in Ray's shape."""
    actors = _list("actors", address, None, 10**9, False, raise_on_missing_output)
    summary = {}
    for a in actors:
        s = summary.setdefault(a.class_name, {"class_name": a.class_name, "state_counts": {}})
        s["state_counts"][a.state] = s["state_counts"].get(a.state, 0) + 1
    return {"cluster": {"summary": summary, "total_actors": len(actors), "summary_by": "class"}}


__all__ = [
    "ActorState", "JobState", "NodeState", "PlacementGroupState", "RayStateApiException", "StateSchema", "TaskState",
    "get_actor", "get_job", "get_node", "get_placement_group", "get_task", "list_actors", "list_jobs", "list_nodes",
    "list_placement_groups", "list_tasks", "summarize_actors", "summarize_tasks",
]
