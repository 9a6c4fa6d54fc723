"""Stars: black-body colours, the PSF (Moffat core, halo, diffraction spikes), star fields,
the sky background, and the ``star`` class itself (fields, open and globular clusters, the
Milky Way).

Why the other renderers import this: every class has stars in front of or behind it, drawn
the same way, so the star field never gives a class away.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from astro_exp.sources.sky_render.primitives import (
    F32,
    TAU,
    Image,
    _fbm,
    _grid,
    _loguniform,
    _rgb,
    _to_px,
)

_LAMBDA = np.array([610e-9, 550e-9, 465e-9])  # effective R, G, B wavelengths (m)
_C2 = 1.4388e-2  # second radiation constant h c / k (m K)


def _star_rgb(temp: np.ndarray) -> np.ndarray:
    """Black-body colour at three wavelengths, paled as photographs show it."""
    b = _LAMBDA**-5 / np.expm1(_C2 / (_LAMBDA * temp[:, None]))
    rgb = b / b.max(axis=1, keepdims=True)
    return (0.4 + 0.6 * rgb).astype(F32)


def _field_temps(rng: np.random.Generator, count: int, young: bool = False) -> np.ndarray:
    """Mostly G/K stars, a few hot ones; ``young`` clusters are dominated by B/A stars."""
    if young:
        return 7000.0 + 16000.0 * rng.beta(1.2, 2.5, count)
    return 3000.0 + 10000.0 * rng.beta(1.3, 3.0, count)


def _power_law(
    rng: np.random.Generator, count: int, lo: float, hi: float, slope: float
) -> np.ndarray:
    """Peak brightnesses with N(>f) ~ f^-slope (a luminosity function), truncated at ``hi``."""
    a, b = lo**-slope, hi**-slope
    return ((a - rng.uniform(0.0, 1.0, count) * (a - b)) ** (-1.0 / slope)).astype(F32)


class _Psf(NamedTuple):
    """Point-spread function of one picture: every star in it shares the optics."""

    fwhm: float  # core FWHM in internal pixels
    beta: float  # Moffat wing exponent
    halo: float  # relative level of a wide scattered-light halo
    spike_angle: float | None  # diffraction spikes (secondary mirror vanes) or None
    spike: float  # spike strength relative to the peak


def _psf_for(rng: np.random.Generator, n: int, spikes: float = 0.5) -> _Psf:
    """Seeing and optics: sharper or softer stars, sometimes diffraction spikes."""
    return _Psf(
        fwhm=rng.uniform(2.0, 3.4) * (n / 128.0) ** 0.35,
        beta=rng.uniform(2.2, 4.0),
        halo=rng.uniform(0.004, 0.03),
        spike_angle=rng.uniform(0, math.pi / 2) if rng.uniform() < spikes else None,
        spike=rng.uniform(0.02, 0.07),
    )


def _stamp(
    img: Image,
    ys: np.ndarray,
    xs: np.ndarray,
    amp: np.ndarray,
    rgb: np.ndarray,
    psf: _Psf,
    radius: int,
    fancy: bool,
) -> None:
    """Adds point sources in place, all at once: one (N, k, k) stack of PSF stamps is
    scattered into the picture with ``np.bincount`` (no Python loop over stars)."""
    n = img.shape[0]
    iy, ix = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    off = np.arange(-radius, radius + 1)
    offf = off.astype(F32)
    dy = offf[None, :, None] - (ys - iy - 0.5).astype(F32)[:, None, None]
    dx = offf[None, None, :] - (xs - ix - 0.5).astype(F32)[:, None, None]
    r2 = dy * dy + dx * dx
    alpha = psf.fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / psf.beta) - 1.0))
    a2 = F32(alpha * alpha)
    prof = (1.0 + r2 / a2) ** F32(-psf.beta)
    if fancy:
        prof += psf.halo * (1.0 + r2 / (16.0 * a2)) ** F32(-1.5)
        if psf.spike_angle is not None:
            c, s = math.cos(psf.spike_angle), math.sin(psf.spike_angle)
            u, v = c * dx + s * dy, -s * dx + c * dy
            length = (psf.fwhm * (1.0 + 2.0 * np.sqrt(amp))).astype(F32)[:, None, None]
            w2 = F32((0.45 * psf.fwhm) ** 2)
            prof += psf.spike * (
                np.exp(-(v * v) / w2 - np.abs(u) / length)
                + np.exp(-(u * u) / w2 - np.abs(v) / length)
            )
    weight = prof * amp[:, None, None]
    rows = np.broadcast_to((iy[:, None] + off[None, :])[:, :, None], weight.shape)
    cols = np.broadcast_to((ix[:, None] + off[None, :])[:, None, :], weight.shape)
    ok = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    idx = (rows * n + cols)[ok]
    flat = img.reshape(-1, 3)
    for ch in range(3):
        w = (weight * rgb[:, ch, None, None])[ok]
        flat[:, ch] += np.bincount(idx, weights=w, minlength=n * n).astype(F32)


def _add_stars(
    img: Image, ys: np.ndarray, xs: np.ndarray, amp: np.ndarray, rgb: np.ndarray, psf: _Psf
) -> None:
    """Stamps stars in brightness tiers so faint ones get small, cheap stamps and bright
    ones big stamps with halo and spikes."""
    n = img.shape[0]
    ys, xs = np.asarray(ys, F32), np.asarray(xs, F32)
    tiers = ((0.0, 0.35, 2.2, False), (0.35, 2.5, 5.0, True), (2.5, np.inf, 0.0, True))
    for lo, hi, reach, fancy in tiers:
        sel = (amp >= lo) & (amp < hi)
        if not sel.any():
            continue
        if reach:
            radius = int(math.ceil(reach * psf.fwhm)) + 1
        else:
            radius = int(math.ceil(psf.fwhm * (3.0 + 4.0 * math.sqrt(float(amp[sel].max())))))
        radius = min(radius, n // 3)
        _stamp(img, ys[sel], xs[sel], amp[sel], rgb[sel], psf, radius, fancy)


def _star_field(
    img: Image,
    rng: np.random.Generator,
    count: int,
    psf: _Psf,
    lo: float = 0.015,
    hi: float = 6.0,
    slope: float = 0.8,
    ys: np.ndarray | None = None,
    xs: np.ndarray | None = None,
    young: bool = False,
    dim: float = 1.0,
) -> None:
    """A population of stars (uniform over the frame unless positions are given)."""
    n = img.shape[0]
    if ys is None or xs is None:
        ys = rng.uniform(0, n, count)
        xs = rng.uniform(0, n, count)
    count = len(ys)
    if count == 0:
        return
    amp = _power_law(rng, count, lo, hi, slope) * F32(dim)
    _add_stars(img, ys, xs, amp, _star_rgb(_field_temps(rng, count, young)), psf)


def _sky(rng: np.random.Generator, n: int, level: float | None = None) -> Image:
    """Sky background: a level, a colour cast (neutral, light pollution, airglow, blue)
    and a linear gradient, as in real frames."""
    y, x = _grid(n)
    level = _loguniform(rng, 0.003, 0.06) if level is None else level
    casts = (_rgb(1.0, 1.0, 1.0), _rgb(1.15, 0.95, 0.7), _rgb(0.85, 1.1, 0.85), _rgb(0.8, 0.9, 1.2))
    tint = casts[int(rng.integers(len(casts)))] * rng.uniform(0.9, 1.1, 3).astype(F32)
    ang, g = rng.uniform(0, TAU), rng.uniform(0.0, 0.6)
    field = F32(level) * (1.0 + F32(g) * (F32(math.cos(ang)) * x + F32(math.sin(ang)) * y))
    return field[..., None] * tint


def _blob(n: int, cy: float, cx: float, sy: float, sx: float, angle: float) -> np.ndarray:
    """Rotated elliptical Gaussian on the normalised grid."""
    y, x = _grid(n)
    c, s = math.cos(angle), math.sin(angle)
    dy, dx = y - cy, x - cx
    u, v = c * dx + s * dy, -s * dx + c * dy
    return np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


# -- star fields and clusters ---------------------------------------------------------------------
def _cluster(
    img: Image,
    rng: np.random.Generator,
    psf: _Psf,
    cy: float,
    cx: float,
    size: float,
    globular: bool,
) -> None:
    """An open (loose, few bright blue stars) or globular (dense Plummer sphere of old
    yellow stars, glowing unresolved core) cluster centred at (cy, cx)."""
    n = img.shape[0]
    if globular:
        count = int(rng.integers(300, 1100))
        a = size * rng.uniform(0.12, 0.25)
        u = rng.uniform(0.0, 1.0, count) * 0.995
        r = a / np.sqrt(u ** (-2.0 / 3.0) - 1.0)
        ang = rng.uniform(0, TAU, count)
        ys, xs = _to_px(cy + r * np.sin(ang), n), _to_px(cx + r * np.cos(ang), n)
        amp = _power_law(rng, count, 0.02, 2.0, 1.0)
        temp = np.where(
            rng.uniform(size=count) < 0.8,
            rng.uniform(3600, 5200, count),
            rng.uniform(7000, 11000, count),
        )
        _add_stars(img, ys, xs, amp, _star_rgb(temp), psf)
        y, x = _grid(n)
        core = 1.0 / (1.0 + ((y - cy) ** 2 + (x - cx) ** 2) / (a * a)) ** 2
        img += (core * F32(rng.uniform(0.02, 0.08)))[..., None] * _rgb(1.0, 0.88, 0.7)
    else:
        count = int(rng.integers(25, 120))
        sig = size * rng.uniform(0.2, 0.45)
        ys, xs = (
            _to_px(cy + rng.normal(0, sig, count), n),
            _to_px(cx + rng.normal(0, sig, count), n),
        )
        _star_field(img, rng, count, psf, lo=0.08, hi=8.0, slope=0.7, ys=ys, xs=xs, young=True)


def _milky_way(img: Image, rng: np.random.Generator) -> None:
    """Unresolved star light and dark dust of a Milky Way band behind a star field."""
    n = img.shape[0]
    y, x = _grid(n)
    ang = rng.uniform(0, math.pi)
    off = rng.uniform(-0.5, 0.5)
    band = np.exp(-(((math.cos(ang) * y - math.sin(ang) * x - off) / rng.uniform(0.3, 0.7)) ** 2))
    mottle = np.exp(0.4 * _fbm(rng, (n, n), 2.8))
    dust = np.exp(-np.clip(_fbm(rng, (n, n), 3.2, 2.5, ang) - 0.8, 0, None) * 1.0)
    img += (band * mottle * dust * F32(rng.uniform(0.015, 0.05)))[..., None] * _rgb(1.0, 0.92, 0.8)


def _star(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    psf = _psf_for(rng, n, spikes=0.5)
    style = rng.choice(3, p=[0.45, 0.3, 0.25])  # field, open cluster, globular cluster
    if style == 0:
        rich = rng.uniform() < 0.3
        if rich:
            _milky_way(img, rng)
        count = _loguniform(rng, 400, 1000) if rich else _loguniform(rng, 150, 600)
        _star_field(img, rng, int(count), psf, slope=rng.uniform(0.6, 1.0))
    else:
        _star_field(img, rng, int(_loguniform(rng, 60, 300)), psf, hi=3.0)
        cy, cx = rng.uniform(-0.3, 0.3, 2)
        _cluster(img, rng, psf, cy, cx, rng.uniform(0.6, 1.0), globular=style == 2)
    return img
