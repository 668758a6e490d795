"""A grading harness for deep-learning course exercises.

The process that decides a grade never imports a submission: hidden pytest
suites run here, student modules run in a sandboxed worker that answers
requests with plain data (see ``grader.worker``).
"""

__version__ = "0.1.0"
