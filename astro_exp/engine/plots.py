"""Figures that say more than tables: the confusion matrix, the reliability diagram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion(
    confusion: np.ndarray, classes: list[str], path: str | Path, title: str = ""
) -> Path:
    """Row-normalised confusion matrix with counts; multilabel (C, 2, 2) gets one panel a label."""
    path = Path(path)
    confusion = np.asarray(confusion)
    if confusion.ndim == 3:
        fig, axes = plt.subplots(1, len(classes), figsize=(2.6 * len(classes), 2.8), squeeze=False)
        for k, ax in enumerate(axes[0]):
            _draw(ax, confusion[k], ["no", "yes"], classes[k])
    else:
        size = 1.2 + 0.7 * len(classes)
        fig, ax = plt.subplots(figsize=(size + 1.5, size))
        _draw(ax, confusion, classes, title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw(ax, cm: np.ndarray, labels: list[str], title: str) -> None:
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)


def plot_reliability(
    confidence: np.ndarray, correct: np.ndarray, path: str | Path, bins: int = 10, title: str = ""
) -> Path:
    """Reliability diagram: accuracy against confidence per bin (bars), the diagonal of perfect
    calibration, and how many predictions each bin holds (lower panel)."""
    path = Path(path)
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    acc = np.full(bins, np.nan)
    mean_conf = np.full(bins, np.nan)
    count = np.zeros(bins)
    for b in range(bins):
        m = which == b
        count[b] = m.sum()
        if m.any():
            acc[b], mean_conf[b] = correct[m].mean(), confidence[m].mean()
    centres = (edges[:-1] + edges[1:]) / 2
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(4.6, 5.2), height_ratios=[3, 1], sharex=True)
    ax.bar(
        centres,
        np.nan_to_num(acc),
        width=1 / bins,
        edgecolor="black",
        color="#4c78a8",
        label="accuracy",
    )
    ax.plot(
        centres, mean_conf, "o", color="#e45756", label="mean confidence (gap = miscalibration)"
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    ax_n.bar(centres, count, width=1 / bins, edgecolor="black", color="#bab0ac")
    ax_n.set_xlabel("confidence")
    ax_n.set_ylabel("pictures")
    ax_n.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
