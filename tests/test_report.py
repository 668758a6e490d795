"""The per-student HTML report: content, escaping, truncation, self-containment."""

from __future__ import annotations

import html
import math
import re

import pytest
from resultfactory import make_result

from grader.report import render_student, write_student_report
from grader.report.html import STDOUT_LIMIT, clean_text, comparison_view, line_plot
from grader.results import Outcome

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOAD = SCRIPT + IMG


def attribute_urls(page: str) -> list[str]:
    return re.findall(r'\b(?:href|src|action|xlink:href)\s*=\s*"([^"]*)"', page)


def assert_escaped(page: str) -> None:
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert IMG not in page
    assert html.escape(SCRIPT) in page  # shown, as text


def test_shows_score_targets_categories_and_every_test():
    r = make_result()
    page = render_student(r)
    assert f"{r.score:g}" in page and f"{r.max_score:g} points" in page
    for target, (got, out_of) in r.by_target().items():
        row = page[page.index(f'<tr id="target-{target.lower()}"'):]
        assert f"{got:g} / {out_of:g}" in row[: row.index("</tr>")]
    for label in ("Parameter counts", "Skip connections", "Training", "Bonus"):
        assert label in page
    for t in r.tests:
        assert html.escape(t.name) in page
    # every outcome is named in words, not only by colour
    for word in ("Passed", "Failed", "Error", "Skipped"):
        assert f"</span>{word}</span>" in page


def test_failing_test_shows_message_expected_found_and_likely_cause():
    r = make_result()
    failed = next(t for t in r.tests if t.outcome is Outcome.failed and t.expected)
    page = render_student(r)
    section = page[page.index(f'id="test-{r.tests.index(failed) + 1}"'):]
    section = section[: section.index("</li>")]
    for part in (failed.expected, failed.found):
        assert html.escape(part) in section
    assert "Expected" in section and "Found" in section
    # it is listed under its mistake in "What to fix", which says the likely cause once and is linked from its class
    [number] = [n for n, m in enumerate(r.mistakes, 1) if m.key == failed.mistake]
    entry = page[page.index(f'id="mistake-{number}"'):]
    entry = entry[: entry.index('<li class="mistake') if '<li class="mistake' in entry else None]
    assert f'id="test-{r.tests.index(failed) + 1}"' in entry
    assert html.escape(failed.hint) in entry and html.escape(failed.message) in entry  # said once: in the test or as the summary
    assert "Likely cause" in entry and f'href="#mistake-{number}"' in page


def test_hidden_tests_show_their_message_but_never_their_source_path():
    r = make_result(p_pass=0.0, broken_files=())
    hidden = [t for t in r.tests if t.visibility != "visible" and t.outcome is Outcome.failed]
    assert hidden
    page = render_student(r)
    for t in hidden:
        assert html.escape(t.message) in page
        assert t.nodeid not in page
    assert "suites/" not in page and "::test_" not in page
    assert "hidden test" in page


def test_problems_and_flags_in_a_labelled_section_and_footer_details():
    r = make_result(broken_files=("inception.py",))
    page = render_student(r)
    assert "could not be graded" in page
    assert "NameError: name &#39;nn&#39; is not defined" in page
    assert "Traceback (most recent call last)" in page
    assert "Limits hit and actions refused" in page
    assert "stopped after 60 s" in page
    footer = page[page.index("<footer>"):]
    assert r.isolation in footer and r.grader_version in footer


def test_clean_result_has_no_problem_section():
    r = make_result(broken_files=(), flags=False, p_pass=1.0)
    page = render_student(r)
    assert "could not be graded" not in page
    assert "Nothing: every test passed." not in page  # the CUDA test is skipped, not passed
    assert "No test failed." in page


@pytest.mark.parametrize("field", ["stdout", "message", "expected", "found", "hint", "name", "target"])
def test_student_controlled_text_is_escaped(field):
    r = make_result()
    t = r.tests[0]
    setattr(t, field, PAYLOAD + getattr(t, field) if isinstance(getattr(t, field), str) else PAYLOAD)
    t.outcome = Outcome.failed
    assert_escaped(render_student(r))


def test_student_id_problems_flags_and_artifacts_are_escaped():
    r = make_result(student=PAYLOAD, assignment=PAYLOAD, isolation=PAYLOAD, grader_version=PAYLOAD)
    r.problems[0].message = PAYLOAD
    r.problems[0].detail = PAYLOAD
    r.problems[0].file = PAYLOAD
    r.flags[0].detail = PAYLOAD
    r.flags[0].test = PAYLOAD
    r.artifacts["layer_tables"]["ResidualBlock"]["student"][0]["type"] = PAYLOAD
    r.artifacts["layer_tables"][PAYLOAD] = r.artifacts["layer_tables"]["ResidualBlock"]
    r.artifacts["loss_curves"][PAYLOAD] = r.artifacts["loss_curves"]["ResNet"]
    r.artifacts["comparison"][0]["model"] = PAYLOAD
    page = render_student(r)
    assert_escaped(page)
    # ids made from a class name stay inside a safe alphabet
    assert all(re.fullmatch(r"[a-z0-9_-]+", i) for i in re.findall(r'\bid="([^"]*)"', page))


def test_stdout_is_truncated_with_a_note():
    tail = "ZZ-TAIL-ZZ"
    r = make_result(stdout="a" * (STDOUT_LIMIT + 500) + tail)
    page = render_student(r)
    assert "a" * STDOUT_LIMIT in page
    assert "a" * (STDOUT_LIMIT + 1) not in page
    assert tail not in page
    assert f"Truncated: showing the first 2,000 of {STDOUT_LIMIT + 500 + len(tail):,} characters" in page


def test_short_stdout_is_shown_whole_without_note():
    r = make_result(stdout="epoch 1: loss 2.30\n")
    page = render_student(r)
    assert "epoch 1: loss 2.30" in page
    assert "Truncated" not in page


def test_control_characters_and_colour_codes_are_removed():
    out = clean_text("\x1b[31mred\x1b[0m\x00bell\x07\r\nnext")
    assert out["text"] == "redbell\nnext"


def test_self_contained_no_external_urls_no_scripts():
    page = render_student(make_result())
    assert "<script" not in page and "<link rel=\"stylesheet\"" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for url in attribute_urls(page):
        assert url.startswith(("#", "data:")), url
    assert "<style>" in page and "@media print" in page and "@media (max-width" in page
    assert 'class="skip-link" href="#main"' in page and '<main id="main"' in page


def test_layer_table_marks_first_divergence_in_text():
    r = make_result(p_pass=0.0, broken_files=())
    page = render_student(r)
    assert page.count('class="diverge"') == 2  # the same row in both tables
    assert page.count("differs</span>") == 2  # a word in the row, not only a colour
    assert "First difference at layer 1:" in page
    assert "stride 1" in page and "stride 2" in page


def test_layer_table_without_divergence():
    r = make_result(p_pass=1.0, broken_files=())
    r.artifacts["layer_tables"]["ResidualBlock"]["first_divergence"] = None
    page = render_student(r)
    # the table compares parametrised layers only: it never claims the whole forward matches
    assert "Your convolution, BatchNorm and Linear layers are the reference's" in page
    assert "does not show what runs between them" in page
    assert 'class="diverge"' not in page


def test_loss_curve_svg_with_gaps_axes_and_legend():
    r = make_result(seed=0)  # seed 0: the MobileNetV1 loss becomes NaN/None from step 15
    page = render_student(r)
    assert page.count('<svg class="chart"') == 2
    assert ">training step</text>" in page and ">loss</text>" in page
    assert "Your model (dashed)" in page and "Reference (solid)" in page
    assert "not a number (NaN or infinite) at 6 of 20 steps, first at step 15" in page
    assert "nan" not in re.findall(r'points="([^"]*)"', page)[0].lower()


def test_line_plot_geometry_breaks_lines_at_gaps_and_clips_divergence():
    plot = line_plot(
        [("mine", [2.0, 1.0, None, 0.5, math.nan, 1e9, 0.2], "student"), ("ref", [2.0, 1.5, 1.0, 0.5, 0.4, 0.3, 0.2], "reference")],
        clip_to=[2.0, 1.5, 1.0, 0.5, 0.4, 0.3, 0.2],
    )
    mine = plot["lines"][0]
    assert len(mine["polylines"]) == 2 and len(mine["dots"]) == 1  # [2,1] [0.5] [1e9, 0.2]
    assert mine["gaps"] == 2
    assert plot["clipped_at"] == "8"
    assert line_plot([("x", [None, math.inf], "student")]) is None


def test_missing_or_malformed_artifacts_render_nothing():
    r = make_result(artifacts=False)
    page = render_student(r)
    assert "<svg class=\"chart\"" not in page and "Architecture comparison" not in page and "Layers:" not in page
    r.artifacts = {"layer_tables": "oops", "loss_curves": {"ResNet": {"student": "x"}}, "comparison": [1, None]}
    page = render_student(r)
    assert "Layers:" not in page and "<svg class=\"chart\"" not in page


def test_comparison_table_shows_parameter_difference():
    page = render_student(make_result())
    assert "Architecture comparison" in page
    assert "11,177,802" in page and "11,173,962" in page and "+3,840" in page
    assert "matches" in page


def test_write_student_report(tmp_path):
    r = make_result()
    path = write_student_report(r, tmp_path / "alice")
    assert path == tmp_path / "alice" / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_result_without_tests():
    r = make_result(tests=[], score=0, max_score=0, artifacts={})
    page = render_student(r)
    assert 'Score: </span>0<span class="of"> / 0 points' in page
    assert "No test failed." in page


def test_the_architecture_comparison_does_not_depend_on_the_order_tests_ran_in():
    rows = [{"model": "SimplifiedVGG", "params": 10, "ref_params": 10}, {"model": "Inception", "params": 5},
            {"model": "ResNet-18", "params": 7, "ref_params": 8}, {"model": "mobileNet", "params": 3}]
    table = comparison_view(rows)
    assert [r["model"] for r in table] == ["Inception", "mobileNet", "ResNet-18", "SimplifiedVGG"]
    assert comparison_view(list(reversed(rows))) == table
