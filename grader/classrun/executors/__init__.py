"""Executors: where a class run's jobs are graded.

In: the run's context (``base.ExecutorContext``), then jobs. Out: each job's summary
through a future. ``base`` says what an executor is; ``registry`` finds one by name
(``grader run --executor NAME``); ``local`` (the default) forks grading processes
on this machine, each running ``process``; ``dask_executor`` grades on a Dask
distributed cluster (``--executor dask``; see docs/operations.md for sizing, how
results come back, and failure handling).
"""
