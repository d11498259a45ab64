"""Prometheus metrics of a real secure cluster: a head and one more raylet started with
`rayc start` (2 CPUs each), tasks and an actor run through the Python API, then

  - the GCS's service-discovery file lists the GCS and both raylets, whose metrics ports
    are those of the node table (ray.nodes()' MetricsExportPort);
  - the metrics ports speak only HTTPS with certificates of the cluster CA: a plaintext
    request gets no HTTP answer, curl refuses the certificate without the CA and accepts it
    with the CA (the GCS's by host name too);
  - /metrics of the GCS and of each raylet answers 401 without a token or with a bad one,
    and Prometheus text with the cluster's admin token: actors by state, resources,
    leases, node memory, RPC latency histograms;
  - garbage on the metrics ports (TLS handshakes of garbage too) leaves the daemons
    serving; a GCS started with --insecure serves plain HTTP /metrics without a token, and
    so does every HTTP port of a cluster started with `rayc start --head --insecure`;
  - Debian's real Prometheus server, configured with file_sd_configs on that file (whose
    __scheme__ label says https), the cluster CA as tls_config and the token as its bearer
    credentials, scrapes every target and answers queries through its HTTP API with the
    cluster's real values (4 CPUs in all, the live actor)."""

import contextlib
import glob
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import ray

from cli_cluster import cluster_tls, joined_cluster, rayc, use_short_session_root, wait_for

use_short_session_root()  # sockets live under it: see cli_cluster

SD_FILE = "prom_metrics_service_discovery.json"
PROMETHEUS = "/usr/bin/prometheus"


@pytest.fixture(scope="module")
def cluster():
    with joined_cluster(dict(num_cpus=2, labels={"name": "head"}),
                        dict(num_cpus=2, labels={"name": "w1"})) as c:
        yield c


@pytest.fixture(scope="module")
def head_session(cluster):
    # The head's session alone writes it (session_latest links to that same session).
    found = wait_for(lambda: sorted({os.path.realpath(p)
                                     for p in glob.glob(os.path.join(cluster.root, "session_*", SD_FILE))}),
                     what="the service-discovery file")
    assert len(found) == 1, found
    return os.path.dirname(found[0])


@pytest.fixture(scope="module")
def token(head_session):
    with open(os.path.join(head_session, "auth_token")) as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def ca_file(head_session):
    return os.path.join(head_session, "ca.crt")


@ray.remote
def square(x):
    return x * x


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def add(self):
        self.n += 1
        return self.n


@pytest.fixture(scope="module")
def workload(cluster):
    assert ray.get([square.remote(i) for i in range(20)]) == [i * i for i in range(20)]
    counter = Counter.remote()
    assert ray.get([counter.add.remote() for _ in range(5)])[-1] == 5
    yield counter


def read_sd(session):
    with open(os.path.join(session, SD_FILE)) as f:
        return json.load(f)


def targets(session):
    """{component or node ID: "ip:port"} from the service-discovery file."""
    out = {}
    for group in read_sd(session):
        assert group["labels"]["job"] == "ray"
        assert group["labels"]["__scheme__"] == "https"
        assert len(group["targets"]) == 1
        key = group["labels"].get("NodeId") or group["labels"]["Component"]
        out[key] = group["targets"][0]
    return out


def get(target, token=None, path="/metrics", tls=None):
    """(status, body text) of GET https://target/path trusting tls (an SSL context), or of
    http://target/path when tls is None (an insecure cluster)."""
    req = urllib.request.Request(f"{'https' if tls else 'http'}://{target}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30, context=tls) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text):
    """{(name, frozenset of label pairs): value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, labels = series, frozenset()
        if "{" in series:
            name, rest = series.split("{", 1)
            pairs = []
            for part in rest.rstrip("}").split('",'):
                k, v = part.split("=", 1)
                pairs.append((k, v.strip('"')))
            labels = frozenset(pairs)
        out[(name, labels)] = float(value)
    return out


def value(s, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in s.items() if n == name and want <= set(ls))


def test_discovery_file_matches_node_table(cluster, head_session, workload):
    nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    t = wait_for(lambda: (lambda t: t if len(t) == 3 else None)(targets(head_session)),
                 what="the GCS and both raylets in the discovery file")
    assert "gcs" in t
    with open(os.path.join(head_session, "gcs_metrics_port")) as f:
        assert t["gcs"].endswith(":" + f.read().strip())
    for node_id, n in nodes.items():
        assert n["MetricsExportPort"] > 0
        assert t[node_id] == f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}"


def recv_all(sock):
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except OSError:
        return out


def curl(url, *args):
    """(exit code, HTTP status text) of curl on url; curl trusts the system's roots unless
    --cacert is among args."""
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", *args, url],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


def test_metrics_ports_speak_only_tls(head_session, token, ca_file):
    for key, target in targets(head_session).items():
        host, port = target.rsplit(":", 1)
        # Plaintext HTTP gets no HTTP answer (the token would have crossed the network in clear).
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() +
                         b"\r\nConnection: close\r\n\r\n")
            out = recv_all(sock)
        assert not out.startswith(b"HTTP/"), (key, out[:200])
        # A client that does not trust the cluster CA refuses the certificate (curl's 60).
        rc, _ = curl(f"https://{target}/metrics", "-H", f"Authorization: Bearer {token}")
        assert rc == 60, (key, rc)
        # With the CA: verified by IP, and the token is still required.
        rc, code = curl(f"https://{target}/metrics", "--cacert", ca_file, "-H", f"Authorization: Bearer {token}")
        assert (rc, code) == (0, "200"), (key, rc, code)
        rc, code = curl(f"https://{target}/metrics", "--cacert", ca_file)
        assert (rc, code) == (0, "401"), (key, rc, code)
    # The GCS's certificate names this host too, for admins who type its name.
    name = socket.gethostname()
    host, port = targets(head_session)["gcs"].rsplit(":", 1)
    rc, code = curl(f"https://{name}:{port}/metrics", "--cacert", ca_file, "--resolve", f"{name}:{port}:{host}",
                    "-H", f"Authorization: Bearer {token}")
    assert (rc, code) == (0, "200"), (name, rc, code)
    rc, _ = curl(f"https://not-{name}:{port}/metrics", "--cacert", ca_file, "--resolve",
                 f"not-{name}:{port}:{host}", "-H", f"Authorization: Bearer {token}")
    assert rc == 60, rc  # names the certificate does not carry are refused


def test_metrics_need_the_cluster_token(head_session, token):
    tls = cluster_tls(head_session)
    for target in targets(head_session).values():
        status, body = get(target, tls=tls)
        assert status == 401, body
        assert "Authorization: Bearer" in body
        status, body = get(target, token="rayc1.not.valid", tls=tls)
        assert status == 401, body
        assert "refused" in body
        status, body = get(target, token=token, path="/other", tls=tls)
        assert status == 404


def test_gcs_metrics(head_session, token, workload):
    status, text = get(targets(head_session)["gcs"], token=token, tls=cluster_tls(head_session))
    assert status == 200, text
    assert "# TYPE ray_actors gauge" in text
    s = samples(text)
    assert value(s, "ray_actors", State="ALIVE", Name="Counter", Source="gcs") >= 1
    assert value(s, "ray_cluster_active_nodes") == 2
    assert value(s, "rayc_rpc_server_latency_seconds_count", Method="NodeInfoGcsService.RegisterNode") == 2
    assert value(s, "rayc_rpc_server_latency_seconds_bucket",
                 Method="NodeInfoGcsService.RegisterNode", le="+Inf") == 2


def test_tasks_by_state(head_session, token, workload):
    """ray_tasks counts tasks (from the GCS's task events), once across all targets: the 20
    calls of square and the 5 actor calls each appear as one FINISHED attempt."""
    def scrape():
        s = {}
        for target in targets(head_session).values():
            status, text = get(target, token=token, tls=cluster_tls(head_session))
            assert status == 200, text
            for k, v in samples(text).items():
                s[k] = s.get(k, 0) + v
        return s

    s = wait_for(lambda: (lambda s: s if value(s, "ray_tasks", State="FINISHED", Name="square") >= 20 else None)(
        scrape()), what="the 20 square tasks in ray_tasks")
    assert value(s, "ray_tasks", State="FINISHED", Name="square") == 20
    assert value(s, "ray_tasks", State="FINISHED", Name="square", IsRetry="0", Source="gcs") == 20
    assert value(s, "ray_tasks", Name="square") == 20  # each attempt once, in one state
    assert value(s, "ray_tasks", State="FINISHED", Name="Counter.add") == 5, {
        k: v for k, v in s.items() if k[0] == "ray_tasks"}
    job = ray.get_runtime_context().get_job_id()
    assert value(s, "ray_tasks", Name="square", JobId=job) == 20


def test_raylet_metrics(head_session, token, workload):
    t = targets(head_session)
    cpus = leased = granted = 0
    for key, target in t.items():
        if key == "gcs":
            continue
        status, text = get(target, token=token, tls=cluster_tls(head_session))
        assert status == 200, text
        s = samples(text)
        cpus += value(s, "ray_resources", Name="CPU")
        leased += value(s, "rayc_leases", State="GRANTED")
        granted += value(s, "rayc_leases_granted_total")
        assert value(s, "ray_node_mem_total", NodeId=key) > value(s, "ray_node_mem_used", NodeId=key) > 0
        assert value(s, "ray_node_cpu_count", NodeId=key) == os.cpu_count()
        assert ("ray_object_store_memory", frozenset({("Location", "MMAP_SHM"), ("ObjectState", "SEALED")})) in s
        assert value(s, "rayc_rpc_server_latency_seconds_count") > 0
        assert value(s, "rayc_rpc_client_latency_seconds_count", Method="NodeInfoGcsService.RegisterNode") == 1
    assert cpus == 4
    assert leased >= 1  # the live actor's worker
    assert granted >= 2  # the tasks' leases and the actor's


def test_daemons_survive_garbage(head_session, token):
    tls = cluster_tls(head_session)
    rnd = random.Random(6)
    # TLS records of garbage: a handshake record with a random body, one that claims more
    # than it sends, an alert, and a ClientHello cut short.
    tls_junk = [b"\x16\x03\x01\x02\x00" + bytes(rnd.randrange(256) for _ in range(512)),
                b"\x16\x03\x03\xff\xff\x01\x00\xff\xfb" + b"\x03\x03" + b"\x00" * 40,
                b"\x15\x03\x03\x00\x02\x02\x28", b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03" + b"\x11" * 10]
    for target in targets(head_session).values():
        host, port = target.rsplit(":", 1)
        # Inside TLS: requests too large for the server, after a good handshake.
        for junk in (b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 100000, b"\x00\xff\xfe garbage\r\n\r\n"):
            with socket.create_connection((host, int(port)), timeout=10) as plain:
                with tls.wrap_socket(plain, server_hostname=host) as sock:
                    try:
                        sock.sendall(junk)
                        sock.recv(4096)
                    except OSError:
                        pass
        for junk in [b"\x00\xff\xfe garbage\r\n\r\n", b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 100000,
                     b"GET " + b"/" * 70000 + b" HTTP/1.1\r\n\r\n"] + tls_junk:
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                try:
                    sock.sendall(junk)
                    sock.shutdown(socket.SHUT_WR)
                    sock.recv(4096)
                except OSError:
                    pass  # the server may close on us: what matters is that it still serves
        req = urllib.request.Request(f"https://{target}/metrics", data=b"x" * (2 << 20), method="POST")
        req.add_header("Authorization", f"Bearer {token}")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30, context=tls)
        assert e.value.code == 413
        status, text = get(target, token=token, tls=tls)
        assert status == 200 and "rayc_rpc_server_latency_seconds" in text


def test_insecure_gcs_needs_no_token(tmp_path):
    """A GCS started with --insecure serves /metrics in plain HTTP to anyone (as every caller
    of an insecure cluster is admin), and lists itself in its discovery file as http."""
    gcs = subprocess.Popen([os.path.join(os.environ.get("RAYC_BIN_DIR", ""), "rayc-gcs"), "--insecure",
                            "--host", "127.0.0.1", "--port", "0", "--metrics-export-port", "0",
                            "--session-dir", str(tmp_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = tmp_path / "gcs_metrics_port"
        wait_for(port_file.exists, what="gcs_metrics_port")
        port = port_file.read_text().strip()
        status, text = get(f"127.0.0.1:{port}")
        assert status == 200, text
        assert "ray_cluster_active_nodes 0" in text.splitlines()
        sd = json.loads((tmp_path / SD_FILE).read_text())
        assert sd == [{"labels": {"__scheme__": "http", "job": "ray", "Component": "gcs"},
                       "targets": [f"127.0.0.1:{port}"]}]
    finally:
        gcs.terminate()
        gcs.wait(timeout=30)


def test_insecure_cluster_serves_plain_http():
    """`rayc start --head --insecure` (asked for by name here): every HTTP port stays plain
    HTTP, listed as such, with no TLS spoken; `rayc job` reaches the dashboard in http://."""
    root = tempfile.mkdtemp(prefix="rayc-i-")
    try:
        rayc("start", "--head", "--insecure", "--port", "0", "--dashboard-port", "0", "--node-ip-address",
             "127.0.0.1", "--num-cpus", "1", root=root)
        session = os.path.realpath(os.path.join(root, "session_latest"))
        with open(os.path.join(session, "dashboard_url")) as f:
            url = f.read().strip()
        assert url.startswith("http://"), url
        groups = wait_for(lambda: (lambda g: g if len(g) == 2 else None)(read_sd(session)),
                          what="the GCS and the raylet in the insecure discovery file")
        for group in groups:
            assert group["labels"]["__scheme__"] == "http"
            target = group["targets"][0]
            status, text = get(target)
            assert status == 200 and "# TYPE" in text, text
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as plain:
                with pytest.raises((ssl.SSLError, OSError)):
                    ssl.create_default_context().wrap_socket(plain, server_hostname=host)
        with urllib.request.urlopen(url + "/api/version", timeout=30) as r:
            assert r.status == 200
        out = rayc("job", "submit", "--", "echo", "plain-http-job", root=root, timeout=120).stdout
        assert "plain-http-job" in out
        host_port = url[len("http://"):]
        assert "plain-http-job" in rayc("job", "list", "--address", host_port, root=root).stdout
    finally:
        rayc("stop", root=root, check=False)
        shutil.rmtree(root, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prom_query(port, query):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
    except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
        return None
    assert body["status"] == "success", body
    return body["data"]["result"]


@contextlib.contextmanager
def prometheus(config, tmp):
    """Debian's Prometheus on config (its data and log in tmp, removed after); yields its
    HTTP port. Its log is printed when the body fails."""
    port = free_port()
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        yield port
    except BaseException:
        log.flush()
        with open(os.path.join(tmp, "prometheus.log")) as f:
            print("--- prometheus log ---\n" + f.read()[-4000:])
        raise
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_prometheus_scrapes_the_cluster(head_session, token, workload):
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip(f"{PROMETHEUS} is not installed (Debian package prometheus; "
                    "scripts/install-deps.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="rayc-prom-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ray
    scrape_interval: 1s
    scrape_timeout: 1s
    authorization:
      type: Bearer
      credentials_file: {token_file}
    tls_config:
      ca_file: {os.path.join(head_session, "ca.crt")}
    file_sd_configs:
      - files: ['{os.path.join(head_session, SD_FILE)}']
        refresh_interval: 1s
""")
    with prometheus(config, tmp) as port:
        up = wait_for(lambda: (lambda r: r if r and len(r) == 3 and all(x["value"][1] == "1" for x in r)
                               else None)(prom_query(port, 'up{job="ray"}')),
                      timeout=90, interval=1, what="Prometheus scraping the GCS and both raylets")
        assert {x["metric"]["Component"] for x in up} == {"gcs", "raylet"}
        assert {x["metric"]["instance"] for x in up} == set(targets(head_session).values())
        cpus = wait_for(lambda: prom_query(port, 'sum(ray_resources{Name="CPU"})'), timeout=30, interval=1,
                        what="ray_resources in Prometheus")
        assert float(cpus[0]["value"][1]) == 4.0
        actors = prom_query(port, 'sum(ray_actors{State="ALIVE",Name="Counter"})')
        assert float(actors[0]["value"][1]) >= 1
        nodes = prom_query(port, "ray_cluster_active_nodes")
        assert float(nodes[0]["value"][1]) == 2
        per_node = prom_query(port, 'ray_node_mem_total')
        assert len(per_node) == 2 and all(float(x["value"][1]) > 0 for x in per_node)


def test_session_prometheus_and_grafana_files(head_session, workload):
    """The GCS writes a Prometheus config and Grafana provisioning for its session (as Ray
    does under <session>/metrics): Debian's Prometheus, run on the config exactly as written,
    scrapes every daemon, and every query of the default Grafana dashboard evaluates there,
    those about what this cluster has (tasks, actors, CPUs, memory, leases) with data."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip(f"{PROMETHEUS} is not installed (Debian package prometheus; "
                    "scripts/install-deps.sh installs it)")
    metrics = os.path.join(head_session, "metrics")
    config = os.path.join(metrics, "prometheus", "prometheus.yml")
    grafana = os.path.join(metrics, "grafana")
    with open(os.path.join(grafana, "grafana.ini")) as f:
        ini = f.read()
    provisioning = os.path.join(grafana, "provisioning")
    assert f"provisioning = {provisioning}\n" in ini
    with open(os.path.join(provisioning, "datasources", "default.yml")) as f:
        datasource = f.read()
    assert "type: prometheus" in datasource and "uid: rayc_prometheus" in datasource
    assert 'url: "http://localhost:9090"' in datasource
    with open(os.path.join(provisioning, "dashboards", "default.yml")) as f:
        assert f'path: "{os.path.join(grafana, "dashboards")}"' in f.read()
    with open(os.path.join(grafana, "dashboards", "default_grafana_dashboard.json")) as f:
        dashboard = json.load(f)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 10
    queries = [t["expr"] for p in panels for t in p["targets"]]
    assert all(t["datasource"]["uid"] == "rayc_prometheus" for p in panels for t in p["targets"])
    promtool = os.path.join(os.path.dirname(PROMETHEUS), "promtool")
    if os.access(promtool, os.X_OK):
        check = subprocess.run([promtool, "check", "config", config], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    # Nothing of these exists on this cluster: no GPUs, no market, no placement groups, and
    # maybe no task running at the moment of the query.
    may_be_empty = ("GPU", "rayc_market", "ray_placement_groups", 'State!~"FINISHED|FAILED"')
    with prometheus(config, tempfile.mkdtemp(prefix="rayc-prom-")) as port:
        wait_for(lambda: (lambda r: r if r and len(r) == 3 and all(x["value"][1] == "1" for x in r)
                          else None)(prom_query(port, 'up{job="ray"}')),
                 timeout=90, interval=1, what="Prometheus on the session's config scraping all three daemons")

        def evaluate():
            results = {q: prom_query(port, q) for q in queries}
            empty = [q for q, r in results.items() if not r and not any(s in q for s in may_be_empty)]
            return None if empty else results

        # rate() needs two scrapes (10 s apart in the written config).
        results = wait_for(evaluate, timeout=90, interval=2, what="data for the dashboard's queries")
        assert float(results['sum(ray_resources{Name="CPU"})'][0]["value"][1]) == 4.0
        finished = {r["metric"]["State"]: float(r["value"][1])
                    for r in results['sum(ray_tasks{State=~"FINISHED|FAILED"}) by (State)']}
        assert finished.get("FINISHED", 0) >= 25, finished  # square x20, Counter.add x5


def test_rayc_metrics_launches_and_stops_prometheus(cluster, head_session, workload):
    """`rayc metrics launch-prometheus` runs Debian's Prometheus on the session's config (as
    Ray's `ray metrics launch-prometheus`), ready when it returns; it refuses a second one;
    `shutdown-prometheus` stops it; `rayc stop` would leave it alone, so nothing else does."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip(f"{PROMETHEUS} is not installed (Debian package prometheus; "
                    "scripts/install-deps.sh installs it)")
    port = free_port()
    launched = rayc("metrics", "launch-prometheus", "--port", str(port), "--prometheus", PROMETHEUS,
                    root=cluster.root, check=False, timeout=90)
    try:
        assert launched.returncode == 0, launched.stderr
        assert f"http://127.0.0.1:{port}" in launched.stdout and head_session in launched.stdout
        pid_file = os.path.join(head_session, "metrics", "prometheus", "prometheus.pid")
        with open(pid_file) as f:
            pid = int(f.read())
        assert not os.path.exists(os.path.join(head_session, "pids", "prometheus.pid"))
        assert prom_query(port, "up") is not None  # ready when the command returned
        wait_for(lambda: (lambda r: r if r and len(r) == 3 and all(x["value"][1] == "1" for x in r)
                          else None)(prom_query(port, 'up{job="ray"}')),
                 timeout=90, interval=1, what="the launched Prometheus scraping all three daemons")
        again = rayc("metrics", "launch-prometheus", "--port", str(free_port()), root=cluster.root, check=False)
        assert again.returncode == 1 and "already runs" in again.stderr and str(pid) in again.stderr
        bad = rayc("metrics", "launch-prometheus", "--port", "99999", root=cluster.root, check=False)
        assert bad.returncode == 2 and "--port" in bad.stderr
    finally:
        stopped = rayc("metrics", "shutdown-prometheus", root=cluster.root, check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped Prometheus" in stopped.stdout
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert prom_query(port, "up") is None
    assert not os.path.exists(pid_file)
    none = rayc("metrics", "shutdown-prometheus", root=cluster.root, check=False)
    assert none.returncode == 1 and "no Prometheus" in none.stderr
