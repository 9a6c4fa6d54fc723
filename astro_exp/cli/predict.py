"""``astro-exp predict`` (``python scripts/predict.py``): classify pictures with a trained bundle;
a table on stdout, JSON lines with ``output=``.

    python scripts/predict.py ckpt_path=outputs/.../checkpoints/best.pt inputs=[m31.jpg,new_pics/,https://example.org/x.jpg]
    python scripts/predict.py ckpt_path=... inputs=[new_pics/] output=preds.jsonl top_k=3 batch_size=32
    python scripts/predict.py ckpt_path=... catalog=true     # the catalog's pictures -> its predictions table

Exit status: 0 when at least one input was classified, 1 when every input failed,
2 for a missing/corrupt checkpoint or a bad setting (one line on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from astro_exp.cli.command import command, metadata_shorthand
from astro_exp.errors import ConfigError


def _inputs(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, ListConfig | list | tuple):
        return [
            str(v)
            for v in (OmegaConf.to_container(value) if isinstance(value, ListConfig) else value)
        ]
    return [str(value)]


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _why(p) -> str:
    """`` (text nebula, picture star)`` when text and picture together decided the label."""
    if p.evidence != "picture+text" or not p.text or not p.picture:
        return ""
    return f" (text {p.text['label']}, picture {p.picture['label']})"


def format_table(preds) -> str:
    """One row per input: label, calibrated confidence, anomaly score and flag, or the error."""
    from astro_exp.tables import format_table as text_table

    rows = []
    for p in preds:
        if p.error:
            rows.append((p.input, "-", "-", "-", "-", f"error: {p.error}"))
            continue
        near = p.neighbours[0] if p.neighbours else None
        rows.append(
            (
                p.input,
                (";".join(p.labels) if len(p.labels) > 1 else str(p.label)) + _why(p),
                f"{p.confidence:.3f}",
                "-" if p.anomaly_score is None else f"{p.anomaly_score:.4g}",
                "-" if p.is_anomaly is None else ("ANOMALY" if p.is_anomaly else "ok"),
                f"{near['label']} {near['id']} (d={near['distance']:.3f})" if near else "",
            )
        )
    rows = [(_cell(r[0], 48), *r[1:]) for r in rows]
    header = ("input", "label", "conf", "anomaly", "flag", "nearest / error")
    return text_table(rows, header, rule="line", max_rule=120)


def _classifier(cfg: DictConfig):
    """The bundle of ``ckpt_path`` with the settings of this command (device, anomaly scores)."""
    from astro_exp.predict.classifier import Classifier
    from astro_exp.predict.fusion import set_fusion

    clf = Classifier.from_checkpoint(
        cfg.ckpt_path,
        device=cfg.device,
        anomaly=bool(cfg.score_anomalies),
        n_neighbors=cfg.n_neighbors,
        max_bytes=int(cfg.max_bytes),
    )
    set_fusion(clf, str(cfg.get("text_fusion", "auto")))
    return clf


def fusion_shorthand(args: list[str]) -> list[str]:
    """``fusion=none`` -> ``text_fusion=none``: Hydra takes ``fusion=`` for the config group
    conf/fusion (the run stage's), so the commands' own key has another name."""
    return [f"text_fusion={a.partition('=')[2]}" if a.startswith("fusion=") else a for a in args]


def _prepare(args: list[str]) -> list[str]:
    """``anomaly=false`` -> ``score_anomalies=false`` (Hydra takes ``anomaly=`` for the config
    group conf/anomaly, so the key has another name); ``fusion=`` as :func:`fusion_shorthand`;
    ``metadata=x.jsonl`` and ``text=...`` as :func:`~astro_exp.cli.command.metadata_shorthand`."""
    return metadata_shorthand(
        fusion_shorthand(
            [
                f"score_anomalies={a.partition('=')[2]}" if a.startswith("anomaly=") else a
                for a in args
            ]
        )
    )


def _texts(cfg: DictConfig, inputs: list[str]):
    """The texts of this call's pictures: ``text=`` for a single input, else ``metadata=``'s
    rows by path (absolute, so a folder input finds its files' rows). None without either."""
    from astro_exp.predict.texts import MetadataSpec, read_texts

    if cfg.get("text"):
        if len(inputs) != 1:
            raise ConfigError(
                f"text= is one picture's words, but there are {len(inputs)} inputs; "
                "give one input, or metadata=file.jsonl for many"
            )
        return [str(cfg.text)]
    spec = MetadataSpec.from_cfg(cfg.get("metadata"))
    rows = read_texts(spec)
    if not rows:
        return None
    base = Path(str(spec.file)).expanduser().resolve().parent
    return {str((base / f).resolve()): t for f, t in rows.items()}


@command("predict", prepare=_prepare)
def main(cfg: DictConfig) -> None:
    """Exit status: 0 when at least one input was classified, 1 when every input failed."""
    # imported after Hydra parsed the command line, so --help stays fast

    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise ConfigError(
            "no checkpoint; pass ckpt_path=outputs/runs/<date>/<time>_<name>/checkpoints/best.pt"
        )
    if cfg.catalog:
        classify_catalog(cfg)
        return
    inputs = _inputs(cfg.inputs)
    if not inputs:
        raise ConfigError(
            "no inputs; pass inputs=[picture.jpg,folder/,https://...] (or catalog=true)"
        )
    texts = _texts(cfg, inputs)
    clf = _classifier(cfg)
    if texts is not None and clf.fusion is None:
        print(
            "note: this bundle has no text model for its classes; the picture alone decides",
            file=sys.stderr,
        )
    out = None
    if cfg.output:
        path = Path(cfg.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("w", encoding="utf-8")
    preds = []
    try:
        for p in clf.predict_iter(
            inputs,
            top_k=int(cfg.top_k),
            batch_size=int(cfg.batch_size),
            progress=bool(cfg.progress),
            texts=texts,
        ):
            preds.append(p)
            if out is not None:
                out.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
                out.flush()
    finally:
        if out is not None:
            out.close()
    if cfg.print_table:
        print(format_table(preds))
    failed = sum(p.error is not None for p in preds)
    if failed:
        print(f"{failed} of {len(preds)} inputs failed (see the error column)", file=sys.stderr)
    if failed == len(preds):
        sys.exit(1)


def classify_catalog(cfg: DictConfig) -> None:
    """``catalog=true``: classify every stored picture of the catalog that this run lacks."""
    from collections import Counter

    from astro_exp.data.catalog import Catalog, catalog_path
    from astro_exp.errors import DataError
    from astro_exp.predict.into_catalog import predict_catalog, run_id_for

    path = catalog_path(cfg.paths.data_dir)
    if not path.is_file():
        raise DataError(
            f"no catalog at {path}; run python scripts/scrape.py first or set paths.data_dir"
        )
    clf = _classifier(cfg)
    run_id = cfg.run_id or run_id_for(cfg.ckpt_path, cfg.paths.log_dir)
    with Catalog(path) as cat:
        preds = predict_catalog(
            clf,
            cat,
            run_id,
            cfg.paths.data_dir,
            batch_size=int(cfg.batch_size),
            progress=bool(cfg.progress),
        )
        total = len(cat.predicted_shas(run_id))
    labels = Counter(p.label for p in preds.values())
    flagged = sum(bool(p.is_anomaly) for p in preds.values())
    print(
        f"run {run_id}: classified {len(preds)} new pictures ({', '.join(f'{k} {v}' for k, v in labels.most_common())}"
        f"{f'; {flagged} flagged as anomalies' if clf.detector is not None else ''}); {total} in the catalog for this run"
    )


if __name__ == "__main__":
    main()
