"""The sandboxed side: code that runs next to student modules.

This package is bound read-only into the sandbox on its own, so it imports
nothing from the rest of ``grader`` (only the standard library, numpy and torch).
Everything it sends back is plain data: JSON headers and ``.npy`` blobs.
"""
