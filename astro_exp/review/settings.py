"""``cfg.review`` as one checked, typed object: :class:`ReviewSettings`.

The defaults (and why they are what they are) live in ``conf/review/default.yaml`` only; a
node that lacks keys (a test's partial dict, no ``review`` group at all) is read over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from astro_exp.anomaly.settings import conf_defaults, reject_unknown
from astro_exp.config import to_plain
from astro_exp.errors import ConfigError

CONF_FILE = "review/default.yaml"  # in conf/ (the package astro_exp.conf)
ORDERS = ("uncertainty", "disagreement", "anomaly", "random")
UNCERTAINTIES = ("margin", "entropy")


@dataclass(frozen=True)
class FeedbackSettings:
    """How a person's anomaly marks move the ranking (see the YAML)."""

    strength: float
    neighbours: int
    prior: float


@dataclass(frozen=True)
class ReviewSettings:
    """What the review queue and the anomaly re-ranking read."""

    order: str
    uncertainty: str
    seed: int
    batch: int
    feedback: FeedbackSettings

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | ReviewSettings | None = None) -> ReviewSettings:
        """``cfg.review`` (None: the group is absent) over ``conf/review/default.yaml``."""
        if isinstance(node, ReviewSettings):
            return node
        base = conf_defaults(CONF_FILE)
        given = to_plain(node) or {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"review must be a mapping of settings, not {type(node).__name__}")
        given = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in given.items()}
        reject_unknown("review", given, base, CONF_FILE)
        fb_given = given.pop("feedback", None) or {}
        reject_unknown("review.feedback", fb_given, base["feedback"], CONF_FILE)
        merged = {**base, **given, "feedback": {**base["feedback"], **fb_given}}
        return cls._checked(merged)

    @classmethod
    def _checked(cls, m: dict[str, Any]) -> ReviewSettings:
        if m["order"] not in ORDERS:
            raise ConfigError(f"review.order={m['order']!r} must be one of {', '.join(ORDERS)}")
        if m["uncertainty"] not in UNCERTAINTIES:
            raise ConfigError(f"review.uncertainty={m['uncertainty']!r} must be margin or entropy")
        fb = m["feedback"]
        try:
            feedback = FeedbackSettings(
                strength=float(fb["strength"]),
                neighbours=int(fb["neighbours"]),
                prior=float(fb["prior"]),
            )
            batch, seed = int(m["batch"]), int(m["seed"])
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"review settings must be numbers where the YAML has numbers ({e})"
            ) from None
        if feedback.strength < 0 or feedback.neighbours < 1 or feedback.prior <= 0:
            raise ConfigError(
                "review.feedback needs strength >= 0, neighbours >= 1 and prior > 0 "
                f"(got {feedback.strength}, {feedback.neighbours}, {feedback.prior})"
            )
        if not 1 <= batch <= 200:
            raise ConfigError(f"review.batch={batch} must be within 1..200")
        return cls(m["order"], m["uncertainty"], seed, batch, feedback)
