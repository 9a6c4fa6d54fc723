"""The archive study's fused targets: text and picture together label the pool.

Why: the weak labels read the archive's older texts worse (issue #22); fusing each text with
the probe's held-out picture probabilities (:class:`~astro_exp.predict.fusion.Fusion`) gives
targets that the text and the picture agree on. ``default`` fuses with the label config's
shipped text model (fitted on gold.csv: the study's table flags those rows); ``em`` fits the
text model by EM on the pool with no careful label. :func:`write_labels` writes the winning
scheme's labels for ``source.targets=fused`` (:mod:`astro_exp.sources.archive`).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.crossval.archive_fit import crossfit, one_hot
from astro_exp.crossval.archive_pool import Study
from astro_exp.data.labels import load_label_config
from astro_exp.files import atomic_write
from astro_exp.predict.fusion import Fusion, TextModel, default_fusion, fit_em

log = logging.getLogger(__name__)


def apod4_fusion(classes: list[str]) -> Fusion:
    """The ``apod4`` label config's shipped fusion (its text model fitted on gold.csv)."""
    fusion = default_fusion(load_label_config("apod4"), classes)
    assert fusion is not None
    return fusion


def em_text_model(study: Study, picture: np.ndarray, rows: np.ndarray) -> TextModel:
    """The text model EM fits on archive ``rows``' texts and their picture probabilities
    ``picture``: no careful label anywhere."""
    fusion = apod4_fusion(study.classes)
    scores = [study.arch.scores[i] for i in rows]
    has = fusion.has_evidence(scores)
    feats = fusion.text.features(scores)
    model, _ = fit_em(picture[has], feats[has], study.classes, fitted_on="archive EM")
    return model


def text_fusion(study: Study, kind: str, picture: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Fused probabilities of archive ``rows``: their picture probabilities and their texts.

    ``default``: the label config's shipped text model (fitted on gold.csv; flagged in the
    table); ``em``: a text model fitted by EM on these rows with no careful label. A text that
    names no class keeps the picture's probabilities."""
    fusion = apod4_fusion(study.classes)
    scores = [study.arch.scores[i] for i in rows]
    feats = fusion.text.features(scores)
    has = fusion.has_evidence(scores)
    if kind == "em":
        fusion = Fusion(labeller=None, text=em_text_model(study, picture, rows), source="em")
    elif kind != "default":
        raise ValueError(kind)
    return fusion.combine(picture, feats, has)


def fused_targets(
    study: Study,
    X: np.ndarray,
    rows: np.ndarray,
    kind: str,
    rounds: int,
    l2: float,
    label_noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(fused probabilities (N, C), the held-out picture probabilities of the last round) of
    the pool rows ``rows``: cross-fit the probe on the current targets (round 1: weak), fuse
    its held-out probabilities with each text, repeat ``rounds`` times."""
    c = len(study.classes)
    weak = study.arch.weak[rows]
    T = one_hot(weak, c)
    ids = [study.arch.files[i] for i in rows]
    fused = picture = T
    for _ in range(rounds):
        picture = crossfit(X, T, ids, None, l2, label_noise, weak)
        fused = text_fusion(study, kind, picture, rows)
        T = one_hot(fused.argmax(1), c)
    return fused, picture


def write_labels(
    study: Study, path: Path, scheme: str, policy: str, l2: float, label_noise: float
) -> dict[str, Any]:
    """Label every picture of the pool (val too) by ``scheme`` (``fused-<default|em>-hard-r<k>``
    or ``weak``) and write ``file,label,weak,confidence`` for ``source.targets=fused``.

    The picture side is cross-fitted over the whole pool (each picture's probabilities come
    from a probe that never saw it), so a label is never the probe repeating itself."""
    rows = np.flatnonzero(study.pool)
    c = study.classes
    probs = _scheme_probs(study, rows, scheme, policy, l2, label_noise)
    label = probs.argmax(1)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file", "label", "weak", "confidence"])
            for k, i in enumerate(rows):
                w.writerow(
                    [
                        study.arch.files[i],
                        c[label[k]],
                        c[study.arch.weak[i]],
                        f"{probs[k].max():.3f}",
                    ]
                )

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    changed = int((label != study.arch.weak[rows]).sum())
    counts = {name: int(n) for name, n in zip(c, np.bincount(label, minlength=len(c)), strict=True)}
    log.info("wrote %s: %d pictures, %d relabelled, %s", path, len(rows), changed, counts)
    return {
        "file": str(path),
        "scheme": scheme,
        "policy": policy,
        "n": len(rows),
        "relabelled": changed,
        "counts": counts,
    }


def _scheme_probs(
    study: Study, rows: np.ndarray, scheme: str, policy: str, l2: float, label_noise: float
) -> np.ndarray:
    """(len(rows), C) probabilities of the pool ``rows`` under a ``--write-scheme``."""
    if scheme == "weak":
        return one_hot(study.arch.weak[rows], len(study.classes)).astype(float)
    parts = scheme.split("-")
    if len(parts) < 4 or parts[0] != "fused" or parts[2] != "hard":
        raise ValueError(f"--write-scheme {scheme!r}: use weak or fused-<default|em>-hard-r<k>")
    probs, _ = fused_targets(
        study,
        study.arch_feats[policy][rows],
        rows,
        parts[1],
        int(parts[3][1:]),
        l2,
        label_noise,
    )
    return probs


__all__ = [
    "apod4_fusion",
    "em_text_model",
    "fused_targets",
    "text_fusion",
    "write_labels",
]
