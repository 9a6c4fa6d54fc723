"""Settings of dataset sharing: ``conf/share/default.yaml`` plus ``key.sub=value`` overrides.

``astro-exp dataset`` composes that file through Hydra (the ``share`` group of
conf/dataset.yaml); :func:`load_settings` reads the same file from the package for Python
callers, merging dotted overrides, without composing a whole entry config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from astro_exp.errors import ConfigError

CONF_FILE = "share/default.yaml"  # in the package's configs (astro_exp.conf)
RULES = ("correction", "majority", "newest")


@dataclass(frozen=True)
class BundleLimits:
    """What an imported archive may hold; anything beyond is refused before it is unpacked."""

    max_bytes: int = 10_000_000_000
    max_members: int = 200_000
    max_member_bytes: int = 200_000_000
    max_pixels: int = 89_478_485


@dataclass(frozen=True)
class MergeRules:
    """How copies of one picture are recognised and their labels settled."""

    rules: tuple[str, ...] = RULES
    near_duplicate_distance: int = 6
    aspect_tolerance: float = 0.05


def load_settings(overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The share config as plain dicts, with ``bundle.max_bytes=...``-style overrides merged."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from astro_exp.config import read_conf

    try:
        cfg = OmegaConf.create(read_conf(CONF_FILE))
        extra = list(overrides)
        if extra:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(extra))
        data = OmegaConf.to_container(cfg, resolve=True)
    except (OmegaConfBaseException, OSError, ValueError) as e:
        raise ConfigError(
            f"cannot read the share settings ({e}); check conf/{CONF_FILE} and the key=value overrides"
        ) from None
    assert isinstance(data, dict)
    return data


def _node(settings: Mapping[str, Any], key: str, shape: type) -> dict[str, Any]:
    """The ``key:`` node as a dict; a key that ``shape`` (a dataclass) lacks is refused."""
    node = dict(settings.get(key) or {})
    known = set(shape.__dataclass_fields__)
    unknown = set(node) - known
    if unknown:
        raise ConfigError(f"unknown {key} settings {sorted(unknown)}; known: {sorted(known)}")
    return node


def bundle_limits(settings: Mapping[str, Any]) -> BundleLimits:
    """The ``bundle:`` node as checked numbers."""
    node = _node(settings, "bundle", BundleLimits)
    try:
        values = {k: int(v) for k, v in node.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"bundle limits must be whole numbers, got {node}") from None
    if any(v <= 0 for v in values.values()):
        raise ConfigError(f"bundle limits must be positive, got {values}")
    return BundleLimits(**values)


def merge_rules(settings: Mapping[str, Any]) -> MergeRules:
    """The ``merge:`` node, with the rule names checked."""
    node = _node(settings, "merge", MergeRules)
    rules = node.get("rules", list(RULES))
    if isinstance(rules, str):
        rules = [rules]
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise ConfigError(f"merge.rules {rules} must be a non-empty list of {', '.join(RULES)}")
    try:
        distance = int(node.get("near_duplicate_distance", 6))
        tolerance = float(node.get("aspect_tolerance", 0.05))
    except (TypeError, ValueError):
        raise ConfigError(
            "merge.near_duplicate_distance must be an integer, merge.aspect_tolerance a number"
        ) from None
    if not 0 <= distance <= 64:
        raise ConfigError(
            f"merge.near_duplicate_distance={distance} must be between 0 and 64 (bits of a pHash)"
        )
    return MergeRules(tuple(rules), distance, tolerance)
