#!/usr/bin/env bash
# make install's Python package works from a scratch prefix: Debian's Python imports it from
# <prefix>/lib/python3.X/dist-packages, ray.init() finds the daemons on PATH (no RAYC_BIN_DIR)
# and a task runs on a Python worker.
set -euo pipefail
build="$1"
scratch="$(mktemp -d /tmp/rayc-install-XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
site="$(ls -d "$scratch"/prefix/lib/python3*/dist-packages)"
cd "$scratch"
out="$(env -u RAYC_BIN_DIR -u PYTHONPATH PATH="$scratch/prefix/bin:$PATH" RAYC_SESSION_ROOT="$scratch/sessions" \
    PYTHONPATH="$site" /usr/bin/python3 -c '
import os, ray
ray.init(num_cpus=1)
print(ray.__file__)
print(ray.get(ray.remote(lambda: os.getpid()).remote()) != os.getpid())
ray.shutdown()')"
echo "$out"
grep -q "^$site/ray/__init__.py$" <<<"$out"
grep -q "^True$" <<<"$out"
echo "install check: ok"
