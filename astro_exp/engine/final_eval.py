"""The end of a run: calibrate on val, evaluate on test, write the figures and the bundle."""

from __future__ import annotations

import logging

import numpy as np
import torch

from astro_exp.engine import distributed
from astro_exp.engine.calibration import fit_temperature_checked, fit_thresholds
from astro_exp.engine.metrics import classification_metrics, probabilities
from astro_exp.engine.plots import plot_confusion
from astro_exp.engine.trainer import Trainer
from astro_exp.models.checkpoint import load_bundle, save_bundle

log = logging.getLogger(__name__)


def final_evaluation(
    trainer: Trainer, logger, num_logged_predictions: int = 32
) -> dict[str, float]:
    """Load best.pt, fit temperature (and multilabel thresholds) on val, score test.

    ``test/ece`` is the raw model's calibration error, ``test/ece_calibrated`` the one after
    temperature scaling; best.pt is rewritten with the temperature so predict uses it.
    """
    best_path = trainer.ckpt_dir / "best.pt"
    distributed.barrier()  # rank 0 wrote it
    best = load_bundle(best_path)
    trainer.model.load_state_dict(best["state_dict"])
    task, classes = trainer.task, trainer.classes

    val_logits, val_targets, _ = trainer.predict_logits("val")
    fit = fit_temperature_checked(
        val_logits, val_targets, task, label_noise=trainer.calibration_label_noise
    )
    temperature = fit.temperature
    thresholds = None
    if task == "multilabel":
        thresholds = fit_thresholds(
            probabilities(val_logits, task, temperature), val_targets, trainer.threshold
        )
    val_metrics, _ = classification_metrics(
        val_logits, val_targets, task, classes, "val", 1.0, thresholds
    )
    val_cal, _ = classification_metrics(
        val_logits, val_targets, task, classes, "val", temperature, thresholds
    )
    val_metrics["val/ece_calibrated"] = val_cal["val/ece"]

    logits, targets, ids = trainer.predict_logits("test")
    raw, _ = classification_metrics(logits, targets, task, classes, "test", 1.0, thresholds)
    metrics, confusion = classification_metrics(
        logits, targets, task, classes, "test", temperature, thresholds
    )
    metrics["test/ece_calibrated"] = metrics["test/ece"]
    metrics["test/ece"] = raw["test/ece"]
    metrics["test/nll_uncalibrated"] = raw["test/nll"]
    metrics.update(val_metrics)
    metrics["calibration/temperature"] = temperature
    metrics["calibration/temperature_fitted"] = fit.fitted
    metrics["calibration/fell_back"] = float(fit.fell_back)
    metrics["calibration/label_noise"] = trainer.calibration_label_noise
    metrics["best_epoch"] = float(trainer.state.best_epoch)

    if not distributed.is_main():
        return metrics
    run_dir = trainer.run_dir
    cm_path = plot_confusion(
        confusion.numpy(),
        classes,
        run_dir / "confusion_matrix.png",
        title=f"test, macro-F1 {metrics['test/f1_macro']:.3f}",
    )
    logger.log_image("test/confusion_matrix", cm_path)
    _log_predictions(
        trainer, logger, logits, targets, ids, temperature, thresholds, num_logged_predictions
    )

    bundle = trainer.make_bundle(
        trainer.model,
        epoch=best["epoch"],
        metrics=metrics,
        temperature=temperature,
        thresholds=None if thresholds is None else thresholds.tolist(),
    )
    save_bundle(bundle, best_path)
    log.info(
        "test: acc %.4f  macro-F1 %.4f  ECE %.4f -> %.4f (T=%.2f)",
        metrics["test/acc"],
        metrics["test/f1_macro"],
        metrics["test/ece"],
        metrics["test/ece_calibrated"],
        temperature,
    )
    return metrics


def _log_predictions(trainer, logger, logits, targets, ids, temperature, thresholds, n) -> None:
    if n <= 0:
        return
    classes = trainer.classes
    probs = probabilities(logits[:n], trainer.task, temperature)
    idx = ids[:n].numpy()
    images = np.ascontiguousarray(trainer.dm.images[np.sort(idx)].transpose(0, 2, 3, 1))
    order = np.argsort(np.argsort(idx))  # images came back sorted; map rows to them
    rows = []
    for r in range(len(idx)):
        p = probs[r]
        if trainer.task == "multiclass":
            k = int(p.argmax())
            truth = classes[int(targets[r])]
            pred, conf = classes[k], float(p[k])
        else:
            on = (p >= thresholds).nonzero().flatten().tolist()
            truth = ";".join(classes[j] for j in torch.nonzero(targets[r]).flatten().tolist())
            pred, conf = ";".join(classes[j] for j in on), float(p.max())
        rows.append(
            {
                "id": trainer.dm.imageset.ids[int(idx[r])],
                "label": truth,
                "prediction": pred,
                "confidence": round(conf, 4),
                "correct": truth == pred,
            }
        )
    logger.log_predictions("test/predictions", images[order], rows)
