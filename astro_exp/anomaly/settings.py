"""``cfg.anomaly`` as one checked, typed object: :class:`AnomalySettings`.

The values (and why they are what they are) live in ``conf/anomaly/default.yaml`` and
nowhere else: no field here has a default. A node that lacks keys (a run config from before
a key existed, a test's partial dict, or no ``anomaly`` group at all) is read over that
file, so the YAML is the single definition of every default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from omegaconf import OmegaConf

from astro_exp.anomaly.embeddings import EmbeddingSpec, last_stages
from astro_exp.config import read_conf, to_plain
from astro_exp.errors import ConfigError

CONF_FILE = "anomaly/default.yaml"  # in conf/ (the package astro_exp.conf)
# the embedding keys of the YAML become AnomalySettings.embedding
EMBEDDING_KEYS = ("pre_logits", "stages", "pool", "normalize")
# accepted and not settings: the option's name; the older `extra_stages: n` (with stages: null)
OTHER_KEYS = ("name", "extra_stages")


@dataclass(frozen=True)
class AnomalySettings:
    """What the anomaly stage and the anomaly-set wiring read (see the YAML for each one)."""

    enabled: bool
    false_alarm_rate: float
    holdout_classes: tuple[str, ...]
    pca_components: int | float | None
    n_neighbors: int
    embedding: EmbeddingSpec
    per_kind: int
    kinds: tuple[str, ...] | None
    photos: tuple[str, ...] | None
    views_per_photo: int
    compare_detectors: bool

    @classmethod
    def keys(cls) -> set[str]:
        """The keys of ``conf/anomaly/default.yaml`` these settings are built from."""
        return {f.name for f in fields(cls) if f.name != "embedding"} | set(EMBEDDING_KEYS)

    @classmethod
    def from_config(cls, node: Mapping | None = None) -> AnomalySettings:
        """``cfg.anomaly`` (None: the group is absent) over ``conf/anomaly/default.yaml``."""
        a = dict(to_plain(node) or {})
        reject_unknown("anomaly", a, cls.keys() | set(OTHER_KEYS), CONF_FILE)
        missing = cls.keys() - set(a)
        if missing:
            a = {**yaml_defaults(), **a}
        stages = a["stages"]
        if stages is None:
            stages = last_stages(int(a.get("extra_stages") or 0))
        try:
            embedding = EmbeddingSpec(
                pre_logits=bool(a["pre_logits"]),
                stages=tuple(int(i) for i in stages),
                pool=tuple(str(p) for p in a["pool"] or ()),
                normalize=bool(a["normalize"]),
            )
            return cls(
                enabled=bool(a["enabled"]),
                false_alarm_rate=float(a["false_alarm_rate"]),
                holdout_classes=tuple(str(c) for c in a["holdout_classes"] or ()),
                pca_components=a["pca_components"],
                n_neighbors=int(a["n_neighbors"]),
                embedding=embedding,
                per_kind=int(a["per_kind"]),
                kinds=_names(a["kinds"]),
                photos=_names(a["photos"]),
                views_per_photo=int(a["views_per_photo"]),
                compare_detectors=bool(a["compare_detectors"]),
            )
        except (TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(
                f"an anomaly setting has the wrong type ({e}); compare with conf/{CONF_FILE}"
            ) from None


def yaml_defaults() -> dict[str, Any]:
    """``conf/anomaly/default.yaml`` as a plain dict (no interpolations in that file)."""
    return conf_defaults(CONF_FILE)


def conf_defaults(conf_file: str) -> dict[str, Any]:
    """A settings group's defaults file ``conf/<group>/default.yaml`` as a plain dict (no
    interpolations in these files); the review settings read theirs here too."""
    try:
        data = OmegaConf.to_container(OmegaConf.create(read_conf(conf_file)), resolve=True)
    except OSError as e:
        group = conf_file.split("/", 1)[0]
        raise ConfigError(
            f"cannot read the {group} defaults conf/{conf_file} ({e}); reinstall astro-exp"
        ) from None
    assert isinstance(data, dict)
    return {str(k): v for k, v in data.items()}


def reject_unknown(where: str, given: Iterable[str], known: Iterable[str], conf_file: str) -> None:
    """A one-line error naming the keys of ``where`` that its defaults file does not have:
    a typo in a setting fails here instead of being ignored."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(
            f"{where} has unknown settings {unknown}; the known ones are in conf/{conf_file}"
        )


def _names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)
