"""The web dashboard of rayc-dashboard on a secure three-node cluster started with `rayc
start --head`: its files are served without a token and carry the security headers, its
JSON endpoints answer only the admin token, no path leaves the UI's directory, garbage does
not bring it down, and Debian's headless Chromium (driven through chromedriver's W3C
WebDriver HTTP protocol) logs in with the token, sees the three nodes, submits a job from
the Jobs page, follows it to SUCCEEDED with its output, visits every page, reads a worker
log of another node through that node's raylet, and leaves screenshots in the build's
artifacts directory. The admin token replaced with `rayc get-auth-token --generate` is
followed without a restart: the old one is refused, the dashboard's own calls use the new.

The dashboard speaks HTTPS with a certificate of the cluster CA: the test's clients trust
the session's ca.crt, and Chromium trusts it as an admin's browser would, through an NSS
database (certutil, Debian's libnss3-tools) in the home directory it runs with."""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import ssl

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cli_cluster import RAYC, CliCluster, cluster_tls, rayc, use_short_session_root, wait_for  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = os.environ.get("RAYC_ARTIFACTS_DIR") or os.path.join(tempfile.gettempdir(), "rayc-artifacts")
MARKER = "dashboard-job-marker-7f3a"

# A driver that holds an actor, a running task and a placement group no node can hold.
HOLDER = """
import sys, time
import ray
from ray.util.placement_group import placement_group

ray.init(address="auto")

@ray.remote
class Holder:
    def ping(self):
        return 1

@ray.remote
def sleeper():
    time.sleep(120)

h = Holder.options(name="holder").remote()
ray.get(h.ping.remote())
t = sleeper.remote()
pg = placement_group([{"CPU": 64}], name="too-big")
print("ready", flush=True)
time.sleep(120)
"""

# A driver that runs TALLY_N tasks of a distinctive function and one task that raises.
TALLY_N = 6
TALLIES = """
import time
import ray

ray.init(address="auto")

@ray.remote
def dash_tally_5e2b(i):
    return i * 2

@ray.remote
def dash_boom_5e2b():
    raise ValueError("boom")

assert ray.get([dash_tally_5e2b.remote(i) for i in range(%d)]) == [i * 2 for i in range(%d)]
try:
    ray.get(dash_boom_5e2b.remote())
except Exception:
    pass
else:
    raise SystemExit("the raising task did not raise")
time.sleep(3)  # the workers' task events reach the GCS
print("done", flush=True)
""" % (TALLY_N, TALLY_N)

# A driver whose task needs four CPUs: no node has them until the market leases one.
NEEDS_FOUR = """
import time
import ray

ray.init(address="auto")

@ray.remote(num_cpus=4)
def big():
    time.sleep(120)

ray.get(big.remote())
"""


# A task on the GPU node (the only one with a GPU) prints a marker into its worker's log there.
REMOTE_MARK = "remote-node-log-marker-91c4"
ON_GPU = """
import ray
ray.init(address="auto")

@ray.remote(num_gpus=1)
def where():
    print("%s", flush=True)
    return ray.get_runtime_context().get_node_id()

print("node", ray.get(where.remote()), flush=True)
""" % REMOTE_MARK


@pytest.fixture(scope="module")
def cluster():
    use_short_session_root()
    c = CliCluster()
    try:
        rayc("start", "--head", "--port", "0", "--dashboard-port", "0", "--node-ip-address", "127.0.0.1",
             "--num-cpus", "2", "--labels", "name=head")
        with open(os.path.join(c.root, "session_latest", "gcs_address")) as f:
            c.address = f.read().strip()
        with open(os.path.join(c.root, "session_latest", "dashboard_url")) as f:
            c.url = f.read().strip()
        c.ca_file = os.path.join(c.root, "session_latest", "ca.crt")
        c.tls = cluster_tls(os.path.join(c.root, "session_latest"))
        c.token = rayc("get-auth-token").stdout.strip()  # what the admin pastes into the login form
        c.add_node(num_cpus=1, labels={"name": "gpu"}, resources={"accelerator_type:H100": 1}, num_gpus=1)
        c.add_node(num_cpus=1, labels={"name": "cpu"})
        yield c
    finally:
        c.stop()


def get(c, path, token=None, method="GET", body=None):
    """(status, headers, body bytes) of one request."""
    req = urllib.request.Request(c.url + path, method=method, data=body)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30, context=c.tls) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def raw(c, data, timeout=10):
    """Sends raw bytes to the dashboard; what came back before it closed (or timeout)."""
    u = urllib.parse.urlparse(c.url)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as plain, \
            c.tls.wrap_socket(plain, server_hostname=u.hostname) as s:
        try:  # no half-close: on a TLS socket it would drop TLS and read the raw records
            s.sendall(data)
        except OSError:  # the server may close on garbage before taking all of it
            pass
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError, ssl.SSLError):
            pass
        return out


def nodes(c):
    status, _, body = get(c, "/api/nodes", c.token)
    assert status == 200, body
    return json.loads(body)["nodes"]


def test_http_files_tokens_and_headers(cluster):
    c = cluster
    # The UI's files carry no data: no token needed, with the headers a browser should get.
    status, headers, body = get(c, "/")
    assert status == 200 and b"<title>rayc dashboard</title>" in body
    assert headers["Content-Type"].startswith("text/html")
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    status, headers, body = get(c, "/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"sessionStorage" in body
    # uPlot, fetched by npm at build time, is served from the same place.
    status, headers, body = get(c, "/uPlot.esm.js")
    assert status == 200 and b"uPlot" in body
    # Data needs the admin token.
    for path in ("/api/nodes", "/api/actors", "/api/placement_groups", "/api/tasks/summary", "/api/market",
                 "/api/timeseries", "/api/logs", "/api/jobs/"):
        status, headers, body = get(c, path)
        assert status == 401, (path, status, body)
        assert headers["WWW-Authenticate"] == "Bearer"
        status, _, body = get(c, path, "not-a-token")
        assert status == 401, (path, status, body)
    # With it: the three nodes, their resources, labels and GPU type.
    ns = wait_for(lambda: (lambda n: n if len([x for x in n if x["state"] == "ALIVE"]) == 3 else None)(nodes(c)),
                  timeout=60, what="three alive nodes in /api/nodes")
    gpu = [n for n in ns if n["labels"].get("name") == "gpu"][0]
    assert gpu["gpu_types"] == ["H100"] and gpu["resources_total"]["GPU"] == 1
    assert sum(n["is_head_node"] for n in ns) == 1
    status, headers, body = get(c, "/api/nodes", c.token)
    assert headers["Cache-Control"] == "no-store" and headers["Content-Type"] == "application/json"
    # The sampler fills the time series.
    ts = wait_for(lambda: (lambda t: t if t["samples"] >= 2 else None)(json.loads(get(c, "/api/timeseries", c.token)[2])),
                  timeout=30, what="two samples")
    assert ts["cpu_total"][-1] == 4 and ts["nodes_alive"][-1] == 3
    # The head's logs: listed, read, and nothing outside logs/.
    listing = json.loads(get(c, "/api/logs", c.token)[2])
    names = [f["name"] for f in listing["files"]]
    assert any(n.startswith("dashboard") for n in names), names
    status, _, body = get(c, "/api/logs?file=" + urllib.parse.quote(names[0]), c.token)
    assert status == 200
    for bad in ("../../../../etc/passwd", "..", ".", "/etc/passwd", ""):
        status, _, body = get(c, "/api/logs?file=" + urllib.parse.quote(bad, safe=""), c.token)
        assert status == 400 and b"root:" not in body, (bad, status)
    assert listing["is_head_node"] and len(listing["nodes"]) == 3, listing
    status, _, body = get(c, "/api/logs?node=" + "ab" * 28, c.token)
    assert status == 404 and b"no node" in body and b"in the node table" in body


def curl(url, *args):
    """(exit code, HTTP status text) of curl on url; curl trusts the system's roots unless
    --cacert is among args."""
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", *args, url],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


def test_https_only(cluster):
    """The dashboard speaks only HTTPS, with a certificate of the cluster CA for its address
    and this host's name; the token is still needed inside TLS."""
    c = cluster
    assert c.url.startswith("https://"), c.url
    u = urllib.parse.urlparse(c.url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(b"GET /api/nodes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + c.token.encode() +
                  b"\r\nConnection: close\r\n\r\n")
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
    assert not out.startswith(b"HTTP/"), out[:200]  # no answer in clear, so no token sent in clear either
    auth = ("-H", "Authorization: Bearer " + c.token)
    assert curl(c.url + "/api/nodes", *auth)[0] == 60  # the system's roots do not vouch for it
    assert curl(c.url + "/api/nodes", "--cacert", c.ca_file, *auth) == (0, "200")
    assert curl(c.url + "/api/nodes", "--cacert", c.ca_file) == (0, "401")
    name = socket.gethostname()
    assert curl(f"https://{name}:{u.port}/api/nodes", "--cacert", c.ca_file, "--resolve",
                f"{name}:{u.port}:{u.hostname}", *auth) == (0, "200")
    # `rayc job` trusts the cluster CA it finds (the session's), and only that one.
    assert rayc("job", "list", "--address", c.url).returncode == 0
    env = dict(os.environ, RAYC_CA_CERT="/etc/ssl/certs/ca-certificates.crt")
    r = subprocess.run([RAYC, "job", "list", "--address", c.url], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode != 0 and "certificate" in r.stderr, (r.returncode, r.stderr)
    # Garbage where a TLS handshake should be leaves it serving.
    for junk in (b"\x16\x03\x01\x02\x00" + os.urandom(512), b"\x16\x03\x03\xff\xff\x01\x00\xff\xfb\x03\x03",
                 b"\x00\xff" * 5000):
        with socket.create_connection((u.hostname, u.port), timeout=10) as s:
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass
    assert get(c, "/api/nodes", c.token)[0] == 200


def test_path_traversal_and_garbage(cluster):
    c = cluster
    for path in (b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/%2e%2e/etc/passwd", b"/..%2f..%2f..%2fetc%2fpasswd",
                 b"//etc/passwd", b"/.stamp", b"/%2fetc%2fpasswd", b"/app.js/../../../../etc/passwd",
                 b"/./index.html", b"/..\\..\\etc\\passwd"):
        out = raw(c, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = out.split(b"\r\n", 1)[0]
        assert b" 200 " not in head and b"root:" not in out, (path, out[:200])
    for junk in (b"\x00\xff" * 5000, b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 200000 + b"\r\n\r\n",
                 b"POST /api/jobs/ HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nabc", b"NONSENSE\r\n\r\n",
                 b"GET /api/nodes HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n\r\n", b"PUT / HTTP/1.1\r\n\r\n"):
        raw(c, junk, timeout=5)
    status, _, body = get(c, "/")
    assert status == 200
    assert len(nodes(c)) == 3


# ---- Chromium through chromedriver's W3C WebDriver protocol ------------------------------

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element reference


def browser_home_trusting(tmpdir, ca_file):
    """A home directory whose NSS database (~/.pki/nssdb, where Chromium on Linux keeps the
    roots a user added) trusts the cluster CA for web sites, made as an admin would:
    `certutil -N` and `certutil -A -t C,,`."""
    home = os.path.join(tmpdir, "home")
    nssdb = os.path.join(home, ".pki", "nssdb")
    os.makedirs(nssdb)
    subprocess.run(["certutil", "-N", "-d", "sql:" + nssdb, "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", "sql:" + nssdb, "-n", "rayc cluster CA", "-t", "C,,", "-i", ca_file],
                   check=True)
    return home


class WebDriver:
    def __init__(self, tmpdir, home=None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.log = open(os.path.join(tmpdir, "chromedriver.log"), "w")
        env = dict(os.environ, HOME=home) if home else None
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)
        self.base = f"http://127.0.0.1:{port}"
        wait_for(lambda: self._ready(), timeout=30, what="chromedriver ready")
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1500,1100", f"--user-data-dir={os.path.join(tmpdir, 'profile')}"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def _ready(self):
        try:
            with urllib.request.urlopen(self.base + "/status", timeout=2) as r:
                return json.loads(r.read())["value"]["ready"]
        except OSError:
            return False

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"webdriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text):
        el = self.find(css)
        self.s("POST", f"/element/{el}/clear", {})
        self.s("POST", f"/element/{el}/value", {"text": text})

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click", {})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.s("POST", "/execute/async", {"script": script, "args": list(args)})

    def text(self, css):
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css)

    def visible(self, css):
        return self.js("const e = document.querySelector(arguments[0]); return !!e && !e.closest('[hidden]');", css)

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def quit(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.log.close()


@pytest.fixture
def browser(tmp_path, cluster):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/install-deps.sh installs them)")
    if not shutil.which("certutil"):
        pytest.skip("certutil is not installed (Debian's libnss3-tools; scripts/install-deps.sh installs it)")
    wd = WebDriver(str(tmp_path), home=browser_home_trusting(str(tmp_path), cluster.ca_file))
    try:
        yield wd
    finally:
        wd.quit()


def test_browser_login_nodes_and_job(cluster, browser):
    c, wd = cluster, browser
    wd.go(c.url + "/")
    wait_for(lambda: wd.visible("#login-form"), timeout=30, what="the login form")
    # The page itself gets no data without the token.
    status = wd.js_async("fetch('/api/nodes').then(r => arguments[0](r.status), e => arguments[0](String(e)));")
    assert status == 401
    assert not wd.visible("#nodes-table")
    # A wrong token: back to the login form with the server's reason.
    wd.type("#token", "0123456789abcdef.not-a-valid-token")
    wd.click("#login-btn")
    wait_for(lambda: "401" in (wd.text("#login-reason") or ""), timeout=30, what="the reason of a refused token")
    assert wd.visible("#login-form")
    # The page runs under its CSP without violating it (uPlot included).
    wd.js("window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
          " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
    # The admin token: the overview lists the three nodes, with the GPU type and labels.
    wd.type("#token", c.token)
    wd.click("#login-btn")
    rows = lambda: wd.js("return [...document.querySelectorAll('#nodes-table tbody tr[data-state]')]"  # noqa: E731
                         ".map(r => [r.dataset.state, r.textContent]);")
    got = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(rows()), timeout=60, what="three nodes in the table")
    assert all(state == "ALIVE" for state, _ in got), got
    assert any("H100" in text and "name=gpu" in text for _, text in got), got
    assert any("(head)" in text for _, text in got), got
    # The token stays in sessionStorage; the plots are drawn by uPlot.
    assert wd.js("return sessionStorage.getItem('rayc-dashboard-token');") == c.token
    wait_for(lambda: wd.js("return document.querySelectorAll('#plot-resources canvas, #plot-tasks canvas').length") >= 2,
             timeout=30, what="the two uPlot charts")
    assert wd.js("return window.cspViolations;") == []
    os.makedirs(ARTIFACTS, exist_ok=True)
    overview_png = os.path.join(ARTIFACTS, "dashboard-overview.png")
    wd.screenshot(overview_png)

    # Jobs: submit from the form, follow it to SUCCEEDED and read its output.
    wd.go(c.url + "/#jobs")
    wait_for(lambda: wd.visible("#job-form"), timeout=30, what="the jobs page")
    # A driver that joins the cluster as its job, stores an object and prints the marker.
    entry = f"{sys.executable} -c \"import ray; ray.init(); print('{MARKER}', ray.get(ray.put(6)) * 7); ray.shutdown()\""
    wd.type("#job-entrypoint", entry)
    wd.click("#job-submit")
    wait_for(lambda: wd.text("#job-status") == "SUCCEEDED", timeout=90, what="the job SUCCEEDED in its view")
    wait_for(lambda: f"{MARKER} 42" in (wd.text("#job-logs") or ""), timeout=30, what="the marker in the logs view")
    sub = wd.text("#job-id")
    status, _, body = get(c, f"/api/jobs/{sub}", c.token)
    details = json.loads(body)
    assert status == 200 and details["status"] == "SUCCEEDED" and details["entrypoint"] == entry
    wait_for(lambda: wd.js("return [...document.querySelectorAll('#jobs-table tbody tr')]"
                           ".some(r => r.dataset.submissionId === arguments[0] && r.textContent.includes('SUCCEEDED'))",
                           sub), timeout=30, what="the job SUCCEEDED in the list")
    shot = os.path.join(ARTIFACTS, "dashboard.png")
    wd.screenshot(shot)
    assert os.path.getsize(shot) > 10000
    print(f"\nscreenshots: {shot} {overview_png}")

    # A driver with an actor, a task running and a placement group that can never be placed.
    series = lambda: json.loads(get(c, "/api/timeseries", c.token)[2])  # noqa: E731
    granted_before = series()["granted_total"][-1]
    drv = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        for line in drv.stdout:  # whatever else the driver prints comes first
            if line.strip() == "ready":
                break
        else:
            raise AssertionError(f"the holding driver exited {drv.wait()} before it was ready")
        actors = wait_for(lambda: [a for a in json.loads(get(c, "/api/actors", c.token)[2])["actors"]
                                   if a["class_name"] == "Holder" and a["state"] == "ALIVE"], timeout=30,
                          what="the actor in /api/actors")
        assert actors[0]["name"] == "holder" and actors[0]["pid"] > 0
        pg = wait_for(lambda: [g for g in json.loads(get(c, "/api/placement_groups", c.token)[2])["placement_groups"]
                               if g["name"] == "too-big" and g["explanation"]], timeout=30,
                      what="the pending group's explanation")[0]
        assert pg["state"] == "PENDING"
        wait_for(lambda: series()["running"][-1] >= 2, timeout=30, what="the actor and the task in the running series")
        # The raylets' lease-grant counters, scraped from their metrics endpoints, count both.
        wait_for(lambda: series()["granted_total"][-1] >= granted_before + 2, timeout=30,
                 what="two more lease grants in the series")
        assert max(series()["granted_per_s"]) > 0
        for page, css, expect in (("actors", "#actors-table tbody", "Holder"),
                                  ("pgs", "#pgs-table tbody", pg["explanation"])):
            wd.go(c.url + "/#" + page)
            wait_for(lambda: expect in (wd.text(css) or ""), timeout=30, what=f"the {page} page showing {expect!r}")
        wd.screenshot(os.path.join(ARTIFACTS, "dashboard-pgs.png"))
        # The driver's job holds two leases (the actor and the task) in the tasks summary.
        wd.go(c.url + "/#tasks")
        wait_for(lambda: wd.js("return [...document.querySelectorAll('#tasks-table tbody tr')]"
                               ".some(r => r.dataset.jobId === arguments[0] && Number(r.dataset.running) >= 2)",
                               actors[0]["job_id"]), timeout=30, what="the driver's job running two leases")
    finally:
        drv.kill()
        drv.wait()

    # The task-event table: the function's attempts FINISHED and the raising one FAILED, in
    # /api/tasks/summary and on the Tasks page.
    out = subprocess.run([sys.executable, "-c", TALLIES], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]

    def by_name(name):
        ev = json.loads(get(c, "/api/tasks/summary", c.token)[2])["events"]
        return next((g for g in ev["by_name"] if g["name"].endswith(name)), None), ev

    tally = wait_for(lambda: (lambda g: g if g and g["counts"].get("FINISHED", 0) >= TALLY_N else None)(
        by_name("dash_tally_5e2b")[0]), timeout=60, what="the tasks FINISHED in /api/tasks/summary")
    assert tally["total"] >= TALLY_N, tally
    boom, ev = wait_for(lambda: (lambda g: (g[0], g[1]) if g[0] and g[0]["counts"].get("FAILED", 0) >= 1 else None)(
        by_name("dash_boom_5e2b")), timeout=60, what="the raising task FAILED in /api/tasks/summary")
    failed = [t for t in ev["recent"] if t["state"] == "FAILED" and "dash_boom_5e2b" in (t["func_or_class_name"] + t["name"])]
    assert failed and failed[0]["error_type"] and failed[0]["job_id"], ev["recent"][:5]
    assert any(g["counts"].get("FINISHED", 0) >= TALLY_N for g in ev["by_job"]), ev["by_job"]
    wd.go(c.url + "/#tasks")
    names_js = ("return [...document.querySelectorAll('#task-names-table tbody tr')]"
                ".filter(r => (r.dataset.name || '').endsWith(arguments[0])).map(r => JSON.parse(r.dataset.counts));")
    wait_for(lambda: any(cn.get("FINISHED", 0) >= TALLY_N for cn in wd.js(names_js, "dash_tally_5e2b")), timeout=30,
             what="the function's FINISHED count on the Tasks page")
    wait_for(lambda: any(cn.get("FAILED", 0) >= 1 for cn in wd.js(names_js, "dash_boom_5e2b")), timeout=30,
             what="the raising function's FAILED count on the Tasks page")
    wait_for(lambda: "FAILED" in (wd.text("#task-recent-table tbody") or ""), timeout=30,
             what="a FAILED task among the newest on the Tasks page")
    assert wd.js("return window.cspViolations || [];") == []
    wd.screenshot(os.path.join(ARTIFACTS, "dashboard-tasks.png"))

    # Every other page renders from its endpoint.
    for page, css, expect in (("tasks", "#tasks-table tbody", details["job_id"]),
                              ("market", "#market-summary", "No market has run"),
                              ("logs", "#log-files", "dashboard")):
        wd.go(c.url + "/#" + page)
        wait_for(lambda: expect in (wd.text(css) or ""), timeout=30, what=f"the {page} page showing {expect!r}")
    # The head's logs include the job's driver log: opened from the list, it shows the marker.
    wait_for(lambda: wd.js("const a = [...document.querySelectorAll('#log-files a')]"
                           ".find(a => a.textContent.startsWith(arguments[0])); if (a) a.click(); return !!a;",
                           f"job-driver-{sub}.log"), timeout=30, what="the job's driver log in the list")
    wait_for(lambda: MARKER in (wd.text("#log-text") or ""), timeout=30, what="the marker in the log view")
    # A token that stops working sends the page back to the login form with the reason.
    wd.js("sessionStorage.setItem('rayc-dashboard-token', 'revoked.token');")
    wd.go(c.url + "/#overview")
    wait_for(lambda: wd.visible("#login-form") and "401" in (wd.text("#login-reason") or ""), timeout=30,
             what="the login form after a 401")


def remote_log(c, node_id, name):
    """(status, body) of one of node_id's log files, read through the dashboard."""
    status, _, body = get(c, f"/api/logs?node={node_id}&file=" + urllib.parse.quote(name, safe=""), c.token)
    return status, body


def worker_log_with(c, node_id, text):
    """The name of node_id's worker stdout file that holds text, or None."""
    status, _, body = get(c, f"/api/logs?node={node_id}", c.token)
    if status != 200:
        return None
    for f in json.loads(body)["files"]:
        if f["name"].startswith("worker-") and f["name"].endswith(".out"):
            status, data = remote_log(c, node_id, f["name"])
            if status == 200 and text.encode() in data:
                return f["name"]
    return None


def test_browser_reads_another_nodes_log(cluster, browser):
    c, wd = cluster, browser
    gpu = [n for n in nodes(c) if n["labels"].get("name") == "gpu" and n["state"] == "ALIVE"][0]
    assert not gpu["is_head_node"]
    out = subprocess.run([sys.executable, "-c", ON_GPU], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # The task's print also reaches the driver's stdout (in any order): the "node" line counts.
    ran_on = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("node ")]
    assert ran_on == [gpu["node_id"]], out.stdout
    # Through the REST endpoints: the node's raylet lists and reads its files.
    name = wait_for(lambda: worker_log_with(c, gpu["node_id"], REMOTE_MARK), timeout=30,
                    what="the marker in a worker log of the GPU node")
    head = json.loads(get(c, "/api/logs", c.token)[2])
    assert name not in [f["name"] for f in head["files"]], "the file is the head's: nothing was read remotely"
    listing = json.loads(get(c, f"/api/logs?node={gpu['node_id']}", c.token)[2])
    assert listing["node_id"] == gpu["node_id"] and not listing["is_head_node"]
    assert any(f["name"].startswith("raylet") for f in listing["files"]), listing
    # Nothing outside the node's logs/, whether the dashboard or the raylet refuses it.
    for bad in ("../../../../etc/passwd", "..", ".", "/etc/passwd", "", "..%2f..%2fetc%2fpasswd", "a/../../x"):
        status, body = remote_log(c, gpu["node_id"], bad)
        assert status in (400, 404) and b"root:" not in body, (bad, status, body)
    status, body = remote_log(c, gpu["node_id"], "no-such-file.log")
    assert status == 404 and b"no-such-file.log" in body, body

    # In the browser: the head is the default; the picker switches to the GPU node, whose
    # worker log shows the marker.
    wd.go(c.url + "/#logs")
    wait_for(lambda: wd.visible("#login-form"), timeout=30, what="the login form")
    wd.type("#token", c.token)
    wd.click("#login-btn")
    options = "return [...document.querySelectorAll('#log-node option')].map(o => [o.value, o.textContent]);"
    opts = wait_for(lambda: (lambda o: o if len(o) == 3 else None)(wd.js(options)), timeout=30,
                    what="three nodes in the Logs page's picker")
    assert wd.js("return document.getElementById('log-node').value;") == "" and "(head)" in opts[0][1], opts
    wait_for(lambda: "dashboard" in (wd.text("#log-files") or ""), timeout=30, what="the head's files listed first")
    assert gpu["node_id"] in [v for v, _ in opts], opts
    wd.js("const s = document.getElementById('log-node'); s.value = arguments[0];"
          " s.dispatchEvent(new Event('change'));", gpu["node_id"])
    wait_for(lambda: wd.js("const a = [...document.querySelectorAll('#log-files a')]"
                           ".find(a => a.dataset.name === arguments[0]); if (a) a.click(); return !!a;", name),
             timeout=30, what="the GPU node's worker log in the list")
    wait_for(lambda: REMOTE_MARK in (wd.text("#log-text") or ""), timeout=30, what="the marker in the log view")
    assert wd.text("#log-error") == ""
    os.makedirs(ARTIFACTS, exist_ok=True)
    wd.screenshot(os.path.join(ARTIFACTS, "dashboard-remote-log.png"))


def test_logs_of_a_node_that_went_away(cluster, browser):
    c, wd = cluster, browser
    root = c.add_outside_node(num_cpus=1, labels={"name": "leaver"})
    try:
        node = wait_for(lambda: [n for n in nodes(c) if n["labels"].get("name") == "leaver" and n["state"] == "ALIVE"],
                        timeout=60, what="the extra node alive")[0]
        wait_for(lambda: get(c, f"/api/logs?node={node['node_id']}", c.token)[0] == 200, timeout=30,
                 what="the extra node's logs listed")
        # The page shows its files ...
        wd.go(c.url + "/#logs")
        wait_for(lambda: wd.visible("#login-form"), timeout=30, what="the login form")
        wd.type("#token", c.token)
        wd.click("#login-btn")
        wait_for(lambda: wd.js("return [...document.querySelectorAll('#log-node option')].some(o => o.value === "
                               "arguments[0]);", node["node_id"]), timeout=30, what="the extra node in the picker")
        wd.js("const s = document.getElementById('log-node'); s.value = arguments[0];"
              " s.dispatchEvent(new Event('change'));", node["node_id"])
        wait_for(lambda: "raylet" in (wd.text("#log-files") or ""), timeout=30, what="the extra node's files")
    finally:
        c.stop_outside_node(root)
    # Gone: a clear answer naming the node (its raylet does not answer, or the node table
    # already says it is dead), in the page and the REST answer; the dashboard keeps serving.
    wait_for(lambda: node["node_id"][:16] in (wd.text("#log-error") or ""), timeout=30,
             what="the page saying the node does not answer")
    status, _, body = get(c, f"/api/logs?node={node['node_id']}", c.token)
    assert status in (404, 502, 503, 504), (status, body)
    assert node["node_id"][:16].encode() in body, body
    dead = lambda: get(c, f"/api/logs?node={node['node_id']}", c.token)  # noqa: E731
    wait_for(lambda: (lambda r: r[0] == 404 and b"is dead" in r[2])(dead()), timeout=60, what="the node reported dead")
    wait_for(lambda: "is dead" in (wd.text("#log-error") or ""), timeout=30, what="the page saying the node is dead")
    assert len([n for n in nodes(c) if n["state"] == "ALIVE"]) == 3


def test_admin_token_replaced_without_restart(cluster):
    c = cluster
    old = c.token
    new = rayc("get-auth-token", "--generate").stdout.strip()
    assert new and new != old
    c.token = new  # what later tests log in with
    since_ms = time.time() * 1000
    # The old token is refused at once, saying why; the new one is answered.
    status, _, body = get(c, "/api/nodes", old)
    assert status == 401 and b"was replaced" in body, (status, body)
    status, _, body = get(c, "/api/jobs/", old)
    assert status == 401, (status, body)
    # The dashboard's own calls to the GCS use the new token: the node table is fresh again.
    fresh = wait_for(lambda: (lambda j: j if j["updated_ms"] > since_ms and not j["error"] else None)(
        json.loads(get(c, "/api/nodes", new)[2])), timeout=30, what="a node table polled after the rotation")
    assert len([n for n in fresh["nodes"] if n["state"] == "ALIVE"]) == 3
    # A job submitted with the new token runs (the Jobs API writes to the GCS) ...
    body = json.dumps({"entrypoint": f"{sys.executable} -c \"print('after-rotation-ok')\""}).encode()
    status, _, text = get(c, "/api/jobs/", new, method="POST", body=body)
    assert status == 200, text
    sub = json.loads(text)["submission_id"]
    wait_for(lambda: json.loads(get(c, f"/api/jobs/{sub}", new)[2])["status"] == "SUCCEEDED", timeout=90,
             what="the job submitted after the rotation SUCCEEDED")
    # ... and another node's logs are read through its raylet with it.
    gpu = [n for n in fresh["nodes"] if n["labels"].get("name") == "gpu"][0]
    status, _, body = get(c, f"/api/logs?node={gpu['node_id']}", new)
    assert status == 200 and json.loads(body)["files"], (status, body)


# Runs last: it grows the cluster by a host that rayc-market leases from a local provider.
def test_market_lease_price_and_spend(cluster, browser, tmp_path):
    from market_harness import base_config, offer

    c, wd = cluster, browser
    (tmp_path / "offers.json").write_text(json.dumps([offer("cpu4", num_cpus=4, price=0.25)]))
    (tmp_path / "market.json").write_text(json.dumps(base_config()))
    rayc("market", "start", "--config", str(tmp_path / "market.json"))
    drv = subprocess.Popen([sys.executable, "-c", NEEDS_FOUR], stdout=subprocess.PIPE, text=True)
    try:
        # The leased host joins; the node table prices it from the market's records.
        leased = wait_for(lambda: [n for n in nodes(c) if n["market"] and n["state"] == "ALIVE"], timeout=90,
                          what="a leased node in /api/nodes")[0]
        assert leased["market"]["price_per_hour"] == 0.25 and leased["market"]["provider"] == "lab"
        status = json.loads(get(c, "/api/market", c.token)[2])["status"]
        lease = [x for x in status["leases"] if x["lease_id"] == leased["market"]["lease_id"]][0]
        assert lease["offer_id"] == "cpu4"
        wd.go(c.url + "/#overview")
        if not wd.visible("#nodes-table"):
            wd.type("#token", c.token)
            wd.click("#login-btn")
        wait_for(lambda: "$0.25/h (lab)" in (wd.text("#nodes-table tbody") or ""), timeout=30,
                 what="the leased node's price in the overview")
        wd.go(c.url + "/#market")
        wait_for(lambda: wd.js("return !!document.querySelector(`#leases-table tr[data-lease-id='${arguments[0]}']`)",
                               lease["lease_id"]), timeout=30, what="the lease on the market page")
        assert "Spend $" in wd.text("#market-summary")
        wd.screenshot(os.path.join(ARTIFACTS, "dashboard-market.png"))
    finally:
        drv.kill()
        drv.wait()
        rayc("market", "stop", "--release-all", check=False, timeout=60)
