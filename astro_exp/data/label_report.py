"""How the weak labeller spreads a set of days over its classes (``astro-exp dataset label-report``).

Why: before training on weak labels, one wants to see how many picture days each class
gets, how many texts name more than one class, and whether the mix drifts over the years
(APOD's early pictures are mostly planets, its recent ones deep-sky); a handful of random
titles with their label shows what the numbers mean.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from astro_exp.data.labels import Labeller, LabelResult
from astro_exp.tables import report_table


class Day(Protocol):
    """What the report reads of a day (an API response's :class:`~astro_exp.apod.api.ApodDay`)."""

    date: dt.date
    title: str
    explanation: str | None
    media_type: str


def distribution_report(
    labeller: Labeller, days: Sequence[Day], show: int = 0, seed: int = 0
) -> str:
    """Label ``days`` and say how the labels are distributed.

    Args:
        labeller: the rules to label with.
        days: the days with their texts (every media type; the tables count pictures apart).
        show: also list this many random days with their primary label.
        seed: seed of that sample.

    Returns:
        The report: labelling speed, primary label per class, multi-label count, primary
        label per 5 years, and the sample.
    """
    t0 = time.perf_counter()
    results = [(d, labeller.label(d.title, d.explanation)) for d in days]
    rate = len(results) / max(time.perf_counter() - t0, 1e-9)
    images = [(d, r) for d, r in results if d.media_type == "image"]
    classes = labeller.label_classes(include_other=True)
    multi = sum(1 for _, r in images if len(r.all) > 1)
    lines = [
        f"{len(days)} days with text, labelled by {labeller.version} ({rate:.0f} days/s)\n",
        _primary_table(results, images, classes),
        f"\npicture days with more than one label: {multi} of {len(images)}",
        "",
        _five_year_table(images, classes),
    ]
    if show:
        lines.append("")
        sample = random.Random(seed).sample(results, min(int(show), len(results)))
        lines += [f"{r.primary:12s} {d.date} {d.title[:70]}" for d, r in sample]
    return "\n".join(lines)


def _primary_table(
    results: list[tuple[Day, LabelResult]],
    images: list[tuple[Day, LabelResult]],
    classes: list[str],
) -> str:
    """Per class: primary label over all days and over picture days, its share, multi-label."""
    primary_all = Counter(r.primary for _, r in results)
    primary_img = Counter(r.primary for _, r in images)
    in_all = Counter(lab for _, r in images for lab in r.all)
    rows = [
        (
            c,
            primary_all[c],
            primary_img[c],
            f"{100 * primary_img[c] / max(len(images), 1):.1f}%",
            in_all[c],
        )
        for c in classes
    ]
    return report_table(
        "primary label",
        ("label", "all days", "picture days", "share", "in 'all' (multilabel)"),
        rows,
    )


def _five_year_table(images: list[tuple[Day, LabelResult]], classes: list[str]) -> str:
    """Primary label of the picture days per 5 years (whether the mix drifts)."""
    by_span = Counter((d.date.year // 5 * 5, r.primary) for d, r in images)
    spans = sorted({y for y, _ in by_span})
    return report_table(
        "primary label by 5 years (picture days)",
        ("from", *classes),
        [(y, *[by_span[(y, c)] for c in classes]) for y in spans],
    )
