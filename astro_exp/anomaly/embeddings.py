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
from astro_exp.files import atomic_write

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


POOLS = ("mean", "std", "max")


def last_stages(n: int) -> tuple[int, ...]:
    """The n feature stages before the final one: the older ``extra_stages: n`` setting."""
    return tuple(range(-1 - n, -1)) if n > 0 else ()


@dataclass(frozen=True)
class EmbeddingSpec:
    """What the anomaly detector and the neighbour search look at.

    ``pre_logits``: timm's pooled pre-logits vector (``forward_head(..., pre_logits=True)``).
    ``stages``: feature stages (timm ``forward_intermediates`` indices; negative count from
    the end) pooled per channel with each of ``pool``. ``normalize`` scales every block to
    unit length (cosine geometry, as in deep nearest-neighbour OOD detection), so exposure
    weighs less than content and a wide block does not drown a narrow one.

    No field has a default here: a run's embedding comes from ``conf/anomaly/default.yaml``
    (:class:`astro_exp.anomaly.settings.AnomalySettings`, which says why middle stages),
    a saved detector's from its meta (:meth:`from_meta`).
    """

    pre_logits: bool
    stages: tuple[int, ...]
    pool: tuple[str, ...]
    normalize: bool

    def __post_init__(self) -> None:
        bad = [p for p in self.pool if p not in POOLS]
        if bad or not self.pool:
            raise ConfigError(
                f"anomaly.pool={list(self.pool)} must name some of {', '.join(POOLS)}"
            )
        if not self.pre_logits and not self.stages:
            raise ConfigError(
                "the anomaly embedding is empty: set anomaly.pre_logits=true or anomaly.stages=[-3,-2]"
            )

    @classmethod
    def from_meta(cls, meta: dict) -> EmbeddingSpec:
        """From a detector's saved meta. Bundles before the spec was stored saved only
        ``extra_stages: n`` (the n stages before the last) and ``normalize`` beside the
        pre-logits vector averaged per channel: that is what they were fitted on."""
        if "embedding" in meta:
            e = meta["embedding"]
            return cls(
                bool(e["pre_logits"]), tuple(e["stages"]), tuple(e["pool"]), bool(e["normalize"])
            )
        return cls(
            True,
            last_stages(int(meta.get("extra_stages", 0))),
            ("mean",),
            bool(meta.get("normalize", False)),
        )

    def to_meta(self) -> dict:
        return {
            "pre_logits": self.pre_logits,
            "stages": list(self.stages),
            "pool": list(self.pool),
            "normalize": self.normalize,
        }

    @classmethod
    def pre_logits_only(cls) -> EmbeddingSpec:
        """timm's pooled pre-logits vector alone: the cheapest embedding, for a classifier
        that has no detector to feed (the embedding then goes unused)."""
        return cls(True, (), ("mean",), False)

    def key(self) -> str:
        """Short and filename-safe: part of the embedding cache key."""
        st = ".".join(str(i) for i in self.stages) or "none"
        return f"{'p' if self.pre_logits else 'n'}-s{st}-{'+'.join(self.pool)}{'-l2' if self.normalize else ''}"


def _pool(h: torch.Tensor, how: str) -> torch.Tensor:
    """Per-channel summary of a feature map (B, C, H, W) or token sequence (B, N, C) -> (B, C)."""
    if h.ndim == 2:
        return h
    dims = (2, 3) if h.ndim == 4 else (1,)
    if how == "mean":
        return h.mean(dims)
    if how == "max":
        return h.amax(dims)
    return h.float().flatten(2).std(2) if h.ndim == 4 else h.float().std(1)


def forward_embed(
    model: nn.Module, x: torch.Tensor, spec: EmbeddingSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, logits) of a normalised batch from one trunk pass (see :class:`EmbeddingSpec`).

    timm defines ``model(x) == forward_head(forward_features(x))`` and
    ``forward_intermediates`` returns the same final features, so the logits are exactly
    the classifier's and prediction costs no second forward.
    """
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)  # DistributedDataParallel
    if not hasattr(model, "forward_head"):
        raise ConfigError(
            f"{type(model).__name__} has no forward_head; anomaly detection needs a timm model"
        )
    extra: list[torch.Tensor] = []
    if spec.stages:
        if not hasattr(model, "forward_intermediates"):
            raise ConfigError(
                f"{type(model).__name__} has no forward_intermediates; set anomaly.stages=[]"
            )
        try:
            feats, inter = model.forward_intermediates(x, indices=list(spec.stages))
        except (AssertionError, IndexError) as e:
            raise ConfigError(
                f"anomaly.stages={list(spec.stages)} does not fit {type(model).__name__} ({e})"
            ) from None
        extra = [_pool(h, how) for h in inter for how in spec.pool]
    else:
        feats = model.forward_features(x)
    logits = model.forward_head(feats)
    blocks = (
        [model.forward_head(feats, pre_logits=True).flatten(1)] if spec.pre_logits else []
    ) + extra
    blocks = [b.float() for b in blocks]
    if spec.normalize:
        blocks = [torch.nn.functional.normalize(b, dim=1) for b in blocks]
    return torch.cat(blocks, 1) if len(blocks) > 1 else blocks[0], logits


@torch.no_grad()
def embed_batches(
    model: nn.Module,
    preprocess: nn.Module,
    batches: Iterable[torch.Tensor],
    device: torch.device,
    spec: EmbeddingSpec,
    precision: str = "auto",
    channels_last: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and logits of uint8 (B, 3, S, S) batches, in eval mode on ``device``."""
    model.eval()
    embs, logits = [], []
    for x in batches:
        x = preprocess(x.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            e, z = forward_embed(model, x, spec)
        embs.append(e.float().cpu())
        logits.append(z.float().cpu())
    if not embs:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return torch.cat(embs).numpy(), torch.cat(logits).numpy()


def array_batches(images: np.ndarray, batch_size: int) -> Iterable[torch.Tensor]:
    """uint8 (N, 3, S, S) array (or memmap) -> tensor batches."""
    for start in range(0, len(images), batch_size):
        yield torch.from_numpy(np.array(images[start : start + batch_size]))  # a writable copy


def embed_array(
    trainer, images: np.ndarray, spec: EmbeddingSpec, batch_size: int | None = None
) -> Embeddings:
    """Embeddings of extra pictures (anomaly sets) with the trainer's model and preprocess."""
    emb, logits = embed_batches(
        trainer.model,
        trainer.preprocess,
        array_batches(images, batch_size or trainer.dm.batch_size),
        trainer.device,
        spec,
        trainer.precision,
        trainer.channels_last,
    )
    n = len(images)
    return Embeddings(emb, logits, np.full(n, -1, np.int64), np.arange(n, dtype=np.int64))


def embed_split(
    trainer, split: str, spec: EmbeddingSpec, batch_size: int | None = None
) -> Embeddings:
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

    emb, logits = embed_batches(
        trainer.model,
        trainer.preprocess,
        gen(),
        trainer.device,
        spec,
        trainer.precision,
        trainer.channels_last,
    )
    return Embeddings(emb, logits, np.asarray(dm.targets)[index], index.astype(np.int64))


def embedding_key(digest: str, spec: EmbeddingSpec) -> str:
    """Weights digest + embedding definition: cached embeddings are valid for exactly this."""
    return f"{digest}-{spec.key()}"


class EmbeddingCache:
    """``run_dir/embeddings/<name>.npz``, valid while the weights digest matches."""

    def __init__(self, run_dir: str | Path, digest: str) -> None:
        self.dir = Path(run_dir) / "embeddings"
        self.digest = digest

    @classmethod
    def for_model(
        cls, run_dir: str | Path, model: nn.Module, spec: EmbeddingSpec
    ) -> EmbeddingCache:
        """The cache of these weights and this embedding definition (as anomaly_stage keys it)."""
        return cls(run_dir, embedding_key(model_digest(model), spec))

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
        extra = {} if e.names is None else {"names": np.asarray(e.names, dtype=np.str_)}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.savez adds no .npz to the name
                np.savez(
                    fh,
                    emb=e.emb,
                    logits=e.logits,
                    targets=e.targets,
                    index=e.index,
                    digest=np.str_(self.digest),
                    **extra,
                )

        return atomic_write(path, write)

    def get(self, name: str, compute) -> Embeddings:
        """The cached embeddings of ``name``, or ``compute()`` stored for next time."""
        e = self.load(name)
        if e is None:
            e = compute()
            self.save(name, e)
        else:
            log.info("embeddings of %s from %s", name, self.path(name))
        return e
