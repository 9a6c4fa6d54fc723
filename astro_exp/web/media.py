"""Pictures in and out of the web app: a classify request's picture (an upload or a URL),
validating untrusted bytes, cached thumbnails, and files resolved only inside the folders
the app owns (never from a path in a request)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import abort, request
from PIL import Image

from astro_exp.data.store import STORE_DIR
from astro_exp.files import atomic_write
from astro_exp.imageio import FORMATS, BadImage, decode_picture
from astro_exp.web.fetch import UrlRefused, fetch_picture
from astro_exp.web.settings import WebSettings

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


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


def read_submission(settings: WebSettings, url: str | None = None) -> bytes:
    """The picture bytes of a classify request (an upload, else ``url`` or the form's URL).

    Args:
        settings: the upload limit and whether (and where) a URL may be fetched.
        url: the URL of a JSON request (None: the form's ``url`` field).

    Returns:
        The bytes, at most ``max_upload_bytes`` (an upload over it is a 413); UrlRefused
        when a URL may not be fetched, BadImage when the request names no picture.
    """
    upload = request.files.get("file")
    url = (url if url is not None else request.form.get("url") or "").strip()
    if upload is not None and upload.filename:
        data = upload.stream.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            abort(413)
        return data
    if url:
        if not settings.allow_url_classify:
            raise UrlRefused(
                "classifying by URL is switched off on this server (allow_url_classify=false)"
            )
        return fetch_picture(
            url, settings.max_upload_bytes, settings.url_allow_hosts, settings.url_timeout_s
        )
    raise BadImage(
        "choose a picture to upload" + (" or give its URL" if settings.allow_url_classify else "")
    )


def decode_untrusted(data: bytes, max_pixels: int) -> Decoded:
    """Pillow ``verify`` (structure) then a full decode (pixels), with the bomb guard at
    ``max_pixels``: a truncated, disguised or oversized file is refused, not half-read.
    (The upload's byte size is limited before: the request body and the URL fetch.)"""
    im = decode_picture(data, max_pixels=max_pixels, max_bytes=None, formats=FORMATS, verify=True)
    return Decoded(
        data, hashlib.sha256(data).hexdigest(), f".{FORMATS[str(im.format)]}", np.asarray(im)
    )


def inside(root: Path, relative: str | os.PathLike[str]) -> Path | None:
    """``root/relative`` when it resolves inside ``root`` (no ``..``, no symlink escape)."""
    root = root.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    return path if path.is_relative_to(root) and path != root else None


def resolve_store_path(root: Path, rel: str) -> Path | None:
    """A catalog ``path`` inside the image store ``root`` (relative to it, or to the data
    folder as ``images/...``), or None when it would lie outside."""
    rel_path = Path(rel)
    if rel_path.parts[:1] == (STORE_DIR,):
        rel_path = Path(*rel_path.parts[1:])
    return inside(root, rel_path) if rel_path.parts else None


class Uploads:
    """Pictures classified through the web app, stored by content hash under data_dir/uploads."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, decoded: Decoded) -> str:
        path = self.root / f"{decoded.sha256}{decoded.ext}"
        if not path.exists():
            atomic_write(path, decoded.data)
        return decoded.sha256

    def path(self, sha256: str) -> Path | None:
        """The stored file of a hash (validated: 64 hex digits) or None."""
        if not SHA256_RE.match(sha256 or ""):
            return None
        for ext in dict.fromkeys(FORMATS.values()):
            p = self.root / f"{sha256}.{ext}"
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
        atomic_write(out, self.render(source))
        return out

    def render(self, source: Path) -> bytes:
        try:
            # JPEG: decode at a reduced scale, at least twice the thumbnail's size
            im = decode_picture(
                source,
                max_pixels=self.max_pixels,
                max_bytes=None,
                draft_size=(self.size * 2, self.size * 2),
            )
        except BadImage as e:
            raise BadImage(f"cannot make a thumbnail: {e}") from None
        im.thumbnail((self.size, self.size), Image.Resampling.LANCZOS, reducing_gap=2.0)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=82, optimize=True, progressive=True)
        return buf.getvalue()


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
