"""The logger interface the training loop talks to, and a fan-out over several loggers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

T = TypeVar("T")


@runtime_checkable
class Logger(Protocol):
    """What the trainer calls; each backend (JSONL, W&B) implements all six methods."""

    def log_config(self, config: dict) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def log_image(self, key: str, path: str | Path) -> None: ...
    def log_predictions(self, key: str, images: np.ndarray, rows: list[dict]) -> None: ...
    def log_summary(self, summary: dict[str, float]) -> None: ...
    def finish(self) -> None: ...


class MultiLogger:
    """Sends every call to each logger; with none it is the null logger (DDP ranks > 0).

    ``finish`` reaches every logger even when one fails, so a W&B error at the end of a
    run cannot leave metrics.jsonl unclosed; the first error is re-raised afterwards.
    """

    def __init__(self, loggers: list[Logger] | tuple[Logger, ...] = ()) -> None:
        self.loggers: list[Logger] = list(loggers)

    def find(self, kind: type[T]) -> T | None:
        """The first logger of a type (e.g. the WandbLogger, to store its run id for resume)."""
        return next((lg for lg in self.loggers if isinstance(lg, kind)), None)

    def log_config(self, config: dict) -> None:
        for lg in self.loggers:
            lg.log_config(config)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for lg in self.loggers:
            lg.log_metrics(metrics, step)

    def log_image(self, key: str, path: str | Path) -> None:
        for lg in self.loggers:
            lg.log_image(key, path)

    def log_predictions(self, key: str, images: np.ndarray, rows: list[dict]) -> None:
        for lg in self.loggers:
            lg.log_predictions(key, images, rows)

    def log_summary(self, summary: dict[str, float]) -> None:
        for lg in self.loggers:
            lg.log_summary(summary)

    def finish(self) -> None:
        first: BaseException | None = None
        for lg in self.loggers:
            try:
                lg.finish()
            except Exception as e:  # finish the others, re-raise below
                log.warning("%s.finish failed: %s", type(lg).__name__, e)
                first = first or e
        if first is not None:
            raise first
