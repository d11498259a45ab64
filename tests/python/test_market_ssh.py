"""rayc-market with the ssh provider, end to end: a secure head with one CPU, a real sshd on
loopback (its own host key and an authorized key made for the test), and a market whose
only provider reaches "its hosts" over OpenSSH. A job that needs four CPUs makes the market
run `rayc start` on the host over ssh with a single-use join token; the node registers,
passes verification and runs the job; once idle it is drained and stopped over ssh again.

Skipped only where /usr/sbin/sshd is not installed (Debian's openssh-server; install-deps.sh
installs it).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from cli_cluster import CliCluster, rayc, run_driver, use_short_session_root, wait_for

SSHD = "/usr/sbin/sshd"

JOB = (
    "import ray\n"
    "ray.init(address='auto')\n"
    "@ray.remote(num_cpus=4)\n"
    "def where():\n"
    "    return ray.get_runtime_context().get_node_id()\n"
    "print(ray.get(where.remote(), timeout=120))\n"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd():
    if not os.path.exists(SSHD):
        pytest.skip("sshd is not installed (Debian package openssh-server)")
    d = tempfile.mkdtemp(prefix="rayc-sshd-")
    for name in ("host_key", "id"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{name}"], check=True)
    shutil.copy(f"{d}/id.pub", f"{d}/authorized_keys")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    with open(f"{d}/sshd_config", "w") as f:
        f.write(
            f"HostKey {d}/host_key\nListenAddress 127.0.0.1\nAuthorizedKeysFile {d}/authorized_keys\n"
            f"PidFile {d}/sshd.pid\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n"
            # The remote rayc finds its session root and the CA pin in the command line, not
            # in the environment of the test.
            "PermitUserEnvironment no\n"
        )
    port = free_port()
    proc = subprocess.Popen([SSHD, "-D", "-f", f"{d}/sshd_config", "-p", str(port), "-E", f"{d}/sshd.log"])

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=10, what="sshd listening")
    yield {"dir": d, "port": port}
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(sshd):
    use_short_session_root()
    c = CliCluster()
    try:
        c.start_head(num_cpus=1)
        yield c
    finally:
        rayc("market", "stop", check=False)
        c.stop()


def market_status():
    out = rayc("market", "status", "--format", "json", check=False).stdout
    try:
        return json.loads(out)
    except ValueError:
        return {}


def test_ssh_provider_leases_runs_and_releases(cluster, sshd, tmp_path):
    d = sshd["dir"]
    offers = [{"id": "own-cpu4", "gpu_name": "", "num_gpus": 0, "gpu_memory": 0, "num_cpus": 4, "memory": 2,
               "price_per_hour": 0.2, "billing_increment_s": 0, "region": "lab", "reliability": 1,
               "lease_duration_s": 0, "behaviour": "honest", "host": "127.0.0.1"}]
    (tmp_path / "offers.json").write_text(json.dumps(offers))
    import getpass

    config = {
        "budget_per_hour": 1.0, "idle_timeout_s": 3, "round_interval_ms": 300,
        "verification": {"matrix_n": 256, "spot_checks": 8, "time_limit_s": 10},
        "timeouts": {"launch_s": 60, "register_s": 60},
        "providers": [{
            "name": "own", "type": "ssh", "hosts": ["127.0.0.1"], "user": getpass.getuser(),
            "key": f"{d}/id", "offers": "offers.json",
            "ssh_options": f"-p {sshd['port']} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                           "-o LogLevel=ERROR",
        }],
    }
    (tmp_path / "market.json").write_text(json.dumps(config))
    rayc("market", "start", "--config", str(tmp_path / "market.json"))

    proc = run_driver(JOB, tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    node = proc.stdout.strip().splitlines()[-1]

    status = market_status()
    leases = [l for l in status["leases"] if l["provider"] == "own"]
    assert len(leases) == 1, status
    lease = leases[0]
    assert lease["offer_id"] == "own-cpu4"
    assert lease["node_id"] == node, (lease, node)
    assert lease["verified"], lease
    assert lease["state"] in ("RAY_RUNNING", "RAY_STOPPING", "TERMINATED"), lease

    # Idle: drained, and stopped over ssh; its node leaves the cluster.
    def released():
        s = market_status()
        return [l for l in s.get("leases", []) if l["lease_id"] == lease["lease_id"] and l["state"] == "TERMINATED"]

    wait_for(released, timeout=60, what="the idle ssh host released")

    def node_gone():
        nodes = json.loads(rayc("list", "nodes", "--format", "json").stdout)
        alive = [n for n in nodes if n.get("node_id") == node and n.get("state") == "ALIVE"]
        return not alive

    wait_for(node_gone, timeout=60, what="the released host's node gone from the cluster")
