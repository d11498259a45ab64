"""Fixtures of the Python suites: each module gets a real local cluster (a GCS, a raylet
and Python workers), started by ray.init() and stopped by ray.shutdown()."""

import atexit
import os
import shutil
import tempfile

import pytest

import ray

# Each pytest process (one ctest entry) gets a session root of its own, short enough for the
# unix socket paths below it (108 bytes), so that suites running side by side never find
# each other's clusters.
_root = tempfile.mkdtemp(prefix="rcpy-", dir="/tmp")
os.environ["RAYC_SESSION_ROOT"] = _root
atexit.register(shutil.rmtree, _root, True)


@pytest.fixture(scope="module")
def ray_start():
    ctx = ray.init(num_cpus=4, resources={"custom": 2})
    yield ctx
    ray.shutdown()


@pytest.fixture
def market_factory(tmp_path, monkeypatch):
    """Makes Markets (offers, config, head_cpus, env: variables for the market's processes)
    and stops them all after the test."""
    made = []

    def make(offers, config=None, head_cpus=1, env=None):
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        from market_harness import Market  # the market suites' helper

        m = Market(tmp_path, offers, config, head_cpus)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()
