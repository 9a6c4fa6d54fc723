"""Flips, rotation and zoom as one affine warp a batch: the geometric augmentation of
``conf/augment`` (``_target_: astro_exp.vision.geometry.RandomFlipRotate``).

Why one op: a sky picture has no up, no left and no fixed scale, so training flips it
both ways, turns it through any angle and zooms a little. As separate Kornia ops that is
three passes over the batch, each drawing its parameters and building its matrices in
Python; on a CPU, where the model shares the cores with them, that is time the model
waits (``bench.py``'s ``train_parts_ms``). Here each picture's flip, rotation and zoom are
composed into one 2x3 matrix and the batch is resampled once (``affine_grid`` +
``grid_sample``). A pure flip samples exactly at pixel centres, so it is lossless as
Kornia's is; a rotation is bilinear with black corners, as Kornia's ``RandomRotation``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from astro_exp.errors import ConfigError


class RandomFlipRotate(nn.Module):
    """Per picture: horizontal flip with probability ``hflip``, vertical flip with ``vflip``,
    with probability ``p_rotate`` a rotation by an angle uniform in ``[-degrees, degrees]``,
    and with probability ``p_zoom`` a zoom by a factor uniform in ``zoom`` (``(0.9, 1.1)``:
    up to 10 % in or out). Float (B, C, H, W) in, same shape out (as Kornia's, in any mode)."""

    def __init__(
        self,
        hflip: float = 0.5,
        vflip: float = 0.5,
        degrees: float = 180.0,
        p_rotate: float = 0.5,
        zoom: Sequence[float] = (1.0, 1.0),
        p_zoom: float = 0.0,
    ) -> None:
        super().__init__()
        for name, p in (
            ("hflip", hflip),
            ("vflip", vflip),
            ("p_rotate", p_rotate),
            ("p_zoom", p_zoom),
        ):
            if not 0.0 <= float(p) <= 1.0:
                raise ConfigError(f"augment: {name}={p} must be a probability in [0, 1]")
        if len(zoom) != 2 or not 0 < float(zoom[0]) <= float(zoom[1]):
            raise ConfigError(
                f"augment: zoom={list(zoom)} must be [low, high] with 0 < low <= high"
            )
        self.hflip, self.vflip = float(hflip), float(vflip)
        self.degrees, self.p_rotate = float(degrees), float(p_rotate)
        self.zoom, self.p_zoom = (float(zoom[0]), float(zoom[1])), float(p_zoom)

    def matrices(
        self, n: int, device: torch.device, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(n, 2, 3) output-to-input maps in ``affine_grid``'s normalised coordinates."""

        def draw(p: float) -> torch.Tensor:
            return torch.rand(n, device=device, generator=generator) < p

        angle = (torch.rand(n, device=device, generator=generator) * 2 - 1) * math.radians(
            self.degrees
        )
        angle = torch.where(draw(self.p_rotate), angle, torch.zeros_like(angle))
        lo, hi = self.zoom
        zoom = lo + (hi - lo) * torch.rand(n, device=device, generator=generator)
        zoom = torch.where(draw(self.p_zoom), zoom, torch.ones_like(zoom))
        sx = torch.where(draw(self.hflip), -1.0, 1.0).to(angle)
        sy = torch.where(draw(self.vflip), -1.0, 1.0).to(angle)
        return compose(angle, zoom, sx, sy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return x
        if x.shape[-1] != x.shape[-2]:
            raise ConfigError(
                f"RandomFlipRotate needs square pictures (the cache's), got {tuple(x.shape)}"
            )
        return warp(x, self.matrices(len(x), x.device))


def compose(
    angle: torch.Tensor, zoom: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor
) -> torch.Tensor:
    """(n, 2, 3) output-to-input maps: flip (``sx``, ``sy`` = -1 flips), rotate by ``angle``
    (radians), zoom by ``zoom``, in ``affine_grid``'s normalised coordinates (square pictures)."""
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    m = torch.zeros(len(angle), 2, 3, device=angle.device, dtype=angle.dtype)
    m[:, 0, 0], m[:, 0, 1] = cos * sx, -sin * sy
    m[:, 1, 0], m[:, 1, 1] = sin * sx, cos * sy
    return m


def warp(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Resample the batch ``x`` once through the maps ``m``: bilinear, black outside. With
    ``align_corners=False`` a flip lands exactly on pixel centres (lossless)."""
    grid = F.affine_grid(m.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
