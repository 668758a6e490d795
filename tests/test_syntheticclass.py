"""The synthetic class composed from the corpus's results, and its fixture kept in step with the suite."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from benches import load_bench
from syntheticclass import FIXTURE, compose, load_fixture, make_class

from grader.report.classreport import class_view
from grader.report.collect import Collection, Graded
from grader.report.grouping import mistakes_of
from grader.results import Outcome

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
PADDING = "wrong/inception_5x5_padding1"
CAT_DIM0 = "wrong/inception_cat_dim0"


def view_of(results) -> dict:
    return class_view(Collection(Path("/nonexistent"), [Graded(r.student, r) for r in results]))


def test_fixture_holds_only_corpus_cases_and_enough_of_them():
    """Cases added since the fixture was written are missing from the class, not wrong in it: the slow test
    below catches those; a case removed or renamed would be composed from results of a case that is gone."""
    data = load_fixture()
    on_disk = {f"{p.parent.parent.name}/{p.parent.name}" for p in CORPUS.glob("*/*/case.toml")}
    assert set(data.cases) <= on_disk, "run bench/corpus_results.py to bring the fixture up to date"
    assert sum(c.kind == "wrong" for c in data.cases.values()) >= 25
    assert data.max_score == 100
    assert sum(t.score for t in data.reference) == pytest.approx(110)  # the reference, bonus included
    assert all(c.differs for c in data.cases.values() if c.kind == "wrong")


def test_the_class_is_deterministic_and_a_realistic_mix():
    students = make_class(200)
    assert [s.model_dump() for s in students] == [s.model_dump() for s in make_class(200)]
    assert len({s.student for s in students}) == 200
    for s in students:
        assert s.score == pytest.approx(sum(t.score for t in s.tests))
    percents = [100 * s.score / s.max_score for s in students]
    assert sum(p >= 100 for p in percents) >= 10  # some perfect
    assert 60 <= sum(percents) / len(percents) <= 95
    ungradable = [s for s in students if s.problems]
    flagged = [s for s in students if s.flags and not s.problems]
    assert 4 <= len(ungradable) <= 20 and 2 <= len(flagged) <= 20
    assert all(any(t.outcome is Outcome.error for t in s.tests) for s in ungradable)
    # GPU checks did not run here, for anyone, and carry no points
    skipped = [t for t in students[0].tests if t.outcome is Outcome.skipped]
    assert skipped and all(t.max_score == 0 for t in skipped)


def test_per_class_table_and_one_mistake_in_two_students_is_one_entry_counted_twice():
    data = load_fixture()
    files = sorted(set(data.files.values()))
    right = {f: None for f in files}
    students = [
        compose("ada", right, data),
        compose("bea", dict(right, **{"inception.py": PADDING}), data),
        compose("cy", dict(right, **{"inception.py": PADDING, "vgg.py": "wrong/vgg_dropout_p"}), data),
        compose("dee", dict(right, **{"inception.py": CAT_DIM0}), data),
    ]
    view = view_of(students)

    padding_tests = [t for t in data.cases[PADDING].differs if t.outcome is Outcome.failed]
    assert len(padding_tests) >= 3  # one mistake, many failed tests
    entries = [m for m in view["mistakes"] if any(s["student"] == "bea" for s in m["examples"])]
    assert len(entries) == 1, [m["title"]["text"] for m in entries]
    padding = entries[0]
    assert padding["count"] == 2 and [s["student"] for s in padding["examples"]] == ["bea", "cy"]
    assert len(padding["tests"]) == len(padding_tests)
    assert padding["target"] == "InceptionModule"
    # every entry counts students, not tests: as many as the students' own mistakes add up to
    own = {s.student: len(mistakes_of(s)) for s in students}
    assert own["ada"] == 0 and own["bea"] == 1 and own["cy"] == 2 and own["dee"] >= 1
    assert sum(m["count"] for m in view["mistakes"]) == sum(own.values())
    assert all(len({s["student"] for s in m["examples"]}) == m["count"] for m in view["mistakes"])
    assert {s["student"]: s["mistakes"] for s in view["students"]} == own

    classes = {c["target"]: c for c in view["classes"]}
    module = classes["InceptionModule"]
    assert (module["students"], module["full"], module["pass_rate"]) == (4, 1, 25.0)
    out_of = sum(t.max_score for t in data.reference if t.target == "InceptionModule")
    assert module["max"] == pytest.approx(out_of)
    lost = {s.student: sum(t.max_score - t.score for t in s.tests if t.target == "InceptionModule") for s in students}
    assert module["mean"] == pytest.approx(out_of - sum(lost.values()) / 4)
    assert module["below_half"] == sum(1 for v in lost.values() if v > out_of / 2)
    assert classes["ResidualBlock"]["pass_rate"] == 100 and classes["ResidualBlock"]["below_half"] == 0
    assert view["classes"][0]["pass_rate"] <= view["classes"][-1]["pass_rate"]
    # the GPU checks ran for nobody: no class row is made of them alone, no test row shows them
    assert all(t["ran"] for t in view["tests"]) and view["not_run"]


def test_a_class_of_200_is_readable():
    view = view_of(make_class(200))
    assert len(view["students"]) == 200
    assert len(view["classes"]) <= 30  # one row per class, not per test
    counts = [m["count"] for m in view["mistakes"]]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 10
    keys = Counter(m["key"] for m in view["mistakes"] + view["rare_mistakes"])
    assert max(keys.values()) == 1  # every mistake has one entry
    assert view["flagged"][: len(view["ungradable"])] == view["ungradable"]
    # a file that does not import is under "Needs attention", an untouched stub under "Left unfinished"
    assert all(m["kind"] not in ("import", "missing", "not_implemented") for m in view["mistakes"] + view["rare_mistakes"])
    assert view["unfinished"] and all(m["kind"] == "not_implemented" for m in view["unfinished"])


@pytest.mark.slow
def test_fixture_is_up_to_date(graded_corpus):
    """The corpus as graded now: every test's outcome, points, hint and cause match the committed fixture."""

    def essentials(data: dict) -> dict:
        def rows(tests):
            return sorted((t["target"], t["nodeid"], t["outcome"], t["score"], t["max_score"], t["hint"], t["cause"]) for t in tests)

        return {"reference": rows(data["reference"]), "skeleton": rows(data["skeleton"]["differs"]),
                **{label: rows(case["differs"]) for label, case in data["cases"].items()}}

    fresh = load_bench("corpus_results").grade_corpus(audit=graded_corpus)
    stored = load_fixture().model_dump(mode="json")
    assert sorted(fresh["cases"]) == sorted(stored["cases"]), "the corpus changed: run bench/corpus_results.py"
    assert essentials(fresh) == essentials(stored), (
        f"{FIXTURE.relative_to(ROOT)} is out of date with the hidden suite: run bench/corpus_results.py")
