"""The entry points: :func:`render` (one class or anomaly kind) and :func:`render_multilabel`
(several classes in one frame), and the names of the kinds.

Why the random calls here must stay in order: a picture is a pure function of the
generator's state, and the tensor cache (``RENDER_VERSION``) and the tests rely on that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from astro_exp.sources.sky_render.anomalies import _aurora, _comet, _lens_flare, _non_sky, _trail
from astro_exp.sources.sky_render.camera import _finish
from astro_exp.sources.sky_render.galaxies import _galaxy, _galaxy_light
from astro_exp.sources.sky_render.nebulae import _nebula, _nebula_light
from astro_exp.sources.sky_render.planets import _planet, _planet_kind, _planet_light
from astro_exp.sources.sky_render.primitives import Image, _grid, _loguniform, _rgb
from astro_exp.sources.sky_render.stars import _cluster, _psf_for, _sky, _star, _star_field

CLASSES: tuple[str, ...] = ("galaxy", "nebula", "planet", "star")
ANOMALY_KINDS: tuple[str, ...] = ("comet", "trail", "lens_flare", "non_sky", "aurora")
RENDER_VERSION: str = "2"

_RENDERERS: dict[str, Callable[[np.random.Generator, int], Image]] = {
    "galaxy": _galaxy,
    "nebula": _nebula,
    "planet": _planet,
    "star": _star,
    "comet": _comet,
    "trail": _trail,
    "lens_flare": _lens_flare,
    "non_sky": _non_sky,
    "aurora": _aurora,
}


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
        kind = _planet_kind(rng)
        pr = rad * (
            rng.uniform(0.36, 0.42) if kind in ("saturn", "ice") else rng.uniform(0.6, 0.85)
        )
        light, cover = _planet_light(rng, n, cy, cx, pr, kind)
        img = img * (1 - cover)[..., None] + light
    return _finish(img, rng, size)
