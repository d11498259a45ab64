"""Fixtures of the Python suites: each module gets a real local cluster (a GCS, a raylet
and Python workers), started by ray.init() and stopped by ray.shutdown()."""

import os
import shutil

import pytest

import ray


@pytest.fixture(scope="module")
def ray_start():
    root = os.environ.get("RAYC_SESSION_ROOT")
    ctx = ray.init(num_cpus=4, resources={"custom": 2})
    yield ctx
    ray.shutdown()
    if root and os.path.isdir(root):
        shutil.rmtree(root, ignore_errors=True)
