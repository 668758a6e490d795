"""Subcommands of ``grader``; one module each (see grader.cli)."""
