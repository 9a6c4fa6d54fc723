"""The training loop: AdamW, warm-up + cosine, the loss of engine/loss.py, MixUp, a smaller
backbone learning rate or a head-only warm-up, gradient clipping, AMP, test-time flips,
a weight average (engine/ema.py), early stopping, best/last checkpoints and an exact resume
(engine/resume.py).

Everything after the DataLoader runs batched on the model's device: uint8 batch ->
``preprocess.prepare`` -> ``augment`` (train only) -> ``low_res`` (its epochs only) ->
``preprocess.normalize`` -> model.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from timm.scheduler import CosineLRScheduler
from torch import nn

from astro_exp.data.datamodule import DataModule
from astro_exp.engine import distributed
from astro_exp.engine.checks import (
    calibration_label_noise,
    low_res_epochs,
    max_epochs,
    multilabel_threshold,
)
from astro_exp.engine.device import autocast, resolve_flag
from astro_exp.engine.ema import make_ema, swapped_in
from astro_exp.engine.loss import Criterion, class_weights
from astro_exp.engine.metrics import classification_metrics
from astro_exp.engine.resume import FitState, rng_state, set_rng_state
from astro_exp.errors import ConfigError
from astro_exp.progress import progress
from astro_exp.vision.downscale import Downscale
from astro_exp.vision.mixup import MixUp
from astro_exp.vision.preprocess import Preprocess

log = logging.getLogger(__name__)

__all__ = ["FitState", "Trainer", "rng_state", "set_rng_state"]


class Trainer:
    """Fits a model on a :class:`DataModule`; checkpoints go to ``run_dir/checkpoints``.

    ``cfg`` is the ``trainer`` config group and ``task`` the ``task`` group (label smoothing,
    the multilabel ``threshold``); everything else is a built object, passed by name.
    """

    def __init__(
        self,
        cfg: Mapping,
        *,
        model: nn.Module,
        preprocess: Preprocess,
        augment: nn.Module,
        datamodule: DataModule,
        logger,
        run_dir: str | Path,
        device: torch.device,
        task: Mapping,
        make_bundle: Callable[..., dict],
        epoch_hook: Callable[[int, dict[str, float]], bool] | None = None,
    ) -> None:
        self.cfg = cfg
        # called after each epoch with (epoch, val metrics); True stops training: a
        # hyperparameter search's pruner (astro_exp.sweep.trial) ends a hopeless trial early
        self.epoch_hook = epoch_hook
        self.pruned_epoch: int | None = None
        self.device = device
        self.dm = datamodule
        self.task = datamodule.task
        self.classes = datamodule.classes
        self.logger = logger
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.make_bundle = make_bundle
        self.channels_last = resolve_flag(cfg["channels_last"], device)
        self.precision = str(cfg["precision"])
        self.model, self.forward_model = self._placed(model)
        self.preprocess = preprocess.to(device)
        self.augment = augment.to(device)
        self.label_smoothing = float(task["label_smoothing"])
        # multilabel: a label is on at this probability until final_eval tunes one per label on val
        self.threshold = multilabel_threshold(self.task, task)
        self.max_epochs = max_epochs(cfg)
        self.train_loader = datamodule.loader("train")
        self.steps_per_epoch = len(self.train_loader)
        self.backbone_lr_scale = float(cfg["backbone_lr_scale"])
        self.freeze_backbone_epochs = int(cfg["freeze_backbone_epochs"])
        self.tta_flip = bool(cfg["tta_flip"])
        # the first epochs at a smaller size (vision/downscale.py): cheaper, then full size
        low = cfg.get("low_res") or {}
        self.low_res_epochs = low_res_epochs(low, self.max_epochs)
        self.low_res = Downscale(low.get("size", 160)) if self.low_res_epochs else None
        mix = cfg.get("mixup") or {}
        self.mixup = MixUp(p=float(mix.get("p", 0.0)), lambda_max=float(mix.get("lambda_max", 0.4)))
        # the share of wrong val labels the temperature fit allows for (calibration.py)
        self.calibration_label_noise = calibration_label_noise(cfg)
        self.optimizer = instantiate(cfg["optimizer"])(self._param_groups())
        self.ema = make_ema(
            self.model,
            cfg.get("ema_decay", 0.0),
            start_step=self.freeze_backbone_epochs * self.steps_per_epoch,
        )
        self.class_weights = self._class_weights(float(cfg["class_weight_power"]))
        # the batch loss (engine/loss.py): trainer.loss(logits, y, mix)
        self.loss = Criterion(self.task, self.label_smoothing, self.class_weights)
        self.scheduler = self._scheduler(cfg["scheduler"])
        self._set_monitors(cfg)
        self.state = FitState()
        self.interrupted = False  # stopped by trainer.stop_after_epoch, to be resumed

    # -- construction steps -------------------------------------------------------------------
    def _placed(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """The model on the device (channels-last, SyncBatchNorm under DDP) and what the
        forward pass calls: the model itself, or its DDP and/or ``torch.compile`` wrapper."""
        device = self.device
        model = model.to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if (
            distributed.is_distributed()
            and self.cfg.get("sync_batchnorm")
            and device.type == "cuda"
        ):
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        forward_model = model
        if distributed.is_distributed():
            ids = [device.index] if device.type == "cuda" else None
            forward_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if self.cfg.get("compile"):
            forward_model = torch.compile(forward_model)
        return model, forward_model

    def _class_weights(self, power: float) -> torch.Tensor | None:
        """Multiclass: the loss's class weights from train's class counts (None: multilabel)."""
        if self.task != "multiclass":
            return None
        y = np.asarray(self.dm.targets)[self.dm.indices("train")]
        return class_weights(y, self.classes, power, self.device)

    def _scheduler(self, sched: Mapping) -> CosineLRScheduler:
        """Per-step warm-up (``warmup_epochs``) then cosine down to ``min_lr`` by the last step."""
        total = self.max_epochs * self.steps_per_epoch
        warmup = int(round(float(sched["warmup_epochs"]) * self.steps_per_epoch))
        return CosineLRScheduler(
            self.optimizer,
            t_initial=max(1, total - warmup),
            lr_min=float(sched["min_lr"]),
            warmup_t=warmup,
            warmup_lr_init=float(sched["warmup_lr_init"]),
            warmup_prefix=True,
            t_in_epochs=False,
        )

    def _set_monitors(self, cfg: Mapping) -> None:
        """What best.pt follows and what early stopping follows (by default the same)."""
        es = cfg.get("early_stopping") or {}
        self.monitor = str(cfg["checkpoint_monitor"])
        self.monitor_mode = str(cfg["checkpoint_mode"])
        self.es_monitor = str(es.get("monitor", self.monitor))
        self.es_mode = str(es.get("mode", "max"))
        self.es_patience = es.get("patience")
        self.es_min_delta = float(es.get("min_delta", 0.0))

    def _head_and_backbone(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """The classifier head's parameters and the rest (timm's ``get_classifier``)."""
        head_ids = set()
        get_classifier = getattr(self.model, "get_classifier", None)
        if callable(get_classifier):
            head_ids = {id(p) for p in get_classifier().parameters()}
        head = [p for p in self.model.parameters() if id(p) in head_ids]
        backbone = [p for p in self.model.parameters() if id(p) not in head_ids]
        return head, backbone

    def _param_groups(self) -> list[dict]:
        """One group, or head at ``lr`` and backbone at ``lr * backbone_lr_scale``.

        Why: a pretrained backbone already holds good features; a smaller learning rate keeps
        noisy weak labels from washing them out while the new head learns at full speed."""
        if self.backbone_lr_scale == 1.0 and self.freeze_backbone_epochs == 0:
            return [{"params": list(self.model.parameters())}]
        if self.freeze_backbone_epochs and distributed.is_distributed():
            raise ConfigError(
                "trainer.freeze_backbone_epochs does not work under DDP (frozen parameters get no "
                "gradient to reduce); set it to 0 and use trainer.backbone_lr_scale instead"
            )
        if not 0.0 < self.backbone_lr_scale <= 1.0:
            raise ConfigError(
                f"trainer.backbone_lr_scale={self.backbone_lr_scale} must be in (0, 1]"
            )
        head, backbone = self._head_and_backbone()
        if not head:
            raise ConfigError(
                "the model has no get_classifier() head; set trainer.backbone_lr_scale=1 and trainer.freeze_backbone_epochs=0"
            )
        lr = float(self.cfg["optimizer"]["lr"])
        return [
            {"params": head, "name": "head"},
            {"params": backbone, "name": "backbone", "lr": lr * self.backbone_lr_scale},
        ]

    def _set_backbone_trainable(self, epoch: int) -> None:
        """Head-only warm-up: the backbone is frozen for the first ``freeze_backbone_epochs``."""
        if not self.freeze_backbone_epochs:
            return
        frozen = epoch < self.freeze_backbone_epochs
        for p in self._head_and_backbone()[1]:
            p.requires_grad_(not frozen)
        if frozen:
            log.info("epoch %d: backbone frozen (head-only warm-up)", epoch + 1)

    def default_thresholds(self) -> torch.Tensor | None:
        """``task.threshold`` for every label (multilabel), None for multiclass."""
        if self.threshold is None:
            return None
        return torch.full((len(self.classes),), self.threshold)

    # -- one batch through the device-side pipeline ------------------------------------------
    def _inputs(self, x: torch.Tensor, train: bool, low_res: bool = False) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        with torch.no_grad():
            x = self.preprocess.prepare(x)
            if train:
                x = self.augment(x)
            if low_res:
                x = self.low_res(x)
            x = self.preprocess.normalize(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.no_grad()
    def predict_logits(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, targets and item indices of a split, in eval mode."""
        self.model.eval()
        outs, ys, ids = [], [], []
        for x, y, idx in self.dm.loader(split, shuffle=False):
            inputs = self._inputs(x, train=False)
            with autocast(self.device, self.precision):
                logits = self.forward_model(inputs).float()
                if self.tta_flip:  # test-time flip: the mean of both views' logits
                    logits = (logits + self.forward_model(torch.flip(inputs, dims=[3])).float()) / 2
            outs.append(logits.cpu())
            ys.append(y)
            ids.append(idx)
        logits, targets, index = distributed.gather_cat(
            torch.cat(outs), torch.cat(ys), torch.cat(ids)
        )
        if distributed.is_distributed():  # one row per item, in item order, as on one process
            index, first = np.unique(index.numpy(), return_index=True)
            logits, targets, index = logits[first], targets[first], torch.from_numpy(index)
        return logits, targets, index

    # -- checkpoints --------------------------------------------------------------------------
    def _resume_state(self) -> dict:
        ema = {"ema": self.ema.module.state_dict()} if self.ema is not None else {}
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            **ema,
            **self.state.to_resume(),
        }

    def save(self, name: str, metrics: dict[str, float], with_resume: bool) -> Path:
        from astro_exp.models.checkpoint import save_bundle

        if not distributed.is_main():
            return self.ckpt_dir / name
        bundle = self.make_bundle(
            self.model,
            epoch=self.state.epoch,
            metrics=metrics,
            resume=self._resume_state() if with_resume else None,
        )
        return save_bundle(bundle, self.ckpt_dir / name)

    def restore(self, bundle: dict) -> None:
        """Continue exactly where ``bundle`` (a last.pt) left off."""
        resume = bundle.get("resume")
        if not resume:
            raise ConfigError(
                "ckpt_path has no resume state (best.pt after training ends); use last.pt"
            )
        self.model.load_state_dict(bundle["state_dict"])
        self.optimizer.load_state_dict(resume["optimizer"])
        self.scheduler.load_state_dict(resume["scheduler"])
        if (self.ema is None) != ("ema" not in resume):
            raise ConfigError(
                "ckpt_path's run and this one differ in trainer.ema_decay (0 or not); resume with its value"
            )
        if self.ema is not None:
            self.ema.module.load_state_dict(resume["ema"])
        set_rng_state(resume["rng"])
        self.state = FitState.from_resume(resume)
        log.info("resumed from epoch %d (step %d)", self.state.epoch, self.state.global_step)

    # -- the loop -------------------------------------------------------------------------------
    def _improved(
        self, score: float, best: float | None, mode: str, min_delta: float = 0.0
    ) -> bool:
        if best is None or math.isnan(best):
            return not math.isnan(score)
        return score > best + min_delta if mode == "max" else score < best - min_delta

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        self._set_backbone_trainable(epoch)
        self.train_loader.sampler.set_epoch(epoch)
        total, count = 0.0, 0
        log_every = int(self.cfg["log_every_n_steps"])
        clip = self.cfg.get("grad_clip_norm")
        bar = progress(
            self.train_loader,
            enabled=bool(self.cfg["progress"]),
            desc=f"epoch {epoch + 1}/{self.max_epochs}",
            unit="batch",
            leave=False,
        )
        low_res = epoch < self.low_res_epochs
        if low_res:
            log.info("epoch %d: trained at %d px (trainer.low_res)", epoch + 1, self.low_res.size)
        for x, y, _ in bar:
            inputs = self._inputs(x, train=True, low_res=low_res)
            y = y.to(self.device, non_blocking=True)
            inputs, mix = self.mixup(inputs)  # mix: None, or MixUp's (pair, lam)
            with autocast(self.device, self.precision):
                logits = self.forward_model(inputs)
            loss = self.loss(logits, y, mix)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at step {self.state.global_step}; lower trainer.optimizer.lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.grad is not None], float(clip)
                )
            self.optimizer.step()
            self.state.global_step += 1
            if self.ema is not None:
                self.ema.update(self.model, step=self.state.global_step)
            self.scheduler.step_update(self.state.global_step)
            total += loss.item() * len(y)
            count += len(y)
            if self.state.global_step % log_every == 0:
                lr = self.optimizer.param_groups[0]["lr"]
                self.logger.log_metrics(
                    {"train/loss": loss.item(), "train/lr": lr, "epoch": epoch},
                    step=self.state.global_step,
                )
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
        return distributed.mean_over_ranks(total, count)

    def _hook_says_stop(self, epoch: int, metrics: dict[str, float]) -> bool:
        """The epoch hook's verdict, taken on rank 0 and shared so every rank stops together."""
        if self.epoch_hook is None:
            return False
        stop = bool(self.epoch_hook(epoch, metrics)) if distributed.is_main() else False
        return bool(distributed.broadcast_object(stop))

    def fit(self) -> FitState:
        start_epoch = self.state.epoch
        stop_after = self.cfg.get("stop_after_epoch")
        for epoch in range(start_epoch, self.max_epochs):
            t0 = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            with swapped_in(self.model, self.ema):  # the average is scored and is best.pt
                logits, targets, _ = self.predict_logits("val")
            metrics, _ = classification_metrics(
                logits,
                targets,
                self.task,
                self.classes,
                "val",
                thresholds=self.default_thresholds(),
            )
            metrics.update(
                {
                    "train/epoch_loss": train_loss,
                    "epoch": epoch + 1,
                    "time/epoch_s": time.perf_counter() - t0,
                }
            )
            self.state.epoch = epoch + 1
            if self.monitor not in metrics:
                raise ConfigError(
                    f"trainer.checkpoint_monitor={self.monitor!r} is not a val metric; try val/f1_macro"
                )
            score = metrics[self.monitor]
            self.logger.log_metrics(metrics, step=self.state.global_step)
            log.info(
                "epoch %d/%d  train/loss %.4f  %s %.4f  val/acc %.4f  (%.1fs)",
                epoch + 1,
                self.max_epochs,
                train_loss,
                self.monitor,
                score,
                metrics["val/acc"],
                metrics["time/epoch_s"],
            )
            if self._improved(score, self.state.best_score, self.monitor_mode):
                self.state.best_score, self.state.best_epoch = score, epoch + 1
                with swapped_in(self.model, self.ema):
                    self.save("best.pt", metrics, with_resume=False)
            es_score = metrics.get(self.es_monitor, score)
            if self._improved(es_score, self.state.es_best, self.es_mode, self.es_min_delta):
                self.state.es_best, self.state.bad_epochs = es_score, 0
            else:
                self.state.bad_epochs += 1
            self.state.history.append(
                {k: v for k, v in metrics.items() if "/" not in k or k.startswith("val/")}
            )
            self.save("last.pt", metrics, with_resume=True)
            if self._hook_says_stop(epoch + 1, metrics):
                self.pruned_epoch = epoch + 1
                log.info("stopping after epoch %d: the search pruned this trial", epoch + 1)
                break
            if self.es_patience is not None and self.state.bad_epochs > int(self.es_patience):
                log.info(
                    "early stopping: %s did not improve for %d epochs",
                    self.es_monitor,
                    self.state.bad_epochs,
                )
                break
            if (
                stop_after is not None
                and self.state.epoch >= int(stop_after)
                and self.state.epoch < self.max_epochs
            ):
                log.warning(
                    "stopping after epoch %d as asked (trainer.stop_after_epoch); resume with ckpt_path=%s",
                    self.state.epoch,
                    self.ckpt_dir / "last.pt",
                )
                self.interrupted = True
                break
        return self.state
