"""MixUp on batches (Zhang et al. 2018): each picture blended with another of the batch.

Why: with few pictures and noisy weak labels, a network that must answer "70% this, 30% that"
on blends memorises single wrong labels less. Kornia's ``RandomMixUpV2`` does the sampling and
blending; it is given each picture's *index* as its label, so what comes back is the pairing
and the blend weight, and the trainer mixes any target (class ids or multi-hot rows) with it.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn

from astro_exp.errors import ConfigError


class MixUp(nn.Module):
    """``forward(x) -> (x_mixed, (pair, lam))``: ``x_mixed[i] = (1 - lam[i]) x[i] + lam[i] x[pair[i]]``;
    ``(x, None)`` for a batch left as it is (the loss then is the plain one).

    ``p`` is the chance a batch is mixed at all (0 = off), ``lambda_max`` the largest blend
    weight of the partner (uniform in [0, lambda_max]).
    """

    def __init__(self, p: float = 0.0, lambda_max: float = 0.4) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"trainer.mixup.p={p} must be in [0, 1] (0: no MixUp)")
        if not 0.0 < lambda_max <= 0.5:
            raise ConfigError(
                f"trainer.mixup.lambda_max={lambda_max} must be in (0, 0.5]: the partner's "
                "largest share of a blend"
            )
        self.p = float(p)
        self.lambda_max = float(lambda_max)
        self._mix = (
            K.RandomMixUpV2(lambda_val=(0.0, self.lambda_max), p=1.0, data_keys=["input", "class"])
            if p
            else None
        )

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        if self._mix is None or x.shape[0] < 2 or torch.rand(()).item() >= self.p:
            return x, None
        mixed, pairs = self._mix(x, torch.arange(x.shape[0], device=x.device))
        return mixed, (pairs[:, 1].long(), pairs[:, 2].to(x.dtype))
