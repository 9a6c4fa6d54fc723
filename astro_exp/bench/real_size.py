"""Figures at real picture sizes: APOD pictures are 1-4k px JPEGs, so decoding and
resizing weigh more than at the bench's own 4x-the-model-size files.

- ``cache_build_full_img_s`` / ``cache_build_draft_img_s``: the tensor cache built from
  ``bench.real_pictures`` JPEGs of ``bench.real_sizes`` px (long side) with a full decode
  of every picture (how it was) and with the sources' decode at the size needed (JPEG
  draft, ``imageio.read_image(target_size=...)``), same files, same run;
- :func:`real_jpegs` also feeds the naive baseline at real sizes (``pipelines.py``).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from astro_exp.data.cache import build_cache
from astro_exp.imageio import read_image
from astro_exp.sources.folder import FolderSource


def sky_jpeg(path: Path, size: tuple[int, int], seed: int = 0, quality: int = 90) -> Path:
    """A photo-like JPEG of ``size`` (w, h): smooth colour structure (a nebula, gradients),
    point-like stars and sensor noise, so it compresses and decodes like a sky photo (random
    pixels would be many times larger and slower than any real picture)."""
    rng = np.random.default_rng(seed)
    w, h = size
    low = (rng.random((max(2, h // 100), max(2, w // 100), 3)) * 200).astype(np.uint8)
    img = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC), np.int16)
    tile = rng.integers(-5, 6, (256, 256, 3), dtype=np.int16)  # noise, tiled: cheap to make
    img = img + np.tile(tile, (h // 256 + 1, w // 256 + 1, 1))[:h, :w]
    stars = rng.integers(0, [h, w], (max(1, w * h // 2000), 2))
    img[stars[:, 0], stars[:, 1]] = 255
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=quality)
    return path


def real_jpegs(
    root: Path, n: int, sizes: tuple[int, int], classes: list[str], seed: int = 0
) -> list[Path]:
    """``n`` sky JPEGs under ``root/<class>/`` (round robin), long sides spread over
    ``sizes`` and aspect ratios from 1:1 to 3:2, both orientations."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        long = int(rng.integers(sizes[0], sizes[1] + 1))
        short = int(long / rng.uniform(1.0, 1.5))
        wh = (long, short) if i % 2 == 0 else (short, long)
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(sky_jpeg(folder / f"{i:04d}.jpg", wh, seed=seed + i))
    return paths


def cache_build_figures(
    root: Path, image_size: int, resize: str, repeats: int = 2
) -> dict[str, float | str]:
    """Pictures/s of a tensor-cache build from the JPEGs under ``root`` (class folders):
    full decode against decode at the size needed; the best of ``repeats`` builds each."""
    source = FolderSource(str(root)).imageset()
    paths = source.meta["paths"]
    full = dataclasses.replace(
        source,
        fingerprint=source.fingerprint + "-full-decode",
        load=lambda i, size: read_image(paths[i]),  # what every source did before
    )
    out: dict[str, float | str] = {}
    for name, imageset in (("full", full), ("draft", source)):
        best = float("inf")
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
                t0 = time.perf_counter()
                _, failed = build_cache(imageset, image_size, resize, tmp, progress=False)
                best = min(best, time.perf_counter() - t0)
                assert not failed, failed
        out[f"cache_build_{name}_img_s"] = round(len(paths) / best, 1)
    sizes = [Image.open(p).size for p in paths]
    out["cache_build_input"] = (
        f"{len(paths)} JPEGs, {min(max(s) for s in sizes)}-{max(max(s) for s in sizes)} px -> "
        f"{image_size} px"
    )
    out["cache_build_draft_over_full"] = round(
        float(out["cache_build_draft_img_s"]) / float(out["cache_build_full_img_s"]), 2
    )
    return out
