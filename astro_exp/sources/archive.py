"""The APOD archive at scale: train straight from its folder, or import it into the catalog.

``ApodArchiveSource`` (``source=apod_archive``) is the thumbnails source
(:class:`~astro_exp.sources.apod_thumbs.ApodThumbsSource`: JSON-lines metadata, weak labels
from title + explanation, byte-identical pictures once) over a folder laid out like
``../shared/data/apod-archive``, with the two building blocks of an honest score against
``apod-thumbs/gold.csv``: ``exclude_thumbs`` leaves out every row the archive itself marks
as also being a scored thumbnail (``thumbs_file``), and ``copies_of`` drops training
pictures whose trimmed pHash is within ``copy_distance`` bits of any picture in another
folder (APOD reruns a picture on other days; the marks cannot know every rerun).

What the archive trains on (``targets``): the rules' weak labels as they are (``weak``); only
the days whose text the rules are sure about (``confident``: the primary class's score beats
the runner-up's by ``min_margin`` or more, :func:`label_margin`); or labels written by the
archive study (``fused``: ``scripts/archive_study.py --write-labels`` labels every picture of
the scored-pictures-free pool from its text *and* a frozen-feature picture probe that never
saw it, docs/archive.md). Why: ten times the pictures with the weak labels as they are
scored worse on the thumbnails than the thumbnails alone (issue #22); the labels, not the
pictures, were the limit.

``ApodMirrorSource`` (``source=apod_mirror``) imports an archive folder or a mirror checkout
into the catalog (``astro-exp scrape source=apod_mirror source.root=...``) and trains on
the catalog rows it wrote, as ``source=apod`` would.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.apod.mirror_import import BATCH, ImportSummary, import_mirror
from astro_exp.apod.scrape import REQUEST_DEFAULTS
from astro_exp.data.imageset import ImageSet, Task
from astro_exp.data.label_files import read_label_file
from astro_exp.data.labels import Labeller, build_labeller
from astro_exp.data.phash import CopyPair, HashedSet, hash_files, near_copies
from astro_exp.errors import ConfigError, DataError
from astro_exp.sources.apod_catalog import ApodCatalogSource
from astro_exp.sources.apod_thumbs import ApodThumbsSource

log = logging.getLogger(__name__)

TARGETS = ("weak", "confident", "fused")
PICTURE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def picture_files(root: str | Path) -> list[Path]:
    """Every picture file under ``root`` (recursively, sorted): a set for the copy check."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder of pictures; check the path")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in PICTURE_EXTENSIONS and not p.name.startswith(".")
    )


def label_margin(scores: Mapping[str, float], primary: str, other: str, min_score: float) -> float:
    """How sure the rules are of a text: the primary class's score minus the runner-up's.

    A text that names no class clearly (``other`` by fallback: no score reaches
    ``min_score``) gets ``min_score`` minus its best score: a text naming nothing at all is as
    sure as one weak hit, and one that almost named a class is unsure.

    >>> label_margin({"galaxy": 9.0, "star": 2.0}, "galaxy", "other", 2.0)
    7.0
    >>> label_margin({"star": 1.5}, "other", "other", 2.0)
    0.5
    """
    if primary == other and scores.get(other, 0.0) < min_score:
        return float(min_score - max(scores.values(), default=0.0))
    rest = [v for k, v in scores.items() if k != primary]
    return float(scores.get(primary, 0.0) - max(rest, default=0.0))


def find_copies(
    pictures: Sequence[Path],
    scored: Sequence[Path],
    distance: int = 6,
    aspect_tolerance: float = 0.2,
    progress: bool = True,
) -> tuple[list[CopyPair], HashedSet, HashedSet]:
    """Near-copies between two picture sets: for each of ``pictures``, the nearest of
    ``scored`` within ``distance`` pHash bits (letterbox bars trimmed first); also returns
    both hashed sets (their ``paths`` resolve a pair, their ``bad`` lists unreadable files)."""
    a = hash_files(pictures, progress=progress, desc="hashing training pictures")
    b = hash_files(scored, progress=progress, desc="hashing scored pictures")
    return near_copies(a, b, distance, aspect_tolerance), a, b


class ApodArchiveSource(ApodThumbsSource):
    """An APOD archive folder (``metadata.jsonl`` + pictures) as a training source.

    Archive files are named by date (``1995-06-16.jpg``): never animation frames, so
    ``one_frame_per_animation`` is off by default here.

    ``targets``: ``weak`` (the rules' labels), ``confident`` (only pictures whose text has a
    :func:`label_margin` of at least ``min_margin``), ``fused`` (the labels of the
    ``fused_labels`` file, ``file,label`` as the metadata names files; pictures the file does
    not name are left out: the study writes the pool it measured, without the thumbnails'
    re-cropped twins that pHash misses). Multiclass only for ``fused``. ``only_files``: a CSV
    with a ``file`` column; only the pictures it names (the study's pool, for any ``targets``).
    """

    def __init__(
        self,
        root: str,
        exclude_thumbs: bool = False,
        thumbs_field: str = "thumbs_file",
        copies_of: str | None = None,
        copy_distance: int = 6,
        copy_aspect_tolerance: float = 0.2,
        progress: bool = True,
        name: str = "apod_archive",
        one_frame_per_animation: bool = False,
        targets: str = "weak",
        min_margin: float = 6.0,
        fused_labels: str | None = None,
        only_files: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, name=name, one_frame_per_animation=one_frame_per_animation, **kwargs)
        if targets not in TARGETS:
            raise ConfigError(f"source.targets={targets!r} must be one of {', '.join(TARGETS)}")
        self.targets = targets
        self.min_margin = float(min_margin)
        self.fused_labels: Path | None = None
        if targets == "fused":
            if not fused_labels:
                raise ConfigError(
                    "source.targets=fused needs source.fused_labels=<file.csv>; write it with "
                    "`python scripts/archive_study.py --write-labels <file.csv>` (docs/archive.md)"
                )
            if self.task != "multiclass":
                raise ConfigError("source.targets=fused gives one label a picture: task=multiclass")
            self.fused_labels = Path(fused_labels).expanduser()
            if not self.fused_labels.is_file():
                raise ConfigError(f"source.fused_labels={fused_labels!r} is not a file")
        self.only_files: Path | None = None
        if only_files:
            self.only_files = Path(only_files).expanduser()
            if not self.only_files.is_file():
                raise ConfigError(
                    f"source.only_files={only_files!r} is not a file; give a CSV with a `file` "
                    "column (e.g. the study's pool, docs/archive.md) or null"
                )
        self.exclude_thumbs = bool(exclude_thumbs)
        self.thumbs_field = thumbs_field
        self.copies_of = Path(copies_of).expanduser() if copies_of else None
        if self.copies_of is not None and not self.copies_of.is_dir():
            raise ConfigError(
                f"source.copies_of={copies_of!r} is not a folder; give the scored pictures' "
                "folder (e.g. ../shared/data/apod-thumbs) or null"
            )
        if int(copy_distance) < 0:
            raise ConfigError(f"source.copy_distance={copy_distance} must be 0 or more bits")
        self.copy_distance = int(copy_distance)
        self.copy_aspect_tolerance = float(copy_aspect_tolerance)
        self.progress = progress
        self.copies: list[tuple[str, str, int]] = []  # (training file, scored file, bits)
        self.n_excluded = 0

    def keep_row(self, row: Mapping[str, Any]) -> bool:
        if self.exclude_thumbs and row.get(self.thumbs_field):
            self.n_excluded += 1
            return False
        return True

    def records(self) -> list[dict[str, Any]]:
        self.n_excluded = 0
        recs = super().records()
        if self.only_files is not None:
            with open(self.only_files, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if "file" not in (reader.fieldnames or []):
                    raise DataError(f"{self.only_files} has no `file` column (source.only_files)")
                keep = {row["file"] for row in reader}
            n = len(recs)
            recs = [r for r in recs if r["file"] in keep]
            log.info("%s: source.only_files keeps %d of %d rows", self.name, len(recs), n)
        if self.exclude_thumbs:
            log.info(
                "%s: left out %d rows with %s (scored pictures)",
                self.name,
                self.n_excluded,
                self.thumbs_field,
            )
        if self.copies_of is None:
            return recs
        present = [r for r in recs if (self.root / r["file"]).is_file()]
        pairs, a, b = find_copies(
            [self.root / r["file"] for r in present],
            picture_files(self.copies_of),
            self.copy_distance,
            self.copy_aspect_tolerance,
            progress=self.progress,
        )
        drop = {present[p.i]["file"] for p in pairs}
        self.copies = [
            (present[p.i]["file"], str(b.paths[p.j].relative_to(self.copies_of)), p.distance)
            for p in pairs
        ]
        log.info(
            "%s: dropped %d training pictures that are copies of pictures in %s "
            "(pHash within %d bits)",
            self.name,
            len(drop),
            self.copies_of,
            self.copy_distance,
        )
        return [r for r in recs if r["file"] not in drop]

    def imageset(self) -> ImageSet:
        """The pictures with the weak labels, then ``targets`` applied (see the class doc)."""
        base = super().imageset()
        if self.targets == "weak":
            return base
        if self.targets == "confident":
            labeller = build_labeller(self.labels_cfg)
            margins = []
            for title, explanation in base.meta["texts"]:
                res = labeller.label(title, explanation)
                margins.append(
                    label_margin(res.scores, res.primary, labeller.other, labeller.min_score)
                )
            rows = np.flatnonzero(np.asarray(margins) >= self.min_margin)
            log.info(
                "%s: source.targets=confident keeps %d of %d pictures (label margin >= %g)",
                self.name,
                len(rows),
                len(base),
                self.min_margin,
            )
            tag = f"{base.fingerprint}|confident|{self.min_margin}"
            out = base.take(rows, fingerprint=hashlib.sha256(tag.encode()).hexdigest())
        else:
            assert self.fused_labels is not None
            given = {r.file: r.label for r in read_label_file(self.fused_labels)}
            index = {c: i for i, c in enumerate(base.classes)}
            rows = np.array([i for i, f in enumerate(base.ids) if given.get(f) in index], int)
            if not len(rows):
                raise DataError(
                    f"{self.fused_labels} names none of the {len(base)} pictures of {self.root} "
                    f"with one of the classes {base.classes}; was it written for this archive?"
                )
            targets = np.array([index[given[base.ids[i]]] for i in rows], dtype=np.int64)
            digest = hashlib.sha256(f"{base.fingerprint}|fused\n".encode())
            for i, t in zip(rows, targets, strict=True):
                digest.update(f"{base.ids[i]}|{t}\n".encode())
            log.info(
                "%s: source.targets=fused: %d of %d pictures labelled by %s (%d relabelled; "
                "%d not named or of another class, left out)",
                self.name,
                len(rows),
                len(base),
                self.fused_labels,
                int((targets != base.targets[rows]).sum()),
                len(base) - len(rows),
            )
            out = base.take(rows, fingerprint=digest.hexdigest(), targets=targets)
        out.meta["targets"] = self.targets
        present = {int(c) for c in np.unique(out.targets)}
        if len(present) < 2:
            raise DataError(
                f"source.targets={self.targets} leaves {len(out)} pictures of "
                f"{len(present)} class; lower source.min_margin or check the labels file"
            )
        return out


class ApodMirrorSource:
    """A local APOD archive or mirror checkout, imported into the catalog (``scrape``), and
    the catalog rows it wrote as the pictures to train on (``imageset``)."""

    def __init__(
        self,
        root: str | None = None,
        layout: str = "auto",
        into: str = REQUEST_DEFAULTS["source"],
        name: str = "apod_mirror",
        base_url: str = REQUEST_DEFAULTS["base_url"],
        max_bytes: int = REQUEST_DEFAULTS["max_bytes"],
        max_pixels: int = REQUEST_DEFAULTS["max_pixels"],
        batch: int = BATCH,
        workers: int = 2,
        data_dir: str = "data",
        labels: Mapping[str, Any] | Labeller | None = None,
        include_other: bool = False,
        task: Task = "multiclass",
        progress: bool = True,
    ) -> None:
        self.root = Path(root).expanduser() if root else None
        self.layout = layout
        self.into = into
        self.name = name
        self.base_url = base_url
        self.max_bytes = int(max_bytes)
        self.max_pixels = int(max_pixels)
        self.batch = int(batch)
        self.workers = int(workers)
        self.data_dir = Path(data_dir)
        self.labels_cfg = labels
        self.include_other = include_other
        self.task: Task = task
        self.progress = progress

    def import_into_catalog(self, progress: bool | None = None) -> ImportSummary:
        """Import the days the catalog lacks (what ``astro-exp scrape source=apod_mirror`` runs)."""
        if self.root is None:
            raise ConfigError(
                "say where the copy is: source.root=~/apod-mirror (an archive folder with "
                "metadata.jsonl, or a mirror checkout with json/YYYY-MM-01.json + image/)"
            )
        labeller = build_labeller(self.labels_cfg) if self.labels_cfg is not None else None
        return import_mirror(
            self.root,
            self.data_dir,
            into=self.into,
            layout=self.layout,
            labeller=labeller,
            base_url=self.base_url,
            max_pixels=self.max_pixels,
            max_bytes=self.max_bytes,
            batch=self.batch,
            workers=self.workers,
            progress=self.progress if progress is None else progress,
        )

    def imageset(self) -> ImageSet:
        """The catalog's rows of ``into`` (imported or scraped), labelled as ``source=apod``."""
        return ApodCatalogSource(
            name=self.into,
            data_dir=str(self.data_dir),
            labels=self.labels_cfg,
            include_other=self.include_other,
            task=self.task,
            progress=self.progress,
        ).imageset()


__all__ = [
    "TARGETS",
    "ApodArchiveSource",
    "ApodMirrorSource",
    "find_copies",
    "label_margin",
    "picture_files",
]
