"""Honest figures on real pictures: k-fold cross-validation against a person's labels.

Each fold trains ``train.py`` on the weak labels of the other folds (``data.folds=k
data.fold=i``: the held-out fold is the run's test split, chosen by a hash of each picture's
name so animation frames stay together), then scores that run's ``best.pt`` on the held-out
fold's pictures against the careful labels (``gold.csv``) through the predict path
(:func:`astro_exp.predict.scorecard.score_labelled`). The careful labels are used for
scoring only: no fold's training ever reads them. The labels file names pictures by the
same relative paths the source uses as ids (``images/X.jpg`` for the shared thumbnails,
``class/file.jpg`` for a folder source), so both sides hash a picture to the same fold.

Runs are subprocesses (``python -m astro_exp.cli.train``), as a user would start them, so a
fold that fails or is killed leaves its folder and the next call continues with the folds
that have no ``best.pt`` yet.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.crossval.fused import fused_figures
from astro_exp.data.label_files import LabelRow, read_label_file
from astro_exp.data.splits import first_frames, fold_of
from astro_exp.errors import DataError
from astro_exp.files import atomic_write
from astro_exp.predict.classifier import Classifier
from astro_exp.predict.fusion import fusion_of_bundle
from astro_exp.predict.scorecard import Scorecard, score_labelled, score_probabilities
from astro_exp.predict.texts import MetadataSpec, read_texts

log = logging.getLogger(__name__)


def held_out(
    rows: Sequence[LabelRow], folds: int, fold: int, one_per_animation: bool = True
) -> list[LabelRow]:
    """The labelled pictures of fold ``fold``.

    ``one_per_animation``: the first listed frame of an animation (``X-0.jpg``, ``X-1.jpg``,
    ...) stands for all of them, as the training sources count one frame: near-identical
    frames scored one by one make one picture weigh 30 times (on the shared thumbnails one
    31-frame comet animation, flipping between two classes from one run to the next, moved a
    fold's accuracy by 0.12). False: every frame."""
    out = [r for r in rows if fold_of(r.file, folds) == fold]
    return first_frames(out) if one_per_animation else out


def train_fold(
    overrides: Sequence[str], folds: int, fold: int, run_dir: Path
) -> tuple[Path, float]:
    """Train one fold in a fresh interpreter; returns (best.pt, wall seconds)."""
    best = run_dir / "checkpoints" / "best.pt"
    if best.is_file() and (run_dir / "metrics.json").is_file():
        log.info("fold %d: %s exists, not training again", fold, best)
        return best, float("nan")
    cmd = [
        sys.executable,
        "-m",
        "astro_exp.cli.train",
        *overrides,
        f"data.folds={folds}",
        f"data.fold={fold}",
        f"hydra.run.dir={run_dir}",
        "logger=none",
    ]
    log.info("fold %d: %s", fold, " ".join(cmd[2:]))
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0 or not best.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(
            f"fold {fold} did not train (exit {done.returncode}): {tail[0]}; its log: {run_dir / 'train.log'}"
        )
    return best, wall


def _trained_with(run_dir: Path) -> list[str] | None:
    """The overrides a fold's run was trained with (its ``.hydra/overrides.yaml``): a folder
    scored again by a later call may have been trained with other overrides than that call's."""
    import yaml

    path = run_dir / ".hydra" / "overrides.yaml"
    return [str(o) for o in yaml.safe_load(path.read_text()) or []] if path.is_file() else None


def cross_validate(
    overrides: Sequence[str],
    labels: str | Path,
    root: str | Path,
    out_dir: str | Path,
    *,
    folds: int = 5,
    only: Sequence[int] | None = None,
    batch_size: int = 32,
    one_per_animation: bool = True,
    views: Sequence[str] = (),
    metadata: MetadataSpec | None = None,
) -> dict[str, Any]:
    """Train and score every fold (or the ``only`` ones); pooled figures over all held-out
    pictures, per-fold figures, and the training time of each fold. ``views``: the held-out
    pictures are scored again as each colour view shows them (``gray``, ``swap_rb``:
    :mod:`astro_exp.predict.colour_views`), pooled and per fold under ``views``. ``metadata``: the
    pictures' texts; the held-out pictures are then also labelled from text and picture
    together, each fold's fusion fitted on the other folds (:mod:`astro_exp.crossval.fused`),
    under ``fused``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = read_label_file(labels)
    pooled = _Pooled({v: {"per_fold": [], "probs": []} for v in views})
    for k in only if only is not None else range(folds):
        best, wall = train_fold(overrides, folds, k, out_dir / f"fold{k}")
        clf = Classifier.from_checkpoint(best, anomaly=False)
        fold_rows = held_out(rows, folds, k, one_per_animation)
        card = score_labelled(clf, fold_rows, root, batch_size=batch_size)
        _score_views(pooled, clf, k, fold_rows, root, batch_size)
        pooled.add(
            k, card, fold_rows, best, wall, clf.temperature, _trained_with(out_dir / f"fold{k}")
        )
        log.info(
            "fold %d: %d pictures, acc %.3f, macro-F1 %.3f",
            k,
            card.n,
            card.metrics["acc"],
            card.metrics["f1_macro"],
        )
    result = {
        "labels": str(labels),
        "folds": folds,
        "one_per_animation": one_per_animation,
        "overrides": list(overrides),
        **pooled.figures(),
    }
    texts = read_texts(metadata) if metadata is not None else {}
    if texts:
        fusion = fusion_of_bundle(clf.bundle)
        if fusion is None:
            log.warning("no text model fits classes %s: no fused figures", pooled.classes)
        else:
            result["fused"] = fused_figures(pooled.pictures, texts, fusion, pooled.classes)
    atomic_write(out_dir / "crossval.json", json.dumps(result, indent=2))
    return result


@dataclass
class _Pooled:
    """The folds' held-out pictures as they are scored: per-fold figures, the pooled
    probabilities and truth, and each view's (the truth is the pooled one: the same rows in
    the same order, as a picture that cannot be read fails in every view)."""

    by_view: dict[str, dict[str, list]]
    per_fold: list[dict[str, Any]] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)
    truth: list[int] = field(default_factory=list)
    pictures: list[dict[str, Any]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    def add(
        self,
        k: int,
        card: Scorecard,
        fold_rows: list[LabelRow],
        best: Path,
        wall: float,
        temperature: float,
        trained_with: list[str] | None,
    ) -> None:
        """Fold ``k``'s scorecard: its figures, and its pictures into the pooled ones."""
        self.classes = card.classes
        metrics = json.loads((best.parent.parent / "metrics.json").read_text())
        self.per_fold.append(
            {
                **card.metrics,
                "fold": k,
                "n": card.n,
                "train_s": wall,
                "fit_s": metrics.get("time/fit_s"),
                "temperature": temperature,
                "trained_with": trained_with,
                "within_classes": card.within_classes,
            }
        )
        index = {c: i for i, c in enumerate(self.classes)}
        every = {r.file: list(r.all) for r in fold_rows}
        for r in card.rows:
            self.probs.append(r["probs"])
            self.truth.append(index.get(r["label"], -1))
            self.pictures.append(
                {
                    "fold": k,
                    **{key: r[key] for key in ("file", "label", "prediction", "confidence")},
                    "all": every.get(r["file"], [r["label"]]),
                    "probs": r["probs"],
                }
            )

    def figures(self) -> dict[str, Any]:
        """The pooled and per-fold figures, each view's, and the pictures."""
        P, y = np.asarray(self.probs), np.asarray(self.truth)
        ece_raw = [f["ece_uncalibrated"] for f in self.per_fold]
        return {
            "classes": self.classes,
            "pooled": score_probabilities(P, y, self.classes),
            "ece_uncalibrated_mean": float(np.mean(ece_raw)) if ece_raw else float("nan"),
            "ece_calibrated_mean": float(np.mean([f["ece"] for f in self.per_fold]))
            if self.per_fold
            else float("nan"),
            "per_fold": self.per_fold,
            "views": {
                v: {
                    "pooled": score_probabilities(np.asarray(d["probs"]), y, self.classes),
                    "per_fold": d["per_fold"],
                }
                for v, d in self.by_view.items()
            },
            "pictures": self.pictures,
        }


def _score_views(
    pooled: _Pooled,
    clf: Classifier,
    k: int,
    fold_rows: list[LabelRow],
    root: str | Path,
    batch_size: int,
) -> None:
    """Fold ``k``'s held-out pictures scored again as each colour view shows them."""
    for v, d in pooled.by_view.items():
        seen = score_labelled(clf, fold_rows, root, batch_size=batch_size, view=v)
        d["per_fold"].append(
            {"fold": k, **{m: seen.metrics[m] for m in ("acc", "f1_macro", "ece")}}
        )
        d["probs"] += [r["probs"] for r in seen.rows]
