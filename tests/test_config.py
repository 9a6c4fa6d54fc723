"""Every option of every config group composes, resolves and builds its object."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from astro_exp.vision import build_augment, build_preprocess

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_groups_have_the_designed_options() -> None:
    assert set(options("source")) >= {"synthetic", "folder"}
    assert set(options("preprocess")) == {"default", "astro", "none"}
    assert set(options("augment")) == {"none", "light", "heavy"}
    assert set(options("model")) == {"resnet", "efficientnet_lite0", "efficientnet", "convnext", "vit", "mobilenet", "tiny"}
    assert set(options("logger")) == {"wandb", "none"}
    assert set(options("task")) == {"multiclass", "multilabel"}


@pytest.mark.parametrize(
    "group", ["source", "task", "preprocess", "augment", "model", "trainer", "logger", "experiment", "debug"]
)
def test_every_option_composes_and_resolves(make_cfg, group: str, tmp_path: Path) -> None:
    for option in options(group):
        overrides = [f"{group}={option}"]
        if group == "source" and option == "folder":
            overrides.append(f"source.root={tmp_path}")
        cfg = make_cfg(overrides)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        if group in ("source", "task", "preprocess", "augment", "model", "logger"):
            assert resolved[group]["name"] == option
        else:
            assert resolved["trainer"]["max_epochs"] >= 1


@pytest.mark.parametrize("option", options("preprocess"))
def test_preprocess_options_build_and_run(make_cfg, option: str) -> None:
    cfg = make_cfg([f"preprocess={option}"])
    pre = build_preprocess(OmegaConf.to_container(cfg.preprocess, resolve=True))
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    y = pre(x)
    assert y.shape == (2, 3, 32, 32) and y.dtype == torch.float32 and torch.isfinite(y).all()
    if option == "none":
        assert torch.allclose(y, x.float() / 255)


@pytest.mark.parametrize("option", options("augment"))
def test_augment_options_build_and_change_pictures(make_cfg, option: str) -> None:
    cfg = make_cfg([f"augment={option}"])
    aug = build_augment(OmegaConf.to_container(cfg.augment, resolve=True))
    torch.manual_seed(0)
    x = torch.rand(16, 3, 64, 64)
    y = aug(x)
    assert y.shape == x.shape
    assert torch.equal(x, y) == (option == "none")


def test_augment_op_can_be_switched_off_from_the_command_line(make_cfg) -> None:
    cfg = make_cfg(["augment=light", "augment.ops.hflip.enabled=false", "augment.ops.vflip.enabled=false",
                    "augment.ops.rotate.enabled=false"])  # fmt: skip
    aug = build_augment(OmegaConf.to_container(cfg.augment, resolve=True))
    assert isinstance(aug, torch.nn.Identity)


def test_synthetic_source_instantiates_for_both_tasks(make_cfg) -> None:
    for task in ("multiclass", "multilabel"):
        cfg = make_cfg([f"task={task}", "source.per_class=3"])
        source = instantiate(cfg.source)
        images = source.imageset()
        assert images.task == task and len(images) == 12
        assert images.targets.ndim == (1 if task == "multiclass" else 2)


def test_debug_fast_is_small(make_cfg) -> None:
    cfg = make_cfg(["debug=fast"])
    assert cfg.model.name == "tiny" and cfg.logger.name == "none" and cfg.trainer.max_epochs == 1


def test_experiment_preset_overrides_groups(make_cfg) -> None:
    cfg = make_cfg(["experiment=finetune_lite0"])
    assert cfg.model.name == "efficientnet_lite0" and cfg.augment.name == "heavy"
    assert list(cfg.preprocess.mean) == [0.5, 0.5, 0.5]  # follows the model's expected normalisation
