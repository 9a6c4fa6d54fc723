"""The logger interface the training loop talks to, and a fan-out over several loggers."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Logger(Protocol):
    def log_config(self, config: dict) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def log_image(self, key: str, path: str | Path) -> None: ...
    def log_predictions(self, key: str, images: np.ndarray, rows: list[dict]) -> None: ...
    def log_summary(self, summary: dict[str, float]) -> None: ...
    def finish(self) -> None: ...


class MultiLogger:
    """Sends every call to each logger; with none it is the null logger (DDP ranks > 0)."""

    def __init__(self, loggers: list) -> None:
        self.loggers = list(loggers)

    def __getattr__(self, name: str):
        def fan_out(*args, **kwargs) -> None:
            for logger in self.loggers:
                getattr(logger, name)(*args, **kwargs)

        return fan_out
