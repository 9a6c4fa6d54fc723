"""Surface maps of the ``planet`` class: where each pixel of the disk lands on the globe
(latitude, longitude, a cell of an equirectangular map) and the albedo of Jupiter-, Saturn-,
ice-giant-, Mars-, Moon- and Earth-like worlds there.

Why the maps are drawn on a (lat, lon) grid and sampled: bands, spots, caps and craters
then wrap around the sphere and foreshorten at the limb as on a real globe.
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
    _loguniform,
    _rgb,
    _smooth,
)


class _SurfaceMap(NamedTuple):
    """Each pixel's latitude, longitude and cell (iy, ix) of an ``mh`` x ``mw`` surface map."""

    lat: np.ndarray
    lon: np.ndarray
    sinlat: np.ndarray
    iy: np.ndarray
    ix: np.ndarray
    mh: int
    mw: int

    def sample(self, m: np.ndarray) -> np.ndarray:
        return m[self.iy, self.ix]


def _banded_albedo(rng: np.random.Generator, kind: str, surf: _SurfaceMap) -> Image:
    """Jupiter or Saturn: turbulent belts and zones, darker poles, maybe a great red spot."""
    mh, mw, lat = surf.mh, surf.mw, surf.lat
    turb = surf.sample(_fbm(rng, (mh, mw), 3.0, 4.0, 0.0))
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
    alb *= (1.0 + 0.06 * surf.sample(_fbm(rng, (mh, mw), 2.2, 2.5, 0.0)))[..., None]
    alb *= (1.0 - 0.35 * np.abs(surf.sinlat) ** 3)[..., None]
    if kind == "jupiter" and rng.uniform() < 0.6:  # a great spot
        lon_s = rng.uniform(-math.pi, math.pi)
        dl = (surf.lon - lon_s + math.pi) % TAU - math.pi
        spot = np.exp(-((dl / 0.28) ** 2 + ((lat + 0.38) / 0.1) ** 2))[..., None]
        alb = alb * (1 - spot) + spot * _rgb(0.85, 0.42, 0.28)
    return alb


def _ice_albedo(rng: np.random.Generator, surf: _SurfaceMap) -> Image:
    """Uranus or Neptune: a pale cyan or deep blue haze, faint bands, bright clouds."""
    base = _rgb(0.62, 0.86, 0.92) if rng.uniform() < 0.5 else _rgb(0.3, 0.48, 0.95)
    bands = 1.0 + 0.05 * np.sin(F32(rng.uniform(4, 10)) * surf.lat + F32(rng.uniform(0, TAU)))
    alb = base * bands[..., None]
    clouds = np.clip(surf.sample(_fbm(rng, (surf.mh, surf.mw), 3.0, 5.0, 0.0)) - 1.8, 0, None)
    return alb + clouds[..., None] * 0.5


def _mars_albedo(rng: np.random.Generator, surf: _SurfaceMap) -> Image:
    """Mars: rust with dark markings and one polar cap."""
    dark = 1.0 / (1.0 + np.exp(-2.5 * (surf.sample(_fbm(rng, (surf.mh, surf.mw), 2.8)) - 0.4)))
    alb = _rgb(0.82, 0.43, 0.22) * (1.0 - 0.45 * dark[..., None])
    cap = _smooth(surf.sinlat * (1 if rng.uniform() < 0.5 else -1), 0.88, 0.93)[..., None]
    return alb * (1 - cap) + cap * _rgb(0.95, 0.93, 0.9)


def _rocky_albedo(rng: np.random.Generator, surf: _SurfaceMap) -> Image:
    """Moon or Mercury: grey highlands, dark maria and craters with bright rims."""
    mh, mw = surf.mh, surf.mw
    maria = surf.sample(_fbm(rng, (mh, mw), 3.2))
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
    tone = tone + surf.sample(crater)
    return tone[..., None] * _rgb(1.0, 0.97, 0.93)


def _terran_albedo(rng: np.random.Generator, surf: _SurfaceMap) -> Image:
    """Earth: oceans, green and desert continents, ice caps, clouds."""
    mh, mw = surf.mh, surf.mw
    land = surf.sample(_fbm(rng, (mh, mw), 2.6)) > rng.uniform(0.0, 0.6)
    veg = surf.sample(_fbm(rng, (mh, mw), 2.4))[..., None]
    land_col = np.where(veg > 0, _rgb(0.22, 0.38, 0.14), _rgb(0.62, 0.52, 0.34))
    alb = np.where(land[..., None], land_col, _rgb(0.04, 0.12, 0.38))
    ice = _smooth(np.abs(surf.sinlat), 0.9, 0.94)[..., None]
    cloud = np.clip(surf.sample(_fbm(rng, (mh, mw), 2.4, 2.0, 0.0)) - 0.2, 0, 1)[..., None]
    alb = alb * (1 - ice) + ice * 0.95
    return alb * (1 - cloud) + cloud * 0.95


def _albedo(rng: np.random.Generator, kind: str, surf: _SurfaceMap) -> tuple[Image, float]:
    """The surface colour of a ``kind`` world and its Minnaert limb-darkening exponent."""
    if kind in ("jupiter", "saturn"):
        return _banded_albedo(rng, kind, surf), 0.9
    if kind == "ice":
        return _ice_albedo(rng, surf), 0.95
    if kind == "mars":
        return _mars_albedo(rng, surf), 0.75
    if kind == "rocky":
        return _rocky_albedo(rng, surf), 0.55
    return _terran_albedo(rng, surf), 0.8


def _surface_map(
    rng: np.random.Generator,
    n: int,
    xyz: tuple[np.ndarray, np.ndarray, np.ndarray],
    axes: tuple[tuple[float, float, float], ...],
) -> _SurfaceMap:
    """Latitude and (randomly turned) longitude of each pixel of the globe ``xyz`` whose
    rotation pole and equator axes are ``axes`` (p, e1, e2), and its map cell."""
    X, Y, Z = xyz
    p, e1, e2 = axes
    sinlat = np.clip(X * p[0] + Y * p[1] + Z * p[2], -1.0, 1.0)
    lat = np.arcsin(sinlat)
    lon = np.arctan2(X * e1[0] + Y * e1[1] + Z * e1[2], X * e2[0] + Y * e2[1] + Z * e2[2])
    lon = lon + F32(rng.uniform(0, TAU))
    mh = max(n // 2, 16)
    mw = 2 * mh
    iy = np.clip(((lat / math.pi + 0.5) * mh).astype(np.int32), 0, mh - 1)
    ix = ((lon / TAU % 1.0) * mw).astype(np.int32) % mw
    return _SurfaceMap(lat, lon, sinlat, iy, ix, mh, mw)
