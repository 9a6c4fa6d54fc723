"""Downscale a batch so its short side is ``size`` pixels (the trainer's low-resolution epochs).

Why: a CNN's cost grows with the pixels, so the first epochs at 160 px cost about half of
224 px ones (trainer.low_res). The network pools globally, so the same weights take both
sizes, and the last epochs at the full size let the weights and BatchNorm statistics settle
on what val, test and predict see.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from astro_exp.errors import ConfigError


class Downscale(nn.Module):
    """(B, C, H, W) float -> (B, C, h, w) with ``min(h, w) == size``, antialiased bilinear.

    Args:
        size: the short side after scaling; a batch already that small passes unchanged.

    Returns:
        The scaled batch (same dtype and device), aspect ratio kept.

    Example:
        >>> import torch
        >>> Downscale(160)(torch.rand(2, 3, 224, 320)).shape
        torch.Size([2, 3, 160, 229])
        >>> Downscale(256)(torch.rand(1, 3, 224, 224)).shape
        torch.Size([1, 3, 224, 224])
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        if int(size) < 32:
            raise ConfigError(f"trainer.low_res.size={size} must be >= 32 pixels")
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) <= self.size:
            return x
        scale = self.size / min(h, w)
        out = (max(self.size, round(h * scale)), max(self.size, round(w * scale)))
        return F.interpolate(x, size=out, mode="bilinear", antialias=True, align_corners=False)
