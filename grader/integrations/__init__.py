"""Integrations with grading platforms: the grader run by another system.

``gradescope``: the autograder bundle (``grader export gradescope``) and what runs
inside it for each submission, writing Gradescope's ``results.json``.
"""
