"""Read a local copy of APOD into day rows: an archive folder or a public mirror checkout.

Two layouts are understood (``layout=auto`` tells them apart by what is in the folder):

- ``archive``: ``metadata.jsonl`` (one JSON object per picture day: ``file``, ``date``,
  ``title``, ``explanation``, ``copyright``, ``url``, ``hdurl``, optionally ``sha256`` and
  ``thumbs_file``) with the pictures at ``file`` (``../shared/data/apod-archive``).
- ``mirror``: API records as ``json/YYYY-MM-01.json`` (or ``json/YYYY-MM.json``), each a JSON
  list of the official API's records of one month, with each day's picture beside them as
  the mirror saved it: ``image/<name>``, ``image/YYMM/<name>`` or the URL's own path
  (``apod.nasa.gov/apod/image/YYMM/<name>``) (github.com/sirekanian/apod keeps these).

Why rows and not catalog writes here: reading is pure (no store, no catalog), so the
importer (:mod:`astro_exp.apod.mirror_import`), the archive training source and the tests
see the same records with the same quirk handling; every record goes through
:func:`~astro_exp.apod.api.parse_api_item`, the API client's own parser. A row that cannot
be used carries ``error`` (one line naming the file and line or item) instead of raising,
so one bad line never stops an import of ten thousand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from astro_exp.apod.api import ApiItemError, parse_api_item
from astro_exp.apod.pages import ApodDay
from astro_exp.apod.text import DEFAULT_BASE_URL
from astro_exp.errors import ConfigError

LAYOUTS = ("auto", "archive", "mirror")
METADATA = "metadata.jsonl"
JSON_DIR = "json"


@dataclass
class MirrorRow:
    """One day read from a local copy: its record, its picture file (None: a video or no
    picture), where it came from (``metadata.jsonl:12``) and the row's own extra fields."""

    where: str
    date: str | None = None  # ISO date (None only for a row that could not be read)
    day: ApodDay | None = None
    picture: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why the row cannot be used (one line)


def detect_layout(root: Path, layout: str = "auto") -> str:
    """``archive`` or ``mirror`` for ``root`` (a ConfigError, one line, when neither fits)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"source.layout={layout!r} must be one of {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise ConfigError(
            f"source.root={str(root)!r} is not a folder; point it at an APOD archive "
            f"({METADATA} + pictures) or a mirror checkout ({JSON_DIR}/YYYY-MM-01.json + image/)"
        )
    if layout != "auto":
        return layout
    if (root / METADATA).is_file():
        return "archive"
    if (root / JSON_DIR).is_dir():
        return "mirror"
    raise ConfigError(
        f"{root} has neither {METADATA} (an archive folder) nor {JSON_DIR}/ (a mirror checkout); "
        "check source.root"
    )


def read_rows(
    root: str | Path, layout: str = "auto", base_url: str = DEFAULT_BASE_URL
) -> Iterator[MirrorRow]:
    """Every day of the archive or mirror at ``root``, in file order (bad rows included,
    with ``error`` set). ``base_url``: where the day pages are (page URLs are rebuilt on it)."""
    root = Path(root).expanduser()
    kind = detect_layout(root, layout)
    if kind == "archive":
        yield from read_archive(root, base_url=base_url)
    else:
        yield from read_mirror(root, base_url=base_url)


def read_archive(
    root: Path, metadata: str = METADATA, base_url: str = DEFAULT_BASE_URL
) -> Iterator[MirrorRow]:
    """Rows of an archive folder's JSON-lines metadata (every listed day is a picture day)."""
    path = root / metadata
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{metadata}:{n}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as e:
                yield MirrorRow(where, error=f"not valid JSON ({e.msg}, column {e.colno})")
                continue
            if not isinstance(item, dict):
                yield MirrorRow(where, error=f"a JSON {type(item).__name__}, not an object")
                continue
            row = _parsed(where, item, base_url)
            if row.error is None:
                rel = item.get("file")
                if not isinstance(rel, str) or not rel:
                    row.error = "no 'file' (the picture's path in the folder)"
                else:
                    row.picture = root / rel
                    assert row.day is not None
                    row.day.media_type = "image"  # the archive lists picture days only
            row.extra = {
                k: item[k]
                for k in ("file", "sha256", "thumbs_file", "thumbs_match")
                if item.get(k) is not None
            }
            yield row


def read_mirror(
    root: Path, json_dir: str = JSON_DIR, base_url: str = DEFAULT_BASE_URL
) -> Iterator[MirrorRow]:
    """Rows of a mirror checkout: each ``json/*.json`` month list, oldest file first."""
    files = sorted((root / json_dir).glob("*.json"))
    if not files:
        raise ConfigError(f"{root / json_dir} holds no .json files; check source.root")
    for path in files:
        rel = f"{json_dir}/{path.name}"
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            yield MirrorRow(rel, error=f"not valid JSON ({getattr(e, 'msg', e)}); the whole file")
            continue
        for k, item in enumerate(items if isinstance(items, list) else [items]):
            where = f"{rel}[{k}]"
            row = _parsed(where, item, base_url)
            if row.error is None and row.day is not None and row.day.media_type == "image":
                row.picture = find_picture(root, item)
                if row.picture is None:
                    urls = [u for u in (item.get("url"), item.get("hdurl")) if u]
                    names = ", ".join(_candidates_text(u) for u in urls) or "(no url)"
                    row.error = f"missing picture: none of {names} is in {root}"
            yield row


def find_picture(root: Path, item: dict[str, Any]) -> Path | None:
    """The mirror's file of a record's picture (``url`` first, then ``hdurl``), or None."""
    for url in (item.get("url"), item.get("hdurl")):
        if not isinstance(url, str) or not url:
            continue
        for rel in picture_candidates(url):
            p = root / rel
            if p.is_file():
                return p
    return None


def picture_candidates(url: str) -> list[str]:
    """Where mirrors keep the picture of ``url``, most specific first:
    ``apod.nasa.gov/apod/image/2401/x.jpg``, ``apod/image/2401/x.jpg``,
    ``image/2401/x.jpg``, ``image/x.jpg``."""
    parts = urlsplit(url)
    path = parts.path.lstrip("/")
    name = path.rsplit("/", 1)[-1]
    if not name:
        return []
    out = []
    if parts.netloc:
        out.append(f"{parts.netloc}/{path}")
    out.append(path)
    if "image/" in path:
        out.append("image/" + path.split("image/", 1)[1])
    out.append(f"image/{name}")
    return list(dict.fromkeys(out))


def _candidates_text(url: str) -> str:
    cands = picture_candidates(url)
    return cands[-1] if cands else url


def _parsed(where: str, item: Any, base_url: str) -> MirrorRow:
    try:
        day = parse_api_item(item, base_url)
    except ApiItemError as e:
        date = item.get("date") if isinstance(item, dict) else None
        return MirrorRow(where, date=str(date) if date else None, error=str(e))
    return MirrorRow(where, date=day.date.isoformat(), day=day)


__all__ = [
    "LAYOUTS",
    "MirrorRow",
    "detect_layout",
    "find_picture",
    "picture_candidates",
    "read_archive",
    "read_mirror",
    "read_rows",
]
