"""Text and picture together: the text model, the fusion weights, EM without labels, the
fused answer through predict / evaluate (``text=``, ``metadata=``), and cross-validated
figures that never read a held-out fold's careful labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from astro_exp.crossval.fused import fused_figures
from astro_exp.data.labels import build_labeller, load_label_config
from astro_exp.errors import ConfigError, DataError
from astro_exp.models.checkpoint import load_bundle, save_bundle
from astro_exp.predict.classifier import Classifier
from astro_exp.predict.fusion import (
    Fusion,
    TextModel,
    default_fusion,
    fit_em,
    fit_text_model,
    fit_weights,
    fusion_of_bundle,
    split_text,
)
from tests.conftest import ROOT, SHARED_DATA, run_script
from tests.test_predict import CLASSES, handmade_bundle, picture

FIVE = ["galaxy", "nebula", "planet", "star", "other"]


def simulated(n: int, seed: int, text_noise: float = 0.25, picture_sharp: float = 1.2):
    """Days whose picture and text are independent given the class: a picture model's
    calibrated probabilities and the labeller's per-class scores (the right class scores high
    unless the text is one of the ``text_noise`` that name another class)."""
    rng = np.random.default_rng(seed)
    c = len(FIVE)
    y = rng.integers(0, c, n)
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), y] += picture_sharp * 1.5
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    named = np.where(rng.random(n) < text_noise, rng.integers(0, c, n), y)
    scores = []
    for i in range(n):
        s = {FIVE[named[i]]: float(rng.uniform(4, 12))}
        other = rng.integers(0, c)
        s[FIVE[other]] = s.get(FIVE[other], 0.0) + float(rng.uniform(0, 2))
        scores.append(s)
    return y, P, scores


def acc(P: np.ndarray, y: np.ndarray) -> float:
    return float((P.argmax(1) == y).mean())


def test_text_model_reads_every_class_score_not_only_the_first() -> None:
    fusion = default_fusion(load_label_config("apod4"), FIVE)
    assert fusion is not None and fusion.source == "default"
    star, nebula = FIVE.index("star"), FIVE.index("nebula")
    both, star_only, nebula_only = fusion.text.proba(
        fusion.text.features([{"nebula": 2.0, "star": 12.0}, {"star": 12.0}, {"nebula": 2.0}])
    )
    # the weak "nebula" counts: more nebula than the same text without it, and the strong
    # "star" counts: more star than the weak nebula alone
    assert both[nebula] > star_only[nebula] and both[star] > nebula_only[star]
    # the first label alone would say star; the careful labels taught the model that a text
    # naming stars strongly and a nebula at all is often a nebula (clusters in their nebulae)
    assert fusion.labeller.label("Stars", "").primary == "star"


def test_no_text_or_a_text_naming_nothing_keeps_the_picture_and_says_so() -> None:
    fusion = default_fusion(load_label_config("apod4"), FIVE)
    P = np.array([[0.5, 0.2, 0.1, 0.1, 0.1]] * 3)
    fused, _, scores, has = fusion.fuse(
        P, [None, ("Untitled", "Look at this."), ("The Andromeda Galaxy", "M31 is a spiral.")]
    )
    assert has.tolist() == [False, False, True] and scores[0] == {} and scores[1] == {}
    np.testing.assert_allclose(fused[:2], P[:2])
    assert fused[2, 0] > P[2, 0] and abs(fused[2].sum() - 1) < 1e-9


def test_independent_evidence_together_beats_each_alone_and_weights_are_learnt() -> None:
    y, P, scores = simulated(1500, 0)
    tm0 = TextModel(FIVE, np.eye(5), np.zeros(5), np.ones(5) / 5)
    X = tm0.features(scores)
    tr, te = slice(0, 1000), slice(1000, None)
    tm = fit_text_model(X[tr], y[tr], FIVE)
    fused = Fusion(None, tm).combine(P[te], X[te], np.ones(500, bool))
    assert acc(fused, y[te]) > max(acc(P[te], y[te]), acc(tm.proba(X[te]), y[te])) + 0.03
    # the picture already carries the text (a picture model that learnt from the text): the
    # fitted text weight falls well below the naive product's 1
    leaky = np.exp(np.log(P) + tm.log_likelihood(X))
    leaky /= leaky.sum(1, keepdims=True)
    a, b, _ = fit_weights(leaky[tr], tm.log_likelihood(X[tr]), y[tr])
    assert b < 0.5 < a


def test_em_without_labels_comes_close_to_the_supervised_text_model() -> None:
    y, P, scores = simulated(1500, 1)
    X = TextModel(FIVE, np.eye(5), np.zeros(5), np.ones(5) / 5).features(scores)
    supervised = fit_text_model(X[:1000], y[:1000], FIVE)
    em, post = fit_em(P[:1000], X[:1000], FIVE)
    assert em.source == "em" and post.shape == (1000, 5)
    te = slice(1000, None)
    f_sup = Fusion(None, supervised).combine(P[te], X[te], np.ones(500, bool))
    f_em = Fusion(None, em).combine(P[te], X[te], np.ones(500, bool))
    assert acc(f_em, y[te]) > acc(P[te], y[te]) + 0.03
    assert acc(f_em, y[te]) > acc(f_sup, y[te]) - 0.03
    # a person's labels are kept as they are (semi-supervised): the model says "corrections"
    labels = np.full(1000, -1)
    labels[:50] = y[:50]
    semi, post = fit_em(P[:1000], X[:1000], FIVE, labels=labels)
    assert semi.source == "corrections" and (post[:50].argmax(1) == y[:50]).all()


def test_free_text_is_split_into_a_title_and_an_explanation() -> None:
    assert split_text("M16: The Eagle Nebula. Pillars.") == ("M16", "The Eagle Nebula. Pillars.")
    assert split_text("Title line\nA long explanation. Two.") == (
        "Title line",
        "A long explanation. Two.",
    )


def test_predict_with_text_fuses_and_keeps_the_picture_answer(tmp_path: Path) -> None:
    clf = Classifier.from_checkpoint(handmade_bundle(tmp_path), device="cpu", anomaly=False)
    assert clf.fusion is not None and clf.fusion.classes == CLASSES  # apod4's, over 4 classes
    a, b = picture(tmp_path / "a.png", 1), picture(tmp_path / "b.png", 2)
    texts = [("The Andromeda Galaxy", "M31, a spiral galaxy, is our neighbour."), None]
    with_text, bare = clf.predict([a, b], top_k=4, texts=texts)
    assert with_text.evidence == "picture+text" and with_text.label == "galaxy"
    assert with_text.text["label"] == "galaxy" and with_text.text["scores"]["galaxy"] > 0
    pic = with_text.picture
    assert abs(sum(pic["probs"].values()) - 1) < 1e-6 and pic["label"] in CLASSES
    assert with_text.confidence > pic["probs"]["galaxy"]
    assert bare.evidence == "picture" and bare.text is None and bare.label == bare.picture["label"]
    # by path, as metadata= gives them
    (by_name,) = clf.predict([str(a)], texts={str(a): texts[0]})
    assert by_name.label == "galaxy" and by_name.confidence == pytest.approx(with_text.confidence)
    with pytest.raises(DataError, match="one text"):
        clf.predict([a, b], texts=[None])


def test_bundle_fusion_round_trip_and_switch_off(tmp_path: Path) -> None:
    path = handmade_bundle(tmp_path)
    bundle = load_bundle(path)
    fusion = fusion_of_bundle(bundle)
    bundle["fusion"] = {**fusion.to_dict(), "picture_weight": 1.0, "text_weight": 0.0}
    save_bundle(bundle, path)
    clf = Classifier.from_checkpoint(path, device="cpu", anomaly=False)
    assert clf.fusion.text_weight == 0.0 and clf.fusion.labeller is not None
    (p,) = clf.predict([picture(tmp_path / "a.png")], texts=["The Andromeda Galaxy"], top_k=4)
    # a = 1, b = 0: the text counts for nothing, the fused answer is the picture's
    assert p.label == p.picture["label"] and p.confidence == pytest.approx(p.picture["confidence"])
    bundle["fusion"] = {"source": "none"}
    save_bundle(bundle, path)
    assert Classifier.from_checkpoint(path, device="cpu", anomaly=False).fusion is None
    with pytest.raises(ConfigError, match="no class 'comet'"):
        Fusion.from_dict(fusion.to_dict(), ["galaxy", "comet"])


def test_predict_and_evaluate_commands_read_text_and_metadata(tmp_path: Path) -> None:
    ckpt = handmade_bundle(tmp_path)
    pics = tmp_path / "pics"
    pics.mkdir()
    rows, meta = ["file,label,all"], []
    titles = ["The Whirlpool Galaxy", "The Orion Nebula", "Jupiter's Great Red Spot", "Pleiades"]
    for i in range(8):
        picture(pics / f"x{i}.png", seed=30 + i)
        rows.append(f"x{i}.png,{CLASSES[i % 4]},{CLASSES[i % 4]}")
        meta.append(json.dumps({"file": f"x{i}.png", "title": titles[i % 4], "explanation": ""}))
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    (pics / "metadata.jsonl").write_text("\n".join(meta) + "\n")
    out = tmp_path / "eval"
    done = run_script(
        [
            "scripts/evaluate.py",
            f"ckpt_path={ckpt}",
            f"labels={tmp_path / 'labels.csv'}",
            f"root={pics}",
            f"metadata={pics / 'metadata.jsonl'}",
            f"out={out}",
            "progress=false",
        ]
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "metrics.json").read_text())
    # an untrained picture model, texts that name each class: together every picture is right
    assert report["metrics"]["acc"] == 1.0 and report["picture_only"]["with_text"] == 1.0
    assert report["picture_only"]["metrics"]["acc"] < 1.0
    assert report["picture_only"]["fusion"]["source"] == "default"
    assert {p["evidence"] for p in report["pictures"]} == {"picture+text"}
    assert "the picture alone" in done.stdout
    jsonl = tmp_path / "preds.jsonl"
    done = run_script(
        [
            "scripts/predict.py",
            f"ckpt_path={ckpt}",
            f"inputs=[{pics / 'x1.png'}]",
            "text=The Orion Nebula: a stellar nursery, 1,500 light-years away.",
            f"output={jsonl}",
            "progress=false",
        ]
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(jsonl.read_text())
    assert got["label"] == "nebula" and got["evidence"] == "picture+text"
    assert got["picture"]["label"] in CLASSES and "text nebula" in done.stdout
    many = run_script(
        [
            "scripts/predict.py",
            f"ckpt_path={ckpt}",
            f"inputs=[{pics / 'x1.png'},{pics / 'x2.png'}]",
            "text=The Orion Nebula",
        ]
    )
    assert many.returncode == 2 and "metadata=" in many.stderr
    assert many.stderr.strip().count("\n") == 0


def test_crossval_fusion_never_reads_the_held_out_folds_labels() -> None:
    y, P, scores = simulated(600, 2)
    labeller = build_labeller(load_label_config("apod4"))
    words = {
        "galaxy": "spiral galaxy",
        "nebula": "emission nebula",
        "planet": "Jupiter",
        "star": "star cluster",
        "other": "aurora",
    }
    texts = {f"f{i}.jpg": (words[max(s, key=s.get)], "") for i, s in enumerate(scores)}
    default = Fusion(labeller, default_fusion(load_label_config("apod4"), FIVE).text)
    records = [
        {"fold": i % 3, "file": f"f{i}.jpg", "label": FIVE[y[i]], "all": [FIVE[y[i]]], "probs": p}
        for i, p in enumerate(P.tolist())
    ]
    figs = fused_figures(records, texts, default, FIVE, keep_probs=True)
    assert figs["corrections"]["pooled"]["acc"] > figs["picture"]["pooled"]["acc"] + 0.05
    assert figs["em"]["pooled"]["acc"] > figs["picture"]["pooled"]["acc"]
    # scramble fold 0's careful labels: fold 0 is labelled by a fusion fitted on folds 1 and 2
    # alone, so its answers stay exactly the same; folds 1 and 2 learnt from fold 0's labels
    rng = np.random.default_rng(0)
    scrambled = [{**r, "label": FIVE[rng.integers(0, 5)]} if r["fold"] == 0 else r for r in records]
    again = fused_figures(scrambled, texts, default, FIVE, keep_probs=True)
    fold0 = np.array([r["fold"] == 0 for r in records])
    before, after = figs["probs"]["corrections"], again["probs"]["corrections"]
    np.testing.assert_array_equal(before[fold0], after[fold0])
    assert not np.allclose(before[~fold0], after[~fold0])
    # EM reads no careful label at all: nothing moves
    np.testing.assert_array_equal(figs["probs"]["em"], again["probs"]["em"])


@pytest.mark.skipif(not (SHARED_DATA / "apod-thumbs").is_dir(), reason="needs ../shared/data")
def test_shipped_text_model_on_the_shared_thumbnails_texts() -> None:
    """The default text model against gold.csv (in-sample: it was fitted on these labels, as
    conf/labels/apod4.yaml says): it must read every text at least as well as the rules'
    first label does."""
    from astro_exp.data.label_files import read_label_file
    from astro_exp.predict.texts import MetadataSpec, read_texts

    thumbs = SHARED_DATA / "apod-thumbs"
    texts = read_texts(MetadataSpec(file=str(thumbs / "metadata.jsonl"), title_from_filename=True))
    gold = read_label_file(thumbs / "gold.csv")
    fusion = default_fusion(load_label_config("apod4"), FIVE)
    scores = fusion.scores([texts[g.file] for g in gold])
    y = np.array([FIVE.index(g.label) for g in gold])
    text_acc = acc(fusion.text.proba(fusion.text.features(scores)), y)
    rules = np.mean([fusion.labeller.label(*texts[g.file]).primary == g.label for g in gold])
    assert text_acc >= rules - 0.01 and text_acc > 0.85
    assert (ROOT / "conf" / "labels" / "apod4.yaml").read_text().count("evidence:") == 1


def test_a_synthetic_run_ships_the_default_fusion_and_says_so(make_cfg, tmp_path: Path) -> None:
    from astro_exp.train import train
    from tests.test_train import TINY

    run_dir = tmp_path / "run"
    metrics = train(make_cfg([*TINY, "anomaly.enabled=false"], run_dir=run_dir))
    bundle = load_bundle(run_dir / "checkpoints" / "best.pt")
    assert metrics["fusion/source"] == "default" and bundle["fusion"]["source"] == "default"
    fusion = Fusion.from_dict(bundle["fusion"], bundle["classes"])
    assert fusion.classes == bundle["classes"] and fusion.labeller is not None
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["fusion/source"] == "default"
    # fusion=none: the bundle says the picture alone, and predict obeys
    off = tmp_path / "off"
    train(make_cfg([*TINY, "anomaly.enabled=false", "fusion.source=none"], run_dir=off))
    assert Classifier.from_checkpoint(off / "checkpoints" / "best.pt", anomaly=False).fusion is None
    with pytest.raises(ConfigError, match="fusion.source='best'"):
        train(make_cfg([*TINY, "fusion.source=best"], run_dir=tmp_path / "bad"))


@pytest.mark.skipif(not (SHARED_DATA / "apod-thumbs").is_dir(), reason="needs ../shared/data")
def test_em_and_corrections_refit_the_text_model_in_a_real_picture_run(
    make_cfg, tmp_path: Path
) -> None:
    """The shared thumbnails' texts: fusion.source=em fits with no careful labels; with a
    person's labels file and too few of them for min_corrections, the default, said so."""
    from astro_exp.train import train

    thumbs = SHARED_DATA / "apod-thumbs"
    base = ["debug=fast", "source=apod_thumbs", f"source.root={thumbs}", "logger=none"]
    base += ["source.include_other=true"]
    base += ["anomaly.enabled=false", "trainer.max_epochs=1"]
    em = train(make_cfg([*base, "fusion.source=em"], run_dir=tmp_path / "em"))
    bundle = load_bundle(tmp_path / "em" / "checkpoints" / "best.pt")
    assert em["fusion/source"] == "em" and bundle["fusion"]["text_model"]["source"] == "em"
    assert em["fusion/n_texts"] > 10 and "texts" in bundle["fusion"]["fitted_on"]
    labels = tmp_path / "mine.csv"
    labels.write_text("file,label\nimages/2MASS_J175540426551277.jpg,star\n")
    few = train(
        make_cfg(
            [*base, "fusion.source=corrections", f"source.corrections={labels}"],
            run_dir=tmp_path / "few",
        )
    )
    assert few["fusion/source"] == "default" and few["fusion/fell_back"] == 1.0


@pytest.mark.skipif(not (SHARED_DATA / "apod-archive").is_dir(), reason="needs ../shared/data")
def test_the_shipped_evidence_is_what_fit_evidence_makes(capsys) -> None:
    """conf/labels/apod4.yaml's text model is reproducible from the named files."""
    import yaml

    from astro_exp.crossval.fit_evidence import main

    assert main([]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)["evidence"]
    shipped = yaml.safe_load((ROOT / "conf" / "labels" / "apod4.yaml").read_text())["evidence"]
    for key in ("classes", "n"):
        assert printed[key] == shipped[key]
    for key in ("coef", "intercept", "prior"):
        np.testing.assert_allclose(printed[key], shipped[key], atol=1e-5)
