"""The archive study's report: the table, its intervals, and the labels' quality by era.

Why intervals: the 967 scored thumbnails resolve only gaps of a few points of macro-F1, so
each row's difference to the baseline row carries a paired-bootstrap 95% interval
(:func:`paired_bootstrap`); and why by era: the suspects of issue #22 are the older texts and
scans, so the labels are scored against gold.csv on the archive rows that have a careful
label, and the pool is described, per era (:func:`label_quality`, :func:`pool_eras`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from astro_exp.crossval.archive_fit import calibrate, fit_probe
from astro_exp.crossval.archive_pool import Study
from astro_exp.crossval.archive_runner import Runner
from astro_exp.crossval.archive_targets import text_fusion
from astro_exp.predict.fusion import Fusion

ERAS = (("pre-2005", 0, 2004), ("2005-2011", 2005, 2011), ("2012+", 2012, 9999))


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


def era_of(years: np.ndarray) -> np.ndarray:
    out = np.empty(len(years), dtype=object)
    for name, lo, hi in ERAS:
        out[(years >= lo) & (years <= hi)] = name
    return out


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
    star = s.classes.index("star")
    out = [
        _scheme_line(name, pred, gold, eras, star)
        for name, pred in _schemes(runner, policy, rows).items()
    ]
    weak = s.arch.weak[rows]
    for thr in (3.0, 6.0, 12.0):
        out.append(_margin_line(thr, s.arch.margin[rows] >= thr, weak, gold, eras, star))
    return out


def _schemes(runner: Runner, policy: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each target scheme's labels of the archive ``rows``."""
    s = runner.s
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
    return schemes


def _scheme_line(
    name: str, pred: np.ndarray, gold: np.ndarray, eras: np.ndarray, star: int
) -> dict[str, Any]:
    """One scheme's accuracy against gold.csv per era and overall, and its star recall."""
    line: dict[str, Any] = {"labels": name}
    for era, _, _ in ERAS:
        m = eras == era
        line[era] = f"{(pred[m] == gold[m]).mean():.3f} ({int(m.sum())})" if m.any() else "-"
    line["all"] = f"{(pred == gold).mean():.3f} ({len(gold)})"
    sm = gold == star
    line["star recall"] = f"{(pred[sm] == star).mean():.3f} ({int(sm.sum())})"
    return line


def _margin_line(
    thr: float, keep: np.ndarray, weak: np.ndarray, gold: np.ndarray, eras: np.ndarray, star: int
) -> dict[str, Any]:
    """The weak labels with a margin >= ``thr``: their accuracy and the share kept per era."""
    line: dict[str, Any] = {"labels": f"weak, margin >= {thr:g} (kept share)"}
    for era, _, _ in ERAS:
        m = (eras == era) & keep
        tot = int((eras == era).sum())
        line[era] = f"{(weak[m] == gold[m]).mean():.3f} ({int(m.sum())}/{tot})" if m.any() else "-"
    line["all"] = f"{(weak[keep] == gold[keep]).mean():.3f} ({int(keep.sum())})"
    sm = gold == star
    line["star recall"] = f"{((weak == star) & keep)[sm].mean():.3f}"
    return line


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


__all__ = [
    "COLUMNS",
    "ERAS",
    "dict_table",
    "label_quality",
    "macro_f1",
    "markdown",
    "paired_bootstrap",
    "pool_eras",
]
