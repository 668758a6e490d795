"""Authoring: what an instructor builds from the reference and the spec, before any student hands in.

In: the assignment's spec (``grader.spec``), its reference solution and its suites.
Out: the student skeleton (``skeleton``), the release zip students download
(``release``), the audit of the hidden suite against the corpus of wrong and right
submissions (``audit``) and what the suite lets a submission see of the reference
(``exposure``).
"""
