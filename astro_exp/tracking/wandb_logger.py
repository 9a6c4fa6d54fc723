"""Weights & Biases: every run is a W&B run, online with an API key and offline without.

Imported only when ``logger=wandb``, so ``logger=none`` needs no W&B at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _resolve_mode(mode: str) -> str:
    """auto -> online when an API key is configured, else offline (never a login prompt)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


class WandbLogger:
    def __init__(
        self,
        run_dir: str | Path,
        project: str = "astro-exp",
        entity: str | None = None,
        group: str | None = None,
        name: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        mode: str = "auto",
        job_type: str = "train",
        resume_id: str | None = None,
    ) -> None:
        import wandb

        self.wandb = wandb
        self.mode = _resolve_mode(mode)
        self.run = wandb.init(
            dir=str(run_dir), project=project, entity=entity, group=group, name=name, tags=list(tags),
            mode=self.mode, job_type=job_type, id=resume_id, resume="allow" if resume_id else None,
            reinit="finish_previous", settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
        )  # fmt: skip

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def run_dir(self) -> Path:
        return Path(self.run.dir).parent

    def log_config(self, config: dict) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_image(self, key: str, path: str | Path) -> None:
        self.run.log({key: self.wandb.Image(str(path))})

    def log_predictions(self, key: str, images: np.ndarray, rows: list[dict]) -> None:
        if not rows:
            return
        columns = ["image", *rows[0].keys()]
        table = self.wandb.Table(columns=columns)
        for img, row in zip(images, rows, strict=False):
            table.add_data(self.wandb.Image(img), *row.values())
        self.run.log({key: table})

    def log_summary(self, summary: dict[str, float]) -> None:
        for k, v in summary.items():
            self.run.summary[k] = v

    def finish(self) -> None:
        self.run.finish()
