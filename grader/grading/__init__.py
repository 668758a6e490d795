"""Grading one submission: its files and the spec in, a ``SubmissionResult`` out.

``engine`` runs the hidden suite in this (trusted) process with the pytest plugin
(``plugin``) and the test-author API (``grader.testing``); every call on student
code goes through ``client`` to a worker in the sandbox (``sandbox``; what the
worker sees is ``view``, its limits ``cgroups``), while the reference
(``reference``) runs here. ``mistakes`` names the root causes of the failures,
``isolation`` judges a target alone where its dependencies fail, and ``bounds``
keeps what a worker sends back small. ``suite.ini`` is the suite's only pytest
configuration.
"""
