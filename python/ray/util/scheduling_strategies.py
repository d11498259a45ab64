"""Scheduling strategies for tasks and actors, as in Ray.

Besides these classes, `scheduling_strategy` accepts None, "DEFAULT" (rayc's
hybrid policy, which also stops a placement group from being captured) and
"SPREAD" (spread over the nodes on a best-effort basis).
"""

import re
from typing import TYPE_CHECKING, Dict, Optional, Union

if TYPE_CHECKING:
    from ray.util.placement_group import PlacementGroup


class PlacementGroupSchedulingStrategy:
    """Runs the task or actor in a bundle of a placement group.

    Attributes:
        placement_group: The placement group to use.
        placement_group_bundle_index: Index of the bundle, or -1 for any bundle.
        placement_group_capture_child_tasks: Whether tasks and actors started from
            inside this one use the same placement group by default (None: False).
    """

    def __init__(
        self,
        placement_group: "PlacementGroup",
        placement_group_bundle_index: int = -1,
        placement_group_capture_child_tasks: Optional[bool] = None,
    ):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


def _is_node_id_hex(text: str) -> bool:
    """Whether `text` is the hex form of a 28-byte node ID that is not nil.

    Ray's nil ID is all 0xff bytes; rayc also treats all zero bytes as no ID.
    """
    if not re.fullmatch(r"[0-9a-fA-F]{56}", text):
        return False
    return text.lower() not in ("f" * 56, "0" * 56)


class NodeAffinitySchedulingStrategy:
    """Runs the task or actor on one given node.

    Attributes:
        node_id: Hex ID of the node.
        soft: What to do when that node is dead or can never fit the request: run
            elsewhere if True, fail if False. While the node is alive and feasible
            the work waits for it, even if that takes a long time.
    """

    def __init__(
        self,
        node_id: str,
        soft: bool,
        _spill_on_unavailable: bool = False,
        _fail_on_unavailable: bool = False,
    ):
        if not isinstance(node_id, str):
            node_id = node_id.hex()
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable
        self._validate_attributes()

    def _validate_attributes(self):
        if not _is_node_id_hex(self.node_id):
            raise ValueError(
                f"Invalid node_id '{self.node_id}'. Node ID must be a valid hex "
                "string. To get a list of all nodes and their IDs in your cluster, "
                "use ray.nodes()."
            )
        if self._spill_on_unavailable and not self.soft:
            raise ValueError(
                "_spill_on_unavailable cannot be set when soft is False. Please set "
                "soft to True to use _spill_on_unavailable."
            )
        if self._fail_on_unavailable and self.soft:
            raise ValueError(
                "_fail_on_unavailable cannot be set when soft is True. Please set "
                "soft to False to use _fail_on_unavailable."
            )


def _check_operator_values(values, operator: str) -> None:
    if not values:
        raise ValueError(
            f"The variadic parameter of the {operator} operator must be a non-empty "
            f'tuple: e.g. {operator}("value1", "value2").'
        )
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(
                f"Type of value in position {index} for the {operator} operator "
                f'must be str (e.g. {operator}("value1", "value2")) but got '
                f"{value} of type {type(value)}."
            )


class In:
    """Label condition: the node's value for the key is one of `values`."""

    def __init__(self, *values):
        _check_operator_values(values, "In")
        self.values = list(values)


class NotIn:
    """Label condition: the node lacks the key or its value is not one of `values`."""

    def __init__(self, *values):
        _check_operator_values(values, "NotIn")
        self.values = list(values)


class Exists:
    """Label condition: the node has the key."""


class DoesNotExist:
    """Label condition: the node does not have the key."""


class _LabelMatchExpression:
    """One condition of a NodeLabelSchedulingStrategy: a label key and its operator."""

    def __init__(self, key: str, operator: Union[In, NotIn, Exists, DoesNotExist]):
        self.key = key
        self.operator = operator


LabelMatchExpressionsT = Dict[str, Union[In, NotIn, Exists, DoesNotExist]]


def _to_expressions(conditions: Optional[LabelMatchExpressionsT], param: str):
    """Checks a `{key: operator}` dict and turns it into a list of expressions."""
    if conditions is None:
        return []
    if not isinstance(conditions, dict):
        raise ValueError(
            f'The {param} parameter must be a map (e.g. {{"key1": In("value1")}}) '
            f"but got type {type(conditions)}."
        )
    expressions = []
    for key, operator in conditions.items():
        if not isinstance(key, str):
            raise ValueError(
                f"The map key of the {param} parameter must be of type str (e.g. "
                f'{{"key1": In("value1")}}) but got {key} of type {type(key)}.'
            )
        if not isinstance(operator, (In, NotIn, Exists, DoesNotExist)):
            raise ValueError(
                f"The map value for key {key} of the {param} parameter must be one "
                "of the `In`, `NotIn`, `Exists` or `DoesNotExist` operator (e.g. "
                f'{{"key1": In("value1")}}) but got {operator} of type '
                f"{type(operator)}."
            )
        expressions.append(_LabelMatchExpression(key, operator))
    return expressions


class NodeLabelSchedulingStrategy:
    """Runs the task or actor on a node whose labels meet conditions.

    Example: ``NodeLabelSchedulingStrategy({"region": In("us-east", "us-west")})``.

    Attributes:
        hard: Conditions every chosen node must meet, as a list of expressions.
        soft: Conditions preferred among those nodes, as a list of expressions.
    """

    def __init__(
        self,
        hard: LabelMatchExpressionsT,
        *,
        soft: Optional[LabelMatchExpressionsT] = None,
    ):
        self.hard = _to_expressions(hard, "hard")
        self.soft = _to_expressions(soft, "soft")
        if not (self.hard or self.soft):
            raise ValueError(
                "The `hard` and `soft` parameter of NodeLabelSchedulingStrategy "
                "cannot both be empty."
            )

    def _to_label_selector_text(self) -> str:
        """Returns the hard conditions in rayc's label-selector syntax.

        The syntax is ``key: value, key: in(a,b), key: !value, key: !in(a,b)``.
        Raises ValueError for conditions rayc cannot honour yet.
        """
        if self.soft:
            raise ValueError(
                "rayc cannot honour soft label constraints yet: move the conditions "
                "of NodeLabelSchedulingStrategy's `soft` argument to `hard`, or "
                "drop them."
            )
        clauses = []
        for expr in self.hard:
            op = expr.operator
            if isinstance(op, (Exists, DoesNotExist)):
                raise ValueError(
                    "rayc does not support Exists/DoesNotExist label conditions yet "
                    f"(key '{expr.key}'): use In or NotIn with the expected values."
                )
            negation = "!" if isinstance(op, NotIn) else ""
            if len(op.values) == 1:
                clauses.append(f"{expr.key}: {negation}{op.values[0]}")
            else:
                clauses.append(f"{expr.key}: {negation}in({','.join(op.values)})")
        return ", ".join(clauses)


SchedulingStrategyT = Union[
    None,
    str,  # "DEFAULT" or "SPREAD"
    PlacementGroupSchedulingStrategy,
    NodeAffinitySchedulingStrategy,
    NodeLabelSchedulingStrategy,
]
