"""Decode-once tensor cache: every picture resized once into one uint8 memory-mapped array.

The array is ``(N, 3, S, S)`` uint8 in a ``.npy`` file named by a key of (dataset content,
image size, resize policy), so the next run with the same data and size maps it in
instantly and training never decodes a JPEG in the loop. It is written under a temporary
name and renamed when complete: a killed build leaves no half-written cache behind.
Sources decode each picture once, at the size it is needed: ``ImageSet.load(i, size)`` gets
the cache's size, and file sources let a JPEG decode at a reduced scale that still keeps
twice that (``imageio.read_image(target_size=size)``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from astro_exp.data.imageset import ImageSet
from astro_exp.errors import ConfigError, DataError
from astro_exp.files import atomic_write
from astro_exp.progress import progress as progress_bar

log = logging.getLogger(__name__)

# 2: sources decode JPEGs at a reduced scale (imageio.read_image(target_size=...)), which
# changes the cached pixels by about a grey level: older caches are rebuilt, not mixed in
CACHE_VERSION = 2
RESIZE_POLICIES = ("squash", "crop", "pad")


def cache_key(imageset: ImageSet, image_size: int, resize: str) -> str:
    raw = f"{imageset.fingerprint}|{image_size}|{resize}|v{CACHE_VERSION}"
    return (
        f"{imageset.name}-{image_size}px-{resize}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"
    )


def resize_image(img: np.ndarray, size: int, policy: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of any size -> (size, size, 3) by the given policy."""
    if policy not in RESIZE_POLICIES:
        raise ConfigError(f"preprocess.resize={policy!r} is not one of {RESIZE_POLICIES}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(img, dtype=np.uint8)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8))
    if policy == "squash":
        return np.asarray(pil.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0))
    scale = size / (min(h, w) if policy == "crop" else max(h, w))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    pil = pil.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=2.0)
    arr = np.asarray(pil)
    if policy == "crop":
        top, left = (nh - size) // 2, (nw - size) // 2
        return np.ascontiguousarray(arr[top : top + size, left : left + size])
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = arr
    return out


def build_cache(
    imageset: ImageSet,
    image_size: int,
    resize: str,
    cache_dir: str | Path,
    progress: bool = True,
    num_threads: int | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Return the (N, 3, S, S) uint8 memmap of ``imageset`` and its unreadable items.

    Items whose ``load`` raises :class:`DataError` are left black and reported as
    ``{index: reason}`` so the caller can leave them out; the build goes on.
    """
    if resize not in RESIZE_POLICIES:
        raise ConfigError(f"preprocess.resize={resize!r} is not one of {RESIZE_POLICIES}")
    if image_size < 8:
        raise ConfigError(f"preprocess.image_size={image_size} is too small (need >= 8)")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(imageset, image_size, resize)
    path = cache_dir / f"{key}.npy"
    meta_path = cache_dir / f"{key}.json"
    n = len(imageset)
    if path.exists() and meta_path.exists():
        arr = np.load(path, mmap_mode="r")
        meta = json.loads(meta_path.read_text())
        if arr.shape == (n, 3, image_size, image_size) and arr.dtype == np.uint8:
            log.info("tensor cache hit: %s (%d pictures)", path, n)
            return arr, {int(k): v for k, v in meta.get("failed", {}).items()}
        log.warning("tensor cache %s has the wrong shape; rebuilding", path)

    failed: dict[int, str] = {}
    workers = num_threads or min(4, os.cpu_count() or 1)

    def write(tmp: Path) -> None:
        arr = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(n, 3, image_size, image_size)
        )

        def fill(i: int) -> None:
            try:
                img = imageset.load(i, image_size)
            except DataError as e:
                failed[i] = str(e)
                return
            arr[i] = resize_image(img, image_size, resize).transpose(2, 0, 1)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in progress_bar(
                pool.map(fill, range(n)),
                enabled=progress,
                total=n,
                unit="img",
                desc=f"caching {imageset.name} @{image_size}px",
            ):
                pass
        arr.flush()

    atomic_write(path, write)
    meta = {
        "name": imageset.name,
        "n": n,
        "image_size": image_size,
        "resize": resize,
        "fingerprint": imageset.fingerprint,
        "ids_sha256": _ids_digest(imageset.ids),
        "failed": failed,
    }
    atomic_write(meta_path, json.dumps(meta, indent=1))
    log.info("tensor cache built: %s (%d pictures, %d unreadable)", path, n, len(failed))
    return np.load(path, mmap_mode="r"), failed


def _ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()
