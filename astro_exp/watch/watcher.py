"""The watcher: poll the newest APOD day, fetch what is new, classify it, alert.

State lives in the catalog (``watched_days``, ``alerts``), nowhere else, so the loop can be
killed at any moment:

- a day is marked handled in the same transaction that queues its alerts: a restart
  neither re-alerts nor skips it;
- the days due are every calendar day from the first one watched (or the newest
  ``backfill_days`` on the very first poll) up to the newest published, minus those
  handled, capped at ``max_catchup_days``: a watcher that was down catches up;
- fetching is the scraper's (robots.txt, rate limit, retries, safe downloads), so a
  failed day stays unhandled and is tried again at the next poll;
- a poll that fails (site down, 5xx after retries, bad page) backs off exponentially,
  and a webhook that fails is retried on later polls.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from astro_exp.apod.api import ApodApiClient
from astro_exp.apod.client import ApodClient
from astro_exp.apod.scrape import ScrapeRequest, build_session, scrape
from astro_exp.data.catalog import DONE_STATUSES, OK, Catalog, catalog_path
from astro_exp.data.labels import Labeller
from astro_exp.errors import AstroExpError, ConfigError
from astro_exp.net.session import PoliteSession
from astro_exp.predict.classifier import Classifier
from astro_exp.predict.into_catalog import predict_catalog
from astro_exp.watch.alerts import AlertRules, WebhookSender, alert_payload, describe
from astro_exp.watch.duration import format_duration, parse_duration

log = logging.getLogger("astro_exp.watch")

POLL_KINDS = ("root", "rss", "api")
MISSING = "missing"  # a calendar day the site does not list (APOD had gaps in 1995)


@dataclass
class WatchSettings:
    """``watch.*`` of conf/watch.yaml, in seconds."""

    interval_s: float = 3600.0
    poll: str = "root"
    backfill_days: int = 1
    max_catchup_days: int = 60
    heartbeat_s: float = 600.0
    backoff_initial_s: float = 30.0
    backoff_max_s: float = 3600.0
    backoff_factor: float = 2.0
    once: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> WatchSettings:
        backoff = cfg.get("backoff") or {}
        s = cls(
            interval_s=parse_duration(cfg.get("interval", "1h"), "watch.interval"),
            poll=str(cfg.get("poll", "root")),
            backfill_days=int(cfg.get("backfill_days", 1)),
            max_catchup_days=int(cfg.get("max_catchup_days", 60)),
            heartbeat_s=parse_duration(cfg.get("heartbeat", "10m"), "watch.heartbeat"),
            backoff_initial_s=parse_duration(
                backoff.get("initial", "30s"), "watch.backoff.initial"
            ),
            backoff_max_s=parse_duration(backoff.get("max", "1h"), "watch.backoff.max"),
            backoff_factor=float(backoff.get("factor", 2.0)),
            once=bool(cfg.get("once", False)),
        )
        if s.poll not in POLL_KINDS:
            raise ConfigError(f"watch.poll={s.poll!r} must be one of {', '.join(POLL_KINDS)}")
        if s.interval_s <= 0:
            raise ConfigError("watch.interval must be positive, e.g. 1h")
        if s.backfill_days < 1 or s.max_catchup_days < 1:
            raise ConfigError("watch.backfill_days and watch.max_catchup_days must be at least 1")
        if s.backoff_factor < 1:
            raise ConfigError(f"watch.backoff.factor={s.backoff_factor} must be at least 1")
        return s

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` polls in a row failed: exponential, capped."""
        return min(
            self.backoff_initial_s * self.backoff_factor ** max(failures - 1, 0), self.backoff_max_s
        )


@dataclass
class PollResult:
    """What one poll did."""

    newest: dt.date | None = None
    due: list[dt.date] = field(default_factory=list)
    handled: dict[str, str] = field(default_factory=dict)  # date -> status
    alerts: list[dict[str, Any]] = field(default_factory=list)  # alerts queued by this poll
    delivered: int = 0
    delivery_failed: int = 0
    pending: list[str] = field(default_factory=list)  # due days left for the next poll

    def line(self) -> str:
        new = sum(s == OK for s in self.handled.values())
        return (
            f"poll: newest {self.newest}, {len(self.due)} due, {new} classified, "
            f"{len(self.handled) - new} other, {len(self.alerts)} alerts"
            + (f", {len(self.pending)} left for the next poll" if self.pending else "")
        )


class Watcher:
    """Polls a source for new days; one :meth:`poll` is one round, :meth:`run` the loop.

    ``request`` carries the source settings (kind, base URL, API key, size limits); the
    dates in it are ignored. ``clock``/``sleep`` are injectable so tests run it fast:
    ``sleep(seconds)`` returns True when the watcher should stop.
    """

    def __init__(
        self,
        request: ScrapeRequest,
        data_dir: str | Path,
        classifier: Classifier,
        run_id: str,
        settings: WatchSettings | None = None,
        rules: AlertRules | None = None,
        labeller: Labeller | None = None,
        http: Mapping[str, Any] | None = None,
        session: PoliteSession | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.request = request
        self.source = request.source
        self.data_dir = Path(data_dir)
        self.clf = classifier
        self.run_id = run_id
        self.settings = settings or WatchSettings()
        self.rules = rules or AlertRules()
        self.labeller = labeller
        self._own_session = session is None
        self.session = session or build_session(http, self.data_dir)
        self.clock = clock
        self.stop_event = threading.Event()
        self.sleep = sleep or self._sleep
        self._signalled: str | None = None  # set by the signal handler, read by _sleep
        self.webhook = (
            WebhookSender(
                self.rules.webhook_url, self.rules.webhook_timeout_s, self.rules.max_attempts
            )
            if self.rules.webhook_url
            else None
        )
        self.polls = self.failures = 0
        self.last_ok: float | None = None
        self.last_error: str | None = None

    def close(self) -> None:
        if self._own_session:
            self.session.close()
        if self.webhook is not None:
            self.webhook.close()

    # -- one poll -----------------------------------------------------------------------------
    def newest_date(self) -> dt.date:
        """The newest published day, by ``watch.poll``: the site root, the RSS feed or the API."""
        req = self.request
        if self.settings.poll == "api" or req.kind == "api" and self.settings.poll == "root":
            return ApodApiClient(self.session, req.api_url, req.api_key, req.base_url).newest().date
        client = ApodClient(self.session, req.base_url)
        return client.newest_from_feed() if self.settings.poll == "rss" else client.newest().date

    def due_days(self, catalog: Catalog, newest: dt.date) -> list[dt.date]:
        """Calendar days to handle: from the first day watched (first poll: the newest
        ``backfill_days``, and every day after the newest one an import left in the catalog)
        to ``newest``, minus the handled ones, the newest ``max_catchup_days``."""
        watched = catalog.watched_days(self.source)
        imported = catalog.newest_day(self.source)
        if watched:
            first = dt.date.fromisoformat(min(watched))
        else:
            first = newest - dt.timedelta(days=self.settings.backfill_days - 1)
            if imported is not None:
                # a catalog filled by an import (10,000 days scraped or copied from a
                # mirror): carry on from the day after its newest, so the days published
                # since are handled (the backfill days are handled in any case, so a first
                # poll killed after its fetch still alerts them on the next one)
                first = min(first, dt.date.fromisoformat(imported) + dt.timedelta(days=1))
        floor = newest - dt.timedelta(days=self.settings.max_catchup_days - 1)
        if first < floor:
            skipped = sum(
                1
                for i in range((floor - first).days)
                if (first + dt.timedelta(days=i)).isoformat() not in watched
            )
            if skipped:
                log.warning(
                    "%d unhandled days before %s are past watch.max_catchup_days=%d; "
                    "scrape them with scripts/scrape.py",
                    skipped,
                    floor,
                    self.settings.max_catchup_days,
                )
            first = floor
        days = [first + dt.timedelta(days=i) for i in range((newest - first).days + 1)]
        return [d for d in days if d.isoformat() not in watched]

    def poll(self) -> PollResult:
        """Find the newest day, fetch the due ones, classify, queue and deliver alerts."""
        result = PollResult()
        newest = self.newest_date()
        result.newest = newest
        with Catalog(catalog_path(self.data_dir)) as catalog:
            result.due = self.due_days(catalog, newest)
        if result.due:
            req = replace(self.request, start_date=result.due[0], end_date=newest, last_days=None)
            summary = scrape(
                req, self.data_dir, labeller=self.labeller, session=self.session, progress=False
            )
            log.info("fetched: %s", summary.line())
        with Catalog(catalog_path(self.data_dir)) as catalog:
            for d in result.due:
                self._handle_day(catalog, d, newest, result)
            if self.webhook is not None:
                result.delivered, result.delivery_failed = self.webhook.deliver(
                    catalog, self.source
                )
        return result

    def _handle_day(
        self, catalog: Catalog, d: dt.date, newest: dt.date, result: PollResult
    ) -> None:
        row = catalog.get(self.source, d.isoformat())
        if row is None:
            if d < newest:  # the site lists no such day (the listing itself did not fail)
                catalog.mark_watched(self.source, d.isoformat(), MISSING, self.run_id)
                result.handled[d.isoformat()] = MISSING
            else:
                result.pending.append(d.isoformat())
            return
        status = row["status"]
        if status not in DONE_STATUSES:  # a failed fetch: the next poll tries again
            log.warning(
                "%s %s not fetched (%s: %s); trying again next poll",
                self.source,
                d,
                status,
                row.get("error"),
            )
            result.pending.append(d.isoformat())
            return
        alerts: list[tuple[str, dict[str, Any]]] = []
        if status == OK:
            preds = predict_catalog(
                self.clf,
                catalog,
                self.run_id,
                self.data_dir,
                rows=[row],
                only_missing=False,
                progress=False,
            )
            pred = preds.get(int(row["id"]))
            if pred is None:  # the stored picture could not be read: try again next poll
                result.pending.append(d.isoformat())
                return
            conf = f"{pred.confidence:.2f}" if pred.confidence is not None else "-"
            score = (
                "" if pred.anomaly_score is None else f", anomaly score {pred.anomaly_score:.3g}"
            )
            log.info(
                "%s %s %r: %s (%s%s)%s",
                self.source,
                d,
                row.get("title"),
                pred.label,
                conf,
                score,
                " ANOMALY" if pred.is_anomaly else "",
            )
            alerts = [
                (reason, alert_payload(reason, row, pred, self.run_id))
                for reason in self.rules.reasons(pred)
            ]
        else:
            log.info("%s %s %r: %s, not classified", self.source, d, row.get("title"), status)
        ids = catalog.mark_watched(self.source, d.isoformat(), status, self.run_id, alerts)
        result.handled[d.isoformat()] = status
        for alert in catalog.alerts(ids=ids) if ids else []:
            log.warning(describe(alert))
            result.alerts.append(alert)

    # -- the loop -----------------------------------------------------------------------------
    def heartbeat(self, next_in: float) -> str:
        """The "still alive" line."""
        with Catalog(catalog_path(self.data_dir)) as catalog:
            n_days = len(catalog.watched_days(self.source))
            n_alerts, pending = catalog.alert_counts(self.source)
        pending = pending if self.webhook is not None else 0
        last = (
            "never"
            if self.last_ok is None
            else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.last_ok))
        )
        state = f"last good poll {last}" + (
            f", {self.failures} failed since ({self.last_error})" if self.failures else ""
        )
        return (
            f"heartbeat: watching {self.source} ({self.settings.poll}); {state}; next poll in "
            f"{format_duration(max(next_in, 0.0))}; {n_days} days handled, {n_alerts} alerts"
            + (f" ({pending} undelivered)" if pending else "")
        )

    def poll_safely(self) -> PollResult | None:
        """One poll; a failure is logged and counted (for the back-off), never raised."""
        self.polls += 1
        try:
            result = self.poll()
        except (AstroExpError, requests.RequestException, OSError) as e:
            self.failures += 1
            self.last_error = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            log.warning(
                "poll failed (%s); next try in %s",
                self.last_error,
                format_duration(self.settings.backoff(self.failures)),
            )
            return None
        self.failures = 0
        self.last_error = None
        self.last_ok = self.clock()
        log.info(result.line())
        return result

    def run(self, max_polls: int | None = None) -> int:
        """Poll until stopped (SIGINT/SIGTERM, :meth:`stop`, ``once``, or ``max_polls``).

        Returns 0, or 1 when ``once`` and the poll failed (cron sees the failure).
        """
        restore = self._install_signals()
        try:
            while True:
                result = self.poll_safely()
                if self.settings.once:
                    return 0 if result is not None else 1
                if max_polls is not None and self.polls >= max_polls:
                    return 0
                wait = (
                    self.settings.interval_s
                    if self.failures == 0
                    else self.settings.backoff(self.failures)
                )
                if self._wait(wait):
                    log.info("watcher stopped after %d polls", self.polls)
                    return 0
        finally:
            restore()

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` in heartbeat-sized slices; True when asked to stop."""
        deadline = self.clock() + seconds
        while True:
            left = deadline - self.clock()
            if left <= 0:
                return self.stop_event.is_set()
            log.info(self.heartbeat(left))
            if self.sleep(min(left, self.settings.heartbeat_s)) or self.stop_event.is_set():
                return True

    def _sleep(self, seconds: float) -> bool:
        """The default sleep: the stop event in half-second slices, turning a signal's flag into
        the event here, in the main thread (a handler must not touch the event's lock)."""
        end = time.monotonic() + seconds
        while not self.stop_event.is_set():
            if self._signalled:
                log.info("got %s; stopping after the current step", self._signalled)
                self.stop_event.set()
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            self.stop_event.wait(min(left, 0.5))
        return self.stop_event.is_set()

    def stop(self) -> None:
        """Ask the loop to stop (it finishes the poll in progress first)."""
        self.stop_event.set()

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum: int, _frame: object) -> None:
            # only a flag: the signal may land while this (main) thread holds the stop event's
            # lock or logging's, so neither is touched here; _sleep sees the flag within 0.5 s
            self._signalled = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


__all__ = ["MISSING", "PollResult", "WatchSettings", "Watcher"]
