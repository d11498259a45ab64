"""ray.get_runtime_context(): who and where the caller is (Ray's RuntimeContext)."""

import ray._raylet as _raylet
from ray._private import worker as _worker
from ray._private.ids import JobID, NodeID, TaskID, WorkerID  # noqa: F401 (Ray's names)


class RuntimeContext:
    """A snapshot of the calling process's place in the cluster."""

    def __init__(self, ctx):
        self._ctx = ctx

    def get_job_id(self) -> str:
        return self._ctx["job_id"].hex()

    def get_node_id(self) -> str:
        return self._ctx["node_id"].hex()

    def get_worker_id(self) -> str:
        return self._ctx["worker_id"].hex()

    def get_task_id(self):
        """The hex ID of the running task, or None outside tasks (the driver)."""
        return self._ctx["task_id"].hex() if self._ctx["in_task"] else None

    def get_task_name(self):
        return self._ctx["task_name"] if self._ctx["in_task"] else None

    def get_actor_id(self):
        return self._ctx["actor_id"].hex() if self._ctx["is_actor"] else None

    def get_node_labels(self):
        """The labels of the node the caller runs on."""
        node = self.get_node_id()
        for n in _worker.nodes():
            if n["NodeID"] == node:
                return dict(n["Labels"])
        return {}

    def get_placement_group_id(self):
        """The hex ID of the group the current task or actor runs in, or None."""
        pg = self._ctx["placement_group_id"]
        return pg.hex() if pg else None

    def get_actor_name(self):
        """The current actor's name, or None (unnamed, or not in an actor)."""
        return _worker.global_worker.actor_name if self._ctx["is_actor"] else None

    @property
    def namespace(self):
        return _worker.global_worker.namespace or self._ctx["namespace"] or None

    def get_assigned_resources(self):
        """The CPU and GPU amounts of the running task's lease (an actor's: its own)."""
        out = {}
        if self._ctx["num_cpus"]:
            out["CPU"] = self._ctx["num_cpus"]
        if self._ctx["num_gpus"]:
            out["GPU"] = self._ctx["num_gpus"]
        return out

    def get_accelerator_ids(self):
        """{"GPU": [ids as str]}: what CUDA_VISIBLE_DEVICES names for this task."""
        return {"GPU": [str(i) for i in self._ctx["gpu_ids"]]}

    @property
    def was_current_actor_reconstructed(self):
        """Whether this actor runs after a restart (its worker died before)."""
        if not self._ctx["is_actor"]:
            return False
        return _raylet.actor_info(self._ctx["actor_id"])["num_restarts"] > 0

    @property
    def current_actor(self):
        from ray.actor import ActorHandle

        if not self._ctx["is_actor"]:
            raise RuntimeError("This method is only available in an actor.")
        return ActorHandle(self._ctx["actor_id"], "Actor", None)

    @property
    def gcs_address(self):
        return _worker.global_worker.gcs_address

    def get(self):
        return {"job_id": JobID(self._ctx["job_id"]), "node_id": NodeID(self._ctx["node_id"]),
                "namespace": self.namespace, "task_id": TaskID(self._ctx["task_id"]) if self._ctx["in_task"] else None}


def get_runtime_context() -> RuntimeContext:
    """Ray's ray.get_runtime_context()."""
    _worker._check_connected("ray.get_runtime_context")
    return RuntimeContext(_raylet.runtime_context())
