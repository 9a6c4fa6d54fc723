"""Anomaly detection: every conf/detector option, the val-set threshold, save/load, nearest
neighbours, held-out classes, the anomaly sets, and the whole stage after training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from astro_exp.anomaly.detector_table import compare_detectors, detector_configs, format_table
from astro_exp.anomaly.detectors import (
    DETECTOR_FILE,
    REFERENCE_FILE,
    AnomalyDetector,
    build_pyod,
    load_reference,
)
from astro_exp.anomaly.embeddings import EmbeddingCache, EmbeddingSpec
from astro_exp.anomaly.neighbours import NeighbourIndex
from astro_exp.anomaly.sets import SKIMAGE_PHOTOS, skimage_photo_set, split_holdout
from astro_exp.anomaly.settings import AnomalySettings, yaml_defaults
from astro_exp.data.imageset import ImageSet
from astro_exp.errors import CheckpointError, ConfigError
from tests.conftest import CONF

DETECTORS = sorted(p.stem for p in (CONF / "detector").glob("*.yaml"))


def group(name: str, option: str) -> str:
    """``detector=knn`` once conf/train.yaml lists the group in its defaults, else ``+detector=knn``."""
    defaults = OmegaConf.load(CONF / "train.yaml").defaults
    listed = any(isinstance(d, DictConfig) and name in d for d in defaults)
    return f"{name}={option}" if listed else f"+{name}={option}"


def clustered(seed: int = 0, n: int = 240, dim: int = 16) -> tuple[np.ndarray, ...]:
    """Embeddings like a trained model's: 4 class clusters; anomalies sit between/away from them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (4, dim))

    def draw(m: int) -> np.ndarray:
        return (centres[rng.integers(0, 4, m)] + rng.normal(0, 1, (m, dim))).astype(np.float32)

    anomalies = (rng.normal(0, 4, (60, dim)) + rng.normal(0, 3, (60, dim))).astype(np.float32)
    return draw(n), draw(120), draw(120), anomalies


# -- detectors -----------------------------------------------------------------------------------
def test_the_eight_designed_detectors_exist() -> None:
    assert set(DETECTORS) == {"iforest", "knn", "ecod", "cblof", "lof", "copod", "pca", "hbos"}
    for cfg in detector_configs(seed=7).values():
        assert "contamination" in cfg
        assert cfg["_target_"].startswith(("pyod.models.", "astro_exp.anomaly.knn."))
        assert cfg.get("random_state", 7) == 7  # ${seed} resolved


@pytest.mark.parametrize("option", DETECTORS)
def test_every_detector_fits_flags_and_round_trips(option: str, tmp_path: Path) -> None:
    train, val, test, anomalies = clustered()
    det = AnomalyDetector(detector_configs(seed=0)[option], pca_components=8, seed=0).fit(train)
    threshold = det.calibrate(det.score(val), false_alarm_rate=0.1)
    scores = det.score(np.r_[test, anomalies])
    y = np.r_[np.zeros(len(test)), np.ones(len(anomalies))]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, scores) > 0.85, option
    assert det.flag(scores).dtype == bool
    det.save(tmp_path / DETECTOR_FILE)
    loaded = AnomalyDetector.load(tmp_path / DETECTOR_FILE)
    assert loaded.threshold == threshold and loaded.name == option
    assert np.array_equal(loaded.score(np.r_[test, anomalies]), scores)
    assert [name for name, _ in loaded.pipeline.steps] == ["scale", "pca", "detector"]


def test_detector_group_composes_with_hydra(make_cfg) -> None:
    for option in DETECTORS:
        cfg = make_cfg([group("detector", option), group("anomaly", "default"), "seed=3"])
        node = OmegaConf.to_container(cfg.detector, resolve=True)
        assert node["name"] == option
        assert type(build_pyod(node)).__module__.startswith(("pyod.models.", "astro_exp.anomaly."))
        assert cfg.anomaly.false_alarm_rate == 0.05 and list(cfg.anomaly.holdout_classes) == []


@pytest.mark.parametrize("method", ["mean", "largest", "median"])
def test_exact_knn_scores_as_pyod_knn_does(method: str) -> None:
    """conf/detector/knn.yaml's matrix-product KNN against PyOD's KNN, same parameters."""
    from sklearn.neighbors import NearestNeighbors

    from astro_exp.anomaly.knn import ExactKNN

    train, val, _, anomalies = clustered(n=600, dim=32)
    queries = np.r_[val, anomalies, train[:5]]  # train[:5]: distance 0 to themselves
    cfg = {"n_neighbors": 7, "method": method, "contamination": 0.05}
    ours = AnomalyDetector({"_target_": "astro_exp.anomaly.knn.ExactKNN", **cfg}).fit(train)
    pyod = AnomalyDetector({"_target_": "pyod.models.knn.KNN", **cfg}).fit(train)
    np.testing.assert_allclose(ours.score(queries), pyod.score(queries), rtol=1e-5, atol=1e-3)
    knn = ExactKNN(n_neighbors=7, chunk=50).fit(train)  # several chunks
    dist, rows = knn.kneighbors(queries)
    ref_dist, ref_rows = NearestNeighbors(n_neighbors=7).fit(train).kneighbors(queries)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5, atol=1e-3)
    assert (rows == ref_rows).mean() > 0.99  # only exact ties may swap
    # one picture at a time (the NumPy path predict takes) answers as the batch does
    for i in (0, 3, len(queries) - 1):
        d1, r1 = knn.kneighbors(queries[i : i + 1])
        np.testing.assert_allclose(d1[0], dist[i], rtol=1e-5, atol=1e-4)
        assert (r1[0] == rows[i]).mean() > 0.8
    # the detector's own fast scoring (no Pipeline checks) equals the Pipeline's, PCA too
    with_pca = AnomalyDetector({"_target_": "astro_exp.anomaly.knn.ExactKNN", **cfg}, 8).fit(train)
    for det in (ours, with_pca):
        np.testing.assert_allclose(
            det.score(queries), det.pipeline.decision_function(queries), rtol=1e-4, atol=1e-3
        )
        np.testing.assert_allclose(
            det.score(queries[:1]), det.pipeline.decision_function(queries[:1]), rtol=1e-4
        )


def test_exact_knn_refuses_other_metrics() -> None:
    from astro_exp.anomaly.knn import ExactKNN

    with pytest.raises(ConfigError, match="Euclidean"):
        ExactKNN(metric="cosine").fit(np.zeros((3, 2)))


def test_threshold_flags_the_chosen_share_of_validation_pictures() -> None:
    train, val, _, _ = clustered(n=400)
    det = AnomalyDetector({"_target_": "pyod.models.knn.KNN"}).fit(train)
    val_scores = det.score(np.r_[val, clustered(1)[1], clustered(2)[1]])
    for far in (0.01, 0.05, 0.2):
        det.calibrate(val_scores, far)
        assert abs(det.flag(val_scores).mean() - far) <= 0.01


def test_detector_settings_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        ({"_target_": "pyod.models.knn.KNN", "n_neighbours": 3}, "has no parameter"),
        ({"_target_": "pyod.models.nope.Nope"}, "not importable"),
        ({"n_neighbors": 3}, "no _target_"),
    ]
    for cfg, words in cases:
        with pytest.raises(ConfigError, match=words) as info:
            AnomalyDetector(cfg).fit(np.zeros((10, 3)))
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="false_alarm_rate"):
        AnomalyDetector({"_target_": "pyod.models.knn.KNN"}).calibrate(np.zeros(3), 1.5)
    with pytest.raises(ConfigError, match="pca_components"):
        AnomalyDetector({"_target_": "pyod.models.knn.KNN"}, pca_components=-2)
    (tmp_path / "bad.joblib").write_bytes(b"\x80garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        AnomalyDetector.load(tmp_path / "bad.joblib")
    with pytest.raises(CheckpointError, match="not found"):
        load_reference(tmp_path / "nope.npz")


def test_neighbour_parameters_shrink_to_tiny_training_sets() -> None:
    det = AnomalyDetector({"_target_": "pyod.models.lof.LOF", "n_neighbors": 20}).fit(
        np.random.default_rng(0).normal(size=(8, 4))
    )
    assert det.pipeline.named_steps["detector"].n_neighbors == 7


def test_compare_detectors_table() -> None:
    train, val, test, anomalies = clustered()
    configs = {k: v for k, v in detector_configs().items() if k in ("knn", "ecod", "pca")}
    rows = compare_detectors(train, val, test, anomalies, configs)
    assert [r["detector"] for r in rows] == ["ecod", "knn", "pca"]
    assert all(0.5 < r["roc_auc"] <= 1 and r["fit_s"] >= 0 and r["score_s"] >= 0 for r in rows)
    table = format_table(rows)
    assert table.splitlines()[0].startswith("| detector | roc_auc") and len(table.splitlines()) == 5


# -- neighbours --------------------------------------------------------------------------------------
def test_neighbours_are_exact_nearest_by_cosine_distance() -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    ref, queries = rng.normal(size=(300, 12)), rng.normal(size=(25, 12))
    index = NeighbourIndex(ref, [f"c{i % 3}" for i in range(300)], [f"id{i}" for i in range(300)])
    dist, rows = index.query(queries, 5, chunk=7)
    exact = NearestNeighbors(n_neighbors=5, metric="cosine", algorithm="brute").fit(ref)
    e_dist, e_rows = exact.kneighbors(queries)
    assert np.array_equal(rows, e_rows) and np.allclose(dist, e_dist, atol=1e-5)
    first = index.neighbours(ref[:3], 2)
    assert [n[0]["id"] for n in first] == ["id0", "id1", "id2"] and all(
        n[0]["distance"] < 1e-5 for n in first
    )
    assert first[1][0]["label"] == "c1" and len(index.neighbours(queries[:1], 999)[0]) == 300
    for i in range(3):  # one query row (the NumPy path) as in the batch
        d1, r1 = index.query(queries[i : i + 1], 5)
        assert np.array_equal(r1[0], rows[i]) and np.allclose(d1[0], dist[i], atol=1e-5)


# -- anomaly sets ------------------------------------------------------------------------------------
def _set(task: str) -> ImageSet:
    classes = ["galaxy", "nebula", "planet", "star"]
    n = 12
    if task == "multiclass":
        targets = np.arange(n) % 4
    else:
        targets = np.zeros((n, 4), np.float32)
        targets[np.arange(n), np.arange(n) % 4] = 1
        targets[0, 3] = 1  # a galaxy with a star in front
    return ImageSet(
        name="toy",
        classes=classes,
        task=task,
        ids=[f"p{i}" for i in range(n)],
        targets=targets,
        fingerprint="fp",
        load=lambda i, s: np.full((s, s, 3), i, np.uint8),
        meta={"paths": [f"/x/{i}.jpg" for i in range(n)], "source": "toy"},
    )


def test_holdout_classes_leave_before_training() -> None:
    kept, held = split_holdout(_set("multiclass"), ["planet"])
    assert kept.classes == ["galaxy", "nebula", "star"] and held.classes == ["planet"]
    assert len(kept) == 9 and len(held) == 3 and held.ids == ["p2", "p6", "p10"]
    assert kept.targets.tolist() == [0, 1, 2] * 3 and held.targets.tolist() == [0, 0, 0]
    assert (
        kept.load(2, 4)[0, 0, 0] == 3 and held.load(1, 4)[0, 0, 0] == 6
    )  # rows map to the originals
    assert kept.meta["paths"][2] == "/x/3.jpg" and kept.meta["source"] == "toy"
    assert kept.fingerprint not in ("fp", held.fingerprint)
    same = _set("multiclass")
    assert split_holdout(same, []) == (same, None) and split_holdout(same, None)[0] is same

    kept, held = split_holdout(_set("multilabel"), ["star"])
    assert (
        "p0" in held.ids and kept.targets.shape == (len(kept), 3) and kept.targets.sum(1).min() == 1
    )

    with pytest.raises(ConfigError, match="unknown classes"):
        split_holdout(_set("multiclass"), ["comet"])
    with pytest.raises(ConfigError, match="at least 2"):
        split_holdout(_set("multiclass"), ["galaxy", "nebula", "planet"])


def test_skimage_photos_are_bundled_and_not_astronomical() -> None:
    assert "moon" not in SKIMAGE_PHOTOS and "hubble_deep_field" not in SKIMAGE_PHOTOS
    photos = skimage_photo_set(["chelsea", "horse", "camera"], views=3)
    assert len(photos) == 9 and photos.ids[3] == "skimage:horse#0"
    for i in range(len(photos)):
        img = photos.load(i, 32)
        assert (
            img.dtype == np.uint8
            and img.ndim == 3
            and img.shape[2] == 3
            and min(img.shape[:2]) >= 50
        )
    assert photos.load(1, 32).shape != photos.load(0, 32).shape  # a crop, not the whole photo
    with pytest.raises(ConfigError, match="skimage.data lacks"):
        skimage_photo_set(["no_such_photo"])


# -- the stage after training -------------------------------------------------------------------------
class RecordingLogger:
    def __init__(self) -> None:
        self.images: dict[str, Path] = {}

    def log_image(self, key: str, path) -> None:
        self.images[key] = Path(path)

    def __getattr__(self, name: str):
        return lambda *a, **k: None


def sky_folder(root: Path, per_class: int = 16, size: int = 40) -> Path:
    """Four kinds of simple sky-like pictures as PNG files in class sub-folders."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    for c, kind in enumerate(["galaxy", "nebula", "planet", "star"]):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.normal(12, 4, (size, size, 3))
            cx, cy = rng.uniform(-0.15, 0.15, 2)
            r2 = (xx - cx) ** 2 + (yy - cy) ** 2
            if kind == "galaxy":
                img += (
                    200
                    * np.exp(-(((xx - cx) * 3) ** 2 + ((yy - cy) * 12) ** 2) * 8)[..., None]
                    * [1, 0.9, 0.7]
                )
            elif kind == "nebula":
                img += 150 * np.exp(-r2 * 6)[..., None] * [0.9, 0.2, 0.5]
            elif kind == "planet":
                img += np.where(r2 < 0.05, 180, 0)[..., None] * [0.9, 0.6, 0.3]
            else:
                for _ in range(12):
                    y, x = rng.integers(0, size, 2)
                    img[y, x] = 255
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                root / kind / f"{kind}{c}_{i:02d}.png"
            )
    return root


def trained(make_cfg, tmp_path: Path, overrides: list[str], holdout: list[str]):
    """A fitted Trainer on a folder source, with the holdout classes split off by hand before
    the DataModule (what astro_exp.train does); also returns the held-out pictures."""
    from astro_exp.data.cache import build_cache
    from astro_exp.data.datamodule import DataModule
    from astro_exp.data.splits import stratified_split
    from astro_exp.engine.final_eval import final_evaluation
    from astro_exp.engine.trainer import Trainer
    from astro_exp.models.checkpoint import make_bundle
    from astro_exp.models.factory import create_model
    from astro_exp.sources import build_imageset
    from astro_exp.vision import build_augment, build_preprocess

    root = sky_folder(tmp_path / "sky")
    cfg = make_cfg(
        [
            "source=folder",
            f"source.root={root}",
            "model=tiny",
            "logger=none",
            "preprocess.image_size=32",
            "trainer.max_epochs=2",
            "trainer.scheduler.warmup_epochs=0",
            "data.batch_size=16",
            group("anomaly", "default"),
            f"anomaly.holdout_classes=[{','.join(holdout)}]",
            *overrides,
        ],
        run_dir=tmp_path / "run",
    )
    config = {
        k: OmegaConf.to_container(cfg[k], resolve=True)
        for k in ("source", "model", "preprocess", "augment")
    }
    kept, held = split_holdout(build_imageset(config["source"]), holdout)
    images, _ = build_cache(kept, 32, "crop", cfg.paths.cache_dir, progress=False)
    split = stratified_split(kept.targets, 0.15, 0.15, 42)
    dm = DataModule(
        imageset=kept,
        images=images,
        split=split,
        batch_size=16,
        seed=42,
        resize="crop",
        cache_dir=Path(cfg.paths.cache_dir),
    )
    torch.manual_seed(0)
    model = create_model("test_resnet", len(dm.classes))
    logger = RecordingLogger()

    def bundle_fn(m, **kw):
        return make_bundle(
            m,
            model_cfg=dict(config["model"]),
            classes=dm.classes,
            task=dm.task,
            preprocess=config["preprocess"],
            image_size=32,
            **kw,
        )

    trainer = Trainer(
        cfg.trainer,
        model=model,
        preprocess=build_preprocess(config["preprocess"]),
        augment=build_augment(config["augment"]),
        datamodule=dm,
        logger=logger,
        run_dir=cfg.paths.output_dir,
        device=torch.device("cpu"),
        task=cfg.task,
        make_bundle=bundle_fn,
    )
    trainer.fit()
    final_evaluation(trainer, logger, 0)
    return trainer, cfg, logger, held


def test_anomaly_stage_fits_thresholds_scores_and_saves(make_cfg, tmp_path: Path) -> None:
    from astro_exp.anomaly.stage import anomaly_stage
    from astro_exp.predict.classifier import Classifier

    trainer, cfg, logger, held = trained(
        make_cfg,
        tmp_path,
        [
            group("detector", "knn"),
            "anomaly.views_per_photo=2",
            "anomaly.photos=[astronaut,chelsea,coffee,camera,brick,text]",
        ],
        holdout=["star"],
    )
    assert trainer.dm.classes == ["galaxy", "nebula", "planet"]
    metrics = anomaly_stage(
        trainer, logger, cfg.anomaly, cfg.detector, seed=int(cfg.seed), holdout=held
    )
    for key in (
        "roc_auc",
        "average_precision",
        "precision_at_threshold",
        "recall_at_threshold",
        "threshold",
        "fit_s",
        "score_s",
        "roc_auc/photo",
        "roc_auc/holdout:star",
    ):
        assert f"anomaly/{key}" in metrics, key
    assert 0 <= metrics["anomaly/roc_auc"] <= 1 and metrics["anomaly/n_anomalies"] == 12 + 16
    run, ckpt = trainer.run_dir, trainer.ckpt_dir
    assert logger.images["anomaly/score_histogram"] == run / "anomaly_scores.png"
    assert (run / "anomaly_scores.png").read_bytes()[:4] == b"\x89PNG"

    # the saved detector is the one that was evaluated: same threshold, same metric from disk
    det = AnomalyDetector.load(ckpt / DETECTOR_FILE)
    assert det.threshold == metrics["anomaly/threshold"] and det.name == "knn"
    cache = EmbeddingCache.for_model(
        run, trainer.model, AnomalySettings.from_config(cfg.anomaly).embedding
    )
    test = cache.load("test")
    anomalies = next(cache.load(p.stem) for p in (run / "embeddings").glob("anomalies-*.npz"))
    from sklearn.metrics import roc_auc_score

    scores = det.score(np.r_[test.emb, anomalies.emb])
    y = np.r_[np.zeros(len(test)), np.ones(len(anomalies))]
    assert roc_auc_score(y, scores) == metrics["anomaly/roc_auc"]

    # neighbours are real training items, with their labels
    ref = load_reference(ckpt / REFERENCE_FILE)
    dm = trainer.dm
    train_ids = {dm.imageset.ids[i] for i in dm.indices("train")}
    assert set(ref["ids"]) == train_ids and len(ref["ids"]) == len(train_ids)
    for rid, label in zip(ref["ids"], ref["labels"], strict=True):
        assert label == dm.classes[int(dm.targets[dm.imageset.ids.index(rid)])]
    clf = Classifier.from_checkpoint(ckpt / "best.pt", device="cpu")
    some_train = sorted(train_ids)[0]
    photo = tmp_path / "cat.png"
    from skimage.data import chelsea

    Image.fromarray(chelsea()).save(photo)
    p_train, p_photo = clf.predict([tmp_path / "sky" / some_train, photo])
    assert p_train.neighbours[0]["id"] == some_train and p_train.neighbours[0]["distance"] < 1e-4
    assert all(n["id"] in train_ids for n in p_photo.neighbours) and len(p_photo.neighbours) == 5
    assert p_photo.anomaly_score is not None and isinstance(p_photo.is_anomaly, bool)

    # a second stage run reads the cached embeddings and gives the same answer
    again = anomaly_stage(
        trainer, logger, cfg.anomaly, cfg.detector, seed=int(cfg.seed), holdout=held
    )
    assert again["anomaly/roc_auc"] == metrics["anomaly/roc_auc"]

    # scripts/compare_detectors.py re-scores those cached embeddings with other detectors
    import json
    import runpy
    import sys

    out = tmp_path / "compare.json"
    argv = sys.argv
    sys.argv = [
        "compare_detectors.py",
        str(run),
        "detectors=[knn,ecod]",
        "seed=42",
        f"out={out}",
    ]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(
                str(CONF.parent / "scripts" / "compare_detectors.py"), run_name="__main__"
            )
    finally:
        sys.argv = argv
    rows = {r["detector"]: r for r in json.loads(out.read_text())}
    assert done.value.code == 0 and set(rows) == {"knn", "ecod"}
    assert rows["knn"]["roc_auc"] == pytest.approx(
        metrics["anomaly/roc_auc"]
    )  # the same detector, refitted


def test_anomaly_stage_can_be_switched_off(make_cfg) -> None:
    from astro_exp.anomaly.stage import anomaly_stage

    cfg = make_cfg([group("anomaly", "default"), "anomaly.enabled=false"])
    assert anomaly_stage(object(), RecordingLogger(), cfg.anomaly, cfg.detector, seed=0) == {}


def test_anomaly_defaults_are_the_yaml_alone(make_cfg) -> None:
    """conf/anomaly/default.yaml is the one definition: a config without the group, or with
    keys missing, reads it; the embedding a run fits on is the YAML's."""
    yaml = yaml_defaults()
    assert yaml == OmegaConf.to_container(OmegaConf.load(CONF / "anomaly" / "default.yaml"))
    assert set(yaml) - {"name"} == AnomalySettings.keys()
    composed = AnomalySettings.from_config(make_cfg([group("anomaly", "default")]).anomaly)
    assert (
        AnomalySettings.from_config(None)
        == composed
        == AnomalySettings.from_config({"per_kind": yaml["per_kind"]})
    )
    assert composed.embedding == EmbeddingSpec(
        bool(yaml["pre_logits"]),
        tuple(yaml["stages"]),
        tuple(yaml["pool"]),
        bool(yaml["normalize"]),
    )
    assert composed.holdout_classes == () and composed.false_alarm_rate == yaml["false_alarm_rate"]
    with pytest.raises(ConfigError, match="unknown settings") as info:
        AnomalySettings.from_config({"false_alarm": 0.1})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="wrong type"):
        AnomalySettings.from_config({"per_kind": "many"})


def test_only_sources_with_the_ability_make_their_own_anomaly_set() -> None:
    from astro_exp.anomaly.stage import anomaly_imagesets
    from astro_exp.sources.folder import FolderSource
    from astro_exp.sources.protocols import HasAnomalySet
    from astro_exp.sources.synthetic import SyntheticSource

    a = AnomalySettings.from_config(
        {"per_kind": 2, "kinds": ["comet"], "photos": ["coffee"], "views_per_photo": 1}
    )
    synthetic = SyntheticSource(per_class=1)
    assert isinstance(synthetic, HasAnomalySet) and not issubclass(FolderSource, HasAnomalySet)
    (own,) = anomaly_imagesets(a, synthetic.classes, source=synthetic, holdout=None, seed=0)
    assert own.classes == ["comet"] and len(own) == 2
    (photos,) = anomaly_imagesets(a, synthetic.classes, source=None, holdout=None, seed=0)
    assert photos.name == "skimage-photos" and len(photos) == 1
    held = _set("multiclass")
    assert anomaly_imagesets(a, ["galaxy"], source=None, holdout=held, seed=0)[-1] is held
    b = AnomalySettings.from_config({"holdout_classes": ["planet"]})
    with pytest.raises(ConfigError, match="still trained on"):
        anomaly_imagesets(b, ["galaxy", "planet"], source=None, holdout=None, seed=0)


@pytest.mark.parametrize("model_name", ["test_resnet", "mobilenetv3_small_100"])
def test_embeddings_are_pre_logits_plus_pooled_stages(model_name: str) -> None:
    from astro_exp.anomaly.embeddings import EmbeddingSpec, forward_embed
    from astro_exp.errors import ConfigError
    from astro_exp.models.factory import create_model

    torch.manual_seed(0)
    model = create_model(model_name, 4).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        _, inter = model.forward_intermediates(x, indices=[-3, -2])
        emb0, logits0 = forward_embed(model, x, EmbeddingSpec.pre_logits_only())
        emb2, logits2 = forward_embed(model, x, EmbeddingSpec(True, (-3, -2), ("mean",), False))
        unit, _ = forward_embed(model, x, EmbeddingSpec(True, (-3, -2), ("mean",), True))
        mid, logits3 = forward_embed(model, x, EmbeddingSpec(False, (-2,), ("mean", "std"), False))
        ref = model(x)
    assert torch.equal(emb0, pre) and torch.equal(logits0, ref) and torch.equal(logits2, ref)
    assert torch.allclose(logits3, ref, atol=1e-6)
    assert torch.equal(emb2[:, : pre.shape[1]], pre) and emb2.shape[1] == pre.shape[1] + sum(
        h.shape[1] for h in inter
    )
    assert unit.shape == emb2.shape and torch.allclose(
        unit[:, : pre.shape[1]].norm(dim=1), torch.ones(3)
    )
    assert torch.allclose(unit.norm(dim=1), torch.full((3,), 3.0**0.5))  # three unit blocks
    # middle stage only: its channel means then its channel spreads
    h = inter[-1]
    assert torch.allclose(mid, torch.cat([h.mean((2, 3)), h.flatten(2).std(2)], 1), atol=1e-6)
    # the older `extra_stages: n` setting (and saved meta) means the last n stages before the final one
    assert AnomalySettings.from_config({"extra_stages": 2, "stages": None}).embedding.stages == (
        -3,
        -2,
    )
    assert EmbeddingSpec.from_meta({"extra_stages": 2, "normalize": True}) == EmbeddingSpec(
        True, (-3, -2), ("mean",), True
    )
    spec = EmbeddingSpec(False, (-3, -2), ("mean", "std"), True)
    assert EmbeddingSpec.from_meta({"embedding": spec.to_meta()}) == spec
    with pytest.raises(ConfigError, match="anomaly.pool"):
        EmbeddingSpec(True, (), ("median",), False)
    with pytest.raises(ConfigError, match="empty"):
        EmbeddingSpec(False, (), ("mean",), False)
    with pytest.raises(ConfigError, match="does not fit"):
        forward_embed(model, x, EmbeddingSpec(True, (-9,), ("mean",), False))


def _wired() -> bool:
    defaults = OmegaConf.load(CONF / "train.yaml").defaults
    return all(
        any(isinstance(d, DictConfig) and g in d for d in defaults) for g in ("detector", "anomaly")
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not _wired(), reason="conf/train.yaml does not list the detector and anomaly groups yet"
)
def test_train_runs_the_anomaly_stage_and_predict_uses_it(make_cfg, tmp_path: Path) -> None:
    import json

    from astro_exp.predict.classifier import Classifier
    from astro_exp.train import train

    run = tmp_path / "run"
    train(
        make_cfg(
            [
                "model=tiny",
                "logger=none",
                "source.per_class=16",
                "preprocess.image_size=32",
                "trainer.max_epochs=1",
                "trainer.scheduler.warmup_epochs=0",
                "data.batch_size=16",
                "anomaly.per_kind=6",
                "anomaly.holdout_classes=[planet]",
            ],
            run_dir=run,
        )
    )
    saved = json.loads((run / "metrics.json").read_text())
    for key in (
        "roc_auc",
        "average_precision",
        "precision_at_threshold",
        "recall_at_threshold",
        "threshold",
        "fit_s",
        "score_s",
        "roc_auc/comet",
        "roc_auc/holdout:planet",
    ):
        assert f"anomaly/{key}" in saved, key
    from astro_exp.sources.sky_render import ANOMALY_KINDS

    assert (
        saved["anomaly/n_anomalies"] == 6 * len(ANOMALY_KINDS) + 16
    )  # renderer kinds + the held-out planets
    assert (run / "anomaly_scores.png").is_file()
    clf = Classifier.from_checkpoint(run / "checkpoints" / "best.pt", device="cpu")
    assert (
        clf.classes == ["galaxy", "nebula", "star"]
        and clf.detector is not None
        and clf.detector.name == "knn"
    )
    (p,) = clf.predict(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert p.anomaly_score is not None and len(p.neighbours) == 5
