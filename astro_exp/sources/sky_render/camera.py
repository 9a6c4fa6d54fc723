"""The camera every picture goes through last: area-averaged down to the asked size, then a
random exposure, vignetting, shot and read noise, white balance and display stretch.

Why random: so mean colour and brightness do not give the class away.
"""

from __future__ import annotations

import math

import numpy as np

from astro_exp.sources.sky_render.primitives import F32, Image, _grid, _loguniform


def _finish(img: Image, rng: np.random.Generator, size: int, astro: bool = True) -> np.ndarray:
    """Area-average to ``size`` (anti-aliasing), then a random camera: exposure, vignetting,
    shot and read noise, white balance, sometimes monochrome, and a display stretch."""
    f = img.shape[0] // size
    img = img.reshape(size, f, size, f, 3).mean(axis=(1, 3), dtype=F32)
    if not astro:  # a photograph: exposure, white balance, gamma and a little noise
        img = img * F32(math.exp(rng.normal(0, 0.15))) * rng.uniform(0.9, 1.1, 3).astype(F32)
        img = np.clip(img, 0, 1) ** F32(rng.uniform(0.8, 1.25))
        img = img + rng.standard_normal(img.shape, dtype=F32) * F32(rng.uniform(0.0, 0.02))
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    img = img * F32(math.exp(rng.normal(0, 0.25)))
    if rng.uniform() < 0.4:
        y, x = _grid(size)
        img = img * (1.0 - F32(rng.uniform(0.1, 0.4)) * (x * x + y * y) / 2)[..., None]
    read, shot = rng.uniform(0.002, 0.02), rng.uniform(0.0, 0.01)
    sigma = np.sqrt(F32(read * read) + F32(shot) * np.clip(img, 0, None))
    img = img + sigma * rng.standard_normal(img.shape, dtype=F32)
    img = img * rng.uniform(0.8, 1.2, 3).astype(F32)
    if rng.uniform() < 0.07:  # monochrome frame
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2) * rng.uniform(
            0.9, 1.1, 3
        ).astype(F32)
    img = np.clip(img - F32(rng.uniform(0.0, 0.01)), 0, None)
    if rng.uniform() < 0.5:
        a = _loguniform(rng, 2.0, 20.0)
        img = np.arcsinh(F32(a) * img) / F32(math.asinh(a))
    else:
        img = img ** F32(1.0 / rng.uniform(1.6, 2.6))
    img = img * F32(rng.uniform(0.85, 1.15))
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
