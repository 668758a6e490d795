"""Executors by name: ``grader run --executor NAME``.

In: a name. Out: its factory ``create_executor(context) -> Executor``, registered
here (``local``, or with ``register_executor``), found as an entry point in the
``grader.executors`` group, or as a module ``grader/classrun/executors/NAME_executor.py``;
``ExecutorUnavailable`` when there is none or it cannot be loaded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import grader
from grader.classrun.executors.base import Executor, ExecutorContext, ExecutorFactory, ExecutorUnavailable
from grader.classrun.executors.local import LocalExecutor


EXECUTORS: dict[str, ExecutorFactory] = {}
ENTRY_POINT_GROUP = "grader.executors"


def register_executor(name: str, factory: ExecutorFactory) -> None:
    EXECUTORS[name] = factory


def _found_executors() -> dict[str, Callable[[], ExecutorFactory]]:
    """Executors found without importing them: entry points in ``grader.executors`` (the group), and
    modules ``grader/classrun/executors/<name>_executor.py`` that define ``create_executor(context)``."""
    import importlib
    import pkgutil
    from importlib.metadata import entry_points

    found: dict[str, Callable[[], ExecutorFactory]] = {
        ep.name: ep.load for ep in entry_points(group=ENTRY_POINT_GROUP)}
    folder = Path(grader.__file__).parent / "classrun" / "executors"
    for info in pkgutil.iter_modules([str(folder)]) if folder.is_dir() else []:
        if info.name.endswith("_executor"):
            module = f"grader.classrun.executors.{info.name}"
            found.setdefault(info.name[: -len("_executor")], lambda module=module: _factory_in(module))
    return found


def _factory_in(module: str) -> ExecutorFactory:
    import importlib

    try:
        return importlib.import_module(module).create_executor
    except (ImportError, AttributeError) as e:
        raise ExecutorUnavailable(f"{module} cannot be used as an executor: {e}") from None


def executor_names() -> list[str]:
    return sorted(set(EXECUTORS) | set(_found_executors()))


def executor_factory(name: str) -> ExecutorFactory:
    """The factory registered or found under ``name`` (loaded once); ``ExecutorUnavailable`` if none."""
    if name not in EXECUTORS:
        load = _found_executors().get(name)
        if load is None:
            raise ExecutorUnavailable(f"unknown executor {name!r}; known: {', '.join(executor_names())}")
        register_executor(name, load())
    return EXECUTORS[name]


def make_executor(name: str, context: ExecutorContext) -> Executor:
    return executor_factory(name)(context)


def run_uses_gpu(executor: str) -> bool:
    """Whether a run on ``executor`` gives submissions the GPU, as its factory's optional
    ``uses_gpu()`` says (the local executor: when CUDA is usable here); no when it has none."""
    uses_gpu = getattr(executor_factory(executor), "uses_gpu", None)
    return bool(uses_gpu()) if callable(uses_gpu) else False


register_executor("local", LocalExecutor)
