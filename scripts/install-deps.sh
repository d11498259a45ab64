#!/bin/sh
# Installs the Debian packages rayc builds, tests and benchmarks with. Idempotent: it asks
# apt-get only for what dpkg says is missing, so a machine that has everything pays nothing.
# Runs as root, or through sudo when that is available.
set -eu

packages="build-essential cmake pkg-config libgrpc-dev protobuf-c-compiler libprotobuf-c-dev \
libhiredis-dev libuv1-dev libjemalloc-dev libmicrohttpd-dev libcurl4-openssl-dev libcunit1-dev libssl-dev redis-server openssh-server \
iproute2 clang libclang-rt-dev \
python3 python3-dev python3-cloudpickle python3-numpy python3-pytest python3-torch python3-sklearn"
# The Python package builds against Debian's python3-dev and runs under /usr/bin/python3;
# pytest runs tests/python, torch and sklearn the Python examples (make demo, make test);
# libcurl4-openssl-dev is the HTTP client of `rayc job` (the Jobs REST API);
# openssh-server's sshd is the host the market's ssh provider is tested against; iproute2's
# `ip netns` gives each node of tests/python/test_netns.py a network namespace of its own.

# The dashboard's web UI: npm fetches its charting library (uPlot) at build time
# (dashboard/CMakeLists.txt). A machine with an npm of its own (NodeSource's nodejs bundles
# one) keeps it.
command -v npm >/dev/null 2>&1 || packages="$packages npm"

# For the tests only: Debian's Prometheus server scrapes a test cluster's /metrics
# (tests/python/test_metrics.py, which skips without it); Debian's headless Chromium and
# its chromedriver drive the web dashboard (tests/python/test_dashboard.py, likewise), which
# trusts the cluster CA through an NSS database made with libnss3-tools' certutil; curl
# checks the HTTPS ports' certificates.
test_packages="prometheus chromium chromium-driver libnss3-tools curl"
packages="$packages $test_packages"

# Peers for rayc-bench (Dask distributed under Debian's python3); only with --bench.
if [ "${1:-}" = "--bench" ]; then
    packages="$packages python3-distributed python3-numpy"
fi

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install-deps: need root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
