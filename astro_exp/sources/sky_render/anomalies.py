"""Anomaly kinds, never trained on (the anomaly detector is scored on them): comet, trail
(satellites, aircraft, star trails), lens_flare, non_sky (daylight scenes, patterns, toy
shapes) and aurora (curtains above a horizon).
"""

from __future__ import annotations

import math

import numpy as np

from astro_exp.sources.sky_render.primitives import (
    F32,
    TAU,
    Image,
    _fbm,
    _fbm1d,
    _grid,
    _loguniform,
    _rgb,
    _smooth,
    _to_px,
)
from astro_exp.sources.sky_render.stars import (
    _field_temps,
    _power_law,
    _psf_for,
    _sky,
    _star_field,
    _star_rgb,
)


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
