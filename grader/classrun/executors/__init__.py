"""Executors that grade a class somewhere other than this machine's process pool.

``dask_executor``: a Dask distributed cluster (``--executor dask``); see
docs/operations.md for sizing, how results come back, and failure handling.
"""
