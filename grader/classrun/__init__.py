"""Class runs: every submission of a class graded into an output folder, resumable.

In: the spec and the submissions' sources (folders, zips, LMS downloads).
Out: ``DIR/<student>/`` with ``grading.json``, ``results.json`` and the student's
report for each student, the gradebook of runs and scores (``gradebook``), and the
run's summary; progress is shown as it goes (``progress``). A student whose content
key (``keys``) is unchanged is kept, not regraded. The executors (``executors/``)
decide where the grading processes run.
"""
