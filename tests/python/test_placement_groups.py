"""Placement groups, node affinity and label selectors on a real multi-node cluster: a head
and two more raylets on this host, 2 CPUs each, started with `rayc start` and joined by
the test process with ray.init(address="auto"). Where work ran is read from inside it
(ray.get_runtime_context().get_node_id()) and named by each node's `name` label."""

import time

import pytest

import ray
from ray.util.placement_group import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import (
    In,
    NodeAffinitySchedulingStrategy,
    NodeLabelSchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from cli_cluster import (alive_nodes, joined_cluster, last_json_line, nodes_by_name, run_driver,
                         use_short_session_root, wait_for)

use_short_session_root()  # sockets live under it: see cli_cluster

TOTAL_CPUS = 6


@pytest.fixture(scope="module")
def cluster():
    with joined_cluster(dict(num_cpus=2, labels={"name": "head", "zone": "a"}, resources={"head_only": 1}),
                        dict(num_cpus=2, labels={"name": "w1", "zone": "b", "disk": "ssd"}),
                        dict(num_cpus=2, labels={"name": "w2", "zone": "b"})) as c:
        yield c


@pytest.fixture
def nodes(cluster):
    """{node ID: name} and {name: node ID} of the three nodes."""
    return nodes_by_name()


@ray.remote(num_cpus=1)
def node_of():
    return ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=1)
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()


def in_bundle(pg, index=-1, capture=None):
    return PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index,
                                            placement_group_capture_child_tasks=capture)


def all_cpus_free():
    return wait_for(lambda: ray.available_resources().get("CPU") == TOTAL_CPUS, timeout=20,
                    what="every CPU free again")


def placements(pg, names):
    """Names of the nodes that each bundle's task and actor ran on (tasks, actors)."""
    tasks = ray.get([node_of.options(scheduling_strategy=in_bundle(pg, i)).remote()
                     for i in range(pg.bundle_count)], timeout=60)
    actors = [Where.options(scheduling_strategy=in_bundle(pg, i)).remote() for i in range(pg.bundle_count)]
    on = ray.get([a.node.remote() for a in actors], timeout=60)
    for a in actors:
        ray.kill(a)
    return [names[n] for n in tasks], [names[n] for n in on]


# ---- strategies ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy,bundles,distinct", [
    ("STRICT_PACK", 2, 1),     # one node holds both
    ("PACK", 2, 1),            # they fit on one node, so they go there
    ("PACK", 3, 2),            # 3 CPUs: as few nodes as fit them (two nodes of 2 CPUs)
    ("SPREAD", 3, 3),          # best effort: one per node when the nodes are free
    ("STRICT_SPREAD", 3, 3),   # one per node, always
])
def test_strategy_places_bundles(nodes, strategy, bundles, distinct):
    names, _ = nodes
    pg = placement_group([{"CPU": 1}] * bundles, strategy=strategy)
    try:
        assert ray.get(pg.ready(), timeout=30) == pg
        assert pg.wait(10) is True
        assert pg.bundle_count == bundles and pg.bundle_specs == [{"CPU": 1}] * bundles
        # The group's CPUs are reserved: the cluster has that many fewer to give.
        wait_for(lambda: ray.available_resources().get("CPU") == TOTAL_CPUS - bundles,
                 what="the group's CPUs reserved")
        tasks, actors = placements(pg, names)
        assert len(set(tasks)) == distinct, tasks
        # A bundle is on one node: its task and its actor run on the same node.
        assert tasks == actors
        # Index -1: any bundle of the group, so one of the group's nodes.
        anywhere = ray.get([node_of.options(scheduling_strategy=in_bundle(pg)).remote() for _ in range(4)])
        assert {names[n] for n in anywhere} <= set(tasks)
    finally:
        remove_placement_group(pg)
    all_cpus_free()


def test_bundle_limits_what_runs_in_it(nodes):
    """Work in a bundle uses the bundle's resources, not the node's: a bundle of 1 CPU
    runs one 1-CPU task at a time."""

    @ray.remote(num_cpus=1)
    def stamp(s):
        start = time.time()
        time.sleep(s)
        return start, time.time()

    pg = placement_group([{"CPU": 1}], strategy="STRICT_PACK")
    try:
        assert pg.wait(30)
        (a0, a1), (b0, b1) = ray.get([stamp.options(scheduling_strategy=in_bundle(pg, 0)).remote(1.0)
                                      for _ in range(2)], timeout=60)
        assert a1 <= b0 + 0.05 or b1 <= a0 + 0.05, "two 1-CPU tasks ran at once in a 1-CPU bundle"
    finally:
        remove_placement_group(pg)
    all_cpus_free()


def test_request_larger_than_every_bundle_is_refused(nodes):
    """As in Ray: a task or actor that no bundle of its group can hold is refused at
    .remote() with a ValueError naming the request and the bundles."""
    pg = placement_group([{"CPU": 1}], strategy="STRICT_PACK")
    try:
        assert pg.wait(30)
        with pytest.raises(ValueError, match="cannot fit into any bundles for the placement group"):
            node_of.options(num_cpus=2, scheduling_strategy=in_bundle(pg, 0)).remote()
        with pytest.raises(ValueError, match="cannot fit into any bundles for the placement group"):
            Where.options(num_cpus=2, scheduling_strategy=in_bundle(pg)).remote()
    finally:
        remove_placement_group(pg)
    all_cpus_free()


def test_capture_child_tasks(nodes):
    """With placement_group_capture_child_tasks, tasks started inside go into the group
    too (here a STRICT_PACK group: the node of the parent)."""
    names, _ = nodes

    @ray.remote(num_cpus=0.5)
    def child():
        return ray.get_runtime_context().get_node_id()

    @ray.remote(num_cpus=0.5)
    def parent():
        return ray.get_runtime_context().get_node_id(), ray.get([child.remote() for _ in range(4)])

    pg = placement_group([{"CPU": 2}], strategy="STRICT_PACK")
    try:
        assert pg.wait(30)
        home, kids = ray.get(parent.options(scheduling_strategy=in_bundle(pg, capture=True)).remote(), timeout=60)
        assert set(kids) == {home}
    finally:
        remove_placement_group(pg)
    all_cpus_free()


# ---- pending groups ----------------------------------------------------------------------------


def test_strict_pack_larger_than_any_node_stays_pending(nodes):
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_PACK")
    try:
        assert pg.wait(2) is False
        ready, not_ready = ray.wait([pg.ready()], timeout=1)
        assert ready == [] and len(not_ready) == 1
        assert placement_group_table(pg)["state"] == "PENDING"
        # Nothing is held for a group that is not placed.
        assert ray.available_resources().get("CPU") == TOTAL_CPUS
    finally:
        remove_placement_group(pg)


def test_strict_spread_waits_for_enough_nodes(cluster, nodes):
    """STRICT_SPREAD with more bundles than nodes stays pending; a node that joins lets it
    be placed, one bundle on each node."""
    pg = placement_group([{"CPU": 1}] * 4, strategy="STRICT_SPREAD")
    extra = None
    try:
        assert pg.wait(3) is False
        with pytest.raises(ray.exceptions.GetTimeoutError):
            ray.get(pg.ready(), timeout=1)
        assert placement_group_table(pg)["state"] == "PENDING"
        extra = cluster.add_outside_node(num_cpus=1, labels={"name": "extra"})
        assert pg.wait(30) is True
        names = {v: k for k, v in alive_nodes().items()}
        tasks = ray.get([node_of.options(scheduling_strategy=in_bundle(pg, i)).remote() for i in range(4)],
                        timeout=60)
        assert sorted(names[n] for n in tasks) == ["extra", "head", "w1", "w2"]
    finally:
        remove_placement_group(pg)
        if extra:
            cluster.stop_outside_node(extra)
    wait_for(lambda: len(alive_nodes()) == 3, what="the extra node gone")
    all_cpus_free()


# ---- removal ---------------------------------------------------------------------------------


def test_remove_frees_resources_and_kills_actors(nodes):
    pg = placement_group([{"CPU": 2}], strategy="STRICT_PACK", name="to-remove")
    assert pg.wait(30)
    wait_for(lambda: ray.available_resources().get("CPU") == TOTAL_CPUS - 2, what="2 CPUs reserved")
    actor = Where.options(scheduling_strategy=in_bundle(pg, 0)).remote()
    ray.get(actor.node.remote(), timeout=60)
    remove_placement_group(pg)  # in the background, as in Ray: the actor dies soon after

    def actor_dead():
        try:
            ray.get(actor.node.remote(), timeout=30)
            return False
        except ray.exceptions.RayActorError:
            return True

    wait_for(actor_dead, what="the group's actor killed")
    all_cpus_free()
    assert placement_group_table(pg)["state"] == "REMOVED"
    with pytest.raises(ValueError, match="Failed to look up placement group with name: to-remove"):
        get_placement_group("to-remove")


# ---- lookup and table -------------------------------------------------------------------------


def test_get_placement_group_by_name(nodes):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD", name="by-name")
    try:
        assert pg.wait(30)
        found = get_placement_group("by-name")
        assert found == pg and found.id == pg.id
        assert found.bundle_specs == [{"CPU": 1}, {"CPU": 1}]
        with pytest.raises(ValueError, match="Failed to look up placement group with name: no-such-group"):
            get_placement_group("no-such-group")
        with pytest.raises(ValueError, match="non-empty value"):
            get_placement_group("")
    finally:
        remove_placement_group(pg)
    all_cpus_free()


def test_placement_group_table(nodes):
    created = placement_group([{"CPU": 1}, {"CPU": 1, "head_only": 1}], strategy="PACK", name="tabled")
    pending = placement_group([{"CPU": 3}], strategy="STRICT_PACK")
    try:
        assert created.wait(30)
        row = placement_group_table(created)
        assert row["placement_group_id"] == created.id.hex()
        assert row["name"] == "tabled"
        assert row["strategy"] == "PACK"
        assert row["state"] == "CREATED"
        assert row["bundles"] == {0: {"CPU": 1}, 1: {"CPU": 1, "head_only": 1}}
        assert placement_group_table(pending)["state"] == "PENDING"
        everything = placement_group_table()
        assert created.id.hex() in everything and pending.id.hex() in everything
    finally:
        remove_placement_group(created)
        remove_placement_group(pending)
    assert placement_group_table(created)["state"] == "REMOVED"
    all_cpus_free()


def test_placement_group_table_bundles_to_node_id(nodes):
    """Ray's table names the node of each bundle (bundles_to_node_id)."""
    names, by_name = nodes
    pg = placement_group([{"CPU": 1}, {"CPU": 1, "head_only": 1}], strategy="STRICT_SPREAD")
    try:
        assert pg.wait(30)
        row = placement_group_table(pg)
        assert row["bundles_to_node_id"][1] == by_name["head"]
        ran = ray.get(node_of.options(scheduling_strategy=in_bundle(pg, 0)).remote())
        assert row["bundles_to_node_id"][0] == ran != by_name["head"]
    finally:
        remove_placement_group(pg)
    all_cpus_free()


def test_detached_group_found_from_another_driver(nodes, tmp_path):
    """A detached, named group made by a driver that has exited is found by name in its
    namespace, with its bundles, and work is placed into a given bundle."""
    names, _ = nodes
    made = run_driver(
        "import json, ray\n"
        "from ray.util.placement_group import placement_group\n"
        "ray.init(address='auto', namespace='pg-ns')\n"
        "pg = placement_group([{'CPU': 1}, {'CPU': 1}], strategy='STRICT_SPREAD', name='shared',\n"
        "                     lifetime='detached')\n"
        "print(json.dumps([pg.wait(30), pg.id.hex()]))\n",
        tmp_path)
    ok, pg_hex = last_json_line(made)
    assert ok
    ray.shutdown()
    ray.init(address="auto", namespace="pg-ns")
    pg = None
    try:
        pg = get_placement_group("shared")
        assert pg.id.hex() == pg_hex
        assert pg.wait(5)
        assert pg.bundle_count == 2 and pg.bundle_specs == [{"CPU": 1}, {"CPU": 1}]
        row = placement_group_table(pg)
        assert (row["name"], row["strategy"], row["state"]) == ("shared", "STRICT_SPREAD", "CREATED")
        a, b = ray.get([node_of.options(scheduling_strategy=in_bundle(pg, i)).remote() for i in (0, 1)],
                       timeout=60)
        assert a != b
    finally:
        if pg is not None:
            remove_placement_group(pg)
        ray.shutdown()
        ray.init(address="auto")
    all_cpus_free()


def test_group_of_a_finished_driver_is_removed(nodes, tmp_path):
    """A group without lifetime='detached' goes with the job that made it."""
    made = run_driver(
        "import json, ray\n"
        "from ray.util.placement_group import placement_group\n"
        "ray.init(address='auto')\n"
        "pg = placement_group([{'CPU': 2}], strategy='STRICT_PACK', name='job-scoped')\n"
        "print(json.dumps(pg.wait(30)))\n",
        tmp_path)
    assert last_json_line(made) is True
    all_cpus_free()
    with pytest.raises(ValueError, match="Failed to look up placement group"):
        get_placement_group("job-scoped")


# ---- validation ------------------------------------------------------------------------------


def test_empty_bundle_list_error_text(nodes):
    with pytest.raises(ValueError, match="Bundles must be a non-empty list of resource dictionaries"):
        placement_group([])


def test_validation_errors(nodes):
    with pytest.raises(ValueError):
        placement_group([])
    with pytest.raises(ValueError):
        placement_group("CPU")
    with pytest.raises(ValueError, match="Bundles cannot be an empty dictionary or resources with only 0 values"):
        placement_group([{}])
    with pytest.raises(ValueError, match="Bundles cannot be an empty dictionary or resources with only 0 values"):
        placement_group([{"CPU": 0}])
    with pytest.raises(ValueError, match="Invalid placement group strategy BOGUS"):
        placement_group([{"CPU": 1}], strategy="BOGUS")
    with pytest.raises(ValueError, match="Placement group `lifetime` argument must be either `None` or 'detached'"):
        placement_group([{"CPU": 1}], lifetime="forever")
    with pytest.raises(ValueError, match="length of `bundle_label_selector` should equal the length of `bundles`"):
        placement_group([{"CPU": 1}], bundle_label_selector=[{"zone": "a"}, {"zone": "b"}])
    pg = placement_group([{"CPU": 1}, {"CPU": 1}])
    try:
        assert pg.wait(30)
        with pytest.raises(ValueError, match="bundle index 2 is invalid"):
            node_of.options(scheduling_strategy=in_bundle(pg, 2)).remote()
        with pytest.raises(ValueError, match="bundle index -2 is invalid"):
            node_of.options(scheduling_strategy=in_bundle(pg, -2)).remote()
    finally:
        remove_placement_group(pg)
    # Nothing was created by the refused calls.
    all_cpus_free()


def test_bundle_label_selector(nodes):
    names, _ = nodes
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD",
                         bundle_label_selector=[{"name": "w2"}, {"zone": "a"}])
    try:
        assert pg.wait(30)
        tasks, _ = placements(pg, names)
        assert tasks == ["w2", "head"]
    finally:
        remove_placement_group(pg)
    all_cpus_free()


# ---- node affinity ----------------------------------------------------------------------------


def test_node_affinity_hard(nodes):
    names, by_name = nodes
    for name, node_id in by_name.items():
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        ran = ray.get([node_of.options(scheduling_strategy=strategy).remote() for _ in range(4)], timeout=60)
        assert {names[n] for n in ran} == {name}
        actor = Where.options(num_cpus=0, scheduling_strategy=strategy).remote()
        assert names[ray.get(actor.node.remote(), timeout=60)] == name
        ray.kill(actor)


def test_node_affinity_hard_fails_when_it_cannot_run(nodes):
    _, by_name = nodes
    gone = "ab" * 28  # no such node
    with pytest.raises(ray.exceptions.TaskUnschedulableError):
        ray.get(node_of.options(scheduling_strategy=NodeAffinitySchedulingStrategy(gone, soft=False)).remote(),
                timeout=30)
    # w1 can never fit 3 CPUs.
    with pytest.raises(ray.exceptions.TaskUnschedulableError):
        ray.get(node_of.options(num_cpus=3, scheduling_strategy=NodeAffinitySchedulingStrategy(
            by_name["w1"], soft=False)).remote(), timeout=30)


def test_node_affinity_soft(nodes):
    names, by_name = nodes
    # An alive node that fits: it runs there.
    ran = ray.get(node_of.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        by_name["w2"], soft=True)).remote(), timeout=60)
    assert names[ran] == "w2"
    # A node that does not exist: it runs elsewhere.
    ran = ray.get(node_of.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        "cd" * 28, soft=True)).remote(), timeout=60)
    assert ran in names
    # A node that can never fit it (only the head has head_only): it runs where it fits.
    ran = ray.get(node_of.options(resources={"head_only": 1}, scheduling_strategy=NodeAffinitySchedulingStrategy(
        by_name["w1"], soft=True)).remote(), timeout=60)
    assert names[ran] == "head"


def test_node_affinity_rejects_bad_ids(nodes):
    with pytest.raises(ValueError, match="Invalid node_id"):
        NodeAffinitySchedulingStrategy("not-a-node", soft=False)


# ---- label selectors ---------------------------------------------------------------------------


def test_label_selectors(nodes):
    names, _ = nodes

    def ran_on(selector, n=6):
        refs = [node_of.options(label_selector=selector).remote() for _ in range(n)]
        return {names[x] for x in ray.get(refs, timeout=60)}

    assert ran_on({"zone": "b"}) <= {"w1", "w2"}
    assert ran_on({"zone": "!b"}) == {"head"}
    assert ran_on({"name": "in(w2,head)"}) <= {"w2", "head"}
    assert ran_on({"name": "!in(head,w1)"}) == {"w2"}
    assert ran_on({"disk": "ssd"}) == {"w1"}
    assert ran_on({"ray.io/node-id": nodes[1]["w2"]}, n=2) == {"w2"}
    actor = Where.options(num_cpus=0, label_selector={"name": "w1"}).remote()
    assert names[ray.get(actor.node.remote(), timeout=60)] == "w1"
    ray.kill(actor)


def test_label_selector_without_match_stays_pending(nodes):
    ref = node_of.options(label_selector={"zone": "nowhere"}).remote()
    ready, _ = ray.wait([ref], timeout=2)
    assert ready == []
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=1)
    ray.cancel(ref)


def test_node_label_scheduling_strategy(nodes):
    names, _ = nodes
    strategy = NodeLabelSchedulingStrategy(hard={"zone": In("a")})
    ran = ray.get([node_of.options(scheduling_strategy=strategy).remote() for _ in range(3)], timeout=60)
    assert {names[n] for n in ran} == {"head"}
