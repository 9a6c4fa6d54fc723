"""The training options the real-picture recipe uses: class weights, a smaller backbone
learning rate, a head-only warm-up, the test-time flip (and that predict applies it), and
cross-validation folds as the run's test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from astro_exp.data.splits import TEST, fold_of
from astro_exp.errors import ConfigError
from tests.test_anomaly import RecordingLogger


def _trainer(make_cfg, tmp_path: Path, overrides: list[str]):
    """A Trainer on a small synthetic set (tiny model, 32 px), built the way train() does."""
    from astro_exp.data.datamodule import build_datamodule
    from astro_exp.engine.trainer import Trainer
    from astro_exp.models.checkpoint import make_bundle
    from astro_exp.models.factory import create_model
    from astro_exp.sources import build_imageset
    from astro_exp.vision import build_augment, build_preprocess

    cfg = make_cfg(["debug=fast", *overrides], run_dir=tmp_path / "run")
    imageset = build_imageset(cfg.source)
    dm = build_datamodule(
        imageset, cfg.data, cfg.preprocess, seed=0, cache_dir=cfg.paths.cache_dir, progress=False
    )
    torch.manual_seed(0)
    model = create_model("test_resnet", len(dm.classes))

    def bundle_fn(m, **kw):
        return make_bundle(
            m,
            model_cfg={
                "name": "tiny",
                "model_name": "test_resnet",
                "drop_rate": 0.0,
                "drop_path_rate": 0.0,
            },
            classes=dm.classes,
            task=dm.task,
            preprocess=OmegaConf.to_container(cfg.preprocess, resolve=True),
            image_size=dm.image_size,
            tta={"hflip": bool(cfg.trainer.tta_flip)},
            **kw,
        )

    return Trainer(
        cfg.trainer,
        model=model,
        preprocess=build_preprocess(cfg.preprocess),
        augment=build_augment(cfg.augment),
        datamodule=dm,
        logger=RecordingLogger(),
        run_dir=cfg.paths.output_dir,
        device=torch.device("cpu"),
        task=cfg.task,
        make_bundle=bundle_fn,
    )


def test_class_weights_balance_the_train_split(make_cfg, tmp_path: Path) -> None:
    trainer = _trainer(make_cfg, tmp_path, ["trainer.class_weight_power=1.0"])
    y = np.asarray(trainer.dm.targets)[trainer.dm.indices("train")]
    counts = np.bincount(y, minlength=len(trainer.classes))
    w = trainer.class_weights.numpy()
    assert np.allclose(w * counts, (w * counts)[0])  # every class weighs the same in the loss
    assert _trainer(make_cfg, tmp_path, []).class_weights is None  # off by default


def test_backbone_learns_slower_and_waits_for_the_head(make_cfg, tmp_path: Path) -> None:
    trainer = _trainer(
        make_cfg,
        tmp_path,
        [
            "trainer.backbone_lr_scale=0.1",
            "trainer.freeze_backbone_epochs=1",
            "trainer.max_epochs=2",
        ],
    )
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["backbone"]["lr"] < groups["head"]["lr"]  # the warm-up ramps both, in proportion
    assert abs(groups["backbone"]["initial_lr"] / groups["head"]["initial_lr"] - 0.1) < 1e-9
    head, backbone = trainer._head_and_backbone()
    before_b = [p.detach().clone() for p in backbone]
    before_h = [p.detach().clone() for p in head]
    trainer.train_epoch(0)
    assert all(
        torch.equal(a, b) for a, b in zip(before_b, backbone, strict=True)
    )  # frozen in epoch 1
    assert any(not torch.equal(a, b) for a, b in zip(before_h, head, strict=True))
    trainer.train_epoch(1)
    assert any(
        not torch.equal(a, b) for a, b in zip(before_b, backbone, strict=True)
    )  # learns from epoch 2


def test_test_time_flip_reaches_the_bundle_and_predict(make_cfg, tmp_path: Path) -> None:
    from astro_exp.models.checkpoint import save_bundle
    from astro_exp.predict.classifier import Classifier

    trainer = _trainer(make_cfg, tmp_path, ["trainer.tta_flip=true"])
    logits, _, idx = trainer.predict_logits("val")
    trainer.tta_flip = False
    plain, _, _ = trainer.predict_logits("val")
    assert not torch.allclose(logits, plain)
    path = save_bundle(trainer.make_bundle(trainer.model), tmp_path / "tta.pt")
    clf = Classifier.from_checkpoint(path, device="cpu", anomaly=False)
    assert clf.tta_flip
    x = torch.from_numpy(np.ascontiguousarray(trainer.dm.images[idx.numpy()[:4]]))
    got, _ = clf.forward(x)
    assert torch.allclose(got, logits[:4], atol=1e-4)  # predict gives what the run evaluated


def test_folds_make_the_test_split(make_cfg, tmp_path: Path) -> None:
    trainer = _trainer(make_cfg, tmp_path, ["data.folds=4", "data.fold=1"])
    ids = trainer.dm.imageset.ids
    test = set(trainer.dm.indices("test").tolist())
    assert test and all((i in test) == (fold_of(ids[i], 4) == 1) for i in range(len(ids)))
    assert (trainer.dm.split[list(test)] == TEST).all()


def test_last_epoch_as_the_model_and_noise_aware_calibration(make_cfg, tmp_path: Path) -> None:
    """``checkpoint_monitor: epoch`` (experiment=apod) keeps the last epoch whatever val says;
    ``calibration_label_noise`` reaches the temperature fit and the metrics."""
    from astro_exp.engine.final_eval import final_evaluation
    from astro_exp.models.checkpoint import load_bundle

    trainer = _trainer(
        make_cfg,
        tmp_path,
        [
            "trainer.max_epochs=3",
            "trainer.checkpoint_monitor=epoch",
            "trainer.early_stopping.patience=null",
            "trainer.calibration_label_noise=0.2",
        ],
    )
    trainer.fit()
    assert trainer.state.epoch == 3 and trainer.state.best_epoch == 3
    assert load_bundle(trainer.ckpt_dir / "best.pt")["epoch"] == 3
    metrics = final_evaluation(trainer, trainer.logger, 0)
    assert metrics["calibration/label_noise"] == 0.2 and metrics["best_epoch"] == 3.0


def test_mixup_blends_pictures_and_scores_both_labels(make_cfg, tmp_path: Path) -> None:
    """trainer.mixup: the batch is blended pairwise, the loss weighs both labels by the blend,
    reduces to the plain weighted cross-entropy when nothing is blended, and a batch trains."""
    import torch.nn.functional as F

    from astro_exp.errors import ConfigError
    from astro_exp.vision.mixup import MixUp

    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16)
    mixed, (pair, lam) = MixUp(p=1.0, lambda_max=0.4)(x)
    assert (lam > 0).all() and (lam <= 0.4).all() and (pair != torch.arange(8)).any()
    w = lam[:, None, None, None]
    assert torch.allclose(mixed, (1 - w) * x + w * x[pair], atol=1e-6)
    same, none = MixUp(p=0.0)(x)
    assert torch.equal(same, x) and none is None
    for bad in ({"p": 1.5}, {"lambda_max": 0.9}):
        try:
            MixUp(**bad)
        except ConfigError as e:
            assert "trainer.mixup" in str(e)
        else:
            raise AssertionError(f"MixUp({bad}) was accepted")

    trainer = _trainer(
        make_cfg,
        tmp_path,
        ["trainer.class_weight_power=1.0", "trainer.mixup.p=1.0", "trainer.mixup.lambda_max=0.5"],
    )
    logits = torch.randn(8, len(trainer.classes))
    y = torch.arange(8) % len(trainer.classes)
    plain = trainer.loss(logits, y)
    zero = trainer.loss(logits, y, (torch.arange(8).flip(0), torch.zeros(8)))
    assert torch.allclose(plain, zero, atol=1e-6)
    half = (torch.arange(8).flip(0), torch.full((8,), 0.5))
    by_hand = F.cross_entropy(
        logits,
        y,
        weight=trainer.class_weights,
        label_smoothing=trainer.label_smoothing,
        reduction="none",
    ) + F.cross_entropy(
        logits,
        y.flip(0),
        weight=trainer.class_weights,
        label_smoothing=trainer.label_smoothing,
        reduction="none",
    )
    den = trainer.class_weights[y] + trainer.class_weights[y.flip(0)]
    assert torch.allclose(trainer.loss(logits, y, half), by_hand.sum() / den.sum(), atol=1e-6)
    assert not torch.allclose(trainer.loss(logits, y, half), plain)
    # the epoch trains on the blends: the same start and seed without MixUp ends elsewhere
    plain_run = _trainer(make_cfg, tmp_path / "plain", ["trainer.class_weight_power=1.0"])
    plain_run.model.load_state_dict(trainer.model.state_dict())
    ends = []
    for t in (trainer, plain_run):
        torch.manual_seed(1)
        assert np.isfinite(t.train_epoch(0))
        ends.append([p.detach().clone() for p in t.model.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(*ends, strict=True))


def test_low_res_epochs_train_smaller_then_full_size(make_cfg, tmp_path: Path) -> None:
    """trainer.low_res: the first epochs see the smaller size, the rest and val the full one."""
    args = ["preprocess.image_size=64", "trainer.max_epochs=3", "trainer.low_res.epochs=2"]
    trainer = _trainer(make_cfg, tmp_path, [*args, "trainer.low_res.size=40"])
    seen: list[tuple[bool, int]] = []
    trainer.model.register_forward_pre_hook(
        lambda m, inputs: seen.append((m.training, inputs[0].shape[-1]))
    )
    trainer.fit()
    sizes = [size for training, size in seen if training]
    per_epoch = len(sizes) // 3
    assert per_epoch > 0 and len(sizes) == 3 * per_epoch
    assert set(sizes[: 2 * per_epoch]) == {40} and set(sizes[2 * per_epoch :]) == {64}
    assert {size for training, size in seen if not training} == {64}  # val: the scored size


def test_low_res_must_leave_a_full_size_epoch(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="low_res.epochs=2 must be in"):
        _trainer(make_cfg, tmp_path, ["trainer.max_epochs=2", "trainer.low_res.epochs=2"])
