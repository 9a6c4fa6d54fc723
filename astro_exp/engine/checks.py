"""The trainer's settings that are checked before training starts, each with a one-line error."""

from __future__ import annotations

from collections.abc import Mapping

from astro_exp.errors import ConfigError


def multilabel_threshold(kind: str, task: Mapping) -> float | None:
    """``task.threshold`` of multilabel data, checked; None for multiclass."""
    if kind != "multilabel":
        return None
    if task.get("threshold") is None:
        raise ConfigError(
            "the data is multilabel but the task config has no threshold; compose task=multilabel"
        )
    threshold = float(task["threshold"])
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"task.threshold={threshold} must be between 0 and 1")
    return threshold


def max_epochs(cfg: Mapping) -> int:
    """``trainer.max_epochs``, checked."""
    max_epochs = int(cfg["max_epochs"])
    if max_epochs < 1:
        raise ConfigError(f"trainer.max_epochs={max_epochs} must be >= 1")
    return max_epochs


def calibration_label_noise(cfg: Mapping) -> float:
    """``trainer.calibration_label_noise``, checked before training rather than after it."""
    noise = float(cfg.get("calibration_label_noise", 0.0))
    if not 0.0 <= noise < 0.5:
        raise ConfigError(
            f"trainer.calibration_label_noise={noise} must be in "
            "[0, 0.5): the share of val labels that are wrong"
        )
    return noise


def low_res_epochs(low_res: Mapping, max_epochs: int) -> int:
    """``trainer.low_res.epochs``, checked: the last epoch is always at the full size."""
    epochs = int(low_res.get("epochs", 0))
    if not 0 <= epochs < max_epochs:
        raise ConfigError(
            f"trainer.low_res.epochs={epochs} must be in [0, trainer.max_epochs={max_epochs}): "
            "the last epochs train at the size that is scored"
        )
    return epochs
