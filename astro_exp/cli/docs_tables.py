"""``astro-exp docs-tables`` (``python scripts/docs_tables.py``): render the docs' marked tables
from the JSON the commands wrote (``outputs/archive_study/archive_study.json``, ...).

    python scripts/docs_tables.py                    # rewrite every marked table whose JSON exists
    python scripts/docs_tables.py check=true         # exit 1 listing the tables that differ
    python scripts/docs_tables.py docs/archive.md    # one file

Why: a figure copied by hand drifts from what was measured; a marked table is the JSON's.
The markers and their spec: :mod:`astro_exp.tables` (:func:`~astro_exp.tables.parse_table_spec`).
A table whose JSON is not here (``outputs/`` is not in git) is skipped and stays as written.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command, positional_args
from astro_exp.errors import DataError

_MESSAGES = {
    "rewritten": "rewritten from {source}",
    "differs": "differs from {source}",
    "skipped": "skipped, {source} not found (the table stays as written)",
}


def doc_files(patterns: list[str], root: Path) -> list[Path]:
    """The Markdown files ``patterns`` name (globs relative to ``root``), each once, in order;
    a plain path that does not exist is an error, a glob may match nothing."""
    files: list[Path] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            found = sorted(root.glob(pattern))
        elif (root / pattern).is_file():
            found = [root / pattern]
        else:
            raise DataError(f"{root / pattern} does not exist; docs= takes Markdown files or globs")
        files += [f for f in found if f not in files]
    return files


@command("docs_tables", name="docs-tables", prepare=positional_args("docs", many=True))
def main(cfg: DictConfig) -> int:
    """Render (or under check=true compare) every marked table; 1 when one differs."""
    from astro_exp.tables import refresh_doc_tables

    root = Path(cfg.root or ".")
    docs = OmegaConf.to_container(cfg.docs) if not isinstance(cfg.docs, str) else [cfg.docs]
    results = refresh_doc_tables(doc_files(list(docs), root), root, check=bool(cfg.check))
    for r in results:
        if r.status in _MESSAGES:
            print(f"{r.doc}:{r.line}: " + _MESSAGES[r.status].format(source=r.source))
    counts = {s: sum(r.status == s for r in results) for s in ("unchanged", *_MESSAGES)}
    shown = {"unchanged": "up to date", "differs": "differ"}
    print(
        "tables: "
        + ", ".join(f"{n} {shown.get(s, s)}" for s, n in counts.items() if n or s == "unchanged")
    )
    if cfg.check and counts["differs"]:
        print("`astro-exp docs-tables` renders them from their JSON")
        return 1
    return 0
