"""Procedural sky pictures: the embedded default data set (no network, no files).

Four classes a person recognises on a contact sheet: galaxy (spiral or elliptical:
Sersic bulge, exponential disk, logarithmic arms, random inclination and angle), nebula
(turbulent emission clouds with dark dust lanes and embedded stars), planet (limb-darkened
disk with bands, a phase and optional rings) and star (fields and clusters with a Moffat
PSF and a power-law brightness distribution). Anomaly kinds (comet, trail, lens_flare,
non_sky) are never used for training; the anomaly detector is evaluated on them.

Pictures are rendered at twice the requested size and area-averaged down (anti-aliasing),
then get sky noise; everything is deterministic for a given ``np.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

CLASSES: tuple[str, ...] = ("galaxy", "nebula", "planet", "star")
ANOMALY_KINDS: tuple[str, ...] = ("comet", "trail", "lens_flare", "non_sky")
RENDER_VERSION = "1"

Image = np.ndarray  # (H, W, 3) float32 linear light, roughly [0, 1+]


@lru_cache(maxsize=8)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1] (y down, x right)."""
    c = (np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1
    return np.meshgrid(c, c, indexing="ij")


@lru_cache(maxsize=8)
def _freq(n: int) -> np.ndarray:
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.sqrt(fx**2 + fy**2).astype(np.float32)
    f[0, 0] = 1.0
    return f


def _fbm(rng: np.random.Generator, n: int, beta: float = 3.2) -> np.ndarray:
    """Turbulent 1/f^beta noise in [0, 1] (spectral synthesis)."""
    spec = np.fft.rfft2(rng.standard_normal((n, n)).astype(np.float32)) / _freq(n) ** (beta / 2)
    spec[0, 0] = 0
    field = np.fft.irfft2(spec, s=(n, n)).astype(np.float32)
    field -= field.min()
    return field / (field.max() + 1e-8)


def _rotate(y: np.ndarray, x: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * y - s * x, s * y + c * x


def _star_colour(rng: np.random.Generator, n: int) -> np.ndarray:
    """Colours from blue-white hot stars to orange cool ones."""
    t = rng.beta(2.0, 2.0, n)[:, None].astype(np.float32)
    hot, cool = np.array([0.75, 0.85, 1.0], np.float32), np.array([1.0, 0.78, 0.5], np.float32)
    return hot * (1 - t) + cool * t


def _add_stars(img: Image, rng: np.random.Generator, n: int, flux: tuple[float, float] = (0.05, 2.0),
               fwhm: float = 1.6, pos: np.ndarray | None = None, spikes: bool = True) -> None:  # fmt: skip
    """Point sources with a Moffat PSF and power-law (Salpeter-like) fluxes, in place."""
    size = img.shape[0]
    if n <= 0:
        return
    if pos is None:
        pos = rng.uniform(0, size, (n, 2)).astype(np.float32)
    lo, hi = flux
    u = rng.uniform(0, 1, n)
    alpha = 1.35
    fluxes = (lo ** -alpha - u * (lo ** -alpha - hi ** -alpha)) ** (-1 / alpha)  # truncated power law
    colours = _star_colour(rng, n)
    alpha_m = 2.5
    gamma = fwhm / (2 * np.sqrt(2 ** (1 / alpha_m) - 1))
    r = int(np.ceil(gamma * 6)) + 2
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    for (py, px), f, col in zip(pos, fluxes, colours, strict=True):
        iy, ix = int(py), int(px)
        dy, dx = oy - (py - iy - 0.5), ox - (px - ix - 0.5)
        psf = (1 + (dy**2 + dx**2) / gamma**2) ** -alpha_m
        if spikes and f > 0.6 * hi:
            psf = psf + 0.15 * np.exp(-np.abs(dx) / 0.6) * np.exp(-np.abs(dy) / (r / 2))
            psf = psf + 0.15 * np.exp(-np.abs(dy) / 0.6) * np.exp(-np.abs(dx) / (r / 2))
        y0, y1, x0, x1 = iy - r, iy + r + 1, ix - r, ix + r + 1
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1, sx1 = psf.shape[0] - max(0, y1 - size), psf.shape[1] - max(0, x1 - size)
        if sy1 <= sy0 or sx1 <= sx0:
            continue
        img[max(0, y0) : min(size, y1), max(0, x0) : min(size, x1)] += (f * psf[sy0:sy1, sx0:sx1])[..., None] * col


def _sky(rng: np.random.Generator, n: int, level: float | None = None) -> Image:
    level = rng.uniform(0.0, 0.06) if level is None else level
    tint = np.array([rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0), rng.uniform(0.9, 1.1)], np.float32)
    y, x = _grid(n)
    grad = 1 + rng.uniform(-0.5, 0.5) * (y * np.cos(rng.uniform(0, 6.3)) + x * np.sin(rng.uniform(0, 6.3)))
    return (level * grad)[..., None] * tint


# -- the classes ------------------------------------------------------------------------------
def _galaxy(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    y, x = _grid(n)
    cy, cx = rng.uniform(-0.15, 0.15, 2)
    scale = rng.uniform(0.45, 0.8)
    yr, xr = _rotate(y - cy, x - cx, rng.uniform(0, np.pi))
    q = rng.uniform(0.25, 1.0)  # axis ratio: inclination
    yr = yr / q
    r = np.sqrt(yr**2 + xr**2) / scale + 1e-4
    phi = np.arctan2(yr, xr)
    sersic_n = rng.uniform(1.5, 4.0)
    b = 2 * sersic_n - 1 / 3
    re = rng.uniform(0.08, 0.2)
    bulge = np.exp(-b * ((r / re) ** (1 / sersic_n) - 1)).clip(0, 60) * 0.02
    bulge_col = np.array([1.0, 0.85, 0.62], np.float32)
    if rng.uniform() < 0.65:  # spiral
        arms = int(rng.integers(2, 5))
        pitch = np.deg2rad(rng.uniform(12, 28))
        theta0 = rng.uniform(0, 2 * np.pi)
        winding = arms * (phi - np.log(r) / np.tan(pitch) + theta0)
        arm = (0.5 + 0.5 * np.cos(winding)) ** rng.uniform(2, 5)
        disk = np.exp(-r / rng.uniform(0.25, 0.4))
        clumps = _fbm(rng, n, 2.0) ** 2
        lum = disk * (0.25 + 1.4 * arm * (0.6 + 0.8 * clumps))
        dust = 1 - 0.5 * (0.5 + 0.5 * np.cos(winding + 0.6)) ** 6 * disk
        disk_col = np.array([0.72, 0.82, 1.0], np.float32)
        lum = lum * dust
        norm = rng.uniform(0.8, 1.4) / max(float(lum.max()), 1e-6)
        img += (lum * norm)[..., None] * disk_col + (np.minimum(bulge * norm, 2.5))[..., None] * bulge_col
    else:  # elliptical: a smooth de Vaucouleurs-like profile with a bright core
        ell = np.exp(-b * ((r / (re * 4)) ** (1 / max(sersic_n, 3.0)) - 1))
        ell = ell / ell.max() * rng.uniform(1.2, 2.2)
        img += ell[..., None] * bulge_col
    _add_stars(img, rng, int(rng.integers(3, 15)), flux=(0.05, 1.0), fwhm=n / 48)
    return img


def _nebula(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    y, x = _grid(n)
    cy, cx = rng.uniform(-0.3, 0.3, 2)
    envelope = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / rng.uniform(0.3, 1.2))
    ha = _fbm(rng, n, rng.uniform(2.6, 3.4)) ** rng.uniform(1.5, 2.5)
    oiii = _fbm(rng, n, rng.uniform(2.6, 3.4)) ** rng.uniform(1.5, 2.5)
    dust = _fbm(rng, n, 3.0)
    lanes = 1 - np.clip((dust - rng.uniform(0.45, 0.6)) * 4, 0, 0.9)
    palette = rng.uniform()
    red = np.array([1.0, 0.25, 0.3], np.float32) if palette < 0.7 else np.array([1.0, 0.45, 0.7], np.float32)
    teal = np.array([0.2, 0.8, 0.85], np.float32)
    gain = rng.uniform(0.9, 1.6)
    img += gain * (envelope * lanes)[..., None] * (ha[..., None] * red + rng.uniform(0.2, 0.8) * oiii[..., None] * teal)
    _add_stars(img, rng, int(rng.integers(20, 80)), flux=(0.03, 1.2), fwhm=n / 52)
    return img


def _planet(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n, level=rng.uniform(0, 0.01))
    if rng.uniform() < 0.5:
        _add_stars(img, rng, int(rng.integers(3, 12)), flux=(0.02, 0.3), fwhm=n / 64, spikes=False)
    y, x = _grid(n)
    cy, cx = rng.uniform(-0.12, 0.12, 2)
    radius = rng.uniform(0.35, 0.6)
    tilt = rng.uniform(-0.5, 0.5)
    yr, xr = _rotate(y - cy, x - cx, tilt)
    yy, xx = yr / radius, xr / radius
    rr = yy**2 + xx**2
    inside = rr < 1
    z = np.sqrt(np.clip(1 - rr, 0, 1))
    kind = rng.choice(["gas", "rock", "ice"], p=[0.5, 0.3, 0.2])
    if kind == "gas":
        base, alt = np.array([0.95, 0.8, 0.6], np.float32), np.array([0.75, 0.5, 0.35], np.float32)
        nb = rng.uniform(5, 12)
    elif kind == "rock":
        base, alt = np.array([0.85, 0.45, 0.25], np.float32), np.array([0.55, 0.3, 0.2], np.float32)
        nb = rng.uniform(1, 3)
    else:
        base, alt = np.array([0.6, 0.85, 0.95], np.float32), np.array([0.45, 0.7, 0.9], np.float32)
        nb = rng.uniform(2, 5)
    turb = _fbm(rng, n, 3.5)
    band = 0.5 + 0.5 * np.sin(nb * np.pi * yy + 2.5 * (turb - 0.5) + rng.uniform(0, 6.3))
    surface = base * (1 - band[..., None]) + alt * band[..., None]
    # phase: light from a direction; the terminator is where the normal turns away from it
    la = rng.uniform(0, 2 * np.pi)
    lz = rng.uniform(0.0, 1.0) if rng.uniform() < 0.6 else 1.0
    light = np.array([np.sin(la) * np.sqrt(1 - lz**2), np.cos(la) * np.sqrt(1 - lz**2), lz], np.float32)
    shade = np.clip(yy * light[0] + xx * light[1] + z * light[2], 0, 1)
    limb = 1 - 0.6 * (1 - z)  # limb darkening
    disk = (shade * limb * inside)[..., None] * surface * rng.uniform(0.8, 1.3)
    rings = np.zeros_like(disk)
    if rng.uniform() < 0.4:
        ring_tilt = rng.uniform(0.15, 0.4)
        ry = yy / ring_tilt
        rdist = np.sqrt(ry**2 + xx**2)
        r_in, r_out = rng.uniform(1.2, 1.4), rng.uniform(1.8, 2.2)
        gap = np.abs(rdist - (r_in + r_out) / 2 * rng.uniform(0.95, 1.05)) < 0.05
        ring = ((rdist > r_in) & (rdist < r_out) & ~gap).astype(np.float32)
        ring *= 0.6 + 0.4 * np.sin(rdist * 40)
        behind = inside & (yy < 0)  # the far half of the rings is hidden by the disk
        rings = (ring * ~behind * 0.7)[..., None] * np.array([0.9, 0.82, 0.65], np.float32)
    img = img * ~inside[..., None] + disk + rings
    return img


def _star(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    style = rng.choice(["field", "open", "globular"], p=[0.4, 0.3, 0.3])
    if style == "field":
        _add_stars(img, rng, int(rng.integers(60, 250)), flux=(0.03, 3.0), fwhm=n / 50)
    else:
        count = int(rng.integers(80, 300))
        centre = rng.uniform(0.3 * n, 0.7 * n, 2)
        spread = n * (rng.uniform(0.06, 0.12) if style == "globular" else rng.uniform(0.15, 0.3))
        if style == "globular":  # a dense core falling off like a King profile
            r = spread * np.sqrt(rng.uniform(0, 1, count) ** -0.8 - 1).clip(0, 6)
            a = rng.uniform(0, 2 * np.pi, count)
            pos = centre + np.stack([r * np.sin(a), r * np.cos(a)], 1)
        else:
            pos = centre + rng.normal(0, spread, (count, 2))
        pos = pos[(pos >= 0).all(1) & (pos < n).all(1)].astype(np.float32)
        _add_stars(img, rng, len(pos), flux=(0.05, 2.0), fwhm=n / 60, pos=pos)
        _add_stars(img, rng, int(rng.integers(20, 80)), flux=(0.02, 0.8), fwhm=n / 60)
        if style == "globular":
            y, x = _grid(n)
            cy, cx = centre / n * 2 - 1
            glow = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * (spread / n * 2) ** 2))
            img += (0.35 * glow)[..., None] * np.array([1.0, 0.9, 0.7], np.float32)
    return img


# -- anomalies (never trained on) ---------------------------------------------------------------
def _comet(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    _add_stars(img, rng, int(rng.integers(30, 100)), flux=(0.03, 1.0), fwhm=n / 55)
    y, x = _grid(n)
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    ang = rng.uniform(0, 2 * np.pi)
    along, across = _rotate(y - cy, x - cx, ang)
    tail = (along > 0) * np.exp(-along / rng.uniform(0.6, 1.2))
    width = 0.03 + 0.25 * np.clip(along, 0, None)
    dust = tail * np.exp(-((across - 0.15 * along**2) ** 2) / (2 * width**2))
    ion = tail * np.exp(-(across**2) / (2 * (0.01 + 0.04 * np.clip(along, 0, None)) ** 2))
    coma = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 0.04**2))
    img += (0.8 * dust)[..., None] * np.array([1.0, 0.95, 0.8], np.float32)
    img += (0.7 * ion)[..., None] * np.array([0.4, 0.7, 1.0], np.float32)
    img += (2.0 * coma)[..., None] * np.array([0.7, 1.0, 0.8], np.float32)
    return img


def _trail(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n)
    _add_stars(img, rng, int(rng.integers(40, 150)), flux=(0.03, 1.5), fwhm=n / 55)
    y, x = _grid(n)
    for _ in range(int(rng.integers(1, 4))):
        ang = rng.uniform(0, np.pi)
        off = rng.uniform(-0.6, 0.6)
        d = np.abs(np.cos(ang) * y + np.sin(ang) * x - off)
        line = np.exp(-(d**2) / (2 * (1.2 / n) ** 2))
        if rng.uniform() < 0.5:  # an aircraft: blinking lights make the trail dashed
            t = -np.sin(ang) * y + np.cos(ang) * x
            line = line * (np.sin(t * rng.uniform(20, 40)) > 0.3)
            colour = np.array([1.0, 0.3, 0.3], np.float32) if rng.uniform() < 0.5 else np.ones(3, np.float32)
        else:
            colour = np.ones(3, np.float32)
        img += (rng.uniform(0.8, 2.0) * line)[..., None] * colour
    return img


def _lens_flare(rng: np.random.Generator, n: int) -> Image:
    img = _sky(rng, n, level=rng.uniform(0.02, 0.1))
    y, x = _grid(n)
    sy, sx = rng.uniform(-0.7, 0.7, 2)
    r = np.sqrt((y - sy) ** 2 + (x - sx) ** 2)
    img += (3.0 * np.exp(-r / 0.05) + 0.4 * np.exp(-r / 0.35))[..., None] * np.array([1.0, 0.95, 0.85], np.float32)
    streak = np.exp(-np.abs(y - sy) / 0.01) * np.exp(-np.abs(x - sx) / 0.8)
    img += (0.6 * streak)[..., None] * np.array([0.8, 0.9, 1.0], np.float32)
    for t in rng.uniform(-1.2, 1.0, int(rng.integers(4, 8))):  # ghosts along the line through the centre
        gy, gx = -sy * t, -sx * t
        gr = rng.uniform(0.04, 0.2)
        ang = np.arctan2(y - gy, x - gx)
        hexr = gr * np.cos(np.pi / 6) / np.cos((ang % (np.pi / 3)) - np.pi / 6)  # hexagonal aperture
        d = np.sqrt((y - gy) ** 2 + (x - gx) ** 2)
        ghost = (d < hexr) * rng.uniform(0.1, 0.35) + (np.abs(d - hexr) < 0.01) * 0.3
        img += ghost[..., None] * rng.uniform(0.3, 1.0, 3).astype(np.float32)
    return img


def _non_sky(rng: np.random.Generator, n: int) -> Image:
    """A daytime scene: blue sky, a horizon, ground, houses and trees."""
    y, x = _grid(n)
    horizon = rng.uniform(-0.2, 0.4)
    sky_top, sky_bottom = np.array([0.25, 0.45, 0.85], np.float32), np.array([0.7, 0.82, 0.95], np.float32)
    t = ((y + 1) / (horizon + 1 + 1e-6)).clip(0, 1)[..., None]
    img = sky_top * (1 - t) + sky_bottom * t
    ground_col = np.array([0.3, 0.55, 0.2], np.float32) if rng.uniform() < 0.6 else np.array([0.55, 0.45, 0.3], np.float32)
    ground = (y > horizon)[..., None]
    texture = (0.8 + 0.4 * _fbm(rng, n, 2.0))[..., None]
    img = img * ~ground + ground * ground_col * texture
    for _ in range(int(rng.integers(1, 4))):  # houses: a wall and a roof
        hx, w, h = rng.uniform(-0.9, 0.7), rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.35)
        wall = (x > hx) & (x < hx + w) & (y < horizon + 0.05) & (y > horizon + 0.05 - h)
        roof = (y <= horizon + 0.05 - h) & (y > horizon + 0.05 - h - (w / 2 - np.abs(x - hx - w / 2)))
        img[wall] = rng.uniform(0.5, 0.95, 3)
        img[roof & (x > hx) & (x < hx + w)] = np.array([0.6, 0.2, 0.15])
    if rng.uniform() < 0.5:
        cy, cx = rng.uniform(-0.9, horizon - 0.2), rng.uniform(-0.8, 0.8)
        cloud = _fbm(rng, n, 2.5) * np.exp(-((y - cy) ** 2 / 0.02 + (x - cx) ** 2 / 0.2))
        img = img + (cloud * 1.5)[..., None]
    return img.astype(np.float32)


_RENDERERS = {
    "galaxy": _galaxy, "nebula": _nebula, "planet": _planet, "star": _star,
    "comet": _comet, "trail": _trail, "lens_flare": _lens_flare, "non_sky": _non_sky,
}  # fmt: skip


def _finish(img: Image, rng: np.random.Generator, size: int, noise: bool = True) -> np.ndarray:
    """Area-average to ``size``, add sky noise, a random exposure and gamma, quantise."""
    big = img.shape[0]
    f = big // size
    img = img.reshape(size, f, size, f, 3).mean(axis=(1, 3))
    if noise:
        img = img + rng.normal(0, rng.uniform(0.005, 0.03), img.shape).astype(np.float32)
        img = img * rng.uniform(0.75, 1.25)
    img = np.clip(img, 0, None)
    img = img / (1 + img * rng.uniform(0.0, 0.4))  # soft highlight roll-off like a real stretch
    img = np.clip(img, 0, 1) ** (1 / 1.6)
    return (img * 255 + 0.5).astype(np.uint8)


def render(kind: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One RGB uint8 picture (size, size, 3) of a class or an anomaly kind."""
    if kind not in _RENDERERS:
        raise ValueError(f"unknown kind {kind!r}; known: {sorted(_RENDERERS)}")
    img = _RENDERERS[kind](rng, size * 2)
    return _finish(img, rng, size, noise=kind != "non_sky")


def render_multilabel(kinds: Sequence[str], rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One picture holding every class in ``kinds``: a star field or nebula behind, a galaxy
    and a planet placed side by side in front so each stays recognisable."""
    unknown = [k for k in kinds if k not in CLASSES]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {CLASSES}, got {list(kinds)}")
    n = size * 2
    layers = [k for k in ("nebula", "star") if k in kinds]
    img = np.zeros((n, n, 3), np.float32)
    for k in layers:  # backgrounds add up
        img += _RENDERERS[k](rng, n)
    fronts = [k for k in ("galaxy", "planet") if k in kinds]
    if fronts:
        half = n // 2 if len(fronts) == 2 else n
        offs = [rng.integers(0, n - half + 1) for _ in fronts]
        for i, k in enumerate(fronts):
            sub = _RENDERERS[k](rng, half if half % 2 == 0 else half - 1)
            h = sub.shape[0]
            y0 = int(rng.integers(0, n - h + 1))
            x0 = (i * (n - h)) if len(fronts) == 2 else int(offs[i])
            mask = sub.max(-1, keepdims=True) > 0.08
            patch = img[y0 : y0 + h, x0 : x0 + h]
            img[y0 : y0 + h, x0 : x0 + h] = np.where(mask, np.maximum(patch, sub) if k == "galaxy" else sub, patch)
    return _finish(img, rng, size)
