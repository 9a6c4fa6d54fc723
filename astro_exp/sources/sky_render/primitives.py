"""Coordinates, noise fields and profiles that every renderer draws with.

Why in one place: the pictures depend on these bit for bit (the tensor cache keys on
``RENDER_VERSION``, not on the code), so there is one copy of each. The cached coordinate
grids are read-only: a renderer that wrote into one would change every later picture.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

F32 = np.float32
Image = np.ndarray  # (n, n, 3) float32 linear light; 1.0 is about "white" after the stretch
TAU = 2.0 * math.pi


def _rgb(r: float, g: float, b: float) -> np.ndarray:
    return np.array([r, g, b], F32)


# -- shared helpers -------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1] (y down, x right), cached and read-only."""
    c = (np.arange(n, dtype=F32) + 0.5) * F32(2.0 / n) - F32(1.0)
    y = np.repeat(c[:, None], n, axis=1)
    x = np.repeat(c[None, :], n, axis=0)
    y.flags.writeable = False
    x.flags.writeable = False
    return y, x


@lru_cache(maxsize=32)
def _kgrid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies of an rfft2 of an (h, w) field."""
    fy = np.fft.fftfreq(h).astype(F32)[:, None]
    fx = np.fft.rfftfreq(w).astype(F32)[None, :]
    return fy, fx


def _fbm(
    rng: np.random.Generator,
    shape: tuple[int, int],
    beta: float,
    stretch: float = 1.0,
    angle: float = 0.0,
) -> np.ndarray:
    """Gaussian random field with a 1/f^beta power spectrum (spectral synthesis of fBm),
    standardised to mean 0 and std 1. ``stretch`` > 1 elongates the structures along
    ``angle`` (filaments, zonal bands). It wraps around, which the maps of planets use."""
    h, w = shape
    fy, fx = _kgrid(h, w)
    if stretch != 1.0:
        c, s = math.cos(angle), math.sin(angle)
        fa, fb = c * fx + s * fy, -s * fx + c * fy
        f2 = (fa * stretch) ** 2 + fb**2
    else:
        f2 = fx**2 + fy**2
    f2 = np.maximum(f2, F32(1.0 / max(h, w) ** 2))
    noise = rng.standard_normal(shape, dtype=F32)
    spec = np.fft.rfft2(noise) * (f2 ** F32(-beta / 4))
    spec[0, 0] = 0
    field = np.fft.irfft2(spec, s=shape).astype(F32)
    return field / (field.std() + F32(1e-8))


def _fbm1d(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """1-D version of ``_fbm`` (horizons, aurora curtains), std 1."""
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spec = np.fft.rfft(rng.standard_normal(n)) * f ** (-beta / 2)
    spec[0] = 0
    line = np.fft.irfft(spec, n=n).astype(F32)
    return line / (line.std() + F32(1e-8))


def _smooth(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """Smoothstep from 0 at ``a`` to 1 at ``b``: soft edges without aliasing."""
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bright_level(img: Image) -> F32:
    """About the 99th percentile of the brightest channel (on a subsample: cheap), so
    lumpy log-normal fields can be scaled to a sane peak without one hot pixel ruling."""
    v = img.max(axis=-1).ravel()[::7]
    k = int(0.99 * (v.size - 1))
    return F32(max(float(np.partition(v, k)[k]), 1e-6))


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _to_px(v: np.ndarray | float, n: int) -> np.ndarray | float:
    """Normalised coordinate in [-1, 1] -> pixel coordinate in [0, n)."""
    return (v + 1.0) * (n / 2.0)


def _sersic(r: np.ndarray, re: float, n_s: float, soft: float) -> np.ndarray:
    """Sersic profile I(r) / I(re), softened at the centre so the cusp stays finite."""
    b = 2.0 * n_s - 1.0 / 3.0 + 0.009876 / n_s
    rr = np.sqrt(r * r + soft * soft) / re
    return np.exp(-b * (rr ** F32(1.0 / n_s) - 1.0))
