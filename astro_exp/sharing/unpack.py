"""Open a dataset bundle safely: check every member, unpack into a temporary folder, verify.

Why so strict: a bundle comes from someone else. Before anything touches the catalog or the
store, every member header is checked (no absolute paths, no ``..``, no links or devices,
only ``manifest.json`` and store paths, member count and sizes under the limits), each
file is hashed while it is written, and the result must match the manifest exactly: every
listed file present with its sha256 and size, nothing unlisted, every picture decodable
under the store's guards. Only a bundle that passes all of it is handed to the importer;
the temporary folder is removed whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from astro_exp.data.store import check_image
from astro_exp.errors import DataError
from astro_exp.imageio import FORMATS, BadImage
from astro_exp.sharing.manifest import DIR_RE, FILE_RE, MANIFEST, check_manifest
from astro_exp.sharing.settings import BundleLimits

_CHUNK = 1 << 20
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose every file matched its manifest; files live under ``root`` until closed."""

    path: Path
    root: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def creator(self) -> str:
        return str(self.manifest.get("creator") or "unknown")

    def file(self, rel: str) -> Path:
        return self.root / rel


class BundleRefused(DataError):
    """A bundle that is damaged, changed, unsafe or too large; nothing of it was imported."""


@contextmanager
def open_bundle(
    path: str | Path, limits: BundleLimits | None = None, tmp_parent: Path | None = None
) -> Iterator[VerifiedBundle]:
    """Yield the verified contents of the bundle at ``path`` (or raise BundleRefused).

    ``tmp_parent``: where to unpack (the store's temporary folder, so files can be moved
    into the store without a copy); the system's temporary folder when None.
    """
    limits = limits or BundleLimits()
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"no bundle at {path}; check the path (export one with `python scripts/dataset.py export out=...`)"
        )
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _refused(
            path, f"the archive is {size:,} bytes, over bundle.max_bytes={limits.max_bytes:,}"
        )
    if tmp_parent is not None:
        tmp_parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bundle-", dir=tmp_parent))
    try:
        hashes = _unpack(path, root, limits)
        yield VerifiedBundle(path, root, _verify(path, root, hashes, limits))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _refused(path: Path, why: str) -> BundleRefused:
    """The one-line error for a refused bundle (raise it)."""
    return BundleRefused(f"refusing bundle {path.name}: {why}; nothing was imported")


def _unpack(path: Path, root: Path, limits: BundleLimits) -> dict[str, tuple[str, int]]:
    """Check each member and write the plain files under ``root``; {name: (sha256, size)}."""
    hashes: dict[str, tuple[str, int]] = {}
    seen: set[str] = set()
    members = total = 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                members += 1
                if members > limits.max_members:
                    raise _refused(
                        path, f"more than bundle.max_members={limits.max_members:,} members"
                    )
                name = _check_member(path, member, limits)
                if name in seen:
                    raise _refused(path, f"member {name!r} appears twice")
                seen.add(name)
                if member.isdir():
                    continue
                total += member.size
                if total > limits.max_bytes:
                    raise _refused(
                        path,
                        f"its files unpack to more than bundle.max_bytes={limits.max_bytes:,} bytes",
                    )
                hashes[name] = _write_member(path, tar, member, root / name)
            _drain(path, tar, limits)
    except BundleRefused:
        raise
    except _READ_ERRORS as e:
        raise _refused(
            path, f"not a readable .tar.gz ({e}); it may be truncated or damaged, get it again"
        ) from None
    return hashes


def _check_member(path: Path, member: tarfile.TarInfo, limits: BundleLimits) -> str:
    """The member's name if it is a safe plain file or folder of a bundle; else refuse it."""
    name = member.name
    if member.issym() or member.islnk():
        raise _refused(
            path,
            f"member {name!r} is a link (to {member.linkname!r}); bundles hold plain files only",
        )
    if not (member.isreg() or member.isdir()):
        raise _refused(path, f"member {name!r} is a device, pipe or other special file")
    posix = PurePosixPath(name)
    if (
        posix.is_absolute()
        or PureWindowsPath(name).is_absolute()
        or name.startswith(("\\", "/"))
        or ":" in name
    ):
        raise _refused(path, f"member {name!r} has an absolute path")
    if ".." in posix.parts or ".." in PureWindowsPath(name).parts:
        raise _refused(path, f"member {name!r} climbs out of the bundle folder (path traversal)")
    clean = name[2:] if name.startswith("./") else name
    clean = clean.rstrip("/") if member.isdir() else clean
    if member.isdir():
        if not DIR_RE.match(clean):
            raise _refused(
                path, f"unexpected folder {name!r} (a bundle holds manifest.json and images/)"
            )
    elif clean != MANIFEST and not FILE_RE.match(clean):
        raise _refused(
            path,
            f"unexpected member {name!r} (a bundle holds manifest.json and images/ab/cd/<sha256>.<ext>)",
        )
    if member.size > limits.max_member_bytes:
        raise _refused(
            path,
            f"member {name!r} is {member.size:,} bytes, over bundle.max_member_bytes={limits.max_member_bytes:,}",
        )
    # the stdlib's own guard as well (Python >= 3.11.4)
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        try:
            data_filter(member, "/nonexistent-bundle-root")
        except tarfile.FilterError as e:
            raise _refused(path, f"member {name!r} is unsafe ({e})") from None
    return clean


def _write_member(
    path: Path, tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path
) -> tuple[str, int]:
    """Copy one plain file out of the archive, hashing it on the way; (sha256, size)."""
    src = tar.extractfile(member)
    if src is None:  # pragma: no cover - isreg() members always have data
        raise _refused(path, f"member {member.name!r} has no data")
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with src, dest.open("xb") as out:
        while chunk := src.read(_CHUNK):
            size += len(chunk)
            if size > member.size:  # pragma: no cover - tarfile reads exactly member.size
                raise _refused(path, f"member {member.name!r} is longer than its header says")
            digest.update(chunk)
            out.write(chunk)
    if size != member.size:
        raise _refused(path, f"member {member.name!r} is truncated")
    return digest.hexdigest(), size


def _drain(path: Path, tar: tarfile.TarFile, limits: BundleLimits) -> None:
    """Read the compressed stream to its end, so gzip's own CRC and length are checked too."""
    fileobj = tar.fileobj
    if fileobj is None:  # pragma: no cover
        return
    extra = 0
    while chunk := fileobj.read(_CHUNK):
        extra += len(chunk)
        if extra > limits.max_bytes:
            raise _refused(path, "it has too much data after the end of the archive")


def _verify(
    path: Path, root: Path, hashes: dict[str, tuple[str, int]], limits: BundleLimits
) -> dict[str, Any]:
    """The manifest, once every file matches it exactly and every picture decodes."""
    if MANIFEST not in hashes:
        raise _refused(path, f"it has no {MANIFEST} (not an astro-exp bundle?)")
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise _refused(path, f"{MANIFEST} is not valid JSON ({e})") from None
    check_manifest(manifest, lambda why: _refused(path, why))
    listed = {f["path"]: f for f in manifest["files"]}
    unlisted = sorted(set(hashes) - set(listed) - {MANIFEST})
    if unlisted:
        raise _refused(
            path, f"{len(unlisted)} files are not in the manifest (first: {unlisted[0]})"
        )
    for rel, f in listed.items():
        if rel not in hashes:
            raise _refused(path, f"{rel} is listed in the manifest but missing from the archive")
        sha, size = hashes[rel]
        if sha != f["sha256"] or size != f["bytes"]:
            raise _refused(
                path,
                f"{rel} does not match its sha256 in the manifest (changed or damaged on the way)",
            )
        try:
            fmt, _, _ = check_image(root / rel, limits.max_pixels, limits.max_member_bytes)
        except BadImage as e:
            raise _refused(path, f"{rel} is not an acceptable picture ({e})") from None
        if not rel.endswith("." + FORMATS[fmt]):
            raise _refused(path, f"{rel} is a {fmt} file under another extension")
    return manifest
