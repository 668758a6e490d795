"""The course's stand-ins put in place of a submission's (or the reference's) blocks for one probe.

A network's tests can ask for some of its dependencies to be replaced: every
name in the given modules that is bound to the original block (``ResidualBlock``
in ``resnet.py``, and the same object imported into ``modern.py``) is rebound to
the stand-in while the probe runs, then put back. The trusted side does the same
with the reference's modules, so both networks are built from the same stand-in.
Each stand-in instance created is counted: a network that never instantiated a
stand-in was not built from the block by that name.
"""

from __future__ import annotations

import hashlib
import types
from collections import Counter
from typing import Any, Iterable

_LOADED: dict[str, types.ModuleType] = {}


def load(source: str) -> types.ModuleType:
    """The stand-ins module compiled from ``source`` (once per process)."""
    digest = hashlib.sha256(source.encode()).hexdigest()
    module = _LOADED.get(digest)
    if module is None:
        module = types.ModuleType("course_stand_ins")
        exec(compile(source, "stand_ins.py", "exec"), module.__dict__)  # noqa: S102 - the course's own code
        _LOADED[digest] = module
    return module


def _counting(cls: type, counts: Counter) -> type:
    """A subclass of the stand-in ``cls`` that counts its instances (same name, so keyed weights agree)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        counts[cls.__name__] += 1

    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__})


class Substitution:
    """Rebinds ``originals`` (name -> object) to the stand-ins of the same name in ``modules``, for a ``with`` block."""

    def __init__(self, modules: Iterable[types.ModuleType], originals: dict[str, Any], stand_ins: types.ModuleType) -> None:
        self.modules = [m for m in modules if m is not None]
        self.counts: Counter = Counter()
        self.replacements = {id(obj): _counting(getattr(stand_ins, name), self.counts)
                             for name, obj in originals.items()}
        self._undo: list[tuple[types.ModuleType, str, Any]] = []

    @property
    def built(self) -> int:
        """Stand-in instances created so far."""
        return sum(self.counts.values())

    def __enter__(self) -> "Substitution":
        for module in self.modules:
            namespace = vars(module)
            for attr, value in list(namespace.items()):
                replacement = self.replacements.get(id(value))
                if replacement is not None:
                    self._undo.append((module, attr, value))
                    namespace[attr] = replacement
        return self

    def __exit__(self, *exc: object) -> None:
        for module, attr, value in reversed(self._undo):
            vars(module)[attr] = value
        self._undo.clear()
