"""Procedural sky pictures: the embedded default data set (no network, no files).

Why procedural: the project must train and test offline, so it carries its own pictures.
They have to be hard enough to be worth a CNN (varied shapes, noise, colour casts) yet
recognisable to a person looking at a contact sheet.

Four classes (``CLASSES``):

* galaxy -- spiral (Sersic bulge, exponential disk, 2-4 logarithmic arms with clumps,
  HII knots and reddening dust lanes, optional bar), elliptical (de Vaucouleurs-like, smooth)
  or lenticular (bulge + smooth disk, edge-on dust lane); random inclination and angle;
  foreground stars and faint background galaxies.
* nebula -- emission clouds from log-normal spectral-synthesis turbulence (H-alpha red,
  OIII teal, SII; natural or "Hubble" palette), absorbing dust lanes with bright ionised
  rims, shells (planetary nebulae, supernova remnants), blue reflection nebulae; stars
  behind the dust are dimmed and reddened.
* planet -- an orthographic sphere with Minnaert limb darkening and a phase (terminator),
  surface maps for Jupiter-, Saturn-, Mars-, Moon-, Earth- and ice-giant-like worlds, rings
  with a Cassini gap that hide behind the disk, cast a shadow on it and sit in its shadow.
* star -- fields and open/globular clusters: Moffat PSF with halo and diffraction spikes,
  power-law luminosity function, black-body colours.

Anomaly kinds (``ANOMALY_KINDS``, never trained on; the anomaly detector is scored on them):
comet, trail (satellites, aircraft, star trails), lens_flare, non_sky (daytime scenes,
patterns, toy shapes) and aurora (curtains above a horizon).

Every picture is rendered at twice the requested size in linear light and area-averaged
down (anti-aliasing); then a random exposure, vignetting, shot + read noise, white
balance and display stretch (asinh or gamma) are applied, so mean colour and brightness
do not give the class away. Everything is deterministic for a given ``np.random.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np

CLASSES: tuple[str, ...] = ("galaxy", "nebula", "planet", "star")
ANOMALY_KINDS: tuple[str, ...] = ("comet", "trail", "lens_flare", "non_sky", "aurora")
RENDER_VERSION: str = "2"

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


def _fbm(rng: np.random.Generator, shape: tuple[int, int], beta: float,
         stretch: float = 1.0, angle: float = 0.0) -> np.ndarray:  # fmt: skip
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


# -- stars ----------------------------------------------------------------------------------------
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


def _stamp(img: Image, ys: np.ndarray, xs: np.ndarray, amp: np.ndarray, rgb: np.ndarray,
           psf: _Psf, radius: int, fancy: bool) -> None:  # fmt: skip
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
            prof += psf.spike * (np.exp(-(v * v) / w2 - np.abs(u) / length)
                                 + np.exp(-(u * u) / w2 - np.abs(v) / length))  # fmt: skip
    weight = prof * amp[:, None, None]
    rows = np.broadcast_to((iy[:, None] + off[None, :])[:, :, None], weight.shape)
    cols = np.broadcast_to((ix[:, None] + off[None, :])[:, None, :], weight.shape)
    ok = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    idx = (rows * n + cols)[ok]
    flat = img.reshape(-1, 3)
    for ch in range(3):
        w = (weight * rgb[:, ch, None, None])[ok]
        flat[:, ch] += np.bincount(idx, weights=w, minlength=n * n).astype(F32)


def _add_stars(img: Image, ys: np.ndarray, xs: np.ndarray, amp: np.ndarray, rgb: np.ndarray,
               psf: _Psf) -> None:  # fmt: skip
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


def _star_field(img: Image, rng: np.random.Generator, count: int, psf: _Psf,
                lo: float = 0.015, hi: float = 6.0, slope: float = 0.8,
                ys: np.ndarray | None = None, xs: np.ndarray | None = None,
                young: bool = False, dim: float = 1.0) -> None:  # fmt: skip
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


# -- galaxy ---------------------------------------------------------------------------------------
def _galaxy_light(rng: np.random.Generator, n: int, cy: float, cx: float, scale: float,
                  spiral_p: float = 0.6) -> Image:  # fmt: skip
    """A galaxy centred at (cy, cx) whose disk reaches about ``scale`` (normalised units);
    ``spiral_p`` is the chance of a spiral (the rest: 5/8 elliptical, 3/8 lenticular)."""
    y, x = _grid(n)
    pa = rng.uniform(0, math.pi)
    c, s = math.cos(pa), math.sin(pa)
    dy, dx = (y - cy) / scale, (x - cx) / scale
    u, v = c * dx + s * dy, -s * dx + c * dy  # u: major axis, v: minor axis
    soft = 3.0 / (n * scale)
    rest = 1.0 - spiral_p
    kind = rng.choice(3, p=[spiral_p, rest * 0.625, rest * 0.375])  # spiral, elliptical, lenticular
    bulge_col = _rgb(1.0, 0.8, 0.55) * rng.uniform(0.92, 1.08, 3).astype(F32)
    if kind == 1:  # elliptical: smooth, round-ish, red core
        q = rng.uniform(0.45, 1.0)
        r = np.sqrt(u * u + (v / q) ** 2)
        re = rng.uniform(0.15, 0.35)
        prof = _sersic(r, re, rng.uniform(2.5, 5.0), soft) * F32(rng.uniform(0.12, 0.3))
        core = np.exp(-r / re)[..., None]
        img = prof[..., None] * (bulge_col * (1 - 0.25 * core) + _rgb(1.0, 0.7, 0.45) * 0.25 * core)
        m = int(rng.integers(0, 25))  # its globular clusters
        if m:
            rad = re * scale * rng.uniform(0.5, 4.0, m)
            ang = rng.uniform(0, TAU, m)
            gy = _to_px(cy + rad * np.sin(ang), n)
            gx = _to_px(cx + rad * np.cos(ang), n)
            amp = rng.uniform(0.03, 0.12, m).astype(F32)
            _add_stars(img, gy, gx, amp, np.tile(_rgb(1.0, 0.85, 0.65), (m, 1)),
                       _Psf(2.0 * (n / 128) ** 0.35, 3.0, 0.0, None, 0.0))  # fmt: skip
        return img

    q = math.sqrt(rng.uniform(0.01, 1.0)) if kind == 0 else rng.uniform(0.1, 1.0)  # cos(i)
    vd = v / q
    r = np.sqrt(u * u + vd * vd) + F32(1e-3)
    h = rng.uniform(0.2, 0.32)
    disk = np.exp(-r / h)
    qb = q + (1.0 - q) * rng.uniform(0.5, 0.85)  # a bulge is rounder than its disk
    rb = np.sqrt(u * u + (v / qb) ** 2)
    bulge = _sersic(rb, rng.uniform(0.04, 0.12), rng.uniform(1.0, 4.0), soft)
    d_amp = rng.uniform(0.4, 0.9)
    b_amp = d_amp * rng.uniform(0.15, 0.8) * (2.5 if kind == 2 else 1.0)
    tau = np.zeros_like(r)
    if kind == 0:  # spiral
        phi = np.arctan2(vd, u)
        m = int(rng.choice([2, 2, 2, 3, 4]))
        k = (1.0 if rng.uniform() < 0.5 else -1.0) / math.tan(math.radians(rng.uniform(13, 32)))
        theta0 = rng.uniform(0, TAU)
        flocc = _fbm(rng, (n, n), 2.8)
        wind = m * (phi - k * np.log(r) - theta0) + F32(rng.uniform(0.2, 0.9)) * flocc
        sharp = rng.uniform(1.5, 4.5)
        arm = (0.5 + 0.5 * np.cos(wind)) ** F32(sharp)
        bar_len = rng.uniform(0.15, 0.35) if rng.uniform() < 0.3 else 0.0
        ramp = _smooth(r, 0.04 + 0.6 * bar_len, 0.2 + bar_len)
        clumps = np.exp(F32(rng.uniform(0.3, 0.6)) * _fbm(rng, (n, n), 2.2))
        arm_light = disk * ramp * arm * clumps * F32(rng.uniform(0.8, 2.0))
        smooth_disk = disk * (1.0 - F32(rng.uniform(0.2, 0.7)) * ramp)
        img = smooth_disk[..., None] * _rgb(0.9, 0.88, 0.95) + arm_light[..., None] * _rgb(
            0.62, 0.75, 1.0
        )
        if bar_len:
            ba = rng.uniform(0, math.pi)
            bu = math.cos(ba) * u + math.sin(ba) * vd
            bv = -math.sin(ba) * u + math.cos(ba) * vd
            bar = np.exp(-((bu / bar_len) ** 2 + (bv / (0.3 * bar_len)) ** 2))
            img += (bar * F32(rng.uniform(0.4, 0.9)))[..., None] * _rgb(1.0, 0.85, 0.65)
        dust_shift = math.copysign(rng.uniform(0.5, 1.0), k)
        lanes = (0.5 + 0.5 * np.cos(wind - dust_shift)) ** F32(sharp * 1.5)
        tau += F32(rng.uniform(0.3, 1.2)) * lanes * ramp * np.exp(-r / (2.5 * h))
        img *= F32(d_amp)
    else:  # lenticular: bulge plus a smooth featureless disk
        img = (disk * F32(d_amp * 0.7))[..., None] * _rgb(1.0, 0.88, 0.72)
    if q < 0.4 and rng.uniform() < 0.8:  # edge-on: a dust lane along the mid-plane
        lane_off = rng.uniform(-0.05, 0.05) * q
        lane_w = rng.uniform(0.015, 0.04)
        tau += (
            F32(rng.uniform(0.8, 2.5) * (1.0 - q))
            * np.exp(-(((v - lane_off) / lane_w) ** 2))
            * _smooth(-np.abs(u), -1.0, -0.5)
        )
    redden = np.exp(-tau[..., None] * _rgb(0.75, 1.0, 1.3))
    img = img * redden + (bulge * F32(b_amp))[..., None] * bulge_col * np.sqrt(redden)
    if kind == 0 and rng.uniform() < 0.75:  # HII regions strung along the arms
        cnt = int(rng.integers(8, 40))
        rk = rng.uniform(0.12, 0.75, cnt)
        arm_i = rng.integers(0, m, cnt)
        ph = theta0 + k * np.log(rk) + TAU * arm_i / m + rng.normal(0, 0.12, cnt)
        ku, kv = rk * np.cos(ph), rk * np.sin(ph) * q
        ky = _to_px(cy + (s * ku + c * kv) * scale, n)
        kx = _to_px(cx + (c * ku - s * kv) * scale, n)
        amp = (d_amp * rng.uniform(0.1, 0.6, cnt) * np.exp(-rk / (3 * h))).astype(F32)
        pink = rng.uniform(size=cnt) < 0.6
        rgb = np.where(pink[:, None], _rgb(1.0, 0.45, 0.7), _rgb(0.65, 0.8, 1.0)).astype(F32)
        knot = _Psf(rng.uniform(1.2, 2.4) * (n / 128) * scale, 2.5, 0.0, None, 0.0)  # physical size
        _add_stars(img, ky, kx, amp, rgb, knot)
    return img


def _background_galaxies(img: Image, rng: np.random.Generator, count: int) -> None:
    """Faint distant galaxies: tiny elongated smudges that make a deep field look real."""
    n = img.shape[0]
    for _ in range(count):
        cy, cx = rng.uniform(-0.95, 0.95, 2)
        sz = rng.uniform(2.0, 5.0) / n
        blob = _blob(n, cy, cx, sz * rng.uniform(0.3, 1.0), sz, rng.uniform(0, math.pi))
        img += (blob * F32(rng.uniform(0.02, 0.08)))[..., None] * _rgb(1.0, 0.85, 0.7)


def _galaxy(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    psf = _psf_for(rng, n, spikes=0.4)
    _star_field(img, rng, int(rng.integers(5, 40)), psf, hi=3.0, slope=1.0)
    _background_galaxies(img, rng, int(rng.integers(0, 6)))
    cy, cx = rng.uniform(-0.2, 0.2, 2)
    img += _galaxy_light(rng, n, cy, cx, rng.uniform(0.75, 1.3))
    return img


# -- nebula ---------------------------------------------------------------------------------------
_PALETTES = {  # (H-alpha, OIII, SII) display colours
    "natural": (_rgb(1.0, 0.2, 0.28), _rgb(0.2, 0.8, 0.85), _rgb(0.85, 0.1, 0.2)),
    "hubble": (_rgb(0.7, 0.55, 0.15), _rgb(0.15, 0.4, 0.9), _rgb(0.8, 0.25, 0.08)),
    "hydrogen": (_rgb(1.0, 0.3, 0.35), _rgb(0.9, 0.45, 0.6), _rgb(0.8, 0.15, 0.25)),
}


def _nebula_light(rng: np.random.Generator, n: int, cy: float, cx: float,
                  extent: float) -> tuple[Image, np.ndarray]:  # fmt: skip
    """Emission (linear light) and dust optical depth of a nebula around (cy, cx) spread
    over about ``extent``; the caller dims what lies behind by exp(-tau)."""
    y, x = _grid(n)
    pal = str(rng.choice(list(_PALETTES), p=[0.6, 0.28, 0.12]))
    ha_c, o3_c, s2_c = _PALETTES[pal]
    kind = rng.choice(3, p=[0.62, 0.24, 0.14])  # cloud, shell, reflection
    gain = F32(rng.uniform(0.5, 1.0))
    if kind == 0:  # HII region: lumpy envelope, turbulent gas, filaments
        env = np.zeros((n, n), F32)
        for _ in range(int(rng.integers(1, 4))):
            by, bx = cy + rng.normal(0, 0.3 * extent), cx + rng.normal(0, 0.3 * extent)
            sz = extent * rng.uniform(0.4, 0.9)
            env += _blob(n, by, bx, sz * rng.uniform(0.5, 1.0), sz, rng.uniform(0, math.pi))
        env /= env.max() + F32(1e-6)
        f1 = _fbm(
            rng, (n, n), rng.uniform(2.6, 3.4), rng.uniform(1.0, 2.5), rng.uniform(0, math.pi)
        )
        ha = env * np.exp(F32(rng.uniform(0.6, 1.1)) * f1)
        ridge = (1.0 - np.abs(_fbm(rng, (n, n), 3.0)) / 2.5).clip(0, 1) ** F32(8)
        ha += env * ridge * F32(rng.uniform(0.3, 1.2))
        core = env ** F32(rng.uniform(2.0, 4.0))
        o3 = core * np.exp(F32(0.7) * (0.6 * f1 + 0.8 * _fbm(rng, (n, n), 3.0)))
        s2 = ha * (0.4 + 0.3 * np.tanh(f1))
        emission = (ha * 0.55)[..., None] * ha_c + (o3 * F32(rng.uniform(0.2, 0.8)))[
            ..., None
        ] * o3_c
        emission += (s2 * 0.2)[..., None] * s2_c
    elif kind == 1:  # shell: planetary nebula or supernova remnant
        r0 = extent * rng.uniform(0.35, 0.65)
        ell = rng.uniform(0.7, 1.0)
        pa = rng.uniform(0, math.pi)
        c, s = math.cos(pa), math.sin(pa)
        u, v = c * (x - cx) + s * (y - cy), (-s * (x - cx) + c * (y - cy)) / ell
        rho = np.sqrt(u * u + v * v) / r0
        turb = _fbm(rng, (n, n), rng.uniform(2.4, 3.2))
        rho_t = rho * (1.0 + 0.08 * turb)
        width = rng.uniform(0.08, 0.25)
        shell = np.exp(-(((rho_t - 1.0) / width) ** 2)) * np.exp(0.5 * turb)
        inner = np.exp(-(rho_t**4)) * np.exp(0.4 * _fbm(rng, (n, n), 2.6))
        emission = (shell * 1.1)[..., None] * ha_c + (inner * F32(rng.uniform(0.3, 0.9)))[
            ..., None
        ] * o3_c
        env = np.exp(-0.5 * (rho / 1.3) ** 2)
        star = _Psf(2.4 * (n / 128) ** 0.35, 2.5, 0.02, None, 0.0)
        _add_stars(emission, np.array([_to_px(cy, n)]), np.array([_to_px(cx, n)]),
                   np.array([rng.uniform(0.5, 2.0)], F32), _rgb(0.8, 0.88, 1.0)[None], star)  # fmt: skip
    else:  # reflection nebula: blue dust lit by bright young stars
        env = np.zeros((n, n), F32)
        lit = np.zeros((n, n), F32)
        for _ in range(int(rng.integers(1, 4))):
            sy, sx = cy + rng.normal(0, 0.25 * extent), cx + rng.normal(0, 0.25 * extent)
            d = np.sqrt((y - sy) ** 2 + (x - sx) ** 2)
            lit += np.exp(-d / (extent * rng.uniform(0.25, 0.5)))
        env = lit / (lit.max() + F32(1e-6))
        dust = np.exp(
            F32(rng.uniform(0.7, 1.2))
            * _fbm(rng, (n, n), rng.uniform(2.6, 3.4), 1.5, rng.uniform(0, 3))
        )
        emission = (env * dust * 0.6)[..., None] * _rgb(0.45, 0.62, 1.0)
    emission *= gain / _bright_level(emission)
    # dust: where the column is thick it absorbs; its edge facing the light glows (ionised rim)
    d = _fbm(rng, (n, n), rng.uniform(2.8, 3.6), rng.uniform(1.0, 3.0), rng.uniform(0, math.pi))
    thr = rng.uniform(0.2, 1.1)
    tau = (np.clip(d - thr, 0, None) * F32(rng.uniform(1.5, 4.0))) * _smooth(env, 0.02, 0.3)
    if rng.uniform() < 0.15:
        tau *= 0.2
    emission *= np.exp(-tau)[..., None]
    if kind != 1:
        rim = np.exp(-(((d - thr) / 0.12) ** 2)) * (d < thr) * env
        emission += (rim * gain * F32(rng.uniform(0.1, 0.5)))[..., None] * (
            ha_c if kind == 0 else _rgb(0.6, 0.7, 1.0)
        )
    return emission, tau


def _nebula(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    psf = _psf_for(rng, n, spikes=0.5)
    _star_field(img, rng, int(_loguniform(rng, 30, 150)), psf, hi=2.0)
    cy, cx = rng.uniform(-0.3, 0.3, 2)
    emission, tau = _nebula_light(rng, n, cy, cx, rng.uniform(0.7, 1.3))
    img = img * np.exp(-tau[..., None] * _rgb(0.8, 1.0, 1.25)) + emission
    m = int(rng.integers(0, 5))  # young stars born in the cloud, in front of it
    _star_field(img, rng, m, psf, lo=0.5, hi=6.0, young=True,
                ys=_to_px(cy + rng.normal(0, 0.3, m), n), xs=_to_px(cx + rng.normal(0, 0.3, m), n))  # fmt: skip
    return img


# -- planet ---------------------------------------------------------------------------------------
def _rot_z(vec: tuple[float, float, float], a: float) -> tuple[float, float, float]:
    c, s = math.cos(a), math.sin(a)
    return (vec[0] * c - vec[1] * s, vec[0] * s + vec[1] * c, vec[2])


def _ring_density(rr: np.ndarray, s: float, thin: bool) -> np.ndarray:
    """Optical depth-ish density of a ring system at radius ``rr`` (planet radii)."""
    r = rr / s
    if thin:  # ice giant: a few narrow ringlets
        d = sum(np.exp(-(((r - c) / 0.025) ** 2)) for c in (1.6, 1.78, 1.95))
        return d * F32(0.5)
    d = (0.22 * ((r > 1.24) & (r < 1.53)) + 0.9 * ((r >= 1.53) & (r < 1.95))
         + 0.6 * ((r >= 2.03) & (r < 2.27))).astype(F32)  # C, B, Cassini gap, A  # fmt: skip
    d *= 1.0 - 0.8 * ((r > 2.2) & (r < 2.215))  # Encke gap
    return d * (0.85 + 0.15 * np.sin(r * 97.0))


def _planet_light(rng: np.random.Generator, n: int, cy: float, cx: float, radius: float,
                  kind: str | None = None) -> tuple[Image, np.ndarray]:  # fmt: skip
    """Linear light of a planet (and rings) and its coverage (0..1) of what lies behind."""
    y, x = _grid(n)
    X, Y = (x - cx) / radius, (y - cy) / radius
    rho2 = X * X + Y * Y
    inside = (rho2 < 1.0).astype(F32)
    Z = np.sqrt(np.clip(1.0 - rho2, 0.0, 1.0))
    if kind is None:
        kind = str(rng.choice(["jupiter", "saturn", "mars", "ice", "rocky", "terran"],
                              p=[0.22, 0.2, 0.16, 0.16, 0.14, 0.12]))  # fmt: skip
    tilt = rng.uniform(-0.6, 0.6)
    b = (
        rng.uniform(0.12, 0.45) * (1 if rng.uniform() < 0.5 else -1)
        if kind in ("saturn", "ice")
        else rng.uniform(-0.4, 0.4)
    )
    p = _rot_z((0.0, -math.cos(b), math.sin(b)), tilt)  # rotation pole, y down, z to viewer
    e1 = _rot_z((1.0, 0.0, 0.0), tilt)
    e2 = _rot_z((0.0, math.sin(b), math.cos(b)), tilt)
    sinlat = np.clip(X * p[0] + Y * p[1] + Z * p[2], -1.0, 1.0)
    lat = np.arcsin(sinlat)
    lon = np.arctan2(X * e1[0] + Y * e1[1] + Z * e1[2], X * e2[0] + Y * e2[1] + Z * e2[2])
    lon = lon + F32(rng.uniform(0, TAU))
    mh = max(n // 2, 16)
    mw = 2 * mh
    iy = np.clip(((lat / math.pi + 0.5) * mh).astype(np.int32), 0, mh - 1)
    ix = ((lon / TAU % 1.0) * mw).astype(np.int32) % mw

    def sample(m: np.ndarray) -> np.ndarray:
        return m[iy, ix]

    minnaert = 0.9
    if kind in ("jupiter", "saturn"):
        turb = sample(_fbm(rng, (mh, mw), 3.0, 4.0, 0.0))
        latw = lat + F32(0.05 if kind == "jupiter" else 0.02) * turb
        bands = np.zeros_like(lat)
        for _ in range(4):
            bands += F32(rng.uniform(0.5, 1.0)) * np.sin(
                F32(rng.uniform(5, 16)) * latw + F32(rng.uniform(0, TAU))
            )
        belt = 1.0 / (1.0 + np.exp(-2.5 * bands))
        if kind == "jupiter":
            zone, dark = _rgb(0.95, 0.88, 0.76), _rgb(0.68, 0.45, 0.3)
        else:
            zone, dark = _rgb(0.93, 0.85, 0.62), _rgb(0.8, 0.68, 0.48)
            belt = 0.3 + 0.4 * belt
        alb = zone * (1 - belt[..., None]) + dark * belt[..., None]
        alb *= (1.0 + 0.06 * sample(_fbm(rng, (mh, mw), 2.2, 2.5, 0.0)))[..., None]
        alb *= (1.0 - 0.35 * np.abs(sinlat) ** 3)[..., None]
        if kind == "jupiter" and rng.uniform() < 0.6:  # a great spot
            lon_s = rng.uniform(-math.pi, math.pi)
            dl = (lon - lon_s + math.pi) % TAU - math.pi
            spot = np.exp(-((dl / 0.28) ** 2 + ((lat + 0.38) / 0.1) ** 2))[..., None]
            alb = alb * (1 - spot) + spot * _rgb(0.85, 0.42, 0.28)
    elif kind == "ice":
        base = _rgb(0.62, 0.86, 0.92) if rng.uniform() < 0.5 else _rgb(0.3, 0.48, 0.95)
        bands = 1.0 + 0.05 * np.sin(F32(rng.uniform(4, 10)) * lat + F32(rng.uniform(0, TAU)))
        alb = base * bands[..., None]
        clouds = np.clip(sample(_fbm(rng, (mh, mw), 3.0, 5.0, 0.0)) - 1.8, 0, None)
        alb = alb + clouds[..., None] * 0.5
        minnaert = 0.95
    elif kind == "mars":
        dark = 1.0 / (1.0 + np.exp(-2.5 * (sample(_fbm(rng, (mh, mw), 2.8)) - 0.4)))
        alb = _rgb(0.82, 0.43, 0.22) * (1.0 - 0.45 * dark[..., None])
        cap = _smooth(sinlat * (1 if rng.uniform() < 0.5 else -1), 0.88, 0.93)[..., None]
        alb = alb * (1 - cap) + cap * _rgb(0.95, 0.93, 0.9)
        minnaert = 0.75
    elif kind == "rocky":  # Moon/Mercury: maria and craters
        maria = sample(_fbm(rng, (mh, mw), 3.2))
        tone = 0.45 - 0.15 * _smooth(maria, 0.2, 0.9)
        my, mx = np.mgrid[0:mh, 0:mw].astype(F32)
        mlat = (my + 0.5) / mh * math.pi - math.pi / 2
        mlon = (mx + 0.5) / mw * TAU
        crater = np.zeros((mh, mw), F32)
        for _ in range(int(rng.integers(15, 40))):
            clat, clon = np.arcsin(rng.uniform(-1, 1)), rng.uniform(0, TAU)
            cr = _loguniform(rng, 0.04, 0.25)
            dl = (mlon - clon + math.pi) % TAU - math.pi
            d = np.sqrt((mlat - clat) ** 2 + (dl * math.cos(clat)) ** 2) / cr
            crater += -0.08 * (d < 0.85) + 0.12 * np.exp(-(((d - 0.95) / 0.12) ** 2))
        tone = tone + sample(crater)
        alb = tone[..., None] * _rgb(1.0, 0.97, 0.93)
        minnaert = 0.55
    else:  # terran: oceans, continents, ice caps, clouds
        land = sample(_fbm(rng, (mh, mw), 2.6)) > rng.uniform(0.0, 0.6)
        veg = sample(_fbm(rng, (mh, mw), 2.4))[..., None]
        land_col = np.where(veg > 0, _rgb(0.22, 0.38, 0.14), _rgb(0.62, 0.52, 0.34))
        alb = np.where(land[..., None], land_col, _rgb(0.04, 0.12, 0.38))
        ice = _smooth(np.abs(sinlat), 0.9, 0.94)[..., None]
        cloud = np.clip(sample(_fbm(rng, (mh, mw), 2.4, 2.0, 0.0)) - 0.2, 0, 1)[..., None]
        alb = alb * (1 - ice) + ice * 0.95
        alb = alb * (1 - cloud) + cloud * 0.95
        minnaert = 0.8
    # sunlight: phase angle (0 = full) and the direction it comes from
    phase = 0.0 if rng.uniform() < 0.35 else rng.uniform(0.3, 1.9)
    la = rng.uniform(0, TAU)
    light = (math.sin(phase) * math.cos(la), math.sin(phase) * math.sin(la), math.cos(phase))
    mu0 = np.clip(X * light[0] + Y * light[1] + Z * light[2], 0, None)
    shade = mu0**minnaert * np.maximum(Z, 0.05) ** F32(minnaert - 1.0)
    bright = F32(rng.uniform(0.6, 1.3))
    img = alb * (shade * inside * bright)[..., None]
    cover = inside
    if kind in ("terran", "ice"):  # a thick atmosphere scatters light just beyond the limb
        rho = np.sqrt(rho2)
        lit = np.clip((X * light[0] + Y * light[1]) / (rho + 1e-3) + 0.3 + 0.5 * light[2], 0, 1)
        glow = np.exp(-(((rho - 1.0) / 0.025) ** 2)) * lit * (rho > 0.98) * 0.4
        img += glow[..., None] * _rgb(0.4, 0.6, 1.0)
    has_rings = (kind == "saturn" and rng.uniform() < 0.85) or (
        kind == "ice" and rng.uniform() < 0.25
    )
    if has_rings:
        thin = kind == "ice"
        rs = rng.uniform(0.9, 1.05)
        Zr = -(X * p[0] + Y * p[1]) / p[2]  # depth of the ring plane under each pixel
        rr = np.sqrt(X * X + Y * Y + Zr * Zr)
        dens = _ring_density(rr, rs, thin)
        hidden = (inside > 0) & (Zr < Z)  # behind the globe
        ql = X * light[0] + Y * light[1] + Zr * light[2]
        in_shadow = (ql < 0) & (rr * rr - ql * ql < 1.0)  # the globe's shadow on the rings
        lp = light[0] * p[0] + light[1] * p[1] + light[2] * p[2]
        side = 1.0 if (lp > 0) == (p[2] > 0) else 0.35  # lit face or the translucent back
        ring_col = _rgb(0.9, 0.82, 0.66) if not thin else _rgb(0.6, 0.7, 0.75)
        ring_vis = dens * ~hidden
        ring_light = (ring_vis * ~in_shadow * F32(side) * bright * F32(0.9))[..., None] * ring_col
        if abs(lp) > 1e-3:  # the rings' shadow on the globe
            t = -(X * p[0] + Y * p[1] + Z * p[2]) / lp
            qx, qy, qz = X + t * light[0], Y + t * light[1], Z + t * light[2]
            sh = _ring_density(np.sqrt(qx * qx + qy * qy + qz * qz), rs, thin) * (t > 0) * inside
            img *= (1.0 - 0.85 * np.clip(sh, 0, 1))[..., None]
        opacity = np.clip(ring_vis * 0.85, 0, 1)
        img = img * (1 - opacity)[..., None] + ring_light
        cover = np.clip(cover + opacity * (1 - cover), 0, 1)
    return img, cover


def _planet(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n, level=_loguniform(rng, 0.0005, 0.01))
    psf = _psf_for(rng, n, spikes=0.2)
    if rng.uniform() < 0.5:
        _star_field(img, rng, int(rng.integers(3, 25)), psf, hi=0.4, slope=1.2)
    kind = str(
        rng.choice(
            ["jupiter", "saturn", "mars", "ice", "rocky", "terran"],
            p=[0.22, 0.2, 0.16, 0.16, 0.14, 0.12],
        )
    )
    ringed = kind in ("saturn", "ice")
    radius = rng.uniform(0.3, 0.42) if ringed else rng.uniform(0.35, 0.75)
    cy, cx = rng.uniform(-0.12, 0.12, 2)
    light, cover = _planet_light(rng, n, cy, cx, radius, kind)
    img = img * (1 - cover)[..., None] + light
    m = int(rng.integers(0, 4)) if rng.uniform() < 0.35 else 0  # moons: small dots near it
    if m:
        ang = rng.uniform(0, TAU, m)
        dist = radius * rng.uniform(1.4, 2.6, m)
        _add_stars(img, _to_px(cy + dist * np.sin(ang), n), _to_px(cx + dist * np.cos(ang), n),
                   rng.uniform(0.2, 0.8, m).astype(F32), np.tile(_rgb(0.95, 0.9, 0.85), (m, 1)),
                   _Psf(1.8 * (n / 128) ** 0.35, 4.0, 0.0, None, 0.0))  # fmt: skip
    return img


# -- star fields and clusters ---------------------------------------------------------------------
def _cluster(img: Image, rng: np.random.Generator, psf: _Psf, cy: float, cx: float, size: float,
             globular: bool) -> None:  # fmt: skip
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


# -- anomalies (never trained on) -----------------------------------------------------------------
def _comet(rng: np.random.Generator, n: int) -> Image:
    """Bright green coma, curved broad dust tail, straight narrow blue ion tail."""
    img = _sky(rng, n)
    psf = _psf_for(rng, n)
    _star_field(img, rng, int(_loguniform(rng, 40, 250)), psf, hi=3.0)
    y, x = _grid(n)
    hy, hx = rng.uniform(-0.55, 0.55, 2)
    ang = rng.uniform(0, TAU)
    c, s = math.cos(ang), math.sin(ang)
    dy, dx = y - hy, x - hx
    a, b = c * dx + s * dy, -s * dx + c * dy  # along / across the tail
    length = rng.uniform(0.6, 1.6)
    ahead = _smooth(a, -0.03, 0.06)
    ap = np.clip(a, 0, None)
    bend = b - F32(rng.uniform(-0.5, 0.5)) * ap * ap
    w = 0.015 + rng.uniform(0.05, 0.18) * ap
    dust = ahead * np.exp(-ap / length) * np.exp(-0.5 * (bend / w) ** 2)
    da = rng.uniform(-0.25, 0.25)
    a2, b2 = math.cos(da) * a + math.sin(da) * b, -math.sin(da) * a + math.cos(da) * b
    a2p = np.clip(a2, 0, None)
    streamers = 1.0 + 0.5 * _fbm(rng, (n, n), 2.5, 6.0, ang + da)
    ion = (
        _smooth(a2, -0.02, 0.05)
        * np.exp(-a2p / (1.3 * length))
        * np.exp(-0.5 * (b2 / (0.008 + 0.04 * a2p)) ** 2)
    )
    r = np.sqrt(dx * dx + dy * dy)
    sc = rng.uniform(0.02, 0.06)
    coma = np.exp(-0.5 * (r / sc) ** 2) + 0.25 * sc / (r + sc)
    img += (dust * F32(rng.uniform(0.3, 0.9)))[..., None] * _rgb(1.0, 0.92, 0.75)
    img += (ion * np.clip(streamers, 0, None) * F32(rng.uniform(0.2, 0.7)))[..., None] * _rgb(
        0.35, 0.6, 1.0
    )
    img += (coma * F32(rng.uniform(0.8, 2.0)))[..., None] * _rgb(0.6, 1.0, 0.75)
    return img


def _line(n: int, ang: float, off: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Profile across a straight line and the coordinate along it."""
    y, x = _grid(n)
    c, s = math.cos(ang), math.sin(ang)
    d = c * y - s * x - off
    return np.exp(-((d / width) ** 2)), s * y + c * x


def _trail(rng: np.random.Generator, n: int) -> Image:
    """Satellite streaks, aircraft (dashed strobes, coloured navigation lights) or star trails."""
    style = rng.choice(3, p=[0.4, 0.3, 0.3])
    img = _sky(rng, n)
    psf = _psf_for(rng, n)
    w = 1.3 * 2.0 / n
    if style == 2:  # star trails: every star draws the same angle around the pole
        pole = rng.uniform(-1.6, 1.6, 2)
        y, x = _grid(n)
        r = np.sqrt((y - pole[0]) ** 2 + (x - pole[1]) ** 2)
        th = np.arctan2(y - pole[0], x - pole[1])
        rmax = float(r.max()) + 0.05
        nr, nt = int(rmax * n / 2) + 2, 4 * n
        polar = np.zeros((nr, nt, 3), F32)
        count = int(_loguniform(rng, 100, 400))
        sy, sx = rng.uniform(-1, 1, count), rng.uniform(-1, 1, count)
        ri = np.clip(
            (np.sqrt((sy - pole[0]) ** 2 + (sx - pole[1]) ** 2) / rmax * nr).astype(int), 0, nr - 1
        )
        ti = ((np.arctan2(sy - pole[0], sx - pole[1]) / TAU % 1.0) * nt).astype(int) % nt
        amp = _power_law(rng, count, 0.08, 2.0, 0.9)
        np.add.at(polar, (ri, ti), amp[:, None] * _star_rgb(_field_temps(rng, count)))
        span = int(rng.uniform(0.03, 0.2) * nt)
        cs = np.cumsum(np.concatenate([polar, polar[:, :span]], axis=1), axis=1)
        polar = (cs[:, span:] - cs[:, :-span]) * F32(0.7)
        polar = 0.5 * polar + 0.25 * (np.roll(polar, 1, 0) + np.roll(polar, -1, 0))
        pr = np.clip((r / rmax * nr).astype(int), 0, nr - 1)
        pt = ((th / TAU % 1.0) * nt).astype(int) % nt
        img += polar[pr, pt]
        return img
    _star_field(img, rng, int(_loguniform(rng, 50, 300)), psf, hi=3.0)
    if style == 0:  # satellites: long even streaks, sometimes a flare, sometimes a train
        train = rng.uniform() < 0.25
        ang = rng.uniform(0, math.pi)
        for i in range(int(rng.integers(4, 9)) if train else int(rng.integers(1, 4))):
            a = ang if train else rng.uniform(0, math.pi)
            off = (-0.5 + i * 0.12) if train else rng.uniform(-0.7, 0.7)
            prof, t = _line(n, a, off, w)
            t0, t1 = sorted(rng.uniform(-1.6, 1.6, 2)) if rng.uniform() < 0.5 else (-2.0, 2.0)
            seg = _smooth(t, t0 - 0.02, t0 + 0.02) * (1 - _smooth(t, t1 - 0.02, t1 + 0.02))
            flare = 1.0 + 2.0 * np.exp(-(((t - rng.uniform(-1, 1)) / 0.15) ** 2)) * (
                rng.uniform() < 0.3
            )
            img += (prof * seg * flare * F32(rng.uniform(0.3, 1.2)))[..., None] * _rgb(
                1.0, 1.0, 0.95
            )
    else:  # aircraft: steady red/green lights and a white strobe that makes dashes
        ang, off = rng.uniform(0, math.pi), rng.uniform(-0.5, 0.5)
        gap = rng.uniform(0.02, 0.05)
        period = rng.uniform(0.08, 0.25)
        for j, col in enumerate((_rgb(1.0, 0.15, 0.1), _rgb(0.2, 1.0, 0.3), _rgb(1.0, 1.0, 1.0))):
            prof, t = _line(n, ang, off + (j - 1) * gap, w)
            if j == 2:
                prof = prof * (np.cos(TAU * t / period) > 0.75)
            else:
                prof = prof * (0.6 + 0.4 * (np.cos(TAU * t / (period * 0.5)) > 0))
            img += (prof * F32(rng.uniform(0.6, 1.5)))[..., None] * col
    return img


def _lens_flare(rng: np.random.Generator, n: int) -> Image:
    """A blinding source with starburst, halo ring and a chain of aperture ghosts."""
    img = _sky(rng, n, level=rng.uniform(0.01, 0.12))
    psf = _psf_for(rng, n)
    if rng.uniform() < 0.5:
        _star_field(img, rng, int(rng.integers(5, 60)), psf, hi=1.0)
    y, x = _grid(n)
    sy, sx = rng.uniform(-0.75, 0.75, 2)
    dy, dx = y - sy, x - sx
    r = np.sqrt(dy * dy + dx * dx) + F32(1e-4)
    th = np.arctan2(dy, dx)
    warm = _rgb(1.0, 0.95, 0.85)
    img += (2.5 * np.exp(-r / 0.03) + 0.5 * np.exp(-r / 0.15) + 0.12 * np.exp(-r / 0.6))[
        ..., None
    ] * warm
    blades = int(rng.choice([5, 6, 7, 8]))
    rays = (0.5 + 0.5 * np.cos(blades * th + rng.uniform(0, TAU))) ** F32(30.0) * np.exp(
        -r / rng.uniform(0.2, 0.6)
    )
    img += (rays * F32(rng.uniform(0.3, 0.9)))[..., None] * warm
    if rng.uniform() < 0.4:  # anamorphic streak
        streak = np.exp(-np.abs(dy) / 0.006) * np.exp(-np.abs(dx) / 0.7)
        img += (streak * 0.8)[..., None] * _rgb(0.5, 0.7, 1.0)
    rh = rng.uniform(0.25, 0.6)  # rainbow halo
    ring = np.exp(-(((r[..., None] - rh * _rgb(1.04, 1.0, 0.96)) / 0.02) ** 2))
    img += ring * F32(rng.uniform(0.05, 0.25))
    hexagonal = rng.uniform() < 0.6
    for t in rng.uniform(-1.4, 0.7, int(rng.integers(4, 9))):  # ghosts along the optical axis
        gy, gx = -sy * t, -sx * t
        gr = rng.uniform(0.03, 0.22)
        gdy, gdx = y - gy, x - gx
        gd = np.sqrt(gdy * gdy + gdx * gdx)
        if hexagonal:
            ga = np.arctan2(gdy, gdx) % (math.pi / 3) - math.pi / 6
            gd = gd * np.cos(ga) / math.cos(math.pi / 6)
        body = 1.0 - _smooth(gd, gr * 0.9, gr)
        edge = np.exp(-(((gd - gr) / 0.01) ** 2))
        col = rng.uniform(0.2, 1.0, 3).astype(F32)
        img += (body * F32(rng.uniform(0.04, 0.2)) + edge * F32(rng.uniform(0.0, 0.2)))[
            ..., None
        ] * col
    return img


def _non_sky(rng: np.random.Generator, n: int) -> Image:
    """Something that is not an astronomical picture: a daytime scene, a pattern or toys."""
    y, x = _grid(n)
    style = rng.choice(3, p=[0.5, 0.2, 0.3])
    if style == 0:  # landscape: sky, sun, clouds, hills, houses, trees
        horizon = rng.uniform(-0.2, 0.4) + 0.12 * _fbm1d(rng, n, 2.5)[None, :]
        t = np.clip((y + 1) / (horizon + 1), 0, 1)[..., None]
        img = _rgb(0.2, 0.42, 0.85) * (1 - t) + _rgb(0.72, 0.84, 0.96) * t
        clouds = np.clip(_fbm(rng, (n, n), 2.8, 2.5, 0.0) - 0.4, 0, 1) * (y < horizon)
        img = img * (1 - clouds[..., None]) + clouds[..., None] * 1.0
        ground = (y > horizon)[..., None]
        gcol = _rgb(0.3, 0.55, 0.2) if rng.uniform() < 0.6 else _rgb(0.6, 0.5, 0.32)
        tex = (0.85 + 0.15 * _fbm(rng, (n, n), 1.8))[..., None]
        img = np.where(ground, gcol * tex, img)
        base = float(horizon.mean()) + 0.05
        for _ in range(int(rng.integers(1, 5))):
            hx, w, h = rng.uniform(-0.9, 0.7), rng.uniform(0.15, 0.35), rng.uniform(0.12, 0.3)
            by = base + rng.uniform(0.0, 0.3)
            wall = (x > hx) & (x < hx + w) & (y < by) & (y > by - h)
            roof = (
                (y <= by - h)
                & (y > by - h - (w / 2 - np.abs(x - hx - w / 2)))
                & (x > hx)
                & (x < hx + w)
            )
            img = np.where(wall[..., None], rng.uniform(0.55, 0.95, 3).astype(F32), img)
            img = np.where(roof[..., None], _rgb(0.6, 0.18, 0.12), img)
            win = (
                wall
                & (np.abs(((x - hx) / w * 3) % 1 - 0.5) < 0.2)
                & (np.abs(((y - by + h) / h * 2) % 1 - 0.5) < 0.2)
            )
            img = np.where(win[..., None], _rgb(0.25, 0.35, 0.5), img)
        for _ in range(int(rng.integers(0, 4))):
            tx, ty, tr = (
                rng.uniform(-0.9, 0.9),
                base + rng.uniform(0.0, 0.3),
                rng.uniform(0.06, 0.14),
            )
            trunk = (np.abs(x - tx) < tr * 0.15) & (y < ty) & (y > ty - tr * 1.5)
            crown = (x - tx) ** 2 + (y - ty + tr * 2.0) ** 2 < tr * tr
            img = np.where(trunk[..., None], _rgb(0.35, 0.22, 0.1), img)
            img = np.where(crown[..., None], _rgb(0.12, 0.4, 0.12), img)
    elif style == 1:  # pattern: rotated checkerboard or stripes in two colours
        a = rng.uniform(0, math.pi)
        u, v = math.cos(a) * x + math.sin(a) * y, -math.sin(a) * x + math.cos(a) * y
        f = rng.uniform(2, 8)
        if rng.uniform() < 0.5:
            mask = ((np.floor(u * f) + np.floor(v * f)) % 2).astype(F32)
        else:
            mask = (np.sin(u * f * math.pi) > 0).astype(F32)
        c1, c2 = rng.uniform(0.0, 1.0, 3).astype(F32), rng.uniform(0.0, 1.0, 3).astype(F32)
        img = c1 * (1 - mask[..., None]) + c2 * mask[..., None]
    else:  # toy shapes on a pale table
        img = np.broadcast_to(rng.uniform(0.7, 0.95, 3).astype(F32), (n, n, 3)).copy()
        img *= (1.0 - 0.15 * (y + 1) / 2)[..., None]
        for _ in range(int(rng.integers(4, 12))):
            cy, cx, rad = rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), rng.uniform(0.08, 0.3)
            shape = rng.integers(3)
            if shape == 0:
                m = (y - cy) ** 2 + (x - cx) ** 2 < rad * rad
            elif shape == 1:
                m = (np.abs(y - cy) < rad) & (np.abs(x - cx) < rad * rng.uniform(0.5, 1.5))
            else:
                m = (y - cy < rad) & (np.abs(x - cx) < (y - cy + rad) * 0.6)
            shade = (1.0 - 0.3 * np.clip((x - cx + y - cy) / (2 * rad), -1, 1))[..., None]
            img = np.where(m[..., None], rng.uniform(0.05, 1.0, 3).astype(F32) * shade, img)
    return img.astype(F32)


def _aurora(rng: np.random.Generator, n: int) -> Image:
    """Green-to-purple curtains over a dark landscape silhouette: sky, but not astronomy."""
    y, x = _grid(n)
    img = _sky(rng, n, level=rng.uniform(0.01, 0.04))
    psf = _psf_for(rng, n, spikes=0.1)
    _star_field(img, rng, int(_loguniform(rng, 60, 300)), psf, hi=1.5)
    for _ in range(int(rng.integers(1, 3))):
        base = rng.uniform(-0.2, 0.45) + 0.2 * _fbm1d(rng, n, 3.0)[None, :]
        height = rng.uniform(0.25, 0.8)
        hgt = base - y
        rays = np.clip(1.0 + 0.4 * _fbm1d(rng, n, 1.6), 0, None)[None, :]
        span = np.exp(-(((x[0] - rng.uniform(-0.6, 0.6)) / rng.uniform(0.4, 1.2)) ** 4))[None, :]
        curtain = _smooth(hgt, -0.02, 0.04) * np.exp(-np.clip(hgt, 0, None) / height) * rays * span
        top = np.clip(hgt / (1.5 * height), 0, 1)[..., None]
        col = _rgb(0.25, 1.0, 0.45) * (1 - top) + _rgb(0.75, 0.2, 0.65) * top
        img += (curtain * F32(rng.uniform(0.3, 1.0)))[..., None] * col
    ground = rng.uniform(0.45, 0.8) + 0.06 * _fbm1d(rng, n, 2.5)[None, :]
    land = y > ground
    if rng.uniform() < 0.6:  # pine trees
        for _ in range(int(rng.integers(3, 12))):
            tx, th = rng.uniform(-1, 1), rng.uniform(0.1, 0.35)
            gy = float(ground[0, int(np.clip(_to_px(tx, n), 0, n - 1))])
            land |= (y > gy - th) & (np.abs(x - tx) < (y - gy + th) * 0.3)
    img = np.where(land[..., None], img * 0.05, img)
    return img


# -- finishing ------------------------------------------------------------------------------------
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


_RENDERERS: dict[str, Callable[[np.random.Generator, int], Image]] = {
    "galaxy": _galaxy, "nebula": _nebula, "planet": _planet, "star": _star,
    "comet": _comet, "trail": _trail, "lens_flare": _lens_flare, "non_sky": _non_sky,
    "aurora": _aurora,
}  # fmt: skip


def _check_size(size: int) -> int:
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    return int(size)


def render(kind: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One RGB uint8 picture (size, size, 3) of a class in CLASSES or an anomaly kind in
    ANOMALY_KINDS; the same generator state always gives the same bytes."""
    if kind not in _RENDERERS:
        raise ValueError(
            f"unknown kind {kind!r}; valid kinds: {list(CLASSES) + list(ANOMALY_KINDS)}"
        )
    size = _check_size(size)
    img = _RENDERERS[kind](rng, 2 * size)
    return _finish(img, rng, size, astro=kind != "non_sky")


def _slots(rng: np.random.Generator, k: int) -> list[tuple[float, float, float]]:
    """Non-overlapping places (cy, cx, radius) for ``k`` objects in one frame."""
    if k == 0:
        return []
    if k == 1:
        return [(rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15), 0.8)]
    if k == 2:
        a = rng.uniform(0, math.pi)
        c, s = math.cos(a), math.sin(a)
        d = 0.45
        return [
            (s * d * sgn, c * d * sgn, 0.5) for sgn in ((1, -1) if rng.uniform() < 0.5 else (-1, 1))
        ]
    quads = [(-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5), (0.5, 0.5)]
    order = rng.permutation(4)[:k]
    return [
        (quads[i][0] + rng.uniform(-0.04, 0.04), quads[i][1] + rng.uniform(-0.04, 0.04), 0.47)
        for i in order
    ]


def render_multilabel(kinds: Sequence[str], rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One picture holding every class in ``kinds``: a star field (and maybe a cluster)
    behind, a nebula, a galaxy and a planet each in their own part of the frame, so none
    hides another. Without "star" only a handful of faint stars appear."""
    kinds = list(kinds)
    bad = [k for k in kinds if k not in CLASSES]
    if bad or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {list(CLASSES)}, got {kinds}")
    size = _check_size(size)
    n = 2 * size
    want = set(kinds)
    img = _sky(rng, n)
    psf = _psf_for(rng, n, spikes=0.4)
    cluster = "star" in want and rng.uniform() < 0.5
    placed = [k for k in ("nebula", "galaxy", "planet") if k in want] + (
        ["cluster"] if cluster else []
    )
    slots = dict(zip(placed, _slots(rng, len(placed)), strict=True))
    if "star" in want:
        _star_field(img, rng, int(_loguniform(rng, 120, 450)), psf, slope=rng.uniform(0.6, 1.0))
        if cluster:
            cy, cx, rad = slots["cluster"]
            _cluster(img, rng, psf, cy, cx, rad * 1.4, globular=rng.uniform() < 0.5)
    else:
        _star_field(img, rng, int(rng.integers(3, 20)), psf, hi=1.0, slope=1.2)
    if "nebula" in want:
        cy, cx, rad = slots["nebula"]
        emission, tau = _nebula_light(rng, n, cy, cx, rad * 1.2)
        if len(placed) > 1:  # keep the cloud to its part of the frame, the others stay clear
            y, x = _grid(n)
            window = np.exp(-((((y - cy) ** 2 + (x - cx) ** 2) / (1.5 * rad) ** 2) ** 2))
            emission, tau = emission * window[..., None], tau * window
        img = img * np.exp(-tau[..., None] * _rgb(0.8, 1.0, 1.25)) + emission
    if "galaxy" in want:
        cy, cx, rad = slots["galaxy"]
        img += _galaxy_light(rng, n, cy, cx, rad * rng.uniform(1.0, 1.3), spiral_p=0.8)
    if "planet" in want:
        cy, cx, rad = slots["planet"]
        kind = str(
            rng.choice(
                ["jupiter", "saturn", "mars", "ice", "rocky", "terran"],
                p=[0.22, 0.2, 0.16, 0.16, 0.14, 0.12],
            )
        )
        pr = rad * (
            rng.uniform(0.36, 0.42) if kind in ("saturn", "ice") else rng.uniform(0.6, 0.85)
        )
        light, cover = _planet_light(rng, n, cy, cx, pr, kind)
        img = img * (1 - cover)[..., None] + light
    return _finish(img, rng, size)
