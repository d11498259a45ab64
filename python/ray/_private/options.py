"""Checks the options of tasks and actors and turns them into rayc binding options.

``validate_task_options`` / ``validate_actor_options`` check what users give to
``@ray.remote(...)`` and ``.options(...)`` with Ray 2.53's rules and error texts
(TypeError for a wrong type, ValueError for a wrong value or an unknown keyword).
``task_binding_options`` / ``actor_binding_options`` turn the merged options (the
decorator's overlaid by ``.options()``) into the dict that ``ray._raylet`` takes.

This module imports neither ``ray`` nor ``ray._raylet`` at import time, so it works
before the C extension is built. Strategy and placement-group objects are recognised
by their class names and attributes (duck typing).

Options rayc honours
    num_cpus, num_gpus (fractions allowed), resources, accelerator_type,
    label_selector, scheduling_strategy ("DEFAULT", "SPREAD",
    PlacementGroupSchedulingStrategy, NodeAffinitySchedulingStrategy,
    NodeLabelSchedulingStrategy with hard conditions), the deprecated
    placement_group / placement_group_bundle_index /
    placement_group_capture_child_tasks, name, num_returns (int, "dynamic",
    "streaming"), max_retries, retry_exceptions; for actors also namespace,
    get_if_exists, lifetime, max_restarts, max_task_retries, max_pending_calls (the
    handle's unfinished calls), max_concurrency
    (at most 1000 in rayc), allow_out_of_order_execution (only where calls already
    run out of order: async actors or max_concurrency > 1).

Options accepted and ignored (they change nothing that can be observed in rayc)
    enable_task_events.
    Also accepted: the values that mean "off" of the refused options below
    (memory=0, object_store_memory=0 on actors, runtime_env={} , max_calls=0,
    concurrency_groups=None/empty (groups themselves work on async actors),
    fallback_strategy=None/[], _metadata=None, enable_tensor_transport=False,
    allow_out_of_order_execution=False, _labels=None/{},
    _generator_backpressure_num_objects=-1).

Options refused with a ValueError (rayc cannot honour them yet)
    memory, object_store_memory, runtime_env on a task or actor (job-wide
    env_vars go through ray.init), max_calls, concurrency_groups on actors that are not
    async,
    fallback_strategy, _metadata (a Ray Client option),
    enable_tensor_transport, allow_out_of_order_execution=True on an actor that
    runs one call at a time, _labels, soft conditions of
    NodeLabelSchedulingStrategy, Exists/DoesNotExist label conditions,
    NodeAffinitySchedulingStrategy with _spill_on_unavailable or
    _fail_on_unavailable, _generator_backpressure_num_objects, num_returns above
    1024, more than 8 custom resources, label selector values rayc cannot read
    (an empty value, a value list without "in").

rayc-only extras (names Ray does not use)
    ``_rayc_gpu_memory=<bytes>``: each GPU given to the task or actor must have at
        least this much memory (int >= 0; needs num_gpus > 0).
    ``scheduling_strategy="rayc:cost"``: run on the cheapest feasible node (by
        price per hour).

Known difference: inside a placement group that captures child tasks, rayc's core
puts a child that names no group and uses the default strategy into that group; an
explicit scheduling_strategy="DEFAULT" or placement_group=None cannot opt out there.
"""

import os
import re
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

# Values of ray._raylet.STRATEGY_* (kept here: the extension may not be built).
STRATEGY_DEFAULT = 0
STRATEGY_SPREAD = 1
STRATEGY_NODE_AFFINITY = 2
STRATEGY_COST = 3

COST_STRATEGY_NAME = "rayc:cost"

NODE_ID_SIZE = 28
PLACEMENT_GROUP_ID_SIZE = 18

DEFAULT_TASK_MAX_RETRIES = 3
DEFAULT_MAX_CONCURRENCY_ASYNC = 1000
DEFAULT_MAX_CONCURRENCY_THREADED = 1
MAX_CONCURRENCY_LIMIT = 1000  # the C core's cap
MAX_NUM_RETURNS = 1024  # the C core's cap
MAX_CUSTOM_RESOURCES = 8  # RAYC_MAX_TASK_RESOURCES

_RESOURCE_UNIT_SCALING = 10000  # Ray keeps resource amounts to 1/10000


# ---- type and value checks, in Ray's words ---------------------------------------------


class _ClassByName:
    """A class named in a type constraint without importing it.

    It matches any object with a class of that name in its MRO, and prints like the
    class itself so that error texts read as Ray's.
    """

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name

    def __repr__(self):
        return f"<class '{self.module}.{self.name}'>"

    def matches(self, value: Any) -> bool:
        return any(c.__name__ == self.name for c in type(value).__mro__)


_PG_CLASS = _ClassByName("ray.util.placement_group", "PlacementGroup")
_PG_STRATEGY = _ClassByName(
    "ray.util.scheduling_strategies", "PlacementGroupSchedulingStrategy"
)
_AFFINITY_STRATEGY = _ClassByName(
    "ray.util.scheduling_strategies", "NodeAffinitySchedulingStrategy"
)
_LABEL_STRATEGY = _ClassByName(
    "ray.util.scheduling_strategies", "NodeLabelSchedulingStrategy"
)

_NONE = type(None)


def _is_placement_group(value: Any) -> bool:
    if _PG_CLASS.matches(value):
        return True
    return callable(getattr(getattr(value, "id", None), "binary", None))


def _matches(value: Any, constraint) -> bool:
    members = constraint if isinstance(constraint, tuple) else (constraint,)
    for member in members:
        if member is _PG_CLASS:
            if _is_placement_group(value):
                return True
        elif isinstance(member, _ClassByName):
            if member.matches(value):
                return True
        elif isinstance(value, member):
            return True
    return False


class _Check:
    """How one option keyword is checked: its allowed types and a value test.

    The value test returns an error text (raised as ValueError) or None.
    """

    def __init__(
        self,
        types,
        value_test: Optional[Callable[[Any], Optional[str]]] = None,
        default: Any = None,
    ):
        self.types = types
        self.value_test = value_test
        self.default = default

    def check(self, keyword: str, value: Any) -> None:
        if self.types is not None and not _matches(value, self.types):
            raise TypeError(
                f"The type of keyword '{keyword}' must be {self.types}, "
                f"but received type {type(value)}"
            )
        if self.value_test is not None:
            message = self.value_test(value)
            if message:
                raise ValueError(message)


def _count(name: str, infinite: bool = True, default: Any = None) -> _Check:
    """A whole-number option: None, 0, a positive int and, if infinite, -1."""
    if infinite:
        return _Check(
            (int, _NONE),
            lambda v: None
            if v is None or v >= -1
            else f"The keyword '{name}' only accepts None, 0, -1 or a positive "
            "integer, where -1 represents infinity.",
            default,
        )
    return _Check(
        (int, _NONE),
        lambda v: None
        if v is None or v >= 0
        else f"The keyword '{name}' only accepts None, 0 or a positive integer.",
        default,
    )


def _quantity_error(name: str, amount) -> Optional[str]:
    if amount < 0:
        return f"The quantity of resource {name} cannot be negative"
    if (
        isinstance(amount, float)
        and amount != 0.0
        and int(amount * _RESOURCE_UNIT_SCALING) == 0
    ):
        return (
            f"The precision of the fractional quantity of resource {name} "
            "cannot go beyond 0.0001"
        )
    return None


def _resource(name: str, default: Any = None) -> _Check:
    return _Check(
        (float, int, _NONE),
        lambda v: None if v is None else _quantity_error(name, v),
        default,
    )


def _resources_error(resources) -> Optional[str]:
    if resources is None:
        return None
    if "CPU" in resources or "GPU" in resources:
        return (
            "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' "
            "in 'resources' keyword"
        )
    if "memory" in resources or "object_store_memory" in resources:
        return (
            "The resources dictionary must not contain the key 'memory' or "
            "'object_store_memory'"
        )
    if "bundle" in resources:
        return (
            "The resource should not include `bundle` which is reserved for Ray. "
            f"resources: {resources}"
        )
    for name, amount in resources.items():
        if not isinstance(name, str):
            raise TypeError(
                f"Resource names in 'resources' must be str, got {name!r} of type "
                f"{type(name)}"
            )
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise TypeError(
                f"The quantity of resource {name} must be an int or a float, got "
                f"type {type(amount)}"
            )
        message = _quantity_error(name, amount)
        if message:
            return message
    return None


# Kubernetes-style label syntax, as Ray checks it.
_LABEL_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_LABEL_PREFIX = rf"^({_LABEL_NAME}?(\.{_LABEL_NAME}?)*)$"
_SELECTOR_VALUE = re.compile(
    rf"^!?(?:in)?\({_LABEL_NAME}(?:, ?{_LABEL_NAME})*\)$|^!?{_LABEL_NAME}$"
)
_LABEL_RULE = (
    "with an alphanumeric character ([a-z0-9A-Z]) with dashes (-), underscores (_),"
    "dots (.), and alphanumerics between."
)


def _label_key_error(key: str) -> Optional[str]:
    name = key
    if "/" in key:
        prefix, name = key.rsplit("/", 1)
        if len(prefix) > 253 or not re.fullmatch(_LABEL_PREFIX, prefix):
            return (
                f"Invalid label key prefix `{prefix}`. Prefix must be a series of DNS "
                "labels separated by dots (.), not longer than 253 characters in "
                "total."
            )
    if len(name) > 63 or not re.fullmatch(_LABEL_NAME, name):
        return (
            f"Invalid label key name `{name}`. Name must be 63 chars or less "
            f"beginning and ending {_LABEL_RULE}"
        )
    return None


def _label_selector_error(selector) -> Optional[str]:
    if selector is None:
        return None
    for key, value in selector.items():
        if not isinstance(key, str):
            return f"Label selector key type must be string, but got {type(key)}"
        if key == "":
            return "Label selector key must be a non-empty string."
        message = _label_key_error(key)
        if message:
            return message
        if not isinstance(value, str):
            return f"Label selector value must be string, but got {type(value)}"
        if value != "" and not _SELECTOR_VALUE.fullmatch(value):
            return (
                f"Invalid label selector value `{value}`. The label selector value "
                "should contain optional operators and a label value. Supported "
                "operators are: ! and {'in'}. Value must be 63 chars or less "
                f"beginning and ending {_LABEL_RULE}"
            )
    return None


def _fallback_strategy_error(fallback) -> Optional[str]:
    if fallback is None:
        return None
    for entry in fallback:
        if not isinstance(entry, dict):
            return "Each element in fallback_strategy must be a dictionary."
        if not entry:
            return "Empty dictionary found in `fallback_strategy`."
        for option in entry:
            if option != "label_selector":
                return (
                    f"Unsupported option found: '{option}'. "
                    "Only ['label_selector'] is currently supported."
                )
        selector = entry.get("label_selector")
        if selector:
            if not isinstance(selector, dict):
                return 'The value of "label_selector" must be a dictionary.'
            message = _label_selector_error(selector)
            if message:
                return message
    return None


def _num_returns_error(value) -> Optional[str]:
    if value is None or value == "dynamic" or value == "streaming":
        return None
    if isinstance(value, int) and value >= 0:
        return None
    return (
        "Default None. When None is passed, The default value is 1 for a task and "
        "actor task, and 'streaming' for generator tasks and generator actor tasks. "
        "The keyword 'num_returns' only accepts None, a non-negative integer, "
        "'streaming' (for generators), or 'dynamic'. 'dynamic' flag will be "
        "deprecated in the future, and it is recommended to use 'streaming' instead."
    )


def _is_exception_class(value) -> bool:
    try:
        return issubclass(value, Exception)
    except TypeError:
        return False


def _retry_exceptions_error(value) -> Optional[str]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)) and all(_is_exception_class(e) for e in value):
        return None
    return "retry_exceptions must be either a boolean or a list of exceptions"


def _rayc_gpu_memory_error(value) -> Optional[str]:
    if value is None or (not isinstance(value, bool) and value >= 0):
        return None
    return "The keyword '_rayc_gpu_memory' only accepts None, 0 or a positive integer."


# The tables: keyword -> check. Their order is the order Ray lists valid keywords in.
_COMMON: Dict[str, _Check] = {
    "label_selector": _Check((dict, _NONE), _label_selector_error),
    "fallback_strategy": _Check((list, _NONE), _fallback_strategy_error),
    "accelerator_type": _Check((str, _NONE)),
    "memory": _resource("memory"),
    "name": _Check((str, _NONE)),
    "num_cpus": _resource("num_cpus"),
    "num_gpus": _resource("num_gpus"),
    "object_store_memory": _count("object_store_memory", infinite=False),
    "placement_group": _Check((_NONE, str, _PG_CLASS), default="default"),
    "placement_group_bundle_index": _Check(int, default=-1),
    "placement_group_capture_child_tasks": _Check((bool, _NONE)),
    "resources": _Check((dict, _NONE), _resources_error),
    "runtime_env": _Check((dict, _NONE)),
    "scheduling_strategy": _Check(
        (_NONE, str, _PG_STRATEGY, _AFFINITY_STRATEGY, _LABEL_STRATEGY)
    ),
    "enable_task_events": _Check(bool, default=True),
    "_labels": _Check((dict, _NONE)),
}

_TASK_ONLY: Dict[str, _Check] = {
    "max_calls": _count("max_calls", infinite=False, default=0),
    "max_retries": _count("max_retries", default=DEFAULT_TASK_MAX_RETRIES),
    "num_cpus": _resource("num_cpus", default=1),
    "num_returns": _Check((int, str, _NONE), _num_returns_error),
    "object_store_memory": _Check(
        (int, _NONE),
        lambda v: None
        if v is None
        else "Setting 'object_store_memory' is not implemented for tasks",
    ),
    "retry_exceptions": _Check(
        (bool, list, tuple), _retry_exceptions_error, default=False
    ),
    "_generator_backpressure_num_objects": _Check(
        (int, _NONE),
        lambda v: None
        if v != 0
        else "_generator_backpressure_num_objects=0 is not allowed. Use a value > 0. "
        "If the value is equal to 1, the behavior is identical to Python generator "
        "(generator 1 object whenever `next` is called). Use -1 to disable this "
        "feature. ",
    ),
}

_ACTOR_ONLY: Dict[str, _Check] = {
    "concurrency_groups": _Check((list, dict, _NONE)),
    "enable_tensor_transport": _Check((bool, _NONE)),
    "lifetime": _Check(
        (str, _NONE),
        lambda v: None
        if v in (None, "detached", "non_detached")
        else "actor `lifetime` argument must be one of 'detached', 'non_detached' "
        "and 'None'.",
    ),
    "max_concurrency": _count("max_concurrency", infinite=False),
    "max_restarts": _count("max_restarts", default=0),
    "max_task_retries": _count("max_task_retries", default=0),
    "max_pending_calls": _count("max_pending_calls", default=-1),
    "namespace": _Check((str, _NONE)),
    "get_if_exists": _Check(bool, default=False),
    "allow_out_of_order_execution": _Check((bool, _NONE)),
}

# rayc's own options, after Ray's.
_RAYC_EXTRAS: Dict[str, _Check] = {
    "_rayc_gpu_memory": _Check((int, _NONE), _rayc_gpu_memory_error),
}

TASK_OPTIONS: Dict[str, _Check] = {**_COMMON, **_TASK_ONLY, **_RAYC_EXTRAS}
ACTOR_OPTIONS: Dict[str, _Check] = {**_COMMON, **_ACTOR_ONLY, **_RAYC_EXTRAS}


# ---- what rayc cannot honour -------------------------------------------------------------


def _unsupported(option: str, why_and_instead: str) -> ValueError:
    return ValueError(f"rayc does not support the '{option}' option yet: {why_and_instead}")


# Keywords outside Ray's tables that get rayc's refusal instead of "Invalid option".
_REFUSED_EXTRA_KEYWORDS = {
    "_metadata": "it is a Ray Client option and rayc has no Ray Client; remove it.",
}


def _refuse_common(options: Dict[str, Any], actor: bool) -> None:
    what = "actor" if actor else "task"
    memory = options.get("memory")
    if memory not in (None, 0):
        raise _unsupported(
            "memory",
            f"rayc does not reserve heap memory per {what}. Remove it, or declare a "
            "custom resource on the nodes (e.g. resources={'mem_gb': 4}) and request "
            "that instead.",
        )
    if actor and options.get("object_store_memory") not in (None, 0):
        raise _unsupported(
            "object_store_memory",
            "rayc does not reserve object store memory for actors. Remove it.",
        )
    runtime_env = options.get("runtime_env")
    if runtime_env is not None and runtime_env != {}:
        raise _unsupported(
            "runtime_env",
            f"rayc has no per-{what} runtime environments. Remove it; set "
            "environment variables for the whole job with "
            "ray.init(runtime_env={'env_vars': {...}}) instead.",
        )
    fallback = options.get("fallback_strategy")
    if fallback:
        raise _unsupported(
            "fallback_strategy",
            "rayc has no fallback scheduling. Remove it and put the labels the node "
            "must have in label_selector.",
        )
    labels = options.get("_labels")
    if labels:
        raise _unsupported(
            "_labels", f"rayc does not attach labels to a {what}. Remove it."
        )
    for keyword, why in _REFUSED_EXTRA_KEYWORDS.items():
        if options.get(keyword) is not None:
            raise _unsupported(keyword, why)
    resources = options.get("resources")
    if resources and len(resources) > MAX_CUSTOM_RESOURCES:
        raise ValueError(
            f"rayc takes at most {MAX_CUSTOM_RESOURCES} custom resources per task or "
            f"actor, got {len(resources)} in 'resources'; merge some of them."
        )
    selector = options.get("label_selector")
    if selector:
        _label_selector_text(selector)  # raises for values rayc cannot read
    strategy = options.get("scheduling_strategy")
    if strategy is not None:
        _check_strategy_supported(strategy)


def _refuse_task(options: Dict[str, Any]) -> None:
    _refuse_common(options, actor=False)
    if options.get("max_calls") not in (None, 0):
        raise _unsupported(
            "max_calls",
            "rayc does not restart a worker after a number of calls. Remove it, and "
            "release what the function holds (e.g. GPU memory) before it returns.",
        )
    backpressure = options.get("_generator_backpressure_num_objects")
    if backpressure not in (None, -1):
        raise _unsupported(
            "_generator_backpressure_num_objects",
            "rayc's generators run without backpressure. Remove it.",
        )
    num_returns = options.get("num_returns")
    if (
        isinstance(num_returns, int)
        and not isinstance(num_returns, bool)
        and num_returns > MAX_NUM_RETURNS
    ):
        raise ValueError(
            f"rayc supports at most {MAX_NUM_RETURNS} return values per task, got "
            f"num_returns={num_returns}; return a list or use a generator "
            "(num_returns='streaming') instead."
        )


def _refuse_actor(options: Dict[str, Any]) -> None:
    _refuse_common(options, actor=True)
    groups = options.get("concurrency_groups")
    if groups:
        names = list(groups) if isinstance(groups, dict) else [getattr(g, "name", None) for g in groups]
        sizes = list(groups.values()) if isinstance(groups, dict) else [getattr(g, "max_concurrency", None) for g in groups]
        if not all(isinstance(n, str) and n for n in names) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
            raise ValueError("concurrency_groups must map group names to a max_concurrency of at least 1, "
                             f"e.g. {{'io': 2, 'compute': 4}}; got {groups!r}")
    if options.get("enable_tensor_transport"):
        raise _unsupported(
            "enable_tensor_transport",
            "rayc has no out-of-band tensor transport. Remove it; tensors then go "
            "through the object store.",
        )
    _check_max_concurrency(options.get("max_concurrency"))


def _check_max_concurrency(value) -> None:
    if value is None:
        return
    if value < 1:
        raise ValueError("max_concurrency must be greater than 0")
    if value > MAX_CONCURRENCY_LIMIT:
        raise ValueError(
            f"rayc runs at most {MAX_CONCURRENCY_LIMIT} calls of an actor at once, got "
            f"max_concurrency={value}; use {MAX_CONCURRENCY_LIMIT} or less, or "
            "several actors."
        )


# ---- keyword checks ------------------------------------------------------------------------


def _check_keywords(options: Dict[str, Any], table: Dict[str, _Check], what: str):
    for keyword, value in options.items():
        check = table.get(keyword)
        if check is None:
            if keyword in _REFUSED_EXTRA_KEYWORDS:
                if value is None:
                    continue
                raise _unsupported(keyword, _REFUSED_EXTRA_KEYWORDS[keyword])
            raise ValueError(
                f"Invalid option keyword {keyword} for {what}. "
                f"Valid ones are {list(table)}."
            )
        check.check(keyword, value)


def _check_deprecated_placement_group(options: Dict[str, Any]) -> None:
    group = options.get("placement_group", "default")
    if group not in ("default", None) and options.get("scheduling_strategy") is not None:
        raise ValueError(
            "Placement groups should be specified via the scheduling_strategy option. "
            "The placement_group option is deprecated."
        )


def _check_placement_group_value(options: Dict[str, Any]) -> None:
    group = options.get("placement_group", "default")
    if isinstance(group, str) and group != "default":
        raise ValueError(
            f"placement_group must be a PlacementGroup, None or 'default', got "
            f"'{group}'; prefer scheduling_strategy=PlacementGroupSchedulingStrategy(pg)."
        )


def validate_task_options(options: Dict[str, Any], in_options: bool) -> None:
    """Checks the options of a remote function as Ray does.

    Args:
        options: The keywords given to ``@ray.remote(...)`` or ``.options(...)``.
        in_options: True when checking ``.options(...)``.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An unknown keyword, a bad value, or an option rayc cannot honour.
    """
    _check_keywords(options, TASK_OPTIONS, "remote functions")
    if in_options and "max_calls" in options:
        raise ValueError("Setting 'max_calls' is not supported in '.options()'.")
    _check_deprecated_placement_group(options)
    _check_placement_group_value(options)
    _refuse_task(options)


def validate_actor_options(options: Dict[str, Any], in_options: bool) -> None:
    """Checks the options of an actor class as Ray does.

    Args:
        options: The keywords given to ``@ray.remote(...)`` or ``.options(...)``.
        in_options: True when checking ``.options(...)``.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An unknown keyword, a bad value, or an option rayc cannot honour.
    """
    _check_keywords(options, ACTOR_OPTIONS, "actors")
    if in_options and "concurrency_groups" in options:
        raise ValueError(
            "Setting 'concurrency_groups' is not supported in '.options()'."
        )
    if options.get("get_if_exists") and not options.get("name"):
        raise ValueError("The actor name must be specified to use `get_if_exists`.")
    if "object_store_memory" in options:
        warnings.warn(
            "Setting 'object_store_memory' for actors is deprecated since it doesn't "
            "actually reserve the required object store memory.",
            DeprecationWarning,
            stacklevel=2,
        )
    _check_deprecated_placement_group(options)
    _check_placement_group_value(options)
    _refuse_actor(options)


# ---- label selectors -----------------------------------------------------------------------


def _label_selector_text(selector: Dict[str, str]) -> str:
    """Ray's ``{key: expression}`` selector in rayc's text syntax.

    ``{"region": "us-west", "zone": "!z1", "gpu": "in(a,b)", "x": "!in(a,b)"}``
    becomes ``"region: us-west, zone: !z1, gpu: in(a,b), x: !in(a,b)"``.
    """
    message = _label_selector_error(selector)
    if message:
        raise ValueError(message)
    clauses = []
    for key, value in selector.items():
        if value == "":
            raise ValueError(
                f"rayc does not support an empty label selector value (key '{key}') "
                "yet: give the value the node's label must have, or drop the key."
            )
        negation = "!" if value.startswith("!") else ""
        body = value[1:] if negation else value
        if body.startswith("("):
            raise ValueError(
                f"Label selector value '{value}' for key '{key}' has a value list "
                "without an operator, which rayc cannot read: write "
                f"'{negation}in{body}' instead."
            )
        if body.startswith("in(") and body.endswith(")"):
            items = [item.strip() for item in body[3:-1].split(",")]
            if not all(items):
                raise ValueError(
                    f"No values provided for Label Selector '{negation}in' operator "
                    f"on key '{key}'."
                )
            clauses.append(f"{key}: {negation}in({','.join(items)})")
        else:
            clauses.append(f"{key}: {negation}{body}")
    return ", ".join(clauses)


def _label_strategy_text(strategy) -> str:
    """The hard conditions of a NodeLabelSchedulingStrategy in rayc's syntax."""
    to_text = getattr(strategy, "_to_label_selector_text", None)
    if callable(to_text):
        return to_text()
    if getattr(strategy, "soft", None):
        raise ValueError(
            "rayc cannot honour soft label constraints yet: move the conditions of "
            "NodeLabelSchedulingStrategy's `soft` argument to `hard`, or drop them."
        )
    hard = getattr(strategy, "hard", None) or []
    pairs = hard.items() if isinstance(hard, dict) else [(e.key, e.operator) for e in hard]
    clauses = []
    for key, operator in pairs:
        op_name = type(operator).__name__
        if op_name not in ("In", "NotIn"):
            raise ValueError(
                "rayc does not support Exists/DoesNotExist label conditions yet "
                f"(key '{key}'): use In or NotIn with the expected values."
            )
        negation = "!" if op_name == "NotIn" else ""
        values = list(operator.values)
        if len(values) == 1:
            clauses.append(f"{key}: {negation}{values[0]}")
        else:
            clauses.append(f"{key}: {negation}in({','.join(values)})")
    return ", ".join(clauses)


# ---- scheduling strategies and placement groups --------------------------------------------


def _invalid_strategy(strategy) -> ValueError:
    return ValueError(
        f"Invalid scheduling_strategy value {strategy}. "
        'Valid values are ["DEFAULT" | "SPREAD" | PlacementGroupSchedulingStrategy '
        "| NodeAffinitySchedulingStrategy] (rayc also takes "
        f"NodeLabelSchedulingStrategy and '{COST_STRATEGY_NAME}', the cheapest "
        "feasible node by price per hour)."
    )


def _node_id_bytes(node_id) -> bytes:
    if isinstance(node_id, (bytes, bytearray)):
        raw = bytes(node_id)
    else:
        try:
            raw = bytes.fromhex(str(node_id))
        except ValueError:
            raw = b""
    if len(raw) != NODE_ID_SIZE:
        raise ValueError(
            f"Invalid node_id '{node_id}'. Node ID must be a valid hex string of "
            f"{NODE_ID_SIZE} bytes. To get a list of all nodes and their IDs in your "
            "cluster, use ray.nodes()."
        )
    if raw == b"\xff" * NODE_ID_SIZE:
        raise ValueError(
            f"Invalid node_id '{node_id}'. Node ID must be a valid hex string. To get "
            "a list of all nodes and their IDs in your cluster, use ray.nodes()."
        )
    return raw


def _check_strategy_supported(strategy) -> None:
    """Raises for strategies, or parts of them, that rayc cannot honour."""
    if isinstance(strategy, str):
        if strategy not in ("DEFAULT", "SPREAD", COST_STRATEGY_NAME):
            raise _invalid_strategy(strategy)
    elif _AFFINITY_STRATEGY.matches(strategy):
        if getattr(strategy, "_spill_on_unavailable", False):
            raise ValueError(
                "rayc does not support NodeAffinitySchedulingStrategy("
                "_spill_on_unavailable=True) yet: use soft=True, which runs the work "
                "elsewhere when the node is dead or can never fit it."
            )
        if getattr(strategy, "_fail_on_unavailable", False):
            raise ValueError(
                "rayc does not support NodeAffinitySchedulingStrategy("
                "_fail_on_unavailable=True) yet: use soft=False, which fails when the "
                "node is dead or can never fit the work (it waits while the node is "
                "busy)."
            )
        _node_id_bytes(strategy.node_id)
    elif _LABEL_STRATEGY.matches(strategy):
        _label_strategy_text(strategy)
    elif not _PG_STRATEGY.matches(strategy):
        raise _invalid_strategy(strategy)


def _placement_group_id(group) -> bytes:
    raw = group.id.binary()
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != PLACEMENT_GROUP_ID_SIZE:
        raise ValueError(
            f"A placement group ID is {PLACEMENT_GROUP_ID_SIZE} bytes, got {raw!r}"
        )
    return bytes(raw)


def _is_empty_group(group) -> bool:
    if group is None or group == "default":
        return True
    empty = getattr(group, "is_empty", False)
    return bool(empty() if callable(empty) else empty)


def _current_placement_group():
    """The placement group the calling task or actor runs in, if that can be known."""
    try:
        from ray.util.placement_group import get_current_placement_group
    except Exception:
        return None
    try:
        return get_current_placement_group()
    except Exception:
        return None


def _warn_deprecated(options: Dict[str, Any]) -> None:
    advice = "Use scheduling_strategy=PlacementGroupSchedulingStrategy(...) instead."
    if options.get("placement_group", "default") != "default":
        warnings.warn(
            f"placement_group parameter is deprecated. {advice}",
            DeprecationWarning,
            stacklevel=5,
        )
    if options.get("placement_group_bundle_index", -1) != -1:
        warnings.warn(
            f"placement_group_bundle_index parameter is deprecated. {advice}",
            DeprecationWarning,
            stacklevel=5,
        )
    if options.get("placement_group_capture_child_tasks"):
        warnings.warn(
            f"placement_group_capture_child_tasks parameter is deprecated. {advice}",
            DeprecationWarning,
            stacklevel=5,
        )


def _scheduling(options: Dict[str, Any]) -> Dict[str, Any]:
    """strategy, node_id, soft, placement_group, bundle_index, capture_child_tasks and
    the label selector (from label_selector and NodeLabelSchedulingStrategy)."""
    out: Dict[str, Any] = {}
    selector_parts = []
    selector = options.get("label_selector")
    if selector:
        selector_parts.append(_label_selector_text(selector))

    _check_deprecated_placement_group(options)
    _check_placement_group_value(options)
    strategy = options.get("scheduling_strategy")
    if strategy is not None:
        _check_strategy_supported(strategy)

    if strategy is None or _PG_STRATEGY.matches(strategy):
        if strategy is None:
            _warn_deprecated(options)
            group = options.get("placement_group", "default")
            index = options.get("placement_group_bundle_index", -1)
            capture = options.get("placement_group_capture_child_tasks")
        else:
            group = strategy.placement_group
            index = strategy.placement_group_bundle_index
            capture = strategy.placement_group_capture_child_tasks
        if index is None:
            index = -1
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(
                "The type of keyword 'placement_group_bundle_index' must be "
                f"{int}, but received type {type(index)}"
            )
        if group == "default" and capture:
            # Ray: capturing with no group named means the caller's own group.
            group = _current_placement_group()
        if _is_empty_group(group):
            if index != -1:
                raise ValueError(
                    "If placement group is not set, the value of bundle index must be "
                    "-1."
                )
            out["strategy"] = STRATEGY_DEFAULT
        else:
            if index != -1:
                count = group.bundle_count
                if index >= count or index < -1:
                    raise ValueError(
                        f"placement group bundle index {index} is invalid. Valid "
                        f"placement group indexes: 0-{count}"
                    )
            out["strategy"] = STRATEGY_DEFAULT
            out["placement_group"] = _placement_group_id(group)
            out["bundle_index"] = index
            out["capture_child_tasks"] = 1 if capture else 0
    else:
        _warn_deprecated(options)
        if isinstance(strategy, str):
            out["strategy"] = {
                "DEFAULT": STRATEGY_DEFAULT,
                "SPREAD": STRATEGY_SPREAD,
                COST_STRATEGY_NAME: STRATEGY_COST,
            }[strategy]
        elif _AFFINITY_STRATEGY.matches(strategy):
            out["strategy"] = STRATEGY_NODE_AFFINITY
            out["node_id"] = _node_id_bytes(strategy.node_id)
            out["soft"] = 1 if strategy.soft else 0
        else:  # NodeLabelSchedulingStrategy
            out["strategy"] = STRATEGY_DEFAULT
            text = _label_strategy_text(strategy)
            if text:
                selector_parts.append(text)

    if selector_parts:
        out["label_selector"] = ", ".join(selector_parts)
    return out


# ---- binding options -----------------------------------------------------------------------


def _resources_and_scheduling(options: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    num_gpus = options.get("num_gpus")
    if num_gpus is not None:
        out["num_gpus"] = float(num_gpus)
    gpu_memory = options.get("_rayc_gpu_memory")
    if gpu_memory:
        if not num_gpus:
            raise ValueError(
                "_rayc_gpu_memory sets the memory each GPU must have, so it needs "
                "num_gpus > 0; add num_gpus or remove _rayc_gpu_memory."
            )
        out["gpu_memory"] = int(gpu_memory)
    resources = options.get("resources")
    if resources:
        message = _resources_error(resources)
        if message:
            raise ValueError(message)
        out["resources"] = {name: float(amount) for name, amount in resources.items()}
    accelerator = options.get("accelerator_type")
    if accelerator is not None:
        out["accelerator_type"] = accelerator
    out.update(_scheduling(options))
    return out


def _default_max_retries() -> int:
    return int(os.environ.get("RAY_TASK_MAX_RETRIES", DEFAULT_TASK_MAX_RETRIES))


def _retry_exceptions_value(value):
    """False, True, or a tuple of the exception classes to retry on."""
    if value is None or isinstance(value, bool):
        return bool(value)
    message = _retry_exceptions_error(value)
    if message:
        raise ValueError(message)
    classes = tuple(value)
    return classes if classes else False


def task_binding_options(options: Dict[str, Any]) -> Tuple[Dict[str, Any], tuple]:
    """The binding's options for a task, and how application errors are retried.

    Args:
        options: Checked options, the decorator's overlaid by ``.options()``.

    Returns:
        ``(binding, (max_retries, retry_exceptions))``: ``binding`` is the dict for
        ``ray._raylet``; ``retry_exceptions`` is False, True or a tuple of exception
        classes, for the Python worker (the binding itself always gets
        ``retry_exceptions=0``). num_returns None stays None; 0 becomes 1 (the
        caller drops the ref); "dynamic"/"streaming" are passed through.
    """
    out = _resources_and_scheduling(options)
    num_cpus = options.get("num_cpus")
    out["num_cpus"] = float(1 if num_cpus is None else num_cpus)
    max_retries = options.get("max_retries")
    if max_retries is None:
        max_retries = _default_max_retries()
    out["max_retries"] = int(max_retries)
    out["retry_exceptions"] = 0
    num_returns = options.get("num_returns")
    if isinstance(num_returns, str):
        if num_returns not in ("dynamic", "streaming"):
            raise ValueError(_num_returns_error(num_returns))
        out["num_returns"] = num_returns
    elif num_returns is not None:
        out["num_returns"] = max(1, int(num_returns))
    name = options.get("name")
    if name is not None:
        out["name"] = name
    retry = (int(max_retries), _retry_exceptions_value(options.get("retry_exceptions")))
    return out, retry


def actor_binding_options(options: Dict[str, Any], is_async: bool) -> Dict[str, Any]:
    """The binding's options to create an actor.

    Args:
        options: Checked options, the decorator's overlaid by ``.options()``.
        is_async: Whether the class has async methods (Ray's default
            max_concurrency is then 1000 instead of 1).
    """
    out = _resources_and_scheduling(options)

    # Ray: with no resources named, 1 CPU to place the actor and none held while
    # it runs (the C default); with other resources named, 1 CPU held for its life.
    num_cpus = options.get("num_cpus")
    if num_cpus is not None:
        out["num_cpus"] = float(num_cpus)
    elif (
        options.get("resources")
        or options.get("num_gpus") is not None
        or options.get("accelerator_type") is not None
    ):
        out["num_cpus"] = 1.0

    name = options.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"name must be None or a string, got: '{type(name)}'.")
        if name == "":
            raise ValueError("Actor name cannot be an empty string.")
        out["name"] = name
    namespace = options.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            raise TypeError("namespace must be None or a string.")
        if namespace == "":
            raise ValueError(
                '"" is not a valid namespace. Pass None to not specify a namespace.'
            )
        out["namespace"] = namespace
    get_if_exists = bool(options.get("get_if_exists"))
    if get_if_exists and not name:
        raise ValueError("The actor name must be specified to use `get_if_exists`.")
    out["get_if_exists"] = 1 if get_if_exists else 0

    lifetime = options.get("lifetime")
    if lifetime not in (None, "detached", "non_detached"):
        raise ValueError(
            "actor `lifetime` argument must be one of 'detached', 'non_detached' and "
            "'None'."
        )
    out["detached"] = 1 if lifetime == "detached" else 0

    max_restarts = options.get("max_restarts")
    out["max_restarts"] = 0 if max_restarts is None else int(max_restarts)
    max_task_retries = options.get("max_task_retries")
    out["max_task_retries"] = 0 if max_task_retries is None else int(max_task_retries)

    max_concurrency = options.get("max_concurrency")
    if max_concurrency is None:
        max_concurrency = (
            DEFAULT_MAX_CONCURRENCY_ASYNC if is_async else DEFAULT_MAX_CONCURRENCY_THREADED
        )
    _check_max_concurrency(max_concurrency)
    out["max_concurrency"] = int(max_concurrency)
    groups = options.get("concurrency_groups")
    if groups:
        if not is_async:
            raise _unsupported(
                "concurrency_groups",
                "rayc runs concurrency groups on async actors only (each group bounds its "
                "coroutines). Make the methods async, or use max_concurrency for threads.",
            )
        out["concurrency_groups"] = (dict(groups) if isinstance(groups, dict)
                                     else {g.name: g.max_concurrency for g in groups})
    pending = options.get("max_pending_calls")
    # Unfinished calls a handle may have before more raise PendingCallsLimitExceeded; -1: any.
    out["max_pending_calls"] = -1 if pending is None else int(pending)

    out_of_order = options.get("allow_out_of_order_execution")
    if out_of_order is None:
        out_of_order = is_async or max_concurrency > 1
    if is_async and not out_of_order:
        raise ValueError(
            "If you're using async actors, Ray can't execute actor tasks in order. "
            "Set `allow_out_of_order_execution=True` to allow out-of-order execution."
        )
    if max_concurrency > 1 and not out_of_order:
        raise ValueError(
            "If you're using multi-threaded actors, Ray can't execute actor tasks in "
            "order. Set `allow_out_of_order_execution=True` to allow out-of-order "
            "execution."
        )
    if out_of_order and not is_async and max_concurrency == 1:
        raise _unsupported(
            "allow_out_of_order_execution",
            "an actor with max_concurrency=1 runs its calls one at a time in the order "
            "they were made in rayc. Remove it, or set max_concurrency > 1 (or use "
            "async methods) to let calls run out of order.",
        )
    return out
