"""The archive study's data: the training pool from the APOD archive and the scored sets.

Why a module of its own: every row of the study (:mod:`astro_exp.crossval.archive_probe`)
trains on the same pool and is scored on the same pictures, so they are built once, here,
into a :class:`Study`. The pool is the archive minus every row with a ``thumbs_file``, minus
the pHash near-copies of thumbnails, minus the pictures whose frozen-feature cosine to any
thumbnail is >= ``cosine`` (re-cropped twins), byte-identical pictures once; a tenth of it
(a hash of the file name) is the weak-labelled val split. The scored sets are the
thumbnails of ``gold.csv`` (one frame per animation) and the other cameras' pictures.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.crossval.archive_features import picture_features
from astro_exp.data.label_files import read_label_file
from astro_exp.data.labels import Labeller, build_labeller, load_label_config
from astro_exp.data.splits import fold_of, group_key
from astro_exp.files import atomic_write
from astro_exp.sources.archive import ApodArchiveSource, label_margin

VAL_FOLDS = 10  # fold 0 of 10 (a hash of the file name) is the weak-labelled val split


@dataclass
class ArchiveRows:
    """Every archive metadata row whose picture exists, with the labeller's view of its text."""

    files: list[str]
    years: np.ndarray
    texts: list[tuple[str, str]]
    scores: list[dict[str, float]]
    weak: np.ndarray  # class index of the labeller's primary
    margin: np.ndarray
    thumbs_file: list[str | None]
    thumbs_match: list[str | None]
    sha: list[str]
    short_side: np.ndarray


def read_archive(root: Path, labeller: Labeller, classes: list[str]) -> ArchiveRows:
    rows = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines() if line]
    rows = [r for r in rows if (root / r["file"]).is_file()]
    results = [labeller.label(r.get("title"), r.get("explanation")) for r in rows]
    return ArchiveRows(
        files=[r["file"] for r in rows],
        years=np.array([int(r["date"][:4]) for r in rows]),
        texts=[(r.get("title") or "", r.get("explanation") or "") for r in rows],
        scores=[dict(res.scores) for res in results],
        weak=np.array([classes.index(res.primary) for res in results]),
        margin=np.array(
            [
                label_margin(res.scores, res.primary, labeller.other, labeller.min_score)
                for res in results
            ]
        ),
        thumbs_file=[r.get("thumbs_file") for r in rows],
        thumbs_match=[r.get("thumbs_match") for r in rows],
        sha=[r.get("sha256") or "" for r in rows],
        short_side=np.array(
            [min(int(r.get("width") or 0), int(r.get("height") or 0)) for r in rows]
        ),
    )


def phash_copies(archive_root: Path, thumbs_root: Path, cache_dir: Path) -> set[str]:
    """Archive files the archive source itself drops as pHash copies of thumbnails (thumbs
    rows already out), cached: hashing 10,000 pictures takes a minute or two."""
    path = cache_dir / "phash_copies.json"
    if path.is_file():
        return set(json.loads(path.read_text())["files"])
    src = ApodArchiveSource(
        str(archive_root), exclude_thumbs=True, copies_of=str(thumbs_root), progress=False
    )
    src.records()
    files = sorted({a for a, _, _ in src.copies})
    atomic_write(path, json.dumps({"files": files, "pairs": src.copies}, indent=0))
    return set(files)


def twin_mask(a: np.ndarray, b: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(N,) max cosine of each row of ``a`` to any row of ``b``, and whether it is >= threshold."""
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    best = np.concatenate([(an[s : s + 2048] @ bn.T).max(1) for s in range(0, len(an), 2048)])
    return best, best >= threshold


@dataclass
class Study:
    """Everything the rows need: features, labels, the pool, the scored sets."""

    classes: list[str]
    labeller: Labeller
    arch: ArchiveRows
    arch_feats: dict[str, np.ndarray]
    pool: np.ndarray  # bool over archive rows: may be trained on (train or val)
    val: np.ndarray  # bool: the pool's weak-labelled val split
    thumb_feats: dict[str, np.ndarray]
    test_idx: np.ndarray  # thumbs feature rows scored (one frame per animation)
    test_truth: np.ndarray
    test_weak: np.ndarray  # the labeller's label of each scored thumbnail (reference rows)
    test_files: list[str]
    other_feats: dict[str, np.ndarray]
    other_truth: np.ndarray
    gold_by_file: dict[str, str]
    pool_info: dict[str, int] = field(default_factory=dict)


@dataclass
class _Scored:
    """The scored thumbnails: gold.csv's pictures, one frame per animation."""

    gold_by_file: dict[str, str]
    idx: list[int]
    truth: list[int]
    weak: list[int]
    files: list[str]


def build_study(
    archive_root: Path,
    thumbs_root: Path,
    other_root: Path,
    cache_dir: Path,
    train_policies: Sequence[str],
    test_policies: Sequence[str],
    cosine: float = 0.90,
    labels: str = "apod4",
    progress: bool = False,
) -> Study:
    """The study's features, pool and scored sets (features cached under ``cache_dir``);
    ``pool_info`` counts the archive rows and what each pool rule drops."""
    labeller = build_labeller(load_label_config(labels))
    classes = labeller.label_classes(include_other=True)
    arch = read_archive(archive_root, labeller, classes)
    arch_feats, arch_ok = _features(
        archive_root, arch.files, "archive", list(train_policies), cache_dir, progress
    )
    all_policies = sorted(set(train_policies) | set(test_policies))
    th_rows, thumb_feats = _thumbs(thumbs_root, all_policies, cache_dir, progress)
    other_feats, other_truth = _other_cameras(
        other_root, classes, all_policies, cache_dir, progress
    )
    info: dict[str, int] = {"archive_rows": len(arch.files)}
    copies = phash_copies(archive_root, thumbs_root, cache_dir)
    pool = _training_pool(
        arch, arch_ok, arch_feats, thumb_feats, train_policies, cosine, copies, info
    )
    val = pool & np.array([fold_of(f, VAL_FOLDS) == 0 for f in arch.files])
    info["pool"] = int(pool.sum())
    info["val"] = int(val.sum())
    scored = _scored_thumbnails(thumbs_root, th_rows, classes, labeller)
    info["scored_thumbnails"] = len(scored.idx)
    return Study(
        classes,
        labeller,
        arch,
        arch_feats,
        pool,
        val,
        thumb_feats,
        np.array(scored.idx),
        np.array(scored.truth),
        np.array(scored.weak),
        scored.files,
        other_feats,
        other_truth,
        scored.gold_by_file,
        info,
    )


def _features(
    root: Path,
    files: list[str],
    name: str,
    policies: Sequence[str],
    cache_dir: Path,
    progress: bool,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Frozen features of ``files`` (paths under ``root``) per policy, cached as ``name``."""
    return picture_features(
        [root / f for f in files],
        name=name,
        root=root,
        policies=policies,
        cache_dir=cache_dir,
        progress=progress,
    )


def _thumbs(
    root: Path, policies: Sequence[str], cache_dir: Path, progress: bool
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The thumbnails' metadata rows and their features under every policy."""
    rows = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines() if line]
    feats, _ = _features(root, [r["file"] for r in rows], "thumbs", policies, cache_dir, progress)
    return rows, feats


def _other_cameras(
    root: Path, classes: list[str], policies: Sequence[str], cache_dir: Path, progress: bool
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The other cameras' features under every policy and their labels (class indices)."""
    with open(root / "labels.csv", encoding="utf-8") as f:
        oc = list(csv.DictReader(f))
    feats, _ = _features(root, [r["file"] for r in oc], "other", policies, cache_dir, progress)
    return feats, np.array([classes.index(r["label"]) for r in oc])


def _training_pool(
    arch: ArchiveRows,
    arch_ok: np.ndarray,
    arch_feats: dict[str, np.ndarray],
    thumb_feats: dict[str, np.ndarray],
    train_policies: Sequence[str],
    cosine: float,
    copies: set[str],
    info: dict[str, int],
) -> np.ndarray:
    """The training pool: no scored day, no copy of a scored picture, each picture once;
    how many rows each rule drops goes to ``info``."""
    pool = arch_ok.copy()
    info["unreadable"] = int((~arch_ok).sum())
    has_thumb = np.array([bool(t) for t in arch.thumbs_file])
    info["thumbs_file_rows"] = int(has_thumb.sum())
    pool &= ~has_thumb
    is_copy = np.array([f in copies for f in arch.files])
    info["phash_copies"] = int((is_copy & pool).sum())
    pool &= ~is_copy
    twins = np.zeros(len(arch.files), bool)
    for p in train_policies:  # a twin under any policy's features is out of every row
        twins |= twin_mask(arch_feats[p], thumb_feats[p], cosine)[1]
    info["feature_twins"] = int((twins & pool).sum())
    pool &= ~twins
    dup = _byte_duplicates(arch.sha, pool)
    info["byte_duplicates"] = int(dup.sum())
    return pool & ~dup


def _byte_duplicates(sha: list[str], pool: np.ndarray) -> np.ndarray:
    """Pool rows whose file's sha256 an earlier pool row already has."""
    seen: set[str] = set()
    dup = np.zeros(len(sha), bool)
    for i in np.flatnonzero(pool):
        if sha[i] and sha[i] in seen:
            dup[i] = True
        seen.add(sha[i])
    return dup


def _scored_thumbnails(
    root: Path, th_rows: list[dict[str, Any]], classes: list[str], labeller: Labeller
) -> _Scored:
    """gold.csv's thumbnails that have features, the first frame of each animation, with
    their careful and weak labels."""
    gold = read_label_file(root / "gold.csv")
    index = {r["file"]: i for i, r in enumerate(th_rows)}
    th_text = {r["file"]: _thumb_text(r) for r in th_rows}
    out = _Scored({r.file: r.label for r in gold}, [], [], [], [])
    seen_groups: set[str] = set()
    for r in gold:
        key = group_key(r.file)
        if key in seen_groups or r.file not in index:
            continue
        seen_groups.add(key)
        out.idx.append(index[r.file])
        out.truth.append(classes.index(r.label))
        out.weak.append(classes.index(labeller.label(*th_text[r.file]).primary))
        out.files.append(r.file)
    return out


def _thumb_text(row: dict[str, Any]) -> tuple[str, str]:
    """A thumbnail's text as the thumbs source reads it (first candidate, else the file name)."""
    cand = (row.get("candidates") or [{}])[0] or {}
    title = cand.get("title") or Path(row["file"]).stem.replace("_", " ")
    return title, cand.get("explanation") or ""


__all__ = ["ArchiveRows", "Study", "build_study", "phash_copies", "read_archive", "twin_mask"]
