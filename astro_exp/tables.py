"""One text-table printer for every report the project prints or writes (run rankings,
detector comparisons, catalog statistics, merge reports, prediction lists).

Why one: the tables used to be padded by hand in five places with slightly different
rules; here a column is as wide as its widest cell, columns are two spaces apart, trailing
spaces are cut, and numbers can be right-aligned, so every report reads the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Align = Literal["left", "right"]


def format_table(
    rows: Sequence[Sequence[object]],
    headers: Sequence[object],
    *,
    title: str | None = None,
    align: Literal["left", "auto"] | Sequence[Align] = "left",
    rule: Literal["none", "columns", "line"] = "none",
    max_rule: int | None = None,
    empty: str | None = None,
    markdown: bool = False,
) -> str:
    """The rows as aligned text under ``headers`` (``None`` cells print as empty).

    ``title``: a line above the table. ``align``: ``"left"``, ``"auto"`` (a column whose
    values are all numbers or empty is right-aligned, its header too) or one per column.
    ``rule``: a dashed line under the header, one run of dashes per column (``"columns"``)
    or one across the widest line (``"line"``, at most ``max_rule`` long).
    ``empty``: the line shown instead of rows when there are none.
    ``markdown``: a Markdown (GitHub) table instead, unpadded; a row with fewer cells than
    headers is written as it is (an error row spanning the rest).
    """
    head = [_cell(h) for h in headers]
    cells = [[_cell(v) for v in r] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(([title] if title is not None else []) + lines)
    n = len(head)
    cells = [r + [""] * (n - len(r)) for r in cells]
    widths = [max(len(r[c]) for r in [head, *cells]) for c in range(n)]
    if align == "auto":
        right = [
            all(isinstance(r[c], int | float) or r[c] is None for r in rows if c < len(r))
            for c in range(n)
        ]
    elif align == "left":
        right = [False] * n
    else:
        right = [a == "right" for a in align]

    def line(r: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if rj else v.ljust(w) for v, w, rj in zip(r, widths, right, strict=True)
        ).rstrip()

    body = [line(r) for r in cells]
    lines = [line(head)]
    if rule == "columns":
        lines.append("  ".join("-" * w for w in widths))
    elif rule == "line":
        longest = max(len(s) for s in [lines[0], *body])
        lines.append("-" * (longest if max_rule is None else min(max_rule, longest)))
    lines += body or ([empty] if empty is not None else [])
    return "\n".join(([title] if title is not None else []) + lines)


def report_table(
    title: str,
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    align: Literal["left", "auto"] = "auto",
) -> str:
    """A report section: its title, the aligned table under a dashed rule, ``(none)`` when it
    has no rows (catalog statistics, merge reports).

    >>> print(report_table("labels", ["label", "rows"], [["galaxy", 12], ["star", 3]]))
    labels
    label   rows
    ------  ----
    galaxy    12
    star       3
    >>> print(report_table("failures", ["status", "rows"], []))
    failures
    status  rows
    ------  ----
    (none)
    """
    return format_table(rows, header, title=title, rule="columns", empty="(none)", align=align)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


__all__ = ["format_table", "report_table"]
