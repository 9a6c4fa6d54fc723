"""``astro-exp evaluate`` (``python scripts/evaluate.py``): score any checkpoint against any
labelled folder, through the same predict path users call.

    python scripts/evaluate.py ckpt_path=outputs/.../checkpoints/best.pt labels=my_labels.csv root=my_pics/

Writes ``metrics.json`` (every figure and every picture's prediction), ``confusion_matrix.png``
and ``reliability.png`` into ``out=`` and prints a table. Exit status 2 (one line) for a
missing checkpoint, labels file or picture folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from astro_exp.cli.command import command, metadata_shorthand
from astro_exp.cli.predict import fusion_shorthand


def format_report(card) -> str:
    """Overall figures, then one row per class."""
    from astro_exp.tables import format_table

    m = card.metrics
    lines = [
        f"{card.n} pictures ({len(card.failed)} unreadable): acc {m['acc']:.3f}  top-2 {m['top2_acc']:.3f}  "
        f"macro-F1 {m['f1_macro']:.3f}  ECE {m['ece_uncalibrated']:.3f} -> {m['ece']:.3f} (T={m['temperature']:.2f})"
    ]
    if card.within_classes and len(card.confusion_rows) > len(card.classes):
        w = card.within_classes
        lines.append(
            f"over the {int(w['n'])} pictures whose label the model knows: acc {w['acc']:.3f}  macro-F1 {w['f1_macro']:.3f}"
        )
    if card.multilabel:
        lines.append(f"multi-label (against `all`): mAP {card.multilabel['map']:.3f}")
    if card.picture_only:
        q, fusion = card.picture_only["metrics"], card.picture_only.get("fusion") or {}
        lines.insert(0, f"text and picture together ({fusion.get('source', 'no')} text model):")
        lines.append(
            f"the picture alone: acc {q['acc']:.3f}  macro-F1 {q['f1_macro']:.3f}  ECE {q['ece']:.3f}"
            + (f"  mAP {card.picture_only['map']:.3f}" if card.picture_only.get("map") else "")
            + f"  ({card.picture_only['with_text']:.0%} of the pictures had a text naming a class)"
        )
    rows = [
        (
            c,
            f"{m[f'precision/{c}']:.3f}",
            f"{m[f'recall/{c}']:.3f}",
            f"{m[f'f1/{c}']:.3f}",
            int(m[f"support/{c}"]),
        )
        for c in card.classes
    ]
    lines += [
        "",
        format_table(
            rows, ("class", "precision", "recall", "F1", "pictures"), rule="columns", align="auto"
        ),
    ]
    return "\n".join(lines)


def _prepare(args: list[str]) -> list[str]:
    """``labels=x.csv`` -> ``label_file=x.csv`` (Hydra takes ``labels=`` for the config group
    conf/labels, so the key has another name); ``fusion=none`` -> ``text_fusion=none`` (the
    same for conf/fusion); ``metadata=x.jsonl`` -> ``metadata.file=x.jsonl``."""
    return metadata_shorthand(
        fusion_shorthand(
            [f"label_file={a.partition('=')[2]}" if a.startswith("labels=") else a for a in args]
        )
    )


@command("evaluate", prepare=_prepare)
def main(cfg: DictConfig) -> int:
    from astro_exp.data.label_files import read_label_file
    from astro_exp.files import atomic_write
    from astro_exp.predict.classifier import Classifier
    from astro_exp.predict.colour_views import colour_view
    from astro_exp.predict.fusion import set_fusion
    from astro_exp.predict.scorecard import score_labelled, write_figures
    from astro_exp.predict.texts import MetadataSpec, read_texts

    view = None if cfg.get("view") in (None, "none") else str(cfg.view)
    colour_view(view)  # a wrong name is a one-line error before the checkpoint loads
    labels = Path(str(cfg.label_file)).expanduser()
    rows = read_label_file(labels)
    if cfg.get("one_frame_per_animation"):
        from astro_exp.data.splits import first_frames

        rows = first_frames(rows)
    root = Path(str(cfg.root)).expanduser() if cfg.root else labels.parent
    ckpt = Path(str(cfg.ckpt_path)).expanduser()
    texts = read_texts(MetadataSpec.from_cfg(cfg.metadata)) or None
    clf = Classifier.from_checkpoint(ckpt, device=str(cfg.device), anomaly=False)
    set_fusion(clf, str(cfg.text_fusion))
    card = score_labelled(
        clf,
        rows,
        root,
        batch_size=int(cfg.batch_size),
        progress=bool(cfg.progress),
        view=view,
        texts=texts,
    )
    out = (
        Path(str(cfg.out)).expanduser()
        if cfg.out
        else ckpt.parent.parent / "evaluate" / (labels.stem + (f"-{view}" if view else ""))
    )
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "checkpoint": str(ckpt),
        "labels": str(labels),
        "root": str(root),
        "view": view,
        **card.to_json(),
    }
    atomic_write(out / "metrics.json", json.dumps(report, indent=2))
    write_figures(card, out)
    print(format_report(card))
    print(f"\nwritten: {out / 'metrics.json'}, confusion_matrix.png, reliability.png")
    return 0


if __name__ == "__main__":
    main()
