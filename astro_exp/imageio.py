"""The one picture decoder: every reader of picture files or bytes goes through
:func:`decode_picture`.

Why one decoder: pictures come from untrusted places (scraped pages, uploads, URLs, other
people's bundles), and each reader used to carry its own limits and its own error messages.
Here the limits are applied in one order, before any pixel is decoded: the byte size, then
the pixel count from the header (a 50,000 x 50,000 PNG of a few kilobytes is refused without
allocating gigabytes), then the format; Pillow's own decompression-bomb guard stays on.
Every refusal is one :class:`BadImage` line without the file's name (callers add it where
the reader needs it: a catalog row stores the reason, a prediction row names its input).
Each caller passes the limits it always had; the module defaults are the store's.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from astro_exp.errors import DataError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own MAX_IMAGE_PIXELS
DEFAULT_MAX_BYTES = 50_000_000
# a picture decoded only to be shrunk to S pixels keeps at least this many times S on each
# side (JPEG draft): the final resize then still averages >= 2x2 source pixels per output
# pixel, so the result matches a full decode to about a grey level (tests/test_imageio.py)
DRAFT_MARGIN = 2
# Pillow format -> file extension (without the dot): the formats we store and accept
FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp"}

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


class BadImage(DataError):
    """A file or bytes that are not a picture we accept (empty, truncated, not an image,
    another format, too many bytes or pixels); the message is one line for the user."""


def decode_picture(
    src: Source,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    formats: Collection[str] | None = None,
    draft_size: tuple[int, int] | None = None,
    mode: str | None = "RGB",
    exif_transpose: bool = True,
    verify: bool = False,
) -> Image.Image:
    """Fully decode ``src`` (a path, bytes or a binary file object) or raise :class:`BadImage`.

    ``max_pixels``/``max_bytes``: refuse larger pictures (``None``: no limit of our own;
    Pillow's decompression-bomb guard still refuses what it considers a bomb).
    ``formats``: Pillow format names accepted (``None``: any Pillow reads).
    ``draft_size``: let a JPEG decode at a reduced scale of at least this size (Pillow
    ``Image.draft``; other formats ignore it). ``mode``: the returned image's mode
    (``None``: as decoded). The returned image's ``format`` is the source's.
    ``exif_transpose``: turn the picture upright by its EXIF orientation.
    ``verify``: also run Pillow's structural check (chunk checksums) before decoding.
    """
    data, path = _source(src, max_bytes)
    try:
        with warnings.catch_warnings():
            # Pillow warns above its MAX_IMAGE_PIXELS; below a larger limit of ours that is no
            # reason to refuse, otherwise its warning is a refusal like its error
            above = max_pixels is not None and max_pixels > (Image.MAX_IMAGE_PIXELS or 0)
            warnings.simplefilter("ignore" if above else "error", Image.DecompressionBombWarning)
            with _open(data, path) as im:
                fmt = im.format or ""
                w, h = im.size
                if max_pixels is not None and w * h > max_pixels:
                    raise BadImage(
                        f"{w}x{h} pixels, over the {max_pixels:,}-pixel limit (a decompression bomb?);"
                        " raise max_pixels to accept it"
                    )
                if formats is not None and fmt not in formats:
                    raise BadImage(
                        f"a {fmt or 'unknown'} file, not a picture format we accept ({', '.join(formats)})"
                    )
                if not verify:
                    out = _pixels(im, mode, draft_size, exif_transpose)
                else:
                    im.verify()
            if verify:  # verify() leaves the image unusable: open it again to decode
                with _open(data, path) as im:
                    out = _pixels(im, mode, draft_size, exif_transpose)
    except BadImage:
        raise
    except FileNotFoundError:
        raise BadImage("no such file; check the path") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImage(f"too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow names an in-memory source by its memory address: then its type says more
        detail = type(e).__name__ if path is None and " at 0x" in str(e) else e
        raise BadImage(f"not a readable picture ({detail})") from None
    out.format = fmt or None  # the source's format, also on a converted copy
    return out


def _pixels(
    im: Image.Image, mode: str | None, draft_size: tuple[int, int] | None, exif_transpose: bool
) -> Image.Image:
    """The full decode of an opened picture (truncated or corrupt data fails here)."""
    if draft_size is not None:
        im.draft(mode, (int(draft_size[0]), int(draft_size[1])))  # JPEG only; others ignore it
    im.load()
    if exif_transpose:
        im = ImageOps.exif_transpose(im)
    if mode is not None and im.mode != mode:
        im = im.convert(mode)
    return im


def read_image(
    path: str | os.PathLike[str],
    max_pixels: int | None = None,
    max_bytes: int | None = None,
    target_size: int | None = None,
) -> np.ndarray:
    """A picture file as upright RGB uint8 (H, W, 3); a refusal is a :class:`BadImage` that
    names the file (training sources, predictions and the web app's stored pictures).

    No limits of its own by default (the pictures were checked when stored or are the
    user's own); Pillow's decompression-bomb guard still applies.
    ``target_size``: the caller shrinks the picture to this many pixels next (the tensor
    cache, predict): a JPEG then decodes at a reduced DCT scale that keeps at least
    :data:`DRAFT_MARGIN` times that on both sides; a 4000 px photo for a 64 px model decodes
    at 1/8 scale, about 10x faster. ``None``: the full picture.
    """
    draft = None if target_size is None else (DRAFT_MARGIN * int(target_size),) * 2
    try:
        return np.asarray(
            decode_picture(path, max_pixels=max_pixels, max_bytes=max_bytes, draft_size=draft)
        )
    except BadImage as e:
        raise BadImage(f"{path}: {e}") from None


def _source(src: Source, max_bytes: int | None) -> tuple[bytes | None, Path | None]:
    """(bytes, None) for in-memory sources, (None, path) for files; size limits checked."""
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BadImage("no such file; check the path") from None
        _check_size(size, max_bytes)
        return None, path
    if isinstance(src, bytes | bytearray | memoryview):
        data = bytes(src)
    else:  # a binary file object: read at most one byte over the limit
        data = src.read() if max_bytes is None else src.read(max_bytes + 1)
    _check_size(len(data), max_bytes)
    return data, None


def _check_size(size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise BadImage(
            f"{size:,} bytes, over the {max_bytes:,}-byte limit (raise max_bytes to accept it)"
        )
    if size == 0:
        raise BadImage("empty file")


def _open(data: bytes | None, path: Path | None) -> Image.Image:
    return Image.open(io.BytesIO(data)) if data is not None else Image.open(path)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DRAFT_MARGIN",
    "FORMATS",
    "BadImage",
    "decode_picture",
    "read_image",
]
