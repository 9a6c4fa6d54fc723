"""``train(cfg)``: one experiment from a composed config, separate from ``@hydra.main`` so
tests and notebooks can call it with a config from Hydra's compose API.

The wiring, as in lightning-hydra-template: each config group goes to the one stage that
reads it (``source`` -> the source, ``data`` + ``preprocess`` -> the DataModule, ``trainer``
+ ``task`` -> the Trainer, ``anomaly`` + ``detector`` -> the anomaly stage); no stage gets the
whole config. Only the bundle and the logger record all of it.
"""

from __future__ import annotations

import functools
import logging
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from astro_exp.anomaly.sets import split_holdout
from astro_exp.anomaly.settings import AnomalySettings
from astro_exp.anomaly.stage import anomaly_stage
from astro_exp.data.datamodule import build_datamodule
from astro_exp.engine import distributed
from astro_exp.engine.device import resolve_device, resolve_flag
from astro_exp.engine.final_eval import final_evaluation
from astro_exp.engine.trainer import Trainer
from astro_exp.errors import CheckpointError
from astro_exp.models.checkpoint import load_bundle, make_bundle
from astro_exp.models.factory import create_model
from astro_exp.predict.fusion_stage import FusionSettings, fusion_stage
from astro_exp.sources import build_imageset, build_source
from astro_exp.sweep.trial import epoch_hook
from astro_exp.tracking import MultiLogger, build_loggers
from astro_exp.vision import build_augment, build_preprocess

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _sweep_group() -> tuple[str | None, str | None]:
    """(W&B group, job name) of a Hydra multirun job; (None, None) outside one."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None
    if hc.mode != RunMode.MULTIRUN:
        return None, None
    sweep = Path(hc.sweep.dir)
    return (
        f"sweep-{sweep.parent.name}-{sweep.name}",
        f"{hc.job.num}-{hc.job.override_dirname or 'default'}",
    )


@dataclass
class _Run:
    """Where and how this process trains: its device, its rank among the DDP processes, the
    one run folder of all ranks, and whether batches go through pinned memory."""

    device: torch.device
    rank: int
    world: int
    run_dir: Path
    pin: bool


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, calibrate and evaluate one run; the steps follow the data flow.

    Args:
        cfg: the composed config (``conf/train.yaml`` and its groups; Hydra's compose API or
            ``@hydra.main``); each group goes to its one consumer.

    Returns:
        The final metrics (also in the run folder's ``metrics.json``): ``test/*``,
        ``calibration/*``, ``anomaly/*``, ``data/n_*``, times.

    An example: ``astro-exp train debug=fast``, or from Python (a minute of training, so not
    run as a doctest here)::

        from hydra import compose, initialize_config_module
        with initialize_config_module("astro_exp.conf", version_base="1.3"):
            cfg = compose("train", overrides=["debug=fast", "logger=none"], return_hydra_config=True)
        metrics = train(cfg)      # paths.output_dir: where the run folder goes
    """
    t_start = time.perf_counter()
    config = _plain_config(cfg)
    run = _start_run(cfg)
    resume = load_bundle(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    progress = bool(cfg.trainer.progress)
    source = build_source(cfg.source)
    anomaly = AnomalySettings.from_config(cfg.get("anomaly"))
    # held-out classes leave before the DataModule sees the pictures: never trained on, scored as anomalies
    imageset, holdout = split_holdout(build_imageset(cfg.source, source), anomaly.holdout_classes)
    dm = build_datamodule(
        imageset,
        cfg.data,
        cfg.preprocess,
        seed=int(cfg.seed),
        cache_dir=cfg.paths.cache_dir,
        rank=run.rank,
        world_size=run.world,
        pin_memory=run.pin,
        progress=progress,
    )
    model = _model(config["model"], dm, resume)
    logger = _loggers(config, cfg.run_name, run.run_dir)
    try:
        trainer = _trainer(cfg, config, model, dm, logger, run, resume)
        summary = _fit(trainer, imageset)
        if trainer.interrupted or trainer.pruned_epoch is not None:
            summary[cfg.optimized_metric] = float(trainer.state.best_score or float("nan"))
        else:
            summary.update(_evaluate(cfg, trainer, logger, anomaly, source, holdout, progress))
        summary["time/total_s"] = time.perf_counter() - t_start
        summary["world_size"] = float(run.world)
        logger.log_summary(summary)
        if distributed.is_main():
            log.info("done in %.0fs; run folder: %s", summary["time/total_s"], run.run_dir)
    finally:
        logger.finish()
        distributed.cleanup()
    return summary


def _plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain Python, for the bundle and the logger (the only readers of all of
    it); the ``hydra`` node a compose-API config carries is not ours."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in cfg
        if k != "hydra"
    }


def _start_run(cfg: DictConfig) -> _Run:
    """Seed, threads, device and DDP rank; the run folder (rank 0's under torchrun)."""
    seed_everything(int(cfg.seed))
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    device = resolve_device(cfg.trainer.accelerator)
    rank, world, local_rank = distributed.init_distributed(device.type)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    # under torchrun, rank 0's Hydra folder is the one run folder of all ranks
    run_dir = Path(distributed.broadcast_object(str(cfg.paths.output_dir)))
    run_dir.mkdir(parents=True, exist_ok=True)
    return _Run(device, rank, world, run_dir, resolve_flag(cfg.trainer.pin_memory, device))


def _model(model_cfg: dict[str, Any], dm: Any, resume: dict | None) -> torch.nn.Module:
    """The timm model for the DataModule's classes and size (ImageNet weights unless resumed)."""
    if resume is not None and list(resume["classes"]) != dm.classes:
        raise CheckpointError(
            f"ckpt_path was trained on classes {resume['classes']}, this data has {dm.classes}; "
            "resume with the same source and task"
        )
    return create_model(
        model_name=model_cfg["model_name"],
        num_classes=len(dm.classes),
        pretrained=bool(model_cfg["pretrained"]) and resume is None,
        img_size=dm.image_size,
        drop_rate=model_cfg["drop_rate"],
        drop_path_rate=model_cfg["drop_path_rate"],
    )


def _loggers(config: dict[str, Any], run_name: str, run_dir: Path) -> MultiLogger:
    """``conf/logger`` on rank 0 (a sweep's jobs grouped in W&B); no logger on other ranks."""
    if not distributed.is_main():
        return MultiLogger([])
    group, job_name = _sweep_group()
    logger_cfg = dict(config["logger"])
    return build_loggers(
        logger_cfg, run_dir, group=logger_cfg.get("group") or group, name=job_name or run_name
    )


def _trainer(
    cfg: DictConfig,
    config: dict[str, Any],
    model: torch.nn.Module,
    dm: Any,
    logger: MultiLogger,
    run: _Run,
    resume: dict | None,
) -> Trainer:
    """The Trainer with preprocess, augment and how to write the bundle (restored to the
    resumed state, when there is one); logs the config and the run's one-line summary."""
    preprocess = build_preprocess(config["preprocess"])
    augment = build_augment(config["augment"])
    model_cfg = config["model"]
    bundle_fn = functools.partial(
        make_bundle,
        model_cfg={k: v for k, v in model_cfg.items() if k != "pretrained"},
        classes=dm.classes,
        task=dm.task,
        preprocess=config["preprocess"],
        image_size=dm.image_size,
        config=config,
        dataset_fingerprint=dm.imageset.fingerprint,
        tta={"hflip": bool(cfg.trainer.tta_flip)},
    )
    logger.log_config(config)
    trainer = Trainer(
        cfg.trainer,
        model=model,
        preprocess=preprocess,
        augment=augment,
        datamodule=dm,
        logger=logger,
        run_dir=run.run_dir,
        device=run.device,
        task=cfg.task,
        make_bundle=bundle_fn,
        epoch_hook=epoch_hook(),  # an Optuna trial's reports and pruning; None otherwise
    )
    if resume is not None:
        trainer.restore(resume)
        _carry_best(Path(cfg.ckpt_path), run.run_dir)
    log.info(
        "data %s | model %s (%.2fM params) on %s | %d steps/epoch",
        dm.summary(),
        model_cfg["model_name"],
        _n_params(model) / 1e6,
        run.device,
        trainer.steps_per_epoch,
    )
    return trainer


def _carry_best(ckpt_path: Path, run_dir: Path) -> None:
    """A run resumed into another folder starts with the stopped run's best.pt beside its own
    checkpoints: when no later epoch beats it, it is still the best (final_eval reads it)."""
    best, here = ckpt_path.parent / "best.pt", run_dir / "checkpoints" / "best.pt"
    if best.is_file() and not here.exists():
        here.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(best, here)


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _fit(trainer: Trainer, imageset: Any) -> dict[str, float]:
    """Train; the summary's data, model and time figures (and why it stopped early)."""
    t_fit = time.perf_counter()
    trainer.fit()
    summary: dict[str, float] = {
        **trainer.dm.summary(),
        # a person's labels that replaced weak ones (catalog sources; 0 elsewhere)
        "data/n_corrections": float(imageset.meta.get("n_corrections", 0)),
        "model/params": float(_n_params(trainer.model)),
        "epochs": float(trainer.state.epoch),
        "time/fit_s": time.perf_counter() - t_fit,
    }
    if trainer.pruned_epoch is not None:  # pruned by a search: no final evaluation
        summary["pruned_epoch"] = float(trainer.pruned_epoch)
    elif trainer.interrupted:
        summary["interrupted"] = 1.0
    return summary


def _evaluate(
    cfg: DictConfig,
    trainer: Trainer,
    logger: MultiLogger,
    anomaly: AnomalySettings,
    source: Any,
    holdout: Any,
    progress: bool,
) -> dict[str, float]:
    """After a finished fit: test metrics and calibration, the text model the bundle fuses
    with, and the anomaly detector (the last two on rank 0 only)."""
    out = final_evaluation(trainer, logger, int(cfg.data.num_logged_predictions))
    if distributed.is_main():  # which text model the bundle fuses with (and from what)
        out.update(
            fusion_stage(trainer, FusionSettings.from_config(cfg.get("fusion")), cfg.get("labels"))
        )
    if anomaly.enabled and distributed.is_main():
        out.update(
            anomaly_stage(
                trainer,
                logger,
                anomaly,
                cfg.get("detector"),
                seed=int(cfg.seed),
                source=source,
                holdout=holdout,
                progress=progress,
            )
        )
    return out
