"""Loggers: the run folder's JSON files always, W&B when ``logger=wandb``.

W&B is imported lazily (only by ``build_loggers`` for ``logger=wandb``), so ``logger=none``
runs and the web app work without it installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from astro_exp.tracking.interface import Logger, MultiLogger
from astro_exp.tracking.jsonl import JsonlLogger


def build_loggers(
    cfg: Mapping,
    run_dir: str | Path,
    group: str | None = None,
    name: str | None = None,
    resume_id: str | None = None,
) -> MultiLogger:
    """JsonlLogger always; a WandbLogger too when ``cfg["name"] == "wandb"`` and mode isn't disabled.

    ``cfg`` is the ``logger`` config group (dict or DictConfig): name, project, entity, mode,
    tags, group (overrides ``group``, e.g. the multirun sweep's folder name), job_type, resume_id.
    """
    loggers: list[Logger] = [JsonlLogger(run_dir)]
    if cfg.get("name") == "wandb" and cfg.get("mode", "auto") != "disabled":
        from astro_exp.tracking.wandb_logger import WandbLogger, resolve_mode

        mode = resolve_mode(cfg.get("mode") or "auto")  # WANDB_MODE=disabled counts too
        if mode != "disabled":
            loggers.append(
                WandbLogger(
                    run_dir,
                    project=cfg.get("project") or "astro-exp",
                    entity=cfg.get("entity"),
                    group=cfg.get("group") or group,
                    name=name,
                    tags=list(cfg.get("tags") or ()),
                    mode=mode,
                    job_type=cfg.get("job_type") or "train",
                    resume_id=resume_id or cfg.get("resume_id"),
                )
            )
    return MultiLogger(loggers)


__all__ = ["Logger", "MultiLogger", "JsonlLogger", "build_loggers"]
