"""The market growing and shrinking the cluster against real daemons (issue 12's scenarios 1,
2, 7, 8 and 10): a head with one CPU and no GPUs, rayc-market with a local provider, and
drivers whose tasks, actors and placement groups only leased hosts can hold. Each test has
a cluster and a market of its own; what is asserted is what the market records (`rayc market
status`, its state in the GCS), what `rayc status` and the node table say, and where the
tasks ran.
"""

import pytest

from cli_cluster import rayc, wait_for
from market_harness import DRIVER_HEAD, LIVE, base_config, offer


CPU_OFFERS = [offer("cpu2", 2, 0.10), offer("cpu4", 4, 0.15), offer("cpu8", 8, 0.28)]

THREE_FOURS = DRIVER_HEAD + """
@ray.remote(num_cpus=4)
def work(i):
    time.sleep(2)
    return node()
print(json.dumps(ray.get([work.remote(i) for i in range(3)])))
"""


def test_cheapest_packing(market_factory):
    m = market_factory(CPU_OFFERS)
    d = m.start_driver(THREE_FOURS)
    ran_on = m.driver_result(d)
    assert len(ran_on) == 3
    st = m.status()
    chosen = sorted(x["offer_id"] for x in st["leases"])
    # One 8-CPU and one 4-CPU host ($0.43/h), not three 4-CPU hosts ($0.45/h).
    assert chosen == ["cpu4", "cpu8"], st["leases"]
    assert max(s["spend_per_hour"] for s in m.samples) == pytest.approx(0.43)
    # The tasks ran on the leased, verified hosts, never on the head (it has 1 CPU).
    by_node = m.market_nodes()
    leased = {x["lease_id"] for x in st["leases"]}
    assert set(ran_on) <= set(by_node), (ran_on, by_node)
    assert {by_node[n] for n in ran_on} <= leased
    assert all(x["verified"] for x in st["leases"])
    # The job is over: no demand left anywhere.
    wait_for(lambda: "(no resource demands)" in m.rayc_status(), what="rayc status without demands")
    wait_for(lambda: m.status()["pending"] == [], what="the market's pending list empty")
    # ... and both idle hosts are released.
    done = wait_for(lambda: all(x["state"] == "TERMINATED" for x in m.leases()) and m.leases(), timeout=30,
                    what="idle hosts released")
    assert all(x["reason"].startswith("idle") for x in done), done
    assert wait_for(lambda: m.status()["spend_per_hour"] == 0, what="spend rate back to 0")
    assert m.host_records() == []


def test_budget_cap(market_factory):
    m = market_factory(CPU_OFFERS, base_config(budget_per_hour=0.30))
    d = m.start_driver(THREE_FOURS)

    def budget_pending():
        st = m.status()
        return [p for p in st["pending"] if p["reason"].startswith("budget")]

    pend = wait_for(budget_pending, timeout=30, what="demand pending for the budget")
    assert pend[0]["count"] >= 1
    ran_on = m.driver_result(d, timeout=120)
    assert len(ran_on) == 3
    st = m.status()
    assert [x["offer_id"] for x in st["leases"]] == ["cpu8"], st["leases"]
    assert {m.market_nodes()[n] for n in ran_on} == {st["leases"][0]["lease_id"]}
    # The cap held in every sample of the run.
    assert all(s["spend_per_hour"] <= 0.30 + 1e-9 for s in m.samples)
    assert all(s["budget_per_hour"] == pytest.approx(0.30) for s in m.samples)
    wait_for(lambda: m.status()["pending"] == [], what="the market's pending list empty")
    wait_for(lambda: "(no resource demands)" in m.rayc_status(), what="rayc status without demands")


def test_lease_expiry_replaced_ahead(market_factory):
    # A 25 s lease is drained with a deadline 12 s before its end while its actor is busy; a
    # successor registers before the first one ends, and the actor moves there.
    m = market_factory([offer("cpu4", 4, 0.15, lease_duration_s=25)], base_config(idle_timeout_s=4))
    d = m.start_driver(DRIVER_HEAD + """
@ray.remote(num_cpus=4, max_restarts=2, max_task_retries=-1)
class Worker:
    def where(self):
        return node()
w = Worker.remote()
seen = []
t0 = time.time()
while time.time() - t0 < 60:
    n = ray.get(w.where.remote())
    if not seen or seen[-1] != n:
        seen.append(n)
    if len(seen) >= 2:
        break
    time.sleep(0.5)
print(json.dumps(seen))
""")
    first = m.verified_running(1)[0]

    def stopping():
        x = [y for y in m.leases(states=("RAY_STOPPING",)) if y["lease_id"] == first["lease_id"]]
        return x[0] if x else None

    drained = wait_for(stopping, timeout=30, what="the expiring lease drained")
    assert drained["reason"].startswith("lease ends"), drained
    state = m.state()
    full = {x["lease_id"]: x for x in state["leases"]}
    f = full[first["lease_id"]]
    # Drained with its deadline: released at the provider's end of the lease.
    assert f["release_at_ms"] == f["allocated_ms"] + 25000
    succ_id = wait_for(lambda: {x["lease_id"]: x for x in m.state()["leases"]}[first["lease_id"]]["replaced_by"],
                       timeout=15, what="a successor chosen")

    def succ_running():
        s = {x["lease_id"]: x for x in m.state()["leases"]}
        return s if s[succ_id]["state"] == "RAY_RUNNING" and s[succ_id]["verified_state"] == 1 else None

    s = wait_for(succ_running, timeout=30, what="the successor running and verified")
    assert s[succ_id]["running_ms"] < f["release_at_ms"]
    assert s[first["lease_id"]]["state"] == "RAY_STOPPING"  # still there when the successor came
    seen = m.driver_result(d, timeout=90)
    by_node = m.market_nodes(alive_only=False)
    assert [by_node.get(n) for n in seen] == [first["lease_id"], succ_id], (seen, by_node)
    ended = wait_for(lambda: [x for x in m.leases() if x["lease_id"] == first["lease_id"]
                              and x["state"] == "TERMINATED"], timeout=30, what="the expired lease ended")
    assert ended[0]["reason"].startswith("lease ends"), ended


def test_idle_release_keeps_min_hosts(market_factory):
    offers = [offer("cpu4", 4, 0.15), offer("cpu8", 8, 0.40)]
    cfg = base_config(idle_timeout_s=3, classes=[{"class": "cpu4", "min_hosts": 1, "max_hosts": 4}])
    # Hosts are challenged again at random while they are leased (here within 2 s).
    cfg["verification"]["recheck_interval_s"] = 2
    m = market_factory(offers, cfg)
    head = m.head_node_id()
    d = m.start_driver(DRIVER_HEAD + """
@ray.remote(num_cpus=4)
def work(i):
    time.sleep(2)
    return node()
print(json.dumps(ray.get([work.remote(i) for i in range(2)])))
""")
    ran_on = m.driver_result(d)
    assert head not in ran_on
    st = m.status()
    assert sorted(x["offer_id"] for x in st["leases"]) == ["cpu4", "cpu4"], st["leases"]
    # One host is drained and released after the idle timeout; the class keeps one.
    ended = wait_for(lambda: m.leases(states=("TERMINATED",)), timeout=30, what="an idle host released")
    assert len(ended) == 1 and ended[0]["reason"].startswith("idle"), ended
    kept = m.leases(states=("RAY_RUNNING",))
    assert len(kept) == 1
    # Several idle timeouts later the kept host and the head are still there.
    t_ended = max(s["updated_at"] for s in m.samples)
    wait_for(lambda: m.status()["updated_at"] >= t_ended + 3 * cfg["idle_timeout_s"], timeout=30,
             what="three idle timeouts")
    assert [x["lease_id"] for x in m.leases(states=("RAY_RUNNING",))] == [kept[0]["lease_id"]]
    assert len(m.leases(states=LIVE)) == 1
    alive = [n["node_id"] for n in m.nodes() if n["state"] == "ALIVE"]
    assert head in alive and len(alive) == 2
    assert "drained" not in " ".join(x["text"] for x in m.status()["decisions"] if kept[0]["lease_id"] in x["text"])
    assert m.host_records() == [kept[0]["lease_id"]]
    # The kept host was challenged again while it was leased, and passed.
    wait_for(lambda: [x for x in m.status()["decisions"]
                      if kept[0]["lease_id"] in x["text"] and "passed a re-check" in x["text"]],
             timeout=15, what="a random re-check of the kept host")


GANG_DRIVER = DRIVER_HEAD + """
from ray.util.placement_group import placement_group, placement_group_table
pg = placement_group([{"GPU": 1}] * 4, strategy="STRICT_SPREAD")
ok = pg.wait(timeout_seconds=90)
table = placement_group_table(pg)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

@ray.remote(num_gpus=1, num_cpus=0)
def in_bundle():
    return ray.get_runtime_context().get_node_id()

ran = ray.get([in_bundle.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
    pg, placement_group_bundle_index=i)).remote() for i in range(4)], timeout=60) if ok else []
b2n = table["bundles_to_node_id"]
print(json.dumps({"ready": ok, "state": table["state"], "nodes": [b2n[i] for i in sorted(b2n)], "ran": ran}))
"""


def test_strict_spread_gang_all_or_nothing(market_factory):
    def gpu_offers(available):
        return [offer("a10", 2, 0.50, gpu_name="A10", num_gpus=1, gpu_memory=1, available=available),
                offer("h100", 2, 2.00, gpu_name="H100", num_gpus=1, gpu_memory=1)]

    cfg = base_config(budget_per_hour=2.0, round_interval_ms=400)
    m = market_factory(gpu_offers(3), cfg)
    d = m.start_driver(GANG_DRIVER)

    def gang_pending():
        return [p for p in m.status()["pending"] if p["gang"]]

    pend = wait_for(gang_pending, timeout=30, what="the gang reported pending")
    assert pend[0]["reason"], pend
    # `rayc status` shows the gang the market cannot serve whole, and why.
    wait_for(lambda: "(gang): infeasible for the autoscaler: " in rayc("status").stdout and
             pend[0]["reason"].split(":")[0] in rayc("status").stdout,
             timeout=20, what="the infeasible gang and its reason in rayc status")
    # Nothing leased while the gang cannot be served whole: watch a few rounds.
    t0 = m.samples[-1]["updated_at"]
    wait_for(lambda: m.status()["updated_at"] >= t0 + 3, timeout=20, what="a few rounds")
    assert all(not s["leases"] for s in m.samples), [s["leases"] for s in m.samples if s["leases"]]
    # A fourth affordable host appears: all four are leased in one round.
    m.write_offers(gpu_offers(4))
    res = m.driver_result(d, timeout=120)
    assert res["ready"] and res["state"] == "CREATED", res
    full = [x for x in m.state()["leases"] if x["state"] in LIVE]
    assert len(full) == 4 and {x["offer_id"] for x in full} == {"a10"}, full
    queued = sorted(x["queued_ms"] for x in full)
    assert queued[-1] - queued[0] < cfg["round_interval_ms"], queued
    by_node = m.market_nodes()
    assert len(set(res["nodes"])) == 4 and {by_node[n] for n in res["nodes"]} == {x["lease_id"] for x in full}
    # Work placed in the bundles runs there, on the four leased (verified) hosts.
    assert res["ran"] == res["nodes"], res
    assert all(s["spend_per_hour"] <= 2.0 + 1e-9 for s in m.samples)
    wait_for(lambda: m.status()["pending"] == [], what="the market's pending list empty")
