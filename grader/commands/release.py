"""``grader release [--assignment ID] --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.cli import UsageError

HELP = "build the student release (skeleton, public tests, README) as a folder and a zip"
DESCRIPTION = (
    "Build what students download: the generated skeleton, the public tests, a conftest.py that makes "
    "`pytest` find the student's modules, and a README. Writes DIR/<id>/ and DIR/<id>.zip; an earlier "
    "DIR/<id>/ is replaced. Refuses to build from a skeleton that is out of date with the reference."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--assignment", default=None, help="assignment id (default: the only one there is)")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="folder to write the release into")


def main(args: argparse.Namespace) -> int:
    from grader.authoring.release import ReleaseError, build_release
    from grader.spec import find_spec

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    spec = find_spec(args.assignment)
    try:
        zip_path = build_release(spec, args.out)
    except ReleaseError as e:
        raise UsageError(str(e)) from None
    folder = zip_path.parent / spec.id
    names = sorted(p.name for p in folder.iterdir())
    print(f"release of {spec.id}: {folder} ({len(names)} files) and {zip_path}")
    for name in names:
        print(f"  {name}")
    return 0
