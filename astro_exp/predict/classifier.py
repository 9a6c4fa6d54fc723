"""Classify new pictures with a checkpoint bundle: calibrated confidence, top-k, anomaly
score and flag, and the nearest training pictures ("compared with what it has seen").

One code path for the CLI (``scripts/predict.py``), the Python API, the web app and the
watcher::

    from astro_exp import Classifier
    clf = Classifier.from_checkpoint("outputs/.../checkpoints/best.pt")
    preds = clf.predict(["m31.jpg", "new_pics/", "https://example.org/x.jpg", pil_image, batch])

Inputs go through the same steps as training pictures: decode to RGB uint8 (a JPEG at a
reduced scale that keeps twice the model's size, as the tensor cache does), the
bundle's resize policy to its image size, then the bundle's Kornia preprocessing on the
model's device. A bad input (missing, not a picture, truncated, too large, HTTP 404)
becomes a :class:`Prediction` with ``error`` set; the others go on.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from astro_exp.anomaly.detectors import (
    DETECTOR_FILE,
    REFERENCE_FILE,
    AnomalyDetector,
    load_reference,
)
from astro_exp.anomaly.embeddings import EmbeddingSpec, forward_embed, model_digest
from astro_exp.anomaly.neighbours import NeighbourIndex
from astro_exp.data.cache import resize_image
from astro_exp.engine.device import autocast, resolve_device
from astro_exp.errors import AstroExpError, DataError
from astro_exp.imageio import read_image
from astro_exp.models.checkpoint import load_bundle, model_from_bundle
from astro_exp.predict.fusion import Fusion, fusion_of_bundle
from astro_exp.predict.inputs import Item, Texts, attach_texts, expand_inputs, in_batches
from astro_exp.predict.prediction import FIELDS, Prediction
from astro_exp.vision import build_preprocess

log = logging.getLogger(__name__)

__all__ = ["FIELDS", "Classifier", "Prediction"]


class Classifier:
    """A trained bundle ready to classify pictures (and flag anomalies, when its run fitted a
    detector: ``detector.joblib`` + ``reference.npz`` beside the bundle).

    Open one with :meth:`from_checkpoint`; :meth:`predict` takes paths, folders, URLs, PIL
    images or arrays and returns one :class:`Prediction` each (label, calibrated confidence,
    top-k, anomaly score and flag, nearest training pictures, or the error of a bad input).

    Args:
        bundle: a checkpoint bundle (``models/checkpoint.py``).
        device: ``auto``, ``cpu``, ``cuda``, ...
        detector, reference: the anomaly detector and reference embeddings, when fitted.

    >>> import tempfile, numpy as np
    >>> from astro_exp.models.checkpoint import make_bundle, save_bundle
    >>> from astro_exp.models.factory import create_model
    >>> pre = {"name": "default", "image_size": 32, "resize": "crop",
    ...        "mean": [0.5] * 3, "std": [0.5] * 3}
    >>> bundle = make_bundle(create_model("test_resnet", 2), classes=["galaxy", "star"],
    ...     model_cfg={"name": "tiny", "model_name": "test_resnet"}, task="multiclass",
    ...     preprocess=pre, image_size=32)
    >>> clf = Classifier.from_checkpoint(save_bundle(bundle, tempfile.mkdtemp() + "/best.pt"))
    >>> p = clf.predict([np.zeros((48, 48, 3), np.uint8)])[0]
    >>> (p.label in clf.classes, 0.0 <= p.confidence <= 1.0, p.error)
    (True, True, None)
    """

    def __init__(
        self,
        bundle: dict[str, Any],
        device: str | torch.device = "auto",
        detector: AnomalyDetector | None = None,
        reference: dict[str, Any] | None = None,
        n_neighbors: int | None = None,
        max_bytes: int = 50_000_000,
        http_session: Any = None,
        source: str = "<bundle>",
    ) -> None:
        self.bundle = bundle
        self.source = source
        self.device = (
            resolve_device(str(device)) if not isinstance(device, torch.device) else device
        )
        self.model: nn.Module = model_from_bundle(bundle).to(self.device).eval()
        self.preprocess = build_preprocess(bundle["preprocess"]).to(self.device)
        self.classes: list[str] = list(bundle["classes"])
        self.task: str = str(bundle["task"])
        self.image_size = int(
            bundle.get("image_size") or bundle["preprocess"].get("image_size", 64)
        )
        self.resize = str(bundle["preprocess"].get("resize", "crop"))
        self.temperature = float(bundle.get("temperature") or 1.0)
        self.tta_flip = bool((bundle.get("tta") or {}).get("hflip"))
        thr = bundle.get("thresholds")
        if thr is None:  # not tuned yet (a last.pt, or multiclass): the run's task.threshold
            task_cfg = (bundle.get("config") or {}).get("task") or {}
            thr = [float(task_cfg.get("threshold") or 0.5)] * len(
                self.classes
            )  # 0.5: bundles without a config
        self.thresholds = np.asarray(thr, dtype=np.float64)
        self.max_bytes = int(max_bytes)
        self.detector = detector
        self.index = (
            NeighbourIndex(reference["emb"], reference["labels"], reference["ids"])
            if reference
            else None
        )
        meta = detector.meta if detector is not None else {}
        self.n_neighbors = int(meta.get("n_neighbors", 5) if n_neighbors is None else n_neighbors)
        # the embedding the detector was fitted on (pre-logits and/or pooled stages)
        self.embedding = (
            EmbeddingSpec.from_meta(meta)
            if detector is not None
            else EmbeddingSpec.pre_logits_only()
        )
        self._http = http_session
        self._http_lock = threading.Lock()
        self.decode_workers: int | None = None  # see _decode_workers
        # a colour view on every picture's pixels (astro_exp.predict.colour_views; evaluate's view=)
        self.view: Callable[[np.ndarray], np.ndarray] | None = None
        # the day's text and the picture together (astro_exp.predict.fusion): the bundle's own
        # fusion, else the shipped default of the label config it was trained with; None for
        # multilabel bundles and classes no label config knows (the picture alone then)
        self.fusion: Fusion | None = fusion_of_bundle(bundle)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        anomaly: bool = True,
        **kwargs: Any,
    ) -> Classifier:
        """Load a bundle (one-line :class:`CheckpointError` when missing/corrupt/not a bundle)
        and, if ``anomaly``, the detector and reference embeddings saved beside it."""
        path = Path(path)
        bundle = load_bundle(path)
        detector = reference = None
        det_path, ref_path = path.parent / DETECTOR_FILE, path.parent / REFERENCE_FILE
        if anomaly and det_path.is_file() and ref_path.is_file():
            detector, reference = AnomalyDetector.load(det_path), load_reference(ref_path)
        clf = cls(
            bundle,
            device=device,
            detector=detector,
            reference=reference,
            source=str(path),
            **kwargs,
        )
        if detector is not None:
            digest = model_digest(clf.model)
            if detector.meta.get("digest") not in (None, digest):
                log.warning(
                    "%s belongs to other weights than %s (best.pt's?); anomaly scores are off",
                    det_path,
                    path.name,
                )
                clf.detector, clf.index, clf.embedding = None, None, EmbeddingSpec.pre_logits_only()
        elif anomaly:
            log.info("no %s beside %s: predictions carry no anomaly score", DETECTOR_FILE, path)
        return clf

    # -- inputs -------------------------------------------------------------------------------
    def _file_item(self, path: Path, name: str | None = None) -> Item:
        def load() -> np.ndarray:
            return read_image(path, max_bytes=self.max_bytes, target_size=self.image_size)

        return Item(name or str(path), load)

    def _url_item(self, url: str, tmp_dir: Callable[[], str]) -> Item:
        def load() -> np.ndarray:
            from astro_exp.net.session import PoliteSession

            with self._http_lock:  # loads run on a thread pool: one session for all
                if self._http is None:
                    self._http = PoliteSession(rate_limit_per_host=4.0, retries=2, timeout=20.0)
            got = self._http.download(
                url, tmp_dir(), max_bytes=self.max_bytes, allowed_types=("image/",)
            )
            try:
                return read_image(got.path, target_size=self.image_size)
            except DataError as e:
                raise DataError(f"{url}: {str(e).split(': ', 1)[-1]}") from None
            finally:
                got.path.unlink(missing_ok=True)

        return Item(url, load)

    def expand(self, inputs: Any, tmp_dir: Callable[[], str] | None = None) -> list[Item]:
        """Inputs -> one item per picture: folders recursively, globs, batches split up
        (:func:`~astro_exp.predict.inputs.expand_inputs`); downloads go to ``tmp_dir()``."""
        tmp = tmp_dir or (lambda: tempfile.gettempdir())
        return expand_inputs(inputs, self._file_item, lambda url: self._url_item(url, tmp))

    # -- the model ----------------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, embeddings) of a uint8 (B, 3, S, S) batch, on CPU as float32."""
        x = self.preprocess(x.to(self.device))
        with autocast(self.device, "auto"):
            emb, logits = forward_embed(self.model, x, self.embedding)
            if self.tta_flip:  # as the run evaluated: the mean logits of the picture and its mirror
                logits = (logits.float() + self.model(torch.flip(x, dims=[3])).float()) / 2
        return logits.float().cpu(), emb.float().cpu()

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """Calibrated probabilities: softmax (multiclass) or sigmoid (multilabel) of logits / T."""
        z = logits.double() / self.temperature
        return (z.softmax(-1) if self.task == "multiclass" else z.sigmoid()).numpy()

    def _pixels(self, item: Item) -> np.ndarray:
        assert item.load is not None
        px = resize_image(item.load(), self.image_size, self.resize).transpose(2, 0, 1)
        return px if self.view is None else self.view(px)

    # -- prediction -------------------------------------------------------------------------------
    def predict(
        self,
        inputs: Any,
        top_k: int = 3,
        batch_size: int = 32,
        progress: bool = False,
        texts: Texts = None,
    ) -> list[Prediction]:
        """One :class:`Prediction` per picture, in input order (folders and globs sorted).

        Args:
            inputs: paths, folders, globs, URLs, PIL images, arrays or tensors (or one of them).
            top_k: how many classes each prediction lists.
            batch_size: pictures per forward pass.
            progress: a progress bar.
            texts: the day's words of each picture: a sequence with one ``(title,
                explanation)``, string or None per picture (after folders are expanded), or a
                mapping from the picture's name (the path as given or found) to it. With a
                text that names a class, ``label``, ``confidence`` and ``top_k`` are the
                picture and the text together (``evidence="picture+text"``); ``picture``
                keeps what the picture alone says.

        Returns:
            The predictions; a bad input has ``error`` set and the others go on.
        """
        return list(
            self.predict_iter(
                inputs, top_k=top_k, batch_size=batch_size, progress=progress, texts=texts
            )
        )

    def predict_iter(
        self,
        inputs: Any,
        top_k: int = 3,
        batch_size: int = 32,
        progress: bool = False,
        texts: Texts = None,
    ) -> Iterator[Prediction]:
        """Like :meth:`predict`, yielding as batches finish (for streaming consumers)."""
        holder: list[str] = []
        lock = threading.Lock()

        def tmp_dir() -> str:  # one folder for this call's downloads, made on first use
            with lock:
                if not holder:
                    holder.append(tempfile.mkdtemp(prefix="astro-exp-predict-"))
                return holder[0]

        try:
            items = self.expand(inputs, tmp_dir)
            attach_texts(items, texts)
            chunks = list(in_batches(items, max(1, int(batch_size))))
            bar = tqdm(total=len(items), desc="predict", unit="img", disable=not progress)
            workers = 0 if len(items) <= 1 else self._decode_workers()
            if workers == 0:  # decode inline: nothing to overlap, or no core to overlap on
                for chunk in chunks:
                    yield from self._predict_loaded(chunk, [self._load(it) for it in chunk], top_k)
                    bar.update(len(chunk))
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    # decode the next batch while the model runs on this one
                    pending = [pool.submit(self._load, it) for it in chunks[0]]
                    for k, chunk in enumerate(chunks):
                        loaded = [f.result() for f in pending]
                        if k + 1 < len(chunks):
                            pending = [pool.submit(self._load, it) for it in chunks[k + 1]]
                        yield from self._predict_loaded(chunk, loaded, top_k)
                        bar.update(len(chunk))
            bar.close()
        finally:
            if holder:
                shutil.rmtree(holder[0], ignore_errors=True)

    def _decode_workers(self) -> int:
        """Threads that decode the next batch while the model runs on this one
        (``decode_workers``; ``None``: by the device). A GPU leaves the CPU free: up to 4.
        On the CPU the model already runs on torch's threads, and a decoder beside them on
        a busy core stalls every op at its barrier: only the cores torch leaves spare."""
        if self.decode_workers is not None:
            return max(0, int(self.decode_workers))
        cpus = os.cpu_count() or 1
        if self.device.type == "cpu":
            return max(0, min(4, cpus - torch.get_num_threads()))
        return min(4, cpus)

    def _load(self, item: Item) -> tuple[np.ndarray | None, str | None]:
        """(uint8 (3, S, S) pixels, None) or (None, one-line error)."""
        if item.error is not None:
            return None, item.error
        try:
            return self._pixels(item), None
        except AstroExpError as e:  # DataError, HttpError/DownloadError, ...
            return None, str(e)
        except (OSError, ValueError, MemoryError) as e:
            return None, f"{item.name}: cannot read it ({type(e).__name__}: {str(e)[:120]})"

    def _predict_loaded(
        self, chunk: list[Item], loaded: list[tuple[np.ndarray | None, str | None]], top_k: int
    ) -> list[Prediction]:
        out = [
            Prediction(input=item.name, error=err)
            for item, (_, err) in zip(chunk, loaded, strict=True)
        ]
        ok = [i for i, (px, _) in enumerate(loaded) if px is not None]
        if not ok:
            return out
        x = torch.from_numpy(np.stack([loaded[i][0] for i in ok]))
        logits, emb = self.forward(x)
        probs = self.probabilities(logits)
        emb_np = emb.numpy()
        scores = flags = neigh = None
        if self.detector is not None:
            scores = self.detector.score(emb_np)
            flags = self.detector.flag(scores)
        if self.index is not None and self.n_neighbors > 0:
            neigh = self.index.neighbours(emb_np, self.n_neighbors)
        k = max(1, min(int(top_k), len(self.classes)))
        picture_probs = probs
        text_probs, text_scores, has_text = None, None, np.zeros(len(ok), dtype=bool)
        given = [chunk[i].text for i in ok]
        if self.fusion is not None and any(t is not None for t in given):
            probs, text_probs, text_scores, has_text = self.fusion.fuse(picture_probs, given)
        # the batch's sorting and number conversions at once, then only lists per picture
        orders = np.argsort(-probs, axis=1, kind="stable").tolist()
        plist, over = probs.tolist(), (probs >= self.thresholds).tolist()
        classes = self.classes
        for r, i in enumerate(ok):
            p, order = plist[r], orders[r]
            pred = out[i]
            pred.label, pred.confidence = classes[order[0]], p[order[0]]
            pred.top_k = [{"label": classes[j], "probability": p[j]} for j in order[:k]]
            if self.task == "multiclass":
                pred.labels = [pred.label]
            else:
                pred.labels = [classes[j] for j in order if over[r][j]]
            if scores is not None and flags is not None:
                pred.anomaly_score, pred.is_anomaly = float(scores[r]), bool(flags[r])
            if neigh is not None:
                pred.neighbours = neigh[r]
            pred.embedding = emb_np[r]
            pp = picture_probs[r]
            pred.picture = {
                "label": classes[int(pp.argmax())],
                "confidence": float(pp.max()),
                "probs": {c: float(v) for c, v in zip(classes, pp, strict=True)},
            }
            if has_text[r]:
                assert text_probs is not None and text_scores is not None
                tp = text_probs[r]
                pred.text = {
                    "label": classes[int(tp.argmax())],
                    "probs": {c: float(v) for c, v in zip(classes, tp, strict=True)},
                    "scores": text_scores[r],
                }
                pred.evidence = "picture+text"
            else:
                pred.evidence = "picture"
        return out
