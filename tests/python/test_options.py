"""Unit tests of ray._private.options (option checks and binding dicts); no cluster."""

import importlib.util
import os
import re
import subprocess
import sys
import warnings

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join(HERE, "..", "..", "python", "ray")


def _load(module_name, relpath):
    """Imports ray.<module_name>, or loads the file when `import ray` fails (e.g. the
    C extension is not built)."""
    try:
        return importlib.import_module(f"ray.{module_name}")
    except Exception:
        path = os.path.join(PKG, relpath)
        spec = importlib.util.spec_from_file_location(f"_rayc_test_{module_name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


opts = _load("_private.options", os.path.join("_private", "options.py"))
try:
    ss = _load("util.scheduling_strategies", os.path.join("util", "scheduling_strategies.py"))
except Exception:  # pragma: no cover - the colleague's module is missing
    ss = None

needs_ss = pytest.mark.skipif(ss is None, reason="ray.util.scheduling_strategies missing")

NODE_HEX = "ab" * 28
PG_ID = bytes(range(18))


# ---- fakes ------------------------------------------------------------------------------


class _FakeID:
    def __init__(self, raw):
        self.raw = raw

    def binary(self):
        return self.raw


class FakePG:
    def __init__(self, raw=PG_ID, bundles=2, empty=False):
        self.id = _FakeID(raw)
        self.bundle_count = bundles
        self.is_empty = empty


class PlacementGroupSchedulingStrategy:  # matched by class name
    def __init__(self, placement_group, placement_group_bundle_index=-1,
                 placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


class NodeAffinitySchedulingStrategy:  # matched by class name, no checks of its own
    def __init__(self, node_id, soft, _spill_on_unavailable=False,
                 _fail_on_unavailable=False):
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable


class In:
    def __init__(self, *values):
        self.values = list(values)


class NotIn(In):
    pass


class Exists:
    pass


class _Expr:
    def __init__(self, key, operator):
        self.key = key
        self.operator = operator


class NodeLabelSchedulingStrategy:  # without _to_label_selector_text
    def __init__(self, hard, soft=None):
        self.hard = [_Expr(k, v) for k, v in hard.items()]
        self.soft = [_Expr(k, v) for k, v in (soft or {}).items()]


def vt(o, in_options=False):
    opts.validate_task_options(o, in_options)


def va(o, in_options=False):
    opts.validate_actor_options(o, in_options)


def tb(o):
    return opts.task_binding_options(o)[0]


# ---- module ----------------------------------------------------------------------------


def test_module_imports_neither_ray_nor_raylet():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('o', {os.path.join(PKG, '_private', 'options.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "assert 'ray' not in sys.modules and 'ray._raylet' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_strategy_constants():
    assert (opts.STRATEGY_DEFAULT, opts.STRATEGY_SPREAD, opts.STRATEGY_NODE_AFFINITY,
            opts.STRATEGY_COST) == (0, 1, 2, 3)


def test_docstring_lists_extras_and_ignored():
    doc = opts.__doc__
    for word in ("_rayc_gpu_memory", "rayc:cost", "enable_task_events", "price per hour"):
        assert word in doc


# ---- keywords and types ------------------------------------------------------------------


def test_invalid_keyword_task():
    with pytest.raises(ValueError) as e:
        vt({"foo": 1})
    msg = str(e.value)
    assert msg.startswith("Invalid option keyword foo for remote functions. Valid ones are [")
    assert "'max_calls'" in msg and "'num_returns'" in msg and "'lifetime'" not in msg


def test_invalid_keyword_actor():
    with pytest.raises(ValueError) as e:
        va({"num_returns": 1})
    msg = str(e.value)
    assert msg.startswith("Invalid option keyword num_returns for actors. Valid ones are [")
    assert "'lifetime'" in msg and "'max_concurrency'" in msg


def test_valid_keyword_order_matches_ray():
    assert list(opts.TASK_OPTIONS)[:21] == [
        "label_selector", "fallback_strategy", "accelerator_type", "memory", "name",
        "num_cpus", "num_gpus", "object_store_memory", "placement_group",
        "placement_group_bundle_index", "placement_group_capture_child_tasks",
        "resources", "runtime_env", "scheduling_strategy", "enable_task_events",
        "_labels", "max_calls", "max_retries", "num_returns", "retry_exceptions",
        "_generator_backpressure_num_objects",
    ]
    assert list(opts.ACTOR_OPTIONS)[16:26] == [
        "concurrency_groups", "enable_tensor_transport", "lifetime", "max_concurrency",
        "max_restarts", "max_task_retries", "max_pending_calls", "namespace",
        "get_if_exists", "allow_out_of_order_execution",
    ]


@pytest.mark.parametrize("keyword", ["max_retries", "max_calls"])
def test_type_error_int_task(keyword):
    template = f"The type of keyword '{keyword}' must be {(int, type(None))}, but received type {float}"
    with pytest.raises(TypeError, match=re.escape(template)):
        vt({keyword: 0.5})


@pytest.mark.parametrize("keyword", ["max_restarts", "max_task_retries"])
def test_type_error_int_actor(keyword):
    template = f"The type of keyword '{keyword}' must be {(int, type(None))}, but received type {float}"
    with pytest.raises(TypeError, match=re.escape(template)):
        va({keyword: 0.5})


def test_type_error_num_returns():
    template = f"The type of keyword 'num_returns' must be {(int, str, type(None))}, but received type {float}"
    with pytest.raises(TypeError, match=re.escape(template)):
        vt({"num_returns": 1.5})


def test_type_error_texts_for_classes():
    with pytest.raises(TypeError, match=re.escape(
            "The type of keyword 'scheduling_strategy' must be (<class 'NoneType'>, <class 'str'>, "
            "<class 'ray.util.scheduling_strategies.PlacementGroupSchedulingStrategy'>")):
        vt({"scheduling_strategy": 5})
    with pytest.raises(TypeError, match=re.escape(
            "The type of keyword 'placement_group' must be (<class 'NoneType'>, <class 'str'>, "
            "<class 'ray.util.placement_group.PlacementGroup'>), but received type <class 'int'>")):
        vt({"placement_group": 5})
    with pytest.raises(TypeError, match=re.escape(
            "The type of keyword 'enable_task_events' must be <class 'bool'>")):
        vt({"enable_task_events": None})
    with pytest.raises(TypeError, match="keyword 'get_if_exists'"):
        va({"get_if_exists": 1})
    with pytest.raises(TypeError, match="keyword 'placement_group_bundle_index'"):
        vt({"placement_group_bundle_index": None})
    with pytest.raises(TypeError, match="keyword 'resources'"):
        vt({"resources": [("a", 1)]})
    with pytest.raises(TypeError, match="keyword 'retry_exceptions'"):
        vt({"retry_exceptions": None})
    with pytest.raises(TypeError, match="keyword 'num_cpus'"):
        vt({"num_cpus": "1"})


@pytest.mark.parametrize("v", [-5, -1])
def test_value_errors_non_negative(v):
    with pytest.raises(ValueError, match="The keyword 'max_calls' only accepts None, 0 or a positive integer"):
        vt({"max_calls": v})
    with pytest.raises(ValueError, match=r"The keyword 'num_returns' only accepts None, a non-negative integer, "
                                         r"'streaming' \(for generators\), or 'dynamic'"):
        vt({"num_returns": v})
    with pytest.raises(ValueError, match="The keyword 'max_concurrency' only accepts None, 0 or a positive"):
        va({"max_concurrency": v})


def test_value_errors_infinite():
    template = "The keyword '{}' only accepts None, 0, -1 or a positive integer, where -1 represents infinity."
    with pytest.raises(ValueError, match=re.escape(template.format("max_retries"))):
        vt({"max_retries": -2})
    for keyword in ("max_restarts", "max_task_retries", "max_pending_calls"):
        with pytest.raises(ValueError, match=re.escape(template.format(keyword))):
            va({keyword: -7})
    vt({"max_retries": -1})
    va({"max_restarts": -1, "max_task_retries": -1})


def test_num_returns_bad_string():
    with pytest.raises(ValueError, match="The keyword 'num_returns' only accepts None"):
        vt({"num_returns": "many"})


def test_resource_quantities():
    with pytest.raises(ValueError, match="The precision of the fractional quantity of resource num_gpus cannot go beyond 0.0001"):
        vt({"num_gpus": 0.0000001})
    with pytest.raises(ValueError, match="The precision of the fractional quantity of resource custom_resource cannot go beyond 0.0001"):
        vt({"resources": {"custom_resource": 0.0000001}})
    with pytest.raises(ValueError, match="The quantity of resource num_cpus cannot be negative"):
        vt({"num_cpus": -1})
    with pytest.raises(ValueError, match="The quantity of resource x cannot be negative"):
        va({"resources": {"x": -1}})
    with pytest.raises(TypeError, match="quantity of resource x"):
        vt({"resources": {"x": "1"}})
    vt({"num_gpus": 0.5, "num_cpus": 0.25, "resources": {"x": 0.0001}})


@pytest.mark.parametrize("name", ["CPU", "GPU"])
def test_cpu_gpu_in_resources(name):
    msg = "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in 'resources' keyword"
    with pytest.raises(ValueError, match=re.escape(msg)):
        vt({"resources": {name: 1}})
    with pytest.raises(ValueError, match=re.escape(msg)):
        va({"resources": {name: 1}})
    with pytest.raises(ValueError, match=re.escape(msg)):
        tb({"resources": {name: 1}})


def test_memory_and_bundle_in_resources():
    with pytest.raises(ValueError, match="must not contain the key 'memory' or 'object_store_memory'"):
        vt({"resources": {"memory": 1}})
    with pytest.raises(ValueError, match="must not contain the key 'memory' or 'object_store_memory'"):
        tb({"resources": {"object_store_memory": 1}})
    with pytest.raises(ValueError, match="`bundle` which is reserved for Ray"):
        va({"resources": {"bundle": 1}})


def test_lifetime():
    for ok in (None, "detached", "non_detached"):
        va({"lifetime": ok})
    with pytest.raises(ValueError, match=re.escape(
            "actor `lifetime` argument must be one of 'detached', 'non_detached' and 'None'.")):
        va({"lifetime": "forever"})


def test_retry_exceptions_validation():
    vt({"retry_exceptions": True})
    vt({"retry_exceptions": [ValueError, KeyError]})
    vt({"retry_exceptions": (OSError,)})
    for bad in ([ValueError, 3], [KeyboardInterrupt], ["ValueError"]):
        with pytest.raises(ValueError, match="retry_exceptions must be either a boolean or a list of exceptions"):
            vt({"retry_exceptions": bad})


def test_generator_backpressure_zero_ray_text():
    with pytest.raises(ValueError, match="_generator_backpressure_num_objects=0 is not allowed"):
        vt({"_generator_backpressure_num_objects": 0})


def test_object_store_memory_task_ray_text():
    for v in (0, 10):
        with pytest.raises(ValueError, match="Setting 'object_store_memory' is not implemented for tasks"):
            vt({"object_store_memory": v})
    vt({"object_store_memory": None})


def test_in_options_rules():
    with pytest.raises(ValueError, match=re.escape("Setting 'max_calls' is not supported in '.options()'.")):
        vt({"max_calls": 1}, in_options=True)
    with pytest.raises(ValueError, match=re.escape("Setting 'max_calls' is not supported in '.options()'.")):
        vt({"max_calls": 0}, in_options=True)
    vt({"max_calls": 0})
    with pytest.raises(ValueError, match=re.escape("Setting 'concurrency_groups' is not supported in '.options()'.")):
        va({"concurrency_groups": []}, in_options=True)


def test_get_if_exists_needs_name():
    with pytest.raises(ValueError, match=re.escape("The actor name must be specified to use `get_if_exists`.")):
        va({"get_if_exists": True})
    va({"get_if_exists": True, "name": "a"})
    with pytest.raises(ValueError, match="The actor name must be specified"):
        opts.actor_binding_options({"get_if_exists": True}, False)


def test_deprecated_placement_group_with_strategy():
    msg = ("Placement groups should be specified via the scheduling_strategy option. "
           "The placement_group option is deprecated.")
    with pytest.raises(ValueError, match=re.escape(msg)):
        vt({"placement_group": FakePG(), "scheduling_strategy": "SPREAD"})
    with pytest.raises(ValueError, match=re.escape(msg)):
        va({"placement_group": FakePG(), "scheduling_strategy": "DEFAULT"})
    vt({"placement_group": None, "scheduling_strategy": "SPREAD"})
    vt({"placement_group": "default", "scheduling_strategy": "SPREAD"})


def test_placement_group_bad_string():
    with pytest.raises(ValueError, match="placement_group must be a PlacementGroup, None or 'default'"):
        vt({"placement_group": "mine"})


def test_ray_defaults_are_accepted():
    """As Ray's test_options: every default, in the decorator and in .options()."""
    task_defaults = {k: c.default for k, c in opts.TASK_OPTIONS.items()}
    vt(task_defaults)
    without_max_calls = dict(task_defaults)
    without_max_calls.pop("max_calls")
    vt(without_max_calls, in_options=True)
    actor_defaults = {k: c.default for k, c in opts.ACTOR_OPTIONS.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        va(actor_defaults)
        actor_defaults.pop("concurrency_groups")
        va(actor_defaults, in_options=True)
    binding, retry = opts.task_binding_options(task_defaults)
    assert binding["num_cpus"] == 1.0 and retry == (3, False)
    assert opts.actor_binding_options(actor_defaults, False)["max_concurrency"] == 1


def test_unknown_object_is_type_error_everywhere():
    unique = type("###", (), {})()
    for table, check in ((opts.TASK_OPTIONS, vt), (opts.ACTOR_OPTIONS, va)):
        for keyword in table:
            with pytest.raises(TypeError):
                check({keyword: unique})


def test_actor_object_store_memory_warns():
    with pytest.warns(DeprecationWarning, match="object_store_memory"):
        va({"object_store_memory": 0})


# ---- label selectors ---------------------------------------------------------------------


def test_label_selector_conversion():
    sel = {"region": "us-west", "zone": "!z1", "gpu": "in(a,b)", "x": "!in(a,b)"}
    vt({"label_selector": sel})
    assert tb({"label_selector": sel})["label_selector"] == \
        "region: us-west, zone: !z1, gpu: in(a,b), x: !in(a,b)"
    assert tb({"label_selector": {"ray.io/accelerator-type": "in(H100, A100)"}})["label_selector"] == \
        "ray.io/accelerator-type: in(H100,A100)"
    assert "label_selector" not in tb({"label_selector": {}})
    assert "label_selector" not in tb({})


def test_label_selector_ray_errors():
    with pytest.raises(ValueError, match="Invalid label key name `bad key`"):
        vt({"label_selector": {"bad key": "x"}})
    with pytest.raises(ValueError, match="Invalid label key prefix `-bad`"):
        vt({"label_selector": {"-bad/name": "x"}})
    with pytest.raises(ValueError, match=re.escape("Invalid label selector value `in()`")):
        vt({"label_selector": {"k": "in()"}})
    with pytest.raises(ValueError, match="Invalid label selector value `-spot`"):
        va({"label_selector": {"k": "-spot"}})
    with pytest.raises(ValueError, match="Label selector value must be string"):
        vt({"label_selector": {"k": 3}})
    with pytest.raises(ValueError, match="Label selector key type must be string"):
        vt({"label_selector": {3: "x"}})


def test_label_selector_values_rayc_cannot_read():
    with pytest.raises(ValueError, match="empty label selector value"):
        vt({"label_selector": {"k": ""}})
    with pytest.raises(ValueError, match="write '!in\\(a,b\\)' instead"):
        vt({"label_selector": {"k": "!(a,b)"}})


# ---- refused options -----------------------------------------------------------------------

REFUSED_TASK = [
    ({"memory": 1024}, "memory"),
    ({"runtime_env": {"env_vars": {"A": "1"}}}, "runtime_env"),
    ({"max_calls": 1}, "max_calls"),
    ({"fallback_strategy": [{"label_selector": {"a": "b"}}]}, "fallback_strategy"),
    ({"_metadata": {"a": "b"}}, "_metadata"),
    ({"_labels": {"a": "b"}}, "_labels"),
    ({"_generator_backpressure_num_objects": 5}, "_generator_backpressure_num_objects"),
]
REFUSED_ACTOR = [
    ({"memory": 1.5}, "memory"),
    ({"object_store_memory": 100}, "object_store_memory"),
    ({"runtime_env": {"pip": ["x"]}}, "runtime_env"),
    ({"fallback_strategy": [{"label_selector": {"a": "b"}}]}, "fallback_strategy"),
    ({"_metadata": [1]}, "_metadata"),
    ({"enable_tensor_transport": True}, "enable_tensor_transport"),
    ({"_labels": {"a": "b"}}, "_labels"),
]


@pytest.mark.parametrize("options,name", REFUSED_TASK)
def test_refused_task_options(options, name):
    with pytest.raises(ValueError) as e:
        vt(options)
    assert f"rayc does not support the '{name}' option yet" in str(e.value)


@pytest.mark.parametrize("options,name", REFUSED_ACTOR)
def test_refused_actor_options(options, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError) as e:
            va(options)
    assert f"rayc does not support the '{name}' option yet" in str(e.value)


def test_off_values_of_refused_options_are_accepted():
    vt({"memory": 0, "runtime_env": {}, "max_calls": 0, "fallback_strategy": [],
        "_metadata": None, "_labels": {}, "_generator_backpressure_num_objects": -1,
        "enable_task_events": False})
    vt({"memory": None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        va({"memory": 0, "object_store_memory": 0, "runtime_env": None,
            "concurrency_groups": None,
            "enable_tensor_transport": False, "allow_out_of_order_execution": False,
            "_labels": None, "enable_task_events": True})


def test_too_many_returns_and_resources():
    with pytest.raises(ValueError, match="at most 1024 return values"):
        vt({"num_returns": 1025})
    vt({"num_returns": 1024})
    with pytest.raises(ValueError, match="at most 8 custom resources"):
        vt({"resources": {f"r{i}": 1 for i in range(9)}})


def test_max_concurrency_limits():
    va({"max_concurrency": 1000})
    with pytest.raises(ValueError, match="at most 1000 calls"):
        va({"max_concurrency": 1001})
    with pytest.raises(ValueError, match="max_concurrency must be greater than 0"):
        va({"max_concurrency": 0})
    with pytest.raises(ValueError, match="at most 1000 calls"):
        opts.actor_binding_options({"max_concurrency": 5000}, True)


def test_refused_node_affinity_flags():
    s = NodeAffinitySchedulingStrategy(NODE_HEX, soft=True, _spill_on_unavailable=True)
    with pytest.raises(ValueError, match="_spill_on_unavailable=True"):
        vt({"scheduling_strategy": s})
    s = NodeAffinitySchedulingStrategy(NODE_HEX, soft=False, _fail_on_unavailable=True)
    with pytest.raises(ValueError, match="_fail_on_unavailable=True"):
        va({"scheduling_strategy": s})


def test_refused_soft_label_constraints_fake():
    s = NodeLabelSchedulingStrategy({"a": In("x")}, soft={"b": In("y")})
    with pytest.raises(ValueError, match="soft label constraints"):
        vt({"scheduling_strategy": s})
    s = NodeLabelSchedulingStrategy({"a": Exists()})
    with pytest.raises(ValueError, match="Exists/DoesNotExist"):
        tb({"scheduling_strategy": s})


@needs_ss
def test_refused_with_real_strategy_classes():
    s = ss.NodeLabelSchedulingStrategy({"a": ss.In("x")}, soft={"b": ss.In("y")})
    with pytest.raises(ValueError, match="soft label constraints"):
        va({"scheduling_strategy": s})
    s = ss.NodeAffinitySchedulingStrategy(NODE_HEX, soft=True, _spill_on_unavailable=True)
    with pytest.raises(ValueError, match="_spill_on_unavailable"):
        vt({"scheduling_strategy": s})


# ---- defaults ------------------------------------------------------------------------------


def test_task_defaults(monkeypatch):
    monkeypatch.delenv("RAY_TASK_MAX_RETRIES", raising=False)
    binding, retry = opts.task_binding_options({})
    assert binding["num_cpus"] == 1.0
    assert binding["max_retries"] == 3
    assert binding["retry_exceptions"] == 0
    assert binding["strategy"] == 0
    assert retry == (3, False)
    for key in ("num_gpus", "resources", "placement_group", "node_id", "num_returns", "name"):
        assert binding.get(key) is None
    monkeypatch.setenv("RAY_TASK_MAX_RETRIES", "7")
    assert opts.task_binding_options({})[1] == (7, False)
    assert opts.task_binding_options({"max_retries": 0})[1] == (0, False)


def test_task_binding_keys():
    allowed = {"num_cpus", "num_gpus", "gpu_memory", "resources", "accelerator_type",
               "label_selector", "strategy", "node_id", "soft", "max_retries",
               "retry_exceptions", "num_returns", "name", "placement_group",
               "bundle_index", "capture_child_tasks"}
    binding = tb({"num_cpus": 2, "num_gpus": 0.5, "_rayc_gpu_memory": 1 << 30,
                  "resources": {"x": 1}, "accelerator_type": "A100", "name": "f",
                  "num_returns": 3, "max_retries": -1, "retry_exceptions": True,
                  "label_selector": {"a": "b"}, "enable_task_events": False})
    assert set(binding) <= allowed
    assert binding == {"num_cpus": 2.0, "num_gpus": 0.5, "gpu_memory": 1 << 30,
                       "resources": {"x": 1.0}, "accelerator_type": "A100", "name": "f",
                       "num_returns": 3, "max_retries": -1, "retry_exceptions": 0,
                       "label_selector": "a: b", "strategy": 0}
    assert isinstance(binding["resources"]["x"], float)


def test_num_returns_binding():
    assert tb({"num_returns": 0})["num_returns"] == 1
    assert tb({"num_returns": 1})["num_returns"] == 1
    assert tb({"num_returns": "streaming"})["num_returns"] == "streaming"
    assert tb({"num_returns": "dynamic"})["num_returns"] == "dynamic"
    assert tb({"num_returns": None}).get("num_returns") is None


def test_actor_defaults():
    sync = opts.actor_binding_options({}, is_async=False)
    assert sync["max_concurrency"] == 1
    assert opts.actor_binding_options({}, is_async=True)["max_concurrency"] == 1000
    assert "num_cpus" not in sync  # Ray: 1 CPU to schedule, 0 while running
    assert sync["max_restarts"] == 0 and sync["max_task_retries"] == 0
    assert sync["detached"] == 0 and sync["get_if_exists"] == 0
    assert "max_retries" not in sync and "num_returns" not in sync
    assert opts.actor_binding_options({"max_concurrency": 8}, False)["max_concurrency"] == 8


def test_actor_num_cpus_rule():
    assert opts.actor_binding_options({"num_cpus": 2}, False)["num_cpus"] == 2.0
    assert opts.actor_binding_options({"num_cpus": 0}, False)["num_cpus"] == 0.0
    # Ray: once other resources are named, 1 CPU is held for the actor's life.
    assert opts.actor_binding_options({"num_gpus": 1}, False)["num_cpus"] == 1.0
    assert opts.actor_binding_options({"resources": {"x": 1}}, False)["num_cpus"] == 1.0
    assert opts.actor_binding_options({"accelerator_type": "A100"}, False)["num_cpus"] == 1.0
    assert "num_cpus" not in opts.actor_binding_options({"resources": {}}, False)


def test_actor_binding_fields():
    b = opts.actor_binding_options(
        {"name": "a", "namespace": "ns", "get_if_exists": True, "lifetime": "detached",
         "max_restarts": -1, "max_task_retries": 2, "num_gpus": 1}, False)
    assert (b["name"], b["namespace"], b["get_if_exists"], b["detached"]) == ("a", "ns", 1, 1)
    assert (b["max_restarts"], b["max_task_retries"], b["num_gpus"]) == (-1, 2, 1.0)
    assert opts.actor_binding_options({"lifetime": "non_detached"}, False)["detached"] == 0
    with pytest.raises(ValueError, match="Actor name cannot be an empty string."):
        opts.actor_binding_options({"name": ""}, False)
    with pytest.raises(ValueError, match='"" is not a valid namespace'):
        opts.actor_binding_options({"namespace": ""}, False)


def test_actor_out_of_order_rules():
    with pytest.raises(ValueError, match="If you're using async actors, Ray can't execute actor tasks in order"):
        opts.actor_binding_options({"allow_out_of_order_execution": False}, True)
    with pytest.raises(ValueError, match="If you're using multi-threaded actors"):
        opts.actor_binding_options({"allow_out_of_order_execution": False, "max_concurrency": 4}, False)
    with pytest.raises(ValueError, match="rayc does not support the 'allow_out_of_order_execution' option"):
        opts.actor_binding_options({"allow_out_of_order_execution": True}, False)
    opts.actor_binding_options({"allow_out_of_order_execution": True, "max_concurrency": 4}, False)
    opts.actor_binding_options({"allow_out_of_order_execution": True}, True)
    opts.actor_binding_options({"allow_out_of_order_execution": False}, False)


# ---- scheduling strategies -----------------------------------------------------------------


def test_string_strategies():
    assert tb({"scheduling_strategy": None})["strategy"] == 0
    assert tb({"scheduling_strategy": "DEFAULT"})["strategy"] == 0
    assert tb({"scheduling_strategy": "SPREAD"})["strategy"] == 1
    assert tb({"scheduling_strategy": "rayc:cost"})["strategy"] == 3
    assert opts.actor_binding_options({"scheduling_strategy": "SPREAD"}, False)["strategy"] == 1
    vt({"scheduling_strategy": "rayc:cost"})
    with pytest.raises(ValueError, match=re.escape(
            'Invalid scheduling_strategy value PACK. Valid values are ["DEFAULT" | "SPREAD"')):
        vt({"scheduling_strategy": "PACK"})
    with pytest.raises(ValueError, match="Invalid scheduling_strategy value"):
        tb({"scheduling_strategy": "spread"})


def test_node_affinity_fake():
    b = tb({"scheduling_strategy": NodeAffinitySchedulingStrategy(NODE_HEX, soft=True)})
    assert (b["strategy"], b["node_id"], b["soft"]) == (2, bytes.fromhex(NODE_HEX), 1)
    b = opts.actor_binding_options(
        {"scheduling_strategy": NodeAffinitySchedulingStrategy(NODE_HEX, soft=False)}, False)
    assert (b["strategy"], len(b["node_id"]), b["soft"]) == (2, 28, 0)
    with pytest.raises(ValueError, match="Invalid node_id 'abcd'"):
        tb({"scheduling_strategy": NodeAffinitySchedulingStrategy("abcd", soft=False)})
    with pytest.raises(ValueError, match="Invalid node_id"):
        vt({"scheduling_strategy": NodeAffinitySchedulingStrategy("zz" * 28, soft=False)})


@needs_ss
def test_node_affinity_real():
    s = ss.NodeAffinitySchedulingStrategy(NODE_HEX.upper(), soft=False)
    vt({"scheduling_strategy": s})
    b = tb({"scheduling_strategy": s})
    assert (b["strategy"], b["node_id"], b["soft"]) == (2, bytes.fromhex(NODE_HEX), 0)


def test_node_label_fake():
    s = NodeLabelSchedulingStrategy({"region": In("us", "eu"), "zone": NotIn("z1"), "t": In("a")})
    vt({"scheduling_strategy": s})
    b = tb({"scheduling_strategy": s, "label_selector": {"x": "y"}})
    assert b["strategy"] == 0
    assert b["label_selector"] == "x: y, region: in(us,eu), zone: !z1, t: a"


@needs_ss
def test_node_label_real():
    s = ss.NodeLabelSchedulingStrategy({"region": ss.In("us", "eu"), "zone": ss.NotIn("a", "b")})
    b = opts.actor_binding_options({"scheduling_strategy": s}, False)
    assert b["strategy"] == 0
    assert b["label_selector"] == "region: in(us,eu), zone: !in(a,b)"


def test_placement_group_strategy():
    pg = FakePG(bundles=3)
    s = PlacementGroupSchedulingStrategy(pg, 2, True)
    vt({"scheduling_strategy": s})
    b = tb({"scheduling_strategy": s})
    assert (b["strategy"], b["placement_group"], b["bundle_index"], b["capture_child_tasks"]) == \
        (0, PG_ID, 2, 1)
    b = opts.actor_binding_options({"scheduling_strategy": PlacementGroupSchedulingStrategy(pg)}, False)
    assert (b["placement_group"], b["bundle_index"], b["capture_child_tasks"]) == (PG_ID, -1, 0)


@needs_ss
def test_placement_group_strategy_real_class():
    s = ss.PlacementGroupSchedulingStrategy(FakePG(), placement_group_bundle_index=1)
    b = tb({"scheduling_strategy": s})
    assert (b["placement_group"], b["bundle_index"]) == (PG_ID, 1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_placement_group_bundle_index_checks():
    pg = FakePG(bundles=2)
    with pytest.raises(ValueError, match=re.escape(
            "placement group bundle index 2 is invalid. Valid placement group indexes: 0-2")):
        tb({"scheduling_strategy": PlacementGroupSchedulingStrategy(pg, 2)})
    with pytest.raises(ValueError, match="placement group bundle index -3 is invalid"):
        tb({"scheduling_strategy": PlacementGroupSchedulingStrategy(pg, -3)})
    msg = "If placement group is not set, the value of bundle index must be -1."
    with pytest.raises(ValueError, match=re.escape(msg)):
        tb({"placement_group_bundle_index": 0})
    with pytest.raises(ValueError, match=re.escape(msg)):
        tb({"scheduling_strategy": PlacementGroupSchedulingStrategy(None, 1)})
    with pytest.raises(ValueError, match=re.escape(msg)):
        tb({"scheduling_strategy": PlacementGroupSchedulingStrategy(FakePG(empty=True), 0)})
    b = tb({"scheduling_strategy": PlacementGroupSchedulingStrategy(None)})
    assert b["strategy"] == 0 and "placement_group" not in b


def test_placement_group_id_length():
    with pytest.raises(ValueError, match="18 bytes"):
        tb({"scheduling_strategy": PlacementGroupSchedulingStrategy(FakePG(raw=b"x" * 17))})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_deprecated_placement_group_options():
    pg = FakePG(bundles=4)
    vt({"placement_group": pg, "placement_group_bundle_index": 3,
        "placement_group_capture_child_tasks": True})
    with pytest.warns(DeprecationWarning, match="placement_group parameter is deprecated"):
        b = tb({"placement_group": pg, "placement_group_bundle_index": 3,
                "placement_group_capture_child_tasks": True})
    assert (b["placement_group"], b["bundle_index"], b["capture_child_tasks"]) == (PG_ID, 3, 1)
    # "default" and None name no group.
    for group in ("default", None):
        b = tb({"placement_group": group})
        assert "placement_group" not in b and b["strategy"] == 0
    # A strategy object overrides the deprecated index/capture options, as in Ray.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        b = tb({"scheduling_strategy": PlacementGroupSchedulingStrategy(pg, 1),
                "placement_group_bundle_index": 3})
    assert b["bundle_index"] == 1


# ---- retry ------------------------------------------------------------------------------


def test_retry_forms():
    assert opts.task_binding_options({"retry_exceptions": False})[1] == (3, False)
    assert opts.task_binding_options({"retry_exceptions": True, "max_retries": 5})[1] == (5, True)
    assert opts.task_binding_options({"retry_exceptions": [ValueError, KeyError]})[1] == \
        (3, (ValueError, KeyError))
    assert opts.task_binding_options({"retry_exceptions": (OSError,), "max_retries": -1})[1] == \
        (-1, (OSError,))
    assert opts.task_binding_options({"retry_exceptions": []})[1] == (3, False)
    binding, _ = opts.task_binding_options({"retry_exceptions": True})
    assert binding["retry_exceptions"] == 0
    with pytest.raises(ValueError, match="retry_exceptions must be either a boolean or a list of exceptions"):
        opts.task_binding_options({"retry_exceptions": [int]})


# ---- rayc-only extras ----------------------------------------------------------------------


def test_rayc_gpu_memory():
    vt({"_rayc_gpu_memory": 0})
    va({"_rayc_gpu_memory": 16 << 30, "num_gpus": 1})
    b = opts.actor_binding_options({"_rayc_gpu_memory": 16 << 30, "num_gpus": 1}, False)
    assert b["gpu_memory"] == 16 << 30
    assert "gpu_memory" not in tb({"_rayc_gpu_memory": 0})
    with pytest.raises(ValueError, match="'_rayc_gpu_memory' only accepts None, 0 or a positive integer"):
        vt({"_rayc_gpu_memory": -1})
    with pytest.raises(ValueError, match="'_rayc_gpu_memory' only accepts"):
        vt({"_rayc_gpu_memory": True})
    with pytest.raises(TypeError, match="keyword '_rayc_gpu_memory'"):
        vt({"_rayc_gpu_memory": 1.5})
    with pytest.raises(ValueError, match="needs num_gpus > 0"):
        tb({"_rayc_gpu_memory": 1 << 30})


def test_rayc_cost_strategy():
    va({"scheduling_strategy": "rayc:cost"})
    assert opts.actor_binding_options({"scheduling_strategy": "rayc:cost"}, False)["strategy"] == 3
