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


def pipeline_figures(
    cfg: DictConfig, config: dict[str, Any], real_root: Path | None = None
) -> tuple[dict[str, Any], Any]:
    """The throughputs of the composed ``cfg`` (``config``: it resolved, as plain dicts);
    ``real_root``: class folders of real-size JPEGs for the naive baseline at real sizes.
    Also returns the datamodule, whose pictures the predict figures reuse."""
    b = cfg.bench
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
    bs, size, n_classes = dm.batch_size, dm.image_size, len(dm.classes)
    model = create_model(model_name=cfg.model.model_name, num_classes=n_classes, img_size=size).to(
        device
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = make_step(model, optimizer, device, precision, channels_last)
    pre = build_preprocess(config["preprocess"]).to(device)
    aug = build_augment(config["augment"]).to(device)
    total = int(b.steps) + int(b.warmup)

    # 1. model only: one batch, already normalised, already on the device
    x0 = pre(torch.from_numpy(np.ascontiguousarray(dm.images[:bs])).to(device))
    y0 = torch.as_tensor(dm.targets[:bs]).to(device)
    model_only = timed(((x0, y0) for _ in range(total)), step, device, int(b.steps), int(b.warmup))

    # 2. end to end: cache -> loader -> device-side preprocess + augment -> step
    def e2e_batches(epoch: int):
        loader = dm.loader("train")
        loader.sampler.set_epoch(epoch)
        for x, y, _ in loader:
            x = x.to(device, non_blocking=True)
            with torch.no_grad():
                x = pre.normalize(aug(pre.prepare(x)))
            yield x, y.to(device, non_blocking=True)

    end_to_end = timed(cycle(e2e_batches), step, device, int(b.steps), int(b.warmup))
    unfused = build_augment({**config["augment"], "fuse_geometry": False}).to(device)
    parts = train_parts(dm, pre, aug, device, int(b.steps), unfused)
    parts["step"] = round(bs / model_only * 1e3, 2)
    parts["end_to_end"] = round(bs / end_to_end * 1e3, 2)

    # 3. naive: JPEG files, per-sample PIL decode + torchvision transforms, default collate
    import torchvision.transforms as T

    with tempfile.TemporaryDirectory(prefix="bench-jpeg-") as tmp:
        idx = dm.indices("train")[: bs * (total + 1)]
        for i in idx:
            folder = Path(tmp) / dm.classes[int(dm.targets[i])]
            folder.mkdir(exist_ok=True)
            Image.fromarray(dm.images[i].transpose(1, 2, 0)).resize((size * 4, size * 4)).save(
                folder / f"{i}.jpg", quality=92
            )
        tf = T.Compose(
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
        loader = _naive_loader(tmp, tf, bs, int(b.naive_workers))

        def naive_batches(epoch: int):
            for x, y in loader:
                yield x.to(device), y.to(device)

        naive = timed(cycle(naive_batches), step, device, int(b.steps), int(b.warmup))

    naive_real = None
    if real_root is not None and int(b.real_steps) > 0:
        real_steps = int(b.real_steps)
        real = _naive_loader(str(real_root), tf, bs, int(b.naive_workers), bs * (real_steps + 1))

        def real_batches(epoch: int):
            for x, y in real:
                yield x.to(device), y.to(device)

        naive_real = timed(cycle(real_batches), step, device, real_steps, 1)

    result: dict[str, Any] = {
        "model": cfg.model.model_name,
        "image_size": size,
        "batch_size": bs,
        "augment": cfg.augment.name,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(),
        "precision": "bf16"
        if precision == "bf16" or (precision == "auto" and device.type == "cuda")
        else "fp32",
        "channels_last": channels_last,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "steps": int(b.steps),
        "model_only_img_s": round(model_only, 1),
        "end_to_end_img_s": round(end_to_end, 1),
        "naive_img_s": round(naive, 1),
        "end_to_end_over_model_only": round(end_to_end / model_only, 3),
        "end_to_end_over_naive": round(end_to_end / naive, 3),
        "train_parts_ms": parts,
    }
    if naive_real is not None:
        result["naive_real_img_s"] = round(naive_real, 1)
        result["end_to_end_over_naive_real"] = round(end_to_end / naive_real, 3)

    return result, dm
