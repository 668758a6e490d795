"""The assignment spec: validated, with errors that name the field."""

from __future__ import annotations

import pytest

from grader.spec import SpecError, find_spec, load_spec


def rewrite(course, old, new):
    toml = course / "assignment.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new, 1))


def test_minicourse_loads(minispec):
    assert minispec.id == "mini"
    assert minispec.target("SkipBlock").file == "blocks.py"
    assert minispec.rubric_item("double", "api").points == 2


@pytest.mark.parametrize(
    "old, new, field",
    [
        ('points = 4\nvisible = true', 'points = -1\nvisible = true', "rubric.0.points"),
        ('category = "params"', 'category = "style"', "rubric.0.category"),
        ('total_points = 10', 'total_points = 12', "add up to"),
        ('name = "double"\nfile = "blocks.py"', 'name = "double"\nfile = "../blocks.py"', "targets.1.file"),
        ('title = ', 'colour = "red"\ntitle = ', "colour"),
        ('target = "double"', 'target = "triple"', "unknown target"),
        ('hidden_tests = "hidden"', 'hidden_tests = "nowhere"', "hidden_tests"),
    ],
)
def test_bad_specs_name_the_field(minicourse_copy, old, new, field):
    rewrite(minicourse_copy, old, new)
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        load_spec(minicourse_copy)


def test_not_toml_is_a_clear_error(minicourse_copy):
    (minicourse_copy / "assignment.toml").write_text("id = [")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(minicourse_copy)


def test_find_spec_by_id_and_unknown_id(minicourse_copy, monkeypatch):
    monkeypatch.setenv("GRADER_COURSES", str(minicourse_copy.parent))
    assert find_spec(None).id == "mini"
    assert find_spec("mini").id == "mini"
    with pytest.raises(SpecError, match="unknown assignment 'day99'"):
        find_spec("day99")


def test_day09_spec_is_valid():
    spec = find_spec("day09")
    assert sum(i.points for i in spec.rubric if i.category != "bonus") == 100
    assert {t.file for t in spec.targets} <= set(spec.files)
