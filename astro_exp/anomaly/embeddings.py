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


POOLS = ("mean", "std", "max")


@dataclass(frozen=True)
class EmbeddingSpec:
    """What the anomaly detector and the neighbour search look at.

    ``pre_logits``: timm's pooled pre-logits vector (``forward_head(..., pre_logits=True)``).
    ``stages``: feature stages (timm ``forward_intermediates`` indices; negative count from
    the end) pooled per channel with each of ``pool``. ``normalize`` scales every block to
    unit length (cosine geometry, as in deep nearest-neighbour OOD detection), so exposure
    weighs less than content and a wide block does not drown a narrow one.

    Why middle stages by default: a classifier's last stages keep what separates its classes
    and drop the rest (a comet over a star field looks like a star field there); middle
    stages still see it, and the channel spread (``std``) sees a trail or a flare that a
    plain average dilutes.
    """

    pre_logits: bool = True
    stages: tuple[int, ...] = ()
    pool: tuple[str, ...] = ("mean",)
    normalize: bool = False

    def __post_init__(self) -> None:
        bad = [p for p in self.pool if p not in POOLS]
        if bad or not self.pool:
            raise ConfigError(f"anomaly.pool={list(self.pool)} must name some of {', '.join(POOLS)}")
        if not self.pre_logits and not self.stages:
            raise ConfigError("the anomaly embedding is empty: set anomaly.pre_logits=true or anomaly.stages=[-3,-2]")

    @classmethod
    def from_settings(cls, a: dict) -> EmbeddingSpec:
        """From ``cfg.anomaly`` (``extra_stages: n``, the older form, means the last n stages)."""
        stages = a.get("stages")
        if stages is None and int(a.get("extra_stages") or 0) > 0:
            stages = list(range(-1 - int(a["extra_stages"]), -1))
        return cls(
            pre_logits=bool(a.get("pre_logits", True)),
            stages=tuple(int(i) for i in (stages or ())),
            pool=tuple(str(p) for p in (a.get("pool") or ("mean",))),
            normalize=bool(a.get("normalize", False)),
        )

    @classmethod
    def from_meta(cls, meta: dict) -> EmbeddingSpec:
        """From a detector's saved meta (bundles before the spec stored ``extra_stages``)."""
        if "embedding" in meta:
            e = meta["embedding"]
            return cls(bool(e["pre_logits"]), tuple(e["stages"]), tuple(e["pool"]), bool(e["normalize"]))
        n = int(meta.get("extra_stages", 0))
        return cls(True, tuple(range(-1 - n, -1)) if n else (), ("mean",), bool(meta.get("normalize", False)))

    def to_meta(self) -> dict:
        return {"pre_logits": self.pre_logits, "stages": list(self.stages), "pool": list(self.pool),
                "normalize": self.normalize}  # fmt: skip

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


def forward_embed(model: nn.Module, x: torch.Tensor, spec: EmbeddingSpec | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, logits) of a normalised batch from one trunk pass (see :class:`EmbeddingSpec`).

    timm defines ``model(x) == forward_head(forward_features(x))`` and
    ``forward_intermediates`` returns the same final features, so the logits are exactly
    the classifier's and prediction costs no second forward.
    """
    spec = spec or EmbeddingSpec()
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)  # DistributedDataParallel
    if not hasattr(model, "forward_head"):
        raise ConfigError(f"{type(model).__name__} has no forward_head; anomaly detection needs a timm model")
    extra: list[torch.Tensor] = []
    if spec.stages:
        if not hasattr(model, "forward_intermediates"):
            raise ConfigError(f"{type(model).__name__} has no forward_intermediates; set anomaly.stages=[]")
        try:
            feats, inter = model.forward_intermediates(x, indices=list(spec.stages))
        except (AssertionError, IndexError) as e:
            raise ConfigError(f"anomaly.stages={list(spec.stages)} does not fit {type(model).__name__} ({e})") from None
        extra = [_pool(h, how) for h in inter for how in spec.pool]
    else:
        feats = model.forward_features(x)
    logits = model.forward_head(feats)
    blocks = ([model.forward_head(feats, pre_logits=True).flatten(1)] if spec.pre_logits else []) + extra
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
    precision: str = "auto",
    channels_last: bool = False,
    spec: EmbeddingSpec | None = None,
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
        yield torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))


def embed_array(trainer, images: np.ndarray, spec: EmbeddingSpec | None = None,
                batch_size: int | None = None) -> Embeddings:  # fmt: skip
    """Embeddings of extra pictures (anomaly sets) with the trainer's model and preprocess."""
    emb, logits = embed_batches(
        trainer.model, trainer.preprocess, array_batches(images, batch_size or trainer.dm.batch_size),
        trainer.device, trainer.precision, trainer.channels_last, spec,
    )  # fmt: skip
    n = len(images)
    return Embeddings(emb, logits, np.full(n, -1, np.int64), np.arange(n, dtype=np.int64))


def embed_split(trainer, split: str, spec: EmbeddingSpec | None = None,
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
                                trainer.precision, trainer.channels_last, spec)  # fmt: skip
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
    def for_model(cls, run_dir: str | Path, model: nn.Module, spec: EmbeddingSpec) -> EmbeddingCache:
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
