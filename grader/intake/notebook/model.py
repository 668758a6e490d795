"""What the report says about a notebook submission: which cells were taken, which left out and why."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TakenName(BaseModel):
    """A name a cell defines, and the files it was written into."""

    name: str
    files: list[str]


class LeftOut(BaseModel):
    """Lines of a cell that were not written into any file, and why."""

    lines: str          # "4" or "4-12", numbered within the cell
    code: str           # the first of those lines, shortened
    reason: str


class CellReport(BaseModel):
    notebook: str
    cell: int           # the cell's position in the notebook, from 1 (markdown cells count)
    preview: str        # the cell's first non-blank line, shortened
    taken: list[TakenName] = Field(default_factory=list)
    left_out: list[LeftOut] = Field(default_factory=list)

    @property
    def status(self) -> str:
        if self.taken and self.left_out:
            return "partly taken"
        return "taken" if self.taken else "left out"


class NotebookReport(BaseModel):
    """How the notebooks of a submission were read into the assignment's files."""

    notebooks: list[str]
    # files written from the notebooks -> the names each holds that the spec places there
    written: dict[str, list[str]] = Field(default_factory=dict)
    # .py files of the folder that count instead of the notebook's definitions for them
    kept: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    cells: list[CellReport] = Field(default_factory=list)

    def summary(self) -> str:
        """One line for places without the report's section (Gradescope's results.json)."""
        read = ", ".join(self.notebooks)
        left = sum(c.status != "taken" for c in self.cells)
        if not self.written:
            return f"Notebook {read}: not used, your .py files count."
        return (f"Graded from your notebook {read}: {', '.join(self.written)} written from its cells; "
                f"{left} cell(s) with code left out (never run), listed in your report.")
