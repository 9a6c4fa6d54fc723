"""Anomaly detection on the trained model's embeddings: PyOD detectors, nearest neighbours,
and the evaluation stage of a run.

Kept import-light on purpose (importing the package loads neither torch nor PyOD); import
the submodules (``detectors``, ``embeddings``, ``neighbours``, ``settings``, ``sets``,
``stage``) directly.
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
