"""Decode once, at the size needed: a JPEG decoded only to be shrunk decodes at a reduced DCT
scale (``read_image(target_size=...)``) and still gives the model the same pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astro_exp.data.cache import resize_image
from astro_exp.imageio import DRAFT_MARGIN, read_image


def sky_jpeg(path: Path, size: tuple[int, int] = (3000, 2000), seed: int = 0) -> Path:
    """A photo-like JPEG: smooth colour gradients, a nebula, point-like stars and sensor noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    low = rng.random((h // 100, w // 100, 3)) * 160
    img = np.asarray(
        Image.fromarray(low.astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC), np.float32
    )
    yy, xx = np.mgrid[0:h, 0:w]
    img += (90 * np.exp(-((xx - w / 3) ** 2 + (yy - h / 2) ** 2) / (2 * (h / 6) ** 2)))[..., None]
    stars = rng.integers(0, [h, w], (3000, 2))
    img[stars[:, 0], stars[:, 1]] = 255
    img += rng.normal(0, 4, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sky_jpeg(tmp_path_factory.mktemp("jpeg") / "sky.jpg")


@pytest.mark.parametrize("size", [64, 224])
@pytest.mark.parametrize("policy", ["crop", "pad", "squash"])
def test_draft_decoding_matches_full_decoding_at_the_model_size(
    big_jpeg: Path, size: int, policy: str
) -> None:
    full = read_image(big_jpeg)
    draft = read_image(big_jpeg, target_size=size)
    # it did decode smaller (1/8 for 64 px, 1/4 for 224 px), yet kept 2x the target size
    assert draft.shape[0] <= full.shape[0] // 4 and min(draft.shape[:2]) >= DRAFT_MARGIN * size
    a = resize_image(full, size, policy).astype(np.float64)
    b = resize_image(draft, size, policy).astype(np.float64)
    assert np.abs(a - b).mean() < 2.0  # grey levels


def test_small_pictures_and_other_formats_decode_in_full(tmp_path: Path) -> None:
    small = sky_jpeg(tmp_path / "small.jpg", (200, 150))
    png = tmp_path / "big.png"
    Image.open(sky_jpeg(tmp_path / "b.jpg", (800, 600))).save(png)
    assert read_image(small, target_size=64).shape == (150, 200, 3)  # < 2x: no reduction
    assert read_image(png, target_size=64).shape == (600, 800, 3)  # draft is JPEG only


def test_file_sources_decode_at_the_cache_size(tmp_path: Path) -> None:
    from astro_exp.sources.folder import FolderSource

    for cls in ("galaxy", "star"):
        (tmp_path / cls).mkdir()
        sky_jpeg(tmp_path / cls / "a.jpg", (1600, 1200), seed=len(cls))
    imageset = FolderSource(str(tmp_path)).imageset()
    assert imageset.load(0, 64).shape == (150, 200, 3)  # 1/8 scale: >= 128 px kept
