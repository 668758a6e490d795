"""IPython syntax in a cell: shell commands (``!pip install``) and magics (``%matplotlib``).

They are not Python, so a cell holding them would not parse. Line magics and
shell lines are replaced by ``pass`` (same indentation, same line numbers) and
remembered so the report can name them; a cell magic (``%%time`` on the first
line) turns the whole cell into something else than Python, so such a cell is
left out as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Stripped:
    source: str                                           # the cell's text with magic lines made ``pass``
    magic_lines: dict[int, str] = field(default_factory=dict)   # line number (from 1) -> original text
    cell_magic: str | None = None                         # "%%time" when the cell starts with one


def is_magic_line(line: str) -> bool:
    text = line.lstrip()
    return text.startswith(("!", "%"))


def strip_magics(source: str) -> Stripped:
    lines = source.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        return Stripped(source="", cell_magic=first.split()[0])
    out, magic = [], {}
    for number, line in enumerate(lines, 1):
        if is_magic_line(line):
            magic[number] = line.strip()
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass")
        else:
            out.append(line)
    return Stripped(source="\n".join(out) + ("\n" if out else ""), magic_lines=magic)
