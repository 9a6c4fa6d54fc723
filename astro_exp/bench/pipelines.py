"""Training throughput figures, each against a baseline measured in the same run
(``astro-exp bench``, ``python scripts/bench.py``).

- ``model_only_img_s``: train steps on a batch already in memory on the device (the limit)
- ``end_to_end_img_s``: the real pipeline: uint8 cache -> loader -> Kornia preprocess and
  augmentation on the device -> train step
- ``naive_img_s``: the same job through per-sample PIL decoding and torchvision transforms
  from JPEG files (the usual baseline) of 4x the model's size
- ``naive_real_img_s``: that baseline on JPEGs of real APOD size (``bench.real_sizes``,
  1-4k px), over ``bench.real_steps`` batches: what skipping the decode in the loop saves
- ``train_parts_ms``: where an end-to-end batch's time goes (loader, preprocess ``prepare``,
  ``augment``, ``normalize``, the train ``step``), each part timed alone on the same batches;
  ``augment_unfused``: the same augmentation as Kornia's separate ops (the baseline of the
  fused flip + rotate warp, ``augment.fuse_geometry=false``)
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image

from astro_exp.data.datamodule import build_datamodule
from astro_exp.engine.device import autocast, resolve_device, resolve_flag
from astro_exp.models.factory import create_model
from astro_exp.sources import build_imageset
from astro_exp.vision import build_augment, build_preprocess


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_step(model, optimizer, device, precision, channels_last):
    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def timed(batches, step, device, steps: int, warmup: int) -> float:
    """Images per second over ``steps`` batches after ``warmup`` batches."""
    it = iter(batches)
    for _ in range(warmup):
        step(*next(it))
    _sync(device)
    n, t0 = 0, time.perf_counter()
    for _ in range(steps):
        x, y = next(it)
        step(x, y)
        n += len(y)
    _sync(device)
    return n / (time.perf_counter() - t0)


def cycle(loader_fn):
    epoch = 0
    while True:
        yield from loader_fn(epoch)
        epoch += 1


def train_parts(
    dm: Any,
    pre: torch.nn.Module,
    aug: torch.nn.Module,
    device: torch.device,
    n: int,
    unfused: torch.nn.Module | None = None,
) -> dict[str, float]:
    """ms per batch of each device-side part of the end-to-end pipeline, each timed alone on
    the same ``n`` training batches (the loader's time includes its own indexing of the cache);
    ``unfused``: the augmentation with Kornia's separate ops, timed on the same batches."""
    loader = cycle(lambda epoch: (x for x, _, _ in dm.loader("train")))
    t0 = time.perf_counter()
    batches = [next(loader).to(device) for _ in range(n)]
    _sync(device)
    out = {"loader": (time.perf_counter() - t0) / n}
    with torch.no_grad():
        steps = [("prepare", pre.prepare), ("augment", aug), ("normalize", pre.normalize)]
        if unfused is not None:
            steps.insert(1, ("augment_unfused", unfused))
        for name, fn in steps:
            fn(batches[0])  # warm
            _sync(device)
            t0 = time.perf_counter()
            done = [fn(x) for x in batches]
            _sync(device)
            out[name] = (time.perf_counter() - t0) / n
            if name != "augment_unfused":
                batches = done
    return {k: round(v * 1e3, 2) for k, v in out.items()}


def _naive_loader(root: str, tf: Any, bs: int, workers: int, n_samples: int | None = None):
    """Per-sample PIL decode + torchvision transforms from the JPEGs under ``root``;
    ``n_samples``: draw that many with replacement (a few files stand for many)."""
    from torchvision.datasets import ImageFolder

    ds = ImageFolder(root, transform=tf)
    sampler = (
        torch.utils.data.RandomSampler(ds, replacement=True, num_samples=n_samples)
        if n_samples
        else None
    )
    return torch.utils.data.DataLoader(
        ds,
        batch_size=bs,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


@dataclass
class _Rig:
    """What every timed pipeline shares: the data, the model's train step, the device-side
    preprocess and augmentation, and how many batches to time after how many untimed."""

    device: torch.device
    precision: str
    channels_last: bool
    dm: Any
    step: Callable[[torch.Tensor, torch.Tensor], None]
    pre: torch.nn.Module
    aug: torch.nn.Module
    steps: int
    warmup: int

    def timed(
        self, batches: Iterator, steps: int | None = None, warmup: int | None = None
    ) -> float:
        """Images per second of the train step over ``batches`` (the bench's steps by default)."""
        return timed(
            batches,
            self.step,
            self.device,
            self.steps if steps is None else steps,
            self.warmup if warmup is None else warmup,
        )


def _rig(cfg: DictConfig, config: dict[str, Any]) -> _Rig:
    """The datamodule of ``config``, a fresh model in train mode with its AdamW step, and the
    preprocess and augmentation, all on the trainer's device."""
    torch.manual_seed(0)
    device = resolve_device(cfg.trainer.accelerator)
    precision = str(cfg.trainer.precision)
    channels_last = resolve_flag(cfg.trainer.channels_last, device)
    dm = build_datamodule(
        build_imageset(config["source"]),
        config["data"],
        config["preprocess"],
        seed=int(config["seed"]),
        cache_dir=config["paths"]["cache_dir"],
        pin_memory=device.type == "cuda",
    )
    model = create_model(
        model_name=cfg.model.model_name, num_classes=len(dm.classes), img_size=dm.image_size
    ).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return _Rig(
        device,
        precision,
        channels_last,
        dm,
        make_step(model, optimizer, device, precision, channels_last),
        build_preprocess(config["preprocess"]).to(device),
        build_augment(config["augment"]).to(device),
        int(cfg.bench.steps),
        int(cfg.bench.warmup),
    )


def _model_only(rig: _Rig) -> float:
    """1. model only: one batch, already normalised, already on the device (the limit)."""
    bs = rig.dm.batch_size
    x0 = rig.pre(torch.from_numpy(np.ascontiguousarray(rig.dm.images[:bs])).to(rig.device))
    y0 = torch.as_tensor(rig.dm.targets[:bs]).to(rig.device)
    return rig.timed((x0, y0) for _ in range(rig.steps + rig.warmup))


def _end_to_end(rig: _Rig) -> float:
    """2. end to end: cache -> loader -> device-side preprocess + augment -> step."""

    def batches(epoch: int):
        loader = rig.dm.loader("train")
        loader.sampler.set_epoch(epoch)
        for x, y, _ in loader:
            x = x.to(rig.device, non_blocking=True)
            with torch.no_grad():
                x = rig.pre.normalize(rig.aug(rig.pre.prepare(x)))
            yield x, y.to(rig.device, non_blocking=True)

    return rig.timed(cycle(batches))


def _batch_parts(
    rig: _Rig, config: dict[str, Any], model_only: float, end_to_end: float
) -> dict[str, float]:
    """Where an end-to-end batch's time goes (ms), the unfused augmentation beside the fused;
    ``step`` and ``end_to_end`` from the throughputs measured above."""
    unfused = build_augment({**config["augment"], "fuse_geometry": False}).to(rig.device)
    parts = train_parts(rig.dm, rig.pre, rig.aug, rig.device, rig.steps, unfused)
    bs = rig.dm.batch_size
    parts["step"] = round(bs / model_only * 1e3, 2)
    parts["end_to_end"] = round(bs / end_to_end * 1e3, 2)
    return parts


def _naive_transform(cfg: DictConfig, size: int) -> Any:
    """The usual torchvision pipeline: resize, crop, flips, rotation, normalise."""
    import torchvision.transforms as T

    return T.Compose(
        [
            T.Resize(size),
            T.CenterCrop(size),
            T.RandomHorizontalFlip(),
            T.RandomVerticalFlip(),
            T.RandomRotation(180),
            T.ToTensor(),
            T.Normalize(list(cfg.preprocess.mean), list(cfg.preprocess.std)),
        ]
    )


def _write_jpegs(dm: Any, root: Path, n: int) -> None:
    """The first ``n`` training pictures as JPEGs at 4x the model's size, in class folders."""
    size = dm.image_size
    for i in dm.indices("train")[:n]:
        folder = root / dm.classes[int(dm.targets[i])]
        folder.mkdir(exist_ok=True)
        Image.fromarray(dm.images[i].transpose(1, 2, 0)).resize((size * 4, size * 4)).save(
            folder / f"{i}.jpg", quality=92
        )


def _on_device(loader: Any, device: torch.device) -> Callable[[int], Iterator]:
    """An epoch of ``loader``'s (x, y) batches moved to ``device``, for :func:`cycle`."""

    def batches(epoch: int):
        for x, y in loader:
            yield x.to(device), y.to(device)

    return batches


def _naive(rig: _Rig, cfg: DictConfig, real_root: Path | None) -> tuple[float, float | None]:
    """3. naive: JPEG files, per-sample PIL decode + torchvision transforms, default collate;
    then the same from the real-size JPEGs under ``real_root`` (None: not measured)."""
    b = cfg.bench
    bs = rig.dm.batch_size
    tf = _naive_transform(cfg, rig.dm.image_size)
    with tempfile.TemporaryDirectory(prefix="bench-jpeg-") as tmp:
        _write_jpegs(rig.dm, Path(tmp), bs * (rig.steps + rig.warmup + 1))
        loader = _naive_loader(tmp, tf, bs, int(b.naive_workers))
        naive = rig.timed(cycle(_on_device(loader, rig.device)))
    if real_root is None or int(b.real_steps) <= 0:
        return naive, None
    real_steps = int(b.real_steps)
    real = _naive_loader(str(real_root), tf, bs, int(b.naive_workers), bs * (real_steps + 1))
    return naive, rig.timed(cycle(_on_device(real, rig.device)), real_steps, 1)


def _setting(cfg: DictConfig, rig: _Rig) -> dict[str, Any]:
    """What the figures were taken with: model, sizes, device, precision, threads."""
    device, precision = rig.device, rig.precision
    return {
        "model": cfg.model.model_name,
        "image_size": rig.dm.image_size,
        "batch_size": rig.dm.batch_size,
        "augment": cfg.augment.name,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(),
        "precision": "bf16"
        if precision == "bf16" or (precision == "auto" and device.type == "cuda")
        else "fp32",
        "channels_last": rig.channels_last,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "steps": rig.steps,
    }


def pipeline_figures(
    cfg: DictConfig, config: dict[str, Any], real_root: Path | None = None
) -> tuple[dict[str, Any], Any]:
    """The throughputs of the composed ``cfg`` (``config``: it resolved, as plain dicts).

    Args:
        cfg: the composed conf/bench.yaml.
        config: ``cfg``'s groups resolved to plain dicts.
        real_root: class folders of real-size JPEGs for the naive baseline at real sizes.

    Returns:
        The figures, and the datamodule, whose pictures the predict figures reuse.
    """
    rig = _rig(cfg, config)
    model_only = _model_only(rig)
    end_to_end = _end_to_end(rig)
    parts = _batch_parts(rig, config, model_only, end_to_end)
    naive, naive_real = _naive(rig, cfg, real_root)
    result = _setting(cfg, rig)
    result.update(
        {
            "model_only_img_s": round(model_only, 1),
            "end_to_end_img_s": round(end_to_end, 1),
            "naive_img_s": round(naive, 1),
            "end_to_end_over_model_only": round(end_to_end / model_only, 3),
            "end_to_end_over_naive": round(end_to_end / naive, 3),
            "train_parts_ms": parts,
        }
    )
    if naive_real is not None:
        result["naive_real_img_s"] = round(naive_real, 1)
        result["end_to_end_over_naive_real"] = round(end_to_end / naive_real, 3)
    return result, rig.dm
