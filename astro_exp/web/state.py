"""What the views share: settings, the model, the catalog reader, thumbnails, uploads and
runs, gathered in one object on the app so pages and JSON endpoints give the same data."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flask import current_app

from astro_exp.data.catalog import catalog_path as default_catalog_path
from astro_exp.data.catalog import connect_read_only
from astro_exp.data.store import STORE_DIR
from astro_exp.errors import DataError
from astro_exp.imageio import read_image
from astro_exp.review.settings import ReviewSettings
from astro_exp.web import queries
from astro_exp.web.media import Decoded, Thumbnails, Uploads, inside, resolve_store_path
from astro_exp.web.model import Analysis, ModelService
from astro_exp.web.runs import RunIndex
from astro_exp.web.settings import WebSettings

log = logging.getLogger(__name__)
FACET_TTL_S = 30.0


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
    _facets: dict[tuple, tuple[float, Any]] = field(default_factory=dict)
    _facets_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def review(self) -> ReviewSettings:
        """The review loop's settings, typed (``WebSettings.from_mapping`` parsed them)."""
        return ReviewSettings.from_config(self.settings.review)

    # -- catalog ----------------------------------------------------------------------------
    @property
    def has_catalog(self) -> bool:
        return self.catalog_path.is_file()

    def connect(self):  # noqa: ANN201 - a context manager of sqlite3.Connection
        if not self.has_catalog:
            raise NotFound(
                f"no catalog at {self.catalog_path}; run scripts/scrape.py first (or set catalog_path)"
            )
        return connect_read_only(self.catalog_path)

    def cached(self, key: tuple, compute: Any) -> Any:
        """Drop-down values and run ids: whole-table scans, so computed at most every
        :data:`FACET_TTL_S` seconds instead of on every page."""
        now = time.monotonic()
        with self._facets_lock:
            hit = self._facets.get(key)
            if hit is not None and now - hit[0] < FACET_TTL_S:
                return hit[1]
        with self.connect() as conn:
            value = compute(conn)
        with self._facets_lock:
            self._facets[key] = (now, value)
        return value

    def facets(self, run_id: str | None) -> dict[str, list[str]]:
        """Filter drop-downs: predicted labels of the run, catalog labels, sources."""
        predicted, truths = self.cached(
            ("labels", run_id), lambda c: queries.label_values(c, run_id)
        )
        return {
            "predicted": predicted,
            "truths": truths,
            "sources": self.cached(("sources",), lambda c: queries.distinct(c, "source")),
        }

    def forget_facets(self) -> None:
        """After a label correction: the catalog labels may have a new value."""
        with self._facets_lock:
            self._facets.clear()

    def run_ids(self) -> list[str]:
        return self.cached(("run_ids",), queries.run_ids) if self.has_catalog else []

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
        with self.connect() as conn:
            row = queries.get_picture(conn, picture_id, run_id)
        if row is None:
            raise NotFound(f"no picture {picture_id} in the catalog")
        return row

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
                with self.connect() as conn:
                    found = queries.find_by_ref(conn, [str(n.get("id")) for n in neighbours])
            except sqlite3.Error as e:  # a catalog of another schema: show the ids only
                log.warning("cannot resolve neighbours in %s: %s", self.catalog_path, e)
        return [{**n, "picture": found.get(str(n.get("id")))} for n in neighbours]

    # -- analysis ---------------------------------------------------------------------------
    def analyse_file(self, key: str, path: Path, views: bool = True) -> Analysis | None:
        """The model's view of a stored picture (None without a model); unreadable -> error."""
        if not self.model.loaded:
            return None
        try:
            pixels = read_image(path)
        except DataError as e:
            return Analysis({"error": str(e).replace(str(path), path.name)})
        return self.model.analyse(key, pixels, views=views)

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


__all__ = ["NotFound", "WebState", "build_state", "inside", "state"]
