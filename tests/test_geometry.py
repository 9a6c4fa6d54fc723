"""The fused geometric augmentation: flips and rotation as one affine warp, built from the
same ``conf/augment`` ops as Kornia's separate ones."""

from __future__ import annotations

import math

import kornia.augmentation as K
import pytest
import torch
from omegaconf import OmegaConf

from astro_exp.errors import ConfigError
from astro_exp.vision import build_augment
from astro_exp.vision.geometry import RandomFlipRotate, compose, warp
from tests.conftest import CONF


def _light(**over) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "augment" / "light.yaml"))
    cfg.update(over)
    return cfg


def test_flips_are_lossless_and_a_quarter_turn_is_rot90() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(RandomFlipRotate(1.0, 0.0, p_rotate=0.0)(x), x.flip(3), atol=1e-6)
    assert torch.allclose(RandomFlipRotate(0.0, 1.0, p_rotate=0.0)(x), x.flip(2), atol=1e-6)
    assert torch.allclose(RandomFlipRotate(0.0, 0.0, p_rotate=0.0)(x), x, atol=1e-6)
    one = torch.ones(2)
    turned = warp(x, compose(torch.full((2,), math.pi / 2), one, one, one))
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5) or torch.allclose(
        turned, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5
    )


def test_each_picture_draws_its_own_flip_and_angle() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 8).expand(200, -1, -1, -1).contiguous()
    out = RandomFlipRotate(0.5, 0.0, p_rotate=0.0)(x)
    flipped = torch.isclose(out, x.flip(3), atol=1e-6).flatten(1).all(1).float().mean()
    assert 0.35 < flipped < 0.65
    rotated = RandomFlipRotate(0.0, 0.0, degrees=180.0, p_rotate=1.0)(x)
    assert len({round(float(r.sum()), 3) for r in rotated}) > 150  # different angles


def test_the_light_recipe_fuses_into_one_warp_with_its_probabilities() -> None:
    aug = build_augment(_light())
    (op,) = list(aug)
    assert isinstance(op, RandomFlipRotate)
    assert (op.hflip, op.vflip, op.p_rotate, op.degrees) == (0.5, 0.5, 0.5, 180.0)
    # fuse_geometry=false: Kornia's three ops as before
    kornia = build_augment(_light(fuse_geometry=False))
    assert isinstance(kornia, K.AugmentationSequential) and len(list(kornia.children())) == 3
    # a switched-off op stays off; an op the warp cannot stand for stays Kornia's
    cfg = _light()
    cfg["ops"]["rotate"]["enabled"] = False
    assert build_augment(cfg)[0].p_rotate == 0.0
    cfg = _light()
    cfg["ops"]["rotate"]["degrees"] = [-30.0, 30.0]
    assert [type(m).__name__ for m in build_augment(cfg)] == ["RandomFlipRotate", "RandomRotation"]


def test_bad_parameters_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="probability"):
        RandomFlipRotate(hflip=1.5)
    with pytest.raises(ConfigError, match="zoom"):
        RandomFlipRotate(zoom=(1.2, 0.9))
