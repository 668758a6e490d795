"""Probes for the practice tasks: training loops, feature visualisation, scaling.

They register into ``probes.PROBES`` with the same ``@probe`` decorator.
"""

from __future__ import annotations

from .probes import probe  # noqa: F401
