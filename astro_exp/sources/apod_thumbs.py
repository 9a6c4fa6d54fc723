"""A folder of APOD pictures with a JSON-lines metadata file as a training source
(``source=apod_thumbs``), labelled from the rows' text fields, a person's labels file first.

Why apart from the catalog source: it reads no catalog and scrapes nothing; the archive
source (:mod:`astro_exp.sources.archive`) builds on it. Importable from
:mod:`astro_exp.sources.apod_catalog` too, where it used to live.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from astro_exp.data.imageset import ImageSet, Task
from astro_exp.data.label_files import json_lines, read_label_file
from astro_exp.data.labels import Labeller, build_labeller
from astro_exp.errors import ConfigError, DataError
from astro_exp.sources.labelled import _check_classes, _usable, labelled_set

log = logging.getLogger(__name__)


_INDEX_RE = re.compile(r"^\d+$")
_FRAME_RE = re.compile(r"-\d+$")


def field_value(row: Mapping[str, Any], path: str) -> Any:
    """``candidates.0.title`` of a JSON row: dotted keys, integers index lists; None when absent."""
    node: Any = row
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and _INDEX_RE.match(part):
            i = int(part)
            node = node[i] if i < len(node) else None
        else:
            return None
        if node is None:
            return None
    return node


class ApodThumbsSource:
    """A folder of APOD pictures with a JSON-lines metadata file, labelled from its text.

    ``title_fields`` / ``explanation_fields`` are dotted paths tried in order (the first
    non-empty wins), e.g. ``candidates.0.title``; without any title the file name is used
    ("The_Seagull_Nebula.jpg" -> "The Seagull Nebula") when ``title_from_filename``.
    Frames of one animation (``X-0.jpg``, ``X-1.jpg``, ...) and byte-identical files count
    once, so near-copies cannot sit on both sides of the train/test split.
    """

    def __init__(
        self,
        root: str,
        metadata: str = "metadata.jsonl",
        path_field: str = "file",
        title_fields: Sequence[str] = ("title",),
        explanation_fields: Sequence[str] = ("explanation",),
        title_from_filename: bool = True,
        one_frame_per_animation: bool = True,
        labels: Mapping[str, Any] | Labeller | None = None,
        include_other: bool = False,
        task: Task = "multiclass",
        name: str = "apod_thumbs",
        corrections: str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ConfigError(
                f"source.root={root!r} is not a folder; point it at the pictures (e.g. ../shared/data/apod-thumbs)"
            )
        self.metadata = Path(metadata) if Path(metadata).is_absolute() else self.root / metadata
        if not self.metadata.is_file():
            raise ConfigError(f"source.metadata={metadata!r} not found (looked at {self.metadata})")
        self.path_field = path_field
        self.title_fields = list(title_fields)
        self.explanation_fields = list(explanation_fields)
        self.title_from_filename = title_from_filename
        self.one_frame_per_animation = one_frame_per_animation
        self.labels_cfg = labels
        self.include_other = bool(include_other)
        if task not in ("multiclass", "multilabel"):
            raise ConfigError(f"source.task={task!r} must be multiclass or multilabel")
        self.task: Task = task
        self.name = name
        self.corrections = None
        if corrections:
            path = Path(corrections).expanduser()
            self.corrections = path if path.is_absolute() else self.root / path
            if not self.corrections.is_file():
                raise ConfigError(
                    f"source.corrections={corrections!r} not found (looked at {self.corrections}); "
                    "give a labels file (file,label CSV or JSON lines) or null"
                )

    def _corrections(self, classes: list[str], other: str) -> dict[str, list[str]]:
        """A person's labels by file (as the metadata names it): they replace the weak labels."""
        if self.corrections is None:
            return {}
        known = set(classes) | {other}
        out: dict[str, list[str]] = {}
        for row in read_label_file(self.corrections):
            bad = [lab for lab in row.all if lab not in known]
            if bad:
                raise DataError(
                    f"{self.corrections}: {row.file} is labelled {bad[0]!r}; use one of {sorted(known)}"
                )
            out[row.file] = list(row.all) if self.task == "multilabel" else [row.label]
        return out

    def _first(self, row: Mapping[str, Any], paths: list[str]) -> str:
        for p in paths:
            value = field_value(row, p)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    def keep_row(self, row: Mapping[str, Any]) -> bool:
        """Whether a metadata row takes part (all do here; the archive source leaves some out)."""
        return True

    def records(self) -> list[dict[str, Any]]:
        """Every metadata row as {file, title, explanation} (text as the labeller sees it)."""
        out = []
        for n, row in json_lines(self.metadata.read_text(encoding="utf-8"), self.metadata):
            if not self.keep_row(row):
                continue
            rel = field_value(row, self.path_field)
            if not isinstance(rel, str):
                raise ConfigError(
                    f"{self.metadata} row {n} has no '{self.path_field}'; set source.path_field"
                )
            title = self._first(row, self.title_fields)
            if not title and self.title_from_filename:
                title = _FRAME_RE.sub("", Path(rel).stem).replace("_", " ")
            out.append(
                {
                    "file": rel,
                    "title": title,
                    "explanation": self._first(row, self.explanation_fields),
                }
            )
        return out

    def imageset(self) -> ImageSet:
        labeller = build_labeller(self.labels_cfg)
        classes = labeller.label_classes(self.include_other)
        fixes = self._corrections(classes, labeller.other)
        items: list[tuple[Path, str, list[str]]] = []
        texts: list[tuple[str, str]] = []
        corrected: list[bool] = []
        seen_sha: set[str] = set()
        seen_anim: set[str] = set()
        missing = n_fixed = 0
        for rec in self.records():
            path = self.root / rec["file"]
            if not path.is_file():
                missing += 1
                continue
            if self.one_frame_per_animation and _FRAME_RE.search(path.stem):
                group = str(path.with_name(_FRAME_RE.sub("", path.stem)))
                if group in seen_anim:
                    continue
                seen_anim.add(group)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            if sha in seen_sha:
                continue
            given = fixes.get(rec["file"])
            if given is None:
                res = labeller.label(rec["title"], rec["explanation"])
                given_or_weak = res.all if self.task == "multilabel" else [res.primary]
            else:
                given_or_weak = given
            labs = _usable(given_or_weak, classes, self.task)
            if labs:
                seen_sha.add(sha)
                items.append((path, sha, labs))
                texts.append((rec["title"], rec["explanation"]))
                corrected.append(given is not None)
                n_fixed += given is not None
        if missing:
            log.warning(
                "%d pictures listed in %s are missing; skipping them", missing, self.metadata
            )
        if fixes:
            log.info(
                "%s: %d pictures, %d labelled by %s (the rest by %s)",
                self.name,
                len(items),
                n_fixed,
                self.corrections,
                labeller.version,
            )
        labels = [labs for _, _, labs in items]
        _check_classes(labels, classes, str(self.root))
        paths = [p for p, _, _ in items]
        return labelled_set(
            self.name,
            classes,
            self.task,
            [str(p.relative_to(self.root)) for p in paths],
            paths,
            [s for _, s, _ in items],
            labels,
            labeller,
            meta={
                "paths": [str(p) for p in paths],
                "labeller": labeller.version,
                "n_corrections": n_fixed,
                "texts": texts,
                "corrected": corrected,
            },
        )
