"""Frozen ImageNet features of picture files under several resize policies, cached as .npz.

Why not :func:`astro_exp.review.features.frozen_features`: that keys its cache by an
:class:`~astro_exp.data.imageset.ImageSet` fingerprint, which covers the labels (every label
lever of the archive study would recompute the same pixels' features), builds a full uint8
tensor cache per policy (1.5 GB per policy for the archive at 224 px) and also computes the
anomaly embedding (a second pass). The archive study needs the pre-logits vector only, for
~11,000 pictures under two or three resize policies, on one CPU thread (~0.06 s a picture a
policy): each picture is decoded once, resized by every policy, and the work is saved in
parts of ``PART`` pictures, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from astro_exp.anomaly.embeddings import EmbeddingSpec, forward_embed
from astro_exp.data.cache import resize_image
from astro_exp.errors import DataError
from astro_exp.files import atomic_write
from astro_exp.imageio import read_image
from astro_exp.models.factory import create_model
from astro_exp.progress import progress as progress_bar
from astro_exp.vision import Preprocess, build_preprocess

log = logging.getLogger(__name__)

PART = 512  # pictures per saved part: a killed run loses at most one part's work
MODEL = "tf_efficientnet_lite0"  # conf/model/efficientnet_lite0.yaml's timm name (offline weights)
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def _key(files: Sequence[str], model_name: str, size: int) -> str:
    digest = hashlib.sha256(f"{model_name}|{size}|{MEAN}|{STD}\n".encode())
    for f in files:
        digest.update(f"{f}\n".encode())
    return digest.hexdigest()[:16]


def _save(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def picture_features(
    files: Sequence[Path],
    *,
    name: str,
    root: Path,
    policies: Sequence[str],
    cache_dir: str | Path,
    image_size: int = 224,
    model_name: str = MODEL,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Pre-logits features of every file under every resize policy.

    Args:
        files: the pictures (their paths relative to ``root`` name them in the cache key).
        name: the set's name in cache file names (``archive``, ``thumbs``).
        policies: ``preprocess.resize`` policies (``pad``, ``squash``, ``crop``).
        cache_dir: where ``<name>-<policy>-<size>px-<key>.npz`` is kept.

    Returns:
        ({policy: (N, D) float32}, ok (N,) bool: False where the file could not be read;
        its rows are zeros).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    rel = [str(Path(f).relative_to(root)) for f in files]
    key = _key(rel, model_name, image_size)
    finals = {p: cache_dir / f"{name}-{p}-{image_size}px-{key}.npz" for p in policies}
    out, ok = _cached(finals)
    todo = [p for p in policies if p not in out]
    if not todo:
        return out, ok if ok is not None else np.ones(len(files), bool)
    model = create_model(model_name, num_classes=1000, pretrained=True).eval()
    prep = build_preprocess({"mean": list(MEAN), "std": list(STD)})
    spec = EmbeddingSpec.pre_logits_only()
    parts: dict[str, list[np.ndarray]] = {p: [] for p in todo}
    oks: list[np.ndarray] = []
    n_parts = (len(files) + PART - 1) // PART
    log.info(
        "frozen %s features of %d %s pictures at %d px (%s); %d parts",
        model_name,
        len(files),
        name,
        image_size,
        ",".join(todo),
        n_parts,
    )
    part_paths = [
        cache_dir / "parts" / f"{name}-{'+'.join(todo)}-{image_size}px-{key}-{k}.npz"
        for k in range(n_parts)
    ]
    for k in progress_bar(range(n_parts), enabled=progress, total=n_parts, desc=f"{name} parts"):
        if part_paths[k].is_file():
            with np.load(part_paths[k], allow_pickle=False) as z:
                arrays, good = {p: z[p] for p in todo}, z["ok"]
        else:
            chunk = files[k * PART : (k + 1) * PART]
            arrays, good = _part_features(chunk, model, prep, spec, todo, image_size, batch_size)
            (cache_dir / "parts").mkdir(exist_ok=True)
            _save(part_paths[k], ok=good, **arrays)
        for p in todo:
            parts[p].append(arrays[p])
        oks.append(good)
    ok = np.concatenate(oks)
    for p in todo:
        out[p] = np.concatenate(parts[p])
        _save(finals[p], feats=out[p], ok=ok, files=np.array(rel))
    for path in part_paths:
        path.unlink(missing_ok=True)
    return out, ok


def _cached(finals: dict[str, Path]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The policies whose features are saved already, and their ``ok`` flags (None: none)."""
    out: dict[str, np.ndarray] = {}
    ok: np.ndarray | None = None
    for p, path in finals.items():
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                out[p], ok = z["feats"], z["ok"]
    return out, ok


def _part_features(
    chunk: Sequence[Path],
    model: torch.nn.Module,
    prep: Preprocess,
    spec: EmbeddingSpec,
    todo: Sequence[str],
    image_size: int,
    batch_size: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({policy: (len(chunk), D) float32}, ok) of one part's pictures, a batch at a time;
    an unreadable picture is a black one (its ``ok`` False)."""
    feats: dict[str, list[np.ndarray]] = {p: [] for p in todo}
    good = np.ones(len(chunk), bool)
    for s in range(0, len(chunk), batch_size):
        batch = _read_batch(chunk[s : s + batch_size], todo, image_size, good[s : s + batch_size])
        with torch.inference_mode():
            for p in todo:
                x = prep(torch.from_numpy(np.stack(batch[p])))
                e, _ = forward_embed(model, x, spec)
                feats[p].append(e.float().numpy())
    return {p: np.concatenate(v).astype(np.float32) for p, v in feats.items()}, good


def _read_batch(
    files: Sequence[Path], todo: Sequence[str], image_size: int, good: np.ndarray
) -> dict[str, list[np.ndarray]]:
    """Each picture decoded once and resized by every policy (CHW uint8); ``good`` (a view
    of the part's flags) is set False where a picture cannot be read."""
    batch: dict[str, list[np.ndarray]] = {p: [] for p in todo}
    for j, f in enumerate(files):
        try:
            img = read_image(f, target_size=image_size)
        except DataError as e:
            log.warning("unreadable %s: %s", f, e)
            good[j] = False
            img = np.zeros((image_size, image_size, 3), np.uint8)
        for p in todo:
            batch[p].append(resize_image(img, image_size, p).transpose(2, 0, 1))
    return batch


__all__ = ["MODEL", "picture_features"]
