"""The ``nebula`` class: emission clouds from log-normal turbulence (H-alpha, OIII, SII in a
natural or "Hubble" palette), dust lanes with ionised rims, shells and blue reflection
nebulae; stars behind the dust are dimmed and reddened.
"""

from __future__ import annotations

import math

import numpy as np

from astro_exp.sources.sky_render.primitives import (
    F32,
    Image,
    _bright_level,
    _fbm,
    _grid,
    _loguniform,
    _rgb,
    _smooth,
    _to_px,
)
from astro_exp.sources.sky_render.stars import _add_stars, _blob, _Psf, _psf_for, _sky, _star_field

_Palette = tuple[np.ndarray, np.ndarray, np.ndarray]
_PALETTES: dict[str, _Palette] = {  # (H-alpha, OIII, SII) display colours
    "natural": (_rgb(1.0, 0.2, 0.28), _rgb(0.2, 0.8, 0.85), _rgb(0.85, 0.1, 0.2)),
    "hubble": (_rgb(0.7, 0.55, 0.15), _rgb(0.15, 0.4, 0.9), _rgb(0.8, 0.25, 0.08)),
    "hydrogen": (_rgb(1.0, 0.3, 0.35), _rgb(0.9, 0.45, 0.6), _rgb(0.8, 0.15, 0.25)),
}


def _hii_region(
    rng: np.random.Generator, n: int, cy: float, cx: float, extent: float, palette: _Palette
) -> tuple[Image, np.ndarray]:
    """An HII region: a lumpy envelope of turbulent gas with filaments, OIII in its core.

    Returns:
        ``(emission, envelope)``; the envelope (0..1) says where the dust can sit.
    """
    ha_c, o3_c, s2_c = palette
    env = np.zeros((n, n), F32)
    for _ in range(int(rng.integers(1, 4))):
        by, bx = cy + rng.normal(0, 0.3 * extent), cx + rng.normal(0, 0.3 * extent)
        sz = extent * rng.uniform(0.4, 0.9)
        env += _blob(n, by, bx, sz * rng.uniform(0.5, 1.0), sz, rng.uniform(0, math.pi))
    env /= env.max() + F32(1e-6)
    f1 = _fbm(rng, (n, n), rng.uniform(2.6, 3.4), rng.uniform(1.0, 2.5), rng.uniform(0, math.pi))
    ha = env * np.exp(F32(rng.uniform(0.6, 1.1)) * f1)
    ridge = (1.0 - np.abs(_fbm(rng, (n, n), 3.0)) / 2.5).clip(0, 1) ** F32(8)
    ha += env * ridge * F32(rng.uniform(0.3, 1.2))
    core = env ** F32(rng.uniform(2.0, 4.0))
    o3 = core * np.exp(F32(0.7) * (0.6 * f1 + 0.8 * _fbm(rng, (n, n), 3.0)))
    s2 = ha * (0.4 + 0.3 * np.tanh(f1))
    emission = (ha * 0.55)[..., None] * ha_c + (o3 * F32(rng.uniform(0.2, 0.8)))[..., None] * o3_c
    emission += (s2 * 0.2)[..., None] * s2_c
    return emission, env


def _shell(
    rng: np.random.Generator, n: int, cy: float, cx: float, extent: float, palette: _Palette
) -> tuple[Image, np.ndarray]:
    """A planetary nebula or supernova remnant: a turbulent H-alpha shell, OIII inside, the
    central star.

    Returns:
        ``(emission, envelope)``.
    """
    ha_c, o3_c, _ = palette
    y, x = _grid(n)
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
    _add_stars(
        emission,
        np.array([_to_px(cy, n)]),
        np.array([_to_px(cx, n)]),
        np.array([rng.uniform(0.5, 2.0)], F32),
        _rgb(0.8, 0.88, 1.0)[None],
        star,
    )
    return emission, env


def _reflection(
    rng: np.random.Generator, n: int, cy: float, cx: float, extent: float
) -> tuple[Image, np.ndarray]:
    """A reflection nebula: blue dust lit by a few bright young stars.

    Returns:
        ``(emission, envelope)``.
    """
    y, x = _grid(n)
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
    return emission, env


def _dust(
    rng: np.random.Generator, n: int, env: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Optical depth of the dust where its column is thick, within the envelope ``env``.

    Returns:
        ``(tau, the dust column, the threshold it absorbs above)``.
    """
    d = _fbm(rng, (n, n), rng.uniform(2.8, 3.6), rng.uniform(1.0, 3.0), rng.uniform(0, math.pi))
    thr = rng.uniform(0.2, 1.1)
    tau = (np.clip(d - thr, 0, None) * F32(rng.uniform(1.5, 4.0))) * _smooth(env, 0.02, 0.3)
    if rng.uniform() < 0.15:
        tau *= 0.2
    return tau, d, thr


def _nebula_light(
    rng: np.random.Generator, n: int, cy: float, cx: float, extent: float
) -> tuple[Image, np.ndarray]:
    """Emission (linear light) and dust optical depth of a nebula around (cy, cx) spread
    over about ``extent``; the caller dims what lies behind by exp(-tau)."""
    pal = str(rng.choice(list(_PALETTES), p=[0.6, 0.28, 0.12]))
    palette = _PALETTES[pal]
    kind = rng.choice(3, p=[0.62, 0.24, 0.14])  # cloud, shell, reflection
    gain = F32(rng.uniform(0.5, 1.0))
    if kind == 0:
        emission, env = _hii_region(rng, n, cy, cx, extent, palette)
    elif kind == 1:
        emission, env = _shell(rng, n, cy, cx, extent, palette)
    else:
        emission, env = _reflection(rng, n, cy, cx, extent)
    emission *= gain / _bright_level(emission)
    # dust: where the column is thick it absorbs; its edge facing the light glows (ionised rim)
    tau, d, thr = _dust(rng, n, env)
    emission *= np.exp(-tau)[..., None]
    if kind != 1:
        rim = np.exp(-(((d - thr) / 0.12) ** 2)) * (d < thr) * env
        emission += (rim * gain * F32(rng.uniform(0.1, 0.5)))[..., None] * (
            palette[0] if kind == 0 else _rgb(0.6, 0.7, 1.0)
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
    _star_field(
        img,
        rng,
        m,
        psf,
        lo=0.5,
        hi=6.0,
        young=True,
        ys=_to_px(cy + rng.normal(0, 0.3, m), n),
        xs=_to_px(cx + rng.normal(0, 0.3, m), n),
    )
    return img
