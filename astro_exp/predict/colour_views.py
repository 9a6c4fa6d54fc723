"""Colour views for scoring: the same pictures as another camera would record them.

APOD's pictures are mostly colour composites; other telescopes give monochrome frames
(one filter, photographic plates, survey cutouts) or false-colour palettes that put the
emission lines in other channels than APOD's natural-colour red. Scoring a checkpoint on a
view of its held-out pictures (``evaluate view=gray``, ``crossval views=[gray, swap_rb]``)
measures how much of what it learnt is the colour of one kind of camera, with the same
careful labels and no new pictures.

A view maps a uint8 (3, H, W) array to another one; it runs after the bundle's resize, on
the pixels the model sees. Both views are per-pixel, so this matches converting the files
first up to the rounding of the resize (tests/test_evaluate.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from astro_exp.errors import ConfigError

# ITU-R BT.601 luma, as Pillow's convert("L") and Kornia's rgb_to_grayscale weigh channels
_LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def gray(px: np.ndarray) -> np.ndarray:
    """Monochrome: every channel the picture's luma (a one-filter or unfiltered camera)."""
    y = np.tensordot(_LUMA, px.astype(np.float32), axes=1)
    return np.broadcast_to(np.clip(np.rint(y), 0, 255).astype(np.uint8), px.shape).copy()


def swap_rb(px: np.ndarray) -> np.ndarray:
    """Red and blue exchanged: H-alpha red becomes blue, as false-colour palettes move it."""
    return np.ascontiguousarray(px[::-1])


VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"gray": gray, "swap_rb": swap_rb}


def colour_view(name: str | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The view called ``name`` (None or "none": the pictures as they are)."""
    if name is None or str(name).lower() in ("", "none", "null"):
        return None
    if str(name) not in VIEWS:
        raise ConfigError(f"view={name} is not a colour view; use one of {', '.join(VIEWS)}")
    return VIEWS[str(name)]
