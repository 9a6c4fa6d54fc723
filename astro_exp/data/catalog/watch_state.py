"""The watcher's state: the days it has handled and the alerts it queued, written together so
a restart neither alerts twice nor skips a day."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from astro_exp.data.catalog.pictures import select_where
from astro_exp.data.catalog.schema import ALERTS, WATCHED, now_iso


class WatchState:
    """Watched days and alerts (a part of :class:`~astro_exp.data.catalog.Catalog`)."""

    conn: sqlite3.Connection
    path: Path
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def watched_days(self, source: str) -> dict[str, str]:
        """{date: status} of the days the watcher has handled for ``source``."""
        rows = self.conn.execute(f"SELECT date, status FROM {WATCHED} WHERE source = ?", (source,))
        return {r[0]: r[1] for r in rows}

    def mark_watched(
        self,
        source: str,
        date: str,
        status: str,
        run_id: str | None,
        alerts: Iterable[tuple[str, Mapping[str, Any]]] = (),
    ) -> list[int]:
        """Record a handled day and queue its alerts ``(reason, payload)`` in one transaction
        (a day is never handled twice, and an alert is queued exactly once); returns the new
        alert ids (an alert already queued for that day and reason is not added again)."""
        when = now_iso()
        ids: list[int] = []
        with self.transaction():
            self.conn.execute(
                f"INSERT OR REPLACE INTO {WATCHED} (source, date, run_id, status, processed_at) VALUES (?,?,?,?,?)",
                (source, date, run_id, status, when),
            )
            for reason, payload in alerts:
                cur = self.conn.execute(
                    f"INSERT OR IGNORE INTO {ALERTS} (source, date, reason, payload, created_at) VALUES (?,?,?,?,?)",
                    (source, date, reason, json.dumps(payload, sort_keys=True), when),
                )
                if cur.rowcount:
                    ids.append(int(cur.lastrowid))
        return ids

    def alerts(
        self,
        pending_only: bool = False,
        source: str | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Queued alerts, oldest first (payload parsed); ``pending_only``: not yet delivered."""
        sql, params = select_where(
            ALERTS,
            {"id": None if ids is None else [int(i) for i in ids], "source": source},
            order_by="id",
            also=["delivered_at IS NULL"] if pending_only else [],
        )
        out = []
        for r in self.conn.execute(sql, params):
            d = dict(r)
            d["payload"] = json.loads(d["payload"])
            out.append(d)
        return out

    def alert_counts(self, source: str) -> tuple[int, int]:
        """(alerts queued, of which not yet delivered) for ``source``."""
        row = self.conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(delivered_at IS NULL), 0) FROM {ALERTS} WHERE source = ?",
            (source,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def alert_attempt(self, alert_id: int, error: str | None) -> None:
        """Note a delivery attempt: delivered when ``error`` is None, else why it failed."""
        with self.transaction():
            self.conn.execute(
                f"UPDATE {ALERTS} SET attempts = attempts + 1, last_error = ?, "
                "delivered_at = CASE WHEN ? IS NULL THEN ? ELSE delivered_at END WHERE id = ?",
                (error, error, now_iso(), int(alert_id)),
            )
