"""The classifier behind the pages: one :class:`~astro_exp.predict.classifier.Classifier` (the same code
path as the CLI), plus the pictures that explain a prediction: the preprocessed view the
model sees and a few training-time augmentations of it; without a model, a run's stored
prediction is shown the same way (:func:`stored_prediction`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astro_exp.data.cache import resize_image
from astro_exp.web.media import png_data_uri

CACHE_SIZE = 256


@dataclass
class Analysis:
    """A prediction with what the page shows beside it."""

    prediction: dict[str, Any]
    view: str | None = None  # data: URI of the preprocessed picture
    augmented: list[str] = field(default_factory=list)  # data: URIs
    threshold: float | None = None


class ModelService:
    """Loads a bundle once; analyses are cached by picture hash (pages are revisited)."""

    def __init__(
        self, ckpt_path: Path | None, device: str = "auto", top_k: int = 5, n_augmented: int = 4
    ) -> None:
        self.ckpt_path = ckpt_path
        self.top_k = top_k
        self.n_augmented = n_augmented
        self.classifier = None
        self.augment: torch.nn.Module | None = None
        self._lock = threading.Lock()  # one forward at a time: the server is multi-threaded
        self._cache: OrderedDict[str, Analysis] = OrderedDict()
        if ckpt_path is not None:
            # torch/timm are imported only when a model is served
            from astro_exp.predict.classifier import Classifier
            from astro_exp.vision import build_augment

            self.classifier = Classifier.from_checkpoint(ckpt_path, device=device)
            augment_cfg = (self.classifier.bundle.get("config") or {}).get("augment")
            self.augment = build_augment(augment_cfg).eval() if augment_cfg else None

    @property
    def loaded(self) -> bool:
        return self.classifier is not None

    def info(self) -> dict[str, Any]:
        """What the pages say about the model (classes, task, image size, detector)."""
        clf = self.classifier
        if clf is None:
            return {"loaded": False}
        det = clf.detector
        return {
            "loaded": True,
            "ckpt_path": str(self.ckpt_path),
            "classes": clf.classes,
            "task": clf.task,
            "image_size": clf.image_size,
            "temperature": clf.temperature,
            "model": clf.bundle.get("model", {}).get("model_name"),
            "detector": getattr(det, "name", None),
            "threshold": getattr(det, "threshold", None),
        }

    def analyse(
        self,
        key: str,
        pixels: np.ndarray,
        views: bool = True,
        text: tuple[str, str] | None = None,
    ) -> Analysis:
        """Classify RGB uint8 (H, W, 3) ``pixels`` (with the day's ``text``: the picture and
        the text together, as predict stores it); ``key`` (content hash) names the cache entry."""
        if self.classifier is None:
            raise RuntimeError("no model loaded")
        cache_key = f"{key}|{int(views)}|{hash(text)}"
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None:
                self._cache.move_to_end(cache_key)
                return hit
            clf = self.classifier
            pred = clf.predict([pixels], top_k=self.top_k, texts=[text])[0].to_dict()
            pred.pop("input", None)
            out = Analysis(pred, threshold=getattr(clf.detector, "threshold", None))
            if views and not pred.get("error"):
                out.view, out.augmented = self._views(pixels)
            self._cache[cache_key] = out
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return out

    @torch.no_grad()
    def _views(self, pixels: np.ndarray) -> tuple[str, list[str]]:
        clf = self.classifier
        assert clf is not None
        small = resize_image(pixels, clf.image_size, clf.resize).transpose(2, 0, 1)
        x = torch.from_numpy(np.ascontiguousarray(small))[None].to(clf.device)
        prepared = clf.preprocess.prepare(x).clamp(0, 1)
        view = png_data_uri(prepared[0].cpu().numpy())
        samples: list[str] = []
        if self.augment is not None and self.n_augmented > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # the same samples on every visit
                from astro_exp.vision.augment import augmented_samples

                batch = augmented_samples(
                    self.augment.to(clf.device), prepared[0], self.n_augmented
                )
            samples = [png_data_uri(b.cpu().numpy()) for b in batch]
        return view, samples


def stored_prediction(row: dict[str, Any], classes: list[str] | None) -> dict[str, Any] | None:
    """The catalog's stored prediction of a run as a Prediction-like dict (no neighbours)."""
    if row.get("pred_label") is None:
        return None
    probs = row.get("probs")
    if isinstance(probs, dict):
        pairs = [(str(k), float(v)) for k, v in probs.items()]
    elif isinstance(probs, list) and classes and len(probs) == len(classes):
        pairs = list(zip(classes, map(float, probs), strict=True))
    else:
        pairs = []
    top = [{"label": k, "probability": v} for k, v in sorted(pairs, key=lambda kv: -kv[1])]
    picture_probs = row.get("picture_probs") if isinstance(row.get("picture_probs"), dict) else None
    text_probs = row.get("text_probs") if isinstance(row.get("text_probs"), dict) else None
    return {
        "label": row["pred_label"],
        "confidence": row.get("confidence"),
        "top_k": top,
        # the text+picture answer's parts (a picture-only row: the picture, no text)
        "picture": {
            "label": row.get("picture_label") or row["pred_label"],
            "confidence": row.get("picture_confidence", row.get("confidence")),
            "probs": picture_probs or dict(pairs),
        },
        "text": {"label": max(text_probs, key=text_probs.get), "probs": text_probs}
        if text_probs
        else None,
        "evidence": row.get("evidence") or ("picture+text" if text_probs else "picture"),
        "anomaly_score": row.get("anomaly_score"),
        "is_anomaly": None if row.get("is_anomaly") is None else bool(row["is_anomaly"]),
        "neighbours": [],
        "labels": [row["pred_label"]],
        "error": None,
        "stored": True,
    }
