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
    checks_b.need_cuda()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compares_outputs: the test judges the module's whole output (or how the "
                                       "whole model trains), so a failure it cannot name is named from the block's "
                                       "catalogue of known mistakes, else it is a symptom of the class's mistake")


FLATTEN_SIZE_HINT = "The first Linear layer's in_features differ from the number of values each flattened image has."

# Words of a hint, or of the error the forward raised, that name the cause whatever the test found them in:
# (fragment, cause within the class, the hint that then replaces the test's own or None to keep it).
EVIDENCE = [
    ("Dropout is active in eval mode", "dropout_in_eval", None),
    ("The forward applies a softmax", "softmax_output", None),
    ("The loss stays above 1.46", "softmax_output", None),
    (checks_a.INPLACE_HINT, "inplace_on_input", None),
    ("mat1 and mat2 shapes cannot be multiplied", "flatten_size", FLATTEN_SIZE_HINT),
    ("must have same reduction dim", "flatten_size", FLATTEN_SIZE_HINT),  # the same on the meta device
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A failure its test could not name is named from what it shows, else marked as a symptom.

    - A block's output comparison is named from the block's catalogue: every test of
      a block that fails because of one catalogued mistake then carries the same
      cause, so the mistake is reported once, with what is wrong and where. An exact
      catalogue match also takes precedence over what an output test read from one
      configuration (a missing final ReLU that is in fact a ReLU moved before the
      addition). Tests of other properties (gradients, devices, parameter counts)
      name their own, except when the block registers no layer or its forward
      raises: then whatever the test checks failed because of that.
    - A hint that states a cause outright (dropout active in eval mode, a softmax
      in the forward, an in-place change of the input), or an error that does (a
      Linear layer fed the wrong number of features), names it in any class.
    - What is left of a test marked ``compares_outputs`` is a symptom: the whole
      output differs for whatever is wrong in the class, so the grouping of
      mistakes (``grader.grading.mistakes``) charges it to the class's mistake with
      evidence of its own instead of listing it apart.
    """
    outcome = yield
    exc = outcome.excinfo[1] if outcome.excinfo else None
    if not isinstance(exc, Mistake):
        return
    target = item.get_closest_marker("grade").kwargs.get("target")
    compares_outputs = item.get_closest_marker("compares_outputs") is not None
    if target in _RUNNERS and (not exc.cause or compares_outputs):
        try:
            request = item._request  # noqa: SLF001 - the fixtures of the test that just ran
            entry = catalogue.identify(_RUNNERS[target], request.getfixturevalue("student"),
                                       request.getfixturevalue("reference"), target, outputs=compares_outputs)
        except Exception:  # noqa: BLE001 - naming is an explanation: it never changes the outcome
            entry = None
        if entry is not None:
            catalogue.name(exc, entry)
    if exc.cause:
        return
    said = f"{exc.hint or ''}\n{exc.found or ''}"
    known = next(((c, h) for fragment, c, h in EVIDENCE if fragment in said), None)
    if known is not None:
        exc.cause = f"{target}.{known[0]}"
        exc.hint = known[1] or exc.hint
    elif compares_outputs:
        exc.data["symptom"] = True
