"""What the classifier says about one picture: :class:`Prediction`, and ``FIELDS``, the names
its JSON (``to_dict``: predict's output lines, the web app's answers) has, in order."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FIELDS = (
    "input",
    "label",
    "confidence",
    "top_k",
    "anomaly_score",
    "is_anomaly",
    "neighbours",
    "labels",
    "picture",
    "text",
    "evidence",
    "error",
)


@dataclass
class Prediction:
    """What the model says about one input; ``error`` is a one-line reason when it failed."""

    input: str
    label: str | None = None
    confidence: float | None = None  # calibrated probability of ``label`` (bundle temperature)
    top_k: list[dict[str, Any]] = field(default_factory=list)  # [{"label", "probability"}]
    anomaly_score: float | None = None  # higher = stranger; None without a detector
    is_anomaly: bool | None = None  # score over the threshold set on val
    neighbours: list[dict[str, Any]] = field(default_factory=list)  # [{"id", "label", "distance"}]
    labels: list[str] = field(default_factory=list)  # multilabel: every label over its threshold
    # what the picture alone says: {"label", "confidence", "probs": {class: p}} (label,
    # confidence and top_k above are the picture and the day's text together when a text
    # was given and named something: see astro_exp.predict.fusion)
    picture: dict[str, Any] | None = None
    # what the text alone says: {"label", "probs": {class: P(class | text)}, "scores":
    # the labeller's per-class scores}; None when no text was given or it named nothing
    text: dict[str, Any] | None = None
    # what decided the label: "picture+text", or "picture" (no text, or a text naming nothing)
    evidence: str | None = None
    error: str | None = None
    # the detector's embedding of the picture (float32); kept out of to_dict (not JSON)
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with exactly the documented field names (no embedding)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in FIELDS}
