"""The words that come with pictures: a JSON-lines metadata file read into ``{file: (title,
explanation)}`` for ``predict``, ``evaluate`` and ``crossval``.

Why one reader: the shared thumbnails (``candidates.0.title``), the APOD archive and a scrape
(``title``, ``explanation``) keep a day's text under different keys. The field paths are the
``apod_thumbs`` source's (dotted, list items by number; the first non-empty one wins), so a
folder that trains also predicts and scores with its text.

Example::

    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "meta.jsonl").write_text(json.dumps(
    ...     {"file": "a.jpg", "title": "M31", "explanation": "A galaxy."}) + "\\n")
    >>> read_texts(MetadataSpec(file=str(d / "meta.jsonl")))
    {'a.jpg': ('M31', 'A galaxy.')}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astro_exp.errors import ConfigError

TITLE_FIELDS = ("title", "candidates.0.title", "candidates.0.title_archivepix")
EXPLANATION_FIELDS = ("explanation", "candidates.0.explanation")


@dataclass
class MetadataSpec:
    """Where a folder's texts are.

    Args:
        file: the JSON-lines file (None: no texts).
        path_field: the key naming each picture, relative to the folder.
        title_fields, explanation_fields: dotted paths tried in order.
        title_from_filename: no title in the row: "The_Seagull_Nebula.jpg" -> "The Seagull Nebula".
    """

    file: str | None = None
    path_field: str = "file"
    title_fields: Sequence[str] = field(default_factory=lambda: list(TITLE_FIELDS))
    explanation_fields: Sequence[str] = field(default_factory=lambda: list(EXPLANATION_FIELDS))
    title_from_filename: bool = False

    @classmethod
    def from_cfg(cls, cfg: Any) -> MetadataSpec:
        """From a config node: a path string, or a mapping of the fields above."""
        if cfg is None or isinstance(cfg, str):
            return cls(file=cfg or None)
        d = dict(cfg.items()) if hasattr(cfg, "items") else {}
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ConfigError(
                f"metadata.{sorted(unknown)[0]} is not a setting; use file, path_field, "
                "title_fields, explanation_fields, title_from_filename"
            )
        return cls(
            **{
                k: list(v) if k.endswith("_fields") else v
                for k, v in d.items()
                if v is not None or k == "file"
            }
        )


def read_texts(spec: MetadataSpec) -> dict[str, tuple[str, str]]:
    """``{file: (title, explanation)}`` of every row (paths as the file writes them)."""
    if not spec.file:
        return {}
    from astro_exp.sources.apod_catalog import ApodThumbsSource

    path = Path(spec.file).expanduser()
    if not path.is_file():
        raise ConfigError(f"metadata={spec.file!r} not found; give a JSON-lines file of texts")
    src = ApodThumbsSource(
        str(path.parent),
        metadata=path.name,
        path_field=spec.path_field,
        title_fields=list(spec.title_fields),
        explanation_fields=list(spec.explanation_fields),
        title_from_filename=spec.title_from_filename,
    )
    return {r["file"]: (r["title"], r["explanation"]) for r in src.records()}


def texts_for(
    files: Sequence[str], texts: Mapping[str, tuple[str, str]]
) -> list[tuple[str, str] | None]:
    """One text (or None) per file, in order."""
    return [texts.get(f) for f in files]


__all__ = ["EXPLANATION_FIELDS", "TITLE_FIELDS", "MetadataSpec", "read_texts", "texts_for"]
