"""Training sources of real APOD pictures: the scraped catalog, or a folder with metadata.

``ApodCatalogSource`` (``source=apod`` / ``source=apod_api``) reads the catalog's stored
pictures and labels them with the chosen label config (a person's correction first, then
the weak label the scraper stored when it came from the same rules, else the rules run
now); ``source.refresh=true`` scrapes the missing days first. ``ApodThumbsSource``
(``source=apod_thumbs``) labels a folder of pictures from a JSON-lines file's text fields.
Both return an :class:`ImageSet` whose fingerprint covers picture content, labels and the
labeller version, so the tensor cache is rebuilt exactly when one of them changes.

``ApodThumbsSource`` lives in :mod:`astro_exp.sources.apod_thumbs` and what both share in
:mod:`astro_exp.sources.labelled`; both names stay importable from here (configs name them so).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from astro_exp.apod.scrape import REQUEST_DEFAULTS, ScrapeRequest, ScrapeSummary, parse_date, scrape
from astro_exp.data.catalog import OK, Catalog, catalog_path
from astro_exp.data.imageset import ImageSet, Task
from astro_exp.data.labels import Labeller, build_labeller
from astro_exp.data.store import ImageStore
from astro_exp.errors import ConfigError, DataError
from astro_exp.sources.apod_thumbs import ApodThumbsSource, field_value
from astro_exp.sources.labelled import _check_classes, _usable, labelled_set

__all__ = ["ApodCatalogSource", "ApodThumbsSource", "field_value"]

log = logging.getLogger(__name__)


class ApodCatalogSource:
    """APOD days in the catalog under ``data_dir`` (``source=apod`` or ``source=apod_api``).

    The scrape settings (``kind``, ``base_url``, dates, ``http``) are the same ones
    ``scripts/scrape.py`` uses, with the defaults of ``conf/source/apod.yaml``
    (:data:`~astro_exp.apod.scrape.REQUEST_DEFAULTS`); for training,
    ``start_date``/``end_date``/``last_days`` restrict the catalog rows read, and
    ``refresh=true`` scrapes them first.
    """

    def __init__(
        self,
        name: str = REQUEST_DEFAULTS["source"],
        kind: str = REQUEST_DEFAULTS["kind"],
        base_url: str = REQUEST_DEFAULTS["base_url"],
        api_url: str = REQUEST_DEFAULTS["api_url"],
        api_key: str | None = REQUEST_DEFAULTS["api_key"],
        start_date: Any = REQUEST_DEFAULTS["start_date"],
        end_date: Any = REQUEST_DEFAULTS["end_date"],
        last_days: int | None = REQUEST_DEFAULTS["last_days"],
        picture: str = REQUEST_DEFAULTS["picture"],
        max_bytes: int = REQUEST_DEFAULTS["max_bytes"],
        max_pixels: int = REQUEST_DEFAULTS["max_pixels"],
        chunk_days: int = REQUEST_DEFAULTS["chunk_days"],
        refresh: bool = False,
        data_dir: str = "data",
        labels: Mapping[str, Any] | Labeller | None = None,
        include_other: bool = False,
        task: Task = "multiclass",
        sources: Sequence[str] | None = None,
        http: Mapping[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        self.name = name
        self.kind = kind
        self.base_url = base_url
        self.api_url = api_url
        self.api_key = api_key
        self.start_date = parse_date(start_date, "source.start_date")
        self.end_date = parse_date(end_date, "source.end_date")
        self.last_days = int(last_days) if last_days is not None else None
        self.picture = picture
        self.max_bytes = int(max_bytes)
        self.max_pixels = int(max_pixels)
        self.chunk_days = int(chunk_days)
        self.refresh = bool(refresh)
        self.data_dir = Path(data_dir)
        self.labels_cfg = labels
        self.include_other = bool(include_other)
        if task not in ("multiclass", "multilabel"):
            raise ConfigError(f"source.task={task!r} must be multiclass or multilabel")
        self.task: Task = task
        self.sources = list(sources) if sources else [name]
        self.http = dict(http or {})
        self.progress = progress

    # -- scraping ---------------------------------------------------------------------------------
    def request(self) -> ScrapeRequest:
        """The scrape this config describes (raises ConfigError when no days are given):
        its name as the request's ``source``, every other request field of the same name."""
        same = [f.name for f in dataclasses.fields(ScrapeRequest) if f.name != "source"]
        return ScrapeRequest(source=self.name, **{k: getattr(self, k) for k in same})

    def scrape(self, progress: bool | None = None) -> ScrapeSummary:
        """Fetch the missing days into the catalog (what ``scripts/scrape.py`` runs)."""
        labeller = build_labeller(self.labels_cfg) if self.labels_cfg is not None else None
        return scrape(
            self.request(),
            self.data_dir,
            labeller=labeller,
            http=self.http,
            progress=self.progress if progress is None else progress,
        )

    # -- training ---------------------------------------------------------------------------------
    def _rows(self, catalog: Catalog) -> list[dict[str, Any]]:
        rows = [
            r
            for r in catalog.rows(self.sources, status=OK)
            if r.get("media_type", "image") in ("image", None)
        ]
        if self.start_date:
            rows = [r for r in rows if r["date"] >= self.start_date.isoformat()]
        if self.end_date:
            rows = [r for r in rows if r["date"] <= self.end_date.isoformat()]
        if self.last_days is not None and rows:
            newest = dt.date.fromisoformat(max(r["date"] for r in rows))
            first = (newest - dt.timedelta(days=self.last_days - 1)).isoformat()
            rows = [r for r in rows if r["date"] >= first]
        return rows

    def imageset(self) -> ImageSet:
        labeller = build_labeller(self.labels_cfg)
        if self.refresh:
            log.info("source.refresh: %s", self.scrape().line())
        path = catalog_path(self.data_dir)
        hint = f"run `python scripts/scrape.py source={self.name} source.last_days=30` first, or set source.refresh=true"
        if not path.is_file():
            raise DataError(f"no catalog at {path}; {hint}")
        store = ImageStore(self.data_dir, max_pixels=self.max_pixels, max_bytes=self.max_bytes)
        classes = labeller.label_classes(self.include_other)
        rows, corrections = self._read_catalog(path, hint)
        items, n_fixed, n_relabelled = self._label_rows(rows, corrections, labeller, classes)
        log.info(
            "%s: %d pictures (%d human corrections, %d labelled now by %s)",
            self.name,
            len(items),
            n_fixed,
            n_relabelled,
            labeller.version,
        )
        labels = [labs for _, labs in items]
        _check_classes(labels, classes, f"the catalog {path}")
        paths = [store.abspath(r["path"]) for r, _ in items]
        shas = [r["sha256"] for r, _ in items]
        several = len(self.sources) > 1
        ids = [f"{r['source']}/{r['date']}" if several else r["date"] for r, _ in items]
        return labelled_set(
            self.name,
            classes,
            self.task,
            ids,
            paths,
            shas,
            labels,
            labeller,
            meta={
                "paths": [str(p) for p in paths],
                "sha256": shas,
                "labeller": labeller.version,
                "catalog_ids": [r["id"] for r, _ in items],
                "n_corrections": n_fixed,
                # each picture's words and whether a person labelled it: the text fusion's
                # refits (astro_exp/predict/fusion_stage.py) read them
                "texts": [(r.get("title") or "", r.get("explanation") or "") for r, _ in items],
                "corrected": [r["id"] in corrections for r, _ in items],
            },
        )

    def _read_catalog(self, path: Path, hint: str) -> tuple[list[dict[str, Any]], dict[int, str]]:
        """The rows this config trains on and the people's corrections (none: DataError)."""
        with Catalog(path) as catalog:
            rows = self._rows(catalog)
            corrections = catalog.corrections()
        if not rows:
            raise DataError(
                f"no stored pictures of source {', '.join(self.sources)} in {path}; {hint}"
            )
        return rows, corrections

    def _label_rows(
        self,
        rows: list[dict[str, Any]],
        corrections: dict[int, str],
        labeller: Labeller,
        classes: list[str],
    ) -> tuple[list[tuple[dict[str, Any], list[str]]], int, int]:
        """Each distinct picture with its usable labels: a person's correction first, then
        the weak label stored by this labeller version, else the rules run now.

        Returns:
            ``(items, corrected count, labelled-now count)``.
        """
        seen: set[str] = set()
        items: list[tuple[dict[str, Any], list[str]]] = []
        n_fixed = n_relabelled = 0
        for r in rows:
            if r["sha256"] in seen:  # the same picture on two days (or sources) counts once
                continue
            if r["id"] in corrections:  # a multi-label answer is stored as "galaxy|star"
                fixed = [x.strip() for x in corrections[r["id"]].split("|") if x.strip()]
                labs = fixed if self.task == "multilabel" else fixed[:1]
                n_fixed += 1
            elif (
                isinstance(r.get("labels"), dict) and r["labels"].get("version") == labeller.version
            ):
                labs = (
                    list(r["labels"]["all"])
                    if self.task == "multilabel"
                    else [r["labels"]["primary"]]
                )
            else:
                res, n_relabelled = (
                    labeller.label(r.get("title"), r.get("explanation")),
                    n_relabelled + 1,
                )
                labs = res.all if self.task == "multilabel" else [res.primary]
            labs = _usable(labs, classes, self.task)
            if labs:
                seen.add(r["sha256"])
                items.append((r, labs))
        return items, n_fixed, n_relabelled
