"""Ray's state API (ray.util.state) against a real local cluster: nodes, jobs, actors,
placement groups and task attempts as Ray's state objects, with Ray's filters, limits,
detail columns, get_* by ID and the task and actor summaries."""

import logging
import time

import pytest

import ray
from ray.util import state
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.state import RayStateApiException

from cli_cluster import wait_for


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


@ray.remote
def state_api_work(x):
    return x * 2


@ray.remote(max_retries=0)
def state_api_fails():
    raise ValueError("on purpose")


def test_nodes(ray_start):
    nodes = state.list_nodes()
    assert len(nodes) == 1
    n = nodes[0]
    assert n.state == "ALIVE" and n["state"] == "ALIVE" and n.is_head_node is True
    assert n.node_id == ray.get_runtime_context().get_node_id()
    assert n.resources_total["CPU"] == 4 and n.resources_total["custom"] == 2
    assert n.start_time_ms is None  # a detail column
    detailed = state.list_nodes(detail=True)[0]
    assert detailed.start_time_ms > 0 and detailed.end_time_ms in (0, None)
    assert state.get_node(n.node_id) == detailed
    assert state.get_node("00" * 28) is None
    assert state.list_nodes(filters=[("state", "=", "dead")]) == []


def test_jobs(ray_start):
    me = ray.get_runtime_context().get_job_id()
    jobs = {j.job_id: j for j in state.list_jobs()}
    assert jobs[me].status == "RUNNING" and jobs[me].type == "DRIVER" and jobs[me].submission_id is None
    assert int(jobs[me].driver_info["pid"]) > 0
    assert [j.job_id for j in state.list_jobs(filters=[("job_id", "=", me)])] == [me]
    assert state.get_job(me).job_id == me


def test_actors_filters_and_detail(ray_start):
    alive = Counter.options(name="state_api_alive").remote()
    dead = Counter.options(name="state_api_dead").remote()
    assert ray.get([alive.incr.remote(), dead.incr.remote()]) == [1, 1]
    ray.kill(dead)
    wait_for(lambda: state.list_actors(filters=[("name", "=", "state_api_dead"), ("state", "=", "DEAD")]),
             what="the killed actor DEAD in the GCS")
    mine = state.list_actors(filters=[("class_name", "=", "counter")])  # values compare without case
    assert {a.name for a in mine} >= {"state_api_alive", "state_api_dead"}
    live = state.list_actors(filters=[("class_name", "=", "Counter"), ("state", "!=", "DEAD")])
    assert [a.name for a in live] == ["state_api_alive"]
    a = live[0]
    assert a.job_id == ray.get_runtime_context().get_job_id() and a.pid > 0 and a.node_id
    assert isinstance(a.ray_namespace, str) and a.is_detached is None  # not a detail call
    full = state.get_actor(a.actor_id)
    assert full.is_detached is False and full.required_resources == {} and full.death_cause is None
    assert full.actor_id == alive._ray_actor_id.hex()
    gone = state.get_actor(state.list_actors(filters=[("name", "=", "state_api_dead")])[0].actor_id)
    assert gone.state == "DEAD" and gone.death_cause  # Ray's death cause, as a dict
    assert state.get_actor("ff" * 16) is None
    s = state.summarize_actors()["cluster"]
    assert s["summary_by"] == "class" and s["summary"]["Counter"]["state_counts"]["DEAD"] >= 1
    ray.kill(alive)


def test_placement_groups(ray_start):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK", name="state_api_pg")
    ray.get(pg.ready(), timeout=60)
    rows = state.list_placement_groups(filters=[("name", "=", "state_api_pg")])
    assert len(rows) == 1 and rows[0].state == "CREATED" and rows[0].bundles is None
    full = state.get_placement_group(rows[0].placement_group_id)
    assert len(full.bundles) == 2 and full.bundles[0]["unit_resources"] == {"CPU": 1.0}
    assert full.creator_job_id == ray.get_runtime_context().get_job_id() and full.is_detached is False
    remove_placement_group(pg)
    wait_for(lambda: state.get_placement_group(rows[0].placement_group_id).state == "REMOVED",
             what="the group REMOVED")


def test_tasks_filters_limits_and_summary(ray_start, caplog):
    assert ray.get([state_api_work.remote(i) for i in range(3)]) == [0, 2, 4]
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(state_api_fails.remote())

    def done():
        rows = state.list_tasks(filters=[("func_or_class_name", "=", "state_api_work"), ("state", "=", "FINISHED")])
        # The owner and the worker report their halves of an attempt separately.
        return len(rows) == 3 and all(r.worker_pid for r in rows) and rows

    rows = wait_for(done, timeout=30, what="three finished attempts in the GCS (task events are flushed each second)")
    assert all(r.type == "NORMAL_TASK" and r.job_id == ray.get_runtime_context().get_job_id() for r in rows)
    assert all(r.node_id and r.worker_id and r.worker_pid > 0 and r.language is None for r in rows)
    assert state.get_task(rows[0].task_id).language == "PYTHON"
    failed = wait_for(lambda: state.list_tasks(filters=[("name", "=", "state_api_fails"), ("state", "=", "FAILED")]),
                      timeout=30, what="the failed attempt")
    assert failed[0].error_type == "TASK_EXECUTION_EXCEPTION" and failed[0].error_message is None
    detailed = state.get_task(failed[0].task_id)
    assert detailed.error_message and detailed.end_time_ms >= detailed.start_time_ms > 0
    with caplog.at_level(logging.WARNING, logger="ray.util.state"):
        assert len(state.list_tasks(limit=1)) == 1
    assert "raise the limit" in caplog.text
    summary = state.summarize_tasks()["cluster"]
    assert summary["summary"]["state_api_work"]["state_counts"]["FINISHED"] >= 3
    assert summary["summary"]["state_api_fails"]["state_counts"]["FAILED"] >= 1
    assert summary["total_tasks"] >= 4 and summary["summary_by"] == "func_name"


def test_bad_arguments(ray_start):
    with pytest.raises(RayStateApiException, match="Given filter column bogus is not supported"):
        state.list_actors(filters=[("bogus", "=", "x")])
    with pytest.raises(RayStateApiException, match="Unsupported filter predicate ~"):
        state.list_tasks(filters=[("state", "~", "x")])
    with pytest.raises(RayStateApiException, match="is \\(key, predicate, value\\)"):
        state.list_nodes(filters=["state=ALIVE"])
    with pytest.raises(RayStateApiException, match="limit must be a positive integer"):
        state.list_jobs(limit=0)


def test_rows_are_fresh(ray_start):
    """No cache in between: an actor created a moment ago is listed at once."""
    name = f"fresh_{time.time_ns()}"
    c = Counter.options(name=name).remote()
    ray.get(c.incr.remote())
    assert [a.state for a in state.list_actors(filters=[("name", "=", name)])] == ["ALIVE"]
    ray.kill(c)
