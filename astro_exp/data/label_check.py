"""How good are the weak labels? The labeller's verdicts against a person's labels.

Why: every real-picture recipe trains on weak labels, so their errors cap what a model can
learn; this says how often the rules agree with careful labels, per class, and which texts
they get wrong, so the rules can be fixed where the errors are systematic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from astro_exp.data.label_files import LabelRow
from astro_exp.data.labels import Labeller, LabelResult
from astro_exp.tables import report_table


@dataclass
class LabellerCheck:
    """Agreement of weak primary labels with careful ones, over the pictures both label."""

    classes: list[str]
    n: int
    agreement: float
    agreement_clear: float  # over the pictures the person marked clear (not borderline)
    per_class: dict[str, dict[str, float]]  # class -> precision, recall, f1, support, predicted
    confusion: list[list[int]]  # rows: careful label, columns: weak label
    unmatched: int = 0  # careful labels with no text record (or the other way round)
    wrong: list[dict[str, Any]] = field(default_factory=list)  # the texts it gets wrong

    def to_json(self) -> dict[str, Any]:
        """The whole check, as ``check-labels out=`` writes it (keys in field order)."""
        return asdict(self)

    def report(self, version: str, show: int = 0) -> str:
        """Agreement, per-class precision/recall and the confusion as text, with the first
        ``show`` wrong texts; ``version``: the labeller's, for the heading line."""
        lines = [
            f"{self.n} pictures, labelled by {version}: agreement {self.agreement:.3f} "
            f"({self.agreement_clear:.3f} on the ones marked clear); {self.unmatched} labelled pictures have no text\n",
            report_table(
                "weak label vs careful label",
                ("class", "precision", "recall", "F1", "careful", "weak"),
                [_class_row(c, v) for c, v in self.per_class.items()],
            ),
            "",
            report_table(
                "confusion (rows: careful label)",
                ("careful \\ weak", *self.classes),
                [(c, *r) for c, r in zip(self.classes, self.confusion, strict=True)],
            ),
        ]
        if show:
            lines.append(
                f"\n{min(show, len(self.wrong))} of the {len(self.wrong)} texts it gets wrong:"
            )
            lines += [
                f"  careful {w['gold']:<7} weak {w['weak']:<7} {w['title'][:60]!r} {w['scores']}"
                for w in self.wrong[:show]
            ]
        return "\n".join(lines)


def _class_row(name: str, v: dict[str, float]) -> tuple[Any, ...]:
    """One row of the per-class table: precision, recall, F1, careful and weak counts."""
    return (
        name,
        f"{v['precision']:.3f}",
        f"{v['recall']:.3f}",
        f"{v['f1']:.3f}",
        int(v["support"]),
        int(v["predicted"]),
    )


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
            wrong.append(_wrong_text(ref, rec, res))
    n = int(confusion.sum())
    return LabellerCheck(
        classes=classes,
        n=n,
        agreement=float(np.trace(confusion) / n) if n else float("nan"),
        agreement_clear=clear_hits / clear_n if clear_n else float("nan"),
        per_class=_per_class(confusion, classes),
        confusion=confusion.tolist(),
        wrong=wrong,
        unmatched=len(by_file) - matched,
    )


def _wrong_text(ref: LabelRow, rec: Mapping[str, Any], res: LabelResult) -> dict[str, Any]:
    """A text the weak label gets wrong, with the scores and rule hits that explain why."""
    return {
        "file": ref.file,
        "gold": ref.label,
        "weak": res.primary,
        "clear": ref.clear,
        "title": rec.get("title") or "",
        "has_explanation": bool(rec.get("explanation")),
        "scores": {k: round(v, 2) for k, v in res.scores.items() if v},
        "hits": [f"{where}:{concept}:{text}" for where, concept, text in res.hits[:8]],
    }


def _per_class(confusion: np.ndarray, classes: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1, support (careful) and predicted (weak) counts per class."""
    per_class: dict[str, dict[str, float]] = {}
    for i, c in enumerate(classes):
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
    return per_class
