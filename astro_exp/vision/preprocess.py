"""Preprocessing as one ``nn.Module`` that runs on uint8 batches on the model's device.

The split into :meth:`Preprocess.prepare` (uint8 -> float in [0, 1], display stretch,
CLAHE, denoise) and :meth:`Preprocess.normalize` (mean/std) lets augmentation run in
between, on pictures that still look like pictures; ``forward`` does both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import kornia
import torch
from torch import nn

from astro_exp.errors import ConfigError

STRETCHES = (None, "asinh", "log")


class Preprocess(nn.Module):
    """uint8 (B, 3, H, W) -> normalised float (B, 3, H, W)."""

    def __init__(
        self,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        stretch: str | None = None,
        stretch_strength: float = 8.0,
        clahe: bool = False,
        clahe_clip_limit: float = 2.0,
        clahe_grid_size: Sequence[int] = (4, 4),
        denoise: bool = False,
        denoise_kernel: int = 3,
    ) -> None:
        super().__init__()
        if stretch not in STRETCHES:
            raise ConfigError(f"preprocess.stretch={stretch!r} is not one of {STRETCHES}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ConfigError("preprocess.mean/std need 3 values each, std > 0")
        if denoise and denoise_kernel % 2 == 0:
            raise ConfigError(f"preprocess.denoise_kernel={denoise_kernel} must be odd")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.stretch = stretch
        self.stretch_strength = float(stretch_strength)
        self.clahe = clahe
        self.clahe_clip_limit = float(clahe_clip_limit)
        self.clahe_grid_size = tuple(int(g) for g in clahe_grid_size)
        self.denoise = denoise
        self.denoise_kernel = int(denoise_kernel)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 -> float [0, 1] with the display stretch applied (what the model 'sees')."""
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if self.denoise:
            x = kornia.filters.median_blur(x, (self.denoise_kernel, self.denoise_kernel))
        if self.stretch == "asinh":
            a = self.stretch_strength
            x = torch.asinh(a * x) / torch.asinh(torch.tensor(a))
        elif self.stretch == "log":
            a = self.stretch_strength
            x = torch.log1p(a * x) / torch.log1p(torch.tensor(a))
        if self.clahe:
            x = kornia.enhance.equalize_clahe(
                x.clamp(0, 1), clip_limit=self.clahe_clip_limit, grid_size=self.clahe_grid_size
            )
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.prepare(x))


def build_preprocess(cfg: Mapping) -> Preprocess:
    """Build from a ``conf/preprocess`` node (keys that only the cache uses are skipped)."""
    keys = (
        "mean",
        "std",
        "stretch",
        "stretch_strength",
        "clahe",
        "clahe_clip_limit",
        "clahe_grid_size",
        "denoise",
        "denoise_kernel",
    )
    kwargs = {k: cfg[k] for k in keys if k in cfg}
    for k in ("mean", "std", "clahe_grid_size"):
        if k in kwargs:
            kwargs[k] = tuple(kwargs[k])
    return Preprocess(**kwargs)
