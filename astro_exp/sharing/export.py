"""Export a catalog subset as one dataset bundle (``.tar.gz`` with ``manifest.json``).

Why one archive: a colleague gets pictures, metadata, weak labels, people's corrections and
credits in a single file whose manifest says what every byte should hash to, so the
importer (:mod:`astro_exp.sharing.unpack`) can refuse anything changed on the way. The
archive is written to a temporary name and renamed, so a killed export leaves no
half-written bundle under the requested name.
"""

from __future__ import annotations

import datetime as dt
import getpass
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astro_exp.data.catalog import DONE_STATUSES, OK, Catalog, catalog_path, now_iso
from astro_exp.data.store import ImageStore, sha256_file
from astro_exp.errors import ConfigError, DataError
from astro_exp.files import atomic_write
from astro_exp.sharing.manifest import FILE_RE, FORMAT, FORMAT_VERSION, MANIFEST, picture_entry

if TYPE_CHECKING:
    from astro_exp.data.labels import Labeller

STATUSES = {"ok": (OK,), "done": DONE_STATUSES}


@dataclass
class BundleFilter:
    """Which catalog rows go into a bundle (recorded in the manifest as ``filter``)."""

    since: str | None = None  # ISO date, inclusive
    until: str | None = None  # ISO date, inclusive
    sources: list[str] | None = None
    status: str = "ok"  # ok: pictures only; done: also video / no-image days (metadata only)
    labels: str | None = None  # a conf/labels name: weak labels are recomputed with it

    def check(self) -> None:
        """Refuse bad values; dates are normalised to YYYY-MM-DD (what catalog rows hold)."""
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                try:
                    setattr(self, name, dt.date.fromisoformat(str(value)).isoformat())
                except ValueError:
                    raise ConfigError(
                        f"{name}={value} is not a date; write it as YYYY-MM-DD"
                    ) from None
        if self.status not in STATUSES:
            raise ConfigError(f"status={self.status} is not one of {', '.join(STATUSES)}")

    def keeps(self, row: dict[str, Any]) -> bool:
        date = str(row.get("date") or "")
        return (
            row.get("status") in STATUSES[self.status]
            and (self.since is None or date >= str(self.since))
            and (self.until is None or date <= str(self.until))
        )


@dataclass
class ExportResult:
    """What an export wrote."""

    path: Path
    pictures: int
    files: int
    bytes: int
    corrections: int
    labels: dict[str, str] | None = None
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    def line(self) -> str:
        return (
            f"wrote {self.path}: {self.pictures} pictures, {self.files} files ({self.bytes / 1e6:.1f} MB),"
            f" {self.corrections} label corrections"
            + (f"; weak labels by {self.labels['version']}" if self.labels else "")
        )


def default_creator() -> str:
    """Who made a bundle: ``$ASTRO_EXP_USER``, else the login name."""
    name = os.environ.get("ASTRO_EXP_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def export_bundle(
    data_dir: str | Path,
    out: str | Path,
    selection: BundleFilter | None = None,
    creator: str | None = None,
) -> ExportResult:
    """Write the catalog rows of ``data_dir`` that ``selection`` keeps, and their pictures, to ``out``."""
    selection = selection or BundleFilter()
    selection.check()
    data_dir, out = Path(data_dir), Path(out)
    path = catalog_path(data_dir)
    if not path.is_file():
        raise DataError(f"no catalog at {path}; scrape or import pictures first, or pass data_dir=")
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise ConfigError(f"out={out} should end in .tar.gz (a bundle is a gzipped tar archive)")
    labeller = None
    if selection.labels:
        from astro_exp.data.labels import Labeller, load_label_config

        labeller = Labeller(load_label_config(selection.labels))
    store = ImageStore(data_dir)
    rows, by_picture, source_info = _read_catalog(path, selection)
    pictures, files = _entries(rows, by_picture, labeller, store)

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": now_iso(),
        "creator": creator or default_creator(),
        "source_catalog": source_info,
        "filter": {k: v for k, v in vars(selection).items() if v is not None},
        "labels": {"config": selection.labels, "version": labeller.version} if labeller else None,
        "files": [
            {"path": rel, "sha256": sha, "bytes": size}
            for rel, (sha, size) in sorted(files.items())
        ],
        "pictures": pictures,
    }
    _write_archive(out, manifest, store)
    return ExportResult(
        path=out,
        pictures=len(pictures),
        files=len(files),
        bytes=sum(size for _, size in files.values()),
        corrections=sum(len(p["corrections"]) for p in pictures),
        labels=manifest["labels"],
        manifest=manifest,
    )


def _read_catalog(
    path: Path, selection: BundleFilter
) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]], dict[str, Any]]:
    """The rows ``selection`` keeps, every picture's correction history, and what the
    manifest records of the catalog they came from."""
    with Catalog(path) as cat:
        rows = [r for r in cat.rows(selection.sources) if selection.keeps(r)]
        by_picture = cat.correction_history()
        source_info = {
            "path": str(path.resolve()),
            "schema_version": cat.version,
            "rows": cat.count(),
        }
    if not rows:
        raise DataError(f"no catalog rows match {_describe(selection)} in {path}; widen the filter")
    return rows, by_picture, source_info


def _entries(
    rows: list[dict[str, Any]],
    by_picture: dict[int, list[dict[str, Any]]],
    labeller: Labeller | None,
    store: ImageStore,
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, int]]]:
    """The manifest's picture entries (weak labels recomputed when a labeller is given) and
    the store files they name, each checked against its row: ``{path: (sha256, bytes)}``."""
    pictures, files = [], {}
    for r in rows:
        entry = picture_entry(r, by_picture.get(int(r["id"]), []))
        if labeller is not None and r.get("title"):
            entry["labels"] = labeller.label(r["title"], r.get("explanation")).to_json()
        if entry.get("path"):
            rel = str(entry["path"])
            if FILE_RE.match(rel) is None:
                raise DataError(
                    f"row {r['source']}/{r['date']} points at {rel}, not a store path; scrape that day again"
                )
            if rel not in files:
                files[rel] = _checked_file(store.abspath(rel), entry.get("sha256"), r)
        pictures.append(entry)
    return pictures, files


def _checked_file(file: Path, sha: str | None, row: dict[str, Any]) -> tuple[str, int]:
    """(sha256, size) of a store file, refusing one that is missing or no longer matches its row."""
    if not file.is_file():
        raise DataError(
            f"picture file {file} of {row['source']}/{row['date']} is missing; scrape that day again before exporting"
        )
    actual = sha256_file(file)
    if actual != sha or not file.name.startswith(actual):
        raise DataError(
            f"picture file {file} does not match its checksum (damaged?); scrape {row['date']} again"
        )
    return actual, file.stat().st_size


def _write_archive(out: Path, manifest: dict[str, Any], store: ImageStore) -> None:
    mtime = int(dt.datetime.now(dt.timezone.utc).timestamp())

    def info(name: str, size: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime, ti.mode, ti.type = size, mtime, 0o644, tarfile.REGTYPE
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    def write(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
            data = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")
            tar.addfile(info(MANIFEST, len(data)), io.BytesIO(data))
            for f in manifest["files"]:
                with store.abspath(f["path"]).open("rb") as fh:
                    tar.addfile(info(f["path"], f["bytes"]), fh)

    atomic_write(out, write)


def _describe(selection: BundleFilter) -> str:
    parts = [f"{k}={v}" for k, v in vars(selection).items() if v is not None and k != "labels"]
    return " ".join(parts) or "the filter"
