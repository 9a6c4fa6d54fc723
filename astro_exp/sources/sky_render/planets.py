"""The ``planet`` class: an orthographic sphere with Minnaert limb darkening and a phase,
surface maps of Jupiter-, Saturn-, Mars-, Moon-, Earth- and ice-giant-like worlds, and rings
with a Cassini gap that pass behind the disk, shade it and sit in its shadow.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from astro_exp.sources.sky_render.planet_surfaces import _albedo, _surface_map
from astro_exp.sources.sky_render.primitives import (
    F32,
    TAU,
    Image,
    _grid,
    _loguniform,
    _rgb,
    _to_px,
)
from astro_exp.sources.sky_render.stars import _add_stars, _Psf, _psf_for, _sky, _star_field

_Vec = tuple[float, float, float]


def _rot_z(vec: _Vec, a: float) -> _Vec:
    c, s = math.cos(a), math.sin(a)
    return (vec[0] * c - vec[1] * s, vec[0] * s + vec[1] * c, vec[2])


def _ring_density(rr: np.ndarray, s: float, thin: bool) -> np.ndarray:
    """Optical depth-ish density of a ring system at radius ``rr`` (planet radii)."""
    r = rr / s
    if thin:  # ice giant: a few narrow ringlets
        d = sum(np.exp(-(((r - c) / 0.025) ** 2)) for c in (1.6, 1.78, 1.95))
        return d * F32(0.5)
    d = (
        0.22 * ((r > 1.24) & (r < 1.53))
        + 0.9 * ((r >= 1.53) & (r < 1.95))
        + 0.6 * ((r >= 2.03) & (r < 2.27))
    ).astype(F32)  # C, B, Cassini gap, A
    d *= 1.0 - 0.8 * ((r > 2.2) & (r < 2.215))  # Encke gap
    return d * (0.85 + 0.15 * np.sin(r * 97.0))


def _planet_kind(rng: np.random.Generator) -> str:
    """Which world to draw: Jupiter, Saturn, Mars, ice giant, Moon-like or Earth-like."""
    return str(
        rng.choice(
            ["jupiter", "saturn", "mars", "ice", "rocky", "terran"],
            p=[0.22, 0.2, 0.16, 0.16, 0.14, 0.12],
        )
    )


class _Globe(NamedTuple):
    """The disk in planet radii around its centre: X, Y, the visible hemisphere's depth Z,
    X^2 + Y^2 and which pixels it covers."""

    X: np.ndarray
    Y: np.ndarray
    Z: np.ndarray
    rho2: np.ndarray
    inside: np.ndarray


def _globe(n: int, cy: float, cx: float, radius: float) -> _Globe:
    """The orthographic sphere of ``radius`` at (cy, cx) on an ``n`` x ``n`` grid."""
    y, x = _grid(n)
    X, Y = (x - cx) / radius, (y - cy) / radius
    rho2 = X * X + Y * Y
    inside = (rho2 < 1.0).astype(F32)
    Z = np.sqrt(np.clip(1.0 - rho2, 0.0, 1.0))
    return _Globe(X, Y, Z, rho2, inside)


def _axes(rng: np.random.Generator, kind: str) -> tuple[_Vec, _Vec, _Vec]:
    """A random tilt on the sky and towards us (ringed worlds show their rings open):
    the rotation pole ``p`` and two equator axes, y down, z to the viewer."""
    tilt = rng.uniform(-0.6, 0.6)
    b = (
        rng.uniform(0.12, 0.45) * (1 if rng.uniform() < 0.5 else -1)
        if kind in ("saturn", "ice")
        else rng.uniform(-0.4, 0.4)
    )
    p = _rot_z((0.0, -math.cos(b), math.sin(b)), tilt)
    e1 = _rot_z((1.0, 0.0, 0.0), tilt)
    e2 = _rot_z((0.0, math.sin(b), math.cos(b)), tilt)
    return p, e1, e2


def _sunlight(rng: np.random.Generator) -> _Vec:
    """Direction the sunlight comes from: a random phase angle (0 = full) and side."""
    phase = 0.0 if rng.uniform() < 0.35 else rng.uniform(0.3, 1.9)
    la = rng.uniform(0, TAU)
    return (math.sin(phase) * math.cos(la), math.sin(phase) * math.sin(la), math.cos(phase))


def _atmosphere_glow(g: _Globe, light: _Vec) -> np.ndarray:
    """Light a thick atmosphere scatters just beyond the limb, on the sunlit side."""
    rho = np.sqrt(g.rho2)
    lit = np.clip((g.X * light[0] + g.Y * light[1]) / (rho + 1e-3) + 0.3 + 0.5 * light[2], 0, 1)
    return np.exp(-(((rho - 1.0) / 0.025) ** 2)) * lit * (rho > 0.98) * 0.4


def _has_rings(rng: np.random.Generator, kind: str) -> bool:
    """Most Saturns have rings, a quarter of the ice giants."""
    return (kind == "saturn" and rng.uniform() < 0.85) or (kind == "ice" and rng.uniform() < 0.25)


def _with_rings(
    rng: np.random.Generator,
    kind: str,
    g: _Globe,
    p: _Vec,
    light: _Vec,
    bright: np.float32,
    img: Image,
    cover: np.ndarray,
) -> tuple[Image, np.ndarray]:
    """Rings in the equator plane: hidden behind the globe, in its shadow, casting their
    own on it; returns the new light and coverage."""
    X, Y, Z, inside = g.X, g.Y, g.Z, g.inside
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


def _planet_light(
    rng: np.random.Generator, n: int, cy: float, cx: float, radius: float, kind: str | None = None
) -> tuple[Image, np.ndarray]:
    """Linear light of a planet (and rings) and its coverage (0..1) of what lies behind."""
    g = _globe(n, cy, cx, radius)
    if kind is None:
        kind = _planet_kind(rng)
    p, e1, e2 = _axes(rng, kind)
    alb, minnaert = _albedo(rng, kind, _surface_map(rng, n, (g.X, g.Y, g.Z), (p, e1, e2)))
    light = _sunlight(rng)
    mu0 = np.clip(g.X * light[0] + g.Y * light[1] + g.Z * light[2], 0, None)
    shade = mu0**minnaert * np.maximum(g.Z, 0.05) ** F32(minnaert - 1.0)
    bright = F32(rng.uniform(0.6, 1.3))
    img = alb * (shade * g.inside * bright)[..., None]
    cover = g.inside
    if kind in ("terran", "ice"):
        img += _atmosphere_glow(g, light)[..., None] * _rgb(0.4, 0.6, 1.0)
    if _has_rings(rng, kind):
        img, cover = _with_rings(rng, kind, g, p, light, bright, img, cover)
    return img, cover


def _planet(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n, level=_loguniform(rng, 0.0005, 0.01))
    psf = _psf_for(rng, n, spikes=0.2)
    if rng.uniform() < 0.5:
        _star_field(img, rng, int(rng.integers(3, 25)), psf, hi=0.4, slope=1.2)
    kind = _planet_kind(rng)
    ringed = kind in ("saturn", "ice")
    radius = rng.uniform(0.3, 0.42) if ringed else rng.uniform(0.35, 0.75)
    cy, cx = rng.uniform(-0.12, 0.12, 2)
    light, cover = _planet_light(rng, n, cy, cx, radius, kind)
    img = img * (1 - cover)[..., None] + light
    m = int(rng.integers(0, 4)) if rng.uniform() < 0.35 else 0  # moons: small dots near it
    if m:
        ang = rng.uniform(0, TAU, m)
        dist = radius * rng.uniform(1.4, 2.6, m)
        _add_stars(
            img,
            _to_px(cy + dist * np.sin(ang), n),
            _to_px(cx + dist * np.cos(ang), n),
            rng.uniform(0.2, 0.8, m).astype(F32),
            np.tile(_rgb(0.95, 0.9, 0.85), (m, 1)),
            _Psf(1.8 * (n / 128) ** 0.35, 4.0, 0.0, None, 0.0),
        )
    return img
