"""``grader``: one entry point; each subcommand is a module in ``grader.commands``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``main(args) -> int``. Errors meant for the user are raised as ``UsageError``
and printed as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import grader
import grader.commands


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade deep-learning course exercises: hidden pytest suites in a trusted process, "
        "student code only in a sandboxed worker.",
    )
    parser.add_argument("--version", action="version", version=f"grader {grader.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(grader.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"grader.commands.{info.name}")
        name = getattr(module, "NAME", info.name.replace("_", "-"))
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


EXIT_CLOSED_PIPE = 141   # 128 + SIGPIPE: what a shell reports for a program stopped by a closed pipe


def reader_went_away() -> int:
    """stdout's reader has gone (``grader history DIR --json | head``): stop quietly, without a traceback.

    stdout is pointed at /dev/null so that the interpreter's final flush of what is still buffered cannot
    raise again on the way out.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


def main(argv: list[str] | None = None) -> int:
    from grader.spec import SpecError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)   # --help writes to stdout too
        if not getattr(args, "_main", None):
            parser.print_help()
            return 2
        code = int(args._main(args) or 0)
        sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        return reader_went_away()
    except (UsageError, SpecError) as e:
        print(f"grader {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grader: interrupted; results written so far are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the package module so that errors raised as grader.cli.UsageError are caught here.
    from grader.cli import main as package_main

    sys.exit(package_main())
