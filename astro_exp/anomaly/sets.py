"""Pictures the model never saw in training, to measure how well anomalies are flagged.

- held-out classes (``anomaly.holdout_classes``): removed from train/val/test *before*
  training by :func:`split_holdout` (``astro_exp.train`` calls it before the DataModule
  is built), then scored as anomalies;
- sources that can make them (:class:`~astro_exp.sources.protocols.HasAnomalySet`, the
  synthetic renderer): kinds kept out of training (comets, trails, lens flares, ...);
- every other source: scikit-image's bundled non-astronomical photos (a cat, coffee, a
  camera man, bricks, text, ...), each as the whole photo plus random crops.

Each set is an :class:`ImageSet`, so it goes through the same decode-once tensor cache
and resize policy as the training data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from astro_exp.data.imageset import ImageSet
from astro_exp.errors import ConfigError

# scikit-image photos that ship inside the package (no download) and show no sky.
# (skimage's moon and hubble_deep_field are astronomical and deliberately left out.)
SKIMAGE_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
    "horse",
    "coins",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "immunohistochemistry",
    "cell",
    "logo",
    "colorwheel",
    "clock",
    "checkerboard",
    "retina",
)


def split_holdout(
    imageset: ImageSet, holdout: Sequence[str] | None
) -> tuple[ImageSet, ImageSet | None]:
    """(the set without the ``holdout`` classes, the held-out pictures) — None if none.

    Multiclass: pictures of a held-out class leave; the rest keep their labels, re-indexed.
    Multilabel: a picture with any held-out label leaves; the others lose those columns.
    The kept set gets its own fingerprint, so its tensor cache and splits are its own.
    """
    holdout = list(holdout or [])
    if not holdout:
        return imageset, None
    unknown = [c for c in holdout if c not in imageset.classes]
    if unknown:
        raise ConfigError(
            f"anomaly.holdout_classes has unknown classes {unknown}; this data has {imageset.classes}"
        )
    keep_classes = [c for c in imageset.classes if c not in holdout]
    if len(keep_classes) < 2:
        raise ConfigError(
            f"anomaly.holdout_classes={holdout} leaves {keep_classes}; keep at least 2 classes to train on"
        )
    hold_cols = [imageset.classes.index(c) for c in holdout]
    keep_cols = [imageset.classes.index(c) for c in keep_classes]
    t = imageset.targets
    if imageset.task == "multiclass":
        out_mask = np.isin(t, hold_cols)
        remap = np.full(len(imageset.classes), -1, np.int64)
        remap[keep_cols] = np.arange(len(keep_cols))
        hold_remap = np.full(len(imageset.classes), -1, np.int64)
        hold_remap[hold_cols] = np.arange(len(hold_cols))
        keep_t = remap[t[~out_mask]]
        hold_t = hold_remap[t[out_mask]]
    else:
        out_mask = t[:, hold_cols].sum(1) > 0
        keep_t = np.ascontiguousarray(t[~out_mask][:, keep_cols])
        hold_t = np.argmax(t[out_mask][:, hold_cols], axis=1).astype(np.int64)
    tag = hashlib.sha256(f"{imageset.fingerprint}|holdout={sorted(holdout)}".encode()).hexdigest()
    kept = imageset.take(
        np.flatnonzero(~out_mask), fingerprint=tag, classes=keep_classes, targets=keep_t
    )
    held = imageset.take(
        np.flatnonzero(out_mask),
        fingerprint=tag + "-out",
        name=f"{imageset.name}-holdout",
        classes=holdout,
        targets=hold_t,
        task="multiclass",
    )
    return kept, (held if len(held) else None)


def _gray_to_rgb(a: np.ndarray) -> np.ndarray:
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3], dtype=np.uint8)


def skimage_photo_set(
    photos: Sequence[str] = SKIMAGE_PHOTOS, views: int = 4, seed: int = 0
) -> ImageSet:
    """Non-astronomical photos: each whole, plus ``views - 1`` random crops (30-80 % side)."""
    try:
        import skimage
        import skimage.data
    except ImportError:
        raise ConfigError(
            "anomaly evaluation on real data needs scikit-image: pip install scikit-image"
        ) from None
    bad = [p for p in photos if not callable(getattr(skimage.data, p, None))]
    if bad:
        raise ConfigError(
            f"anomaly.photos has names skimage.data lacks: {bad}; pick from {list(SKIMAGE_PHOTOS)}"
        )
    photos, views = list(photos), max(1, int(views))
    n = len(photos) * views

    def load(i: int, size: int) -> np.ndarray:
        p, v = divmod(i, views)
        img = _gray_to_rgb(getattr(skimage.data, photos[p])())
        if v == 0:
            return img
        rng = np.random.default_rng([seed, p, v])
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.3, 0.8))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        return np.ascontiguousarray(img[top : top + side, left : left + side])

    raw = f"skimage-{skimage.__version__}|{photos}|{views}|{seed}"
    return ImageSet(
        name="skimage-photos",
        classes=["photo"],
        task="multiclass",
        ids=[f"skimage:{photos[i // views]}#{i % views}" for i in range(n)],
        targets=np.zeros(n, np.int64),
        fingerprint=hashlib.sha256(raw.encode()).hexdigest(),
        load=load,
    )
