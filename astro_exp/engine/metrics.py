"""Evaluation metrics from torchmetrics, flattened to ``{"<split>/<name>": float}``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchmetrics.classification as tmc


def probabilities(logits: torch.Tensor, task: str, temperature: float = 1.0) -> torch.Tensor:
    z = logits.float() / temperature
    return z.softmax(-1) if task == "multiclass" else z.sigmoid()


@torch.no_grad()
def classification_metrics(
    logits: torch.Tensor,
    targets: torch.Tensor,
    task: str,
    classes: list[str],
    prefix: str,
    temperature: float = 1.0,
    thresholds: torch.Tensor | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    """All summary metrics of one split and its confusion matrix.

    Multiclass: accuracy (micro, macro), precision/recall/F1 (macro and per class), ECE,
    NLL. Multilabel: exact-match accuracy, per-label and macro F1 at the given thresholds
    (required: ``task.threshold`` until they are tuned on val), mAP, Hamming loss, ECE over
    all label probabilities. ``temperature`` divides logits.
    """
    c = len(classes)
    probs = probabilities(logits, task, temperature)
    out: dict[str, float] = {}
    if task == "multiclass":
        t = targets.long()
        out["acc"] = tmc.MulticlassAccuracy(c, average="micro")(probs, t).item()
        out["acc_macro"] = tmc.MulticlassAccuracy(c, average="macro")(probs, t).item()
        for name, cls in (
            ("precision", tmc.MulticlassPrecision),
            ("recall", tmc.MulticlassRecall),
            ("f1", tmc.MulticlassF1Score),
        ):
            out[f"{name}_macro"] = cls(c, average="macro")(probs, t).item()
            per = cls(c, average="none")(probs, t)
            for k, name_k in enumerate(classes):
                out[f"{name}/{name_k}"] = per[k].item()
        out["ece"] = tmc.MulticlassCalibrationError(c, n_bins=15, norm="l1")(probs, t).item()
        out["nll"] = F.cross_entropy(logits.float() / temperature, t).item()
        confusion = tmc.MulticlassConfusionMatrix(c)(probs, t)
    else:
        t = targets.long()
        if thresholds is None:
            raise ValueError(
                "multilabel metrics need per-label thresholds (Trainer.default_thresholds: task.threshold)"
            )
        preds = (probs >= thresholds.to(probs)).long()
        out["acc"] = tmc.MultilabelExactMatch(c)(preds, t).item()
        per = tmc.MultilabelF1Score(c, average="none")(preds, t)
        out["f1_macro"] = per.mean().item()
        out["precision_macro"] = tmc.MultilabelPrecision(c, average="macro")(preds, t).item()
        out["recall_macro"] = tmc.MultilabelRecall(c, average="macro")(preds, t).item()
        for k, name_k in enumerate(classes):
            out[f"f1/{name_k}"] = per[k].item()
        out["map"] = tmc.MultilabelAveragePrecision(c, average="macro")(probs, t).item()
        out["hamming"] = tmc.MultilabelHammingDistance(c)(preds, t).item()
        out["ece"] = tmc.BinaryCalibrationError(n_bins=15, norm="l1")(
            probs.flatten(), t.flatten()
        ).item()
        out["nll"] = F.binary_cross_entropy_with_logits(
            logits.float() / temperature, targets.float()
        ).item()
        confusion = tmc.MultilabelConfusionMatrix(c)(preds, t)
    return {f"{prefix}/{k}": float(v) for k, v in out.items()}, confusion
