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
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from astro_exp.crossval.archive_fit import Probe, fit_probe
from astro_exp.crossval.archive_pool import Study, build_study
from astro_exp.crossval.archive_report import (
    COLUMNS,
    dict_table,
    label_quality,
    markdown,
    paired_bootstrap,
    pool_eras,
)
from astro_exp.crossval.archive_rows import Row, combination_rows, default_rows
from astro_exp.crossval.archive_runner import Runner, pick_l2
from astro_exp.crossval.archive_targets import write_labels
from astro_exp.files import atomic_write
from astro_exp.tables import format_table

log = logging.getLogger(__name__)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _parser() -> argparse.ArgumentParser:
    """The study's command line (``python scripts/archive_study.py --help``)."""
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
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Build the study, then write the pool's labels (``--write-labels``) or run the table."""
    args = _parser().parse_args(argv)
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
    table = _Table(study, Runner(study, l2, args.label_noise), Path(args.out), args, argv)
    table.out.mkdir(parents=True, exist_ok=True)
    best = _lever_rows(table, train_p, test_p)
    _add_bootstrap(table, best)
    table.save()  # with the bootstrap intervals
    _add_label_quality(table, best)
    print(format_table([[r.get(k) for k in COLUMNS] for r in table.results], COLUMNS))
    return 0


@dataclass
class _Table:
    """The study's rows as they come, saved after each one (a killed run keeps its rows)."""

    study: Study
    runner: Runner
    out: Path
    args: argparse.Namespace
    argv: Sequence[str] | None
    results: list[dict[str, Any]] = field(default_factory=list)

    def wanted(self, name: str) -> bool:
        """Whether ``--only`` lets the row ``name`` run."""
        return not self.args.only or any(k in name for k in self.args.only.split(","))

    def run(self, rows: list[Row]) -> None:
        """Fit and score each wanted row, saving the table after each."""
        for r in rows:
            if not self.wanted(r.name):
                continue
            res = self.runner.run(r)
            log.info(
                "%s: acc %.3f macro-F1 %.3f star F1 %.3f (%.0f s)",
                r.name,
                res["acc"],
                res["f1_macro"],
                res["f1/star"],
                res["seconds"],
            )
            self.results.append(res)
            self.save()

    def save(self) -> None:
        """archive_study.json (protocol, pool, settings, rows) and the markdown table."""
        doc = {
            "protocol": __doc__,
            "command": "python scripts/archive_study.py " + " ".join(self.argv or []),
            "pool": self.study.pool_info,
            "settings": vars(self.args),
            "rows": self.results,
        }
        atomic_write(self.out / "archive_study.json", json.dumps(doc, indent=1, default=float))
        atomic_write(self.out / "archive_study.md", markdown(self.results) + "\n")


def _lever_rows(table: _Table, train_p: list[str], test_p: list[str]) -> str:
    """The resize rows, then the reference rows and every lever at the best policy
    (``--best``, else the baseline's best macro-F1 where train = test); returns that policy."""
    base = [r for r in default_rows(train_p, test_p, "pad") if r.lever.startswith("(a)")]
    table.run(base)
    best = (
        table.args.best
        or max(
            (r for r in table.results if r["train_policy"] == r["test_policy"]),
            key=lambda r: r["f1_macro"],
        )["train_policy"]
    )
    log.info("lever rows at resize=%s", best)
    for name, labels in (
        ("thumbnails, weak labels", "weak"),
        ("thumbnails, gold labels (ceiling)", "gold"),
    ):
        if table.wanted(name):
            table.results.append(table.runner.reference(name, labels, best))
    table.run([r for r in default_rows(train_p, test_p, best) if not r.lever.startswith("(a)")])
    table.run(combination_rows(best))
    return best


def _add_bootstrap(table: _Table, best: str) -> None:
    """Each row's difference to the weak baseline at ``best``, with its 95% interval."""
    preds, study = table.runner.preds, table.study
    base = preds.get(f"weak, train {best} / test {best}")
    if base is None:
        return
    for r in table.results:
        if r["name"] in preds:
            d = paired_bootstrap(preds[r["name"]], base, study.test_truth, len(study.classes))
            r.update(d)
            r["d_f1_macro (95%)"] = (
                f"{d['d_f1_macro']:+.3f} [{d['d_f1_macro_lo']:+.3f}, {d['d_f1_macro_hi']:+.3f}]"
            )


def _add_label_quality(table: _Table, best: str) -> None:
    """The labels against gold.csv and the pool, by era, added to the saved table."""
    quality = label_quality(table.runner, best)
    eras = pool_eras(table.study)
    out = table.out
    doc = json.loads((out / "archive_study.json").read_text())
    doc["label_quality"] = quality
    doc["pool_eras"] = eras
    atomic_write(out / "archive_study.json", json.dumps(doc, indent=1, default=float))
    atomic_write(
        out / "archive_study.md",
        markdown(table.results)
        + "\n\nLabels against gold.csv on archive rows with a careful label, by era:\n\n"
        + dict_table(quality)
        + "\n\nThe training pool by era:\n\n"
        + dict_table(eras)
        + "\n",
    )


__all__ = ["Probe", "Study", "build_study", "fit_probe", "main", "write_labels"]
