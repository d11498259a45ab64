"""Helpers of the market suites (test_market_scale.py, test_market_faults.py): a head started
through the `rayc` command line with few CPUs and no GPUs, `rayc-market` with a local
provider whose offers file the test writes, drivers that bring demand, and readers of what
the market records (`rayc market status --format json`, its full state in the GCS's KV, the
provider's host records) and of the GCS's node table.

Every status read is kept in Market.samples, so a test can assert on the whole run (the
budget cap in every sample), not only on the last look.
"""

import glob
import json
import os
import signal
import subprocess

from cli_cluster import PYTHON, CliCluster, rayc, wait_for

PROVIDER = "lab"


def offer(offer_id, num_cpus=2, price=0.1, **more):
    """An offers-file entry: a CPU host unless num_gpus/gpu_name say otherwise; ten hosts
    available (the file's default is one) unless `available` says otherwise."""
    o = {"id": offer_id, "num_cpus": num_cpus, "memory": 1, "price_per_hour": price, "billing_increment_s": 1,
         "available": 10}
    o.update(more)
    return o


def base_config(**more):
    """A market config with the short timeouts the suites run under (an honest 256x256
    challenge takes well under 0.2 s, and the bound leaves room for a loaded CI machine; a
    `slow` host answers 2 x 3 + 1 s late)."""
    cfg = {
        "budget_per_hour": 5.0,
        "budget_total": 100.0,
        "idle_timeout_s": 3,
        "round_interval_ms": 300,
        "verification": {"enabled": True, "matrix_n": 256, "spot_checks": 8, "time_limit_s": 3,
                         "recheck_interval_s": 0},
        "timeouts": {"launch_s": 10, "register_s": 10},
        "providers": [{"name": PROVIDER, "type": "local", "offers": "offers.json"}],
    }
    cfg.update(more)
    return cfg


class Market:
    """A head, and rayc-market leasing hosts from the local provider `lab`."""

    def __init__(self, tmpdir, offers, config=None, head_cpus=1):
        self.dir = str(tmpdir)
        self.cluster = CliCluster()
        self.samples = []
        self.drivers = []
        self.session = None
        try:
            self.cluster.start_head(num_cpus=head_cpus)
            self.session = os.path.realpath(os.path.join(self.cluster.root, "session_latest"))
            self.state_dir = os.path.join(self.session, "market", PROVIDER)
            self.write_offers(offers)
            self.config = config or base_config()
            with open(os.path.join(self.dir, "market.json"), "w") as f:
                json.dump(self.config, f)
            self.start()
        except BaseException:
            self.stop()  # no cluster is left behind by a start that failed
            raise

    # ---- the market process ------------------------------------------------------------------
    def start(self):
        proc = rayc("market", "start", "--config", os.path.join(self.dir, "market.json"), check=False)
        if proc.returncode != 0:
            logs = ""
            for name in ("market.out", "market.err"):
                try:
                    with open(os.path.join(self.session, "logs", name)) as f:
                        logs += f"--- {name}:\n{f.read()[-3000:]}"
                except OSError:
                    pass
            raise RuntimeError(f"rayc market start exited {proc.returncode}: {proc.stdout}{proc.stderr}{logs}")

    def market_pid(self):
        with open(os.path.join(self.session, "pids", "market.pid")) as f:
            return int(f.read().strip())

    def kill9(self):
        pid = self.market_pid()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), what="rayc-market gone after SIGKILL")

    def write_offers(self, offers):
        """(Re)writes the offers file the provider reads again when it changes."""
        path = os.path.join(self.dir, "offers.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(offers, f)
        os.replace(tmp, path)

    # ---- what the market says -------------------------------------------------------------------
    def status(self):
        s = json.loads(rayc("market", "status", "--format", "json").stdout)
        self.samples.append(s)
        return s

    def state(self):
        """The market's full record in the GCS (leases with their timestamps)."""
        return json.loads(rayc("kv", "get", "market", "state").stdout)

    def leases(self, offer_id=None, states=None):
        out = []
        for lease in self.status()["leases"]:
            if offer_id is not None and lease["offer_id"] != offer_id:
                continue
            if states is not None and lease["state"] not in states:
                continue
            out.append(lease)
        return out

    def verified_running(self, n):
        """Waits for n RAY_RUNNING verified leases; the leases."""
        def ready():
            got = [x for x in self.leases(states=("RAY_RUNNING",)) if x["verified"]]
            return got if len(got) >= n else None
        return wait_for(ready, timeout=40, what=f"{n} verified running leases")

    def host_records(self):
        """Lease IDs the provider runs a host for (its <lease>.host files)."""
        return sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(self.state_dir, "*.host")))

    def rayc_status(self):
        return rayc("status").stdout

    def nodes(self):
        """The GCS's node table (`rayc list nodes --format json`)."""
        return json.loads(rayc("list", "nodes", "--format", "json").stdout)

    def market_nodes(self, alive_only=True):
        """{node ID: lease ID} of the nodes that carry a lease label."""
        out = {}
        for n in self.nodes():
            lease = n.get("labels", {}).get("rayc.io/market-lease")
            if lease and (n["state"] == "ALIVE" or not alive_only):
                out[n["node_id"]] = lease
        return out

    def head_node_id(self):
        return next(n["node_id"] for n in self.nodes() if n.get("is_head_node"))

    def log(self):
        if not self.session:
            return ""
        try:
            with open(os.path.join(self.session, "logs", "market.err")) as f:
                return f.read()
        except OSError:
            return ""

    # ---- drivers ------------------------------------------------------------------------------
    def start_driver(self, code, name="driver.py"):
        """Runs `code` as a driver in the background; the Popen (stdout in a file)."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(code)
        out = open(path + ".out", "w")
        p = subprocess.Popen([PYTHON, path], stdout=out, stderr=subprocess.STDOUT, text=True, cwd=self.dir)
        p.out_path = path + ".out"
        self.drivers.append(p)
        return p

    def driver_result(self, p, timeout=90):
        """Waits for a driver; the value of the last JSON line it printed."""
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        with open(p.out_path) as f:
            text = f.read()
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
        raise AssertionError(f"driver printed no result (exit {p.returncode}):\n{text}\n--- market log:\n"
                             f"{self.log()[-4000:]}")

    def stop(self):
        # Shown by pytest only when the test failed.
        print("--- market log (tail):\n" + self.log()[-6000:])
        for p in self.drivers:
            if p.poll() is None:
                p.kill()
                p.wait()
        pid = None
        try:
            pid = self.market_pid()
        except (OSError, TypeError, ValueError):
            pass
        rayc("market", "stop", "--release-all", check=False, timeout=60)
        self.cluster.stop()
        if pid and _alive(pid) and "rayc-market" in _cmdline(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def lease_states(status):
    return {x["lease_id"]: x["state"] for x in status["leases"]}


LIVE = ("QUEUED", "REQUESTED", "ALLOCATED", "RAY_RUNNING", "RAY_STOPPING")

# A driver preamble: joins the cluster and prints results as one JSON line.
DRIVER_HEAD = """
import json, os, sys, time
import ray
ray.init(address="auto")
def node():
    return ray.get_runtime_context().get_node_id()
"""

