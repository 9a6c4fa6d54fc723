"""One text-table printer for every report the project prints or writes (run rankings,
detector comparisons, catalog statistics, merge reports, prediction lists), and the tables
of the docs that are rendered from the JSON a command wrote.

Why one: the tables used to be padded by hand in five places with slightly different
rules; here a column is as wide as its widest cell, columns are two spaces apart, trailing
spaces are cut, and numbers can be right-aligned, so every report reads the same.

Why docs tables: figures copied by hand from ``outputs/**.json`` into ``docs/*.md`` drift
from what was measured. A table between ``<!-- table: <json> rows=... columns=... -->`` and
``<!-- /table -->`` is rendered from its JSON (:func:`refresh_doc_tables`, the command
``astro-exp docs-tables``; the spec: :func:`parse_table_spec`), so a doc's figures are the
measurement's, and ``check=true`` says where they are not.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from astro_exp.errors import ConfigError, DataError
from astro_exp.files import atomic_write

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


# --------------------------------------------------------------- tables rendered into the docs

MARKER = re.compile(r"^<!--[ \t]*table:(?P<spec>.*?)-->[ \t]*\r?\n", re.M | re.S)
END_MARKER = re.compile(r"^<!--[ \t]*/table[ \t]*-->", re.M)
_OPTIONS = ("rows", "keys", "columns", "floats")
_MISSING = object()
Status = Literal["unchanged", "rewritten", "differs", "skipped"]


@dataclass(frozen=True)
class TableSpec:
    """What one ``<!-- table: ... -->`` marker says (see :func:`parse_table_spec`)."""

    source: str
    columns: tuple[tuple[str, str], ...]  # (header, cell template); a bare key is "{key}"
    rows: str = ""
    keys: tuple[str, ...] = ()
    floats: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def parse_table_spec(text: str) -> TableSpec:
    """The spec of one marker: the text between ``table:`` and ``-->``, words split as a shell
    does (quote a value with spaces: ``"columns=a, b c"``; the marker may span lines).

    - first the JSON file, relative to the project root;
    - ``rows=<path>``: the list or dict holding one row per item (dotted, ``corrections.curves``;
      default the top level); a dict's items in its order, or ``keys=a,b`` picks and orders them;
    - ``columns=<col>,...``: ``key``, ``header=key`` or ``header=template``. A key is dotted
      into dicts and lists (``f1/galaxy``, ``pooled.acc``, ``0.fused_f1_macro``); a template
      is :meth:`str.format` over the row: ``{acc:.3f}``, ``{@key}`` (the row's key in its
      dict), ``{flag:? [gold]}`` (the text after ``?`` when the value is true). A header with
      ``{...}`` is filled from the first row (a pivoted table's column names);
    - ``floats=<format spec>``: floats without a spec of their own (``.3f``);
    - ``label.<key>=<text>``: what ``{@key}`` writes for that key.

    A field missing from a row writes nothing (one no row has is an error), so does ``None``;
    NaN writes ``-``.

    Args:
        text: the marker's spec.

    Returns:
        The :class:`TableSpec`; one that cannot be read raises :class:`ConfigError`, one line.

    >>> spec = parse_table_spec('out/a.json rows=rows floats=.3f "columns=name, F1 star=f1/star"')
    >>> spec.columns
    (('name', '{name}'), ('F1 star', '{f1/star}'))
    """
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f'table marker: {e} (quote values with spaces: "columns=a, b")') from None
    if not words or "=" in words[0]:
        raise ConfigError("table marker: the JSON file first: <!-- table: x.json columns=... -->")
    options: dict[str, str] = {}
    labels: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if key.startswith("label.") and sep:
            labels[key[6:]] = value
        elif key in _OPTIONS and sep:
            options[key] = value
        else:
            raise ConfigError(f"table marker: {word!r}: use {', '.join(_OPTIONS)} or label.<key>")
    if not options.get("columns", "").strip():
        raise ConfigError("table marker: no columns=...; name the row keys to show")
    try:
        format(1.0, options.get("floats", ""))
    except ValueError:
        raise ConfigError(f"table marker: floats={options['floats']!r} is no format spec") from None
    return TableSpec(
        source=words[0],
        columns=tuple(_parse_column(c) for c in _split_outside_braces(options["columns"], ",")),
        rows=options.get("rows", ""),
        keys=tuple(k.strip() for k in options.get("keys", "").split(",") if k.strip()),
        floats=options.get("floats", ""),
        labels=labels,
    )


def _parse_column(text: str) -> tuple[str, str]:
    """``key``, ``header=key`` or ``header=template`` as (header, template)."""
    parts = [p.strip() for p in _split_outside_braces(text, "=", 1)]
    header, cell = (parts[0], parts[0]) if len(parts) == 1 else parts
    if not header or not cell:
        raise ConfigError(f"table marker: empty column in {text.strip()!r}")
    try:
        for template in (header, cell):
            list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"table marker: column {text.strip()!r}: {e}") from None
    return header, cell if "{" in cell else "{" + cell + "}"


def _split_outside_braces(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """``text`` split at ``sep`` where it is not inside ``{...}`` (a template's ``{n:,}``)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "{}":
            depth = depth + 1 if ch == "{" else max(depth - 1, 0)
        if ch == sep and depth == 0 and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def resolve(obj: object, path: str) -> object:
    """The value at a dotted ``path`` of parsed JSON, through dict keys and list indexes; a key
    holding dots (``trainer.optimizer.lr``) is tried whole first. KeyError when missing.

    >>> resolve({"a": [{"b": 1}], "x.y": 2}, "a.0.b"), resolve({"x.y": 2}, "x.y")
    (1, 2)
    """
    if path == "":
        return obj
    if isinstance(obj, dict):
        head, _, rest = path.partition(".")
        if path in obj or head in obj:
            return obj[path] if path in obj else resolve(obj[head], rest)
    elif isinstance(obj, list):
        head, _, rest = path.partition(".")
        if head.lstrip("-").isdigit() and -len(obj) <= int(head) < len(obj):
            return resolve(obj[int(head)], rest)
    raise KeyError(path)


class _CellFormatter(string.Formatter):
    """:meth:`str.format` over one row with the spec's rules (see :func:`parse_table_spec`);
    remembers which fields some row had and which one lacked."""

    def __init__(self, spec: TableSpec) -> None:
        super().__init__()
        self.spec, self.key, self.row = spec, None, None
        self.found, self.missed = set[str](), set[str]()

    def cell(self, template: str, key: object, row: object) -> str:
        """``template`` filled from ``row``, the item at ``key`` of the rows."""
        self.key, self.row = key, row
        return self.vformat(template, (), {})

    def value(self, name: str) -> object:
        """The field ``name`` of the current row, or the missing marker."""
        if name == "@key":
            return self.spec.labels.get(str(self.key), str(self.key))
        try:
            value = resolve(self.row, name)
        except KeyError:
            self.missed.add(name)
            return _MISSING
        self.found.add(name)
        return value

    def get_field(self, field_name: str, args: Sequence[object], kwargs: Mapping[str, object]):
        return self.value(field_name), field_name

    def convert_field(self, value: object, conversion: str | None) -> object:
        return value if value is _MISSING else super().convert_field(value, conversion)

    def format_field(self, value: object, format_spec: str) -> str:
        if value is _MISSING or value is None:
            return ""
        if format_spec.startswith("?"):
            return format_spec[1:] if value else ""
        if isinstance(value, float):
            return "-" if math.isnan(value) else format(value, format_spec or self.spec.floats)
        return format(value, format_spec)


def render_json_table(spec: TableSpec, data: object) -> str:
    """The Markdown table ``spec`` describes, from parsed JSON.

    Args:
        spec: the marker's spec.
        data: the JSON file's content.

    Returns:
        The table's lines, no trailing newline; :class:`DataError` when the rows are not there
        or a column names a field no row has.

    >>> spec = parse_table_spec('x.json rows=runs floats=.2f "columns=run={name}{gold:? [gold]}, acc"')
    >>> print(render_json_table(spec, {"runs": [{"name": "a", "acc": 0.5, "gold": True}]}))
    | run | acc |
    |---|---|
    | a [gold] | 0.50 |
    """
    items = _table_rows(spec, data)
    fmt = _CellFormatter(spec)
    body = [[_md_cell(fmt.cell(cell, key, row)) for _, cell in spec.columns] for key, row in items]
    if items and (unknown := sorted(fmt.missed - fmt.found)):
        where = spec.rows or "the top level"
        raise DataError(f"no row of {where} in {spec.source} has {', '.join(map(repr, unknown))}")
    first = items[0] if items else (None, {})
    head = [_md_cell(fmt.cell(h, *first) if "{" in h else h) for h, _ in spec.columns]
    return format_table(body, head, markdown=True)


def _md_cell(text: str) -> str:
    """A cell's text safe inside a Markdown table row (no pipe, no line break)."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table_rows(spec: TableSpec, data: object) -> list[tuple[object, object]]:
    """The (key, row) pairs: a list's items by index, a dict's by key (``keys=`` picks them)."""
    where = spec.rows or "the top level"
    try:
        found = resolve(data, spec.rows)
    except KeyError:
        raise DataError(f"{spec.source} has no {spec.rows!r} (rows=)") from None
    if not isinstance(found, dict | list):
        raise DataError(f"{where} of {spec.source} is neither a list nor a dict (rows=)")
    items = list(found.items() if isinstance(found, dict) else enumerate(found))
    if not spec.keys:
        return items
    by_key = {str(k): (k, v) for k, v in items}
    if missing := [k for k in spec.keys if k not in by_key]:
        raise DataError(f"{where} of {spec.source} has no {', '.join(map(repr, missing))} (keys=)")
    return [by_key[k] for k in spec.keys]


class DocTable(NamedTuple):
    """One marked table of a Markdown text: the marker's line, its spec, and the span
    ``start:end`` of the rendered text between the markers."""

    line: int
    spec: TableSpec
    start: int
    end: int


def find_doc_tables(text: str, name: str = "<doc>") -> list[DocTable]:
    """Every marked table of a Markdown text, its spec parsed.

    Args:
        text: the file's content.
        name: the file in messages.

    Returns:
        The tables in file order; a bad spec or a marker without its pair raises
        :class:`ConfigError` naming ``name:line``.
    """
    tables: list[DocTable] = []
    pos = 0
    while (m := MARKER.search(text, pos)) is not None:
        line = text.count("\n", 0, m.start()) + 1
        end, following = END_MARKER.search(text, m.end()), MARKER.search(text, m.end())
        if end is None or (following is not None and following.start() < end.start()):
            raise ConfigError(f"{name}:{line}: table marker without its <!-- /table --> line")
        try:
            tables.append(DocTable(line, parse_table_spec(m["spec"]), m.end(), end.start()))
        except ConfigError as e:
            raise ConfigError(f"{name}:{line}: {e}") from None
        pos = end.end()
    if len(END_MARKER.findall(text)) != len(tables):
        raise ConfigError(f"{name}: a <!-- /table --> line without its <!-- table: ... --> marker")
    return tables


class TableResult(NamedTuple):
    """What :func:`refresh_doc_tables` did with one marked table (``status``: unchanged,
    rewritten, differs under check, or skipped when its JSON is not there)."""

    doc: str
    line: int
    source: str
    status: Status


def refresh_doc_tables(
    docs: Iterable[str | Path], root: str | Path = ".", *, check: bool = False
) -> list[TableResult]:
    """Render every marked table of ``docs`` from its JSON and write the files that changed
    (atomically). All markers are read before any file is written, so a bad spec changes
    nothing; a table whose JSON is missing is skipped and stays as written.

    Args:
        docs: Markdown files.
        root: the folder the markers' JSON paths (and the messages' file names) are relative to.
        check: compare only: nothing is written, a table that would change ``differs``.

    Returns:
        One :class:`TableResult` per marked table, in file order.
    """
    root = Path(root)
    parsed = []
    for doc in map(Path, docs):
        text, name = doc.read_bytes().decode("utf-8"), os.path.relpath(doc, root)
        parsed.append((doc, name, text, find_doc_tables(text, name)))
    loaded: dict[str, object] = {}
    results: list[TableResult] = []
    for doc, name, text, tables in parsed:
        pieces, pos = [], 0
        for t in tables:
            block = _render_block(t, root, loaded, name)
            status: Status = "skipped" if block is None else "unchanged"
            if block is not None and block != text[t.start : t.end]:
                status = "differs" if check else "rewritten"
                pieces += [text[pos : t.start], block]
                pos = t.end
            results.append(TableResult(name, t.line, t.spec.source, status))
        if pieces and not check:
            atomic_write(doc, "".join(pieces) + text[pos:])
    return results


def _render_block(t: DocTable, root: Path, loaded: dict[str, object], name: str) -> str | None:
    """The text between a table's markers as its JSON says (a blank line either side), or
    None when the JSON file is not there."""
    path = root / t.spec.source
    if not path.is_file():
        return None
    if t.spec.source not in loaded:
        try:
            loaded[t.spec.source] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{name}:{t.line}: cannot read {t.spec.source}: {e}") from None
    try:
        return "\n" + render_json_table(t.spec, loaded[t.spec.source]) + "\n\n"
    except DataError as e:
        raise DataError(f"{name}:{t.line}: {e}") from None


__all__ = [
    "find_doc_tables",
    "format_table",
    "parse_table_spec",
    "refresh_doc_tables",
    "render_json_table",
    "report_table",
]
