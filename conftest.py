"""Opt-in test tiers: `--runslow` for long tests, `--rungpu` for tests that need CUDA."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run tests marked slow (minutes each)")
    parser.addoption("--rungpu", action="store_true", help="run tests marked gpu (need a CUDA device)")


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow test: run with --runslow (or `make test-all`)")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU: run with --rungpu on a machine that has one")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not config.getoption("--rungpu"):
            item.add_marker(skip_gpu)
