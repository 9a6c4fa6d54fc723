"""The web app's only link to the catalog's write side and file layout
(``astro_exp.data.catalog`` / ``astro_exp.data.store``): where the catalog file and the image
store are, and recording a human label correction (with who and when)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from astro_exp.web.media import inside
from astro_exp.web.queries import SCHEMA

CATALOG_FILE = "catalog.sqlite"
STORE_DIR = "images"
MAX_WHO = 80


def default_catalog_path(data_dir: Path) -> Path:
    return Path(data_dir) / CATALOG_FILE


def store_root(data_dir: Path) -> Path:
    return Path(data_dir) / STORE_DIR


def resolve_store_path(root: Path, rel: str) -> Path | None:
    """A catalog ``path`` inside the image store (relative to it, or to data_dir)."""
    rel_path = Path(rel)
    if rel_path.parts[:1] == (STORE_DIR,):
        rel_path = Path(*rel_path.parts[1:])
    return inside(root, rel_path) if rel_path.parts else None


def add_correction(catalog_path: Path, picture_id: int, label: str, who: str) -> str:
    """Store a correction; training prefers the newest over the weak label. Returns when."""
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with sqlite3.connect(catalog_path, timeout=10.0) as conn:
        conn.execute(
            f"INSERT INTO {SCHEMA.corrections} (picture_id, label, who, created_at) VALUES (?, ?, ?, ?)",
            (int(picture_id), label, who[:MAX_WHO], when),
        )
    return when
