"""ray.util: placement groups, ActorPool, scheduling strategies and helpers (Ray's names)."""

from ray._private.worker import get_node_ip_address  # noqa: F401
from ray.actor import list_named_actors  # noqa: F401
from ray.util import scheduling_strategies  # noqa: F401
from ray.util.actor_pool import ActorPool  # noqa: F401
from ray.util.placement_group import (  # noqa: F401
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = [
    "ActorPool", "PlacementGroup", "list_named_actors", "get_current_placement_group", "get_node_ip_address", "get_placement_group",
    "placement_group", "placement_group_table", "remove_placement_group", "scheduling_strategies",
]
