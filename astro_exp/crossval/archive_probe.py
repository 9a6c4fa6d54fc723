"""Does the APOD archive (10x the thumbnails) help the picture model? A frozen-feature study.

Why: trained on the ~10,300 archive pictures' weak labels, a frozen EfficientNet-Lite0 probe
scored *worse* on the shared thumbnails than one trained on the 1,059 thumbnails themselves
(issue #22). The suspects are the labels (the ``apod4`` rules read older texts worse), the
pictures (older, smaller scans; another shape than the letterboxed thumbnails) and the class
balance. A linear probe on cached frozen features answers "which lever helps" in seconds a
row, where a fine-tuning run takes an hour of the CPU; the lever that wins becomes a source
option (``source.targets`` of :class:`~astro_exp.sources.archive.ApodArchiveSource`).

Protocol (every row of the table):

- **Trained on** the archive minus every row with a ``thumbs_file`` (the day or picture is a
  scored thumbnail), minus the pHash near-copies of thumbnails
  (``ApodArchiveSource(exclude_thumbs=True, copies_of=apod-thumbs)``), minus pictures whose
  frozen-feature cosine to any thumbnail is >= 0.90 (the re-cropped twins pHash misses; the
  archive README's rule), byte-identical pictures once. A tenth of that pool (a hash of the
  file name) is held out as the weak-labelled validation split the temperature is fitted on
  (under ``label_noise``, as ``trainer.calibration_label_noise`` does); the probe trains on the
  rest with the row's targets.
- **Scored against** ``apod-thumbs/gold.csv`` (careful labels) on the 1,059 thumbnails, one
  frame per animation (:func:`~astro_exp.data.splits.group_key`): 967 pictures, picture only
  (no text fusion at test time); and on ``other-cameras/labels.csv`` (65 smart-telescope
  pictures, 3 classes; the argmax over all five classes counts).
- ``gold.csv`` is never a training target here, except in the ``ceiling`` reference row and
  where the ``default`` text model is used (``soft-text-default``, ``fused-default``): that
  model (``conf/labels/apod4.yaml`` ``evidence``) was fitted on gold.csv's labels of the
  thumbnails' and matched archive days' texts, so those rows say so; the ``em`` variants
  fit the text model with no careful label at all (:func:`~astro_exp.predict.fusion.fit_em`).

The probe: a multinomial logistic regression (L2, L-BFGS) on standardised pre-logits
features, its own code so that soft targets and per-picture weights are one loss.

Run: ``python scripts/archive_study.py`` (docs/archive.md has the table and its commands).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from astro_exp.crossval.archive_features import picture_features
from astro_exp.data.label_files import read_label_file
from astro_exp.data.labels import Labeller, build_labeller, load_label_config
from astro_exp.data.splits import fold_of, group_key
from astro_exp.engine.calibration import fit_temperature
from astro_exp.files import atomic_write
from astro_exp.predict.fusion import Fusion, TextModel, default_fusion, fit_em
from astro_exp.predict.scorecard import score_probabilities
from astro_exp.sources.archive import ApodArchiveSource, label_margin
from astro_exp.tables import format_table

log = logging.getLogger(__name__)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ERAS = (("pre-2005", 0, 2004), ("2005-2011", 2005, 2011), ("2012+", 2012, 9999))
VAL_FOLDS = 10  # fold 0 of 10 (a hash of the file name) is the weak-labelled val split
CROSSFIT_FOLDS = 5


# -- the data ------------------------------------------------------------------------------------
@dataclass
class ArchiveRows:
    """Every archive metadata row whose picture exists, with the labeller's view of its text."""

    files: list[str]
    years: np.ndarray
    texts: list[tuple[str, str]]
    scores: list[dict[str, float]]
    weak: np.ndarray  # class index of the labeller's primary
    margin: np.ndarray
    thumbs_file: list[str | None]
    thumbs_match: list[str | None]
    sha: list[str]
    short_side: np.ndarray


def read_archive(root: Path, labeller: Labeller, classes: list[str]) -> ArchiveRows:
    rows = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines() if line]
    rows = [r for r in rows if (root / r["file"]).is_file()]
    results = [labeller.label(r.get("title"), r.get("explanation")) for r in rows]
    return ArchiveRows(
        files=[r["file"] for r in rows],
        years=np.array([int(r["date"][:4]) for r in rows]),
        texts=[(r.get("title") or "", r.get("explanation") or "") for r in rows],
        scores=[dict(res.scores) for res in results],
        weak=np.array([classes.index(res.primary) for res in results]),
        margin=np.array(
            [
                label_margin(res.scores, res.primary, labeller.other, labeller.min_score)
                for res in results
            ]
        ),
        thumbs_file=[r.get("thumbs_file") for r in rows],
        thumbs_match=[r.get("thumbs_match") for r in rows],
        sha=[r.get("sha256") or "" for r in rows],
        short_side=np.array(
            [min(int(r.get("width") or 0), int(r.get("height") or 0)) for r in rows]
        ),
    )


def phash_copies(archive_root: Path, thumbs_root: Path, cache_dir: Path) -> set[str]:
    """Archive files the archive source itself drops as pHash copies of thumbnails (thumbs
    rows already out), cached: hashing 10,000 pictures takes a minute or two."""
    path = cache_dir / "phash_copies.json"
    if path.is_file():
        return set(json.loads(path.read_text())["files"])
    src = ApodArchiveSource(
        str(archive_root), exclude_thumbs=True, copies_of=str(thumbs_root), progress=False
    )
    src.records()
    files = sorted({a for a, _, _ in src.copies})
    atomic_write(path, json.dumps({"files": files, "pairs": src.copies}, indent=0))
    return set(files)


def twin_mask(a: np.ndarray, b: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(N,) max cosine of each row of ``a`` to any row of ``b``, and whether it is >= threshold."""
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    best = np.concatenate([(an[s : s + 2048] @ bn.T).max(1) for s in range(0, len(an), 2048)])
    return best, best >= threshold


@dataclass
class Study:
    """Everything the rows need: features, labels, the pool, the scored sets."""

    classes: list[str]
    labeller: Labeller
    arch: ArchiveRows
    arch_feats: dict[str, np.ndarray]
    pool: np.ndarray  # bool over archive rows: may be trained on (train or val)
    val: np.ndarray  # bool: the pool's weak-labelled val split
    thumb_feats: dict[str, np.ndarray]
    test_idx: np.ndarray  # thumbs feature rows scored (one frame per animation)
    test_truth: np.ndarray
    test_weak: np.ndarray  # the labeller's label of each scored thumbnail (reference rows)
    test_files: list[str]
    other_feats: dict[str, np.ndarray]
    other_truth: np.ndarray
    gold_by_file: dict[str, str]
    pool_info: dict[str, int] = field(default_factory=dict)


def build_study(
    archive_root: Path,
    thumbs_root: Path,
    other_root: Path,
    cache_dir: Path,
    train_policies: Sequence[str],
    test_policies: Sequence[str],
    cosine: float = 0.90,
    labels: str = "apod4",
    progress: bool = False,
) -> Study:
    labeller = build_labeller(load_label_config(labels))
    classes = labeller.label_classes(include_other=True)
    arch = read_archive(archive_root, labeller, classes)
    arch_feats, arch_ok = picture_features(
        [archive_root / f for f in arch.files],
        name="archive",
        root=archive_root,
        policies=list(train_policies),
        cache_dir=cache_dir,
        progress=progress,
    )
    th_rows = [
        json.loads(line)
        for line in (thumbs_root / "metadata.jsonl").read_text().splitlines()
        if line
    ]
    th_files = [r["file"] for r in th_rows]
    all_policies = sorted(set(train_policies) | set(test_policies))
    thumb_feats, _ = picture_features(
        [thumbs_root / f for f in th_files],
        name="thumbs",
        root=thumbs_root,
        policies=all_policies,
        cache_dir=cache_dir,
        progress=progress,
    )
    with open(other_root / "labels.csv", encoding="utf-8") as f:
        oc = list(csv.DictReader(f))
    other_feats, _ = picture_features(
        [other_root / r["file"] for r in oc],
        name="other",
        root=other_root,
        policies=all_policies,
        cache_dir=cache_dir,
        progress=progress,
    )
    other_truth = np.array([classes.index(r["label"]) for r in oc])

    # the training pool: no scored day, no copy of a scored picture, each picture once
    info: dict[str, int] = {"archive_rows": len(arch.files)}
    pool = arch_ok.copy()
    info["unreadable"] = int((~arch_ok).sum())
    has_thumb = np.array([bool(t) for t in arch.thumbs_file])
    info["thumbs_file_rows"] = int(has_thumb.sum())
    pool &= ~has_thumb
    copies = phash_copies(archive_root, thumbs_root, cache_dir)
    is_copy = np.array([f in copies for f in arch.files])
    info["phash_copies"] = int((is_copy & pool).sum())
    pool &= ~is_copy
    twins = np.zeros(len(arch.files), bool)
    for p in train_policies:  # a twin under any policy's features is out of every row
        twins |= twin_mask(arch_feats[p], thumb_feats[p], cosine)[1]
    info["feature_twins"] = int((twins & pool).sum())
    pool &= ~twins
    seen: set[str] = set()
    dup = np.zeros(len(arch.files), bool)
    for i in np.flatnonzero(pool):
        if arch.sha[i] and arch.sha[i] in seen:
            dup[i] = True
        seen.add(arch.sha[i])
    info["byte_duplicates"] = int(dup.sum())
    pool &= ~dup
    val = pool & np.array([fold_of(f, VAL_FOLDS) == 0 for f in arch.files])
    info["pool"] = int(pool.sum())
    info["val"] = int(val.sum())

    gold = read_label_file(thumbs_root / "gold.csv")
    gold_by_file = {r.file: r.label for r in gold}
    index = {f: i for i, f in enumerate(th_files)}
    th_text = {r["file"]: _thumb_text(r) for r in th_rows}
    seen_groups: set[str] = set()
    test_idx, truth, weak, test_files = [], [], [], []
    for r in gold:
        key = group_key(r.file)
        if key in seen_groups or r.file not in index:
            continue
        seen_groups.add(key)
        test_idx.append(index[r.file])
        truth.append(classes.index(r.label))
        weak.append(classes.index(labeller.label(*th_text[r.file]).primary))
        test_files.append(r.file)
    info["scored_thumbnails"] = len(test_idx)
    return Study(
        classes,
        labeller,
        arch,
        arch_feats,
        pool,
        val,
        thumb_feats,
        np.array(test_idx),
        np.array(truth),
        np.array(weak),
        test_files,
        other_feats,
        other_truth,
        gold_by_file,
        info,
    )


def _thumb_text(row: dict[str, Any]) -> tuple[str, str]:
    """A thumbnail's text as the thumbs source reads it (first candidate, else the file name)."""
    cand = (row.get("candidates") or [{}])[0] or {}
    title = cand.get("title") or Path(row["file"]).stem.replace("_", " ")
    return title, cand.get("explanation") or ""


# -- the probe -----------------------------------------------------------------------------------
@dataclass
class Probe:
    """Standardiser + softmax regression weights."""

    mean: np.ndarray
    std: np.ndarray
    W: np.ndarray
    b: np.ndarray
    temperature: float = 1.0

    def logits(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std) @ self.W.T + self.b

    def proba(self, X: np.ndarray, calibrated: bool = True) -> np.ndarray:
        z = self.logits(X) / (self.temperature if calibrated else 1.0)
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)


def fit_probe(
    X: np.ndarray, T: np.ndarray, w: np.ndarray | None = None, l2: float = 1e-3, iters: int = 300
) -> Probe:
    """Softmax regression on standardised ``X`` to ``T`` ((N,) class indices or (N, C) rows
    summing to 1), weighted by ``w``: mean weighted cross-entropy + ``l2/2 * |W|^2``."""
    mean, std = X.mean(0), X.std(0) + 1e-6
    Z = (X - mean) / std
    n, d = Z.shape
    T = np.asarray(T)
    c = T.shape[1] if T.ndim == 2 else int(T.max()) + 1
    if T.ndim == 1:
        T = np.eye(c)[T]
    w = np.ones(n) if w is None else np.asarray(w, float)
    w = w / w.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: c * d].reshape(c, d), theta[c * d :]
        z = Z @ W.T + b
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        G = w[:, None] * (np.exp(logp) * T.sum(1, keepdims=True) - T)
        val = -(w[:, None] * T * logp).sum() + 0.5 * l2 * float((W**2).sum())
        return val, np.concatenate([(G.T @ Z + l2 * W).ravel(), G.sum(0)])

    res = minimize(
        loss, np.zeros(c * d + c), jac=True, method="L-BFGS-B", options={"maxiter": iters}
    )
    return Probe(mean, std, res.x[: c * d].reshape(c, d), res.x[c * d :])


def calibrate(probe: Probe, X_val: np.ndarray, y_val: np.ndarray, label_noise: float) -> None:
    """Temperature on the weak-labelled val split, under ``label_noise`` (the engine's fit)."""
    probe.temperature = float(
        fit_temperature(
            torch.from_numpy(probe.logits(X_val)).float(),
            torch.from_numpy(y_val),
            "multiclass",
            label_noise=label_noise,
        )
    )


def crossfit(
    X: np.ndarray,
    T: np.ndarray,
    ids: Sequence[str],
    w: np.ndarray | None,
    l2: float,
    label_noise: float,
    weak: np.ndarray,
    folds: int = CROSSFIT_FOLDS,
) -> np.ndarray:
    """Held-out probe probabilities of every row: fold k (a hash of the file name) scored by a
    probe fitted on the others, tempered on the held-out logits against the weak labels."""
    out = np.zeros((len(X), T.shape[1] if T.ndim == 2 else int(T.max()) + 1))
    logits = np.zeros_like(out)
    fold = np.array([fold_of(i, folds) for i in ids])
    for k in range(folds):
        tr, te = fold != k, fold == k
        p = fit_probe(X[tr], T[tr], None if w is None else w[tr], l2)
        logits[te] = p.logits(X[te])
    t = fit_temperature(
        torch.from_numpy(logits).float(),
        torch.from_numpy(weak),
        "multiclass",
        label_noise=label_noise,
    )
    z = logits / t
    z = z - z.max(1, keepdims=True)
    out = np.exp(z)
    return out / out.sum(1, keepdims=True)


# -- targets -------------------------------------------------------------------------------------
def one_hot(y: np.ndarray, c: int) -> np.ndarray:
    return np.eye(c)[y]


def class_weights(y: np.ndarray, c: int, power: float) -> np.ndarray:
    """(n / n_c) ** power per picture (the recipe's ``class_weight_power``), mean 1."""
    counts = np.bincount(y, minlength=c).astype(float)
    per = (counts.sum() / np.maximum(counts, 1.0)) ** power
    w = per[y]
    return w / w.mean()


def text_fusion(study: Study, kind: str, picture: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Fused probabilities of archive ``rows``: their picture probabilities and their texts.

    ``default``: the label config's shipped text model (fitted on gold.csv; flagged in the
    table); ``em``: a text model fitted by EM on these rows with no careful label. A text that
    names no class keeps the picture's probabilities."""
    fusion = default_fusion(load_label_config("apod4"), study.classes)
    assert fusion is not None
    scores = [study.arch.scores[i] for i in rows]
    feats = fusion.text.features(scores)
    has = fusion.has_evidence(scores)
    if kind == "em":
        model, _ = fit_em(picture[has], feats[has], study.classes, fitted_on="archive EM")
        fusion = Fusion(labeller=None, text=model, source="em")
    elif kind != "default":
        raise ValueError(kind)
    return fusion.combine(picture, feats, has)


def fused_targets(
    study: Study,
    X: np.ndarray,
    rows: np.ndarray,
    kind: str,
    rounds: int,
    l2: float,
    label_noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(fused probabilities (N, C), the held-out picture probabilities of the last round) of
    the pool rows ``rows``: cross-fit the probe on the current targets (round 1: weak), fuse
    its held-out probabilities with each text, repeat ``rounds`` times."""
    c = len(study.classes)
    weak = study.arch.weak[rows]
    T = one_hot(weak, c)
    ids = [study.arch.files[i] for i in rows]
    fused = picture = T
    for _ in range(rounds):
        picture = crossfit(X, T, ids, None, l2, label_noise, weak)
        fused = text_fusion(study, kind, picture, rows)
        T = one_hot(fused.argmax(1), c)
    return fused, picture


# -- rows ----------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table: what the probe trains on and how."""

    name: str
    lever: str
    train_policy: str = "pad"
    test_policy: str = "pad"
    keep: Callable[[Study], np.ndarray] | None = None  # extra bool mask over archive rows
    targets: str = "weak"  # weak | soft-text-default | soft-text-em | fused-... | ...
    weights: Callable[[Study, np.ndarray], np.ndarray] | None = None
    class_weight_power: float = 0.0
    note: str = ""
    gold_in_targets: bool = False
    l2: float | None = None  # None: the study's (picked on weak-label val NLL)


def era_of(years: np.ndarray) -> np.ndarray:
    out = np.empty(len(years), dtype=object)
    for name, lo, hi in ERAS:
        out[(years >= lo) & (years <= hi)] = name
    return out


def score(probs: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict[str, float]:
    m = score_probabilities(probs, truth, classes)
    keep = ["acc", "f1_macro", "ece"] + [f"f1/{c}" for c in classes]
    return {k: round(float(m[k]), 4) for k in keep}


class Runner:
    """Runs rows over one :class:`Study`, caching the expensive fused targets."""

    def __init__(self, study: Study, l2: float, label_noise: float) -> None:
        self.s = study
        self.l2 = l2
        self.noise = label_noise
        self._fused: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._em: dict[str, TextModel] = {}
        self.preds: dict[str, np.ndarray] = {}  # row name -> thumbnails' predicted class

    def fused(self, policy: str, kind: str, rounds: int) -> tuple[np.ndarray, np.ndarray]:
        key = (policy, kind, rounds)
        if key not in self._fused:
            rows = np.flatnonzero(self.s.pool & ~self.s.val)
            t0 = time.time()
            self._fused[key] = fused_targets(
                self.s, self.s.arch_feats[policy][rows], rows, kind, rounds, self.l2, self.noise
            )
            log.info("fused targets %s: %.0f s", key, time.time() - t0)
        return self._fused[key]

    def em_text(self, policy: str) -> TextModel:
        """The text model EM fits on the training rows (pool - val) with their round-1
        held-out picture probabilities: no careful label anywhere."""
        if policy not in self._em:
            s = self.s
            rows = np.flatnonzero(s.pool & ~s.val)
            _, picture = self.fused(policy, "em", 1)
            fusion = default_fusion(load_label_config("apod4"), s.classes)
            assert fusion is not None
            scores = [s.arch.scores[i] for i in rows]
            has = fusion.has_evidence(scores)
            feats = fusion.text.features(scores)
            self._em[policy], _ = fit_em(
                picture[has], feats[has], s.classes, fitted_on="archive EM"
            )
        return self._em[policy]

    def targets(self, row: Row, rows: np.ndarray) -> np.ndarray:
        """(len(rows), C) targets of the training rows ``rows`` (a subset of pool - val)."""
        s, c = self.s, len(self.s.classes)
        t = row.targets
        if t == "weak":
            return one_hot(s.arch.weak[rows], c)
        if t.startswith("soft-text-"):
            fusion = default_fusion(load_label_config("apod4"), s.classes)
            assert fusion is not None
            text = fusion.text if t == "soft-text-default" else self.em_text(row.train_policy)
            scores = [s.arch.scores[i] for i in rows]
            has = fusion.has_evidence(scores)
            out = one_hot(s.arch.weak[rows], c).astype(float)
            out[has] = text.proba(text.features(scores)[has])
            return out
        if t.startswith("fused-"):
            # fused-<default|em>-<hard|soft>-r<rounds>
            parts = t.split("-")
            kind, mode, rounds = parts[1], parts[2], int(parts[3][1:])
            fused, _ = self.fused(row.train_policy, kind, rounds)
            all_rows = np.flatnonzero(s.pool & ~s.val)
            pos = {r: k for k, r in enumerate(all_rows)}
            f = fused[[pos[r] for r in rows]]
            out = f if mode == "soft" else one_hot(f.argmax(1), c)
            return out
        raise ValueError(f"unknown targets {t!r}")

    def run(self, row: Row) -> dict[str, Any]:
        s = self.s
        t0 = time.time()
        mask = s.pool & ~s.val
        if row.keep is not None:
            mask &= row.keep(s)
        rows = np.flatnonzero(mask)
        X = s.arch_feats[row.train_policy][rows]
        T = self.targets(row, rows)
        w = np.ones(len(rows)) if row.weights is None else row.weights(s, rows)
        if row.class_weight_power:
            w = w * class_weights(T.argmax(1), len(s.classes), row.class_weight_power)
        probe = fit_probe(X, T, w, self.l2 if row.l2 is None else row.l2)
        vrows = np.flatnonzero(s.val)
        calibrate(probe, s.arch_feats[row.train_policy][vrows], s.arch.weak[vrows], self.noise)
        return self._report(row, probe, len(rows), T, time.time() - t0)

    def _report(
        self, row: Row, probe: Probe, n: int, T: np.ndarray, seconds: float
    ) -> dict[str, Any]:
        s = self.s
        Xt = s.thumb_feats[row.test_policy][s.test_idx]
        raw = probe.proba(Xt, calibrated=False)
        cal = probe.proba(Xt)
        m = score(cal, s.test_truth, s.classes)
        self.preds[row.name] = cal.argmax(1)
        m["ece_raw"] = round(float(score(raw, s.test_truth, s.classes)["ece"]), 4)
        m["temperature"] = round(probe.temperature, 3)
        return {
            "name": row.name,
            "lever": row.lever,
            "train_policy": row.train_policy,
            "test_policy": row.test_policy,
            "n_train": int(n),
            "train_class_counts": {
                c: round(float(v), 1) for c, v in zip(s.classes, T.sum(0), strict=True)
            },
            "gold_in_targets": row.gold_in_targets,
            "note": row.note,
            **m,
            **self._other_cameras(probe, row.test_policy),
            "seconds": round(seconds, 1),
        }

    def _other_cameras(self, probe: Probe, policy: str) -> dict[str, Any]:
        """The 65 smart-telescope pictures: accuracy (argmax over all five classes) and what
        the star-cluster pictures are called."""
        s = self.s
        pred = probe.proba(s.other_feats[policy]).argmax(1)
        c = len(s.classes)
        is_star = s.other_truth == s.classes.index("star")
        return {
            "other_cameras_acc": round(float((pred == s.other_truth).mean()), 4),
            # the 33 star-cluster pictures called galaxy/nebula/planet/star/other
            "other_cameras_star_as": "/".join(
                str(int(k)) for k in np.bincount(pred[is_star], minlength=c)
            ),
            "other_cameras_confusion": np.bincount(s.other_truth * c + pred, minlength=c * c)
            .reshape(c, c)
            .tolist(),
        }

    def reference(self, name: str, labels: str, policy: str) -> dict[str, Any]:
        """The thumbnails themselves, 5-fold cross-fitted (fold = hash of the group key), on
        their weak labels or (``gold``: the ceiling of better labels) gold.csv's."""
        s = self.s
        X = s.thumb_feats[policy][s.test_idx]
        y = s.test_weak if labels == "weak" else s.test_truth
        c = len(s.classes)
        fold = np.array([fold_of(f, CROSSFIT_FOLDS) for f in s.test_files])
        logits = np.zeros((len(X), c))
        for k in range(CROSSFIT_FOLDS):
            p = fit_probe(X[fold != k], one_hot(y[fold != k], c), None, self.l2)
            logits[fold == k] = p.logits(X[fold == k])
        t = fit_temperature(
            torch.from_numpy(logits).float(),
            torch.from_numpy(s.test_weak),
            "multiclass",
            label_noise=self.noise,
        )
        z = logits / t
        cal = np.exp(z - z.max(1, keepdims=True))
        cal /= cal.sum(1, keepdims=True)
        m = score(cal, s.test_truth, s.classes)
        self.preds[name] = cal.argmax(1)
        return {
            "name": name,
            "lever": "reference (thumbnails, 5-fold cross-fit)",
            "train_policy": policy,
            "test_policy": policy,
            "n_train": int(round(len(X) * (CROSSFIT_FOLDS - 1) / CROSSFIT_FOLDS)),
            "gold_in_targets": labels == "gold",
            "note": "gold.csv labels as targets: the ceiling, not a recipe"
            if labels == "gold"
            else "the thumbnails' own weak labels, held-out folds",
            **m,
            "temperature": round(float(t), 3),
            **self._other_cameras(fit_probe(X, one_hot(y, c), None, self.l2), policy),
        }


# -- label quality -------------------------------------------------------------------------------
def label_quality(runner: Runner, policy: str) -> list[dict[str, Any]]:
    """Each target scheme against gold.csv on the archive rows that have a careful label
    (``thumbs_file``, matched by date or picture: never trained on), by era. The picture
    probabilities of those rows come from a probe fitted on the pool's weak labels."""
    s = runner.s
    rows = np.array(
        [
            i
            for i, (f, m) in enumerate(zip(s.arch.thumbs_file, s.arch.thumbs_match, strict=True))
            if f and m in ("date", "picture") and f in s.gold_by_file
        ]
    )
    gold = np.array([s.classes.index(s.gold_by_file[s.arch.thumbs_file[i]]) for i in rows])
    eras = era_of(s.arch.years[rows])
    train = np.flatnonzero(s.pool & ~s.val)
    probe = fit_probe(s.arch_feats[policy][train], s.arch.weak[train], None, runner.l2)
    vrows = np.flatnonzero(s.val)
    calibrate(probe, s.arch_feats[policy][vrows], s.arch.weak[vrows], runner.noise)
    picture = probe.proba(s.arch_feats[policy][rows])
    schemes: dict[str, np.ndarray] = {
        "weak (apod4 rules)": s.arch.weak[rows],
        "picture probe alone": picture.argmax(1),
        "fused default (text model fitted on gold.csv)": text_fusion(
            s, "default", picture, rows
        ).argmax(1),
    }
    # EM's text model from the training pool (no careful label), applied to these rows
    em = Fusion(labeller=None, text=runner.em_text(policy), source="em")
    scores = [s.arch.scores[i] for i in rows]
    schemes["fused em (no careful label)"] = em.combine(
        picture, em.text.features(scores), em.has_evidence(scores)
    ).argmax(1)
    out = []
    for name, pred in schemes.items():
        line: dict[str, Any] = {"labels": name}
        for era, _, _ in ERAS:
            m = eras == era
            line[era] = f"{(pred[m] == gold[m]).mean():.3f} ({int(m.sum())})" if m.any() else "-"
        line["all"] = f"{(pred == gold).mean():.3f} ({len(rows)})"
        star = s.classes.index("star")
        sm = gold == star
        line["star recall"] = f"{(pred[sm] == star).mean():.3f} ({int(sm.sum())})"
        out.append(line)
    for thr in (3.0, 6.0, 12.0):
        keep = s.arch.margin[rows] >= thr
        line = {"labels": f"weak, margin >= {thr:g} (kept share)"}
        for era, _, _ in ERAS:
            m = (eras == era) & keep
            tot = int((eras == era).sum())
            line[era] = (
                f"{(s.arch.weak[rows][m] == gold[m]).mean():.3f} ({int(m.sum())}/{tot})"
                if m.any()
                else "-"
            )
        line["all"] = f"{(s.arch.weak[rows][keep] == gold[keep]).mean():.3f} ({int(keep.sum())})"
        star = s.classes.index("star")
        sm = gold == star
        line["star recall"] = f"{((s.arch.weak[rows] == star) & keep)[sm].mean():.3f}"
        out.append(line)
    return out


def pool_eras(study: Study) -> list[dict[str, Any]]:
    """What the training pool holds by era: pictures, small pictures, weak-label mix."""
    s = study
    eras = era_of(s.arch.years)
    out = []
    for era, _, _ in ERAS:
        m = s.pool & (eras == era)
        counts = np.bincount(s.arch.weak[m], minlength=len(s.classes))
        out.append(
            {
                "era": era,
                "pool": int(m.sum()),
                "median short side": int(np.median(s.arch.short_side[m])) if m.any() else 0,
                **{f"weak {c}": int(n) for c, n in zip(s.classes, counts, strict=True)},
            }
        )
    return out


# -- the table -----------------------------------------------------------------------------------
def year_mask(lo: int) -> Callable[[Study], np.ndarray]:
    return lambda s: s.arch.years >= lo


def margin_mask(thr: float) -> Callable[[Study], np.ndarray]:
    return lambda s: s.arch.margin >= thr


def year_weights(old: float, middle: float) -> Callable[[Study, np.ndarray], np.ndarray]:
    def w(s: Study, rows: np.ndarray) -> np.ndarray:
        y = s.arch.years[rows]
        return np.where(y < 2005, old, np.where(y < 2012, middle, 1.0))

    return w


def default_rows(
    train_policies: Sequence[str], test_policies: Sequence[str], best: str
) -> list[Row]:
    """The study's rows: resize policies (train x test), then every lever at ``best``."""
    rows = [
        Row(f"weak, train {tp} / test {sp}", "(a) plain weak labels; resize policies", tp, sp)
        for tp in train_policies
        for sp in test_policies
    ]
    P = dict(train_policy=best, test_policy=best)
    rows += [
        Row(
            f"weak, weakly regularised (l2={l2:g})",
            "(a) the probe's penalty",
            l2=l2,
            note="a probe fitted close to the noisy labels",
            **P,
        )
        for l2 in (1e-4, 1e-3)
    ]
    rows += [
        Row("weak, 2012+ only", "(e) years", keep=year_mask(2012), **P),
        Row("weak, 2005+ (pre-2005 scans dropped)", "(e) years", keep=year_mask(2005), **P),
        Row(
            "weak, weight pre-2005 0.3, 2005-11 0.6",
            "(e) years",
            weights=year_weights(0.3, 0.6),
            **P,
        ),
        Row("weak, class weights ^0.5", "(f) class balance", class_weight_power=0.5, **P),
        Row("weak, class weights ^1", "(f) class balance", class_weight_power=1.0, **P),
    ]
    for thr in (3.0, 6.0, 12.0, 20.0):
        rows.append(
            Row(f"weak, margin >= {thr:g}", "(b) confident labels", keep=margin_mask(thr), **P)
        )
    rows += [
        Row(
            "soft: text model (default)",
            "(c) soft targets",
            targets="soft-text-default",
            gold_in_targets=True,
            **P,
        ),
        Row("soft: text model (EM, no gold)", "(c) soft targets", targets="soft-text-em", **P),
    ]
    for kind in ("default", "em"):
        g = kind == "default"
        rows += [
            Row(
                f"fused {kind}, hard, 1 round",
                "(d) text+picture fused",
                targets=f"fused-{kind}-hard-r1",
                gold_in_targets=g,
                **P,
            ),
            Row(
                f"fused {kind}, soft, 1 round",
                "(d) text+picture fused",
                targets=f"fused-{kind}-soft-r1",
                gold_in_targets=g,
                **P,
            ),
            Row(
                f"fused {kind}, hard, 2 rounds",
                "(d) text+picture fused",
                targets=f"fused-{kind}-hard-r2",
                gold_in_targets=g,
                **P,
            ),
        ]
    return rows


def combination_rows(best: str, power: float = 0.5) -> list[Row]:
    """Label levers with the recipe's class weights (``class_weight_power: 0.5``): a fixed
    list, not the lever rows' winner on gold.csv (picking by the test score would flatter)."""
    P = dict(train_policy=best, test_policy=best)
    rows = [
        Row(
            f"{t} + class weights ^{power:g}",
            "combination",
            targets=t,
            class_weight_power=power,
            gold_in_targets="default" in t,
            **P,
        )
        for t in ("fused-em-hard-r1", "fused-em-hard-r2", "fused-default-hard-r1")
    ]
    rows += [
        Row(
            f"weak, margin >= {thr:g} + class weights ^{power:g}",
            "combination",
            keep=margin_mask(thr),
            class_weight_power=power,
            **P,
        )
        for thr in (3.0, 6.0, 12.0)
    ]
    rows.append(
        Row(
            f"fused-em-hard-r2, margin >= 6 + class weights ^{power:g}",
            "combination",
            targets="fused-em-hard-r2",
            keep=margin_mask(6.0),
            class_weight_power=power,
            **P,
        )
    )
    return rows


def macro_f1(pred: np.ndarray, truth: np.ndarray, c: int) -> float:
    """Macro-F1 over the classes present in ``truth`` (as the scorecard counts it)."""
    tp = np.bincount(truth[pred == truth], minlength=c).astype(float)
    n_pred = np.bincount(pred, minlength=c).astype(float)
    n_true = np.bincount(truth, minlength=c).astype(float)
    f1 = np.where(n_pred + n_true > 0, 2 * tp / np.maximum(n_pred + n_true, 1), 0.0)
    return float(f1[n_true > 0].mean())


def paired_bootstrap(
    pred: np.ndarray, base: np.ndarray, truth: np.ndarray, c: int, n: int = 1000
) -> dict[str, float]:
    """Differences to the baseline row on the same test pictures, with a 95% interval from
    ``n`` paired resamples of the pictures: how much of a gap the 967 pictures can resolve."""
    rng = np.random.default_rng(0)
    d_acc, d_f1 = [], []
    for _ in range(n):
        i = rng.integers(0, len(truth), len(truth))
        d_acc.append((pred[i] == truth[i]).mean() - (base[i] == truth[i]).mean())
        d_f1.append(macro_f1(pred[i], truth[i], c) - macro_f1(base[i], truth[i], c))
    out = {
        "d_acc": (pred == truth).mean() - (base == truth).mean(),
        "d_f1_macro": macro_f1(pred, truth, c) - macro_f1(base, truth, c),
    }
    for k, v in (("d_acc", d_acc), ("d_f1_macro", d_f1)):
        out[f"{k}_lo"], out[f"{k}_hi"] = np.percentile(v, [2.5, 97.5])
    return {k: round(float(v), 4) for k, v in out.items()}


COLUMNS = [
    "name",
    "n_train",
    "acc",
    "f1_macro",
    "f1/galaxy",
    "f1/nebula",
    "f1/planet",
    "f1/star",
    "f1/other",
    "ece_raw",
    "ece",
    "d_f1_macro (95%)",
    "other_cameras_acc",
    "other_cameras_star_as",
]


def markdown(results: list[dict[str, Any]]) -> str:
    names = {"other_cameras_star_as": "other cameras: 33 stars called g/n/p/s/o"}
    head = "| " + " | ".join(names.get(c, c.replace("f1/", "F1 ")) for c in COLUMNS) + " |"
    sep = "|" + "---|" * len(COLUMNS)
    lines = [head, sep]
    for r in results:
        cells = []
        for c in COLUMNS:
            v = r.get(c, "")
            if isinstance(v, float):
                v = "-" if np.isnan(v) else f"{v:.3f}"
            if c == "name" and r.get("gold_in_targets"):
                v = f"{v} [gold]"
            cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dict_table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


L2_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def pick_l2(study: Study, policy: str) -> float:
    """The probe's penalty: the grid value whose probe, trained on the pool's weak labels, has
    the lowest NLL of the val split's weak labels (temperature 1). Chosen without gold.csv."""
    tr, va = np.flatnonzero(study.pool & ~study.val), np.flatnonzero(study.val)
    best, best_nll = L2_GRID[0], np.inf
    for l2 in L2_GRID:
        p = fit_probe(study.arch_feats[policy][tr], study.arch.weak[tr], None, l2)
        P = p.proba(study.arch_feats[policy][va], calibrated=False)
        nll = float(-np.log(np.clip(P[np.arange(len(va)), study.arch.weak[va]], 1e-12, 1)).mean())
        log.info(
            "l2=%g: val weak-label NLL %.4f, acc %.3f",
            l2,
            nll,
            (P.argmax(1) == study.arch.weak[va]).mean(),
        )
        if nll < best_nll:
            best, best_nll = l2, nll
    return best


def write_labels(
    study: Study, path: Path, scheme: str, policy: str, l2: float, label_noise: float
) -> dict[str, Any]:
    """Label every picture of the pool (val too) by ``scheme`` (``fused-<default|em>-hard-r<k>``
    or ``weak``) and write ``file,label,weak,confidence`` for ``source.targets=fused``.

    The picture side is cross-fitted over the whole pool (each picture's probabilities come
    from a probe that never saw it), so a label is never the probe repeating itself."""
    rows = np.flatnonzero(study.pool)
    c = study.classes
    if scheme == "weak":
        probs = one_hot(study.arch.weak[rows], len(c)).astype(float)
    else:
        parts = scheme.split("-")
        if len(parts) < 4 or parts[0] != "fused" or parts[2] != "hard":
            raise ValueError(f"--write-scheme {scheme!r}: use weak or fused-<default|em>-hard-r<k>")
        probs, _ = fused_targets(
            study,
            study.arch_feats[policy][rows],
            rows,
            parts[1],
            int(parts[3][1:]),
            l2,
            label_noise,
        )
    label = probs.argmax(1)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file", "label", "weak", "confidence"])
            for k, i in enumerate(rows):
                w.writerow(
                    [
                        study.arch.files[i],
                        c[label[k]],
                        c[study.arch.weak[i]],
                        f"{probs[k].max():.3f}",
                    ]
                )

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    changed = int((label != study.arch.weak[rows]).sum())
    counts = {name: int(n) for name, n in zip(c, np.bincount(label, minlength=len(c)), strict=True)}
    log.info("wrote %s: %d pictures, %d relabelled, %s", path, len(rows), changed, counts)
    return {
        "file": str(path),
        "scheme": scheme,
        "policy": policy,
        "n": len(rows),
        "relabelled": changed,
        "counts": counts,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", default=str(SHARED / "apod-archive"))
    ap.add_argument("--thumbs", default=str(SHARED / "apod-thumbs"))
    ap.add_argument("--other", default=str(SHARED / "other-cameras"))
    ap.add_argument("--cache", default="outputs/archive_features")
    ap.add_argument("--out", default="outputs/archive_study")
    ap.add_argument("--train-policies", default="pad,squash")
    ap.add_argument("--test-policies", default="pad,squash,crop")
    ap.add_argument(
        "--best",
        default=None,
        help="policy for the lever rows (default: the baseline's best macro-F1 where train = test)",
    )
    ap.add_argument(
        "--l2",
        default="auto",
        help="the probe's L2 penalty, or auto: the grid value with the lowest weak-label NLL "
        "on the pool's val split (no careful label)",
    )
    ap.add_argument("--label-noise", type=float, default=0.12)
    ap.add_argument("--cosine", type=float, default=0.90)
    ap.add_argument("--only", default=None, help="comma-separated substrings of row names to run")
    ap.add_argument("--features-only", action="store_true")
    ap.add_argument(
        "--write-labels",
        default=None,
        help="write the pool's labels (file,label CSV) for source.targets=fused and stop",
    )
    ap.add_argument("--write-scheme", default="fused-em-hard-r2")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    train_p = args.train_policies.split(",")
    test_p = args.test_policies.split(",")
    study = build_study(
        Path(args.archive),
        Path(args.thumbs),
        Path(args.other),
        Path(args.cache),
        train_p,
        test_p,
        args.cosine,
    )
    log.info("pool: %s", study.pool_info)
    if args.features_only:
        return 0
    if args.write_labels:
        policy = args.best or train_p[0]
        l2 = pick_l2(study, policy) if args.l2 == "auto" else float(args.l2)
        info = write_labels(
            study, Path(args.write_labels), args.write_scheme, policy, l2, args.label_noise
        )
        print(json.dumps(info))
        return 0
    l2 = pick_l2(study, train_p[0]) if args.l2 == "auto" else float(args.l2)
    args.l2 = l2
    runner = Runner(study, l2, args.label_noise)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []

    def run(rows: list[Row]) -> None:
        for r in rows:
            if args.only and not any(k in r.name for k in args.only.split(",")):
                continue
            res = runner.run(r)
            log.info(
                "%s: acc %.3f macro-F1 %.3f star F1 %.3f (%.0f s)",
                r.name,
                res["acc"],
                res["f1_macro"],
                res["f1/star"],
                res["seconds"],
            )
            results.append(res)
            save()

    def save() -> None:
        doc = {
            "protocol": __doc__,
            "command": "python scripts/archive_study.py " + " ".join(argv or []),
            "pool": study.pool_info,
            "settings": vars(args),
            "rows": results,
        }
        atomic_write(out / "archive_study.json", json.dumps(doc, indent=1, default=float))
        atomic_write(out / "archive_study.md", markdown(results) + "\n")

    base = [r for r in default_rows(train_p, test_p, "pad") if r.lever.startswith("(a)")]
    run(base)
    best = (
        args.best
        or max(
            (r for r in results if r["train_policy"] == r["test_policy"]),
            key=lambda r: r["f1_macro"],
        )["train_policy"]
    )
    log.info("lever rows at resize=%s", best)
    for name, labels in (
        ("thumbnails, weak labels", "weak"),
        ("thumbnails, gold labels (ceiling)", "gold"),
    ):
        if not args.only or any(k in name for k in args.only.split(",")):
            results.append(runner.reference(name, labels, best))
    run([r for r in default_rows(train_p, test_p, best) if not r.lever.startswith("(a)")])
    run(combination_rows(best))
    base = runner.preds.get(f"weak, train {best} / test {best}")
    if base is not None:
        for r in results:
            if r["name"] in runner.preds:
                d = paired_bootstrap(
                    runner.preds[r["name"]], base, study.test_truth, len(study.classes)
                )
                r.update(d)
                r["d_f1_macro (95%)"] = (
                    f"{d['d_f1_macro']:+.3f} [{d['d_f1_macro_lo']:+.3f}, {d['d_f1_macro_hi']:+.3f}]"
                )
    save()  # with the bootstrap intervals
    quality = label_quality(runner, best)
    eras = pool_eras(study)
    doc = json.loads((out / "archive_study.json").read_text())
    doc["label_quality"] = quality
    doc["pool_eras"] = eras
    atomic_write(out / "archive_study.json", json.dumps(doc, indent=1, default=float))
    atomic_write(
        out / "archive_study.md",
        markdown(results)
        + "\n\nLabels against gold.csv on archive rows with a careful label, by era:\n\n"
        + dict_table(quality)
        + "\n\nThe training pool by era:\n\n"
        + dict_table(eras)
        + "\n",
    )
    print(format_table([[r.get(k) for k in COLUMNS] for r in results], COLUMNS))
    return 0


__all__ = ["Probe", "Study", "build_study", "fit_probe", "main", "write_labels"]
