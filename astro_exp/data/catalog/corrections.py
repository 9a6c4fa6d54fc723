"""A person's answers: label corrections (training prefers them over the weak labels) and
anomaly marks (they re-rank the detector's list)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from astro_exp.data.catalog.schema import CORRECTIONS, MARKS, MAX_WHO, PICTURES, _has_table, now_iso
from astro_exp.errors import DataError


class Corrections:
    """Corrections and anomaly marks (a part of :class:`~astro_exp.data.catalog.Catalog`)."""

    conn: sqlite3.Connection
    path: Path
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def _require_picture(self, picture_id: int) -> None:
        """A person's answer names a picture that exists (inside the caller's transaction)."""
        row = self.conn.execute(f"SELECT 1 FROM {PICTURES} WHERE id = ?", (int(picture_id),))
        if row.fetchone() is None:
            raise DataError(f"no picture {picture_id} in {self.path}; check the id")

    def add_correction(self, picture_id: int, label: str, who: str) -> str:
        """Record a person's label for a picture (training prefers it over the weak label)."""
        if not label.strip() or not who.strip():
            raise DataError("a label correction needs a label and who made it")
        when = now_iso()
        with self.transaction():
            self._require_picture(picture_id)
            self.conn.execute(
                f"INSERT INTO {CORRECTIONS} (picture_id, label, who, created_at) VALUES (?, ?, ?, ?)",
                (int(picture_id), label.strip(), who.strip()[:MAX_WHO], when),
            )
        return when

    def merge_corrections(self, picture_id: int, corrections: Iterable[Mapping[str, Any]]) -> int:
        """Add another catalog's corrections of a picture (``label``, ``who``, ``created_at``
        kept as recorded) that this one lacks, in one transaction; returns how many were new.
        The same correction (picture, label, who and time) is never stored twice, so importing
        a bundle again changes nothing."""
        n = 0
        with self.transaction():
            for c in corrections:
                row = (
                    int(picture_id),
                    str(c["label"]),
                    str(c["who"])[:MAX_WHO],
                    str(c["created_at"]),
                )
                exists = self.conn.execute(
                    f"SELECT 1 FROM {CORRECTIONS} WHERE picture_id = ? AND label = ? AND who = ? AND created_at = ?",
                    row,
                ).fetchone()
                if exists is None:
                    self.conn.execute(
                        f"INSERT INTO {CORRECTIONS} (picture_id, label, who, created_at) VALUES (?, ?, ?, ?)",
                        row,
                    )
                    n += 1
        return n

    def corrections(self) -> dict[int, str]:
        """{picture id: the newest corrected label} (ties broken by insertion order)."""
        return read_corrections(self.conn)

    def correction_history(self) -> dict[int, list[dict[str, Any]]]:
        """{picture id: every correction (``label``, ``who``, ``created_at``), oldest first}
        (what a bundle carries, so the receiver sees who said what and when)."""
        out: dict[int, list[dict[str, Any]]] = {}
        for r in self.conn.execute(
            f"SELECT picture_id, label, who, created_at FROM {CORRECTIONS} ORDER BY created_at, id"
        ):
            out.setdefault(int(r["picture_id"]), []).append(
                {"label": r["label"], "who": r["who"], "created_at": r["created_at"]}
            )
        return out

    def add_anomaly_mark(self, picture_id: int, interesting: bool, who: str) -> str:
        """Record a person's verdict on a flagged picture (the newest mark of a picture wins)."""
        if not who.strip():
            raise DataError("an anomaly mark needs who made it")
        when = now_iso()
        with self.transaction():
            self._require_picture(picture_id)
            self.conn.execute(
                f"INSERT INTO {MARKS} (picture_id, interesting, who, created_at) VALUES (?, ?, ?, ?)",
                (int(picture_id), int(bool(interesting)), who.strip()[:MAX_WHO], when),
            )
        return when

    def anomaly_marks(self) -> dict[int, bool]:
        """{picture id: interesting?}, the newest mark of each picture."""
        return read_marks(self.conn)


def read_corrections(conn: sqlite3.Connection) -> dict[int, str]:
    """{picture id: the newest corrected label} (ties broken by insertion order)."""
    rows = conn.execute(f"SELECT picture_id, label FROM {CORRECTIONS} ORDER BY created_at, id")
    return {int(pid): label for pid, label in rows}  # later rows overwrite earlier ones


def read_marks(conn: sqlite3.Connection) -> dict[int, bool]:
    """{picture id: interesting?}: the newest anomaly mark of each marked picture."""
    if not _has_table(conn, MARKS):  # a v3 file seen read-only (nothing migrated it yet)
        return {}
    rows = conn.execute(f"SELECT picture_id, interesting FROM {MARKS} ORDER BY created_at, id")
    return {int(pid): bool(flag) for pid, flag in rows}
