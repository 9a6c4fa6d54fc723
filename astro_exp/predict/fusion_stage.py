"""The fusion stage of a training run: which text model the bundle fuses with, written into
``best.pt`` (``bundle["fusion"]``) and the run summary (``fusion/*``).

Why in the run: the bundle is self-describing; ``predict``, the web app and the watcher read
the fusion from it, and a person can see from ``metrics.json`` which text model a run's
answers came from. ``fusion.source`` (``conf/fusion/default.yaml``):

- ``default``: the label config's shipped ``evidence`` block as it is;
- ``corrections``: the text model refitted to the person's corrections (the source's
  corrected pictures, clamped) and the run's held-out pictures (val + test, EM), when there
  are at least ``min_corrections`` of them; fewer: the default, and the summary says so;
- ``em``: no careful labels: the text model by EM over the held-out pictures' texts and
  calibrated picture probabilities;
- ``none``: the picture alone.

The fused figures are not scored against the run's own test labels: those are weak labels
the rules wrote from the same texts, so the text would be graded by itself. ``evaluate
metadata=`` and ``crossval`` score it against a person's labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from astro_exp.errors import ConfigError
from astro_exp.models.checkpoint import load_bundle, save_bundle
from astro_exp.predict.fusion import SOURCES, Fusion, default_fusion, fit_em

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionSettings:
    """``conf/fusion/default.yaml`` (the YAML is the only place its defaults live)."""

    source: str
    min_corrections: int
    em_iters: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> FusionSettings:
        d = dict(cfg or {"source": "default", "min_corrections": 50, "em_iters": 15})
        if d.get("source") not in SOURCES:
            raise ConfigError(
                f"fusion.source={d.get('source')!r} must be one of {', '.join(SOURCES)}"
            )
        if int(d.get("min_corrections", 0)) < 1:
            raise ConfigError(f"fusion.min_corrections={d.get('min_corrections')} must be >= 1")
        return cls(str(d["source"]), int(d["min_corrections"]), int(d.get("em_iters", 15)))


def _held_out_probs(trainer: Any, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated picture probabilities of val + test (pictures the model did not train on)
    and their item indices."""
    probs, index = [], []
    for split in ("val", "test"):
        logits, _, idx = trainer.predict_logits(split)
        z = logits.double().numpy() / temperature
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        probs.append(p / p.sum(1, keepdims=True))
        index.append(idx.numpy())
    return np.concatenate(probs), np.concatenate(index)


def fusion_stage(trainer: Any, settings: FusionSettings, label_cfg: Any) -> dict[str, Any]:
    """Fit (or take) the run's fusion, store it in ``best.pt``; returns the ``fusion/*``
    summary."""
    if trainer.task != "multiclass":
        return {"fusion/source": "none"}
    classes = list(trainer.classes)
    fusion = None if label_cfg is None else default_fusion(label_cfg, classes)
    wanted, summary = settings.source, {}
    imageset = trainer.dm.imageset
    texts = imageset.meta.get("texts")
    corrected = np.asarray(imageset.meta.get("corrected") or [False] * len(imageset), bool)
    if wanted in ("em", "corrections") and (texts is None or fusion is None):
        log.warning("fusion.source=%s: the source keeps no texts or labels; the default", wanted)
        wanted = "default"
    if wanted == "corrections" and corrected.sum() < settings.min_corrections:
        log.info(
            "fusion.source=corrections: %d corrections (< fusion.min_corrections=%d); the default",
            int(corrected.sum()),
            settings.min_corrections,
        )
        summary["fusion/fell_back"] = 1.0
        wanted = "default"
    best_path = trainer.ckpt_dir / "best.pt"
    bundle = load_bundle(best_path)
    if wanted in ("em", "corrections") and fusion is not None and texts is not None:
        probs, idx = _held_out_probs(trainer, float(bundle.get("temperature") or 1.0))
        if wanted == "corrections":  # a corrected held-out picture counts once, as corrected
            keep = ~corrected[idx]
            probs, idx = probs[keep], idx[keep]
        rows = np.concatenate([idx, np.flatnonzero(corrected)])
        P = np.concatenate([probs, np.full((int(corrected.sum()), len(classes)), 1 / len(classes))])
        labels = np.full(len(rows), -1)
        if wanted == "corrections":
            targets = np.asarray(imageset.targets)
            labels[len(idx) :] = targets[np.flatnonzero(corrected)]
        else:
            rows, P, labels = rows[: len(idx)], P[: len(idx)], labels[: len(idx)]
        scores = fusion.scores([tuple(texts[i]) for i in rows])
        has = fusion.has_evidence(scores)
        X = fusion.text.features(scores)
        what = f"{imageset.name}: {int(has.sum())} texts" + (
            f", {int((labels[has] >= 0).sum())} corrections" if wanted == "corrections" else ""
        )
        tm, _ = fit_em(
            P[has], X[has], classes, labels=labels[has], iters=settings.em_iters, fitted_on=what
        )
        fusion = Fusion(
            fusion.labeller, tm, source=tm.source, fitted_on=what, label_config=fusion.label_config
        )
        summary["fusion/n_texts"] = float(has.sum())
    if wanted == "none" or fusion is None:
        bundle["fusion"] = {"source": "none"}
        summary["fusion/source"] = "none"
    else:
        bundle["fusion"] = fusion.to_dict()
        summary["fusion/source"] = fusion.source
    save_bundle(bundle, best_path)
    log.info("text fusion: %s", summary["fusion/source"])
    return summary


__all__ = ["FusionSettings", "fusion_stage"]
