"""The manifest of a dataset bundle (``manifest.json``) and its validation.

Why a manifest: it is what the importer trusts. It lists every file with its sha256 and
size (so a changed byte or a missing file is caught before anything is written), and every
catalog row with its labels, its people's corrections (who, when) and its provenance
(credit, copyright, page URL), so a bundle carries everything a catalog knows about a
picture. Archive member names are the store's own paths (``images/ab/cd/<sha256>.<ext>``),
so a bundle unpacks straight into a data folder's layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from astro_exp.data.catalog import PictureRecord

FORMAT = "astro-exp-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# store path of a picture: images/ab/cd/<sha256>.<ext>, the first four hex digits as folders
FILE_RE = re.compile(r"^images/([0-9a-f]{2})/([0-9a-f]{2})/(\1\2[0-9a-f]{60})\.([a-z]{2,4})$")
DIR_RE = re.compile(r"^images(/[0-9a-f]{2}(/[0-9a-f]{2})?)?$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
RECORD_FIELDS = tuple(f.name for f in fields(PictureRecord))


def picture_entry(row: Mapping[str, Any], corrections: list[dict[str, Any]]) -> dict[str, Any]:
    """A catalog row as a manifest entry: every PictureRecord field, plus its corrections."""
    entry = {k: row.get(k) for k in RECORD_FIELDS}
    entry["corrections"] = [
        {"label": c["label"], "who": c["who"], "created_at": c["created_at"]} for c in corrections
    ]
    return entry


def record_of(entry: Mapping[str, Any]) -> PictureRecord:
    """The PictureRecord a manifest entry describes (what the importer upserts)."""
    return PictureRecord(**{k: entry.get(k) for k in RECORD_FIELDS})


def check_manifest(manifest: Any, refuse: Callable[[str], Exception]) -> dict[str, Any]:
    """Refuse a manifest that is not one this version can import; returns it unchanged.

    Checks the shape, not the file contents (the unpacker compares those): every picture
    row names a listed file by its own sha256, and file paths are store paths. ``refuse``
    makes the exception to raise from a one-line reason.
    """

    def bad(why: str) -> Exception:
        return refuse(f"bad manifest ({why}), ask its author for a new export")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise bad(f"not an {FORMAT} manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise refuse(
            f"bundle format version {version!r}; this astro-exp reads up to {FORMAT_VERSION}, upgrade it"
        )
    files, pictures = manifest.get("files"), manifest.get("pictures")
    if not isinstance(files, list) or not isinstance(pictures, list):
        raise bad("'files' and 'pictures' must be lists")
    _check_pictures(pictures, _check_files(files, bad), bad)
    return manifest


def _check_files(files: list[Any], bad: Callable[[str], Exception]) -> dict[str, str]:
    """Every listed file is a store path with its sha256 and size, once; returns path -> sha256."""
    listed: dict[str, str] = {}
    for f in files:
        if not isinstance(f, dict):
            raise bad("a 'files' entry is not an object")
        path, sha, size = f.get("path"), f.get("sha256"), f.get("bytes")
        m = FILE_RE.match(path) if isinstance(path, str) else None
        if m is None or sha != m.group(3) or not isinstance(size, int) or size < 0:
            raise bad(
                f"file entry {path!r} is not images/ab/cd/<sha256>.<ext> with its sha256 and size"
            )
        if path in listed:
            raise bad(f"file {path} listed twice")
        listed[path] = sha
    return listed


def _check_pictures(
    pictures: list[Any], listed: dict[str, str], bad: Callable[[str], Exception]
) -> None:
    """Every picture has a source and date (once), names a listed file by its sha256, and its
    labels and corrections have the right shape."""
    keys: set[tuple[str, str]] = set()
    for p in pictures:
        if not isinstance(p, dict):
            raise bad("a 'pictures' entry is not an object")
        source, date = p.get("source"), p.get("date")
        if not isinstance(source, str) or not source or not isinstance(date, str) or not date:
            raise bad("a picture has no source or date")
        if (source, date) in keys:
            raise bad(f"picture {source}/{date} listed twice")
        keys.add((source, date))
        if p.get("path") is not None and listed.get(p["path"]) != p.get("sha256"):
            raise bad(
                f"picture {source}/{date} points at {p['path']!r}, which is not a listed file with its sha256"
            )
        if p.get("labels") is not None and not isinstance(p["labels"], dict):
            raise bad(f"picture {source}/{date} has labels that are not an object")
        corr = p.get("corrections", [])
        if not isinstance(corr, list) or not all(
            isinstance(c, dict)
            and all(isinstance(c.get(k), str) and c.get(k) for k in ("label", "who", "created_at"))
            for c in corr
        ):
            raise bad(f"picture {source}/{date} has corrections without label, who and created_at")
