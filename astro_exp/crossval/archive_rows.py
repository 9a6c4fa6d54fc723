"""The archive study's rows: what each line of the table trains on and how.

Why a list of :class:`Row` values rather than code per lever: every lever (resize policy,
penalty, years, class balance, label margin, soft or fused targets) is then one setting of
the same probe fit (:class:`~astro_exp.crossval.archive_runner.Runner`), and the table is
the list: :func:`default_rows` for the levers, :func:`combination_rows` for a fixed set of
levers with the recipe's class weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from astro_exp.crossval.archive_pool import Study


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


__all__ = ["Row", "combination_rows", "default_rows", "margin_mask", "year_mask", "year_weights"]
