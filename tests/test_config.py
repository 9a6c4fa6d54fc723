"""Every option of every config group composes, resolves and builds its object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from astro_exp.vision import build_augment, build_preprocess
from tests.conftest import SHARED_DATA

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    """The group's options as the package ships them (conf/ is astro_exp.conf)."""
    from astro_exp.config import conf_options

    return conf_options(group)


def test_conf_folder_is_the_package_astro_exp_conf() -> None:
    import astro_exp.conf

    assert Path(astro_exp.conf.__file__).resolve().parent == CONF
    assert options("model") == sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def test_groups_have_the_designed_options() -> None:
    assert set(options("source")) >= {"synthetic", "folder"}
    assert set(options("preprocess")) == {"default", "astro", "none"}
    assert set(options("augment")) == {"none", "light", "heavy", "camera"}
    assert set(options("model")) == {
        "resnet",
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
        "efficientnet",
        "convnext",
        "vit",
        "mobilenet",
        "tiny",
    }
    assert set(options("logger")) == {"wandb", "none"}
    assert set(options("task")) == {"multiclass", "multilabel"}


@pytest.mark.parametrize(
    "group",
    [
        "source",
        "task",
        "preprocess",
        "augment",
        "model",
        "trainer",
        "logger",
        "experiment",
        "debug",
    ],
)
def test_every_option_composes_and_resolves(make_cfg, group: str, tmp_path: Path) -> None:
    for option in options(group):
        overrides = [f"{group}={option}"]
        if group == "source" and option == "folder":
            overrides.append(f"source.root={tmp_path}")
        cfg = make_cfg(overrides)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        OmegaConf.resolve(cfg)  # what `--cfg job --resolve` does: resolvers' values go back in
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
    cfg = make_cfg(
        [
            "augment=light",
            "augment.ops.hflip.enabled=false",
            "augment.ops.vflip.enabled=false",
            "augment.ops.rotate.enabled=false",
        ]
    )
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
    assert list(cfg.preprocess.mean) == [
        0.5,
        0.5,
        0.5,
    ]  # follows the model's expected normalisation


# -- presets x sources ------------------------------------------------------------------------------
APOD_THUMBS = SHARED_DATA / "apod-thumbs"


def picture_folder(root: Path, per_class: int = 3) -> Path:
    """A few small PNG pictures in two class sub-folders (a folder source that runs offline)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("galaxy", "star"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(
                root / c / f"{c}{i}.png"
            )
    return root


def source_overrides(option: str, tmp_path: Path) -> list[str] | None:
    """The overrides that let ``source=<option>`` run offline; None when it cannot here."""
    if option == "folder":
        return [f"source.root={picture_folder(tmp_path / 'pictures')}"]
    if option == "apod_thumbs":
        return (
            [f"source.root={APOD_THUMBS}"] if (APOD_THUMBS / "metadata.jsonl").is_file() else None
        )
    if option == "apod_archive":
        archive = SHARED_DATA / "apod-archive"
        return [f"source.root={archive}"] if (archive / "metadata.jsonl").is_file() else None
    if option in ("apod", "apod_api", "apod_mirror"):
        return [
            f"paths.data_dir={tmp_path / 'data'}"
        ]  # an empty catalog folder: builds, has no pictures
    return []


@pytest.mark.parametrize("option", options("source"))
def test_debug_fast_composes_and_builds_with_every_source(
    make_cfg, option: str, tmp_path: Path
) -> None:
    from astro_exp.errors import DataError
    from astro_exp.sources import build_imageset, build_source

    extra = source_overrides(option, tmp_path)
    if extra is None:
        pytest.skip(f"{APOD_THUMBS} is absent")
    cfg = make_cfg(["debug=fast", f"source={option}", *extra])
    assert cfg.source.limit == 96 and cfg.model.name == "tiny"
    source = build_source(cfg.source)  # no TypeError about a key another source has
    if option in ("apod", "apod_api", "apod_mirror"):
        with pytest.raises(DataError, match="no catalog"):
            build_imageset(cfg.source, source)
        return
    images = build_imageset(cfg.source, source)
    assert (
        0 < len(images) <= 96 and len(np.unique(images.targets)) >= 2
    )  # limited, every class kept
    img = images.load(0, int(cfg.preprocess.image_size))
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@pytest.mark.parametrize("experiment", options("experiment"))
@pytest.mark.parametrize("option", options("source"))
def test_experiment_presets_compose_with_every_source(
    make_cfg, experiment: str, option: str, tmp_path: Path
) -> None:
    extra = [f"source.root={tmp_path}"] if option in ("folder", "apod_thumbs") else []
    cfg = make_cfg([f"experiment={experiment}", f"source={option}", *extra])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["source"]["name"] == option and resolved["trainer"]["max_epochs"] >= 1
    if "task" in resolved["source"]:
        assert resolved["source"]["task"] == resolved["task"]["name"]


def test_source_limit_keeps_every_class_and_matches_a_smaller_synthetic_set(
    make_cfg, tmp_path: Path
) -> None:
    from astro_exp.sources import build_imageset

    limited = build_imageset(make_cfg(["debug=fast"]).source)
    small = build_imageset(make_cfg(["source.per_class=24"]).source)
    assert limited.ids == small.ids and np.array_equal(limited.targets, small.targets)
    assert (
        np.array_equal(limited.load(5, 16), small.load(5, 16))
        and limited.fingerprint != small.fingerprint
    )
    root = picture_folder(tmp_path / "pictures", per_class=5)
    folder = build_imageset(
        make_cfg(["source=folder", f"source.root={root}", "+source.limit=4"]).source
    )
    assert len(folder) == 4 and folder.targets.tolist() == [
        0,
        0,
        1,
        1,
    ]  # 2 of each class, not the first 4
    assert (
        build_imageset(
            make_cfg(["debug=fast", "source.limit=null", "source.per_class=2"]).source
        ).ids
        == build_imageset(make_cfg(["source.per_class=2"]).source).ids
    )


def test_source_errors_reach_the_user_as_one_line_not_hydras_block(
    make_cfg, tmp_path: Path
) -> None:
    from astro_exp.errors import ConfigError
    from astro_exp.sources import build_imageset

    cases = [
        (["source.per_class=0"], "source.per_class=0 must be >= 1"),
        (["source=folder", f"source.root={tmp_path / 'nope'}"], "is not a folder"),
        (["source=folder", f"source.root={tmp_path}", "+source.per_class=3"], "per_class"),
        (["debug=fast", "source.limit=0"], "source.limit=0"),
    ]
    for overrides, words in cases:
        with pytest.raises(ConfigError, match=words) as info:
            build_imageset(make_cfg(overrides).source)
        message = str(info.value)
        assert "\n" not in message and "Error in call to target" not in message, message
