"""Frozen ImageNet features of an :class:`~astro_exp.data.imageset.ImageSet` for the review
simulation: the head's input (timm's pre-logits vector) and the anomaly embedding (the run
default's pooled middle stages, :mod:`astro_exp.anomaly.settings`), from one cached pass.

Why frozen: the simulation refits a head dozens of times; a pass of the backbone per round
would make it hours on a CPU. The features are cached under ``cache_dir`` by the picture
set's fingerprint, the model and the size, so a second simulation starts at once.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from astro_exp.anomaly.embeddings import EmbeddingSpec, array_batches, embed_batches
from astro_exp.anomaly.settings import AnomalySettings
from astro_exp.data.cache import build_cache
from astro_exp.data.imageset import ImageSet
from astro_exp.files import atomic_write
from astro_exp.models.factory import create_model
from astro_exp.vision import build_preprocess

log = logging.getLogger(__name__)


def frozen_features(
    imageset: ImageSet,
    *,
    model_name: str,
    image_size: int,
    resize: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    cache_dir: str | Path,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(head features (N, D), anomaly embeddings (N, E), unreadable items {index: reason})."""
    spec = AnomalySettings.from_config(None).embedding
    key = hashlib.sha256(
        f"{imageset.fingerprint}|{model_name}|{image_size}|{resize}|{mean}|{std}|{spec.key()}".encode()
    ).hexdigest()[:20]
    path = Path(cache_dir) / "review_features" / f"{key}.npz"
    images, failed = build_cache(imageset, image_size, resize, cache_dir, progress=progress)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["head"], z["anomaly"], failed
    model = create_model(model_name, num_classes=1000, pretrained=True).eval()
    prep = build_preprocess({"mean": list(mean), "std": list(std)})
    device = torch.device("cpu")
    log.info("frozen %s features of %d pictures at %d px", model_name, len(images), image_size)
    head, _ = embed_batches(
        model, prep, array_batches(images, batch_size), device, EmbeddingSpec.pre_logits_only()
    )
    anomaly, _ = embed_batches(model, prep, array_batches(images, batch_size), device, spec)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, head=head, anomaly=anomaly)

    atomic_write(path, write)
    return head, anomaly, failed


__all__ = ["frozen_features"]
