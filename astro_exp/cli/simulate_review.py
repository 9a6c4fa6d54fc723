"""``astro-exp simulate-review`` (``python scripts/simulate_review.py``): what a person's
corrections and anomaly marks are worth (:mod:`astro_exp.review.simulate`), as a table, a
JSON and a learning-curve PNG.

    python scripts/simulate_review.py gold=../shared/data/apod-thumbs/gold.csv rounds=4 per_round=50
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command
from astro_exp.cli.predict import fusion_shorthand
from astro_exp.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _list(node: object) -> list:
    return list(OmegaConf.to_container(node)) if OmegaConf.is_config(node) else list(node)  # type: ignore[arg-type]


def _held_out(value: object, folds: int) -> list[int]:
    """``all`` or a list of fold numbers, each checked against ``folds``."""
    if str(value) == "all":
        return list(range(folds))
    chosen = [int(v) for v in (_list(value) if not isinstance(value, int) else [value])]
    bad = [k for k in chosen if not 0 <= k < folds]
    if bad or not chosen:
        raise ConfigError(f"held_out={value} must be 'all' or folds in 0..{folds - 1}")
    return chosen


def build_pool(cfg: DictConfig):  # noqa: ANN201 - a review.simulate.Pool
    """The source's pictures with their weak labels, the person's labels and frozen features."""
    from astro_exp.data.label_files import read_label_file
    from astro_exp.review.features import frozen_features
    from astro_exp.review.simulate import Pool
    from astro_exp.sources import build_imageset

    imageset = build_imageset(cfg.source)
    if imageset.task != "multiclass":
        raise ConfigError("simulate-review scores one label per picture: use task=multiclass")
    person = {r.file.replace("\\", "/"): r.label for r in read_label_file(str(cfg.gold))}
    f = cfg.features
    head, anomaly, failed = frozen_features(
        imageset,
        model_name=str(f.model_name),
        image_size=int(f.image_size),
        resize=str(f.resize),
        mean=tuple(float(v) for v in f.mean),
        std=tuple(float(v) for v in f.std),
        cache_dir=str(cfg.paths.cache_dir),
        batch_size=int(f.batch_size),
        progress=bool(cfg.progress),
    )
    index = {c: i for i, c in enumerate(imageset.classes)}
    keep = [
        i
        for i, pid in enumerate(imageset.ids)
        if i not in failed and index.get(person.get(pid.replace("\\", "/"), "")) is not None
    ]
    if len(keep) < 50:
        raise DataError(
            f"only {len(keep)} of {len(imageset)} pictures have a label in {cfg.gold} that is one "
            f"of {imageset.classes}; is gold= the labels file of source.root={cfg.source.root}?"
        )
    if len(keep) < len(imageset):
        log.info(
            "%d of %d pictures have no usable label in the labels file",
            len(imageset) - len(keep),
            len(imageset),
        )
    k = np.array(keep)
    text_features, has_text = _text_evidence(cfg, [imageset.ids[i] for i in keep], imageset.classes)
    return Pool(
        ids=[imageset.ids[i] for i in keep],
        classes=list(imageset.classes),
        features=head[k],
        anomaly_features=anomaly[k],
        weak=np.asarray(imageset.targets)[k].astype(np.int64),
        person=np.array([index[person[imageset.ids[i].replace("\\", "/")]] for i in keep]),
        text_features=text_features,
        has_text=has_text,
    )


def _text_evidence(cfg: DictConfig, ids: list[str], classes: list[str]):  # noqa: ANN202
    """(N, C) text features and (N,) has-text of the pool's pictures, from the source's
    records (title, explanation) and the label config's labeller; (None, None) when the
    source has no texts or ``fusion=false``."""
    from astro_exp.data.labels import build_labeller
    from astro_exp.predict.fusion import Fusion, TextModel
    from astro_exp.sources import build_source

    if not cfg.get("text_fusion", True):
        return None, None
    source = build_source(cfg.source)
    if not hasattr(source, "records"):
        log.info("source %s keeps no texts: the picture alone", cfg.source.name)
        return None, None
    texts = {r["file"]: (r["title"], r["explanation"]) for r in source.records()}
    c = len(classes)
    probe = Fusion(
        build_labeller(cfg.labels), TextModel(classes, np.eye(c), np.zeros(c), np.ones(c))
    )
    scores = probe.scores([texts.get(i) for i in ids])
    return probe.text.features(scores), probe.has_evidence(scores)


def plot(result: dict, path: Path) -> None:
    """Held-out macro-F1 against corrections, one line per order; precision@top vs marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = result["marks"]
    if m is None:  # learner=finetune: the corrections only
        fig, a = plt.subplots(figsize=(6.6, 4.2))
    else:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for order, curve in result["corrections"]["curves"].items():
        xs = [p["corrections"] for p in curve]
        ys = [p["f1_macro"] for p in curve]
        line = a.plot(xs, ys, marker="o", label=order)[0]
        if "fused_f1_macro" in curve[0]:
            a.plot(
                xs,
                [p["fused_f1_macro"] for p in curve],
                marker="s",
                ls="--",
                color=line.get_color(),
                label=f"{order}, text + picture",
            )
        if "f1_macro_sd" in curve[0]:
            sd = np.array([p["f1_macro_sd"] for p in curve])
            a.fill_between(xs, np.array(ys) - sd, np.array(ys) + sd, alpha=0.15)
    roof = result["corrections"].get("all_pool_labels_from_the_person")
    if roof:
        a.axhline(roof["f1_macro"], ls="--", c="grey", label="every pool label from the person")
    a.set_xlabel("corrections (labels from the person); bands: spread over the held-out folds")
    a.set_ylabel("macro-F1 on the held-out fold")
    learner = result["corrections"].get("learner", "head")
    a.set_title(f"review queue: what corrections are worth (learner: {learner})")
    a.grid(alpha=0.3)
    a.legend()
    if m is not None:
        _plot_marks(b, m)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_marks(b, m: dict) -> None:  # noqa: ANN001 - a matplotlib Axes
    key = f"precision_at_{m['top']}"
    xs = [p["marks"] for p in m["points"]]
    b.plot(xs, [p[key] for p in m["points"]], marker="o", label="ranked with the marks")
    b.plot(xs, [p[key + "_without_marks"] for p in m["points"]], marker="s", label="detector alone")
    b.axhline(m["base_rate"], ls="--", c="grey", label="share of interesting pictures")
    b.set_xlabel("anomaly marks")
    b.set_ylabel(f"precision at top {m['top']} (unmarked)")
    b.set_title("interesting: " + ", ".join(m["interesting"]), fontsize=9)
    b.set_ylim(0, 1)
    b.grid(alpha=0.3)
    b.legend(fontsize=8)


def format_result(result: dict) -> str:
    from astro_exp.tables import format_table

    c = result["corrections"]
    curves = c["curves"]
    counts = [p["corrections"] for p in next(iter(curves.values()))]
    rows = [
        (o, *(f"{p['f1_macro']:.3f} ({p['weak_fixed']:.0f})" for p in curve))
        for o, curve in curves.items()
    ]
    fused = [
        (o, *(f"{p['fused_f1_macro']:.3f} ±{p.get('fused_f1_macro_sd', 0):.3f}" for p in curve))
        for o, curve in curves.items()
        if "fused_f1_macro" in curve[0]
    ]
    folds = c["held_out"]["held_out_folds"]
    lines = [
        f"held-out macro-F1 after N corrections (learner {c.get('learner', 'head')}; mean over "
        f"folds {folds}; in brackets: wrong weak labels the corrections fixed):",
        format_table(rows, ("order", *map(str, counts)), rule="columns", align="auto"),
    ]
    if fused:
        lines += [
            "",
            "text and picture together: held-out macro-F1 (± spread over folds and seeds):",
            format_table(fused, ("order", *map(str, counts)), rule="columns", align="auto"),
        ]
    if c.get("all_pool_labels_from_the_person"):
        lines.append(
            "every pool label from the person (the roof of these curves): macro-F1 "
            f"{c['all_pool_labels_from_the_person']['f1_macro']:.3f}"
        )
    m = result["marks"]
    if m is None:
        return "\n".join(lines)
    lines.append("")
    key = f"precision_at_{m['top']}"
    lines.append(
        f"anomaly marks (interesting: {', '.join(m['interesting'])}; base rate {m['base_rate']:.2f}), "
        f"precision of the top {m['top']} unmarked, with the marks / detector alone:"
    )
    lines.append(
        "  ".join(
            f"{p['marks']} marks: {p[key]:.2f} / {p[key + '_without_marks']:.2f}"
            for p in m["points"]
        )
    )
    return "\n".join(lines)


@command("simulate_review", name="simulate-review", prepare=fusion_shorthand)
def main(cfg: DictConfig) -> int:
    from astro_exp.progress import progress as progress_bar
    from astro_exp.review.queue import QUEUE_ORDERS
    from astro_exp.review.settings import ReviewSettings
    from astro_exp.review.simulate import simulate_corrections, simulate_marks

    settings = ReviewSettings.from_config(cfg.review)
    orders = [str(o) for o in _list(cfg.orders)]
    bad = [o for o in orders if o not in QUEUE_ORDERS]
    if bad:  # a wrong name fails here, in one line
        raise ConfigError(f"orders: {bad[0]!r} is no queue order; use {', '.join(QUEUE_ORDERS)}")
    if int(cfg.rounds) < 1 or int(cfg.per_round) < 1:
        raise ConfigError(f"rounds={cfg.rounds} and per_round={cfg.per_round} must be >= 1")
    learner = str(cfg.learner)
    if learner not in ("head", "finetune"):
        raise ConfigError(f"learner={learner!r} must be head or finetune")
    if learner == "finetune":
        return _finetune(cfg, settings, orders)
    pool = build_pool(cfg)
    held_out = _held_out(cfg.held_out, int(cfg.folds))
    seeds = [int(s) for s in _list(cfg.seeds)]
    runs = len(held_out) * len(seeds) * len(orders)  # every order with every seed
    bar = progress_bar(
        total=runs, enabled=bool(cfg.progress), unit="run", desc="simulating review rounds"
    )

    def say(line: str) -> None:
        log.info("%s", line)
        bar.set_postfix_str(line[:60])
        bar.update(1)

    result = {
        "gold": str(cfg.gold),
        "source": str(cfg.source.name),
        "classes": pool.classes,
        "n": len(pool.ids),
        "features": OmegaConf.to_container(cfg.features, resolve=True),
        "labels_note": "the person's labels replace weak ones only for the pictures the queue "
        "picked; the held-out fold's are used for scoring only",
        "corrections": simulate_corrections(
            pool,
            settings,
            orders=orders,
            rounds=int(cfg.rounds),
            per_round=int(cfg.per_round),
            folds=int(cfg.folds),
            held_out=held_out,
            c=float(cfg.head_C),
            dims=int(cfg.head_dims),
            correction_weight=float(cfg.correction_weight),
            seeds=seeds,
            progress=say,
        ),
        "marks": None,
    }
    bar.close()
    result["marks"] = simulate_marks(
        pool,
        settings,
        interesting=[str(c) for c in _list(cfg.marks.interesting)],
        checkpoints=[int(c) for c in _list(cfg.marks.checkpoints)],
        step=int(cfg.marks.step),
        top=int(cfg.marks.top),
        folds=int(cfg.folds),
    )
    return _write_result(result, Path(str(cfg.out)))


def _finetune(cfg: DictConfig, settings, orders: list[str]) -> int:  # noqa: ANN001
    """learner=finetune: every round trains the recipe again (astro_exp.crossval.review_rounds)."""
    from astro_exp.crossval import retrain_rounds
    from astro_exp.sources import build_imageset

    imageset = build_imageset(cfg.source)
    if imageset.task != "multiclass":
        raise ConfigError("simulate-review scores one label per picture: use task=multiclass")
    out = Path(str(cfg.out))
    train = cfg.finetune.train
    overrides = str(train).split() if isinstance(train, str) else [str(o) for o in _list(train)]
    corrections = retrain_rounds(
        overrides,
        str(cfg.gold),
        str(cfg.source.root),
        out / "runs",
        ids=list(imageset.ids),
        weak=[imageset.classes[int(t)] for t in imageset.targets],
        orders=orders,
        rounds=int(cfg.rounds),
        per_round=int(cfg.per_round),
        folds=int(cfg.folds),
        held_out_folds=_held_out(cfg.held_out, int(cfg.folds)),
        uncertainty=settings.uncertainty,
        seed=int(_list(cfg.seeds)[0]),
        progress=lambda line: log.info("%s", line),
    )
    result = {
        "gold": str(cfg.gold),
        "source": str(cfg.source.name),
        "classes": list(imageset.classes),
        "n": len(imageset),
        "labels_note": "the person's labels replace weak ones only for the pictures the queue "
        "picked; the held-out fold's are used for scoring only",
        "corrections": corrections,
        "marks": None,
    }
    return _write_result(result, out)


def _write_result(result: dict, out: Path) -> int:
    from astro_exp.files import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "simulate_review.json", json.dumps(result, indent=2) + "\n")
    plot(result, out / "learning_curve.png")
    print(format_result(result))
    print(f"\nwritten: {out / 'simulate_review.json'}, {out / 'learning_curve.png'}")
    return 0


if __name__ == "__main__":
    main()
