"""What the gallery's list asks for: the query string parsed and clamped (:class:`Filters`),
and the same filters as the WHERE of the statements that answer it (:func:`where_sql`), each
term one an index can serve (:mod:`~astro_exp.data.catalog.gallery` pages through it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from astro_exp.data.catalog.schema import CORRECTIONS, SEARCH, WEAK_SQL

SORTS = {
    # name -> ORDER BY of the pictures' own columns (id breaks ties so paging is stable;
    # both walk a partial index of the stored pictures)
    "date": "p.date {dir}, p.id {dir}",
    "title": "p.title COLLATE NOCASE {dir}, p.id {dir}",
    # the run's scores: walked on the run's index of that score, NULLs (and pictures
    # without a prediction) last, newest id first among ties (see _scored_ids)
    "confidence": "",
    "anomaly": "",
}
PRED_SORTS = {"confidence": "pr.confidence", "anomaly": "pr.anomaly_score"}
MAX_PAGE_SIZE = 200


@dataclass
class Filters:
    """The gallery's query string, parsed and clamped (bad values fall back to defaults)."""

    label: str = ""  # predicted label (of the shown run)
    truth: str = ""  # catalog label: the latest human correction, else the weak label
    source: str = ""
    date_from: str = ""
    date_to: str = ""
    q: str = ""
    anomalies: bool = False
    conf_min: float | None = None
    conf_max: float | None = None
    sort: str = "date"
    order: str = "desc"
    page: int = 1
    per_page: int = 48
    after: int | None = None  # keyset: the page after this picture (the Next link)
    before: int | None = None  # keyset: the page before this picture (the Previous link)
    more: bool = False  # set by list_pictures: the total is its cap and there are more
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, str], per_page: int = 48) -> Filters:
        """Parse request args; a bad value is dropped and reported, never a 500.

        Args:
            args: the query string's values (``label``, ``truth``, ``source``, ``q``,
                ``anomalies``, ``date_from``/``date_to``, ``conf_min``/``conf_max``,
                ``sort``, ``order``, ``page``, ``per_page``, ``after``/``before``).
            per_page: the page size when ``args`` names none.

        Returns:
            The filters; what was dropped is said in ``errors``.
        """
        f = cls(per_page=per_page)
        f.label = args.get("label", "").strip()[:80]
        f.truth = args.get("truth", "").strip()[:80]
        f.source = args.get("source", "").strip()[:80]
        f.q = args.get("q", "").strip()[:200]
        f.anomalies = args.get("anomalies", "") in ("1", "true", "on", "yes")
        for name in ("date_from", "date_to"):
            value = args.get(name, "").strip()
            if value:
                try:
                    setattr(f, name, date.fromisoformat(value).isoformat())
                except ValueError:
                    f.errors.append(f"{name}={value[:20]!r} is not a date (YYYY-MM-DD); ignored")
        for name in ("conf_min", "conf_max"):
            value = args.get(name, "").strip()
            if value:
                try:
                    number = float(value)
                    if not 0.0 <= number <= 1.0:
                        raise ValueError
                    setattr(f, name, number)
                except ValueError:
                    f.errors.append(f"{name}={value[:20]!r} is not a number in [0, 1]; ignored")
        sort = args.get("sort", "date")
        f.sort = sort if sort in SORTS else "date"
        f.order = "asc" if args.get("order") == "asc" else "desc"
        f.page = _int(args.get("page"), 1, 1, 1_000_000)
        f.per_page = _int(args.get("per_page"), per_page, 1, MAX_PAGE_SIZE)
        for name in ("after", "before"):
            value = _int(args.get(name), 0, 0, 2**62)
            setattr(f, name, value or None)
        return f

    @property
    def needs_predictions(self) -> bool:
        """Whether a filter reads the run's predictions (else the count skips the join)."""
        return bool(
            self.label or self.anomalies or self.conf_min is not None or self.conf_max is not None
        )


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return min(hi, max(lo, int(str(value))))
    except (TypeError, ValueError):
        return default


def fts_query(text: str) -> str:
    """The search box's words as an FTS5 query: every word must appear (a prefix of the
    last one too, as you type); quotes and operators a person types are taken literally."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w]
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words[:12]]
    quoted[-1] += "*"
    return " ".join(quoted)


def _truth_filter() -> str:
    """``truth = :truth`` as two indexed halves (the correlated COALESCE of
    :func:`~astro_exp.data.catalog.lookups.truth_sql` reads every row): the pictures whose
    newest correction says it, and the uncorrected pictures whose weak label (the indexed
    expression) says it."""
    newest = (
        f"SELECT c.picture_id FROM {CORRECTIONS} c WHERE c.label = :truth AND c.id = "
        f"(SELECT c2.id FROM {CORRECTIONS} c2 WHERE c2.picture_id = c.picture_id "
        "ORDER BY c2.created_at DESC, c2.id DESC LIMIT 1)"
    )
    return (
        f"(p.id IN ({newest}) OR ({WEAK_SQL} = :truth AND NOT EXISTS "
        f"(SELECT 1 FROM {CORRECTIONS} c3 WHERE c3.picture_id = p.id)))"
    )


def where_sql(f: Filters) -> tuple[str, dict[str, Any]]:
    """The filters as a WHERE over ``p`` (and ``pr``) and its named parameters."""
    clauses = ["p.sha256 IS NOT NULL"]  # pictures with a stored file
    params: dict[str, Any] = {}
    # a label or confidence range holds a large share of the pictures: a page sorted by the
    # pictures' own columns walks that index and checks each row's prediction (the unary
    # ``+`` keeps the planner off the predictions' index: from it, every match is sorted)
    terms: tuple[tuple[str, str | None, Any], ...] = (
        # (clause, its parameter, the value: None = no such filter)
        ("+pr.label = :label", "label", f.label or None),
        (_truth_filter(), "truth", f.truth or None),
        ("p.source = :source", "source", f.source or None),
        ("p.date >= :date_from", "date_from", f.date_from or None),
        ("p.date <= :date_to", "date_to", f.date_to or None),
        ("pr.is_anomaly = 1", None, True if f.anomalies else None),
        ("+pr.confidence >= :conf_min", "conf_min", f.conf_min),
        ("+pr.confidence <= :conf_max", "conf_max", f.conf_max),
    )
    for clause, name, value in terms:
        if value is None:
            continue
        clauses.append(clause)
        if name is not None:
            params[name] = value
    if f.q:
        match = fts_query(f.q)
        if match:  # the FTS5 index of titles and explanations (words, stems, prefixes)
            clauses.append(f"p.id IN (SELECT rowid FROM {SEARCH} WHERE {SEARCH} MATCH :q)")
            params["q"] = match
        else:  # only punctuation: nothing can match a word search
            clauses.append("0")
    return " AND ".join(clauses), params
