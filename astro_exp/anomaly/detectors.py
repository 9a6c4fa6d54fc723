"""Any PyOD detector from ``conf/detector/*.yaml``, behind standardisation and optional PCA,
with a flag threshold set on validation data at a false-alarm rate the user chooses.

Why not PyOD's own threshold: it comes from ``contamination``, a guess of how many
training pictures are anomalous. Here the training split is clean by construction, so the
threshold is the ``1 - anomaly.false_alarm_rate`` quantile of the scores of held-aside
validation pictures: "flag at most 1 in 20 ordinary pictures" is a promise a user can check.

Saved next to the checkpoint bundle: ``detector.joblib`` (the fitted pipeline, threshold,
settings) and ``reference.npz`` (training embeddings with labels and ids, for the
"compared with" neighbours). joblib files are pickles: load only your own runs' files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from astro_exp.config import build_target, to_plain
from astro_exp.errors import CheckpointError, ConfigError
from astro_exp.files import atomic_write

log = logging.getLogger(__name__)

DETECTOR_FILE = "detector.joblib"
REFERENCE_FILE = "reference.npz"
DETECTOR_FORMAT = "astro-exp-detector"
DETECTOR_VERSION = 1
# config keys that are ours, not the PyOD class's


def build_pyod(cfg: Mapping[str, Any], n_samples: int | None = None) -> Any:
    """Instantiate the PyOD detector of a ``conf/detector`` node (PyOD's parameter names).

    ``n_neighbors`` / ``n_clusters`` larger than the training set are lowered to fit it,
    so tiny smoke runs work with the same configs.

    Args:
        cfg: the ``detector`` config node (``_target_``, ``name``, PyOD's parameters).
        n_samples: how many embeddings it will be fitted on, when known.

    Returns:
        The unfitted detector.

    >>> build_pyod({"_target_": "astro_exp.anomaly.knn.ExactKNN", "n_neighbors": 20}, 8)
    ExactKNN(n_neighbors=7)
    """
    spec = {k: v for k, v in to_plain(cfg).items() if k != "name"}
    det = build_target(
        spec, "detector", hint="pick one with detector=iforest|knn|ecod|... (a pyod.models class)"
    )
    limit = None if n_samples is None else max(1, n_samples - 1)
    for key in ("n_neighbors", "n_clusters"):
        value = getattr(det, key, None)
        if limit is not None and isinstance(value, int) and value > limit:
            log.warning(
                "detector %s=%d lowered to %d (only %d training embeddings)",
                key,
                value,
                limit,
                n_samples,
            )
            setattr(det, key, limit)
    return det


class AnomalyDetector:
    """StandardScaler -> optional PCA -> PyOD detector; higher scores are more anomalous."""

    def __init__(
        self,
        detector_cfg: Mapping[str, Any],
        pca_components: int | float | None = None,
        seed: int = 0,
    ) -> None:
        self.cfg = dict(detector_cfg)
        self.name = str(
            self.cfg.get("name") or str(self.cfg.get("_target_", "?")).rsplit(".", 1)[-1].lower()
        )
        if pca_components is not None and not (
            (isinstance(pca_components, int) and pca_components >= 1)
            or 0 < float(pca_components) < 1
        ):
            raise ConfigError(
                f"anomaly.pca_components={pca_components} must be null, an int >= 1 or a fraction in (0, 1)"
            )
        self.pca_components = pca_components
        self.seed = seed
        self.pipeline: Pipeline | None = None
        self.threshold: float | None = None
        self.false_alarm_rate: float | None = None
        self.fit_s = 0.0
        self.meta: dict[str, Any] = {}

    def fit(self, x: np.ndarray) -> AnomalyDetector:
        """Fit on (N, D) embeddings of ordinary (training) pictures."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) < 2:
            raise ConfigError(
                f"cannot fit an anomaly detector on {len(x)} embeddings; add training pictures"
            )
        steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
        if self.pca_components is not None:
            n = self.pca_components
            if isinstance(n, int):
                n = min(n, x.shape[1], len(x))
            steps.append(("pca", PCA(n_components=n, random_state=self.seed)))
        steps.append(("detector", build_pyod(self.cfg, n_samples=len(x))))
        pipeline = Pipeline(steps)
        t0 = time.perf_counter()
        try:
            pipeline.fit(x)
        except (ValueError, np.linalg.LinAlgError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ConfigError(
                f"detector {self.name} failed to fit on {len(x)} embeddings ({first}); "
                "change its parameters or pick another detector=..."
            ) from None
        self.fit_s = time.perf_counter() - t0
        self.pipeline = pipeline
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher = stranger) of (N, D) embeddings."""
        if self.pipeline is None:
            raise RuntimeError("fit the detector before scoring")
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros(0, np.float64)
        steps = [step for _, step in self.pipeline.steps]
        if all(isinstance(t, StandardScaler | PCA) for t in steps[:-1]):
            # the same arithmetic as Pipeline.decision_function without scikit-learn's
            # per-call input checks (about 0.7 ms a call: most of one picture's detector time)
            for t in steps[:-1]:
                x = _transform(t, x)
            return np.asarray(steps[-1].decision_function(x), dtype=np.float64)
        return np.asarray(self.pipeline.decision_function(x), dtype=np.float64)

    def calibrate(self, val_scores: np.ndarray, false_alarm_rate: float) -> float:
        """Set the flag threshold so ``false_alarm_rate`` of validation pictures are flagged."""
        if not 0 < false_alarm_rate < 1:
            raise ConfigError(
                f"anomaly.false_alarm_rate={false_alarm_rate} must be in (0, 1), e.g. 0.05"
            )
        val_scores = np.asarray(val_scores, dtype=np.float64)
        if len(val_scores) == 0:
            raise ConfigError(
                "no validation pictures to set the anomaly threshold on; raise data.val_fraction"
            )
        self.threshold = float(np.quantile(val_scores, 1.0 - false_alarm_rate, method="higher"))
        self.false_alarm_rate = float(false_alarm_rate)
        return self.threshold

    def flag(self, scores: np.ndarray) -> np.ndarray:
        """Which scores are over the threshold (anomalies)."""
        if self.threshold is None:
            raise RuntimeError("calibrate the detector on validation scores first")
        return np.asarray(scores) > self.threshold

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write atomically: a kill never leaves half a detector beside the bundle."""
        path = Path(path)
        import pyod
        import sklearn

        state = {
            "format": DETECTOR_FORMAT,
            "version": DETECTOR_VERSION,
            "name": self.name,
            "config": self.cfg,
            "pca_components": self.pca_components,
            "seed": self.seed,
            "pipeline": self.pipeline,
            "threshold": self.threshold,
            "false_alarm_rate": self.false_alarm_rate,
            "fit_s": self.fit_s,
            "meta": self.meta,
            "versions": {"pyod": pyod.__version__, "sklearn": sklearn.__version__},
        }
        return atomic_write(path, lambda tmp: joblib.dump(state, tmp))

    @classmethod
    def load(cls, path: str | Path) -> AnomalyDetector:
        """Load a saved detector; failures are one-line :class:`CheckpointError`."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(
                f"anomaly detector {path} not found; train.py writes it beside best.pt"
            )
        try:
            state = joblib.load(path)
        except Exception as e:  # joblib/pickle raise many types for damaged files
            raise CheckpointError(
                f"anomaly detector {path} is corrupt ({type(e).__name__}); re-run training"
            ) from None
        if not isinstance(state, dict) or state.get("format") != DETECTOR_FORMAT:
            raise CheckpointError(f"{path} is not an astro-exp anomaly detector (made by train.py)")
        det = cls(state["config"], state["pca_components"], state["seed"])
        det.pipeline, det.threshold = state["pipeline"], state["threshold"]
        det.false_alarm_rate, det.fit_s = state["false_alarm_rate"], state.get("fit_s", 0.0)
        det.meta = dict(state.get("meta") or {})
        return det


def _transform(step: StandardScaler | PCA, x: np.ndarray) -> np.ndarray:
    """A fitted scaler's or PCA's ``transform`` in NumPy (the formulas scikit-learn uses)."""
    if isinstance(step, StandardScaler):
        if step.with_mean and step.mean_ is not None:
            x = x - step.mean_
        if step.with_std and step.scale_ is not None:
            x = x / step.scale_
        return x.astype(np.float32, copy=False)
    out = (x - step.mean_) @ step.components_.T
    if step.whiten:
        out = out / np.sqrt(step.explained_variance_)
    return out.astype(np.float32, copy=False)


def save_reference(
    path: str | Path, emb: np.ndarray, labels: list[str], ids: list[str], digest: str
) -> Path:
    """Training embeddings with labels and ids: the pictures predictions are compared with."""
    path = Path(path)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez adds no .npz to the name
            np.savez(
                fh,
                emb=np.asarray(emb, np.float32),
                labels=np.asarray(labels, dtype=np.str_),
                ids=np.asarray(ids, dtype=np.str_),
                digest=np.str_(digest),
            )

    return atomic_write(path, write)


def load_reference(path: str | Path) -> dict[str, Any]:
    """``{"emb", "labels", "ids", "digest"}`` from :func:`save_reference`'s file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"reference embeddings {path} not found; train.py writes them beside best.pt"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            return {
                "emb": z["emb"],
                "labels": z["labels"].tolist(),
                "ids": z["ids"].tolist(),
                "digest": str(z["digest"]),
            }
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"reference embeddings {path} are corrupt ({type(e).__name__}); re-run training"
        ) from None
