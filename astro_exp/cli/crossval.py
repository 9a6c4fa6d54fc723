"""``astro-exp crossval`` (``python scripts/crossval.py``): k-fold cross-validation of a train.py
recipe against a person's labels (:mod:`astro_exp.crossval`), as JSON and a table."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command, metadata_shorthand


def _prepare(args: list[str]) -> list[str]:
    """``labels=gold.csv`` -> ``label_file=gold.csv`` (conf/labels is a config group);
    ``metadata=x.jsonl`` -> ``metadata.file=x.jsonl``."""
    return metadata_shorthand(
        [f"label_file={a.partition('=')[2]}" if a.startswith("labels=") else a for a in args]
    )


FUSED_ROWS = (
    ("picture", "the picture alone"),
    ("rules", "the rules' label alone"),
    ("text", "the text model alone"),
    ("em", "text + picture, no careful labels (EM)"),
    ("corrections", "text + picture, other folds' labels as corrections"),
    ("default", "text + picture, shipped default (not held out)"),
)


def format_result(result: dict) -> str:
    from astro_exp.tables import format_table

    p = result["pooled"]
    classes = result["classes"]
    rows = [
        (
            f["fold"],
            f["n"],
            f"{f['acc']:.3f}",
            f"{f['f1_macro']:.3f}",
            f"{f['ece_uncalibrated']:.3f}",
            f"{f['ece']:.3f}",
            f"{f['temperature']:.2f}",
            "-" if math.isnan(f["train_s"]) else f"{f['train_s']:.0f}",
        )
        for f in result["per_fold"]
    ]
    head = ("fold", "pictures", "acc", "macro-F1", "ECE raw", "ECE cal", "T", "train s")
    lines = [format_table(rows, head, rule="columns", align="auto"), ""]
    lines.append(
        f"pooled over {int(p['n'])} held-out pictures: acc {p['acc']:.3f}  top-2 {p['top2_acc']:.3f}  "
        f"macro-F1 {p['f1_macro']:.3f}  ECE {p['ece']:.3f}"
    )
    lines.append("per class F1: " + "  ".join(f"{c} {p[f'f1/{c}']:.3f}" for c in classes))
    fused = result.get("fused")
    if fused:
        lines += [
            "",
            f"text and picture ({fused['with_text']:.0%} of the pictures have a text naming a class):",
        ]
        rows = []
        for mode, what in FUSED_ROWS:
            f = fused[mode]
            q = f["pooled"]
            rows.append(
                (
                    what,
                    f"{q['acc']:.3f}",
                    f"{q['f1_macro']:.3f}",
                    *(f"{q[f'f1/{c}']:.3f}" for c in classes),
                    f"{f['ece_pooled']:.3f}",
                    "-" if f.get("map") is None else f"{f['map']:.3f}",
                )
            )
        head = ("labelled by", "acc", "macro-F1", *classes, "ECE", "mAP")
        lines.append(format_table(rows, head, rule="columns", align="auto"))
    for name, v in result.get("views", {}).items():
        q = v["pooled"]
        lines.append(
            f"as {name} pictures: acc {q['acc']:.3f}  macro-F1 {q['f1_macro']:.3f}  ECE {q['ece']:.3f}  "
            + "  ".join(f"{c} {q[f'f1/{c}']:.3f}" for c in classes)
        )
    return "\n".join(lines)


def _metadata(node, labels: Path):  # noqa: ANN001, ANN202 - a config node -> MetadataSpec
    """``metadata.file: auto``: the labels file's neighbour ``metadata.jsonl``, if there."""
    from astro_exp.predict.texts import MetadataSpec

    spec = MetadataSpec.from_cfg(node)
    if spec.file == "auto":
        beside = labels.parent / "metadata.jsonl"
        spec.file = str(beside) if beside.is_file() else None
    return spec


@command("crossval", prepare=_prepare)
def main(cfg: DictConfig) -> int:
    from astro_exp.crossval import cross_validate
    from astro_exp.predict.colour_views import colour_view

    labels = Path(str(cfg.label_file)).expanduser()
    root = Path(str(cfg.root)).expanduser() if cfg.root else labels.parent
    views = cfg.views or []
    views = [str(views)] if isinstance(views, str) else [str(v) for v in views]  # views=gray too
    for v in views:
        colour_view(v)  # a wrong name is a one-line error before any fold trains
    only = None if cfg.only is None else [int(k) for k in OmegaConf.to_container(cfg.only)]
    train = cfg.train
    overrides = (
        str(train).split()
        if isinstance(train, str)
        else [str(o) for o in OmegaConf.to_container(train)]
    )
    result = cross_validate(
        overrides,
        labels,
        root,
        Path(str(cfg.out)),
        folds=int(cfg.folds),
        only=only,
        batch_size=int(cfg.batch_size),
        one_per_animation=bool(cfg.one_per_animation),
        views=views,
        metadata=_metadata(cfg.metadata, labels),
    )
    print(format_result(result))
    print(f"\nwritten: {Path(str(cfg.out)) / 'crossval.json'}")
    return 0


if __name__ == "__main__":
    main()
