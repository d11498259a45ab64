"""JobSubmissionClient: Ray's Python SDK for the Jobs API, over the head's dashboard
(rayc-dashboard, Ray's REST shape behind the cluster token), with the standard library only
(urllib and ssl).

Which dashboard: the address given, else $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS, else the
cluster `rayc start --head` runs on this host. An http:// or https:// URL is the dashboard
itself; "auto" (or nothing) is the dashboard of this host's latest session; any other
address is taken for a cluster's GCS address ("HOST:PORT", as ray.init() takes it and as
entrypoints find it in RAY_ADDRESS) and the session on this host that runs that GCS gives its
dashboard; an address that no session runs is taken for the dashboard's own HOST:PORT over
http. (Ray lets RAY_ADDRESS override the address given; rayc takes the given one first, as
ray.init() and `rayc job --address` do.)

Credentials, as `rayc job` finds them: the token from $RAYC_AUTH_TOKEN, the file named by
$RAYC_AUTH_TOKEN_PATH, else the session's auth_token (the session that serves the dashboard
when one on this host does, else the latest), sent as "Authorization: Bearer ..." unless the
caller's headers carry their own; none for a session started with --insecure. An https://
dashboard is verified against the cluster's CA: $RAYC_CA_CERT, else the session's ca.crt
(verify=False skips the check, verify=PATH names other CA certificates).
"""

import asyncio
import functools
import json
import logging
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, AsyncIterator, Dict, List, Optional, Union

from ray.job_submission.common import JobDetails, JobStatus

logger = logging.getLogger(__name__)

# Ray's texts for the answers 401 and 403 of a cluster with token authentication (without
# their final period: rayc's AuthenticationError adds one and a hint).
_NO_TOKEN = "Token authentication is enabled but no authentication token was found"
_BAD_TOKEN = "Token authentication is enabled but the authentication token is invalid or incorrect"
_NO_CLUSTER = ("Could not find any running Ray instance. Please specify the one to connect to by setting "
               "`--address` flag or `RAY_ADDRESS` environment variable.")
# How often tail_job_logs asks for more while a job writes nothing.
_TAIL_POLL_S = 0.5


# ---- this host's sessions -------------------------------------------------------------------

def _session_root() -> str:
    return os.environ.get("RAYC_SESSION_ROOT") or "/tmp/rayc"


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _latest_session() -> Optional[str]:
    link = os.path.join(_session_root(), "session_latest")
    return os.path.realpath(link) if os.path.isdir(link) else None


def _sessions(with_dashboard: bool = True) -> List[str]:
    """This host's sessions (those that run a dashboard, unless told otherwise), the latest
    first."""
    root = _session_root()
    try:
        names = [n for n in os.listdir(root) if n.startswith("session_") and n != "session_latest"]
    except OSError:
        names = []
    paths = [os.path.join(root, n) for n in names]
    if with_dashboard:
        paths = [p for p in paths if os.path.exists(os.path.join(p, "dashboard_url"))]
    paths.sort(key=lambda p: os.path.getmtime(p), reverse=True)
    latest = _latest_session()
    if latest in paths:
        paths.remove(latest)
        paths.insert(0, latest)
    return paths


def _norm_url(url: str) -> str:
    return url.rstrip("/")


def _resolve(address: Optional[str]):
    """(dashboard URL, the local session that serves it or None)."""
    if address is None or address == "":
        address = os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS") or None
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address must be a string, got {type(address)}")
    if address and "://" in address:
        scheme = address.split("://", 1)[0]
        if scheme == "ray":
            raise ValueError(f"rayc does not support Ray Client addresses ({address}): give the dashboard's "
                             "http(s)://HOST:PORT URL, or run on a node of the cluster.")
        if scheme not in ("http", "https"):
            raise ValueError(f"Unknown address scheme '{scheme}' in {address}: give the dashboard's "
                             "http(s)://HOST:PORT URL.")
        url = _norm_url(address)
        for s in _sessions():
            if _norm_url(_read(os.path.join(s, "dashboard_url")) or "") == url:
                return url, s
        return url, None
    if address in (None, "auto"):
        latest = _latest_session()
        url = _read(os.path.join(latest, "dashboard_url")) if latest else None
        if not url:
            raise ConnectionError(_NO_CLUSTER)
        return _norm_url(url), latest
    # A GCS address: the session on this host that runs it.
    for s in _sessions():
        if _read(os.path.join(s, "gcs_address")) == address:
            return _norm_url(_read(os.path.join(s, "dashboard_url"))), s
    for s in _sessions(with_dashboard=False):
        if _read(os.path.join(s, "gcs_address")) == address:
            raise ConnectionError(f"The cluster at {address} runs no dashboard (it was started with "
                                  "--include-dashboard false, or its dashboard failed: see "
                                  f"{s}/logs/dashboard.err): the Jobs API needs one.")
    logger.info("No scheme (e.g. 'http://') in address %s and no cluster of this host runs a GCS there; "
                "defaulting to HTTP.", address)
    return "http://" + _norm_url(address), None


def _find_token(session: Optional[str]) -> Optional[str]:
    env = (os.environ.get("RAYC_AUTH_TOKEN") or "").strip()
    if env:
        return env
    path = os.environ.get("RAYC_AUTH_TOKEN_PATH")
    if path:
        token = _read(path)
        if token:
            return token
    for s in (session, _latest_session()):
        if s:
            if os.path.exists(os.path.join(s, "insecure")):
                return None
            token = _read(os.path.join(s, "auth_token"))
            if token:
                return token
    return None


def _find_ca(session: Optional[str]) -> Optional[str]:
    env = os.environ.get("RAYC_CA_CERT")
    if env and os.path.isfile(env):
        return env
    for s in (session, _latest_session()):
        if s and os.path.isfile(os.path.join(s, "ca.crt")):
            return os.path.join(s, "ca.crt")
    return None


def _version_tuple(text: str):
    out = []
    for part in str(text).split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


class _Response:
    """The parts of an HTTP answer the client reads (named as requests names them)."""

    def __init__(self, status_code: int, body: bytes):
        self.status_code = status_code
        self.content = body
        self.text = body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.text)


class JobSubmissionClient:
    """Submits and follows jobs on a rayc cluster through its dashboard (Ray's
    ray.job_submission.JobSubmissionClient).

    Args:
        address: the dashboard's URL ("https://HEAD:8265"), a GCS address ("HOST:PORT") of a
            cluster on this host, or "auto"; None: $RAY_API_SERVER_ADDRESS, $RAY_ADDRESS, then
            the cluster `rayc start --head` runs on this host.
        create_cluster_if_needed: accepted for Ray's signature; rayc never starts a cluster here.
        cookies: cookies sent with every request.
        metadata: metadata stored with every job (a job's own metadata is updated with it).
        headers: headers sent with every request; an "Authorization" header here replaces
            the token rayc finds.
        verify: True: check an https dashboard against the cluster's CA (or the system's
            when none is found); a path: against the CA certificates there; False: no check.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        create_cluster_if_needed: bool = False,
        cookies: Optional[Dict[str, Any]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        headers: Optional[Dict[str, Any]] = None,
        verify: Optional[Union[str, bool]] = True,
    ):
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string, got {type(address)}")
        if not isinstance(create_cluster_if_needed, bool):
            raise TypeError(f"create_cluster_if_needed must be a bool, got {type(create_cluster_if_needed)}")
        if cookies is not None and not isinstance(cookies, dict):
            raise TypeError(f"cookies must be a dict, got {type(cookies)}")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata)}")
        if headers is not None and not isinstance(headers, dict):
            raise TypeError(f"headers must be a dict, got {type(headers)}")
        if not isinstance(verify, (str, bool)):
            raise TypeError(f"verify must be a str or bool, got {type(verify)}")

        self._address, session = _resolve(address)
        self._cookies = dict(cookies or {})
        self._default_metadata = dict(metadata or {})
        self._headers = {str(k): str(v) for k, v in (headers or {}).items()}
        self._sent_token = False
        if not any(k.lower() == "authorization" for k in self._headers):
            token = _find_token(session)
            if token:
                self._headers["Authorization"] = "Bearer " + token
                self._sent_token = True
        else:
            self._sent_token = True

        self._ssl_context = None
        if self._address.startswith("https://"):
            if verify is False:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif isinstance(verify, str):
                if os.path.isdir(verify):
                    ctx = ssl.create_default_context(capath=verify)
                elif os.path.isfile(verify):
                    ctx = ssl.create_default_context(cafile=verify)
                else:
                    raise FileNotFoundError(f"Path to CA certificates: '{verify}', does not exist.")
            else:
                ca = _find_ca(session)
                ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
            self._ssl_context = ctx
        handlers = [urllib.request.HTTPSHandler(context=self._ssl_context)] if self._ssl_context else []
        self._opener = urllib.request.build_opener(*handlers)
        self._check_connection_and_version(
            min_version="1.9",
            version_error_message="Jobs API is not supported on the Ray cluster. Please ensure the cluster is "
            "running Ray 1.9 or higher.",
        )

    # ---- HTTP --------------------------------------------------------------------------------

    def _do_request(self, method: str, endpoint: str, *, data: Optional[bytes] = None,
                    json_data: Optional[dict] = None, timeout: float = 60.0) -> _Response:
        url = self._address + endpoint
        headers = dict(self._headers)
        if json_data is not None:
            data = json.dumps(json_data).encode()
            headers["Content-Type"] = "application/json"
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        logger.debug("Sending request to %s with json data: %s.", url, json_data or {})
        try:
            with self._opener.open(req, timeout=timeout) as r:
                response = _Response(r.status, r.read())
        except urllib.error.HTTPError as e:
            response = _Response(e.code, e.read())
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConnectionError(f"Failed to connect to Ray at address: {self._address}. ({reason})") from None
        if response.status_code in (401, 403):
            from ray.exceptions import AuthenticationError

            body = response.text.strip()
            if response.status_code == 401 and not self._sent_token:
                raise AuthenticationError(f"Authentication required: {body}\n\n{_NO_TOKEN}")
            raise AuthenticationError(f"Authentication failed: {body}\n\n{_BAD_TOKEN}")
        return response

    def _raise_error(self, r: _Response):
        raise RuntimeError(f"Request failed with status code {r.status_code}: {r.text.rstrip()}.")

    def _check_connection_and_version(self, min_version: str = "1.9", version_error_message: str = None):
        if version_error_message is None:
            version_error_message = f"Please ensure the cluster is running Ray {min_version} or higher."
        r = self._do_request("GET", "/api/version")
        if r.status_code == 404:
            raise RuntimeError("Version check returned 404. " + version_error_message)
        if r.status_code != 200:
            self._raise_error(r)
        try:
            running = r.json()["ray_version"]
        except (ValueError, KeyError, TypeError):
            raise RuntimeError(f"The server at {self._address} does not answer /api/version as Ray's dashboard "
                               f"does: {r.text[:200]!r}") from None
        if _version_tuple(running) < _version_tuple(min_version):
            raise RuntimeError(f"Ray version {running} is running on the cluster. " + version_error_message)

    @staticmethod
    def _path(job_id: str, suffix: str = "") -> str:
        if not isinstance(job_id, str):
            raise TypeError(f"job_id must be a string, got {type(job_id)}")
        return "/api/jobs/" + urllib.parse.quote(job_id, safe="") + suffix

    # ---- the API -------------------------------------------------------------------------------

    def get_version(self) -> str:
        """The dashboard's version (its /api/version "version")."""
        r = self._do_request("GET", "/api/version")
        if r.status_code == 200:
            return r.json().get("version")
        self._raise_error(r)

    def get_address(self) -> str:
        """The dashboard's URL this client talks to."""
        return self._address

    def submit_job(
        self,
        *,
        entrypoint: str,
        job_id: Optional[str] = None,
        runtime_env: Optional[Dict[str, Any]] = None,
        metadata: Optional[Dict[str, str]] = None,
        submission_id: Optional[str] = None,
        entrypoint_num_cpus: Optional[Union[int, float]] = None,
        entrypoint_num_gpus: Optional[Union[int, float]] = None,
        entrypoint_memory: Optional[int] = None,
        entrypoint_resources: Optional[Dict[str, float]] = None,
    ) -> str:
        """Submits a job: the head runs `entrypoint` with /bin/sh -c once the entrypoint's
        resources (entrypoint_num_cpus, _num_gpus, _memory in bytes, _resources) are reserved
        on the head, where they stay reserved until it ends. Returns the submission ID.

        runtime_env: working_dir (a directory on the head's host, copied for the job; a
        relative path is taken from this process's directory) and env_vars, for the driver
        and every worker of the job. Raises
        RuntimeError when the cluster refuses the job (an ID in use, a bad request).
        """
        if job_id:
            logger.warning("job_id kwarg is deprecated. Please use submission_id instead.")
        _check_submit_types(entrypoint, submission_id, job_id, runtime_env, metadata, entrypoint_num_cpus,
                            entrypoint_num_gpus, entrypoint_memory, entrypoint_resources)
        runtime_env = dict(runtime_env or {})
        metadata = dict(metadata or {})
        metadata.update(self._default_metadata)
        wd = runtime_env.get("working_dir")
        if isinstance(wd, str) and "://" not in wd and os.path.isdir(wd):
            runtime_env["working_dir"] = os.path.abspath(wd)
        req = {
            "entrypoint": entrypoint,
            "submission_id": submission_id or job_id,
            "runtime_env": runtime_env,
            "metadata": metadata,
            "entrypoint_num_cpus": entrypoint_num_cpus,
            "entrypoint_num_gpus": entrypoint_num_gpus,
            "entrypoint_memory": entrypoint_memory,
            "entrypoint_resources": entrypoint_resources,
        }
        req = {k: v for k, v in req.items() if v is not None}
        r = self._do_request("POST", "/api/jobs/", json_data=req)
        if r.status_code == 200:
            return r.json()["submission_id"]
        self._raise_error(r)

    def stop_job(self, job_id: str) -> bool:
        """Asks a job to stop (SIGTERM to its processes, SIGKILL after
        RAY_JOB_STOP_WAIT_TIME_S); a job still waiting for its resources stops at once.
        True if it was running (or waiting), False if it had already ended."""
        r = self._do_request("POST", self._path(job_id, "/stop"))
        if r.status_code == 200:
            return bool(r.json()["stopped"])
        self._raise_error(r)

    def delete_job(self, job_id: str) -> bool:
        """Forgets a job that has ended, with its logs. RuntimeError if it has not ended."""
        r = self._do_request("DELETE", self._path(job_id))
        if r.status_code == 200:
            return bool(r.json()["deleted"])
        self._raise_error(r)

    def get_job_info(self, job_id: str) -> JobDetails:
        """The job's JobDetails (by submission ID or job ID)."""
        r = self._do_request("GET", self._path(job_id))
        if r.status_code == 200:
            return JobDetails(**r.json())
        self._raise_error(r)

    def list_jobs(self) -> List[JobDetails]:
        """Every job the cluster knows: the submitted ones and the drivers started otherwise
        (type DRIVER)."""
        r = self._do_request("GET", "/api/jobs/")
        if r.status_code == 200:
            return [JobDetails(**j) for j in r.json()]
        self._raise_error(r)

    def get_job_status(self, job_id: str) -> JobStatus:
        """The job's JobStatus."""
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id: str) -> str:
        """Everything the job's entrypoint wrote (stdout and stderr) so far."""
        r = self._do_request("GET", self._path(job_id, "/logs"))
        if r.status_code == 200:
            return r.json()["logs"]
        self._raise_error(r)

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """An async iterator over what the job writes, chunk by chunk, from its start until it
        has ended and everything it wrote has come. Ray streams it over a websocket; rayc's
        dashboard is asked for the bytes after the last ones seen (/logs/tail?offset=N) in a
        worker thread, again every half second while nothing new has come.

            async for lines in client.tail_job_logs(submission_id):
                print(lines, end="")

        RuntimeError if the job does not exist or the dashboard fails."""
        loop = asyncio.get_running_loop()
        offset = 0
        while True:
            r = await loop.run_in_executor(
                None, functools.partial(self._do_request, "GET", self._path(job_id, f"/logs/tail?offset={offset}")))
            if r.status_code != 200:
                self._raise_error(r)
            body = r.json()
            logs = body.get("logs") or ""
            offset = int(body.get("offset", offset))
            if logs:
                yield logs
            elif body.get("ended"):
                return
            else:
                await asyncio.sleep(_TAIL_POLL_S)


def _check_submit_types(entrypoint, submission_id, job_id, runtime_env, metadata, num_cpus, num_gpus, memory,
                        resources):
    """Ray's JobSubmitRequest checks, with its messages."""
    if not isinstance(entrypoint, str):
        raise TypeError(f"entrypoint must be a string, got {type(entrypoint)}")
    if submission_id is not None and not isinstance(submission_id, str):
        raise TypeError(f"submission_id must be a string if provided, got {type(submission_id)}")
    if job_id is not None and not isinstance(job_id, str):
        raise TypeError(f"job_id must be a string if provided, got {type(job_id)}")
    if runtime_env is not None:
        if not isinstance(runtime_env, dict):
            raise TypeError(f"runtime_env must be a dict, got {type(runtime_env)}")
        for k in runtime_env:
            if not isinstance(k, str):
                raise TypeError(f"runtime_env keys must be strings, got {type(k)}")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata)}")
        for k, v in metadata.items():
            if not isinstance(k, str):
                raise TypeError(f"metadata keys must be strings, got {type(k)}")
            if not isinstance(v, str):
                raise TypeError(f"metadata values must be strings, got {type(v)}")
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float))):
        raise TypeError(f"entrypoint_num_cpus must be a number, got {type(num_cpus)}")
    if num_gpus is not None and (isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, float))):
        raise TypeError(f"entrypoint_num_gpus must be a number, got {type(num_gpus)}")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)):
        raise TypeError(f"entrypoint_memory must be an integer, got {type(memory)}")
    if resources is not None:
        if not isinstance(resources, dict):
            raise TypeError(f"entrypoint_resources must be a dict, got {type(resources)}")
        for k, v in resources.items():
            if not isinstance(k, str):
                raise TypeError(f"entrypoint_resources keys must be strings, got {type(k)}")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"entrypoint_resources values must be numbers, got {type(v)}")
