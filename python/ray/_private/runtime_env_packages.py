"""A job's working_dir and py_modules, on every node its workers run on (Ray's runtime_env
packaging).

At ray.init the driver zips each local directory (or single-file module), names the package
after its content (gcs://_ray_pkg_<sha1>.zip, Ray's URI shape) and stores it in the GCS KV,
which keeps the first copy of a name: in pieces of CHUNK_BYTES ("<uri>#<i>", under the GCS's
kv_max_value_bytes), then the URI itself, holding their count, so that a package whose URI is
there is there whole (and is not sent again). It records the job's packages under the job's
ID.
Before its first task a worker of the job fetches each package it does not have yet, unpacks
it once per node under <session>/runtime_resources/ (the first worker unpacks, the others
wait on a file lock), imports from there, and runs its tasks in the working_dir's copy. So a
worker sees the directory as it was at ray.init, on whatever host it runs, as in Ray.

Packages are built the same way every time (files in sorted order, fixed timestamps), so an
unchanged directory is the same package and is not unpacked again. `excludes` takes Ray's
gitignore-style patterns: a pattern with a slash matches the path from the directory's top,
one without matches any file or directory name; a matched directory is left out whole, as
are __pycache__ folders. Symbolic links to folders are not followed (a link to a file is
packaged as the file).
"""

import fnmatch
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile

KV_NAMESPACE = "runtime_env_packages"
_JOB_KEY = "job:{}"
# Ray's GCS_STORAGE_MAX_SIZE: what one package may weigh once zipped.
MAX_PACKAGE_BYTES = 500 * 1024 * 1024
CHUNK_BYTES = 32 * 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _excluded(rel, name, patterns):
    for p in patterns:
        p = p.strip()
        if not p or p.startswith("#"):
            continue
        anchored = "/" in p.rstrip("/")
        p = p.strip("/")
        if fnmatch.fnmatchcase(rel if anchored else name, p) or (anchored and rel.startswith(p + "/")):
            return True
    return False


def _files(root, excludes):
    """(archive name, path) of every file under root not excluded, in sorted order."""
    out = []
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        rel_top = "" if rel_top == "." else rel_top.replace(os.sep, "/") + "/"
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not _excluded(rel_top + d, d, excludes))
        for f in sorted(files):
            if not _excluded(rel_top + f, f, excludes) and os.path.isfile(os.path.join(top, f)):
                out.append((rel_top + f, os.path.join(top, f)))
    return out


def _zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, path in entries:
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.external_attr = (os.stat(path).st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
            if buf.tell() > MAX_PACKAGE_BYTES:
                break
    return buf.getvalue()


def package(path, what, excludes=()):
    """(URI, zip bytes) of the directory or file at path, for runtime_env[what]: a
    working_dir's files are the package's top, a py_modules folder keeps its own name (it is
    imported as that package), a module file is itself. Raises ValueError when the package
    is too large."""
    if os.path.isdir(path):
        under = os.path.basename(os.path.normpath(path)) + "/" if what == "py_modules" else ""
        entries = [(under + name, p) for name, p in _files(path, excludes)]
    else:
        entries = [(os.path.basename(path), path)]
    data = _zip(entries)
    if len(data) > MAX_PACKAGE_BYTES:
        raise ValueError(
            f"Package size of runtime_env['{what}'] {path!r} exceeds the maximum size of "
            f"{MAX_PACKAGE_BYTES / 1024 / 1024:.2f}MiB. You can exclude large files using the 'excludes' "
            "option to the runtime_env.")
    return f"gcs://_ray_pkg_{hashlib.sha1(data).hexdigest()}.zip", data


def record(kv_put, kv_get, job_hex, packages, has_working_dir):
    """Stores the job's packages, [(URI, zip bytes)] as package() made them, the
    working_dir's first if has_working_dir (kv_put(namespace, key, value, overwrite),
    kv_get(namespace, key)), and records them under the job for its workers. A package the
    GCS holds already (its head is there, so all of it is) is not sent again."""
    for uri, data in packages:
        if kv_get(KV_NAMESPACE, uri) is not None:
            continue
        pieces = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        for i, piece in enumerate(pieces):
            kv_put(KV_NAMESPACE, f"{uri}#{i}", piece, False)
        kv_put(KV_NAMESPACE, uri, json.dumps({"pieces": len(pieces), "bytes": len(data)}).encode(), False)
    uris = [uri for uri, _ in packages]
    rec = {"working_dir": uris[0] if has_working_dir else None, "py_modules": uris[1:] if has_working_dir else uris}
    kv_put(KV_NAMESPACE, _JOB_KEY.format(job_hex), json.dumps(rec).encode(), True)


def _fetch(kv_get, uri):
    """The zip bytes of package uri from the GCS, checked against its name."""
    head = kv_get(KV_NAMESPACE, uri)
    if head is None:
        raise RuntimeError(f"runtime_env package {uri} is not in the GCS (was the cluster restarted?)")
    meta = json.loads(head)
    pieces = [kv_get(KV_NAMESPACE, f"{uri}#{i}") for i in range(int(meta["pieces"]))]
    if any(p is None for p in pieces):
        raise RuntimeError(f"runtime_env package {uri} is missing pieces in the GCS")
    data = b"".join(pieces)
    if len(data) != meta["bytes"] or f"_ray_pkg_{hashlib.sha1(data).hexdigest()}.zip" != uri.rsplit("/", 1)[-1]:
        raise RuntimeError(f"runtime_env package {uri} in the GCS does not match its name")
    return data


def _unpacked(kv_get, base, uri):
    """The directory uri is unpacked in under base, unpacking it first if no worker on this
    node has. Raises RuntimeError when the package is gone from the GCS."""
    import fcntl

    name = uri.rsplit("/", 1)[-1]
    if name.endswith(".zip"):
        name = name[:-4]
    target = os.path.join(base, name)
    if os.path.isdir(target):
        return target
    os.makedirs(base, mode=0o700, exist_ok=True)
    with open(os.path.join(base, name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(target):
            return target
        data = _fetch(kv_get, uri)
        tmp = tempfile.mkdtemp(prefix=name + ".", dir=base)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for info in z.infolist():
                    if info.filename.startswith("/") or ".." in info.filename.split("/"):
                        raise RuntimeError(f"runtime_env package {uri} holds a path outside it: {info.filename!r}")
                    z.extract(info, tmp)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode and not info.is_dir():
                        os.chmod(os.path.join(tmp, info.filename), mode | 0o400)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def install(kv_get, job_hex, session_dir):
    """Puts the job's packages in place for this worker: py_modules and working_dir first on
    sys.path, and the working_dir's copy as the working directory. Nothing for a job without
    packages."""
    raw = kv_get(KV_NAMESPACE, _JOB_KEY.format(job_hex))
    if not raw:
        return
    record = json.loads(raw)
    base = os.path.join(session_dir or tempfile.gettempdir(), "runtime_resources", "packages")
    paths = [_unpacked(kv_get, base, uri) for uri in record.get("py_modules") or []]
    if record.get("working_dir"):
        wd = _unpacked(kv_get, base, record["working_dir"])
        os.chdir(wd)
        paths.insert(0, wd)
    for p in reversed(paths):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
