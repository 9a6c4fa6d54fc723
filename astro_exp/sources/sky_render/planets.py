"""The ``planet`` class: an orthographic sphere with Minnaert limb darkening and a phase,
surface maps of Jupiter-, Saturn-, Mars-, Moon-, Earth- and ice-giant-like worlds, and rings
with a Cassini gap that pass behind the disk, shade it and sit in its shadow.
"""

from __future__ import annotations

import math

import numpy as np

from astro_exp.sources.sky_render.primitives import (
    F32,
    TAU,
    Image,
    _fbm,
    _grid,
    _loguniform,
    _rgb,
    _smooth,
    _to_px,
)
from astro_exp.sources.sky_render.stars import _add_stars, _Psf, _psf_for, _sky, _star_field


def _rot_z(vec: tuple[float, float, float], a: float) -> tuple[float, float, float]:
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


def _planet_light(
    rng: np.random.Generator, n: int, cy: float, cx: float, radius: float, kind: str | None = None
) -> tuple[Image, np.ndarray]:
    """Linear light of a planet (and rings) and its coverage (0..1) of what lies behind."""
    y, x = _grid(n)
    X, Y = (x - cx) / radius, (y - cy) / radius
    rho2 = X * X + Y * Y
    inside = (rho2 < 1.0).astype(F32)
    Z = np.sqrt(np.clip(1.0 - rho2, 0.0, 1.0))
    if kind is None:
        kind = str(
            rng.choice(
                ["jupiter", "saturn", "mars", "ice", "rocky", "terran"],
                p=[0.22, 0.2, 0.16, 0.16, 0.14, 0.12],
            )
        )
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
        _add_stars(
            img,
            _to_px(cy + dist * np.sin(ang), n),
            _to_px(cx + dist * np.cos(ang), n),
            rng.uniform(0.2, 0.8, m).astype(F32),
            np.tile(_rgb(0.95, 0.9, 0.85), (m, 1)),
            _Psf(1.8 * (n / 128) ** 0.35, 4.0, 0.0, None, 0.0),
        )
    return img
