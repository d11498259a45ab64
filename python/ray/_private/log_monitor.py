"""Worker output at the driver, prefixed as Ray prefixes it: `(f pid=123, ip=10.0.0.5) text`.

Python workers write to log files in their raylet's session (logs/worker-*.out and .err).
Each file starts with a line naming the worker's job (":job_id:<hex>") and marks the task
whose output follows (":task_name:<name>"). A thread of the driver follows the files of
its own job in every live session on this host (each node started here has one) and prints
their lines. Workers on other hosts are not followed yet (their output stays in their
logs).
"""

import glob
import os
import re
import sys
import threading
import time

from ray._private import worker as _worker

_POLL_S = 0.1
_DIRS_EVERY_S = 2.0
_WORKER_FILE = re.compile(r"worker-[0-9a-f]+\.(out|err)$")
# The core's own log lines: "[2026-12-05 10:00:00.123 INFO worker 123 file.c:45] ..."
_CORE_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ")


class _File:
    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.job = None
        self.task = None
        self.pid = None
        self.ino = None  # the file read so far: a worker that rotates it starts a new one


class _Monitor(threading.Thread):
    def __init__(self, root, job_hex, ip):
        super().__init__(daemon=True, name="rayc-log-monitor")
        self._root = root
        self._job = job_hex
        self._ip = ip
        self._files = {}
        self._dirs = []
        self._dirs_checked = 0.0
        self._done = threading.Event()

    def stop(self):
        self._done.set()
        self.join(timeout=2)
        self._poll()  # what the last tasks printed

    def run(self):
        while not self._done.wait(_POLL_S):
            self._poll()

    def _log_dirs(self):
        """The logs folders of the sessions on this host whose raylet is alive (every node
        started here has a session of its own), looked up every few seconds."""
        now = time.monotonic()
        if now - self._dirs_checked > _DIRS_EVERY_S:
            self._dirs_checked = now
            self._dirs = [os.path.join(d, "logs") for d in glob.glob(os.path.join(self._root, "session_2*"))
                          if _raylet_alive(d)]
        return self._dirs

    def scan(self, first):
        """Finds new worker files; on the first scan, files of earlier jobs start at their
        ends (workers prestarted for this job are read from the start)."""
        for logs in self._log_dirs():
            for path in glob.glob(os.path.join(logs, "worker-*.*")):
                if path in self._files or not _WORKER_FILE.search(path):
                    continue
                f = self._files[path] = _File(path)
                if first:
                    try:
                        with open(path, "rb") as fh:
                            line = fh.readline().decode("utf-8", "replace")
                            f.offset = 0 if line.startswith(f":job_id:{self._job}") else fh.seek(0, os.SEEK_END)
                    except OSError:
                        pass

    def _poll(self):
        self.scan(False)
        for path, f in list(self._files.items()):
            if f.job is not None and f.job != self._job:
                continue
            try:
                st = os.stat(path)
                if f.ino is None:
                    f.ino = st.st_ino
                elif st.st_ino != f.ino:
                    self._rotated(f, path, out=sys.stderr if path.endswith(".err") else sys.stdout)
                    f.ino = st.st_ino
                if st.st_size <= f.offset:
                    continue
                with open(path, "rb") as fh:
                    fh.seek(f.offset)
                    data = fh.read(1 << 20)
            except OSError:
                continue
            if not data:
                continue
            f.offset += len(data)
            lines = (f.partial + data).split(b"\n")
            f.partial = lines.pop()
            out = sys.stderr if path.endswith(".err") else sys.stdout
            for raw in lines:
                self._line(f, raw.decode("utf-8", "replace"), out)
            out.flush()

    def _rotated(self, f, path, out):
        """The worker rotated path (it is now path.1): print what it wrote there after our
        last read, then follow the new file from its start."""
        try:
            with open(path + ".1", "rb") as fh:
                if os.fstat(fh.fileno()).st_ino == f.ino:
                    fh.seek(f.offset)
                    data = f.partial + fh.read()
                    f.partial = b""
                    for raw in data.split(b"\n"):
                        if raw:
                            self._line(f, raw.decode("utf-8", "replace"), out)
        except OSError:
            pass
        f.offset = 0
        f.partial = b""

    def _line(self, f, line, out):
        if line.startswith(":job_id:"):
            job, _, pid = line[len(":job_id:"):].strip().partition(":")
            f.job, f.pid = job, pid or "?"
            return
        if line.startswith(":task_name:"):
            f.task = line[len(":task_name:"):].strip()
            return
        if f.job != self._job or _CORE_LOG.match(line):
            return  # another job's worker, or the core's own log lines
        name = f"{f.task} " if f.task and f.task != "worker" else ""
        print(f"({name}pid={f.pid}, ip={self._ip}) {line}", file=out)


def _raylet_alive(session):
    try:
        with open(os.path.join(session, "pids", "raylet.pid")) as fh:
            return os.path.exists(f"/proc/{int(fh.read().strip())}")
    except (OSError, ValueError):
        return False


_monitor = None


def start():
    global _monitor
    root = os.environ.get("RAYC_SESSION_ROOT", "/tmp/rayc")
    _monitor = _Monitor(root, _worker.global_worker.job_id.hex(), _worker.get_node_ip_address())
    _monitor.scan(True)
    _monitor.start()


def stop():
    global _monitor
    if _monitor is not None:
        _monitor.stop()
        _monitor = None
