"""What the blueprints share: settings, the model, the catalog reader, thumbnails, uploads
and runs, gathered in one object on the app so pages and JSON endpoints give the same data.
The app reads the catalog through :class:`~astro_exp.data.catalog.CatalogReader` (its SQL is
the catalog package's) and writes a person's answers through :meth:`WebState.write`."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from flask import current_app

from astro_exp.data.catalog import Catalog, CatalogReader, CountCache, Filters, read_only
from astro_exp.data.catalog import catalog_path as default_catalog_path
from astro_exp.data.store import STORE_DIR
from astro_exp.errors import DataError
from astro_exp.imageio import read_image
from astro_exp.review.settings import ReviewSettings
from astro_exp.web.media import Decoded, Thumbnails, Uploads, resolve_store_path
from astro_exp.web.model import Analysis, ModelService, stored_prediction
from astro_exp.web.runs import RunEntry, RunIndex
from astro_exp.web.settings import WebSettings

log = logging.getLogger(__name__)
FACET_TTL_S = 30.0
WRITE_TIMEOUT_S = 10.0  # how long a person's answer waits for a scraper's write lock
T = TypeVar("T")


class NotFound(LookupError):
    """A picture, upload or run the request names does not exist (a friendly 404)."""


@dataclass
class WebState:
    settings: WebSettings
    model: ModelService
    runs: RunIndex
    thumbs: Thumbnails
    uploads: Uploads
    catalog_path: Path
    store_root: Path
    counts: CountCache = field(default_factory=CountCache)
    _facets: dict[tuple, tuple[float, Any]] = field(default_factory=dict)
    _facets_lock: threading.Lock = field(default_factory=threading.Lock)
    _rankings: dict[tuple, Any] = field(default_factory=dict)
    _ranking_locks: dict[tuple, threading.Lock] = field(default_factory=dict)

    @property
    def review(self) -> ReviewSettings:
        """The review loop's settings, typed (``WebSettings.from_mapping`` parsed them)."""
        return ReviewSettings.from_config(self.settings.review)

    # -- catalog ----------------------------------------------------------------------------
    @property
    def has_catalog(self) -> bool:
        return self.catalog_path.is_file()

    def require_catalog(self) -> None:
        """A JSON endpoint over the catalog: none is a 404 that names where it was looked for."""
        if not self.has_catalog:
            raise NotFound(f"no catalog at {self.catalog_path}")

    def catalog(self) -> AbstractContextManager[CatalogReader]:
        """The catalog read-only for one request (a missing file is a 404 saying what to run)."""
        if not self.has_catalog:
            raise NotFound(
                f"no catalog at {self.catalog_path}; run scripts/scrape.py first (or set catalog_path)"
            )
        return read_only(self.catalog_path)

    def write(self, change: Callable[[Catalog], T]) -> T:
        """One change a person makes (a correction, an anomaly mark): the app's only writes,
        each through :class:`Catalog`, which checks and records it (DataError: refused)."""
        with Catalog(self.catalog_path, timeout=WRITE_TIMEOUT_S) as cat:
            return change(cat)

    def cached(self, key: tuple, compute: Callable[[CatalogReader], Any]) -> Any:
        """Drop-down values and run ids: whole-table scans, so computed at most every
        :data:`FACET_TTL_S` seconds instead of on every page."""
        now = time.monotonic()
        with self._facets_lock:
            hit = self._facets.get(key)
            if hit is not None and now - hit[0] < FACET_TTL_S:
                return hit[1]
        with self.catalog() as cat:
            value = compute(cat)
        with self._facets_lock:
            self._facets[key] = (now, value)
        return value

    def facets(self, run_id: str | None) -> dict[str, list[str]]:
        """Filter drop-downs: predicted labels of the run, catalog labels, sources."""
        predicted, truths = self.cached(("labels", run_id), lambda c: c.label_values(run_id))
        return {
            "predicted": predicted,
            "truths": truths,
            "sources": self.cached(("sources",), CatalogReader.sources),
        }

    def label_options(self, extra: list[str] | None = None) -> list[str]:
        """Labels a correction may choose: the model's classes and the catalog's labels."""
        options = list(self.model.info().get("classes") or [])
        if self.has_catalog:
            facets = self.facets(self.run_id())
            options += facets["predicted"] + facets["truths"]
        return list(dict.fromkeys([*options, *(extra or [])]))

    def ranked(self, key: tuple, compute: Callable[[CatalogReader], Any]) -> Any:
        """A ranking over the whole catalog (the review queue's order, the anomaly ranking),
        computed once per change of the catalog (pictures, predictions, corrections or
        marks: a few index lookups, :meth:`CatalogReader.data_version`) instead of per
        request. One request computes it while the others asking for it wait (no stampede of
        eight clients each reading 100,000 rows)."""
        with self.catalog() as cat:
            version = (*cat.data_version(), cat.marks_version())
        full = (*key, version)
        with self._facets_lock:
            hit = self._rankings.get(full)
            lock = self._ranking_locks.setdefault(key, threading.Lock())
        if hit is not None:
            return hit
        with lock:
            with self._facets_lock:
                hit = self._rankings.get(full)
            if hit is not None:
                return hit
            with self.catalog() as cat:
                value = compute(cat)
            with self._facets_lock:
                for old in [k for k in self._rankings if k[:-1] == key]:
                    del self._rankings[old]  # an older version of the same ranking
                self._rankings[full] = value
        return value

    def warm(self) -> None:
        """Compute what a first visitor would wait for (the default review queue, the
        anomaly ranking, the drop-downs) before anyone asks: ``serve`` calls it in a
        background thread, so at 100,000 rows no first request pays seconds for it."""
        if not self.has_catalog:
            return
        from astro_exp.web.review_data import anomaly_ranking, queue_payload

        try:
            run_id = self.run_id()
            self.facets(run_id)
            if run_id is not None:
                from astro_exp.review.queue import QUEUE_ORDERS

                anomaly_ranking(self, run_id, False)
                for order in dict.fromkeys([self.review.order, *QUEUE_ORDERS]):
                    queue_payload(self, run_id, order, 1)
                self.warm_counts(run_id)
        except (sqlite3.Error, NotFound) as e:  # the pages will say it; warming is a bonus
            log.warning("could not warm the caches of %s: %s", self.catalog_path, e)

    def warm_counts(self, run_id: str | None) -> None:
        """The gallery's totals of what its drop-downs and sort links offer (every sort; each
        predicted label, catalog label and source; the anomalies), counted once up front."""
        facets = self.facets(run_id)
        offers: list[dict[str, str]] = [{}, {"anomalies": "1"}]
        offers += [{"label": v} for v in facets["predicted"]]
        offers += [{"truth": v} for v in facets["truths"]]
        offers += [{"source": v} for v in facets["sources"]]
        with self.catalog() as cat:
            for args in offers:
                for sort in ("date", "confidence", "anomaly"):
                    f = Filters.from_args({**args, "sort": sort, "per_page": "1"})
                    cat.list_pictures(f, run_id, counts=self.counts)

    def forget_facets(self) -> None:
        """After a label correction: the catalog labels may have a new value."""
        with self._facets_lock:
            self._facets.clear()

    def run_ids(self) -> list[str]:
        return self.cached(("run_ids",), CatalogReader.run_ids) if self.has_catalog else []

    def run_id(self, requested: str | None = None) -> str | None:
        """The run whose predictions are shown: the request's, the setting's, else the newest."""
        if not self.has_catalog:
            return None
        known = self.run_ids()
        for candidate in (requested, self.settings.run_id):
            if candidate and candidate in known:
                return candidate
        return self.settings.run_id or (known[0] if known else None)

    def picture(self, picture_id: int, run_id: str | None) -> dict[str, Any]:
        with self.catalog() as cat:
            row = cat.get_picture(picture_id, run_id)
        if row is None:
            raise NotFound(f"no picture {picture_id} in the catalog")
        return row

    def run_entry(self, run_id: str) -> RunEntry:
        """A run under outputs/ by its id (an unknown one is a 404)."""
        entry = self.runs.get(run_id)
        if entry is None:
            raise NotFound(f"no run {run_id!r} under the outputs folder")
        return entry

    def picture_file(self, row: dict[str, Any]) -> Path | None:
        """The stored original of a catalog row, only if it lies inside the image store."""
        rel = row.get("path")
        if not rel:
            return None
        path = resolve_store_path(self.store_root, str(rel))
        return path if path is not None and path.is_file() else None

    def neighbour_refs(self, neighbours: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Neighbours with the catalog picture each id names, when it names one."""
        if not neighbours:
            return []
        found: dict[str, dict[str, Any]] = {}
        if self.has_catalog:
            try:
                with self.catalog() as cat:
                    found = cat.find_by_ref([str(n.get("id")) for n in neighbours])
            except sqlite3.Error as e:  # a catalog of another schema: show the ids only
                log.warning("cannot resolve neighbours in %s: %s", self.catalog_path, e)
        return [{**n, "picture": found.get(str(n.get("id")))} for n in neighbours]

    # -- analysis ---------------------------------------------------------------------------
    def analyse_row(self, row: dict[str, Any], views: bool) -> Analysis | None:
        """A catalog picture's analysis: live when a model is loaded and the file is there,
        else the run's stored prediction (None without either)."""
        path = self.picture_file(row)
        text = (row.get("title") or "", row.get("explanation") or "")
        live = (
            self.analyse_file(row["sha256"], path, views=views, text=text if any(text) else None)
            if path is not None and row.get("sha256")
            else None
        )
        if live is not None:
            return live
        stored = stored_prediction(row, self.model.info().get("classes"))
        return Analysis(stored) if stored else None

    def analyse_file(
        self, key: str, path: Path, views: bool = True, text: tuple[str, str] | None = None
    ) -> Analysis | None:
        """The model's view of a stored picture and its day's ``text`` (None without a
        model); unreadable -> error."""
        if not self.model.loaded:
            return None
        try:
            pixels = read_image(path)
        except DataError as e:
            return Analysis({"error": str(e).replace(str(path), path.name)})
        return self.model.analyse(key, pixels, views=views, text=text)

    def analyse_upload(self, decoded: Decoded, views: bool = True) -> Analysis:
        return self.model.analyse(decoded.sha256, np.ascontiguousarray(decoded.pixels), views=views)


def state() -> WebState:
    """The current app's :class:`WebState`."""
    return current_app.extensions["astro_exp"]


def build_state(settings: WebSettings) -> WebState:
    data_dir = Path(settings.data_dir)
    catalog_path = (
        Path(settings.catalog_path) if settings.catalog_path else default_catalog_path(data_dir)
    )
    return WebState(
        settings=settings,
        model=ModelService(
            settings.ckpt_path, settings.device, settings.top_k, settings.n_augmented
        ),
        runs=RunIndex(Path(settings.outputs_dir)),
        thumbs=Thumbnails(data_dir / "thumbs", settings.thumb_size, settings.max_pixels),
        uploads=Uploads(data_dir / "uploads"),
        catalog_path=catalog_path,
        store_root=data_dir / STORE_DIR,
    )


__all__ = ["NotFound", "WebState", "build_state", "state"]
