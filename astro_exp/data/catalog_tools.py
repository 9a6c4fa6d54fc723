"""What ``astro-exp dataset stats`` and ``relabel`` do to a catalog: count its rows, and
rewrite its weak labels with another label config.

Why here and not in the command: both are questions to the catalog (its SQL stays in
:mod:`astro_exp.data.catalog`); the command only reads its settings and prints the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from astro_exp.data.catalog import Catalog, catalog_path
from astro_exp.data.labels import Labeller
from astro_exp.errors import DataError
from astro_exp.tables import report_table

# column heads of the count tables that are not "<name>, rows"
_HEADERS = {"year": ("year", "rows", "ok pictures"), "failures": ("status", "reason", "rows")}


def existing_catalog(data_dir: str | Path) -> Path:
    """The catalog file of ``data_dir``; a one-line DataError when nothing was scraped there."""
    path = catalog_path(data_dir)
    if not path.is_file():
        raise DataError(
            f"no catalog at {path}; run python scripts/scrape.py first or pass data_dir=..."
        )
    return path


def stats_report(data_dir: str | Path, sources: Sequence[str] | None = None) -> str:
    """The catalog's row count and its count tables (source, status, media type, label,
    labeller version, year, failures) as text.

    Args:
        data_dir: the data folder (catalog.sqlite).
        sources: only these catalog sources; None: all.

    Returns:
        The report, one table after another.
    """
    path = existing_catalog(data_dir)
    with Catalog(path) as cat:
        tables = cat.stats(sources)
    total = sum(n for _, n in tables["source"])
    lines = [f"catalog {path}: {total} rows"]
    for name, rows in tables.items():
        head = _HEADERS.get(name, (name.split(" (")[0], "rows"))
        lines += ["", report_table(name, head, rows)]
    return "\n".join(lines)


def relabel_catalog(
    data_dir: str | Path, labeller: Labeller, sources: Sequence[str] | None = None
) -> str:
    """Rewrite the weak labels of every titled row with ``labeller``, in one transaction
    (a person's corrections are kept apart and still win).

    Args:
        data_dir: the data folder (catalog.sqlite).
        labeller: the rules to label with.
        sources: only rows of these catalog sources; None: all.

    Returns:
        One line: how many rows were relabelled and how many changed their primary label.
    """
    path = existing_catalog(data_dir)
    with Catalog(path) as cat:
        rows = [r for r in cat.rows(sources) if r.get("title")]
        updates = {
            r["id"]: labeller.label(r["title"], r.get("explanation")).to_json() for r in rows
        }
        changed = sum(
            1 for r in rows if (r.get("labels") or {}).get("primary") != updates[r["id"]]["primary"]
        )
        cat.set_labels(updates)
    return f"relabelled {len(updates)} rows with {labeller.version}; {changed} changed their primary label"
