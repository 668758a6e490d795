"""The suite audit: known-wrong submissions must be caught, known-right ones must keep full marks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.authoring.audit import CorpusError, graded_targets, load_corpus, run_audit

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"

MINI_WRONG = textwrap.dedent('''
    import torch.nn as nn, torch.nn.functional as F
    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        def forward(self, x):
            return F.relu(self.conv(x))
    def double(x):
        return 2 * x
''')
MINI_RIGHT = textwrap.dedent('''
    import torch.nn as nn
    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.ReLU())
        def forward(self, x):
            return x + self.body(x)
    def double(x):
        return x + x
''')


def write_case(corpus: Path, kind: str, name: str, files: dict[str, str], targets: list[str], description="a case"):
    folder = corpus / kind / name
    folder.mkdir(parents=True)
    for rel, text in files.items():
        (folder / rel).write_text(text, encoding="utf-8")
    quoted = ", ".join(f'"{t}"' for t in targets)
    (folder / "case.toml").write_text(f'description = "{description}"\ntargets = [{quoted}]\n', encoding="utf-8")
    return folder


@pytest.fixture
def mini_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    write_case(corpus, "wrong", "no_skip", {"blocks.py": MINI_WRONG}, ["SkipBlock"], "SkipBlock without the skip")
    write_case(corpus, "right", "sequential", {"blocks.py": MINI_RIGHT}, ["SkipBlock", "double"])
    return corpus


# ----------------------------------------------------------------------------- the audit itself, on the mini course

def test_audit_catches_wrong_and_keeps_right_on_the_mini_course(minispec, minisession, mini_corpus):
    report = run_audit(minispec, mini_corpus, session=minisession)
    by_name = {r.case.name: r for r in report.results}
    wrong, right = by_name["no_skip"], by_name["sequential"]
    assert wrong.ok and wrong.caught_by
    assert {f.target for f in wrong.caught_by} == {"SkipBlock"}
    assert "SkipBlock(4) computes the same function as the reference." in {f.name for f in wrong.caught_by}
    # graded targets: the case's own, plus everything defined in blocks.py
    assert wrong.graded_targets == ["SkipBlock", "double"]
    assert right.ok and right.score == right.max_score == pytest.approx(10.0)
    assert report.mutation_score == 1.0 and report.ok
    text = "\n".join(report.lines())
    assert "wrong/no_skip" in text and "caught by SkipBlock/structure" in text
    assert "mutation score: 1/1 wrong cases caught (100%)" in text


def test_audit_reports_an_escaped_case_and_a_false_alarm(minispec, minisession, tmp_path):
    corpus = tmp_path / "corpus"
    # "wrong" but actually correct: nothing can catch it
    write_case(corpus, "wrong", "not_really_wrong", {"blocks.py": MINI_RIGHT}, ["SkipBlock"])
    # "right" but missing the skip: loses points
    write_case(corpus, "right", "not_really_right", {"blocks.py": MINI_WRONG}, ["SkipBlock"])
    report = run_audit(minispec, corpus, session=minisession)
    assert not report.ok
    assert [r.case.name for r in report.escaped] == ["not_really_wrong"]
    assert [r.case.name for r in report.false_alarms] == ["not_really_right"]
    assert report.mutation_score == 0.0
    verdicts = {r.case.name: r.verdict() for r in report.results}
    assert verdicts["not_really_wrong"].startswith("ESCAPED")
    assert verdicts["not_really_right"].startswith("LOST")


def test_a_catalogued_case_must_be_named_by_its_cause(minispec, minisession, tmp_path):
    corpus = tmp_path / "corpus"
    for name, cause in [("named", "SkipBlock.output_differs"), ("misnamed", "SkipBlock.relu_before_add")]:
        folder = write_case(corpus, "wrong", name, {"blocks.py": MINI_WRONG}, ["SkipBlock"])
        with open(folder / "case.toml", "a", encoding="utf-8") as f:
            f.write(f'cause = "{cause}"\n')
    report = run_audit(minispec, corpus, session=minisession)
    by_name = {r.case.name: r for r in report.results}
    named, misnamed = by_name["named"], by_name["misnamed"]
    assert named.ok and named.named and named.causes == {"SkipBlock.output_differs"}
    assert named.verdict().startswith("named SkipBlock.output_differs, caught by SkipBlock/structure")
    # caught, but under another name: the audit fails it
    assert misnamed.caught_by and not misnamed.named and not misnamed.ok
    assert misnamed.verdict().startswith("NOT NAMED: expected SkipBlock.relu_before_add, the suite named "
                                         "SkipBlock.output_differs")
    assert "mistakes named by their cause: 1/2 catalogued, 2/2 wrong cases catalogued" in "\n".join(report.lines())


def test_audit_only_runs_the_tests_of_the_case_targets(minispec, minisession, tmp_path):
    corpus = tmp_path / "corpus"
    # double is wrong, but the case only claims SkipBlock and replaces blocks.py: both are graded
    broken_double = MINI_RIGHT.replace("return x + x", "return x")
    write_case(corpus, "wrong", "bad_double", {"blocks.py": broken_double}, ["SkipBlock"])
    report = run_audit(minispec, corpus, session=minisession)
    (r,) = report.results
    assert not r.ok and not r.caught_by  # the failing test is tagged double, not SkipBlock
    assert {f.target for f in r.failed} == {"double"}
    assert "other targets failed: double" in r.verdict()


@pytest.mark.parametrize(("toml", "files", "message"), [
    ('targets = ["SkipBlock"]\n', {"blocks.py": MINI_RIGHT}, "description"),
    ('description = "x"\ntargets = []\n', {"blocks.py": MINI_RIGHT}, "targets"),
    ('description = "x"\ntargets = ["Nope"]\n', {"blocks.py": MINI_RIGHT}, "unknown target"),
    ('description = "x"\ntargets = ["SkipBlock"]\n', {"other.py": "x = 1\n"}, "not among the assignment's files"),
    ('description = "x"\ntargets = ["SkipBlock"]\n', {}, "no .py file"),
    ('description = "x"\ntargets = ["SkipBlock"]\nextra = 1\n', {"blocks.py": MINI_RIGHT}, "unknown field"),
    ('description = "x"\ntargets = ["SkipBlock"]\ncause = "double.wrong"\n', {"blocks.py": MINI_RIGHT}, "cause must be"),
    ('description = "x"\ntargets = ["SkipBlock"]\ncause = "no_dot"\n', {"blocks.py": MINI_RIGHT}, "cause must be"),
])
def test_bad_cases_are_refused_with_the_reason(minispec, tmp_path, toml, files, message):
    folder = tmp_path / "corpus" / "wrong" / "bad"
    folder.mkdir(parents=True)
    (folder / "case.toml").write_text(toml)
    for rel, text in files.items():
        (folder / rel).write_text(text)
    with pytest.raises(CorpusError, match=message):
        load_corpus(minispec, tmp_path / "corpus")


def test_audit_command_exit_status(minicourse_copy, mini_corpus, tmp_path, monkeypatch, capsys):
    from grader.cli import main

    monkeypatch.setenv("GRADER_COURSES", str(minicourse_copy.parent))
    assert main(["audit", "--assignment", "mini", "--corpus", str(mini_corpus), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mutation score: 1/1" in out and "right cases at full marks: 1/1" in out
    write_case(mini_corpus, "wrong", "not_really_wrong", {"blocks.py": MINI_RIGHT}, ["SkipBlock"])
    assert main(["audit", "--assignment", "mini", "--corpus", str(mini_corpus), "--case", "not_really_wrong"]) == 1
    assert "ESCAPED" in capsys.readouterr().out
    assert main(["audit", "--assignment", "mini", "--corpus", str(tmp_path / "nowhere")]) == 2


# ----------------------------------------------------------------------------- the Day 9 corpus

@pytest.fixture(scope="module")
def day09():
    from grader.spec import find_spec

    return find_spec("day09")


def test_every_corpus_case_is_well_formed(day09):
    cases = load_corpus(day09, CORPUS)
    assert len([c for c in cases if c.kind == "wrong"]) >= 25
    assert len([c for c in cases if c.kind == "right"]) >= 6
    for case in cases:
        assert set(case.targets) <= set(graded_targets(day09, case))


def _assert_audit(report):
    problems = []
    for r in report.results:
        if r.unavailable:
            assert r.case.needs == "cuda", f"{r.case.label} was not run: {r.unavailable}"
        elif r.error:
            problems.append(f"{r.case.label}: {r.error}")
        elif r.case.kind == "wrong" and not r.ok:
            problems.append(f"{r.case.label} (targets {list(r.case.targets)}): {r.verdict()}")
        elif r.case.kind == "right" and not r.ok:
            problems.append(f"{r.case.label}: {r.verdict()}")
    assert not problems, "\n".join(problems)


def test_core_skip_connection_cases(day09):
    """A few corpus cases in the default run: the skip connection must be caught, a correct variant kept."""
    report = run_audit(day09, CORPUS, only=["wrong/res_no_skip", "wrong/res_bn1_reused", "right/resnet_kuangliu"])
    _assert_audit(report)


@pytest.mark.slow
def test_whole_corpus(graded_corpus):
    """Every wrong case is caught by a test of one of its targets; every right case keeps full marks."""
    _assert_audit(graded_corpus)
    assert graded_corpus.mutation_score == 1.0


def test_a_gpu_only_case_is_reported_as_not_run_without_cuda(minispec, minisession, tmp_path):
    assert not minisession.sandbox_config.gpu
    corpus = tmp_path / "corpus"
    folder = write_case(corpus, "wrong", "gpu_only", {"blocks.py": MINI_RIGHT}, ["SkipBlock"], "caught on a GPU only")
    with open(folder / "case.toml", "a", encoding="utf-8") as f:
        f.write('needs = "cuda"\n')
    write_case(corpus, "wrong", "no_skip", {"blocks.py": MINI_WRONG}, ["SkipBlock"])
    report = run_audit(minispec, corpus, session=minisession)
    assert [r.case.name for r in report.unavailable] == ["gpu_only"]
    assert report.mutation_score == 1.0 and report.ok
    assert "not run on this machine: wrong/gpu_only (needs a CUDA GPU)" in "\n".join(report.lines())


def test_a_gpu_only_case_is_graded_when_the_sandbox_has_the_gpu(minispec, tmp_path, monkeypatch):
    """The audit gives its sandbox the GPU whenever CUDA is usable, so GPU-only cases run there."""
    import grader.classrun.executors.local

    monkeypatch.setattr(grader.classrun.executors.local, "cuda_usable", lambda: True)   # a GPU sandbox also starts on a CPU
    corpus = tmp_path / "corpus"
    folder = write_case(corpus, "wrong", "gpu_only", {"blocks.py": MINI_WRONG}, ["SkipBlock"])
    with open(folder / "case.toml", "a", encoding="utf-8") as f:
        f.write('needs = "cuda"\n')
    report = run_audit(minispec, corpus)
    [result] = report.results
    assert result.unavailable is None and result.caught_by


def test_needs_accepts_only_cuda(minispec, tmp_path):
    corpus = tmp_path / "corpus"
    folder = write_case(corpus, "wrong", "odd", {"blocks.py": MINI_WRONG}, ["SkipBlock"])
    with open(folder / "case.toml", "a", encoding="utf-8") as f:
        f.write('needs = "tpu"\n')
    with pytest.raises(CorpusError, match="needs must be"):
        load_corpus(minispec, corpus)
