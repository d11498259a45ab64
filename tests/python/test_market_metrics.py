"""rayc-market's /metrics against a real head and the local provider: a driver's demand
makes the market lease a host; then its endpoint (found through the GCS's
service-discovery file) refuses a request without the token and, with the admin token,
shows the lease RAY_RUNNING, its hourly price and money billed, and the budget caps. The
endpoint speaks HTTPS with a certificate of the cluster CA (the market makes it on the head),
listed with __scheme__ "https"."""

import json
import os
import urllib.error
import urllib.request

from cli_cluster import cluster_tls, use_short_session_root, wait_for
from market_harness import DRIVER_HEAD, base_config, offer

use_short_session_root()  # sockets live under it: see cli_cluster

SD_FILE = "prom_metrics_service_discovery.json"


def scrape(target, token=None, tls=None):
    req = urllib.request.Request(f"https://{target}/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30, context=tls) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def market_target(session):
    with open(os.path.join(session, SD_FILE)) as f:
        groups = json.load(f)
    found = [g["targets"][0] for g in groups if g["labels"].get("Component") == "market"]
    assert all(g["labels"]["__scheme__"] == "https" for g in groups), groups
    return found[0] if found else None


def test_market_metrics(market_factory):
    m = market_factory([offer("cpu4", 4, 0.5)], base_config(budget_per_hour=5.0, budget_total=100.0))
    with open(os.path.join(m.session, "auth_token")) as f:
        token = f.read().strip()
    d = m.start_driver(DRIVER_HEAD + """
@ray.remote(num_cpus=4)
def work():
    time.sleep(3)
    return node()
print(json.dumps(ray.get(work.remote())))
""")
    m.verified_running(1)
    target = wait_for(lambda: market_target(m.session), timeout=15,
                      what="the market in the service-discovery file")
    tls = cluster_tls(m.session)
    status, body = scrape(target, tls=tls)
    assert status == 401 and "Authorization: Bearer" in body, body
    status, text = scrape(target, token, tls)
    assert status == 200, text
    assert sample(text, 'rayc_market_leases{State="RAY_RUNNING",Provider="lab"}') == 1, text
    assert sample(text, 'rayc_market_spend_rate_dollars_per_hour{Kind="committed"}') == 0.5, text
    assert sample(text, 'rayc_market_budget_dollars{Window="hour"}') == 5.0
    assert sample(text, 'rayc_market_budget_dollars{Window="total"}') == 100.0
    assert "rayc_rpc_client_latency_seconds_count{Method=\"AutoscalerStateService.GetClusterResourceState\"}" in text
    m.driver_result(d)
    # Billing increments of 1 s: money is spent while the host is held.
    wait_for(lambda: (sample(scrape(target, token, tls)[1], "rayc_market_spend_dollars") or 0) > 0, timeout=20,
             what="spend in the market's metrics")
