"""Loggers: the run folder's JSON files always, W&B when ``logger=wandb``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from astro_exp.tracking.base import Logger, MultiLogger
from astro_exp.tracking.jsonl import JsonlLogger


def build_loggers(cfg: Mapping, run_dir: str | Path, group: str | None = None, name: str | None = None) -> MultiLogger:
    loggers: list = [JsonlLogger(run_dir)]
    if cfg.get("name") == "wandb" and cfg.get("mode", "auto") != "disabled":
        from astro_exp.tracking.wandb_logger import WandbLogger

        loggers.append(WandbLogger(
            run_dir, project=cfg.get("project", "astro-exp"), entity=cfg.get("entity"),
            group=cfg.get("group") or group, name=name, tags=cfg.get("tags") or (), mode=cfg.get("mode", "auto"),
        ))  # fmt: skip
    return MultiLogger(loggers)


__all__ = ["Logger", "MultiLogger", "JsonlLogger", "build_loggers"]
