"""Refit the text evidence shipped with a label config (``evidence:`` in conf/labels/apod4.yaml)
from a person's labels, and print the YAML block to paste.

Why a script and not a run step: the shipped default is one of the two places careful labels
set a value of the project (the other is the recipe's label-noise rate), so it is made once,
in the open, from named files, and the YAML says what it was fitted on.

    python -m astro_exp.crossval.fit_evidence                        # the shared data's defaults
    python -m astro_exp.crossval.fit_evidence crossval=outputs/cv/recipe/crossval.json

The text model: the labeller's per-class scores of every labelled text (the shared
thumbnails' texts, and the archive days that map to a thumbnail) against ``gold.csv``.
With ``crossval=`` also the fusion weights ``a`` and ``b`` (no class biases: a default must
not re-weight the classes of someone else's pictures), fitted on that cross-validation's
held-out picture probabilities.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from astro_exp.data.label_files import read_label_file
from astro_exp.data.labels import build_labeller, load_label_config
from astro_exp.predict.fusion import Fusion, TextModel, fit_text_model, fit_weights
from astro_exp.predict.texts import MetadataSpec, read_texts

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def labelled_texts(
    gold: Path, thumbs_meta: Path, archive_meta: Path | None
) -> tuple[list, list, int]:
    """(texts, labels, how many are thumbnails'): every gold picture's thumbnail text, then
    each archive day that maps to a gold picture (``thumbs_file``) with its full API text."""
    labels = {r.file: r.label for r in read_label_file(gold)}
    texts = read_texts(MetadataSpec(file=str(thumbs_meta), title_from_filename=True))
    out_t, out_y = [], []
    for f, t in texts.items():
        if f in labels:
            out_t.append(t)
            out_y.append(labels[f])
    n_thumbs = len(out_t)
    if archive_meta is not None and archive_meta.is_file():
        for line in archive_meta.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("thumbs_file") in labels:
                out_t.append((row.get("title") or "", row.get("explanation") or ""))
                out_y.append(labels[row["thumbs_file"]])
    return out_t, out_y, n_thumbs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", default="apod4", help="the label config (conf/labels/<name>)")
    ap.add_argument("--gold", default=str(SHARED / "apod-thumbs" / "gold.csv"))
    ap.add_argument("--thumbs", default=str(SHARED / "apod-thumbs" / "metadata.jsonl"))
    ap.add_argument("--archive", default=str(SHARED / "apod-archive" / "metadata.jsonl"))
    ap.add_argument("crossval", nargs="?", help="crossval=<crossval.json> for the weights")
    args = ap.parse_args(argv)
    cfg = load_label_config(args.labels)
    labeller = build_labeller(cfg)
    classes = labeller.label_classes(include_other=True)
    texts, labels, n_thumbs = labelled_texts(Path(args.gold), Path(args.thumbs), Path(args.archive))
    probe = Fusion(
        labeller,
        TextModel(classes, np.eye(len(classes)), np.zeros(len(classes)), np.ones(len(classes))),
    )
    scores = probe.scores(texts)
    has = probe.has_evidence(scores)
    y = np.array([classes.index(lab) for lab in labels])
    fitted_on = (
        f"{Path(args.gold).name} careful labels of {int(has.sum())} texts naming a class "
        f"({n_thumbs} thumbnail texts + {len(texts) - n_thumbs} archive days)"
    )
    tm = fit_text_model(
        probe.text.features(scores)[has], y[has], classes, source="default", fitted_on=fitted_on
    )
    a = b = 1.0
    if args.crossval:
        path = Path(args.crossval.partition("=")[2] or args.crossval)
        result = json.loads(path.read_text())
        rows = [p for p in result["pictures"] if p["label"] in classes]
        ctexts = read_texts(MetadataSpec(file=args.thumbs, title_from_filename=True))
        cs = probe.scores([ctexts.get(p["file"]) for p in rows])
        ch = probe.has_evidence(cs)
        idx = [result["classes"].index(c) for c in classes]
        P = np.array([[p["probs"][i] for i in idx] for p in rows])[ch]
        cy = np.array([classes.index(p["label"]) for p in rows])[ch]
        a, b, _ = fit_weights(P, tm.log_likelihood(probe.text.features(cs)[ch]), cy, bias_l2=1e9)
    d = tm.to_dict()
    print("evidence:")
    print(f"  classes: [{', '.join(classes)}]")
    print("  coef:")
    for row in d["coef"]:
        print(f"    - [{', '.join(str(v) for v in row)}]")
    print(f"  intercept: [{', '.join(str(v) for v in d['intercept'])}]")
    print(f"  prior: [{', '.join(str(v) for v in d['prior'])}]")
    print(f"  n: {d['n']}")
    print(f"  picture_weight: {a:.4f}")
    print(f"  text_weight: {b:.4f}")
    print("  bias: null")
    print(f"  fitted_on: {fitted_on}" + (f"; weights: {args.crossval}" if args.crossval else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
