"""Deterministic stratified train/val/test splits."""

from __future__ import annotations

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
