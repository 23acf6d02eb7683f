"""Plain-text tables for the command line."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from core.sanitize import strip_control


def format_table(rows: Sequence[Sequence[str]], *, right_aligned: Collection[int] = ()) -> str:
    """Columns padded to their widest cell; the ``right_aligned`` columns (numbers) to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip() + "\n")
    return "".join(lines)


def cell(text: str, width: int) -> str:
    """One line of untrusted text, control sequences stripped, cut to ``width``."""
    line = " ".join(strip_control(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"
