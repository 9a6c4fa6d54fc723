"""Settle label disagreements between copies of one picture with an ordered rule list.

Why rules and not "last bundle wins": copies come from several people, some labelled by the
keyword labeller, some corrected by hand; the config (``merge.rules``) says whose word
counts. Each copy votes with its people's newest corrections (one vote per person) or,
when nobody corrected it, with its weak label. Rules are tried in order; each either
decides or narrows the votes for the next:

- ``correction``: when anyone corrected the picture, only corrections count;
- ``majority``: the label with the most votes wins; a tie keeps only the tied labels;
- ``newest``: the most recent vote wins (a correction's time, else the row's fetch time).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

CORRECTION, WEAK = "correction", "weak"


@dataclass(frozen=True)
class Vote:
    """One opinion on a picture's label."""

    label: str
    kind: str  # "correction" | "weak"
    who: str
    when: str  # ISO time ("" when unknown: counts as oldest)
    origin: str  # which copy: "<bundle or catalog>:<source>/<date>"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """The settled label and the rule that settled it (``None``: the rules left a tie)."""

    label: str | None
    rule: str | None
    votes: tuple[Vote, ...]


def votes_of(entry: Mapping[str, Any], creator: str, origin: str) -> list[Vote]:
    """A copy's votes: each person's newest correction, else its weak primary label."""
    newest: dict[str, Mapping[str, Any]] = {}
    for c in entry.get("corrections") or []:
        if c["who"] not in newest or str(c["created_at"]) >= str(newest[c["who"]]["created_at"]):
            newest[c["who"]] = c
    if newest:
        return [
            Vote(str(c["label"]), CORRECTION, who, str(c["created_at"]), origin)
            for who, c in sorted(newest.items())
        ]
    primary = (entry.get("labels") or {}).get("primary")
    if not primary:
        return []
    return [Vote(str(primary), WEAK, creator, str(entry.get("fetched_at") or ""), origin)]


def unique_votes(votes: Iterable[Vote]) -> list[Vote]:
    """One vote per person and correction time: the same correction carried by two bundles counts once."""
    seen, out = set(), []
    for v in votes:
        key = (v.kind, v.who, v.label, v.when) if v.kind == CORRECTION else (v.kind, v.origin)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def decide(votes: Sequence[Vote], rules: Sequence[str]) -> Decision:
    """Apply ``rules`` in order to ``votes``; a rule that leaves one label decides."""
    current = list(votes)
    if not current:
        return Decision(None, None, ())
    if len({v.label for v in current}) == 1:
        return Decision(current[0].label, "agreement", tuple(votes))
    for rule in rules:
        if rule == "correction":
            corrected = [v for v in current if v.kind == CORRECTION]
            current = corrected or current
        elif rule == "majority":
            counts = Counter(v.label for v in current)
            top = max(counts.values())
            current = [v for v in current if counts[v.label] == top]
        elif rule == "newest":
            newest = max(v.when for v in current)
            current = [
                next(v for v in current if v.when == newest)
            ]  # a tie in time: the first listed
        else:  # pragma: no cover - settings.merge_rules checks names
            raise ValueError(f"unknown merge rule {rule!r}")
        if len({v.label for v in current}) == 1:
            return Decision(current[0].label, rule, tuple(votes))
    return Decision(None, None, tuple(votes))
