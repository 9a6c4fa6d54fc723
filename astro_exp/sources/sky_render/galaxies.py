"""The ``galaxy`` class: spirals (Sersic bulge, exponential disk, logarithmic arms with
clumps, HII knots and dust lanes, optional bar), ellipticals and lenticulars, with
foreground stars and faint background galaxies.
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
    _rgb,
    _sersic,
    _smooth,
    _to_px,
)
from astro_exp.sources.sky_render.stars import _add_stars, _blob, _Psf, _psf_for, _sky, _star_field


class _Frame(NamedTuple):
    """Galaxy-centred coordinates in units of its scale (``u`` along the major axis, ``v``
    the minor), the position angle's cosine and sine, and the profile softening."""

    u: np.ndarray
    v: np.ndarray
    c: float
    s: float
    soft: float


def _frame(rng: np.random.Generator, n: int, cy: float, cx: float, scale: float) -> _Frame:
    """The galaxy's own axes at a random position angle."""
    y, x = _grid(n)
    pa = rng.uniform(0, math.pi)
    c, s = math.cos(pa), math.sin(pa)
    dy, dx = (y - cy) / scale, (x - cx) / scale
    u, v = c * dx + s * dy, -s * dx + c * dy
    return _Frame(u, v, c, s, 3.0 / (n * scale))


def _elliptical(
    rng: np.random.Generator,
    n: int,
    cy: float,
    cx: float,
    scale: float,
    f: _Frame,
    bulge_col: np.ndarray,
) -> Image:
    """An elliptical: smooth, round-ish, a redder core, its globular clusters around it."""
    q = rng.uniform(0.45, 1.0)
    r = np.sqrt(f.u * f.u + (f.v / q) ** 2)
    re = rng.uniform(0.15, 0.35)
    prof = _sersic(r, re, rng.uniform(2.5, 5.0), f.soft) * F32(rng.uniform(0.12, 0.3))
    core = np.exp(-r / re)[..., None]
    img = prof[..., None] * (bulge_col * (1 - 0.25 * core) + _rgb(1.0, 0.7, 0.45) * 0.25 * core)
    m = int(rng.integers(0, 25))  # its globular clusters
    if m:
        rad = re * scale * rng.uniform(0.5, 4.0, m)
        ang = rng.uniform(0, TAU, m)
        gy = _to_px(cy + rad * np.sin(ang), n)
        gx = _to_px(cx + rad * np.cos(ang), n)
        amp = rng.uniform(0.03, 0.12, m).astype(F32)
        _add_stars(
            img,
            gy,
            gx,
            amp,
            np.tile(_rgb(1.0, 0.85, 0.65), (m, 1)),
            _Psf(2.0 * (n / 128) ** 0.35, 3.0, 0.0, None, 0.0),
        )
    return img


class _Arms(NamedTuple):
    """The logarithmic spiral: ``m`` arms, winding ``k`` (1 / tan pitch), phase ``theta0``."""

    m: int
    k: float
    theta0: float


def _spiral_disk(
    rng: np.random.Generator,
    n: int,
    u: np.ndarray,
    vd: np.ndarray,
    r: np.ndarray,
    h: float,
    disk: np.ndarray,
) -> tuple[Image, np.ndarray, _Arms]:
    """A spiral's disk light (flocculent clumpy arms, maybe a bar) and the optical depth of
    the dust lanes trailing its arms, in the deprojected plane (u, vd)."""
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
    tau = F32(rng.uniform(0.3, 1.2)) * lanes * ramp * np.exp(-r / (2.5 * h))
    return img, tau, _Arms(m, k, theta0)


def _edge_on_lane(rng: np.random.Generator, q: float, f: _Frame) -> np.ndarray:
    """Optical depth of the dust lane along the mid-plane of a disk seen edge-on."""
    lane_off = rng.uniform(-0.05, 0.05) * q
    lane_w = rng.uniform(0.015, 0.04)
    return (
        F32(rng.uniform(0.8, 2.5) * (1.0 - q))
        * np.exp(-(((f.v - lane_off) / lane_w) ** 2))
        * _smooth(-np.abs(f.u), -1.0, -0.5)
    )


def _hii_regions(
    img: Image,
    rng: np.random.Generator,
    n: int,
    centre: tuple[float, float, float],
    f: _Frame,
    disk: tuple[float, float, float],
    arms: _Arms,
) -> None:
    """Pink and blue knots of star formation strung along the arms, added to ``img``;
    ``centre`` is (cy, cx, scale), ``disk`` (q, h, d_amp)."""
    cy, cx, scale = centre
    q, h, d_amp = disk
    cnt = int(rng.integers(8, 40))
    rk = rng.uniform(0.12, 0.75, cnt)
    arm_i = rng.integers(0, arms.m, cnt)
    ph = arms.theta0 + arms.k * np.log(rk) + TAU * arm_i / arms.m + rng.normal(0, 0.12, cnt)
    ku, kv = rk * np.cos(ph), rk * np.sin(ph) * q
    ky = _to_px(cy + (f.s * ku + f.c * kv) * scale, n)
    kx = _to_px(cx + (f.c * ku - f.s * kv) * scale, n)
    amp = (d_amp * rng.uniform(0.1, 0.6, cnt) * np.exp(-rk / (3 * h))).astype(F32)
    pink = rng.uniform(size=cnt) < 0.6
    rgb = np.where(pink[:, None], _rgb(1.0, 0.45, 0.7), _rgb(0.65, 0.8, 1.0)).astype(F32)
    knot = _Psf(rng.uniform(1.2, 2.4) * (n / 128) * scale, 2.5, 0.0, None, 0.0)  # physical size
    _add_stars(img, ky, kx, amp, rgb, knot)


def _galaxy_light(
    rng: np.random.Generator, n: int, cy: float, cx: float, scale: float, spiral_p: float = 0.6
) -> Image:
    """A galaxy centred at (cy, cx) whose disk reaches about ``scale`` (normalised units);
    ``spiral_p`` is the chance of a spiral (the rest: 5/8 elliptical, 3/8 lenticular)."""
    f = _frame(rng, n, cy, cx, scale)
    rest = 1.0 - spiral_p
    kind = rng.choice(3, p=[spiral_p, rest * 0.625, rest * 0.375])  # spiral, elliptical, lenticular
    bulge_col = _rgb(1.0, 0.8, 0.55) * rng.uniform(0.92, 1.08, 3).astype(F32)
    if kind == 1:
        return _elliptical(rng, n, cy, cx, scale, f, bulge_col)

    q = math.sqrt(rng.uniform(0.01, 1.0)) if kind == 0 else rng.uniform(0.1, 1.0)  # cos(i)
    vd = f.v / q
    r = np.sqrt(f.u * f.u + vd * vd) + F32(1e-3)
    h = rng.uniform(0.2, 0.32)
    disk = np.exp(-r / h)
    qb = q + (1.0 - q) * rng.uniform(0.5, 0.85)  # a bulge is rounder than its disk
    rb = np.sqrt(f.u * f.u + (f.v / qb) ** 2)
    bulge = _sersic(rb, rng.uniform(0.04, 0.12), rng.uniform(1.0, 4.0), f.soft)
    d_amp = rng.uniform(0.4, 0.9)
    b_amp = d_amp * rng.uniform(0.15, 0.8) * (2.5 if kind == 2 else 1.0)
    tau = np.zeros_like(r)
    if kind == 0:
        img, lanes, arms = _spiral_disk(rng, n, f.u, vd, r, h, disk)
        tau += lanes
        img *= F32(d_amp)
    else:  # lenticular: bulge plus a smooth featureless disk
        img = (disk * F32(d_amp * 0.7))[..., None] * _rgb(1.0, 0.88, 0.72)
    if q < 0.4 and rng.uniform() < 0.8:  # edge-on: a dust lane along the mid-plane
        tau += _edge_on_lane(rng, q, f)
    redden = np.exp(-tau[..., None] * _rgb(0.75, 1.0, 1.3))
    img = img * redden + (bulge * F32(b_amp))[..., None] * bulge_col * np.sqrt(redden)
    if kind == 0 and rng.uniform() < 0.75:  # HII regions strung along the arms
        _hii_regions(img, rng, n, (cy, cx, scale), f, (q, h, d_amp), arms)
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
