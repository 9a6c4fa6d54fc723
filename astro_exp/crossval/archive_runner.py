"""The archive study's runner: fits the probe of each row and scores it.

Why a class: the fused targets (a cross-fitted probe per round over ~8,000 pictures) and the
EM text model are the same for every row at one resize policy, so the :class:`Runner` keeps
them; it also keeps each row's predictions on the scored thumbnails for the paired bootstrap
of the table (:func:`~astro_exp.crossval.archive_report.paired_bootstrap`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from astro_exp.crossval.archive_fit import (
    CROSSFIT_FOLDS,
    Probe,
    calibrate,
    class_weights,
    fit_probe,
    one_hot,
    tempered,
)
from astro_exp.crossval.archive_pool import Study
from astro_exp.crossval.archive_rows import Row
from astro_exp.crossval.archive_targets import apod4_fusion, em_text_model, fused_targets
from astro_exp.data.splits import fold_of
from astro_exp.predict.fusion import TextModel
from astro_exp.predict.scorecard import score_probabilities

log = logging.getLogger(__name__)


def score(probs: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict[str, float]:
    m = score_probabilities(probs, truth, classes)
    keep = ["acc", "f1_macro", "ece"] + [f"f1/{c}" for c in classes]
    return {k: round(float(m[k]), 4) for k in keep}


class Runner:
    """Runs rows over one :class:`Study`, caching the expensive fused targets."""

    def __init__(self, study: Study, l2: float, label_noise: float) -> None:
        self.s = study
        self.l2 = l2
        self.noise = label_noise
        self._fused: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._em: dict[str, TextModel] = {}
        self.preds: dict[str, np.ndarray] = {}  # row name -> thumbnails' predicted class

    def fused(self, policy: str, kind: str, rounds: int) -> tuple[np.ndarray, np.ndarray]:
        key = (policy, kind, rounds)
        if key not in self._fused:
            rows = np.flatnonzero(self.s.pool & ~self.s.val)
            t0 = time.time()
            self._fused[key] = fused_targets(
                self.s, self.s.arch_feats[policy][rows], rows, kind, rounds, self.l2, self.noise
            )
            log.info("fused targets %s: %.0f s", key, time.time() - t0)
        return self._fused[key]

    def em_text(self, policy: str) -> TextModel:
        """The text model EM fits on the training rows (pool - val) with their round-1
        held-out picture probabilities: no careful label anywhere."""
        if policy not in self._em:
            rows = np.flatnonzero(self.s.pool & ~self.s.val)
            _, picture = self.fused(policy, "em", 1)
            self._em[policy] = em_text_model(self.s, picture, rows)
        return self._em[policy]

    def targets(self, row: Row, rows: np.ndarray) -> np.ndarray:
        """(len(rows), C) targets of the training rows ``rows`` (a subset of pool - val)."""
        s, c = self.s, len(self.s.classes)
        t = row.targets
        if t == "weak":
            return one_hot(s.arch.weak[rows], c)
        if t.startswith("soft-text-"):
            fusion = apod4_fusion(s.classes)
            text = fusion.text if t == "soft-text-default" else self.em_text(row.train_policy)
            scores = [s.arch.scores[i] for i in rows]
            has = fusion.has_evidence(scores)
            out = one_hot(s.arch.weak[rows], c).astype(float)
            out[has] = text.proba(text.features(scores)[has])
            return out
        if t.startswith("fused-"):
            # fused-<default|em>-<hard|soft>-r<rounds>
            parts = t.split("-")
            kind, mode, rounds = parts[1], parts[2], int(parts[3][1:])
            fused, _ = self.fused(row.train_policy, kind, rounds)
            all_rows = np.flatnonzero(s.pool & ~s.val)
            pos = {r: k for k, r in enumerate(all_rows)}
            f = fused[[pos[r] for r in rows]]
            out = f if mode == "soft" else one_hot(f.argmax(1), c)
            return out
        raise ValueError(f"unknown targets {t!r}")

    def run(self, row: Row) -> dict[str, Any]:
        s = self.s
        t0 = time.time()
        mask = s.pool & ~s.val
        if row.keep is not None:
            mask &= row.keep(s)
        rows = np.flatnonzero(mask)
        X = s.arch_feats[row.train_policy][rows]
        T = self.targets(row, rows)
        w = np.ones(len(rows)) if row.weights is None else row.weights(s, rows)
        if row.class_weight_power:
            w = w * class_weights(T.argmax(1), len(s.classes), row.class_weight_power)
        probe = fit_probe(X, T, w, self.l2 if row.l2 is None else row.l2)
        vrows = np.flatnonzero(s.val)
        calibrate(probe, s.arch_feats[row.train_policy][vrows], s.arch.weak[vrows], self.noise)
        return self._report(row, probe, len(rows), T, time.time() - t0)

    def _report(
        self, row: Row, probe: Probe, n: int, T: np.ndarray, seconds: float
    ) -> dict[str, Any]:
        s = self.s
        Xt = s.thumb_feats[row.test_policy][s.test_idx]
        raw = probe.proba(Xt, calibrated=False)
        cal = probe.proba(Xt)
        m = score(cal, s.test_truth, s.classes)
        self.preds[row.name] = cal.argmax(1)
        m["ece_raw"] = round(float(score(raw, s.test_truth, s.classes)["ece"]), 4)
        m["temperature"] = round(probe.temperature, 3)
        return {
            "name": row.name,
            "lever": row.lever,
            "train_policy": row.train_policy,
            "test_policy": row.test_policy,
            "n_train": int(n),
            "train_class_counts": {
                c: round(float(v), 1) for c, v in zip(s.classes, T.sum(0), strict=True)
            },
            "gold_in_targets": row.gold_in_targets,
            "note": row.note,
            **m,
            **self._other_cameras(probe, row.test_policy),
            "seconds": round(seconds, 1),
        }

    def _other_cameras(self, probe: Probe, policy: str) -> dict[str, Any]:
        """The 65 smart-telescope pictures: accuracy (argmax over all five classes) and what
        the star-cluster pictures are called."""
        s = self.s
        pred = probe.proba(s.other_feats[policy]).argmax(1)
        c = len(s.classes)
        is_star = s.other_truth == s.classes.index("star")
        return {
            "other_cameras_acc": round(float((pred == s.other_truth).mean()), 4),
            # the 33 star-cluster pictures called galaxy/nebula/planet/star/other
            "other_cameras_star_as": "/".join(
                str(int(k)) for k in np.bincount(pred[is_star], minlength=c)
            ),
            "other_cameras_confusion": np.bincount(s.other_truth * c + pred, minlength=c * c)
            .reshape(c, c)
            .tolist(),
        }

    def reference(self, name: str, labels: str, policy: str) -> dict[str, Any]:
        """The thumbnails themselves, 5-fold cross-fitted (fold = hash of the group key), on
        their weak labels or (``gold``: the ceiling of better labels) gold.csv's."""
        s = self.s
        X = s.thumb_feats[policy][s.test_idx]
        y = s.test_weak if labels == "weak" else s.test_truth
        c = len(s.classes)
        fold = np.array([fold_of(f, CROSSFIT_FOLDS) for f in s.test_files])
        logits = np.zeros((len(X), c))
        for k in range(CROSSFIT_FOLDS):
            p = fit_probe(X[fold != k], one_hot(y[fold != k], c), None, self.l2)
            logits[fold == k] = p.logits(X[fold == k])
        cal, t = tempered(logits, s.test_weak, self.noise)
        m = score(cal, s.test_truth, s.classes)
        self.preds[name] = cal.argmax(1)
        return {
            "name": name,
            "lever": "reference (thumbnails, 5-fold cross-fit)",
            "train_policy": policy,
            "test_policy": policy,
            "n_train": int(round(len(X) * (CROSSFIT_FOLDS - 1) / CROSSFIT_FOLDS)),
            "gold_in_targets": labels == "gold",
            "note": "gold.csv labels as targets: the ceiling, not a recipe"
            if labels == "gold"
            else "the thumbnails' own weak labels, held-out folds",
            **m,
            "temperature": round(float(t), 3),
            **self._other_cameras(fit_probe(X, one_hot(y, c), None, self.l2), policy),
        }


L2_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def pick_l2(study: Study, policy: str) -> float:
    """The probe's penalty: the grid value whose probe, trained on the pool's weak labels, has
    the lowest NLL of the val split's weak labels (temperature 1). Chosen without gold.csv."""
    tr, va = np.flatnonzero(study.pool & ~study.val), np.flatnonzero(study.val)
    best, best_nll = L2_GRID[0], np.inf
    for l2 in L2_GRID:
        p = fit_probe(study.arch_feats[policy][tr], study.arch.weak[tr], None, l2)
        P = p.proba(study.arch_feats[policy][va], calibrated=False)
        nll = float(-np.log(np.clip(P[np.arange(len(va)), study.arch.weak[va]], 1e-12, 1)).mean())
        log.info(
            "l2=%g: val weak-label NLL %.4f, acc %.3f",
            l2,
            nll,
            (P.argmax(1) == study.arch.weak[va]).mean(),
        )
        if nll < best_nll:
            best, best_nll = l2, nll
    return best


__all__ = ["L2_GRID", "Runner", "pick_l2", "score"]
