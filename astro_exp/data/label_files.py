"""Files of labels a person wrote: ``file,label`` CSV or JSON lines, one or several labels each.

Why one reader: ``evaluate`` scores a checkpoint against such a file, the labeller check scores
the weak labels against it, and the review simulation uses it as the careful person. The
shared thumbnails' ``gold.csv`` (``file,primary,all,clear,note``) reads as it is.

Columns (CSV header or JSON keys), first match wins:

- the picture: ``file``, ``path``, ``image``, ``filename``;
- its label: ``label``, ``primary``, ``class``;
- every label present (multi-label, ``|`` or ``;`` separated, or a JSON list): ``all``,
  ``labels``; without it, the one label.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astro_exp.errors import DataError

_FILE_KEYS = ("file", "path", "image", "filename")
_LABEL_KEYS = ("label", "primary", "class")
_ALL_KEYS = ("all", "labels")
_SPLIT = re.compile(r"[|;]")


@dataclass(frozen=True)
class LabelRow:
    """One labelled picture: the path as written in the file, its label, every label present."""

    file: str
    label: str
    all: tuple[str, ...]
    clear: bool = True  # gold.csv's ``clear`` column: False for borderline pictures


def _pick(row: dict, keys: tuple[str, ...]) -> object | None:
    for k in keys:
        if k in row and row[k] not in (None, ""):
            return row[k]
    return None


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in _SPLIT.split(str(value)) if p.strip()]


def _row(raw: dict, where: str) -> LabelRow:
    file = _pick(raw, _FILE_KEYS)
    label = _pick(raw, _LABEL_KEYS)
    if file is None or label is None:
        raise DataError(
            f"{where}: needs a picture column ({'/'.join(_FILE_KEYS)}) and a label column "
            f"({'/'.join(_LABEL_KEYS)}); found {sorted(raw)}"
        )
    labels = _as_list(label)
    if not labels:
        raise DataError(f"{where}: empty label for {file}")
    every = _as_list(_pick(raw, _ALL_KEYS) or labels)
    if labels[0] not in every:
        every.insert(0, labels[0])
    clear = str(raw.get("clear", "y")).strip().lower() not in ("n", "no", "false", "0")
    return LabelRow(str(file), labels[0], tuple(every), clear)


def json_lines(text: str, where: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of a JSON-lines text; a line that is not
    JSON is a one-line DataError naming ``where:line``."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}:{n}: not valid JSON ({e.msg})") from None
        yield n, value


def read_label_file(path: str | Path) -> list[LabelRow]:
    """Rows of a ``.csv`` or ``.jsonl``/``.json`` labels file, in file order."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"labels file {path} not found; pass labels=<file.csv|file.jsonl>")
    text = path.read_text(encoding="utf-8-sig")
    rows: list[LabelRow] = []
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for n, raw in json_lines(text, path):
            if not isinstance(raw, dict):
                raise DataError(f"{path}:{n}: each line must be a JSON object")
            rows.append(_row(raw, f"{path}:{n}"))
    else:
        reader = csv.DictReader(text.splitlines())
        for n, raw in enumerate(reader, 2):
            rows.append(
                _row({k.strip(): (v or "").strip() for k, v in raw.items() if k}, f"{path}:{n}")
            )
    if not rows:
        raise DataError(f"labels file {path} has no rows")
    seen: set[str] = set()
    for r in rows:
        if r.file in seen:
            raise DataError(f"labels file {path} lists {r.file} twice; keep one row per picture")
        seen.add(r.file)
    return rows
