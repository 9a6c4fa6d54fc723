"""How good are the weak labels? The labeller's verdicts against a person's labels.

Why: every real-picture recipe trains on weak labels, so their errors cap what a model can
learn; this says how often the rules agree with careful labels, per class, and which texts
they get wrong, so the rules can be fixed where the errors are systematic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from astro_exp.data.label_files import LabelRow
from astro_exp.data.labels import Labeller


@dataclass
class LabellerCheck:
    """Agreement of weak primary labels with careful ones, over the pictures both label."""

    classes: list[str]
    n: int
    agreement: float
    agreement_clear: float  # over the pictures the person marked clear (not borderline)
    per_class: dict[str, dict[str, float]]  # class -> precision, recall, f1, support, predicted
    confusion: list[list[int]]  # rows: careful label, columns: weak label
    wrong: list[dict[str, Any]] = field(default_factory=list)  # the texts it gets wrong
    unmatched: int = 0  # careful labels with no text record (or the other way round)

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "n": self.n,
            "agreement": self.agreement,
            "agreement_clear": self.agreement_clear,
            "per_class": self.per_class,
            "confusion": self.confusion,
            "unmatched": self.unmatched,
            "wrong": self.wrong,
        }


def check_labeller(
    labeller: Labeller, records: Iterable[Mapping[str, Any]], gold: Iterable[LabelRow]
) -> LabellerCheck:
    """``records``: ``{file, title, explanation}`` as a source hands them to the labeller;
    ``gold``: a person's labels for (some of) the same files."""
    classes = labeller.label_classes(include_other=True)
    index = {c: i for i, c in enumerate(classes)}
    by_file = {r.file: r for r in gold}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    clear_hits = clear_n = 0
    wrong: list[dict[str, Any]] = []
    matched = 0
    for rec in records:
        ref = by_file.get(str(rec["file"]))
        if ref is None or ref.label not in index:
            continue
        matched += 1
        res = labeller.label(rec.get("title"), rec.get("explanation"), explain=True)
        weak = res.primary  # always one of label_classes(include_other=True)
        confusion[index[ref.label], index[weak]] += 1
        if ref.clear:
            clear_n += 1
            clear_hits += weak == ref.label
        if weak != ref.label:
            wrong.append(
                {
                    "file": ref.file,
                    "gold": ref.label,
                    "weak": weak,
                    "clear": ref.clear,
                    "title": rec.get("title") or "",
                    "has_explanation": bool(rec.get("explanation")),
                    "scores": {k: round(v, 2) for k, v in res.scores.items() if v},
                    "hits": [f"{where}:{concept}:{text}" for where, concept, text in res.hits[:8]],
                }
            )
    n = int(confusion.sum())
    per_class: dict[str, dict[str, float]] = {}
    for c, i in index.items():
        tp = float(confusion[i, i])
        predicted = float(confusion[:, i].sum())
        support = float(confusion[i, :].sum())
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[c] = {
            "precision": p,
            "recall": r,
            "f1": f1,
            "support": support,
            "predicted": predicted,
        }
    return LabellerCheck(
        classes=classes,
        n=n,
        agreement=float(np.trace(confusion) / n) if n else float("nan"),
        agreement_clear=clear_hits / clear_n if clear_n else float("nan"),
        per_class=per_class,
        confusion=confusion.tolist(),
        wrong=wrong,
        unmatched=len(by_file) - matched,
    )
