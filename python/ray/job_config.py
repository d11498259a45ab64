"""Ray's JobConfig: a job's settings, given to ray.init(job_config=...).

rayc reads runtime_env, ray_namespace and metadata. Two metadata keys set the job's fair
share on a contended cluster (Ray ignores them, so a script that sets them still runs on
Ray):

    "rayc.job_priority"  an integer; raylets grant new leases to the jobs of the highest
                         priority first (default 0);
    "rayc.job_weight"    a number > 0; among jobs of the same priority, new leases go in
                         proportion to their weights (default 1).
"""

import math

PRIORITY_KEY = "rayc.job_priority"
WEIGHT_KEY = "rayc.job_weight"


class JobConfig:
    def __init__(
        self,
        jvm_options=None,
        code_search_path=None,
        runtime_env=None,
        _client_job=False,
        metadata=None,
        ray_namespace=None,
        default_actor_lifetime="non_detached",
        _py_driver_sys_path=None,
    ):
        self.jvm_options = list(jvm_options or [])
        self.code_search_path = list(code_search_path or [])
        self.runtime_env = runtime_env or {}
        self._client_job = _client_job
        if metadata is not None and (not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
            raise TypeError(f"metadata must be a dict of str to str, got {metadata!r}")
        self.metadata = dict(metadata or {})
        self.ray_namespace = ray_namespace
        if default_actor_lifetime not in ("detached", "non_detached"):
            raise ValueError(f"default_actor_lifetime must be 'detached' or 'non_detached', "
                             f"got {default_actor_lifetime!r}")
        self.default_actor_lifetime = default_actor_lifetime
        self._py_driver_sys_path = list(_py_driver_sys_path or [])
        self._fair_share()  # bad values fail here, not at ray.init

    def set_metadata(self, key, value):
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("metadata keys and values must be str")
        self.metadata[key] = value
        self._fair_share()

    def set_runtime_env(self, runtime_env, validate=False):
        self.runtime_env = runtime_env or {}

    def set_ray_namespace(self, ray_namespace):
        self.ray_namespace = ray_namespace

    def set_default_actor_lifetime(self, default_actor_lifetime):
        if default_actor_lifetime not in ("detached", "non_detached"):
            raise ValueError(f"default_actor_lifetime must be 'detached' or 'non_detached', "
                             f"got {default_actor_lifetime!r}")
        self.default_actor_lifetime = default_actor_lifetime

    def _fair_share(self):
        """(priority, weight) from the metadata; raises ValueError on a bad value."""
        priority, weight = 0, 1.0
        raw = self.metadata.get(PRIORITY_KEY)
        if raw is not None:
            try:
                priority = int(raw)
            except ValueError:
                raise ValueError(f"job_config metadata {PRIORITY_KEY!r} must be an integer, got {raw!r}") from None
            if not -(2**31) <= priority < 2**31:
                raise ValueError(f"job_config metadata {PRIORITY_KEY!r} must fit in 32 bits, got {raw!r}")
        raw = self.metadata.get(WEIGHT_KEY)
        if raw is not None:
            try:
                weight = float(raw)
            except ValueError:
                weight = float("nan")
            if not math.isfinite(weight) or weight <= 0:
                raise ValueError(f"job_config metadata {WEIGHT_KEY!r} must be a finite number > 0, got {raw!r}")
        return priority, weight

    def _serialize(self):
        raise NotImplementedError("rayc sends a job's config itself; JobConfig is not serialized by hand")

    @classmethod
    def from_json(cls, job_config_json):
        return cls(**job_config_json)
