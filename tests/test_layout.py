"""The package's layout: no import cycles, and the sandbox's side imports nothing else of the grader.

The import graph is grimp's (it reads every module's imports without running them:
relative ones, imports inside functions and under ``if TYPE_CHECKING`` included). An
import cycle is a group of two or more modules that reach each other; a module that
imports itself (``grader.cli`` does, when run as ``python -m grader.cli``) is not one.
"""

from __future__ import annotations

from pathlib import Path

import grimp

WORKER = "grader.worker"


def import_graph(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of ``package`` it imports."""
    graph = grimp.build_graph(package, cache_dir=None)
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules, each sorted (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return sorted(found)


def imports_leaving(graph: dict[str, set[str]], package: str) -> list[tuple[str, str]]:
    """(module, what it imports) for every import from ``package`` of a module outside it."""
    def inside(module: str) -> bool:
        return module == package or module.startswith(package + ".")

    return sorted((m, imported) for m, targets in graph.items() if inside(m)
                  for imported in targets if not inside(imported))


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_grader_has_no_import_cycle() -> None:
    graph = import_graph("grader")
    assert "grader.classrun.run" in graph and "grader.worker.probes.core" in graph   # the whole package was read
    assert cycles(graph) == []


def test_the_worker_package_imports_nothing_else_of_the_grader() -> None:
    # It is bound into the sandbox on its own, as ``grader_worker``: anything else of the grader is not there.
    graph = import_graph("grader")
    assert f"{WORKER}.child" in graph
    assert imports_leaving(graph, WORKER) == []


def test_a_cycle_and_an_import_out_of_a_package_are_found(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path, {
        "cyclic/__init__.py": "",
        "cyclic/a.py": "from cyclic.stage import b\n",
        "cyclic/stage/__init__.py": "",
        # an import inside a function closes the cycle as surely as one at the top
        "cyclic/stage/b.py": "def f():\n    from cyclic import a\n    return a\n",
        "cyclic/c.py": "import cyclic.a\nfrom . import c\n",   # imports a cycle and itself: in no cycle
        "cyclic/side/__init__.py": "",
        "cyclic/side/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyclic import c\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("cyclic")
    assert cycles(graph) == [["cyclic.a", "cyclic.stage.b"]]
    assert imports_leaving(graph, "cyclic.side") == [("cyclic.side.d", "cyclic.c")]
    assert imports_leaving(graph, "cyclic.stage") == [("cyclic.stage.b", "cyclic.a")]
