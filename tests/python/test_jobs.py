"""Ray's Jobs API on a secure cluster started with `rayc start --head`: rayc-dashboard runs
each entrypoint as a supervised process whose driver joins the cluster as that job, keeps
its logs, records its status in the GCS, and answers Ray's REST shape behind the cluster
token; `rayc job` drives it."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cli_cluster import RAYC, CliCluster, cluster_tls, pid_running, rayc, use_short_session_root, wait_for  # noqa: E402

PY = sys.executable  # Debian's python3, which has rayc's package and its dependencies

DRIVER = """
import os
import ray

ray.init()

@ray.remote
def square(x):
    return x * x

print("sum of squares:", sum(ray.get([square.remote(i) for i in range(10)])), flush=True)
print("data file says:", open("data.txt").read().strip(), flush=True)
print("greeting:", os.environ.get("GREETING"), flush=True)

@ray.remote
def in_a_worker():
    return os.getcwd(), open("data.txt").read().strip(), os.environ.get("GREETING")

cwd, data, greeting = ray.get(in_a_worker.remote())
print("worker cwd:", cwd, flush=True)
print("worker reads:", data, "| worker greeting:", greeting, flush=True)
ray.shutdown()
"""

LONG = """
import os, sys, time
import subprocess
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(os.environ["PID_FILE"], "w").write("%d %d" % (os.getpid(), child.pid))
print("long job running", flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    use_short_session_root()
    c = CliCluster()
    c.start_head(num_cpus=2)
    with open(os.path.join(c.root, "session_latest", "dashboard_url")) as f:
        c.url = f.read().strip()
    with open(os.path.join(c.root, "session_latest", "auth_token")) as f:
        c.token = f.read().strip()
    c.tls = cluster_tls(os.path.join(c.root, "session_latest"))  # the dashboard serves HTTPS
    c.workdir = tmp_path_factory.mktemp("jobdir")
    (c.workdir / "script.py").write_text(DRIVER)
    (c.workdir / "long.py").write_text(LONG)
    (c.workdir / "data.txt").write_text("from the working dir\n")
    try:
        yield c
    finally:
        c.stop()


def rest(c, method, path, body=None, token=True, raw=None):
    """(status, text) of one request to the dashboard."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(c.url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + (token if isinstance(token, str) else c.token))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30, context=c.tls) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def job(c, sid):
    status, text = rest(c, "GET", f"/api/jobs/{sid}")
    assert status == 200, text
    return json.loads(text)


def wait_terminal(c, sid, timeout=90):
    return wait_for(lambda: (lambda j: j if j["status"] in ("SUCCEEDED", "FAILED", "STOPPED") else None)(job(c, sid)),
                    timeout=timeout, interval=0.5, what=f"job {sid} to end")


def test_submit_with_cli_waits_and_succeeds(cluster):
    c = cluster
    proc = rayc("job", "submit", "--working-dir", str(c.workdir), "--submission-id", "cli_job_1",
                "--runtime-env-json", json.dumps({"env_vars": {"GREETING": "hello jobs"}}),
                "--", PY, "script.py", timeout=150)
    assert "Job 'cli_job_1' submitted successfully" in proc.stdout
    assert "sum of squares: 285" in proc.stdout  # the logs were tailed
    assert "Job 'cli_job_1' succeeded" in proc.stdout
    j = job(c, "cli_job_1")
    assert j["status"] == "SUCCEEDED" and j["type"] == "SUBMISSION"
    assert j["driver_exit_code"] == 0 and j["end_time"] >= j["start_time"] > 0
    assert j["runtime_env"]["env_vars"] == {"GREETING": "hello jobs"}
    assert j["runtime_env"]["working_dir"] == str(c.workdir)
    logs = rayc("job", "logs", "cli_job_1").stdout
    assert "data file says: from the working dir" in logs and "greeting: hello jobs" in logs
    # The job's workers get its runtime env too: env_vars, and the working_dir as a package
    # (what any node of the cluster unpacks), not the head's copy.
    assert "worker reads: from the working dir | worker greeting: hello jobs" in logs, logs
    assert re.search(r"^worker cwd: .*/runtime_resources/packages/_ray_pkg_[0-9a-f]{40}$", logs, re.M), logs
    st = rayc("job", "status", "cli_job_1").stdout
    assert "Status for job 'cli_job_1': SUCCEEDED" in st
    # The driver joined as that job: the GCS job table carries the submission ID.
    assert j["job_id"] and j["driver_info"]["id"] == j["job_id"] and int(j["driver_info"]["pid"]) > 0
    table = json.loads(rayc("list", "jobs", "--format", "json").stdout)
    assert any(row["job_id"] == j["job_id"] and row["submission_id"] == "cli_job_1" for row in table), table
    log_file = os.path.join(c.root, "session_latest", "logs", "job-driver-cli_job_1.log")
    assert "sum of squares: 285" in open(log_file).read()


def test_rest_submit_needs_the_token(cluster):
    c = cluster
    body = {"entrypoint": f"{PY} script.py", "runtime_env": {"working_dir": str(c.workdir)},
            "metadata": {"owner": "tests"}}
    status, text = rest(c, "POST", "/api/jobs/", body, token=False)
    assert status == 401, text
    status, text = rest(c, "GET", "/api/jobs/", token=False)
    assert status == 401
    status, text = rest(c, "GET", "/api/jobs/", token="0123456789abcdef.not-a-token")
    assert status == 401
    status, text = rest(c, "POST", "/api/jobs/", body)
    assert status == 200, text
    reply = json.loads(text)
    sid = reply["submission_id"]
    assert sid.startswith("raysubmit_") and reply["job_id"] == sid
    j = wait_terminal(c, sid)
    assert j["status"] == "SUCCEEDED", j
    assert j["metadata"] == {"owner": "tests"}
    status, text = rest(c, "GET", f"/api/jobs/{sid}/logs")
    assert status == 200
    assert "sum of squares: 285" in json.loads(text)["logs"]
    # The polled follow: /logs/tail from a byte offset, "ended" once the job is over.
    status, text = rest(c, "GET", f"/api/jobs/{sid}/logs/tail?offset=0")
    tail = json.loads(text)
    assert status == 200 and "sum of squares: 285" in tail["logs"] and tail["ended"] is True
    assert tail["offset"] == len(tail["logs"].encode())
    status, text = rest(c, "GET", f"/api/jobs/{sid}/logs/tail?offset={tail['offset']}")
    assert status == 200 and json.loads(text)["logs"] == ""
    status, text = rest(c, "GET", f"/api/jobs/{sid}/logs/tail?offset=-3")
    assert status == 400 and "offset" in text
    followed = rayc("job", "logs", sid, "--follow", timeout=60).stdout
    assert "sum of squares: 285" in followed
    # A second job with the same ID is refused with Ray's message.
    status, text = rest(c, "POST", "/api/jobs/", dict(body, submission_id=sid))
    assert status == 400 and f"Job with submission_id {sid} already exists" in text


def test_submit_keeps_the_entrypoints_own_options(cluster):
    """Everything after "--" (or after the entrypoint's first word) is the entrypoint's, rayc's
    own flags included; --address takes the dashboard's URL."""
    c = cluster
    proc = rayc("job", "submit", "--address", c.url, "--submission-id", "argv_1", "--",
                "echo", "args:", "--no-wait", "--address", "x", "--foo", "-h", timeout=120)
    assert "Job 'argv_1' succeeded" in proc.stdout, proc.stdout + proc.stderr
    assert "args: --no-wait --address x --foo -h" in rayc("job", "logs", "argv_1").stdout
    assert job(c, "argv_1")["entrypoint"] == "echo args: --no-wait --address x --foo -h"
    proc = rayc("job", "submit", "--no-wait", "--submission-id", "argv_2", "echo", "bare", "--foo", timeout=60)
    assert "rayc job status argv_2" in proc.stdout
    assert wait_terminal(c, "argv_2")["entrypoint"] == "echo bare --foo"


def test_failing_entrypoint_is_failed_with_its_exit_code(cluster):
    c = cluster
    # One word with spaces is one program name (Ray quotes it): a shell script goes to sh -c.
    proc = rayc("job", "submit", "--submission-id", "failing_1", "--",
                "sh", "-c", "echo about to fail; exit 3", check=False, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Job 'failing_1' failed" in proc.stdout
    j = job(c, "failing_1")
    assert j["status"] == "FAILED" and j["driver_exit_code"] == 3
    assert j["error_type"] == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert j["message"].startswith("Job entrypoint command failed with exit code 3")
    assert "about to fail" in j["message"]


def test_stop_kills_the_process_group(cluster, tmp_path):
    c = cluster
    pid_file = tmp_path / "pids"
    proc = rayc("job", "submit", "--no-wait", "--working-dir", str(c.workdir), "--submission-id", "long_1",
                "--runtime-env-json", json.dumps({"env_vars": {"PID_FILE": str(pid_file)}}),
                "--", PY, "long.py")
    assert "submitted successfully" in proc.stdout
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60, what="the long job's pids")
    pids = [int(p) for p in pid_file.read_text().split()]
    assert job(c, "long_1")["status"] == "RUNNING"
    assert all(pid_running(p) for p in pids)
    out = rayc("job", "stop", "long_1", timeout=60).stdout
    assert "Job 'long_1' was stopped" in out
    j = job(c, "long_1")
    assert j["status"] == "STOPPED" and j["message"] == "Job was intentionally stopped."
    wait_for(lambda: not any(pid_running(p) for p in pids), timeout=30, what="the job's processes to exit")
    # Stopping again says it was not running.
    status, text = rest(c, "POST", "/api/jobs/long_1/stop")
    assert status == 200 and json.loads(text) == {"stopped": False}


def test_stop_kills_a_job_that_ignores_sigterm(cluster):
    c = cluster
    rayc("job", "submit", "--no-wait", "--submission-id", "stubborn_1", "--",
         "exec", "sh", "-c", "trap '' TERM; echo ignoring TERM; sleep 600")
    wait_for(lambda: "ignoring TERM" in json.loads(rest(c, "GET", "/api/jobs/stubborn_1/logs")[1])["logs"],
             timeout=30, what="the stubborn job to start")
    t0 = time.time()
    status, text = rest(c, "POST", "/api/jobs/stubborn_1/stop")
    assert status == 200 and json.loads(text) == {"stopped": True}
    j = wait_terminal(c, "stubborn_1", timeout=60)
    assert j["status"] == "STOPPED"
    assert time.time() - t0 >= 2.5  # SIGKILL only after the grace period (RAY_JOB_STOP_WAIT_TIME_S, 3 s)


def test_list_errors_delete_and_garbage(cluster):
    c = cluster
    status, text = rest(c, "GET", "/api/jobs/")
    ids = {j["submission_id"] for j in json.loads(text)}
    assert {"cli_job_1", "failing_1", "long_1"} <= ids
    # A driver started outside the Jobs API is listed as Ray lists it: type DRIVER.
    with open(os.path.join(c.root, "session_latest", "gcs_address")) as f:
        gcs = f.read().strip()
    plain = subprocess.run([PY, "-c", "import os, ray; ray.init(); print(os.getpid()); ray.shutdown()"],
                           capture_output=True, text=True, timeout=120, env=dict(os.environ, RAY_ADDRESS=gcs))
    assert plain.returncode == 0, plain.stderr
    plain_pid = plain.stdout.strip().splitlines()[-1]

    def driver_row():
        rows = json.loads(rest(c, "GET", "/api/jobs/")[1])
        return [r for r in rows if r["type"] == "DRIVER" and r["driver_info"]["pid"] == plain_pid]
    row = wait_for(driver_row, timeout=30, what="the plain driver in the job list")[0]
    assert row["submission_id"] is None and row["status"] in ("RUNNING", "SUCCEEDED") and row["job_id"]
    listed = rayc("job", "list").stdout
    assert "cli_job_1" in listed and "SUCCEEDED" in listed and "failing_1" in listed
    status, text = rest(c, "GET", "/api/jobs/no_such_job")
    assert status == 404 and "Job no_such_job does not exist" in text
    assert rest(c, "POST", "/api/jobs/no_such_job/stop")[0] == 404
    proc = rayc("job", "status", "no_such_job", check=False)
    assert proc.returncode == 1 and "Job no_such_job does not exist" in proc.stderr
    status, text = rest(c, "POST", "/api/jobs/", raw=b"{not json")
    assert status == 400 and "JSON" in text
    status, text = rest(c, "POST", "/api/jobs/", {"entrypoint": 5})
    assert status == 400 and "entrypoint" in text
    status, text = rest(c, "POST", "/api/jobs/", {"runtime_env": {}})
    assert status == 400 and "entrypoint is required" in text
    status, text = rest(c, "POST", "/api/jobs/", {"entrypoint": "true", "runtime_env": {"working_dir": "/no/such"}})
    assert status == 400 and "working_dir" in text
    # Garbage on the socket and odd requests leave the dashboard serving.
    import socket
    host, port = c.url[len("https://"):].rsplit(":", 1)
    for junk in (b"\x00\xff garbage\r\n\r\n", b"GET /api/jobs/%00 HTTP/1.1\r\nHost: x\r\n\r\n", b"POST"):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            try:  # the TLS server may hang up on the garbage before we are done with it
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass
    import random
    rnd = random.Random(14)
    bodies = [b"[" * 5000, b'{"entrypoint": "x", "runtime_env": ' * 300, b'{"entrypoint": "\\ud800"}',
              b'{"entrypoint": "true", "metadata": {"a": 1}}', b'{"entrypoint": "true", "submission_id": "../x"}']
    bodies += [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))) for _ in range(40)]
    for body in bodies:
        status, _ = rest(c, "POST", "/api/jobs/", raw=body)
        assert status == 400, body
    status, _ = rest(c, "PUT", "/api/jobs/")
    assert status == 405
    status, _ = rest(c, "GET", "/api/jobs/x/unknown")
    assert status == 404
    # Delete: only jobs that have ended.
    status, text = rest(c, "DELETE", "/api/jobs/failing_1")
    assert status == 200 and json.loads(text) == {"deleted": True}
    assert rest(c, "GET", "/api/jobs/failing_1")[0] == 404
    assert rest(c, "GET", "/api/jobs/")[0] == 200


def test_restarted_dashboard_keeps_jobs_and_fails_orphans(cluster, tmp_path):
    c = cluster
    pid_file = tmp_path / "pids"
    rayc("job", "submit", "--no-wait", "--working-dir", str(c.workdir), "--submission-id", "orphan_1",
         "--runtime-env-json", json.dumps({"env_vars": {"PID_FILE": str(pid_file)}}), "--", PY, "long.py")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60, what="the long job's pids")
    pids = [int(p) for p in pid_file.read_text().split()]
    session = os.path.realpath(os.path.join(c.root, "session_latest"))
    dash_pid = int(open(os.path.join(session, "pids", "dashboard.pid")).read())
    os.kill(dash_pid, signal.SIGKILL)  # the supervisor dies; its job keeps running
    wait_for(lambda: not pid_running(dash_pid), what="the dashboard to die")
    os.unlink(os.path.join(session, "dashboard_url"))
    with open(os.path.join(session, "gcs_address")) as f:
        gcs = f.read().strip()
    port = c.url.rsplit(":", 1)[1]
    host = c.url[len("https://"):].rsplit(":", 1)[0]
    with open(os.path.join(session, "logs", "dashboard2.err"), "w") as err:
        d = subprocess.Popen([os.path.join(os.path.dirname(RAYC), "rayc-dashboard"), "--session-dir", session,
                              "--gcs-address", gcs, "--host", host, "--port", port],
                             stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    with open(os.path.join(session, "pids", "dashboard.pid"), "w") as f:
        f.write(f"{d.pid}\n")  # so that `rayc stop` stops this one too
    try:
        wait_for(lambda: os.path.exists(os.path.join(session, "dashboard_url")), timeout=30,
                 what="the new dashboard to listen")
        j = job(c, "orphan_1")
        assert j["status"] == "FAILED" and j["error_type"] == "JOB_SUPERVISOR_ACTOR_DIED", j
        assert job(c, "cli_job_1")["status"] == "SUCCEEDED"  # read back from the GCS
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_node_joining_on_the_head_host_leaves_clients_on_the_head(cluster):
    """A second raylet started on the head's host (`rayc start --address`) leaves
    session_latest on the head's session while the head runs: `rayc job` without --address
    still finds the dashboard and the admin credentials there."""
    c = cluster
    head = os.path.realpath(os.path.join(c.root, "session_latest"))
    c.add_node(num_cpus=1)
    assert os.path.realpath(os.path.join(c.root, "session_latest")) == head
    assert "cli_job_1" in rayc("job", "list").stdout
    assert "Status for job 'cli_job_1': SUCCEEDED" in rayc("job", "status", "cli_job_1").stdout
    # The new node is part of the cluster the head's session leads to: 2 + 1 CPUs.
    wait_for(lambda: re.search(r"^\s*[\d.]+/3\.0 CPU$", rayc("status").stdout, re.M), what="3 CPUs in rayc status")


def test_rayc_stop_stops_the_dashboard_and_its_jobs(cluster, tmp_path):
    """Last: `rayc stop` ends the dashboard and the entrypoints it runs."""
    c = cluster
    pid_file = tmp_path / "pids"
    rayc("job", "submit", "--no-wait", "--working-dir", str(c.workdir), "--submission-id", "at_stop_1",
         "--runtime-env-json", json.dumps({"env_vars": {"PID_FILE": str(pid_file)}}), "--", PY, "long.py")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60, what="the long job's pids")
    pids = [int(p) for p in pid_file.read_text().split()]
    session = os.path.realpath(os.path.join(c.root, "session_latest"))
    dash_pid = int(open(os.path.join(session, "pids", "dashboard.pid")).read())
    assert pid_running(dash_pid)
    rayc("stop", timeout=120)
    wait_for(lambda: not pid_running(dash_pid), timeout=30, what="the dashboard to stop")
    wait_for(lambda: not any(pid_running(p) for p in pids), timeout=30, what="the job's processes to stop")
