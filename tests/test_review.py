"""The review loop without the web app: queue orders, the anomaly-mark vote, the settings,
and the simulation (on a synthetic pool, and end to end on the shared thumbnails)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from astro_exp.errors import ConfigError
from astro_exp.review.feedback import MarkVote, rerank, robust_z
from astro_exp.review.queue import disagreement, review_order, uncertainty
from astro_exp.review.settings import ORDERS, ReviewSettings
from astro_exp.review.simulate import Pool, simulate_corrections, simulate_marks
from tests.conftest import ROOT, SHARED_DATA

CLASSES = ["galaxy", "nebula", "star"]
PROBS = np.array(
    [
        [0.98, 0.01, 0.01],  # sure galaxy
        [0.40, 0.35, 0.25],  # unsure
        [0.05, 0.90, 0.05],  # sure nebula
        [0.34, 0.33, 0.33],  # the least sure
        [0.10, 0.10, 0.80],  # fairly sure star
    ]
)
KEYS = [f"pic{i}" for i in range(len(PROBS))]


def test_uncertainty_ranks_the_least_sure_first() -> None:
    for measure in ("margin", "entropy"):
        order = review_order(
            "uncertainty", keys=KEYS, probs=PROBS, classes=CLASSES, measure=measure
        )
        assert list(order[:2]) == [3, 1] and order[-1] == 0
    u = uncertainty(np.array([[0.5, 0.5], [1.0, 0.0]]), "margin")
    assert u[0] == pytest.approx(1.0) and u[1] == pytest.approx(0.0, abs=1e-9)
    multi = uncertainty(np.array([[0.5, 0.99], [0.01, 0.99]]), "margin", multilabel=True)
    assert multi[0] > multi[1]  # a class at 0.5 is the least sure a multi-label answer gets


def test_disagreement_puts_sure_disagreements_first() -> None:
    weak = ["nebula", "galaxy", "nebula", "galaxy", "galaxy"]  # 0 and 4 disagree, 0 surely
    order = review_order("disagreement", keys=KEYS, probs=PROBS, classes=CLASSES, weak=weak)
    assert list(order[:2]) == [0, 4]
    d = disagreement(PROBS, CLASSES, weak)
    assert (d[[0, 4]] > 1).all() and (d[[1, 2, 3]] < 1).all()
    # then the agreements, least certain first; no weak label counts as agreeing
    assert list(order[2:]) == [3, 1, 2]
    d_none = disagreement(PROBS, CLASSES, [None] * 5)
    assert (d_none < 1).all()


def test_anomaly_and_random_orders() -> None:
    scores = [0.1, None, 3.0, 2.0, 0.5]
    assert list(review_order("anomaly", keys=KEYS, anomaly=scores)) == [2, 3, 4, 0, 1]
    a = review_order("random", keys=KEYS, seed=0)
    assert sorted(a) == list(range(5))
    assert list(review_order("random", keys=KEYS, seed=0)) == list(a)  # the same on every call
    shuffles = {tuple(review_order("random", keys=KEYS, seed=s)) for s in range(6)}
    assert len(shuffles) > 1
    # a new picture does not reshuffle the others
    b = review_order("random", keys=[*KEYS, "new"], seed=0)
    assert [i for i in b if i != 5] == list(a)
    with pytest.raises(ConfigError, match="review.order='best'"):
        review_order("best", keys=KEYS)


def test_pictures_without_a_prediction_go_last() -> None:
    probs = PROBS.copy()
    probs[3] = np.nan
    order = review_order("uncertainty", keys=KEYS, probs=probs, classes=CLASSES)
    assert order[-1] == 3 and order[0] == 1


def test_settings_come_from_the_yaml_and_refuse_typos() -> None:
    s = ReviewSettings.from_config(None)
    assert s.order in ORDERS and s.feedback.strength > 0
    t = ReviewSettings.from_config({"order": "random", "feedback": {"strength": 1}})
    assert t.order == "random" and t.feedback.strength == 1.0
    assert t.feedback.neighbours == s.feedback.neighbours  # the rest from the YAML
    for bad, match in (
        ({"ordr": "random"}, "unknown settings"),
        ({"order": "best"}, "must be one of"),
        ({"feedback": {"strenght": 1}}, "unknown settings"),
        ({"feedback": {"neighbours": 0}}, "neighbours >= 1"),
        ({"uncertainty": "gini"}, "margin or entropy"),
    ):
        with pytest.raises(ConfigError, match=match):
            ReviewSettings.from_config(bad)


def _clusters(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight clusters of embeddings along orthogonal axes; label = cluster."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 5
    emb = np.concatenate([c + rng.normal(0, 0.3, (n, 16)) for c in centres])
    return emb.astype(np.float32), np.repeat(np.arange(3), n)


def test_marks_sink_look_alikes_of_boring_pictures_and_lift_interesting_ones() -> None:
    emb, cluster = _clusters()
    scores = np.random.default_rng(1).normal(0, 1, len(emb)) + np.where(cluster == 0, 3.0, 0.0)
    settings = ReviewSettings.from_config(None).feedback
    plain = robust_z(scores)
    boring = np.flatnonzero(cluster == 0)[:2]
    exciting = np.flatnonzero(cluster == 2)[:1]
    marked = np.concatenate([boring, exciting])
    ranked = rerank(scores, emb, emb[marked], np.array([False, False, True]), settings)
    # cluster 0 (marked boring) fell below cluster 2 (marked interesting); cluster 1 is unmoved
    assert ranked[cluster == 0].max() < ranked[cluster == 2].min()
    assert np.allclose(ranked[cluster == 1], plain[cluster == 1], atol=1e-3)
    assert np.allclose(rerank(scores, emb, emb[:0], np.zeros(0, bool), settings), plain)
    vote = MarkVote.fit(emb[boring], np.array([False, False]), emb, settings).vote(emb)
    assert (vote[cluster == 0] < -0.2).all() and np.median(vote[cluster == 0]) < -0.7
    assert np.abs(vote[cluster != 0]).max() < 1e-3


def _pool(n_per: int = 60, noise: float = 0.3, seed: int = 0) -> Pool:
    """A pool whose features separate the classes and whose weak labels are wrong at
    ``noise`` rate: corrections can only help."""
    rng = np.random.default_rng(seed)
    person = np.repeat(np.arange(3), n_per)
    feats = np.eye(3, 32)[person] * 2 + rng.normal(0, 1.0, (len(person), 32))
    weak = person.copy()
    flip = rng.random(len(person)) < noise
    weak[flip] = (person[flip] + 1) % 3
    return Pool(
        ids=[f"images/p{i:03d}.jpg" for i in range(len(person))],
        classes=list(CLASSES),
        features=feats.astype(np.float32),
        anomaly_features=feats.astype(np.float32),
        weak=weak,
        person=person,
    )


def test_simulated_corrections_find_wrong_weak_labels() -> None:
    pool = _pool()
    r = simulate_corrections(
        pool,
        ReviewSettings.from_config(None),
        orders=["disagreement", "random"],
        rounds=2,
        per_round=15,
        held_out=[0, 1],
        dims=16,
        seeds=[0, 1],
    )
    curves = r["curves"]
    assert [p["corrections"] for p in curves["random"]] == [0, 15, 30]
    assert curves["random"][0]["runs"] == 4 and curves["disagreement"][0]["runs"] == 4
    # the disagreement queue fixes far more wrong weak labels per correction than chance
    assert curves["disagreement"][-1]["weak_fixed"] > 1.5 * curves["random"][-1]["weak_fixed"]
    assert all(0 <= p["f1_macro"] <= 1 for c in curves.values() for p in c)
    assert set(r["gain_f1_macro"]) == {"disagreement", "random"}


def test_simulated_corrections_teach_the_fused_text_and_picture_answer() -> None:
    """Texts that name the right class 80% of the time: the fused answer beats the picture's
    from the first round (EM, no careful labels), and the text_picture order runs."""
    base = _pool(noise=0.3, seed=3)
    rng = np.random.default_rng(4)
    named = np.where(
        rng.random(len(base.person)) < 0.8, base.person, rng.integers(0, 3, len(base.person))
    )
    X = np.zeros((len(named), 3))
    X[np.arange(len(named)), named] = np.log1p(8.0)
    has = np.ones(len(named), bool)
    has[::10] = False  # a tenth without text: the picture alone for them
    pool = Pool(**{**base.__dict__, "text_features": X, "has_text": has})
    r = simulate_corrections(
        pool,
        ReviewSettings.from_config(None),
        orders=["text_picture", "random"],
        rounds=2,
        per_round=15,
        held_out=[0, 1],
        dims=16,
        seeds=[0, 1],
    )
    for curve in r["curves"].values():
        assert all(p["fused_f1_macro"] > p["f1_macro"] for p in curve)
        assert "fused_f1_macro_sd" in curve[0]
    assert set(r["gain_fused_f1_macro"]) == {"text_picture", "random"}


def test_simulated_marks_report_both_rankings() -> None:
    pool = _pool(noise=0.0)
    r = simulate_marks(
        pool, ReviewSettings.from_config(None), interesting=["star"], checkpoints=[0, 10], top=10
    )
    assert [p["marks"] for p in r["points"]] == [0, 10]
    assert r["points"][0]["precision_at_10"] == r["points"][0]["precision_at_10_without_marks"]
    assert r["base_rate"] == pytest.approx(1 / 3)
    with pytest.raises(ConfigError, match="not classes"):
        simulate_marks(pool, ReviewSettings.from_config(None), interesting=["comet"])


@pytest.mark.skipif(not (SHARED_DATA / "apod-thumbs").is_dir(), reason="no shared thumbnails")
def test_simulate_review_command_on_the_shared_thumbnails(tmp_path: Path) -> None:
    from astro_exp.cli.simulate_review import main

    out = tmp_path / "sim"
    assert (
        main(
            [
                "source.limit=120",
                "features.image_size=64",
                "rounds=1",
                "per_round=10",
                "held_out=[0]",
                "seeds=[0]",
                "head_dims=32",
                "orders=[uncertainty,random]",
                "marks.checkpoints=[0,5]",
                "progress=false",
                f"paths.cache_dir={tmp_path / 'cache'}",
                f"out={out}",
            ]
        )
        == 0
    )
    result = json.loads((out / "simulate_review.json").read_text())
    assert result["classes"][-1] == "other" and result["n"] >= 100
    assert set(result["corrections"]["curves"]) == {"uncertainty", "random"}
    assert [p["corrections"] for p in result["corrections"]["curves"]["random"]] == [0, 10]
    assert (out / "learning_curve.png").stat().st_size > 5000
    assert ROOT.joinpath("scripts", "simulate_review.py").is_file()


def test_simulate_review_refuses_bad_settings(tmp_path: Path, capsys) -> None:
    from astro_exp.cli.simulate_review import main

    with pytest.raises(SystemExit) as e:
        main(["orders=[uncertainty,best]", f"out={tmp_path}"])
    assert e.value.code == 2 and "'best' is no queue order" in capsys.readouterr().err


def _thumbs_folder(root: Path) -> Path:
    """A tiny APOD-like folder: coloured pictures, metadata titles (a quarter of them name the
    wrong class: wrong weak labels) and the person's labels (the colours' classes)."""
    from PIL import Image

    colours = {"galaxy": (200, 60, 40), "nebula": (40, 200, 60), "planet": (40, 60, 200)}
    titles = {
        "galaxy": "Spiral Galaxy NGC 1232",
        "nebula": "The Rosette Nebula",
        "planet": "Jupiter's Great Red Spot",
    }
    names = list(colours)
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    meta, gold = [], ["file,label"]
    for c, colour in colours.items():
        for i in range(10):
            rel = f"images/{c}_{i}.jpg"
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (36, 48, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / rel)
            said = names[(names.index(c) + 1) % 3] if i % 4 == 0 else c
            meta.append(json.dumps({"file": rel, "candidates": [{"title": titles[said]}]}))
            gold.append(f"{rel},{c}")
    (root / "metadata.jsonl").write_text("\n".join(meta) + "\n")
    (root / "gold.csv").write_text("\n".join(gold) + "\n")
    return root


@pytest.mark.slow
def test_simulate_review_finetune_retrains_with_each_rounds_corrections(tmp_path: Path) -> None:
    """learner=finetune: round 0 trains on weak labels, each round the queue picks from the
    last run's predictions and the recipe trains again with every correction so far."""
    from astro_exp.cli.simulate_review import main
    from astro_exp.data.splits import fold_of

    root = _thumbs_folder(tmp_path / "thumbs")
    out = tmp_path / "sim"
    source = [f"source.root={root}", "source.include_other=false"]
    quiet = ["trainer.progress=false", "anomaly.enabled=false"]
    recipe = " ".join(["debug=fast", "source=apod_thumbs", *source, *quiet])
    loop = ["folds=2", "held_out=[0]", "rounds=2", "per_round=4", "orders=[disagreement]"]
    args = [*source, f"gold={root / 'gold.csv'}", "learner=finetune", f"finetune.train='{recipe}'"]
    args += [*loop, f"paths.cache_dir={tmp_path / 'cache'}", "progress=false", f"out={out}"]
    assert main(args) == 0
    result = json.loads((out / "simulate_review.json").read_text())
    curve = result["corrections"]["curves"]["disagreement"]
    assert result["corrections"]["learner"] == "finetune" and result["marks"] is None
    assert [p["corrections"] for p in curve] == [0, 4, 8]
    assert result["corrections"]["weak_wrong"] == 9  # i % 4 == 0 of 10, for 3 classes
    person = dict(line.split(",") for line in (root / "gold.csv").read_text().split()[1:])
    picked: list[dict[str, str]] = []
    for r in (1, 2):
        run = out / "runs" / "fold0" / "disagreement" / f"round{r}"
        rows = dict(line.split(",") for line in (run / "corrections.csv").read_text().split()[1:])
        assert len(rows) == 4 * r and all(person[f] == lab for f, lab in rows.items())
        assert all(fold_of(f, 2) == 1 for f in rows)  # never a picture of the held-out fold
        summary = json.loads((run / "metrics.json").read_text())
        assert summary["data/n_corrections"] == 4 * r  # the run trained with them
        picked.append(rows)
    assert picked[0].items() <= picked[1].items()  # corrections add up over the rounds
    assert (out / "learning_curve.png").stat().st_size > 5000
    stamp = (out / "runs" / "fold0" / "round0" / "checkpoints" / "best.pt").stat().st_mtime_ns
    assert main(args) == 0  # a second call reuses the finished runs
    assert (
        out / "runs" / "fold0" / "round0" / "checkpoints" / "best.pt"
    ).stat().st_mtime_ns == stamp


def test_simulate_review_finetune_refuses_the_anomaly_order(tmp_path: Path, capsys) -> None:
    from astro_exp.cli.simulate_review import main

    root = _thumbs_folder(tmp_path / "thumbs")
    with pytest.raises(SystemExit) as e:
        main(
            [f"source.root={root}", f"gold={root / 'gold.csv'}", "learner=finetune"]
            + ["orders=[anomaly]", f"out={tmp_path / 'sim'}"]
        )
    assert e.value.code == 2 and "learner=finetune orders ['anomaly']" in capsys.readouterr().err
