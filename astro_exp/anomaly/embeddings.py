"""Pooled pre-logits embeddings of the trained model: what the anomaly detector and the
nearest-neighbour search look at.

One pass through the trunk gives both the embedding (timm's
``forward_head(features, pre_logits=True)``) and the logits (``forward_head(features)``),
so prediction costs no second forward. Embeddings of a run's splits are cached in the run
folder (``embeddings/<name>.npz``), keyed by a digest of the weights, so re-scoring with
another detector (``scripts/compare_detectors.py``) does not run the model again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from astro_exp.engine.device import autocast
from astro_exp.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Embeddings:
    """Embeddings (N, D) with the logits, targets and item indices they came with;
    ``names`` is an optional string per row (e.g. the anomaly kind)."""

    emb: np.ndarray
    logits: np.ndarray
    targets: np.ndarray
    index: np.ndarray
    names: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.emb)


def model_digest(model: nn.Module) -> str:
    """A digest of the weights: cached embeddings are valid for these weights only."""
    model = getattr(model, "_orig_mod", model)
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _pool(h: torch.Tensor) -> torch.Tensor:
    """Global average of a feature map (B, C, H, W) or token sequence (B, N, C) -> (B, C)."""
    return h.mean((2, 3)) if h.ndim == 4 else h.mean(1) if h.ndim == 3 else h.flatten(1)


def forward_embed(
    model: nn.Module, x: torch.Tensor, extra_stages: int = 0, normalize: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, logits) of a normalised batch from one trunk pass.

    The embedding is the pooled pre-logits vector (``forward_head(features, pre_logits=True)``),
    followed, when ``extra_stages`` > 0, by the global averages of that many earlier stages
    (timm's ``forward_intermediates``): a classifier's last stage keeps what separates its
    classes and drops much else (a comet over a star field can look like a star field
    there), earlier stages still see it. ``normalize`` scales each of these blocks to unit
    length (cosine geometry, as in deep nearest-neighbour out-of-distribution detection):
    the overall activation level then follows content rather than exposure.
    timm defines ``model(x) == forward_head(forward_features(x))``, so the logits are exactly
    the classifier's.
    """
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)  # DistributedDataParallel
    if not hasattr(model, "forward_head"):
        raise ConfigError(f"{type(model).__name__} has no forward_head; anomaly detection needs a timm model")
    extra: list[torch.Tensor] = []
    if extra_stages > 0:
        if not hasattr(model, "forward_intermediates"):
            raise ConfigError(f"{type(model).__name__} has no forward_intermediates; set anomaly.extra_stages=0")
        feats, inter = model.forward_intermediates(x, indices=extra_stages + 1)
        if inter and inter[-1].shape == feats.shape:
            inter = inter[:-1]  # the last stage is the final feature map itself
        extra = [_pool(h) for h in inter[-extra_stages:]]
    else:
        feats = model.forward_features(x)
    logits = model.forward_head(feats)
    blocks = [model.forward_head(feats, pre_logits=True).flatten(1), *extra]
    blocks = [b.float() for b in blocks]
    if normalize:
        blocks = [torch.nn.functional.normalize(b, dim=1) for b in blocks]
    return torch.cat(blocks, 1) if len(blocks) > 1 else blocks[0], logits


@torch.no_grad()
def embed_batches(
    model: nn.Module,
    preprocess: nn.Module,
    batches: Iterable[torch.Tensor],
    device: torch.device,
    precision: str = "auto",
    channels_last: bool = False,
    extra_stages: int = 0,
    normalize: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and logits of uint8 (B, 3, S, S) batches, in eval mode on ``device``."""
    model.eval()
    embs, logits = [], []
    for x in batches:
        x = preprocess(x.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            e, z = forward_embed(model, x, extra_stages, normalize)
        embs.append(e.float().cpu())
        logits.append(z.float().cpu())
    if not embs:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return torch.cat(embs).numpy(), torch.cat(logits).numpy()


def array_batches(images: np.ndarray, batch_size: int) -> Iterable[torch.Tensor]:
    """uint8 (N, 3, S, S) array (or memmap) -> tensor batches."""
    for start in range(0, len(images), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))


def embed_array(trainer, images: np.ndarray, extra_stages: int = 0, normalize: bool = False,
                batch_size: int | None = None) -> Embeddings:  # fmt: skip
    """Embeddings of extra pictures (anomaly sets) with the trainer's model and preprocess."""
    emb, logits = embed_batches(
        trainer.model, trainer.preprocess, array_batches(images, batch_size or trainer.dm.batch_size),
        trainer.device, trainer.precision, trainer.channels_last, extra_stages, normalize,
    )  # fmt: skip
    n = len(images)
    return Embeddings(emb, logits, np.full(n, -1, np.int64), np.arange(n, dtype=np.int64))


def embed_split(trainer, split: str, extra_stages: int = 0, normalize: bool = False,
                batch_size: int | None = None) -> Embeddings:  # fmt: skip
    """Embeddings of one split of the trainer's DataModule, in item order.

    Reads the uint8 cache directly rather than ``dm.loader``: under torchrun the loaders
    are sharded by rank, and this stage runs on rank 0 over the whole split.
    """
    dm = trainer.dm
    index = dm.indices(split)
    bs = batch_size or dm.batch_size

    def gen() -> Iterable[torch.Tensor]:
        for s in range(0, len(index), bs):
            yield torch.from_numpy(np.ascontiguousarray(dm.images[index[s : s + bs]]))

    emb, logits = embed_batches(trainer.model, trainer.preprocess, gen(), trainer.device,
                                trainer.precision, trainer.channels_last, extra_stages, normalize)  # fmt: skip
    return Embeddings(emb, logits, np.asarray(dm.targets)[index], index.astype(np.int64))


def embedding_key(digest: str, extra_stages: int, normalize: bool) -> str:
    """Weights digest + embedding definition: cached embeddings are valid for exactly this."""
    return f"{digest}-s{int(extra_stages)}{'-l2' if normalize else ''}"


class EmbeddingCache:
    """``run_dir/embeddings/<name>.npz``, valid while the weights digest matches."""

    def __init__(self, run_dir: str | Path, digest: str) -> None:
        self.dir = Path(run_dir) / "embeddings"
        self.digest = digest

    @classmethod
    def for_model(cls, run_dir: str | Path, model: nn.Module, extra_stages: int, normalize: bool) -> EmbeddingCache:
        """The cache of these weights and this embedding definition (as anomaly_stage keys it)."""
        return cls(run_dir, embedding_key(model_digest(model), extra_stages, normalize))

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.npz"

    def load(self, name: str) -> Embeddings | None:
        path = self.path(name)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            if str(z["digest"]) != self.digest:
                return None
            names = z["names"] if "names" in z.files else None
            return Embeddings(z["emb"], z["logits"], z["targets"], z["index"], names)

    def save(self, name: str, e: Embeddings) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(name)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        extra = {} if e.names is None else {"names": np.asarray(e.names, dtype=np.str_)}
        np.savez(tmp, emb=e.emb, logits=e.logits, targets=e.targets, index=e.index, digest=np.str_(self.digest), **extra)
        tmp.replace(path)
        return path

    def get(self, name: str, compute) -> Embeddings:
        """The cached embeddings of ``name``, or ``compute()`` stored for next time."""
        e = self.load(name)
        if e is None:
            e = compute()
            self.save(name, e)
        else:
            log.info("embeddings of %s from %s", name, self.path(name))
        return e
