"""Content keys: a result is reused only when nothing that decides it has changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grader
from grader.spec import AssignmentSpec


def _hash_tree(h: "hashlib._Hash", folder: Path) -> None:
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")


def suite_key(spec: AssignmentSpec) -> str:
    """The hidden suite, the reference, the spec and the grader's own code and version."""
    h = hashlib.sha256(grader.__version__.encode())
    for folder in (spec.hidden_tests, spec.reference, Path(grader.__file__).parent):
        _hash_tree(h, folder)
    h.update((spec.root / "assignment.toml").read_bytes())
    return h.hexdigest()


def submission_key(files: dict[str, bytes], suite: str) -> str:
    h = hashlib.sha256(suite.encode())
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()
