"""``grader skeleton [--assignment ID] [--check]``."""

from __future__ import annotations

import argparse

from grader.cli import UsageError

HELP = "regenerate the student skeleton from the reference solution (or --check it)"
DESCRIPTION = (
    "Regenerate the assignment's student skeleton from its reference solution: every "
    "'# BEGIN SOLUTION' ... '# END SOLUTION' region becomes 'raise NotImplementedError(\"TODO: ...\")'; "
    "imports, classes, signatures and docstrings are kept. With --check nothing is written: it lists "
    "the files that differ from what would be generated and exits 1 when there are any."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--assignment", default=None, help="assignment id (default: the only one there is)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and list the differences when the skeleton is out of date")


def main(args: argparse.Namespace) -> int:
    from grader.authoring.skeleton import SkeletonError, check, generate
    from grader.spec import find_spec

    spec = find_spec(args.assignment)
    try:
        if args.check:
            problems = check(spec.reference, spec.skeleton)
            for line in problems:
                print(f"{spec.skeleton}/{line}")
            if problems:
                print(f"skeleton of {spec.id} is out of date: run `grader skeleton --assignment {spec.id}`")
                return 1
            print(f"skeleton of {spec.id} is up to date ({spec.skeleton})")
            return 0
        before = {p.name: p.read_bytes() for p in spec.skeleton.glob("*.py")}
        paths = generate(spec.reference, spec.skeleton)
    except SkeletonError as e:
        raise UsageError(str(e)) from None
    changed = [p.name for p in paths if before.get(p.name) != p.read_bytes()]
    removed = sorted(set(before) - {p.name for p in paths})
    print(f"skeleton of {spec.id}: {len(paths)} files in {spec.skeleton}, "
          f"{len(changed)} changed{', ' + str(len(removed)) + ' removed' if removed else ''}")
    for name in changed:
        print(f"  updated {name}")
    for name in removed:
        print(f"  removed {name}")
    return 0
