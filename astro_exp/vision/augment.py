"""Train-time augmentation built from ``conf/augment``: a Kornia ``AugmentationSequential``.

Ops are keyed by name with an ``enabled`` flag (lists override badly on the command line);
their parameters use Kornia's names, and YAML lists become the tuples Kornia wants.
"""

from __future__ import annotations

from collections.abc import Mapping

import kornia.augmentation as K
import torch
from hydra.utils import get_class
from torch import nn

from astro_exp.errors import ConfigError


def _tuples(value):
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def build_augment(cfg: Mapping | None) -> nn.Module:
    """An ``nn.Module`` mapping float [0, 1] batches to augmented batches (identity if none)."""
    ops = dict((cfg or {}).get("ops") or {})
    modules: list[nn.Module] = []
    for name, spec in ops.items():
        spec = dict(spec)
        if not spec.pop("enabled", True):
            continue
        target = spec.pop("_target_", None)
        if target is None:
            raise ConfigError(f"augment.ops.{name} needs a _target_ (a kornia.augmentation class)")
        try:
            cls = get_class(target)
        except Exception as e:  # noqa: BLE001 - hydra raises several types here
            raise ConfigError(f"augment.ops.{name}: cannot import {target!r} ({e})") from None
        try:
            modules.append(cls(**{k: _tuples(v) for k, v in spec.items()}))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"augment.ops.{name}: bad parameters for {target}: {e}") from None
    if not modules:
        return nn.Identity()
    return K.AugmentationSequential(*modules, data_keys=["input"], same_on_batch=False)


@torch.no_grad()
def augmented_samples(augment: nn.Module, x: torch.Tensor, n: int = 4) -> torch.Tensor:
    """``n`` augmented versions of one float picture (3, H, W), for showing what training sees."""
    return augment(x.unsqueeze(0).expand(n, -1, -1, -1).contiguous()).clamp(0, 1)
