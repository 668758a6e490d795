"""A notebook's bytes -> its code cells, read with ``nbformat`` (JSON only: nothing runs)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass


class NotebookUnreadable(Exception):
    """Not a notebook that can be read; the message says why, for the student's report."""


@dataclass(frozen=True)
class CodeCell:
    index: int      # position in the notebook, from 1, counting every cell
    source: str


def code_cells(data: bytes) -> list[CodeCell]:
    """The code cells of a notebook file, in order; ``NotebookUnreadable`` for anything else.

    ``nbformat`` upgrades older formats (v3) to v4 and validates the result
    against the format's schema; an invalid notebook is refused rather than
    guessed at.
    """
    import nbformat
    from nbformat.validator import ValidationError

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise NotebookUnreadable(f"it is not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise NotebookUnreadable("it is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except nbformat.reader.NotJSONError:
        raise NotebookUnreadable("it is not JSON; save it from Jupyter as a notebook (.ipynb)") from None
    except ValidationError as e:
        raise NotebookUnreadable(f"it does not follow the notebook format ({_first_line(e.message)})") from None
    except RecursionError:
        raise NotebookUnreadable("it is nested too deeply to read") from None
    except Exception as e:  # noqa: BLE001 - any other failure of an untrusted file is the same answer
        raise NotebookUnreadable(f"it is not a notebook that can be read ({type(e).__name__}: "
                                 f"{_first_line(str(e))})") from None
    cells = []
    for i, cell in enumerate(nb.get("cells", []), 1):
        if cell.get("cell_type") == "code" and isinstance(cell.get("source"), str):
            cells.append(CodeCell(i, cell["source"]))
    return cells


def _first_line(text: str, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
