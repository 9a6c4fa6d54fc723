"""Anomaly detection on the trained model's embeddings: PyOD detectors, nearest neighbours,
and the evaluation stage of a run.

Kept import-light on purpose: ``astro_exp.data.datamodule`` imports
:func:`astro_exp.anomaly.sets.split_holdout`, so this package must not import the data
stack at import time. Import the submodules (``detectors``, ``embeddings``,
``neighbours``, ``evaluate``, ``sets``) directly.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "AnomalyDetector": "astro_exp.anomaly.detectors",
    "NeighbourIndex": "astro_exp.anomaly.neighbours",
    "anomaly_stage": "astro_exp.anomaly.stage",
    "split_holdout": "astro_exp.anomaly.sets",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'astro_exp.anomaly' has no attribute {name!r}")


__all__ = list(_LAZY)
