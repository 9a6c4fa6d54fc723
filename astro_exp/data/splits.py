"""Deterministic splits: stratified train/val/test, and k folds for cross-validation."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from astro_exp.errors import ConfigError

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}


def stratified_split(
    targets: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Split ids (0 train, 1 val, 2 test) per item, stratified by the (primary) label.

    Every class with at least 3 items gets at least one val and one test item, so
    per-class metrics are defined.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} "
            "must be in [0, 1) and sum to less than 1"
        )
    strata = targets if targets.ndim == 1 else _primary(targets)
    rng = np.random.default_rng(seed)
    split = np.zeros(len(strata), dtype=np.int8)
    for c in np.unique(strata):
        idx = np.flatnonzero(strata == c)
        rng.shuffle(idx)
        n = len(idx)
        n_val = int(round(n * val_fraction))
        n_test = int(round(n * test_fraction))
        if n >= 3:
            n_val = max(n_val, 1) if val_fraction > 0 else 0
            n_test = max(n_test, 1) if test_fraction > 0 else 0
        split[idx[:n_val]] = VAL
        split[idx[n_val : n_val + n_test]] = TEST
    return split


def _primary(multi_hot: np.ndarray) -> np.ndarray:
    """A stratum per multi-hot row: its label set as an integer bit mask."""
    weights = 1 << np.arange(multi_hot.shape[1])
    return (multi_hot > 0.5).astype(np.int64) @ weights


_FRAME_RE = re.compile(r"-\d+$")


def group_key(item_id: str) -> str:
    """Pictures that must stay in one fold: the frames ``X-0.jpg``, ``X-1.jpg`` ... of one
    animation share the key ``X``. Only file names count as frames (an id without a file
    suffix, such as ``synthetic-0-000001``, is its own group)."""
    path = PurePosixPath(str(item_id).replace("\\", "/"))
    if not path.suffix:
        return str(path)
    return str(path.with_name(_FRAME_RE.sub("", path.stem)))


def first_frames(rows: Sequence[Any]) -> list[Any]:
    """The first listed row of each :func:`group_key` (rows with a ``file``): one frame stands
    for its animation, as the training sources count one; 31 near-identical frames scored one
    by one would weigh 31 times.

    >>> from types import SimpleNamespace as Row
    >>> [r.file for r in first_frames([Row(file="a-0.jpg"), Row(file="a-1.jpg"), Row(file="b.jpg")])]
    ['a-0.jpg', 'b.jpg']
    """
    seen: set[str] = set()
    out = []
    for r in rows:
        key = group_key(r.file)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def fold_of(item_id: str, folds: int) -> int:
    """The cross-validation fold of a picture: a hash of its group key, so the folds are the
    same for every run, every source order and every labels file that names the picture."""
    digest = hashlib.sha256(group_key(item_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % int(folds)


def fold_split(
    ids: Sequence[str], targets: np.ndarray, folds: int, fold: int, val_fraction: float, seed: int
) -> np.ndarray:
    """Test = the pictures of fold ``fold`` (of ``folds``); val = a stratified
    ``val_fraction`` of the others; train = the rest."""
    if int(folds) < 2 or not 0 <= int(fold) < int(folds):
        raise ConfigError(
            f"data.folds={folds} and data.fold={fold}: need folds >= 2 and 0 <= fold < folds"
        )
    held = np.array([fold_of(i, folds) == fold for i in ids], dtype=bool)
    split = np.full(len(ids), TEST, dtype=np.int8)
    rest = np.flatnonzero(~held)
    split[rest] = stratified_split(targets[rest], val_fraction, 0.0, seed)
    return split
