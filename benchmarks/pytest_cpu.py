"""A pytest plugin: each test's CPU and wall seconds, a line per test in ``$GMM_TEST_CPU_LOG``.

CPU counts the test's process and the children it waited for. The test suite's budget is planned
from it: wall times alone mislead when tests share two cores.

Usage, from the repository root::

    GMM_TEST_CPU_LOG=cpu.log PYTHONPATH=benchmarks .venv/bin/python -m pytest -n auto \
        --maxschedchunk 1 -p pytest_cpu
    sort -rn cpu.log | head -20
"""

import os
import resource
import time

import pytest


def _cpu():
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Time one test's setup, call and teardown."""
    cpu, wall = _cpu(), time.perf_counter()
    yield
    with open(os.environ["GMM_TEST_CPU_LOG"], "a") as fh:
        fh.write(f"{_cpu() - cpu:.2f} {time.perf_counter() - wall:.2f} {item.nodeid}\n")
