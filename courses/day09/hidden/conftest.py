"""Fixtures and hooks shared by the Day 9 hidden tests."""

from __future__ import annotations

import pytest

import catalogue
import checks_a
import checks_b
from grader.testing import Mistake

# The memoised probe runner each block's tests use, so naming a mistake reuses their forwards.
_RUNNERS = {"ResidualBlock": checks_a.probe, "VGGBlock": checks_a.probe,
            "DepthwiseSeparableConv": checks_b.run, "InceptionModule": checks_b.run}


@pytest.fixture
def cuda_gpu() -> None:
    """Skip the test (it then carries no points) when this machine has no CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compares_outputs: the test's failures come from the block's outputs, so "
                                       "the catalogue of known mistakes can name them")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A failure of an output comparison that its test could not name is named from the block's catalogue.

    Every test of a block that fails because of one catalogued mistake then carries
    the same cause, so the mistake is reported once, with what is wrong and where.
    Tests of other properties (gradients, devices, parameter counts) name their own,
    except when the block registers no layer or its forward raises: then whatever
    the test checks failed because of that.
    """
    outcome = yield
    exc = outcome.excinfo[1] if outcome.excinfo else None
    if not isinstance(exc, Mistake) or exc.cause:
        return
    target = item.get_closest_marker("grade").kwargs.get("target")
    if target not in _RUNNERS:
        return
    compares_outputs = item.get_closest_marker("compares_outputs") is not None
    try:
        request = item._request  # noqa: SLF001 - the fixtures of the test that just ran
        entry = catalogue.identify(_RUNNERS[target], request.getfixturevalue("student"),
                                   request.getfixturevalue("reference"), target, outputs=compares_outputs)
    except Exception:  # noqa: BLE001 - naming is an explanation: it never changes the outcome
        return
    if entry is not None:
        catalogue.name(exc, entry)
