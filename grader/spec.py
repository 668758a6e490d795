"""The assignment spec: one validated TOML file per assignment.

Nothing assignment-specific lives in the engine: a new day is a new folder under
``courses/`` with an ``assignment.toml``, its hidden and public tests, and paths
to its reference solution and student skeleton.
"""

from __future__ import annotations

import ast
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grader.results import Category, FeedbackPolicy


class SpecError(Exception):
    """A spec that cannot be used; the message names the file and the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(Strict):
    """A class or function students implement.

    ``depends_on`` names the targets it is built from (a network's block). Under
    the ``isolate`` policy, a dependency that failed its own tests is replaced,
    in this target's tests, by the course's stand-in of the same name, on the
    student's side and the reference's alike.

    ``dry_run_input`` is the documented input of the module a target builds (a
    class, or a function returning a model), for materialising lazy layers
    before anything is measured: integers, or the name of a parameter whose
    value is used (``[1, "in_channels", 8, 8]``).
    """

    name: str
    file: str
    kind: Literal["class", "function"] = "class"
    depends_on: list[str] = Field(default_factory=list)
    dry_run_input: list[int | str] | None = None

    @field_validator("file")
    @classmethod
    def _plain_relative(cls, v: str) -> str:
        if os.path.isabs(v) or ".." in Path(v).parts or not v.endswith(".py"):
            raise ValueError(f"{v!r} must be a .py file inside the submission folder")
        return v


class RubricItem(Strict):
    """Points for every test of one target in one category, split evenly among them."""

    target: str
    category: Category
    points: float = Field(gt=0)
    visible: bool = False


class Limits(Strict):
    request_timeout_s: float = Field(30.0, gt=0)
    submission_timeout_s: float = Field(900.0, gt=0)
    import_timeout_s: float = Field(20.0, gt=0)
    memory_mb: int = Field(6144, ge=256)
    max_processes: int = Field(64, ge=4)
    output_bytes: int = Field(20_000, ge=1_000)
    tmp_mb: int = Field(256, ge=16)


class NotebookOptions(Strict):
    """How a notebook (.ipynb) submission is read into the files (docs/design.md, "Notebook submissions").

    Every target goes to the file the spec assigns it; ``place`` adds other names
    a file must hold (a provided helper the suite imports, say). Helpers,
    constants and imports follow the code that uses them.
    """

    accept: bool = True
    place: dict[str, str] = Field(default_factory=dict)

    @field_validator("place")
    @classmethod
    def _names_and_files(cls, v: dict[str, str]) -> dict[str, str]:
        for name, file in v.items():
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not a Python name")
            if not file.endswith(".py"):
                raise ValueError(f"{name} goes to {file!r}, which is not a .py file")
        return v


DependencyPolicy = Literal["isolate", "cumulative"]


class AssignmentSpec(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: str
    reference: Path
    skeleton: Path
    hidden_tests: Path
    public_tests: Path
    files: list[str]
    targets: list[Target]
    rubric: list[RubricItem]
    total_points: float = 100.0
    # What students see: "hints" (what is wrong and where), "full" (the fix too), "score" (points per class only).
    feedback: FeedbackPolicy = "hints"
    limits: Limits = Limits()
    notebook: NotebookOptions = NotebookOptions()
    # How a target's tests treat a dependency that failed its own tests: "isolate" substitutes the
    # course's stand-in (each mistake is charged once), "cumulative" uses the student's own.
    dependencies: DependencyPolicy = "isolate"
    # Course code, relative to the spec: one stand-in per target named in some ``depends_on``.
    stand_ins: Path | None = None
    root: Path = Field(exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "AssignmentSpec":
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"targets: duplicate names {sorted({n for n in names if names.count(n) > 1})}")
        for t in self.targets:
            if t.file not in self.files:
                raise ValueError(f"targets: {t.name} lives in {t.file}, which is not in files")
        for name, file in self.notebook.place.items():
            if file not in self.files:
                raise ValueError(f"notebook.place: {name} goes to {file}, which is not in files")
            if name in names and self.target(name).file != file:
                raise ValueError(f"notebook.place: {name} is a target of {self.target(name).file}, not {file}")
        seen = set()
        for item in self.rubric:
            if item.target not in names:
                raise ValueError(f"rubric: unknown target {item.target!r}")
            key = (item.target, item.category)
            if key in seen:
                raise ValueError(f"rubric: {item.target}/{item.category} listed twice")
            seen.add(key)
        graded = sum(i.points for i in self.rubric if i.category != "bonus")
        if abs(graded - self.total_points) > 1e-9:
            raise ValueError(f"rubric: non-bonus points add up to {graded:g}, not total_points={self.total_points:g}")
        for field in ("reference", "skeleton", "hidden_tests", "public_tests"):
            if not getattr(self, field).is_dir():
                raise ValueError(f"{field}: {getattr(self, field)} is not a folder")
        self._check_dependencies()
        return self

    def _check_dependencies(self) -> None:
        names = {t.name for t in self.targets}
        needed = []
        for t in self.targets:
            for dep in t.depends_on:
                if dep not in names:
                    raise ValueError(f"targets: {t.name} depends on unknown target {dep!r}")
                if dep == t.name:
                    raise ValueError(f"targets: {t.name} depends on itself")
                needed.append(dep)
        self.dependency_order()  # refuses a cycle
        if not needed:
            return
        if self.stand_ins is None:
            raise ValueError(f"stand_ins: targets depend on {sorted(set(needed))}, so the spec needs a stand-ins file")
        if not self.stand_ins.is_file():
            raise ValueError(f"stand_ins: {self.stand_ins} is not a file")
        try:
            tree = ast.parse(self.stand_ins.read_text(encoding="utf-8"), filename=str(self.stand_ins))
        except SyntaxError as e:
            raise ValueError(f"stand_ins: {self.stand_ins} is not valid Python: {e}") from None
        classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
        for dep in sorted(set(needed)):
            if self.target(dep).kind != "class":
                raise ValueError(f"targets: a dependency must be a class with a stand-in; {dep} is a function")
            if dep not in classes:
                raise ValueError(f"stand_ins: {self.stand_ins.name} defines no class {dep}")

    def dependencies_of(self, name: str) -> list[str]:
        """Every target ``name`` is built from, directly or through another dependency, nearest first."""
        seen: list[str] = []
        queue = list(self.target(name).depends_on)
        while queue:
            dep = queue.pop(0)
            if dep not in seen:
                seen.append(dep)
                queue.extend(self.target(dep).depends_on)
        return seen

    def dependency_order(self) -> dict[str, int]:
        """Each target's level: 0 for a target built from nothing, else one more than its deepest dependency."""
        levels: dict[str, int] = {}
        by_name = {t.name: t for t in self.targets}

        def level(name: str, path: tuple[str, ...]) -> int:
            if name in path:
                raise ValueError(f"targets: circular dependencies {' -> '.join(path + (name,))}")
            if name not in levels:
                deps = [d for d in by_name[name].depends_on if d in by_name]
                levels[name] = 1 + max((level(d, path + (name,)) for d in deps), default=-1)
            return levels[name]

        for t in self.targets:
            level(t.name, ())
        return levels

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)

    def rubric_item(self, target: str, category: str) -> RubricItem | None:
        for item in self.rubric:
            if item.target == target and item.category == category:
                return item
        return None


SPEC_FILE = "assignment.toml"


def load_spec(path: Path) -> AssignmentSpec:
    """Load ``path`` (an assignment.toml or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    root = path.parent.resolve()
    for field in ("reference", "skeleton", "hidden_tests", "public_tests", "stand_ins"):
        if isinstance(raw.get(field), str):
            raw[field] = (root / raw[field]).resolve()
    try:
        return AssignmentSpec(**raw, root=root)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SpecError(f"{path}: field {where}: {first['msg']}") from None


def courses_dir() -> Path:
    """Where assignments live: $GRADER_COURSES, else the project's ``courses/``."""
    env = os.environ.get("GRADER_COURSES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "courses"


def available() -> dict[str, Path]:
    base = courses_dir()
    if not base.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(base.glob(f"*/{SPEC_FILE}"))}


def find_spec(assignment: str | None) -> AssignmentSpec:
    """The spec named ``assignment``, or the only one there is when it is None."""
    found = available()
    if assignment is None:
        if len(found) != 1:
            raise SpecError(
                f"choose an assignment with --assignment ({', '.join(found) or 'none found in ' + str(courses_dir())})"
            )
        assignment = next(iter(found))
    if assignment not in found:
        raise SpecError(f"unknown assignment {assignment!r}; known: {', '.join(found) or 'none'}")
    return load_spec(found[assignment])
