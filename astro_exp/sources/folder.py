"""Pictures in a folder, labelled by class sub-folders or by a JSON-lines/CSV metadata file."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from astro_exp.data.imageset import ImageSet, Task
from astro_exp.errors import ConfigError, DataError
from astro_exp.imageio import read_image

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")


class FolderSource:
    """A folder of pictures. Labels from ``root/<class>/*.jpg`` or from ``metadata``."""

    def __init__(
        self,
        root: str,
        metadata: str | None = None,
        path_field: str = "file",
        label_field: str = "label",
        label_separator: str = ";",
        classes: Sequence[str] | None = None,
        task: Task = "multiclass",
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        name: str = "folder",
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ConfigError(f"source.root={root!r} is not a folder; point it at your pictures")
        self.metadata = metadata
        self.path_field = path_field
        self.label_field = label_field
        self.label_separator = label_separator
        self.classes = list(classes) if classes else None
        self.task = task
        self.extensions = tuple(e.lower() for e in extensions)
        self.name = name

    # -- listing -----------------------------------------------------------------
    def _from_subfolders(self) -> list[tuple[Path, list[str]]]:
        items = []
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for f in sorted(sub.rglob("*")):
                if f.is_file() and f.suffix.lower() in self.extensions:
                    items.append((f, [sub.name]))
        return items

    def _read_rows(self, path: Path) -> list[dict]:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            rows = []
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            return rows
        if path.suffix.lower() in (".csv", ".tsv"):
            with path.open(newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh, delimiter="\t" if path.suffix == ".tsv" else ","))
        raise ConfigError(f"source.metadata={str(path)!r} must be .jsonl or .csv")

    def _labels_of(self, value) -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, list):
            return [str(v) for v in value]
        if self.task == "multilabel":
            return [v.strip() for v in str(value).split(self.label_separator) if v.strip()]
        return [str(value)]

    def _from_metadata(self) -> list[tuple[Path, list[str]]]:
        meta = Path(self.metadata)
        if not meta.is_absolute():
            meta = self.root / meta
        if not meta.is_file():
            raise ConfigError(f"source.metadata={self.metadata!r} not found (looked at {meta})")
        items = []
        for n, row in enumerate(self._read_rows(meta), 1):
            if self.path_field not in row or self.label_field not in row:
                raise ConfigError(
                    f"{meta} row {n} lacks '{self.path_field}' or '{self.label_field}'; "
                    f"set source.path_field / source.label_field (fields: {sorted(row)})"
                )
            labels = self._labels_of(row[self.label_field])
            if labels:
                items.append((self.root / str(row[self.path_field]), labels))
        return items

    def imageset(self) -> ImageSet:
        items = self._from_metadata() if self.metadata else self._from_subfolders()
        classes = self.classes or sorted({lab for _, labs in items for lab in labs})
        known = set(classes)
        items = [(p, [lab for lab in labs if lab in known]) for p, labs in items]
        items = [(p, labs) for p, labs in items if labs]
        missing = [p for p, _ in items if not p.is_file()]
        if missing:
            log.warning(
                "%d listed pictures are missing, e.g. %s; skipping them", len(missing), missing[0]
            )
            items = [(p, labs) for p, labs in items if p.is_file()]
        if not items:
            raise DataError(f"no labelled pictures found under {self.root}")
        if len(classes) < 2:
            raise DataError(f"need at least 2 classes under {self.root}, found {classes}")
        index = {c: i for i, c in enumerate(classes)}
        if self.task == "multiclass":
            targets = np.array([index[labs[0]] for _, labs in items], dtype=np.int64)
        else:
            targets = np.zeros((len(items), len(classes)), dtype=np.float32)
            for r, (_, labs) in enumerate(items):
                targets[r, [index[lab] for lab in labs]] = 1.0
        digest = hashlib.sha256()
        for p, labs in items:
            digest.update(hashlib.sha256(p.read_bytes()).digest())
            digest.update(("|".join(labs) + "\n").encode())
        paths = [p for p, _ in items]

        def load(i: int, size: int) -> np.ndarray:
            # decoded at the size the cache shrinks it to (JPEG draft); DataError -> the cache
            # records it and skips it
            return read_image(paths[i], target_size=size)

        return ImageSet(
            name=self.name,
            classes=classes,
            task=self.task,
            ids=[
                str(p.relative_to(self.root)) if p.is_relative_to(self.root) else str(p)
                for p in paths
            ],
            targets=targets,
            fingerprint=digest.hexdigest(),
            load=load,
            meta={"paths": [str(p) for p in paths]},
        )
