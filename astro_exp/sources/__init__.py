"""Where pictures come from: synthetic (embedded default), folder, APOD (HTML and API).

:func:`build_source` turns ``conf/source`` into a source object, :func:`build_imageset`
into the :class:`ImageSet` to train on. Keys every source understands (``limit``) are
handled here, not by each source, so a preset such as ``debug=fast`` works with any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from astro_exp.data.imageset import ImageSet, limit_imageset
from astro_exp.errors import AstroExpError, ConfigError
from astro_exp.sources.protocols import HasAnomalySet, ImageSource

# keys of conf/source read here and never passed to the source's constructor
GENERIC_KEYS = ("limit",)


def _plain(cfg: Mapping) -> dict[str, Any]:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def build_source(cfg: Mapping) -> ImageSource:
    """Instantiate ``conf/source`` (its ``_target_`` with the other keys but the generic ones).

    A source's own one-line error (``ConfigError``, ``DataError``) reaches the caller as it
    is, not wrapped in Hydra's "Error in call to target" block; a wrong key becomes one.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    node = {k: v for k, v in _plain(cfg).items() if k not in GENERIC_KEYS}
    target = node.get("_target_")
    if not target:
        raise ConfigError(
            "source config has no _target_; pick one with source=synthetic|folder|apod_thumbs|apod"
        )
    name = node.get("name", target)
    try:
        source = instantiate(node, _convert_="all")
    except InstantiationException as e:
        cause: BaseException | None = e.__cause__
        while cause is not None and not isinstance(cause, AstroExpError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        detail = e.__cause__ if e.__cause__ is not None else e
        raise ConfigError(
            f"source={name} cannot be built from its config ({type(detail).__name__}: {detail}); "
            f"check the source.* keys against {target}"
        ) from None
    if not isinstance(source, ImageSource):
        raise ConfigError(
            f"source._target_={target} has no imageset(); point it at a class in astro_exp.sources"
        )
    return source


def build_imageset(cfg: Mapping, source: ImageSource | None = None) -> ImageSet:
    """The pictures of ``conf/source``: ``source.imageset()`` cut to ``source.limit``.

    Pass ``source`` when the caller already built it from ``cfg`` (to ask it for its other
    abilities, e.g. :class:`HasAnomalySet`), so it is not built twice.
    """
    source = build_source(cfg) if source is None else source
    limit = cfg.get("limit")
    return limit_imageset(source.imageset(), None if limit is None else int(limit))


__all__ = [
    "GENERIC_KEYS",
    "HasAnomalySet",
    "ImageSet",
    "ImageSource",
    "build_imageset",
    "build_source",
]
