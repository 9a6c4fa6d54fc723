"""Prediction: every kind of input (files, folders, globs, URLs from a local server, PIL,
tensors), every bad input as an error row, calibrated confidences, the JSONL/CLI contract,
and a bundle round trip into a fresh process with identical logits."""

from __future__ import annotations

import functools
import http.server
import json
import runpy
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from astro_exp.anomaly.detectors import (
    DETECTOR_FILE,
    REFERENCE_FILE,
    AnomalyDetector,
    save_reference,
)
from astro_exp.anomaly.embeddings import model_digest
from astro_exp.errors import CheckpointError
from astro_exp.models.checkpoint import make_bundle, save_bundle
from astro_exp.models.factory import create_model
from astro_exp.predict.classifier import FIELDS, Classifier, Prediction
from tests.conftest import ROOT, run_script

CLASSES = ["galaxy", "nebula", "planet", "star"]
PRE = {
    "name": "default",
    "image_size": 32,
    "resize": "crop",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "stretch": None,
    "clahe": False,
    "denoise": False,
}


def handmade_bundle(
    folder: Path,
    task: str = "multiclass",
    thresholds: list[float] | None = None,
    temperature: float = 1.7,
) -> Path:
    """A tiny untrained bundle with a detector and reference beside it (no training: fast)."""
    torch.manual_seed(0)
    model = create_model("test_resnet", len(CLASSES))
    model_cfg = {
        "name": "tiny",
        "model_name": "test_resnet",
        "drop_rate": 0.0,
        "drop_path_rate": 0.0,
    }
    bundle = make_bundle(
        model,
        model_cfg=model_cfg,
        classes=CLASSES,
        task=task,
        preprocess=PRE,
        image_size=32,
        temperature=temperature,
        thresholds=thresholds,
    )
    path = save_bundle(bundle, folder / "best.pt")
    clf = Classifier.from_checkpoint(path, device="cpu")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (60, 3, 32, 32), dtype=np.uint8))
    _, emb = clf.forward(x)
    emb = emb.numpy()
    det = AnomalyDetector({"_target_": "pyod.models.knn.KNN", "n_neighbors": 3}).fit(emb[:40])
    det.calibrate(det.score(emb[40:]), 0.1)
    digest = model_digest(clf.model)
    det.meta = {"digest": digest, "n_neighbors": 3}
    det.save(folder / DETECTOR_FILE)
    save_reference(
        folder / REFERENCE_FILE,
        emb[:40],
        [CLASSES[i % 4] for i in range(40)],
        [f"train-{i:03d}" for i in range(40)],
        digest,
    )
    return path


def picture(path: Path, seed: int = 0, size: tuple[int, int] = (48, 40)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return handmade_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def clf(bundle_path: Path) -> Classifier:
    return Classifier.from_checkpoint(bundle_path, device="cpu")


@pytest.fixture
def pics(tmp_path: Path) -> Path:
    """pics/a.png, pics/sub/b.jpg, pics/sub/deeper/c.png, pics/notes.txt"""
    (tmp_path / "pics" / "sub" / "deeper").mkdir(parents=True)
    picture(tmp_path / "pics" / "a.png", 1)
    picture(tmp_path / "pics" / "sub" / "b.jpg", 2)
    picture(tmp_path / "pics" / "sub" / "deeper" / "c.png", 3, size=(500, 300))
    (tmp_path / "pics" / "notes.txt").write_text("not a picture, and not picked up from a folder")
    return tmp_path / "pics"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/www`` from a thread."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()


def ok(p: Prediction) -> bool:
    return p.error is None and p.label in CLASSES and p.confidence is not None


# -- inputs ---------------------------------------------------------------------------------------
def test_files_folders_globs_pil_and_tensors(clf: Classifier, pics: Path) -> None:
    batch = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    inputs = [
        str(pics / "a.png"),
        pics / "sub",
        f"{pics}/**/*.png",
        Image.open(pics / "a.png"),
        batch,
        batch[0].float() / 255,
        np.zeros((20, 30, 3), np.uint8),
    ]
    preds = clf.predict(inputs, top_k=2, batch_size=4)
    names = [p.input for p in preds]
    assert names == [
        str(pics / "a.png"),
        str(pics / "sub" / "b.jpg"),
        str(pics / "sub" / "deeper" / "c.png"),
        str(pics / "a.png"),
        str(pics / "sub" / "deeper" / "c.png"),
        "<PIL image 3>",
        "<tensor 4[0]>",
        "<tensor 4[1]>",
        "<tensor 4[2]>",
        "<tensor 5>",
        "<array 6>",
    ]
    assert all(ok(p) for p in preds), [p.error for p in preds if p.error]
    # the same picture by path, by glob and as a PIL image gives the same answer
    assert preds[0].top_k == preds[3].top_k == preds[5].top_k
    # a uint8 tensor and the same pixels as floats in [0, 1] give the same answer
    assert preds[6].top_k == preds[9].top_k
    for p in preds:
        assert len(p.top_k) == 2 and p.top_k[0]["label"] == p.label and p.labels == [p.label]
        assert p.anomaly_score is not None and isinstance(p.is_anomaly, bool)
        assert len(p.neighbours) == 3 and all(n["id"].startswith("train-") for n in p.neighbours)
        assert [n["distance"] for n in p.neighbours] == sorted(n["distance"] for n in p.neighbours)


def test_one_picture_alone_gets_the_answer_it_gets_in_a_batch(clf: Classifier, pics: Path) -> None:
    """A single input is decoded inline (no thread pool); the answer is the batch's."""
    big = pics / "big.jpg"
    Image.open(picture(pics / "big.png", 5, size=(900, 700))).save(big, quality=90)  # drafted
    for name in ("a.png", "big.jpg"):
        (alone,) = clf.predict([pics / name])
        in_batch = clf.predict([pics / "sub" / "b.jpg", pics / name, pics / "a.png"], batch_size=2)[
            1
        ]
        assert alone.error is None and alone.label == in_batch.label  # to float rounding:
        for a, b in zip(alone.top_k, in_batch.top_k, strict=True):  # batch size 1 vs 2
            assert a["label"] == b["label"] and a["probability"] == pytest.approx(b["probability"])
        assert alone.anomaly_score == pytest.approx(in_batch.anomaly_score, rel=1e-5)
        assert [n["id"] for n in alone.neighbours] == [n["id"] for n in in_batch.neighbours]
    # decoding inline (a CPU with no spare core) or on threads beside the model: same answers
    inline = [p.to_dict() for p in clf.predict([pics], batch_size=2)]
    clf.decode_workers = 2
    try:
        assert [p.to_dict() for p in clf.predict([pics], batch_size=2)] == inline
    finally:
        clf.decode_workers = None


def test_every_bad_input_is_an_error_row_and_the_rest_go_on(
    clf: Classifier, pics: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    full = (pics / "sub" / "b.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (tmp_path / "fake.png").write_text("<html>not a picture</html>")
    picture(tmp_path / "huge.png", 5, size=(300, 300))
    big_file = clf.max_bytes
    clf.max_bytes = (tmp_path / "huge.png").stat().st_size - 1  # "too large" by bytes
    try:
        preds = clf.predict(
            [
                tmp_path / "missing.jpg",
                tmp_path / "truncated.jpg",
                tmp_path / "fake.png",
                tmp_path / "huge.png",
                tmp_path / "empty",
                f"{tmp_path}/*.tif",
                np.zeros((5, 5, 7)),
                object(),
                pics / "a.png",
            ]
        )
    finally:
        clf.max_bytes = big_file
    errors = [p.error for p in preds]
    assert all(e is not None for e in errors[:-1]) and ok(preds[-1]), errors
    assert "no such file" in errors[0]
    assert "truncated" in errors[1] or "not a readable picture" in errors[1]
    assert "not a readable picture" in errors[2]
    assert "byte limit" in errors[3] and "raise max_bytes" in errors[3]
    assert "no pictures" in errors[4] and "matches no files" in errors[5]
    assert "not a picture" in errors[6] and "pass paths" in errors[7]
    for p in preds[:-1]:
        assert "\n" not in p.error and p.label is None and p.top_k == [] and p.anomaly_score is None

    # too large to decode safely (the decompression-bomb guard stays on)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    (bomb,) = clf.predict([pics / "sub" / "deeper" / "c.png"])
    assert bomb.error and "too large" in bomb.error


def test_url_inputs_through_the_polite_session(bundle_path: Path, pics: Path, server) -> None:
    from astro_exp.net.session import PoliteSession

    base, www = server
    (www / "m31.png").write_bytes((pics / "a.png").read_bytes())
    (www / "page.html").write_text("<html>hello</html>")
    picture(www / "big.png", 9, size=(400, 400))
    session = PoliteSession(rate_limit_per_host=1000.0, retries=0)
    limit = (www / "big.png").stat().st_size - 1
    clf = Classifier.from_checkpoint(
        bundle_path, device="cpu", http_session=session, max_bytes=limit
    )
    preds = clf.predict(
        [
            f"{base}/m31.png",
            f"{base}/nope.jpg",
            f"{base}/page.html",
            f"{base}/big.png",
            pics / "a.png",
        ]
    )
    by_url, local = preds[0], preds[-1]
    assert ok(by_url) and by_url.input == f"{base}/m31.png"
    assert by_url.top_k == local.top_k and by_url.anomaly_score == local.anomaly_score
    assert "404" in preds[1].error
    assert "not image/" in preds[2].error or "text/html" in preds[2].error
    assert "limit" in preds[3].error
    assert session.stats["requests"] >= 4


# -- outputs -------------------------------------------------------------------------------------
def test_confidences_are_calibrated_and_sum_to_one(clf: Classifier, pics: Path) -> None:
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    preds = clf.predict(x, top_k=10)
    logits, _ = clf.forward(x)
    expected = torch.softmax(logits.double() / clf.temperature, -1).numpy()
    assert clf.temperature == pytest.approx(1.7)
    for p, row in zip(preds, expected, strict=True):
        assert len(p.top_k) == len(CLASSES)  # top_k is clipped to the number of classes
        assert sum(t["probability"] for t in p.top_k) == pytest.approx(1.0, abs=1e-9)
        assert (
            p.confidence == pytest.approx(row.max()) and p.confidence == p.top_k[0]["probability"]
        )
        # float32 convolutions may differ in the last bit between two passes (thread split)
        assert [t["probability"] for t in p.top_k] == pytest.approx(
            sorted(row, reverse=True), rel=1e-6, abs=1e-9
        )


def test_multilabel_lists_every_label_over_its_threshold(tmp_path: Path) -> None:
    thresholds = [0.0, 1.0, 0.0, 0.5]
    clf = Classifier.from_checkpoint(
        handmade_bundle(tmp_path, "multilabel", thresholds), device="cpu"
    )
    (p,) = clf.predict(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), top_k=4)
    probs = {t["label"]: t["probability"] for t in p.top_k}
    assert "galaxy" in p.labels and "planet" in p.labels and "nebula" not in p.labels
    assert ("star" in p.labels) == (probs["star"] >= 0.5)
    assert p.confidence == max(probs.values()) and 0 < sum(probs.values()) < 4


def test_prediction_dict_has_exactly_the_documented_fields() -> None:
    assert tuple(Prediction(input="x").to_dict()) == FIELDS


def test_checkpoint_problems_are_one_line_errors(tmp_path: Path, pics: Path) -> None:
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage" * 10)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    for name, words in (
        ("missing.pt", "not found"),
        ("corrupt.pt", "corrupt"),
        ("other.pt", "not an astro-exp"),
    ):
        with pytest.raises(CheckpointError, match=words) as info:
            Classifier.from_checkpoint(tmp_path / name)
        assert "\n" not in str(info.value)


def test_a_detector_for_other_weights_is_not_used(tmp_path: Path) -> None:
    path = handmade_bundle(tmp_path)
    det = AnomalyDetector.load(tmp_path / DETECTOR_FILE)
    det.meta["digest"] = "something-else"
    det.save(tmp_path / DETECTOR_FILE)
    clf = Classifier.from_checkpoint(path, device="cpu")
    (p,) = clf.predict(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert ok(p) and p.anomaly_score is None and p.is_anomaly is None and p.neighbours == []


# -- the CLI -------------------------------------------------------------------------------------
def run_cli(
    args: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """scripts/predict.py in this process (a subprocess costs seconds of imports each)."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / "scripts" / "predict.py"), *args])
    GlobalHydra.instance().clear()
    capsys.readouterr()
    code = 0
    try:
        runpy.run_path(str(ROOT / "scripts" / "predict.py"), run_name="__main__")
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        GlobalHydra.instance().clear()
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_table_jsonl_and_exit_codes(
    bundle_path: Path, pics: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    out = tmp_path / "preds.jsonl"
    res = run_script(
        [
            str(ROOT / "scripts" / "predict.py"),
            f"ckpt_path={bundle_path}",
            f"inputs=[{pics},{tmp_path}/nope.jpg]",
            f"output={out}",
            "top_k=2",
            "batch_size=2",
            "progress=false",
        ],
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(tuple(r) == FIELDS for r in rows)
    assert [r["error"] is None for r in rows] == [True, True, True, False]
    assert rows[0]["label"] in CLASSES and len(rows[0]["top_k"]) == 2 and rows[0]["neighbours"]
    assert "a.png" in res.stdout and "nope.jpg" in res.stdout and "error: " in res.stdout
    assert not (tmp_path / "outputs").exists()  # predict writes no Hydra run folder

    monkeypatch.chdir(tmp_path)
    code, stdout, _ = run_cli(
        [
            f"ckpt_path={bundle_path}",
            f"inputs=[{tmp_path}/nope.jpg,{tmp_path}/nix/]",
            "progress=false",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 1 and "no such file" in stdout, (stdout, _)  # every input failed

    code, _, _ = run_cli(
        [f"ckpt_path={bundle_path}", f"inputs={pics}/a.png", "progress=false"], capsys, monkeypatch
    )
    assert code == 0  # a single input needs no brackets

    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a zip")
    for ckpt in (tmp_path / "missing.pt", tmp_path / "corrupt.pt", pics / "a.png"):
        code, _, err = run_cli([f"ckpt_path={ckpt}", f"inputs=[{pics}]"], capsys, monkeypatch)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err


# -- a real trained bundle, loaded in a fresh process ---------------------------------------------
@pytest.mark.slow
def test_bundle_round_trip_in_a_fresh_process_gives_identical_logits(
    make_cfg, tmp_path: Path, pics: Path
) -> None:
    from astro_exp.train import train

    run = tmp_path / "run"
    train(
        make_cfg(
            [
                "model=tiny",
                "logger=none",
                "source.per_class=20",
                "preprocess.image_size=32",
                "trainer.max_epochs=1",
                "trainer.scheduler.warmup_epochs=0",
                "data.batch_size=16",
            ],
            run_dir=run,
        )
    )
    best = run / "checkpoints" / "best.pt"
    clf = Classifier.from_checkpoint(best, device="cpu")
    x = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8))
    torch.save(x, tmp_path / "x.pt")
    here = clf.forward(x)[0]
    preds_here = [p.to_dict() for p in clf.predict([pics, x])]
    code = (
        "import sys, json, torch; sys.path.insert(0, sys.argv[1]);"
        "from astro_exp.predict.classifier import Classifier;"
        "c = Classifier.from_checkpoint(sys.argv[2], device='cpu'); x = torch.load(sys.argv[3]);"
        "torch.save(c.forward(x)[0], sys.argv[4]);"
        "print(json.dumps([p.to_dict() for p in c.predict([sys.argv[5], x])]))"
    )
    res = run_script(
        [
            "-c",
            code,
            str(ROOT),
            str(best),
            str(tmp_path / "x.pt"),
            str(tmp_path / "z.pt"),
            str(pics),
        ]
    )
    assert res.returncode == 0, res.stderr[-2000:]
    there = torch.load(tmp_path / "z.pt")
    assert torch.equal(here, there)
    preds_there = json.loads(res.stdout.strip().splitlines()[-1])
    assert preds_there == json.loads(json.dumps(preds_here))


# -- bench figures -------------------------------------------------------------------------------
def test_bench_predict_reports_latency_throughput_and_detector_times() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from bench_predict import detector_figures, predict_figures
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    images = np.random.default_rng(0).integers(0, 256, (40, 3, 32, 32), dtype=np.uint8)
    fig = predict_figures(
        {"name": "tiny", "model_name": "test_resnet"},
        PRE,
        CLASSES,
        images,
        n_single=5,
        n_batch=40,
        batch_size=8,
    )
    assert (
        0 < fig["predict_single_p50_ms"] <= fig["predict_single_p95_ms"]
        and fig["predict_batch_img_s"] > 0
    )
    assert fig["predict_single_p50_over_model_only"] == pytest.approx(
        fig["predict_single_p50_ms"] / fig["model_single_p50_ms"], rel=0.02
    )
    parts = ["read_decode", "resize", "preprocess", "forward", "detector", "neighbours"]
    for key in ("predict_single_parts_ms", "predict_batch_parts_ms_per_img"):
        got = fig[key]
        assert list(got) == [*parts, "bookkeeping", "serial_sum", "total"]
        assert all(got[p] >= 0 for p in parts) and got["total"] > 0
        assert got["serial_sum"] == pytest.approx(
            sum(got[p] for p in [*parts, "bookkeeping"]), abs=0.01
        )
    det = detector_figures(
        fig["embedding_dim"], fig["model_batch_img_s"], n=300, names=["knn", "iforest"]
    )
    assert (
        det["detector/knn/fit_s"] >= 0
        and det["detector/iforest/score_s"] > 0
        and "detector/ecod/fit_s" not in det
    )
    # knn.yaml's exact knn against the PyOD KNN it replaced: same scores, timed side by side
    assert det["detector/pyod_knn/fit_score_s"] > 0 and det["detector/knn_over_pyod_knn"] > 0
    assert det["detector/knn_vs_pyod_knn_max_abs_diff"] < 1e-3
