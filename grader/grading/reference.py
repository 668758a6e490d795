"""Loading an assignment's reference solution into the trusted process.

Reference modules are plain top-level modules (``resnet``, ``vgg``) that import
each other by those names. They are imported once with their folder on
``sys.path`` and then moved under a private prefix, so nothing else in the
process can pick them up by accident.
"""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType

_LOCK = threading.Lock()
_LOADED: dict[Path, dict[str, ModuleType]] = {}


def load_reference(folder: Path, files: list[str]) -> dict[str, ModuleType]:
    """Import every file of the reference; returns {file name: module}."""
    folder = Path(folder).resolve()
    with _LOCK:
        if folder in _LOADED:
            return _LOADED[folder]
        names = [f[:-3] for f in files]
        saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
        sys.path.insert(0, str(folder))
        try:
            modules = {f"{n}.py": importlib.import_module(n) for n in names}
        finally:
            sys.path.remove(str(folder))
            prefix = f"_grader_reference_{abs(hash(folder)):x}"
            for n in names:
                if n in sys.modules:
                    sys.modules[f"{prefix}.{n}"] = sys.modules.pop(n)
            sys.modules.update(saved)
        _LOADED[folder] = modules
        return modules
