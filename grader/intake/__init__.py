"""Intake: submissions as they were handed in, read into the files to grade. Nothing here runs student code.

In: folders, zips and LMS bulk downloads (``ingest``), one folder per student
(``submission``), notebooks (``notebook/``).
Out: one folder per student with the problems found while unpacking
(``ingest.Incoming``), and a submission's files as bytes, with what was left out
and why (``submission.read_submission``).
"""
