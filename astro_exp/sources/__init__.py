"""Where pictures come from: synthetic (embedded default), folder, APOD (HTML and API)."""

from __future__ import annotations

from collections.abc import Mapping

from hydra.utils import instantiate

from astro_exp.errors import ConfigError
from astro_exp.sources.base import ImageSet


def build_imageset(cfg: Mapping) -> ImageSet:
    """Instantiate ``conf/source`` and return its :class:`ImageSet`."""
    if "_target_" not in cfg:
        raise ConfigError("source config has no _target_; pick one with source=synthetic|folder")
    source = instantiate(cfg, _convert_="all")
    return source.imageset()


__all__ = ["ImageSet", "build_imageset"]
