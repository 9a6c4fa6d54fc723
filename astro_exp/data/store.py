"""Content-addressed image store: ``data_dir/images/ab/cd/<sha256>.<ext>``.

Why content addressing: the same picture on two days (or from two sources) is stored once,
a file's name proves its content, and a file is either complete or absent. Pictures
arrive as temporary files in ``images/.tmp/`` (fsynced by the download), are fully decoded
under Pillow's decompression-bomb guard and a size limit, then renamed into place (an
atomic step on one file system). :meth:`ImageStore.sweep` removes what a killed process
left behind: temporary files, and store files no catalog row points at.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from astro_exp.files import move_into_place
from astro_exp.imageio import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, FORMATS, decode_picture

log = logging.getLogger(__name__)

STORE_DIR = "images"
TMP_DIR = ".tmp"
_STORED_RE = re.compile(r"^[0-9a-f]{64}\.[a-z]{2,4}$")


@dataclass(frozen=True)
class StoredImage:
    """A picture committed to the store; ``path`` is relative to the data folder."""

    sha256: str
    path: str
    width: int
    height: int
    format: str
    bytes: int


def check_image(path: Path, max_pixels: int, max_bytes: int) -> tuple[str, int, int]:
    """Fully decode ``path``; returns (Pillow format, width, height) or raises
    :class:`~astro_exp.imageio.BadImage` (one line). The size is the file's own (before any
    EXIF rotation): what the catalog records of the stored bytes."""
    im = decode_picture(
        path,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        formats=FORMATS,
        mode=None,
        exif_transpose=False,
    )
    return str(im.format), im.width, im.height


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ImageStore:
    """The picture files of one data folder (``data_dir/images``)."""

    def __init__(
        self,
        data_dir: str | Path,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / STORE_DIR
        self.tmp_dir = self.root / TMP_DIR
        self.max_pixels = int(max_pixels)
        self.max_bytes = int(max_bytes)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def rel_path(self, sha256: str, ext: str) -> str:
        """``images/ab/cd/<sha256>.<ext>``, relative to the data folder (what the catalog stores)."""
        return f"{STORE_DIR}/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"

    def abspath(self, rel: str) -> Path:
        """A catalog path as a file path (relative to the data folder, or to the store)."""
        p = Path(rel)
        if p.is_absolute():
            return p
        return self.data_dir / p if p.parts[:1] == (STORE_DIR,) else self.root / p

    def commit(self, tmp: Path, sha256: str | None = None) -> StoredImage:
        """Check the temporary file ``tmp`` and move it into the store; ``tmp`` is gone afterwards.

        Raises :class:`~astro_exp.imageio.BadImage` (the file removed) when it is not an acceptable picture. A picture
        already in the store is not written again.
        """
        tmp = Path(tmp)
        try:
            fmt, w, h = check_image(tmp, self.max_pixels, self.max_bytes)
            sha = sha256 or sha256_file(tmp)
            size = tmp.stat().st_size
            rel = self.rel_path(sha, FORMATS[fmt])
            final = self.abspath(rel)
            if final.is_file() and final.stat().st_size == size:
                tmp.unlink()
            else:
                move_into_place(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredImage(sha, rel, w, h, fmt, size)

    def add_bytes(self, data: bytes) -> StoredImage:
        """Store picture bytes from memory (tests, other sources) the same safe way."""
        fd, name = _mkstemp(self.tmp_dir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return self.commit(Path(name), hashlib.sha256(data).hexdigest())

    def sweep(self, referenced: set[str]) -> tuple[int, int]:
        """Remove temporary files and store files no catalog row references; (temps, orphans).

        Only run it while no other process writes this store (the scraper holds a lock).
        Files that do not look like store entries are left alone.
        """
        keep = {self.abspath(p).resolve() for p in referenced}
        temps = orphans = 0
        for f in self.tmp_dir.iterdir() if self.tmp_dir.is_dir() else ():
            if f.is_file():
                f.unlink(missing_ok=True)
                temps += 1
        for f in self.root.rglob("*"):
            if not f.is_file() or TMP_DIR in f.relative_to(self.root).parts:
                continue
            if f.name.startswith(".download-") or f.name.endswith((".part", ".tmp")):
                f.unlink(missing_ok=True)
                temps += 1
            elif _STORED_RE.match(f.name) and f.resolve() not in keep:
                f.unlink(missing_ok=True)
                orphans += 1
        if temps or orphans:
            log.info("store sweep: removed %d temporary and %d unreferenced files", temps, orphans)
        return temps, orphans


def _mkstemp(folder: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".part")
