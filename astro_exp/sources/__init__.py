"""Where pictures come from: synthetic (embedded default), folder, APOD (HTML and API).

:func:`build_source` turns ``conf/source`` into a source object, :func:`build_imageset`
into the :class:`ImageSet` to train on. Keys every source understands (``limit``) are
handled here, not by each source, so a preset such as ``debug=fast`` works with any of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from astro_exp.config import build_target, to_plain
from astro_exp.data.imageset import ImageSet, limit_imageset
from astro_exp.errors import ConfigError
from astro_exp.sources.protocols import HasAnomalySet, ImageSource

# keys of conf/source read here and never passed to the source's constructor
GENERIC_KEYS = ("limit",)


def build_source(cfg: Mapping) -> ImageSource:
    """Instantiate ``conf/source`` (its ``_target_`` with the other keys but the generic ones).

    A source's own one-line error (``ConfigError``, ``DataError``) reaches the caller as it
    is; a wrong key or value becomes one (:func:`astro_exp.config.build_target`).

    Args:
        cfg: the ``source`` config node (``_target_``, ``name`` and the source's keys).

    Returns:
        The source object (an :class:`ImageSource`).

    >>> src = build_source({"_target_": "astro_exp.sources.synthetic.SyntheticSource",
    ...                     "name": "synthetic", "per_class": 2, "limit": 4})
    >>> type(src).__name__
    'SyntheticSource'
    >>> build_source({"_target_": "astro_exp.sources.synthetic.SyntheticSource", "size": 9})
    Traceback (most recent call last):
    ...
    astro_exp.errors.ConfigError: source=?: SyntheticSource has no parameter(s) ['size']; it takes ['classes', 'name', 'per_class', 'seed', 'task']
    """
    node = {k: v for k, v in to_plain(cfg).items() if k not in GENERIC_KEYS}
    source = build_target(
        node, f"source={node.get('name', '?')}", hint="pick one with source=synthetic|folder|apod"
    )
    if not isinstance(source, ImageSource):
        raise ConfigError(
            f"source._target_={node.get('_target_')} has no imageset(); "
            "point it at a class in astro_exp.sources"
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
