"""Weak labels from an APOD day's title and explanation, by weighted keyword rules.

Why rules: APOD has ~10,000 captioned pictures and no class labels; a transparent rule set
(``conf/labels/*.yaml``) labels them in seconds, can be read and argued with, and is
versioned, so a catalog row says which rules produced its label.

How a text is scored:

- ``concepts`` are named regular expressions, each with a ``topic`` and a ``weight``.
  Topics are fine-grained subjects (galaxy, nebula, moon, aurora_atmosphere, ...);
  ``topic_map`` of a label config maps topics to its classes (apod4 maps the Moon to
  ``other``, apod_extended to ``moon``), so one vocabulary serves every class scheme.
- Where matches of several concepts overlap, the longest wins and the others are dropped.
  This is how traps are handled: "planetary nebula" (a nebula) hides "planet" inside it,
  "star trails" hides "star", "our galaxy" (topic null: a neutral phrase) hides "galaxy".
- A hit in the title counts ``weights.title`` times its weight; a hit in the explanation
  ``weights.explanation`` times its weight, less the further into the text it stands
  (sentence ``i`` counts ``1 / (1 + explanation_decay * i)``), each concept at most
  ``max_hits`` times. So a "galaxy" in a passing sentence does not outvote the title's subject.
- A concept with ``where: title`` only counts in titles ("X over Y" means a landscape).
- ``transfers`` move one topic's score to another when a third topic is present: the
  Milky Way in a text that also describes a landscape is a nightscape, not a star field.
- Primary label: the best-scoring class, or ``other`` when no class reaches ``min_score``.
  ``all`` (for multilabel): every class scoring at least ``multilabel_ratio`` of the best
  and at least ``min_score``.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from astro_exp.config import to_plain
from astro_exp.errors import ConfigError

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Concept:
    """One named pattern: a hit adds ``weight`` to ``topic`` (None: a neutral phrase)."""

    name: str
    regex: re.Pattern[str]  # case-insensitive concepts: a lowered pattern for lowered text
    case_sensitive: bool
    topic: str | None
    weight: float
    where: str  # "both" | "title" | "explanation"


_STORED = ("primary", "all", "scores", "version")  # the LabelResult fields a catalog row keeps


@dataclass
class LabelResult:
    """The labeller's verdict on one text."""

    primary: str
    all: list[str]
    scores: dict[str, float]
    version: str
    hits: list[tuple[str, str, str]] = field(default_factory=list)  # (field, concept, matched text)

    def to_json(self) -> dict[str, Any]:
        """What a catalog row stores (no hits: they are for explaining, not for keeping)."""
        return {key: getattr(self, key) for key in _STORED}


class Labeller:
    """Built from one label config (``conf/labels/<name>.yaml``); call :meth:`label`."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        cfg = dict(to_plain(cfg))
        for key in ("name", "classes", "concepts"):
            if not cfg.get(key):
                raise ConfigError(f"label config lacks '{key}'; see conf/labels/apod4.yaml")
        self.name = str(cfg["name"])
        self.classes = [str(c) for c in cfg["classes"]]
        self.other = str(cfg.get("other", "other"))
        if self.other in self.classes:
            raise ConfigError(f"labels.classes must not list the fallback label {self.other!r}")
        weights = cfg.get("weights") or {}
        self.title_weight = float(weights.get("title", 3.0))
        self.explanation_weight = float(weights.get("explanation", 1.0))
        self.decay = float(cfg.get("explanation_decay", 0.15))
        self.max_hits = int(cfg.get("max_hits", 3))
        self.min_score = float(cfg.get("min_score", 2.0))
        self.ratio = float(cfg.get("multilabel_ratio", 0.5))
        self.topic_map: dict[str, str] = {
            str(k): str(v) for k, v in (cfg.get("topic_map") or {}).items()
        }
        known = set(self.classes) | {self.other}
        bad = {k: v for k, v in self.topic_map.items() if v not in known}
        if bad:
            raise ConfigError(
                f"labels.topic_map maps to unknown classes {bad}; use one of {sorted(known)}"
            )
        self.concepts = self._compile(cfg["concepts"])
        self.transfers = []
        for n, t in (cfg.get("transfers") or {}).items():
            if not isinstance(t, Mapping) or not {"from", "to", "when"} <= set(t):
                raise ConfigError(
                    f"labels.transfers.{n} needs from, to and when (topics) and min_score"
                )
            self.transfers.append(
                {
                    "from": str(t["from"]),
                    "to": str(t["to"]),
                    "when": str(t["when"]),
                    "min_score": float(t.get("min_score", 0.0)),
                }
            )
        self.version = f"{self.name}-{_digest(cfg)}"

    def _compile(self, concepts: Mapping[str, Any]) -> list[Concept]:
        out = []
        for name, spec in concepts.items():
            if spec is None:  # a derived config may switch a concept off with `name: null`
                continue
            if not isinstance(spec, Mapping) or "pattern" not in spec:
                raise ConfigError(
                    f"labels.concepts.{name} needs a 'pattern' (and 'topic', 'weight')"
                )
            topic = spec.get("topic")
            if (
                topic is not None
                and topic not in self.classes
                and topic != self.other
                and topic not in self.topic_map
            ):
                raise ConfigError(
                    f"labels.concepts.{name}: topic {topic!r} is neither a class nor in topic_map; add it to topic_map"
                )
            case_sensitive = bool(spec.get("case_sensitive"))
            pattern = (
                str(spec["pattern"]) if case_sensitive else _lower_pattern(str(spec["pattern"]))
            )
            try:
                regex = re.compile(pattern)
            except re.error as e:
                raise ConfigError(f"labels.concepts.{name}: bad pattern ({e})") from None
            where = str(spec.get("where", "both"))
            if where not in ("both", "title", "explanation"):
                raise ConfigError(
                    f"labels.concepts.{name}.where must be both, title or explanation"
                )
            out.append(
                Concept(
                    str(name), regex, case_sensitive, topic, float(spec.get("weight", 1.0)), where
                )
            )
        return out

    def class_of(self, topic: str) -> str:
        """The class a topic counts for under this config."""
        return self.topic_map.get(topic, topic)

    def _matches(self, text: str, where: str) -> list[tuple[int, int, Concept]]:
        """Non-overlapping concept hits in ``text``: the longest match wins an overlap."""
        found: list[tuple[int, int, Concept]] = []
        lowered = text.translate(_ASCII_LOWER)  # same length: offsets stay valid
        for c in self.concepts:
            if c.where != "both" and c.where != where:
                continue
            for m in c.regex.finditer(text if c.case_sensitive else lowered):
                if m.end() > m.start():
                    found.append((m.start(), m.end(), c))
        found.sort(key=lambda t: (t[0] - t[1], t[0]))  # longest first, then leftmost
        taken: list[tuple[int, int]] = []
        kept = []
        for s, e, c in found:
            i = bisect.bisect_left(taken, (s, e))
            if (i > 0 and taken[i - 1][1] > s) or (i < len(taken) and taken[i][0] < e):
                continue
            taken.insert(i, (s, e))
            kept.append((s, e, c))
        kept.sort(key=lambda t: t[0])
        return kept

    def label(
        self, title: str | None, explanation: str | None = None, explain: bool = False
    ) -> LabelResult:
        """Label one day from its title and explanation (either may be empty)."""
        title = (title or "").strip()
        explanation = (explanation or "").strip()
        topics: dict[str, float] = {}
        hits: list[tuple[str, str, str]] = []
        for s, e, c in self._matches(title, "title"):
            if c.topic is not None:
                topics[c.topic] = topics.get(c.topic, 0.0) + self.title_weight * c.weight
            if explain:
                hits.append(("title", c.name, title[s:e]))
        if explanation:
            starts = [0] + [m.end() for m in _SENTENCE_END_RE.finditer(explanation)]
            used: dict[str, int] = {}
            for s, e, c in self._matches(explanation, "explanation"):
                if c.topic is not None and used.get(c.name, 0) < self.max_hits:
                    used[c.name] = used.get(c.name, 0) + 1
                    sentence = bisect.bisect_right(starts, s) - 1
                    gain = self.explanation_weight * c.weight / (1.0 + self.decay * sentence)
                    topics[c.topic] = topics.get(c.topic, 0.0) + gain
                if explain:
                    hits.append(("explanation", c.name, explanation[s:e]))
        for t in self.transfers:  # e.g. the Milky Way in a picture with a landscape: a nightscape
            if topics.get(t["from"], 0.0) > 0 and topics.get(t["when"], 0.0) >= t["min_score"]:
                topics[t["to"]] = topics.get(t["to"], 0.0) + topics.pop(t["from"])
        scores: dict[str, float] = {}
        for topic, value in topics.items():
            cls = self.class_of(topic)
            scores[cls] = scores.get(cls, 0.0) + value
        scores = {k: round(v, 3) for k, v in sorted(scores.items(), key=lambda kv: -kv[1]) if v > 0}
        ranked = [k for k in scores if scores[k] >= self.min_score]
        if ranked:
            top = scores[ranked[0]]
            every = [k for k in ranked if scores[k] >= self.ratio * top]
        else:
            every = [self.other]
        return LabelResult(
            primary=every[0], all=every, scores=scores, version=self.version, hits=hits
        )

    def label_classes(self, include_other: bool = False) -> list[str]:
        """The classes a training set gets from this config (``other`` last when included)."""
        return self.classes + ([self.other] if include_other else [])


def _lower_pattern(pattern: str) -> str:
    """ASCII-lowercase a pattern's literals, not its escapes (``\\S`` stays ``\\S``).

    Matching a lowered pattern against lowered text finds what re.IGNORECASE finds, twice as fast.
    """
    out, escaped = [], False
    for ch in pattern:
        out.append(ch if escaped else ch.translate(_ASCII_LOWER))
        escaped = ch == "\\" and not escaped
    return "".join(out)


def _digest(cfg: Mapping[str, Any]) -> str:
    """The rules' version: every key but the prose and the text model fitted on top of them
    (``evidence``: refitting it does not change a single weak label)."""
    blob = json.dumps(
        {k: v for k, v in cfg.items() if k not in ("description", "evidence")},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_labeller(cfg: Any) -> Labeller:
    """A Labeller from the ``labels`` config node; one line saying what to do when it is missing."""
    if cfg is None:
        raise ConfigError(
            "no label config: add `- labels: apod4` to the defaults of the entry config, or pass +labels=apod4"
        )
    if isinstance(cfg, Labeller):
        return cfg
    return Labeller(cfg)


def load_label_config(name: str) -> Any:
    """Compose ``conf/labels/<name>.yaml`` (with its defaults) outside an entry config, for scripts.

    Inside a Hydra app it composes with that app's search path; elsewhere with the package's
    configs (``astro_exp.conf``), never a folder found by path."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException

    from astro_exp.config import CONF_PACKAGE, conf_options

    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name=f"labels/{name}").labels
        with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
            return compose(config_name=f"labels/{name}").labels
    except MissingConfigException:
        raise ConfigError(
            f"no label config {name!r}; use one of {conf_options('labels')}"
        ) from None
