"""Ray's Jobs SDK (ray.job_submission) and the entrypoint's reserved resources, on a secure
cluster started with `rayc start --head`: JobSubmissionClient finds the head's dashboard and
its token on this host, submits, follows, stops, lists and deletes jobs; a job that asks for
entrypoint_num_cpus / _memory / _resources has them reserved on the head while it runs (shown
as used, keeping other jobs PENDING), fails at once when the head can never fit them, and
leaves nothing reserved behind, a restarted dashboard included. Also `rayc job submit`'s
joining of the entrypoint's words, which must match Ray's."""

import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cli_cluster import RAYC, CliCluster, pid_running, rayc, use_short_session_root, wait_for  # noqa: E402

PY = sys.executable  # Debian's python3, which has rayc's package

# A driver that joins the cluster as its job, reports what it sees free, and runs until the
# file GO (in its working directory) appears.
HOLDER = """
import json, os, sys, time
import ray
ray.init()
print("free:", json.dumps(ray.available_resources()), flush=True)
open("pid", "w").write(str(os.getpid()))
while not os.path.exists(sys.argv[1]):
    time.sleep(0.2)
print("holder done", flush=True)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    use_short_session_root()
    c = CliCluster()
    c.start_head(num_cpus=2, resources={"disk": 1})
    c.session = os.path.realpath(os.path.join(c.root, "session_latest"))
    c.workdir = tmp_path_factory.mktemp("sdkjobs")
    (c.workdir / "holder.py").write_text(HOLDER)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(autouse=True)
def no_address_in_env(monkeypatch):
    """The client finds this host's cluster by itself; no address or token in the env."""
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAYC_ADDRESS", "RAYC_AUTH_TOKEN", "RAYC_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)


def dashboard_url(c):
    with open(os.path.join(c.session, "dashboard_url")) as f:
        return f.read().strip()


def rest(c, method, path):
    """(status, JSON) of one request to the dashboard with the admin token, over http or https."""
    url = dashboard_url(c)
    req = urllib.request.Request(url + path, method=method)
    with open(os.path.join(c.session, "auth_token")) as f:
        req.add_header("Authorization", "Bearer " + f.read().strip())
    ctx = ssl.create_default_context(cafile=os.path.join(c.session, "ca.crt")) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def client():
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient()


def wait_status(cl, sid, statuses, timeout=90):
    return wait_for(lambda: cl.get_job_status(sid) in statuses and cl.get_job_info(sid), timeout=timeout,
                    interval=0.3, what=f"job {sid} to be {'/'.join(str(s) for s in statuses)}")


def usage(name):
    """(used, total) of resource name in `rayc status`."""
    out = rayc("status").stdout
    m = re.search(r"^\s*([\d.]+)/([\d.]+) " + re.escape(name) + r"$", out, re.M)
    assert m, out
    return float(m.group(1)), float(m.group(2))


def groups():
    """{name: state} of the cluster's placement groups."""
    return {g["name"]: g["state"] for g in json.loads(rayc("list", "placement-groups", "--format", "json").stdout)}


def test_submit_status_logs_and_tail(cluster, tmp_path):
    from ray.job_submission import JobDetails, JobStatus, JobType

    cl = client()
    go = tmp_path / "go"
    sid = cl.submit_job(entrypoint=f"echo first; while [ ! -e {go} ]; do sleep 0.2; done; echo second",
                        submission_id="sdk_tail_1", metadata={"owner": "sdk"})
    assert sid == "sdk_tail_1"
    assert cl.get_job_status(sid) in (JobStatus.PENDING, JobStatus.RUNNING)
    wait_for(lambda: "first" in cl.get_job_logs(sid), what="the first line")
    info = cl.get_job_info(sid)
    assert isinstance(info, JobDetails) and info.status == JobStatus.RUNNING and not info.status.is_terminal()
    assert info.type == JobType.SUBMISSION and info.message == "Job is currently running."

    async def follow():
        chunks = []
        async for chunk in cl.tail_job_logs(sid):
            chunks.append(chunk)
            if "first" in "".join(chunks) and not go.exists():
                go.write_text("")  # the job goes on only once the tail has seen its first line
        return chunks

    chunks = asyncio.run(asyncio.wait_for(follow(), timeout=90))
    assert "".join(chunks) == "first\nsecond\n"  # everything, once, and the iterator ended
    info = cl.get_job_info(sid)
    assert info.status == JobStatus.SUCCEEDED and info.status.is_terminal()
    assert info.driver_exit_code == 0 and info.metadata == {"owner": "sdk"}
    assert info.end_time >= info.start_time > 0 and info.entrypoint.startswith("echo first")
    assert cl.get_job_logs(sid) == "first\nsecond\n"
    assert any(j.submission_id == sid and j.status == JobStatus.SUCCEEDED for j in cl.list_jobs())


def test_addresses_the_client_takes(cluster, monkeypatch):
    from ray.job_submission import JobSubmissionClient

    url = dashboard_url(cluster)
    assert JobSubmissionClient().get_address() == url  # this host's cluster
    assert JobSubmissionClient().get_version() == "rayc"
    assert JobSubmissionClient("auto")._address == url
    assert JobSubmissionClient(url + "/")._address == url
    with open(os.path.join(cluster.session, "gcs_address")) as f:
        gcs = f.read().strip()
    # An entrypoint's RAY_ADDRESS is the GCS: the session that runs it gives the dashboard.
    monkeypatch.setenv("RAY_ADDRESS", gcs)
    assert JobSubmissionClient()._address == url
    assert JobSubmissionClient(gcs)._address == url
    # The address given comes first.
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:1")
    assert JobSubmissionClient(url).list_jobs() is not None
    with pytest.raises(ConnectionError, match="Failed to connect to Ray at address: http://127.0.0.1:1"):
        JobSubmissionClient()
    monkeypatch.delenv("RAY_ADDRESS")
    with pytest.raises(ValueError, match="Ray Client"):
        JobSubmissionClient("ray://127.0.0.1:10001")
    if url.startswith("https://"):
        # The dashboard's certificate is checked against the cluster's CA (found in the
        # session), not the system's; verify=False skips the check.
        assert JobSubmissionClient(url)._ssl_context is not None
        with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            JobSubmissionClient(url, verify=ssl.get_default_verify_paths().cafile or "/etc/ssl/certs")
        assert JobSubmissionClient(url, verify=False).list_jobs() is not None


def test_stop_list_delete(cluster):
    from ray.job_submission import JobStatus

    cl = client()
    sid = cl.submit_job(entrypoint="echo sleeping; sleep 600", submission_id="sdk_stop_1")
    wait_for(lambda: "sleeping" in cl.get_job_logs(sid), what="the job to start")
    with pytest.raises(RuntimeError, match="non-terminal state RUNNING"):
        cl.delete_job(sid)
    assert cl.stop_job(sid) is True
    info = wait_status(cl, sid, (JobStatus.STOPPED,))
    assert info.message == "Job was intentionally stopped."
    assert cl.stop_job(sid) is False  # it has ended
    listed = {j.submission_id: j for j in cl.list_jobs()}
    assert listed[sid].status == JobStatus.STOPPED
    assert cl.delete_job(sid) is True
    assert sid not in {j.submission_id for j in cl.list_jobs()}
    with pytest.raises(RuntimeError, match=f"Request failed with status code 404: Job {sid} does not exist."):
        cl.get_job_info(sid)


def test_errors(cluster, monkeypatch, tmp_path):
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    cl = client()
    for call in (cl.get_job_status, cl.get_job_info, cl.get_job_logs, cl.stop_job, cl.delete_job):
        with pytest.raises(RuntimeError, match="Request failed with status code 404: Job no_such_job does not exist"):
            call("no_such_job")

    async def tail_missing():
        async for _ in cl.tail_job_logs("no_such_job"):
            pass

    with pytest.raises(RuntimeError, match="404: Job no_such_job does not exist"):
        asyncio.run(tail_missing())
    sid = cl.submit_job(entrypoint="true", submission_id="sdk_dup_1")
    with pytest.raises(RuntimeError, match="Job with submission_id sdk_dup_1 already exists"):
        cl.submit_job(entrypoint="true", submission_id=sid)
    with pytest.raises(TypeError, match="entrypoint_memory must be an integer"):
        cl.submit_job(entrypoint="true", entrypoint_memory="1G")
    with pytest.raises(TypeError, match="metadata values must be strings"):
        cl.submit_job(entrypoint="true", metadata={"a": 1})
    with pytest.raises(RuntimeError, match="400: Invalid JobSubmitRequest: entrypoint_resources holds custom"):
        cl.submit_job(entrypoint="true", entrypoint_resources={"CPU": 1})
    # A token the cluster does not know: Ray's AuthenticationError, from the first request on.
    with pytest.raises(AuthenticationError, match="Authentication failed: 401"):
        JobSubmissionClient(headers={"Authorization": "Bearer 0123456789abcdef.not-a-token"})
    monkeypatch.setenv("RAYC_AUTH_TOKEN", "0123456789abcdef.not-a-token")
    with pytest.raises(AuthenticationError, match="invalid or incorrect"):
        JobSubmissionClient()
    # No token anywhere (a host without the cluster's session): Ray's "required" error.
    monkeypatch.delenv("RAYC_AUTH_TOKEN")
    monkeypatch.setenv("RAYC_SESSION_ROOT", str(tmp_path))
    no_token = "(?s)Authentication required: 401.*no authentication token was found"
    with pytest.raises(AuthenticationError, match=no_token):
        JobSubmissionClient(dashboard_url(cluster), verify=False)
    with pytest.raises(ConnectionError, match="Could not find any running Ray instance"):
        JobSubmissionClient()


def test_entrypoint_resources_are_reserved_while_it_runs(cluster, tmp_path):
    """The holder asks for every CPU of the head, its one `disk` and some memory, through the
    CLI's flags: while it runs they are used (its own driver sees none free) and a job that
    asks for one CPU waits PENDING; the waiting job can be stopped; once the holder ends both
    are released and the waiting one runs."""
    from ray.job_submission import JobStatus

    c, cl = cluster, client()
    go = tmp_path / "go"
    proc = rayc("job", "submit", "--no-wait", "--submission-id", "holder_1", "--working-dir", str(c.workdir),
                "--entrypoint-num-cpus", "2", "--entrypoint-resources", '{"disk": 1}',
                "--entrypoint-memory", str(64 << 20), "--", PY, "holder.py", str(go))
    assert "submitted successfully" in proc.stdout
    wait_for(lambda: "free:" in cl.get_job_logs("holder_1"), timeout=90, what="the holder's driver")
    free = json.loads(cl.get_job_logs("holder_1").split("free:", 1)[1].splitlines()[0])
    assert free.get("CPU", 0) == 0 and free.get("disk", 0) == 0, free
    assert usage("CPU") == (2.0, 2.0) and usage("disk") == (1.0, 1.0)
    assert groups()["_rayc_job_entrypoint_holder_1"] == "CREATED"
    status, raw = rest(c, "GET", "/api/jobs/holder_1")
    assert raw["entrypoint_num_cpus"] == 2 and raw["entrypoint_resources"] == {"disk": 1}
    assert raw["entrypoint_memory"] == 64 << 20 and raw["driver_node_id"]

    waiting = cl.submit_job(entrypoint="echo got my cpu", submission_id="waiter_1", entrypoint_num_cpus=1)
    doomed = cl.submit_job(entrypoint="echo never", submission_id="waiter_2", entrypoint_num_cpus=1)
    for sid in (waiting, doomed):
        info = cl.get_job_info(sid)
        assert info.status == JobStatus.PENDING, info
        assert "waiting for resources" in info.message
    wait_for(lambda: groups().get("_rayc_job_entrypoint_waiter_2") == "PENDING", what="the waiter's group")
    # The holder still runs, so nothing it holds was given to the waiters.
    assert cl.get_job_status("holder_1") == JobStatus.RUNNING
    assert cl.get_job_status(waiting) == JobStatus.PENDING and cl.get_job_logs(waiting) == ""
    assert cl.stop_job(doomed) is True
    info = cl.get_job_info(doomed)
    assert info.status == JobStatus.STOPPED and info.driver_exit_code is None and cl.get_job_logs(doomed) == ""
    wait_for(lambda: groups()["_rayc_job_entrypoint_waiter_2"] == "REMOVED", what="the stopped waiter's group")

    go.write_text("")
    assert wait_status(cl, "holder_1", (JobStatus.SUCCEEDED,)).driver_exit_code == 0
    assert wait_status(cl, waiting, (JobStatus.SUCCEEDED,)).status == JobStatus.SUCCEEDED
    assert cl.get_job_logs(waiting) == "got my cpu\n"
    wait_for(lambda: usage("CPU") == (0.0, 2.0) and usage("disk") == (0.0, 1.0), what="everything released")
    g = groups()
    assert g["_rayc_job_entrypoint_holder_1"] == "REMOVED" and g["_rayc_job_entrypoint_waiter_1"] == "REMOVED"


def test_infeasible_reservation_fails_with_why(cluster):
    from ray.job_submission import JobStatus

    cl = client()
    for sid, kw, what in (("too_big_1", {"entrypoint_num_cpus": 64}, "64 CPU"),
                          ("no_such_res_1", {"entrypoint_resources": {"tpu_pod": 1}}, "tpu_pod")):
        cl.submit_job(entrypoint="echo should not run", submission_id=sid, **kw)
        info = wait_status(cl, sid, (JobStatus.FAILED,), timeout=60)
        assert info.error_type == "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE", info
        assert "The head node can never provide the entrypoint's resources" in info.message
        assert what in info.message, info.message
        assert info.driver_exit_code is None and cl.get_job_logs(sid) == ""
        wait_for(lambda: groups()[f"_rayc_job_entrypoint_{sid}"] == "REMOVED", what="the group removed")


def test_cli_joins_entrypoint_words_as_ray_does(cluster):
    """`rayc job submit -- WORDS` builds Ray's entrypoint string (subprocess.list2cmdline),
    so that words with spaces, empty words and quotes reach the program as given."""
    cl = client()
    # (what list2cmdline leaves bare goes to the shell as typed: a bare word ending in a
    # backslash, $, quotes of other kinds; Ray has the same rule)
    words = ["a b", "", 'say "hi"', "tab\there", "x y\\", 'a\\"b c', "--flag=1", "plain"]
    argv = [PY, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *words]
    proc = rayc("job", "submit", "--submission-id", "quoted_1", "--", *argv, timeout=120)
    assert "Job 'quoted_1' succeeded" in proc.stdout, proc.stdout + proc.stderr
    info = cl.get_job_info("quoted_1")
    assert info.entrypoint == subprocess.list2cmdline(argv)
    assert json.loads(cl.get_job_logs("quoted_1").strip().splitlines()[-1]) == words
    # The resource flags are checked before anything is sent.
    for flags, why in ((["--entrypoint-resources", "[1]"], "JSON object of resource amounts"),
                       (["--entrypoint-resources", '{"A": -1}'], "every value must be a number >= 0"),
                       (["--entrypoint-memory", "1.5"], "whole number of bytes"),
                       (["--entrypoint-num-cpus", "lots"], "non-negative number")):
        proc = rayc("job", "submit", "--submission-id", "never_1", *flags, "--", "true", check=False)
        assert proc.returncode == 2 and why in proc.stderr, (flags, proc.stderr)
    with pytest.raises(RuntimeError, match="404"):
        cl.get_job_info("never_1")


def test_restarted_dashboard_releases_what_it_held(cluster, tmp_path):
    """Last: a dashboard killed while a job holds its reservation; the next one fails the job
    (its supervisor died) and releases the reservation. The next one runs with
    RAY_JOB_START_TIMEOUT_SECONDS=3: a job that waits longer for its resources fails. Stopped
    with SIGTERM, it releases what its job held before it exits."""
    from ray.job_submission import JobStatus

    c, cl = cluster, client()
    pid_file = tmp_path / "pid"
    cl.submit_job(entrypoint=f"echo $$ > {pid_file}; exec sleep 600", submission_id="orphan_res_1",
                  entrypoint_num_cpus=1)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job to run")
    pid = int(pid_file.read_text())
    assert usage("CPU") == (1.0, 2.0)
    dash_pid = int(open(os.path.join(c.session, "pids", "dashboard.pid")).read())
    os.kill(dash_pid, signal.SIGKILL)
    try:
        wait_for(lambda: not pid_running(dash_pid), what="the dashboard to die")
        url = dashboard_url(c)
        os.unlink(os.path.join(c.session, "dashboard_url"))
        assert usage("CPU") == (1.0, 2.0)  # nobody released it
        with open(os.path.join(c.session, "gcs_address")) as f:
            gcs = f.read().strip()
        from ray.job_submission import JobSubmissionClient

        with pytest.raises(ConnectionError, match="runs no dashboard"):
            JobSubmissionClient(gcs)
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        with open(os.path.join(c.session, "logs", "dashboard2.err"), "w") as err:
            d = subprocess.Popen([os.path.join(os.path.dirname(RAYC), "rayc-dashboard"), "--session-dir", c.session,
                                  "--gcs-address", gcs, "--host", host, "--port", port],
                                 stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                 env=dict(os.environ, RAY_JOB_START_TIMEOUT_SECONDS="3"))
        with open(os.path.join(c.session, "pids", "dashboard.pid"), "w") as f:
            f.write(f"{d.pid}\n")  # so that `rayc stop` stops this one too
        wait_for(lambda: os.path.exists(os.path.join(c.session, "dashboard_url")), timeout=30,
                 what="the new dashboard to listen")
        info = client().get_job_info("orphan_res_1")
        assert info.status == JobStatus.FAILED and info.error_type == "JOB_SUPERVISOR_ACTOR_DIED", info
        wait_for(lambda: usage("CPU") == (0.0, 2.0), what="the orphan's CPU released")
        assert groups()["_rayc_job_entrypoint_orphan_res_1"] == "REMOVED"

        # Every CPU held by a placement group of this process: a job that asks for one
        # waits, and fails once it has waited RAY_JOB_START_TIMEOUT_SECONDS.
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group

        ray.init(address=gcs)
        try:
            pg = placement_group([{"CPU": 2}])
            ray.get(pg.ready(), timeout=60)
            sid = client().submit_job(entrypoint="echo never", submission_id="late_1", entrypoint_num_cpus=1)
            info = wait_status(cl, sid, (JobStatus.FAILED,), timeout=60)
            assert info.error_type == "JOB_SUPERVISOR_ACTOR_START_TIMEOUT", info
            assert "failed to start within 3.0 seconds" in info.message
            assert "RAY_JOB_START_TIMEOUT_SECONDS" in info.message and "entrypoint_num_cpus=1" in info.message
            assert cl.get_job_logs(sid) == ""
            wait_for(lambda: groups()["_rayc_job_entrypoint_late_1"] == "REMOVED", what="the late job's group")
            remove_placement_group(pg)
        finally:
            ray.shutdown()

        # A dashboard stopped with SIGTERM stops its entrypoints and releases what they held.
        pid2_file = tmp_path / "pid2"
        client().submit_job(entrypoint=f"echo $$ > {pid2_file}; exec sleep 600", submission_id="at_term_1",
                            entrypoint_num_cpus=2)
        wait_for(lambda: pid2_file.exists() and pid2_file.read_text().strip(), what="the last job to run")
        assert usage("CPU") == (2.0, 2.0)
        d.terminate()
        d.wait(timeout=60)
        wait_for(lambda: not pid_running(int(pid2_file.read_text())), what="the last job to be stopped")
        wait_for(lambda: usage("CPU") == (0.0, 2.0), what="the last job's CPUs released")
        assert groups()["_rayc_job_entrypoint_at_term_1"] == "REMOVED"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
