"""Training sources of real APOD pictures: the scraped catalog, or a folder with metadata.

``ApodCatalogSource`` (``source=apod`` / ``source=apod_api``) reads the catalog's stored
pictures and labels them with the chosen label config (a person's correction first, then
the weak label the scraper stored when it came from the same rules, else the rules run
now); ``source.refresh=true`` scrapes the missing days first. ``ApodThumbsSource``
(``source=apod_thumbs``) labels a folder of pictures from a JSON-lines file's text fields.
Both return an :class:`ImageSet` whose fingerprint covers picture content, labels and the
labeller version, so the tensor cache is rebuilt exactly when one of them changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.apod.scrape import REQUEST_DEFAULTS, ScrapeRequest, ScrapeSummary, parse_date, scrape
from astro_exp.data.catalog import OK, Catalog, catalog_path
from astro_exp.data.imageset import ImageSet, Task
from astro_exp.data.label_files import read_label_file
from astro_exp.data.labels import Labeller, build_labeller
from astro_exp.data.store import ImageStore
from astro_exp.errors import ConfigError, DataError
from astro_exp.imageio import read_image

log = logging.getLogger(__name__)


def _targets(labels: list[list[str]], classes: list[str], task: Task) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    if task == "multiclass":
        return np.array([index[labs[0]] for labs in labels], dtype=np.int64)
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for r, labs in enumerate(labels):
        out[r, [index[lab] for lab in labs]] = 1.0
    return out


def _usable(labs: Sequence[str], classes: list[str], task: Task) -> list[str]:
    """The labels of one picture a training set can use: multiclass the primary only."""
    keep = [lab for lab in labs if lab in classes]
    if task == "multiclass":
        return keep[:1] if labs and labs[0] in classes else []
    return keep


def _check_classes(labels: list[list[str]], classes: list[str], where: str) -> None:
    if not labels:
        raise DataError(
            f"no labelled pictures in {where}; check the label config or source.include_other"
        )
    present = {lab for labs in labels for lab in labs}
    if len(present) < 2:
        raise DataError(
            f"{where} gives only the labels {sorted(present)}; need at least 2 classes to train"
        )
    missing = [c for c in classes if c not in present]
    if missing:
        log.warning("no pictures labelled %s in %s", missing, where)


def _fingerprint(
    shas: list[str], labels: list[list[str]], labeller: Labeller, classes: list[str], task: str
) -> str:
    digest = hashlib.sha256(f"{labeller.version}|{task}|{','.join(classes)}\n".encode())
    for sha, labs in zip(shas, labels, strict=True):
        digest.update(f"{sha}|{'|'.join(labs)}\n".encode())
    return digest.hexdigest()


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
        """The scrape this config describes (raises ConfigError when no days are given)."""
        return ScrapeRequest(
            source=self.name,
            kind=self.kind,
            base_url=self.base_url,
            api_url=self.api_url,
            api_key=self.api_key,
            start_date=self.start_date,
            end_date=self.end_date,
            last_days=self.last_days,
            picture=self.picture,
            max_bytes=self.max_bytes,
            max_pixels=self.max_pixels,
            chunk_days=self.chunk_days,
        )

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
        with Catalog(path) as catalog:
            rows = self._rows(catalog)
            corrections = catalog.corrections()
        if not rows:
            raise DataError(
                f"no stored pictures of source {', '.join(self.sources)} in {path}; {hint}"
            )
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

        def load(i: int, size: int) -> np.ndarray:
            return read_image(paths[i], target_size=size)  # JPEG draft at the cache size

        return ImageSet(
            name=self.name,
            classes=classes,
            task=self.task,
            ids=ids,
            targets=_targets(labels, classes, self.task),
            fingerprint=_fingerprint(shas, labels, labeller, classes, self.task),
            load=load,
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


_INDEX_RE = re.compile(r"^\d+$")
_FRAME_RE = re.compile(r"-\d+$")


def field_value(row: Mapping[str, Any], path: str) -> Any:
    """``candidates.0.title`` of a JSON row: dotted keys, integers index lists; None when absent."""
    node: Any = row
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and _INDEX_RE.match(part):
            i = int(part)
            node = node[i] if i < len(node) else None
        else:
            return None
        if node is None:
            return None
    return node


class ApodThumbsSource:
    """A folder of APOD pictures with a JSON-lines metadata file, labelled from its text.

    ``title_fields`` / ``explanation_fields`` are dotted paths tried in order (the first
    non-empty wins), e.g. ``candidates.0.title``; without any title the file name is used
    ("The_Seagull_Nebula.jpg" -> "The Seagull Nebula") when ``title_from_filename``.
    Frames of one animation (``X-0.jpg``, ``X-1.jpg``, ...) and byte-identical files count
    once, so near-copies cannot sit on both sides of the train/test split.
    """

    def __init__(
        self,
        root: str,
        metadata: str = "metadata.jsonl",
        path_field: str = "file",
        title_fields: Sequence[str] = ("title",),
        explanation_fields: Sequence[str] = ("explanation",),
        title_from_filename: bool = True,
        one_frame_per_animation: bool = True,
        labels: Mapping[str, Any] | Labeller | None = None,
        include_other: bool = False,
        task: Task = "multiclass",
        name: str = "apod_thumbs",
        corrections: str | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ConfigError(
                f"source.root={root!r} is not a folder; point it at the pictures (e.g. ../shared/data/apod-thumbs)"
            )
        self.metadata = Path(metadata) if Path(metadata).is_absolute() else self.root / metadata
        if not self.metadata.is_file():
            raise ConfigError(f"source.metadata={metadata!r} not found (looked at {self.metadata})")
        self.path_field = path_field
        self.title_fields = list(title_fields)
        self.explanation_fields = list(explanation_fields)
        self.title_from_filename = title_from_filename
        self.one_frame_per_animation = one_frame_per_animation
        self.labels_cfg = labels
        self.include_other = bool(include_other)
        if task not in ("multiclass", "multilabel"):
            raise ConfigError(f"source.task={task!r} must be multiclass or multilabel")
        self.task: Task = task
        self.name = name
        self.corrections = None
        if corrections:
            path = Path(corrections).expanduser()
            self.corrections = path if path.is_absolute() else self.root / path
            if not self.corrections.is_file():
                raise ConfigError(
                    f"source.corrections={corrections!r} not found (looked at {self.corrections}); "
                    "give a labels file (file,label CSV or JSON lines) or null"
                )

    def _corrections(self, classes: list[str], other: str) -> dict[str, list[str]]:
        """A person's labels by file (as the metadata names it): they replace the weak labels."""
        if self.corrections is None:
            return {}
        known = set(classes) | {other}
        out: dict[str, list[str]] = {}
        for row in read_label_file(self.corrections):
            bad = [lab for lab in row.all if lab not in known]
            if bad:
                raise DataError(
                    f"{self.corrections}: {row.file} is labelled {bad[0]!r}; use one of {sorted(known)}"
                )
            out[row.file] = list(row.all) if self.task == "multilabel" else [row.label]
        return out

    def _first(self, row: Mapping[str, Any], paths: list[str]) -> str:
        for p in paths:
            value = field_value(row, p)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    def keep_row(self, row: Mapping[str, Any]) -> bool:
        """Whether a metadata row takes part (all do here; the archive source leaves some out)."""
        return True

    def records(self) -> list[dict[str, Any]]:
        """Every metadata row as {file, title, explanation} (text as the labeller sees it)."""
        out = []
        for n, line in enumerate(self.metadata.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{self.metadata}:{n}: not valid JSON ({e.msg})") from None
            if not self.keep_row(row):
                continue
            rel = field_value(row, self.path_field)
            if not isinstance(rel, str):
                raise ConfigError(
                    f"{self.metadata} row {n} has no '{self.path_field}'; set source.path_field"
                )
            title = self._first(row, self.title_fields)
            if not title and self.title_from_filename:
                title = _FRAME_RE.sub("", Path(rel).stem).replace("_", " ")
            out.append(
                {
                    "file": rel,
                    "title": title,
                    "explanation": self._first(row, self.explanation_fields),
                }
            )
        return out

    def imageset(self) -> ImageSet:
        labeller = build_labeller(self.labels_cfg)
        classes = labeller.label_classes(self.include_other)
        fixes = self._corrections(classes, labeller.other)
        items: list[tuple[Path, str, list[str]]] = []
        texts: list[tuple[str, str]] = []
        corrected: list[bool] = []
        seen_sha: set[str] = set()
        seen_anim: set[str] = set()
        missing = n_fixed = 0
        for rec in self.records():
            path = self.root / rec["file"]
            if not path.is_file():
                missing += 1
                continue
            if self.one_frame_per_animation and _FRAME_RE.search(path.stem):
                group = str(path.with_name(_FRAME_RE.sub("", path.stem)))
                if group in seen_anim:
                    continue
                seen_anim.add(group)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            if sha in seen_sha:
                continue
            given = fixes.get(rec["file"])
            if given is None:
                res = labeller.label(rec["title"], rec["explanation"])
                given_or_weak = res.all if self.task == "multilabel" else [res.primary]
            else:
                given_or_weak = given
            labs = _usable(given_or_weak, classes, self.task)
            if labs:
                seen_sha.add(sha)
                items.append((path, sha, labs))
                texts.append((rec["title"], rec["explanation"]))
                corrected.append(given is not None)
                n_fixed += given is not None
        if missing:
            log.warning(
                "%d pictures listed in %s are missing; skipping them", missing, self.metadata
            )
        if fixes:
            log.info(
                "%s: %d pictures, %d labelled by %s (the rest by %s)",
                self.name,
                len(items),
                n_fixed,
                self.corrections,
                labeller.version,
            )
        labels = [labs for _, _, labs in items]
        _check_classes(labels, classes, str(self.root))
        paths = [p for p, _, _ in items]

        def load(i: int, size: int) -> np.ndarray:
            return read_image(paths[i], target_size=size)  # JPEG draft at the cache size

        return ImageSet(
            name=self.name,
            classes=classes,
            task=self.task,
            ids=[str(p.relative_to(self.root)) for p in paths],
            targets=_targets(labels, classes, self.task),
            fingerprint=_fingerprint(
                [s for _, s, _ in items], labels, labeller, classes, self.task
            ),
            load=load,
            meta={
                "paths": [str(p) for p in paths],
                "labeller": labeller.version,
                "n_corrections": n_fixed,
                "texts": texts,
                "corrected": corrected,
            },
        )
