"""Placement groups (Ray's ray.util.placement_group): bundles of resources reserved
together, across nodes by strategy, for the tasks and actors that target them."""

import ray._raylet as _raylet
from ray._private import worker as _worker
from ray._private.ids import PlacementGroupID

VALID_PLACEMENT_GROUP_STRATEGIES = {
    "PACK": _raylet.PG_PACK,
    "SPREAD": _raylet.PG_SPREAD,
    "STRICT_PACK": _raylet.PG_STRICT_PACK,
    "STRICT_SPREAD": _raylet.PG_STRICT_SPREAD,
}

# Groups this process made or looked up: id -> (bundles, strategy, name). Other processes
# learn a group's bundles from the GCS KV, where its creator records them.
_known = {}
_KV_KEY = "PlacementGroup:{}"


def _describe(pg_id):
    """(bundles, strategy, name) of a group, from this process or the GCS KV."""
    known = _known.get(pg_id)
    if known is None:
        import pickle

        data = _raylet.kv_get(_worker.FUNCTION_KV_NAMESPACE, _KV_KEY.format(pg_id.hex()))
        if data is not None:
            known = _known[pg_id] = pickle.loads(data)
    return known


def _rebuild(binary, bundles):
    return PlacementGroup(PlacementGroupID(binary), bundles)


class PlacementGroup:
    """A handle on a placement group; pass it to tasks and actors through
    PlacementGroupSchedulingStrategy."""

    def __init__(self, id, bundle_cache=None):
        self.id = id
        self._bundles = bundle_cache

    def __reduce__(self):
        return _rebuild, (self.id.binary(), self._bundles)

    def __eq__(self, other):
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    @property
    def bundle_specs(self):
        if not self._bundles:
            known = _describe(self.id.binary())
            self._bundles = known[0] if known else []
        return [dict(b) for b in self._bundles]

    @property
    def bundle_count(self):
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that resolves (to this group) once every bundle is reserved."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return _ready_task.options(
            num_cpus=0,
            scheduling_strategy=PlacementGroupSchedulingStrategy(self, placement_group_bundle_index=-1,
                                                                 placement_group_capture_child_tasks=False),
        ).remote(self)

    def wait(self, timeout_seconds=30):
        """Whether the group is ready within timeout_seconds."""
        rc, message = _raylet.pg_wait(self.id.binary(), int(timeout_seconds * 1000))
        if rc == 0:
            return True
        if rc == _raylet.RC_ETIMEDOUT:
            return False
        raise ValueError(message or "the placement group was removed or refused")


def _pg_ready(pg):
    return pg


_ready_task = None


def _bundle_binding(bundle, selector):
    if not isinstance(bundle, dict):
        raise ValueError(f"Bundles must be dictionaries of resource name to amount, got {type(bundle)}")
    out = {"num_cpus": 0.0, "num_gpus": 0.0, "resources": {}}
    for name, amount in bundle.items():
        if not isinstance(amount, (int, float)) or amount < 0:
            raise ValueError(f"Bundle resource amounts must be non-negative numbers, got {name}={amount!r}")
        if name == "CPU":
            out["num_cpus"] = float(amount)
        elif name == "GPU":
            out["num_gpus"] = float(amount)
        elif name == "memory":
            raise ValueError("rayc does not reserve memory in placement groups yet: leave 'memory' out of bundles.")
        elif amount > 0:
            out["resources"][name] = float(amount)
    if selector:
        out["label_selector"] = ", ".join(f"{k}: {v}" for k, v in selector.items())
    return out


def placement_group(bundles, strategy="PACK", name="", lifetime=None, _max_cpu_fraction_per_node=None,
                    _soft_target_node_id=None, bundle_label_selector=None):
    """Asks for a placement group and returns its handle at once (see .ready(), .wait())."""
    global _ready_task
    _worker._check_connected("placement_group")
    if not isinstance(bundles, list):
        raise ValueError(f"Placement group bundles must be a list, got {type(bundles)}.")
    if not bundles:
        raise ValueError('Bundles must be a non-empty list of resource dictionaries. For example: '
                         '`[{"CPU": 1.0}, {"GPU": 1.0}]`. Got empty list instead.')
    for b in bundles:
        if (not isinstance(b, dict) or not all(isinstance(k, str) for k in b)
                or not all(isinstance(v, (int, float)) for v in b.values())):
            raise ValueError('Bundles must be a non-empty list of resource dictionaries. For example: '
                             '`[{"CPU": 1.0}, {"GPU": 1.0}]`.')
        if not b or all(v == 0 for v in b.values()):
            raise ValueError(
                "Bundles cannot be an empty dictionary or resources with only 0 values. Bundles: {}".format(bundles))
    if strategy not in VALID_PLACEMENT_GROUP_STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy}. Supported strategies are: "
                         f"{list(VALID_PLACEMENT_GROUP_STRATEGIES)}.")
    if lifetime not in (None, "detached"):
        raise ValueError(f"Placement group `lifetime` argument must be either `None` or 'detached'. Got {lifetime}.")
    if _max_cpu_fraction_per_node not in (None, 1, 1.0) or _soft_target_node_id is not None:
        raise ValueError("rayc does not support _max_cpu_fraction_per_node or _soft_target_node_id.")
    if bundle_label_selector is not None and len(bundle_label_selector) != len(bundles):
        raise ValueError(f"Invalid bundle label selector {bundle_label_selector}. The length of "
                         "`bundle_label_selector` should equal the length of `bundles`.")
    selectors = bundle_label_selector or [None] * len(bundles)
    binding = [_bundle_binding(b, s) for b, s in zip(bundles, selectors)]
    try:
        pg_id = _raylet.pg_create(binding, VALID_PLACEMENT_GROUP_STRATEGIES[strategy], name or None,
                                  lifetime == "detached")
    except _raylet.RaycError as e:
        raise ValueError(e.args[1]) from None
    specs = [{k: float(v) for k, v in b.items()} for b in bundles]  # as the GCS reports them
    _known[pg_id] = (specs, strategy, name)
    import pickle

    _raylet.kv_put(_worker.FUNCTION_KV_NAMESPACE, _KV_KEY.format(pg_id.hex()), pickle.dumps(_known[pg_id]), True)
    if _ready_task is None:
        import ray

        _ready_task = ray.remote(_pg_ready)
    return PlacementGroup(PlacementGroupID(pg_id), specs)


def remove_placement_group(placement_group):
    """Removes the group: what runs in it is killed and its resources are freed."""
    _worker._check_connected("remove_placement_group")
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError("remove_placement_group takes a PlacementGroup")
    _raylet.pg_remove(placement_group.id.binary())


def get_placement_group(placement_group_name):
    """The group named placement_group_name (in the job's namespace)."""
    _worker._check_connected("get_placement_group")
    if not placement_group_name:
        raise ValueError("Please supply a non-empty value to get_placement_group")
    pg_id = _raylet.pg_get(placement_group_name)
    if pg_id is None:
        raise ValueError(f"Failed to look up placement group with name: {placement_group_name}")
    known = _describe(pg_id)
    return PlacementGroup(PlacementGroupID(pg_id), known[0] if known else None)


def placement_group_table(placement_group=None):
    """Ray's placement_group_table: one group's row, or {id hex: row} of every group the
    cluster knows (their bundles, where each bundle is, strategy and state)."""
    import json

    _worker._check_connected("placement_group_table")

    def row(raw):
        raw["bundles"] = {int(k): v for k, v in raw["bundles"].items()}
        raw["bundles_to_node_id"] = {int(k): v for k, v in raw["bundles_to_node_id"].items()}
        return raw

    if placement_group is not None:
        rows = json.loads(_raylet.pg_table_json(placement_group.id.binary()))
        if not rows:
            return {"placement_group_id": placement_group.id.hex(), "state": "REMOVED", "bundles": {},
                    "bundles_to_node_id": {}, "name": "", "strategy": ""}
        return row(rows[0])
    return {r["placement_group_id"]: row(r) for r in json.loads(_raylet.pg_table_json())}


def _fits(request, bundles):
    return any(all(b.get(k, 0) >= v for k, v in request.items()) for b in bundles)


def check_request_fits(options, what, is_actor):
    """Ray's check at submission: a task or actor placed in a group must fit into one of
    its bundles (else it could never run). ValueError with Ray's text if it cannot."""
    strategy = options.get("scheduling_strategy")
    pg = getattr(strategy, "placement_group", None) or options.get("placement_group")
    if not isinstance(pg, PlacementGroup):
        return
    bundles = pg.bundle_specs
    if not bundles:
        return
    cpus = options.get("num_cpus")
    if cpus is None and not is_actor:
        cpus = 1
    request = {"CPU": cpus} if cpus else {}
    if options.get("num_gpus"):
        request["GPU"] = options["num_gpus"]
    request.update({k: v for k, v in (options.get("resources") or {}).items() if v})
    if not _fits(request, bundles):
        raise ValueError(
            f"Cannot schedule {what} with the placement group because the resource request {request} cannot fit "
            f"into any bundles for the placement group, {bundles}."
        )


def get_current_placement_group():
    """The group the current task or actor runs in (None in the driver or outside groups)."""
    _worker._check_connected("get_current_placement_group")
    pg_id = _raylet.runtime_context()["placement_group_id"]
    if not pg_id:
        return None
    known = _describe(pg_id)
    return PlacementGroup(PlacementGroupID(pg_id), known[0] if known else None)
