"""Writing files so that a reader never sees half of one: :func:`atomic_write` and
:func:`move_into_place`.

Why: checkpoints, detectors, tensor caches, run summaries, bundles and thumbnails are read
by other processes (the web app, compare.py, the next run) while they are being written,
and a killed writer must leave the old file or none, never a torn one. The content goes to a
temporary file in the same folder (so the rename stays on one file system), is fsynced,
then ``os.replace`` swaps it in (atomic on POSIX and Windows), and the folder is fsynced so
the rename survives a power cut.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

Writer = Callable[[Path], object]


def atomic_write(path: str | os.PathLike[str], data_or_writer: bytes | str | Writer) -> Path:
    """Write ``path`` all at once; returns it. The parent folder is created when missing.

    ``data_or_writer``: bytes, text (UTF-8), or a function called with the temporary path
    that writes the file there (``torch.save``, ``np.savez``, ``joblib.dump``, a memory map).
    The temporary file (hidden, ending ``.tmp``: globs for the real name never match it) is
    removed if writing fails. A writer that appends a suffix to a path it is given
    (``np.savez``) should write to ``open(tmp, "wb")`` instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        if isinstance(data_or_writer, bytes | str):
            data = (
                data_or_writer.encode("utf-8")
                if isinstance(data_or_writer, str)
                else data_or_writer
            )
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            data_or_writer(tmp)
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def move_into_place(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Move the finished file ``src`` to ``dst`` (same file system) durably: fsync, rename,
    fsync the folder. For files written elsewhere first (downloads, unpacked bundles)."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fsync_file(src)  # a download fsynced already; other writers may not have
    os.replace(src, dst)
    fsync_dir(dst.parent)
    return dst


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["atomic_write", "fsync_dir", "fsync_file", "move_into_place"]
