"""Notebooks for the tests, built with nbformat the way Jupyter saves them."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat import v4

ROOT = Path(__file__).resolve().parents[1]

PIP_CELL = "!pip install torch torchvision\n%matplotlib inline"
PLOT_CELL = ("import matplotlib.pyplot as plt\n"
             "plt.plot([1, 2, 3])\n"
             "plt.show()")


def training_cell(marker: Path) -> str:
    """Top-level code that, if it ever ran, would leave a marker, then hang, then fail."""
    return (f"from pathlib import Path\n"
            f"Path({str(marker)!r}).write_text('this cell ran')\n"
            "model = build_model()\n"
            "for epoch in range(10):\n"
            "    loss = train_one_epoch(model)\n"
            "    print(epoch, loss)\n"
            "while True:\n"
            "    import time; time.sleep(60)\n"
            "raise RuntimeError('the training cell ran')")


def notebook_bytes(cells: list[str], markdown: dict[int, str] | None = None) -> bytes:
    """A v4 notebook of code cells; ``markdown`` inserts text cells before the given code cell positions."""
    nb = v4.new_notebook()
    for i, source in enumerate(cells):
        if markdown and i in markdown:
            nb.cells.append(v4.new_markdown_cell(markdown[i]))
        nb.cells.append(v4.new_code_cell(source))
    return nbformat.writes(nb).encode("utf-8")


def split_into_cells(source: str) -> list[str]:
    """A module split the way a student pastes it into a notebook: one cell per top-level block."""
    cells, current = [], []
    for line in source.splitlines():
        starts_block = re.match(r"(class |def |@)", line) and not (current and current[-1].startswith("@"))
        if starts_block and any(ln.strip() for ln in current):
            cells.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if any(ln.strip() for ln in current):
        cells.append("\n".join(current).strip("\n"))
    return cells


def reference_cells(reference: Path, files: list[str]) -> list[str]:
    """The reference's files, each split into cells, in the spec's order, without cross-file imports.

    In a notebook every earlier cell's names are already defined, so
    ``from resnet import ResidualBlock`` has no place there.
    """
    cells = []
    local = {f[:-3] for f in files}
    for f in files:
        text = (reference / f).read_text(encoding="utf-8")
        text = "\n".join(ln for ln in text.splitlines()
                         if not re.match(rf"from ({'|'.join(local)}) import ", ln))
        cells += split_into_cells(text)
    return cells
