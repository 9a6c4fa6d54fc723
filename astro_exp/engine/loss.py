"""The training loss: cross-entropy with class weights and label smoothing (multiclass) or
binary cross-entropy on every label (multilabel), and MixUp's blends scored against both
pictures' labels (``astro_exp.vision.mixup``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from astro_exp.errors import ConfigError

log = logging.getLogger(__name__)


def class_weights(
    targets: np.ndarray, classes: Sequence[str], power: float, device: torch.device
) -> torch.Tensor | None:
    """Cross-entropy weights ``(n / n_c) ** power`` over the train split's class ids.

    Why: real APOD days are 50% "other" and 5% star clusters; without weights the rare
    classes hardly move the loss. ``power`` 1 balances fully, 0.5 half-way, 0 is off."""
    if power == 0.0:
        return None
    if power < 0:
        raise ConfigError(f"trainer.class_weight_power={power} must be >= 0")
    counts = np.bincount(targets.astype(np.int64), minlength=len(classes)).astype(np.float64)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1) / len(classes)) ** power, 0.0)
    log.info(
        "class weights: %s", ", ".join(f"{c} {v:.2f}" for c, v in zip(classes, w, strict=True))
    )
    return torch.tensor(w, dtype=torch.float32, device=device)


class Criterion:
    """``criterion(logits, y, mix=None)``: the mean loss of a batch. ``mix = (pair, lam)``
    from :class:`~astro_exp.vision.mixup.MixUp` weighs picture ``i``'s label by ``1 - lam[i]``
    and its partner ``pair[i]``'s by ``lam[i]``; ``lam`` 0 is the plain loss."""

    def __init__(
        self, task: str, label_smoothing: float, class_weights: torch.Tensor | None
    ) -> None:
        self.task = task
        self.label_smoothing = float(label_smoothing)
        self.class_weights = class_weights

    def __call__(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        mix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        logits = logits.float()
        if self.task == "multiclass":
            return self._cross_entropy(logits, y, mix)
        target = y.float()
        if mix is not None:
            pair, lam = mix
            target = (1 - lam[:, None]) * target + lam[:, None] * target[pair]
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return F.binary_cross_entropy_with_logits(logits, target)

    def _cross_entropy(
        self, logits: torch.Tensor, y: torch.Tensor, mix: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        w, smoothing = self.class_weights, self.label_smoothing
        if mix is None:
            return F.cross_entropy(logits, y, weight=w, label_smoothing=smoothing)
        pair, lam = mix
        own, other = (
            F.cross_entropy(logits, t, weight=w, label_smoothing=smoothing, reduction="none")
            for t in (y, y[pair])
        )
        # the weighted mean, as cross_entropy's own: divided by the blends' weights
        den = (1 - lam) * w[y] + lam * w[y[pair]] if w is not None else torch.ones_like(lam)
        return ((1 - lam) * own + lam * other).sum() / den.sum()
