"""What a person's corrections are worth when the network is retrained, as the real loop does.

The review simulation's quick learner (:mod:`astro_exp.review.simulate`) refits a linear head
on frozen features; a user's loop retrains the recipe (``train.py experiment=apod``) with the
corrections in place of the weak labels. This plays that loop over the folds of
:mod:`astro_exp.crossval.folds`: round 0 is the fold's run on weak labels; each round the
last run predicts the pool (the pictures of the other folds not corrected yet, through the
predict path, as the catalog's predictions are made), the review queue picks ``per_round``
of them, the person (a labels file) labels them, and the recipe is trained again with every
correction so far (``source.corrections=<file>``). The held-out fold is scored against the
person after each round and never shown to the queue.

A run is minutes on a CPU, so this is for a few folds and rounds (or a GPU); every run keeps
its folder, and a second call reuses finished runs.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.crossval.folds import held_out, train_fold
from astro_exp.data.label_files import LabelRow, read_label_file
from astro_exp.data.splits import fold_of
from astro_exp.errors import ConfigError
from astro_exp.files import atomic_write
from astro_exp.predict.classifier import Classifier
from astro_exp.predict.scorecard import probability_vector, score_labelled
from astro_exp.review.queue import review_order

log = logging.getLogger(__name__)

RETRAIN_ORDERS = ("uncertainty", "disagreement", "random")  # anomaly needs the run's detector


def _pool_probs(clf: Classifier, root: Path, ids: Sequence[str], batch_size: int) -> np.ndarray:
    """(N, C) calibrated probabilities of the pool pictures, in ``clf.classes`` order; a picture
    that fails to decode gets NaN (the queue puts it last)."""
    index = {c: i for i, c in enumerate(clf.classes)}
    preds = clf.predict(
        [str(root / i) for i in ids], top_k=len(index), batch_size=batch_size, progress=False
    )
    out = np.full((len(ids), len(index)), np.nan)
    for row, pred in zip(out, preds, strict=True):
        if not pred.error:
            row[:] = probability_vector(pred, index)
    return out


def _write_corrections(path: Path, corrected: dict[str, str]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "label"])
    writer.writerows(sorted(corrected.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())
    return path


def retrain_rounds(
    overrides: Sequence[str],
    labels: str | Path,
    root: str | Path,
    out_dir: str | Path,
    *,
    ids: Sequence[str],
    weak: Sequence[str],
    orders: Sequence[str] = ("disagreement", "random"),
    rounds: int = 1,
    per_round: int = 100,
    folds: int = 5,
    held_out_folds: Sequence[int] = (0,),
    uncertainty: str = "margin",
    seed: int = 0,
    batch_size: int = 32,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Learning curves by retraining: held-out figures after 0, per_round, ... corrections.

    ``ids`` / ``weak``: the training source's pictures (paths from ``root``, as the labels file
    names them) and their weak labels; ``overrides``: the train.py recipe (a source that takes
    ``source.corrections``, such as ``source=apod_thumbs``)."""
    bad = [o for o in orders if o not in RETRAIN_ORDERS]
    if bad:
        raise ConfigError(
            f"learner=finetune orders {bad}: use {', '.join(RETRAIN_ORDERS)} (anomaly needs a "
            "detector in every run; learner=head simulates it)"
        )
    rows = read_label_file(labels)
    person = {r.file.replace("\\", "/"): r.label for r in rows}
    weak_of = dict(zip(ids, weak, strict=True))
    loop = _Loop(
        overrides,
        Path(root).expanduser(),
        Path(out_dir),
        person,
        weak_of,
        folds,
        rounds,
        per_round,
        uncertainty,
        seed,
        batch_size,
        progress,
    )
    curves: dict[str, list[list[dict[str, Any]]]] = {o: [] for o in orders}
    for k in held_out_folds:
        test_rows = held_out(rows, folds, k)
        pool = [i for i in ids if fold_of(i, folds) != k and i in person]
        base, _ = train_fold(overrides, folds, k, loop.out_dir / f"fold{k}" / "round0")
        start = {"corrections": 0, "weak_fixed": 0, **loop.score(base, test_rows)}
        if progress:
            progress(f"fold {k} round 0: macro-F1 {start['f1_macro']:.3f}")
        for order in orders:
            curves[order].append(_curve(loop, k, order, pool, test_rows, base, start))
    mean = {o: _mean(runs) for o, runs in curves.items()}
    return {
        "learner": "finetune",
        "overrides": list(overrides),
        "held_out": {"folds": folds, "held_out_folds": list(held_out_folds)},
        "rounds": rounds,
        "per_round": per_round,
        "weak_wrong": sum(weak_of[i] != person[i] for i in ids if i in person),
        "curves": mean,
        "per_fold": {o: runs for o, runs in curves.items()},
        "gain_f1_macro": {o: c[-1]["f1_macro"] - c[0]["f1_macro"] for o, c in mean.items()},
    }


@dataclass(frozen=True)
class _Loop:
    """What every fold and order of one :func:`retrain_rounds` call shares."""

    overrides: Sequence[str]
    root: Path
    out_dir: Path
    person: dict[str, str]  # picture -> the person's label
    weak_of: dict[str, str]  # picture -> its weak label
    folds: int
    rounds: int
    per_round: int
    uncertainty: str
    seed: int
    batch_size: int
    progress: Callable[[str], None] | None

    def score(self, best: Path, rows: list[LabelRow]) -> dict[str, float]:
        """The run ``best`` on the held-out ``rows`` against the person."""
        card = score_labelled(
            Classifier.from_checkpoint(best, anomaly=False),
            rows,
            self.root,
            batch_size=self.batch_size,
        )
        return {k: float(card.metrics[k]) for k in ("acc", "f1_macro", "ece")}


def _curve(
    loop: _Loop,
    k: int,
    order: str,
    pool: list[str],
    test_rows: list[LabelRow],
    base: Path,
    start: dict[str, Any],
) -> list[dict[str, Any]]:
    """Fold ``k``'s learning curve under ``order``: each round the last run predicts the
    uncorrected pool, the queue picks, the person labels, the recipe trains again."""
    corrected: dict[str, str] = {}
    best, curve = base, [start]
    for r in range(1, loop.rounds + 1):
        left = [i for i in pool if i not in corrected]
        picked = _pick(loop, best, order, left)
        corrected.update({i: loop.person[i] for i in picked})
        run = loop.out_dir / f"fold{k}" / order / f"round{r}"
        fixes = _write_corrections(run / "corrections.csv", corrected)
        best, _ = train_fold(
            [*loop.overrides, f"source.corrections={fixes.resolve()}"], loop.folds, k, run
        )
        curve.append(
            {
                "corrections": len(corrected),
                "weak_fixed": sum(loop.weak_of[i] != lab for i, lab in corrected.items()),
                **loop.score(best, test_rows),
            }
        )
        if loop.progress:
            loop.progress(
                f"fold {k} {order} round {r}: {len(corrected)} corrections, "
                f"macro-F1 {curve[-1]['f1_macro']:.3f}"
            )
    return curve


def _pick(loop: _Loop, best: Path, order: str, left: list[str]) -> list[str]:
    """The ``per_round`` pictures of ``left`` the review queue shows next, as the run
    ``best`` predicts them."""
    clf = Classifier.from_checkpoint(best, anomaly=False)
    probs = _pool_probs(clf, loop.root, left, loop.batch_size)
    idx = review_order(
        order,
        keys=left,
        probs=probs,
        classes=list(clf.classes),
        weak=[loop.weak_of[i] for i in left],
        measure=loop.uncertainty,
        seed=loop.seed,
    )
    return [left[j] for j in idx[: loop.per_round]]


def _mean(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for points in zip(*runs, strict=True):
        out.append({key: float(np.mean([p[key] for p in points])) for key in points[0]})
        out[-1]["corrections"] = int(points[0]["corrections"])
        out[-1]["runs"] = len(points)
        if len(points) > 1:
            out[-1]["f1_macro_sd"] = float(np.std([p["f1_macro"] for p in points]))
    return out


__all__ = ["RETRAIN_ORDERS", "retrain_rounds"]
