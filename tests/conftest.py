"""Fixtures shared by the project's own tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"

# The reference's cached results (grader.grading.refcache) go to a folder of this test session's own, shared by the
# processes it starts: never the user's cache, and never results kept from before the session.
_CACHE = tempfile.mkdtemp(prefix="grader-test-cache-")
os.environ["GRADER_CACHE_DIR"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def minispec():
    from grader.spec import load_spec

    return load_spec(MINICOURSE)


@pytest.fixture(scope="module")
def minisession(minispec):
    from grader.grading.engine import GradingSession

    with GradingSession(minispec) as session:
        yield session


@pytest.fixture
def make_submission(tmp_path):
    """Write a submission folder from {relative path: text} and return it."""

    def make(files: dict[str, str], name: str = "student") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
        return folder

    return make


@pytest.fixture
def minicourse_copy(tmp_path):
    """A writable copy of the mini course, for tests that change its spec or suite."""
    dest = tmp_path / "courses" / "mini"
    shutil.copytree(MINICOURSE, dest)
    return dest


# Grading the whole corpus once takes longer than the per-test limit on two cores; the test that first asks for a
# session-wide grading pays for it in its setup, so those tests get a limit sized for the whole corpus.
SESSION_GRADING_FIXTURES = {"graded_corpus", "graded_demo"}
SESSION_GRADING_TIMEOUT_S = 3600


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SESSION_GRADING_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SESSION_GRADING_TIMEOUT_S))


@pytest.fixture(scope="session")
def graded_corpus():
    """Every case of tests/corpus graded once per test session (an ``AuditReport``); for tests marked slow."""
    from grader.authoring.audit import run_audit
    from grader.spec import find_spec

    return run_audit(find_spec("day09"), ROOT / "tests" / "corpus")


@pytest.fixture(scope="session")
def graded_demo(tmp_path_factory):
    """bob, carol and dave of the demo class graded once per test session: {student: (result, folder)}; for slow tests."""
    from grader.grading.engine import GradingSession
    from grader.report import write_student_report
    from grader.results import save
    from grader.spec import find_spec

    out = tmp_path_factory.mktemp("demo")
    graded = {}
    with GradingSession(find_spec("day09")) as session:
        for student in ("bob", "carol", "dave"):
            result = session.grade(ROOT / "submissions" / student)
            save(result, out / student)
            write_student_report(result, out / student)
            graded[student] = (result, out / student)
    return graded
