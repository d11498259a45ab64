"""The market against hosts and providers that fail, with real daemons (issue 12's scenarios
3, 4, 5, 6 and 9): launches refused, hosts that never register, hosts that fail their
verification (wrong results, too slow), hosts that vanish under an actor, and a market
killed with kill -9 and restarted while its provider cannot be reached. The local provider
misbehaves on purpose (each offer's "behaviour"); offers of one class sit in different
regions so that the failure memory of one (provider, class, region) leaves the other
eligible. Each test has a cluster and a market of its own.
"""

import json
import os
import signal
import time


from cli_cluster import rayc, wait_for
from market_harness import DRIVER_HEAD, LIVE, base_config, offer


def one_task(num_cpus=4, num_gpus=0, n=1, sleep=1.0):
    return DRIVER_HEAD + f"""
@ray.remote(num_cpus={num_cpus}, num_gpus={num_gpus})
def work(i):
    time.sleep({sleep})
    return node()
print(json.dumps(ray.get([work.remote(i) for i in range({n})])))
"""


def by_offer(status):
    out = {}
    for x in status["leases"]:
        out.setdefault(x["offer_id"], []).append(x)
    return out


def score(status, key):
    return next((f["score"] for f in status["failure_memory"] if f["key"] == key), 0.0)


def m_offers(m):
    """`rayc market offers --format json`: every offer with the last round's verdict on it."""
    return json.loads(rayc("market", "offers", "--format", "json").stdout)


def verdict(m, offer_id):
    return next((o for o in m_offers(m) if o["id"] == offer_id), None)


def test_launch_failure_then_next_cheapest(market_factory):
    offers = [offer("bad", 4, 0.10, region="r1", behaviour="launch_error"),
              offer("good", 4, 0.15, region="r2")]
    cfg = base_config(failure={"half_life_s": 4, "retry_below": 0.25, "penalty": 1})
    m = market_factory(offers, cfg)
    d = m.start_driver(one_task())
    wait_for(lambda: m.leases(offer_id="bad", states=("ALLOCATION_FAILED",)), timeout=30, what="the launch failed")
    # Scored down at once: the failed class is not eligible while its score is high.
    v = verdict(m, "bad")
    assert v["eligible"] is False and "scored down" in v["why"], v
    ran_on = m.driver_result(d)
    st = m.status()
    leases = by_offer(st)
    assert [x["state"] for x in leases["bad"]] == ["ALLOCATION_FAILED"], leases
    assert "launch refused" in leases["bad"][0]["reason"]
    good_ids = {x["lease_id"] for x in leases["good"]}
    assert {m.market_nodes()[n] for n in ran_on} <= good_ids
    # The provider's reason, in the market's status and in `rayc status`.
    fail = [f for f in st["failures"] if f["offer_id"] == "bad"]
    assert fail and "launch refused: no capacity left" in fail[0]["reason"], st["failures"]
    text = m.rayc_status()
    recent = text.split("Recent failures:")[1].split("Resources")[0]
    assert "launch refused" in recent, text
    # Eligible again once its score decays below retry_below (half-life 4 s).
    wait_for(lambda: score(m.status(), "lab/cpu4/r1") < 0.25, timeout=30, what="the failure score decayed")
    wait_for(lambda: "scored down" not in verdict(m, "bad")["why"], timeout=10, what="the offer eligible again")
    assert all(x["offer_id"] == "good" for x in m.leases(states=LIVE))


def test_never_registers_times_out_and_is_replaced(market_factory):
    offers = [offer("ghost", 4, 0.10, region="r1", behaviour="never_registers"),
              offer("good", 4, 0.15, region="r2")]
    cfg = base_config(timeouts={"launch_s": 5, "register_s": 4})
    m = market_factory(offers, cfg)
    d = m.start_driver(one_task())
    ghost = wait_for(lambda: m.leases(offer_id="ghost", states=("ALLOCATED",)), what="the ghost host allocated")
    ghost_id = ghost[0]["lease_id"]
    assert ghost_id in m.host_records()
    ran_on = m.driver_result(d, timeout=90)
    st = m.status()
    g = [x for x in st["leases"] if x["lease_id"] == ghost_id][0]
    assert g["state"] == "ALLOCATION_TIMEOUT" and "never registered" in g["reason"], g
    # Terminated at the provider: it no longer lists the host.
    assert ghost_id not in m.host_records()
    assert any(f["offer_id"] == "ghost" and "never registered" in f["reason"] for f in st["failures"])
    assert score(st, "lab/cpu4/r1") > 0
    good_ids = {x["lease_id"] for x in st["leases"] if x["offer_id"] == "good"}
    assert good_ids and {m.market_nodes()[n] for n in ran_on} <= good_ids
    assert ghost_id not in m.market_nodes(alive_only=False).values()


def test_fake_gpu_and_slow_host_never_get_work(market_factory):
    offers = [offer("fake", 2, 0.30, gpu_name="A10", num_gpus=1, gpu_memory=1, region="r1", behaviour="fake_gpu",
                    available=1),
              offer("slow", 2, 0.40, gpu_name="A10", num_gpus=1, gpu_memory=1, region="r2", behaviour="slow",
                    available=1),
              offer("honest", 2, 0.60, gpu_name="A10", num_gpus=1, gpu_memory=1, region="r3")]
    m = market_factory(offers)
    # Three GPU tasks: the market leases fake, slow and honest hosts at once (cheapest first).
    d = m.start_driver(one_task(num_cpus=0, num_gpus=1, n=3, sleep=0.5))
    ran_on = m.driver_result(d, timeout=120)
    assert len(ran_on) == 3

    def both_failed():
        st = m.status()
        lo = by_offer(st)
        done = [x for k in ("fake", "slow") for x in lo.get(k, []) if x["state"] == "TERMINATED"]
        return st if len(done) == 2 else None

    st = wait_for(both_failed, timeout=30, what="the fake and the slow host released")
    lo = by_offer(st)
    bad_leases = {x["lease_id"] for k in ("fake", "slow") for x in lo[k]}
    for k in ("fake", "slow"):
        (x,) = lo[k]
        assert x["reason"].startswith("failed verification"), x
        assert not x["verified"]
    assert "wrong" in lo["fake"][0]["reason"] or "row" in lo["fake"][0]["reason"], lo["fake"]
    # Neither node ever ran a task; an honest, verified host ran them all.
    nodes = m.market_nodes(alive_only=False)
    assert all(nodes[n] not in bad_leases for n in ran_on), (ran_on, nodes)
    honest = {x["lease_id"] for x in lo["honest"] if x["verified"] or x["state"] == "TERMINATED"}
    assert {nodes[n] for n in ran_on} <= honest
    # The GCS's node table carries the verdicts; the classes are scored down.
    verdicts = {n["labels"].get("rayc.io/market-lease"): n["labels"].get("rayc.io/verification")
                for n in m.nodes() if "rayc.io/market-lease" in n["labels"]}
    for lease in bad_leases:
        assert verdicts[lease] == "failed", verdicts
    assert score(st, "lab/A10x1/r1") > 0 and score(st, "lab/A10x1/r2") > 0, st["failure_memory"]


def test_vanished_host_replaced_actor_restarts(market_factory):
    env = {"RAYC_health_check_initial_delay_ms": "1000", "RAYC_health_check_period_ms": "1000",
           "RAYC_health_check_timeout_ms": "1000", "RAYC_health_check_failure_threshold": "2"}
    offers = [offer("flaky", 4, 0.10, region="r1", behaviour="vanish_after_s:10"),
              offer("steady", 4, 0.15, region="r2")]
    m = market_factory(offers, base_config(idle_timeout_s=5), env=env)
    d = m.start_driver(DRIVER_HEAD + """
@ray.remote(num_cpus=4, max_restarts=2, max_task_retries=-1)
class Counter:
    def __init__(self):
        self.n = 0
    def hit(self):
        self.n += 1
        return node(), self.n
c = Counter.remote()
seen = []
t0 = time.time()
while time.time() - t0 < 90:
    n, count = ray.get(c.hit.remote())
    if not seen or seen[-1] != n:
        seen.append(n)
    if len(seen) >= 2 and count >= 3:
        break
    time.sleep(0.3)
print(json.dumps({"nodes": seen, "count": count}))
""")
    flaky = wait_for(lambda: m.leases(offer_id="flaky", states=("RAY_RUNNING",)), timeout=30,
                     what="the flaky host running")[0]
    fid = flaky["lease_id"]
    ended = wait_for(lambda: [x for x in m.leases(offer_id="flaky") if x["state"] == "TERMINATED"], timeout=60,
                     what="the vanished lease ended")[0]
    assert ended["reason"].startswith("vanished"), ended
    assert fid not in m.host_records()  # terminated at the provider
    res = m.driver_result(d, timeout=90)
    seen = res["nodes"]
    nodes = m.market_nodes(alive_only=False)
    assert len(seen) == 2 and nodes.get(seen[0]) == fid, (seen, nodes)
    steady_ids = {x["lease_id"] for x in m.leases(offer_id="steady")}
    assert nodes.get(seen[1]) in steady_ids, (seen, nodes, steady_ids)
    assert res["count"] >= 3  # the restarted actor answers calls again
    # Billing stopped: the ended lease's spend no longer grows.
    spend = ended["spend"]
    t0 = m.samples[-1]["updated_at"]
    wait_for(lambda: m.status()["updated_at"] >= t0 + 2, what="two seconds of rounds")
    assert [x for x in m.leases(offer_id="flaky") if x["lease_id"] == fid][0]["spend"] == spend
    st = m.status()
    assert any(f["offer_id"] == "flaky" and "vanished" in f["reason"] for f in st["failures"]), st["failures"]
    assert score(st, "lab/cpu4/r1") > 0


def test_kill9_and_provider_outage_no_duplicates_orphans_reaped(market_factory):
    m = market_factory([offer("cpu4", 4, 0.15)], base_config(idle_timeout_s=60),
                       env={"RAYC_MARKET_ORPHAN_GRACE_MS": "3000"})
    d = m.start_driver(one_task(sleep=25))
    early = wait_for(lambda: m.leases(states=("QUEUED", "REQUESTED", "ALLOCATED")), timeout=30,
                     what="a lease queued or launched")
    m.kill9()
    unreachable = os.path.join(m.state_dir, "unreachable")
    open(unreachable, "w").close()
    # A host record no lease accounts for, as a market killed between launch and record
    # leaves one (no process behind it).
    orphan = os.path.join(m.state_dir, "lease-00ffdeadbeef.host")
    with open(orphan, "w") as f:
        f.write(f"cpu4 0 {int(time.time() * 1000)} 0\n")
    m.start()
    lease_id = early[0]["lease_id"]
    t_end = time.time() + 10
    while time.time() < t_end:
        st = m.status()
        live = [x for x in st["leases"] if x["state"] in LIVE]
        assert [x["lease_id"] for x in live] == [lease_id], st["leases"]
        assert os.path.exists(orphan)
        time.sleep(0.5)
    st = m.status()
    assert not st["providers"][0]["reachable"] and "cannot be reached" in st["providers"][0]["error"]
    assert lease_id in m.host_records()
    os.unlink(unreachable)
    # After the outage: the orphan is terminated after its grace, no duplicate launch.
    wait_for(lambda: not os.path.exists(orphan), timeout=30, what="the orphan terminated")
    ran_on = m.driver_result(d, timeout=90)
    st = m.status()
    assert [x["lease_id"] for x in st["leases"]] == [lease_id], st["leases"]
    assert m.host_records() == [lease_id]
    assert list(m.market_nodes().values()) == [lease_id]
    assert m.market_nodes()[ran_on[0]] == lease_id
    assert any("orphan lease-00ffdeadbeef" in x["text"] for x in st["decisions"]), st["decisions"]


def test_gcs_outage_tears_nothing_down(market_factory):
    # The market cannot see the GCS for a while (its process frozen): it leases nothing,
    # ends nothing and terminates nothing, then carries on.
    m = market_factory([offer("cpu4", 4, 0.15)], base_config(idle_timeout_s=60))
    d = m.start_driver(one_task(sleep=20))
    (lease,) = m.verified_running(1)
    records = m.host_records()
    assert records == [lease["lease_id"]]
    gcs_pid = int(open(os.path.join(m.session, "pids", "gcs_server.pid")).read().strip())
    os.kill(gcs_pid, signal.SIGSTOP)
    try:
        t_end = time.time() + 8
        while time.time() < t_end:
            # The provider's record and the host's raylet stay: nothing is terminated.
            assert m.host_records() == records
            time.sleep(0.5)
    finally:
        os.kill(gcs_pid, signal.SIGCONT)
    ran_on = m.driver_result(d, timeout=90)
    st = m.status()
    assert [x["lease_id"] for x in st["leases"]] == [lease["lease_id"]], st["leases"]
    assert st["leases"][0]["state"] == "RAY_RUNNING", st["leases"][0]
    assert m.market_nodes()[ran_on[0]] == lease["lease_id"]
    texts = [x["text"] for x in st["decisions"]]
    assert any("the GCS cannot be reached" in t and "no host is torn down" in t for t in texts), texts
    assert any(t == "the GCS is reachable" for t in texts), texts
