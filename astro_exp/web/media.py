"""Pictures in and out of the web app: validating untrusted bytes, cached thumbnails, and
files resolved only inside the folders the app owns (never from a path in a request)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# formats accepted from uploads and URLs (what Pillow decodes fully and safely)
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class BadImage(ValueError):
    """Untrusted bytes are not a picture we accept; the message is shown to the user."""


@dataclass
class Decoded:
    """A validated picture: its original bytes, content hash, format and RGB pixels."""

    data: bytes
    sha256: str
    ext: str
    pixels: np.ndarray  # (H, W, 3) uint8

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def decode_untrusted(data: bytes, max_pixels: int) -> Decoded:
    """Pillow ``verify`` (structure) then a full decode (pixels), with the bomb guard at
    ``max_pixels``: a truncated, disguised or oversized file is refused, not half-read."""
    if not data:
        raise BadImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format
                if fmt not in FORMATS:
                    raise BadImage(f"{fmt or 'this'} files are not accepted; upload {', '.join(FORMATS)}")
                w, h = im.size
                if w * h > max_pixels:
                    raise BadImage(f"the picture is {w}x{h} pixels, over the {max_pixels:,}-pixel limit")
                im.verify()
            with Image.open(io.BytesIO(data)) as im:  # verify() leaves the image unusable: reopen
                im.load()
                im = ImageOps.exif_transpose(im)
                pixels = np.asarray(im.convert("RGB"))
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("the picture is too large to decode safely (decompression-bomb guard)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadImage(f"not a readable picture ({type(e).__name__})") from None
    return Decoded(data, hashlib.sha256(data).hexdigest(), FORMATS[fmt], pixels)


def write_atomic(path: Path, data: bytes) -> Path:
    """Temp file + rename in the same folder: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def inside(root: Path, relative: str | os.PathLike[str]) -> Path | None:
    """``root/relative`` when it resolves inside ``root`` (no ``..``, no symlink escape)."""
    root = root.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    return path if path.is_relative_to(root) and path != root else None


class Uploads:
    """Pictures classified through the web app, stored by content hash under data_dir/uploads."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, decoded: Decoded) -> str:
        path = self.root / f"{decoded.sha256}{decoded.ext}"
        if not path.exists():
            write_atomic(path, decoded.data)
        return decoded.sha256

    def path(self, sha256: str) -> Path | None:
        """The stored file of a hash (validated: 64 hex digits) or None."""
        if not SHA256_RE.match(sha256 or ""):
            return None
        for ext in dict.fromkeys(FORMATS.values()):
            p = self.root / f"{sha256}{ext}"
            if p.is_file():
                return p
        return None


class Thumbnails:
    """JPEG thumbnails made once per picture and size, cached on disk by content hash."""

    def __init__(self, root: Path, size: int, max_pixels: int) -> None:
        self.root = root
        self.size = int(size)
        self.max_pixels = int(max_pixels)

    def path_for(self, sha256: str) -> Path:
        return self.root / str(self.size) / sha256[:2] / f"{sha256}.jpg"

    def get(self, sha256: str, source: Path) -> Path:
        """The cached thumbnail, made from ``source`` the first time (atomic write)."""
        if not SHA256_RE.match(sha256):
            raise BadImage("not a picture hash")
        out = self.path_for(sha256)
        if out.is_file():
            return out
        write_atomic(out, self.render(source))
        return out

    def render(self, source: Path) -> bytes:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(source) as im:
                    if im.size[0] * im.size[1] > self.max_pixels:
                        raise BadImage("picture too large for a thumbnail")
                    im.draft("RGB", (self.size * 2, self.size * 2))  # JPEG: decode at a reduced scale
                    im = ImageOps.exif_transpose(im)
                    im = im.convert("RGB")
                    im.thumbnail((self.size, self.size), Image.Resampling.LANCZOS, reducing_gap=2.0)
                    buf = io.BytesIO()
                    im.save(buf, "JPEG", quality=82, optimize=True, progressive=True)
                    return buf.getvalue()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError, SyntaxError,
                    ValueError) as e:  # fmt: skip
                raise BadImage(f"cannot make a thumbnail ({type(e).__name__})") from None


def png_data_uri(chw: np.ndarray) -> str:
    """A float [0, 1] (3, H, W) or uint8 (H, W, 3) array as an inline PNG (small model views)."""
    a = np.asarray(chw)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
