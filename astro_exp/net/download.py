"""Safe picture downloads: the checks on an answer's headers and the streaming of its body
into a temporary file, for :meth:`PoliteSession.download <astro_exp.net.session.PoliteSession.download>`.

Why streamed to a temporary file in the destination folder: the caller moves it into place
with one ``os.replace`` (no half-written picture is ever visible), and nothing stays behind
when a check fails mid-transfer.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from astro_exp.net.http_errors import DownloadError, _int_header, redact


@dataclass(frozen=True)
class Download:
    """A downloaded file at a temporary ``path`` in the destination folder.

    The caller moves it into place (``os.replace``) or deletes it; it is fsynced already.
    """

    path: Path
    sha256: str
    size: int
    content_type: str
    url: str


def _truncated(url: str, size: int, length: int | None) -> str:
    of = f" of {length:,}" if length is not None else ""
    return (
        f"{redact(url)} was cut off after {size:,}{of} bytes (truncated body); run again to retry"
    )


def check_headers(
    resp: requests.Response, url: str, allowed_types: tuple[str, ...], max_bytes: int
) -> tuple[str, int | None, bool]:
    """Refuse an answer that is not a picture or is announced too big, before its body.

    Returns:
        ``(content_type, content_length or None, body is content-encoded)``.
    """
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not any(ctype.startswith(t) for t in allowed_types):
        raise DownloadError(
            f"{redact(url)} is {ctype or 'of no stated type'}, not {' or '.join(allowed_types)};"
            " the link does not point at a picture, skip it or fix the URL",
            url=url,
        )
    length = _int_header(resp.headers.get("Content-Length"))
    if length is not None and length > max_bytes:
        raise DownloadError(
            f"{redact(url)} is {length:,} bytes, over the {max_bytes:,}-byte limit;"
            " raise max_bytes to accept it",
            url=url,
        )
    encoded = resp.headers.get("Content-Encoding", "identity").lower() not in (
        "",
        "identity",
    )
    return ctype, length, encoded


def save_body(
    resp: requests.Response,
    url: str,
    dest: Path,
    max_bytes: int,
    length: int | None,
    encoded: bool,
) -> tuple[Path, str, int]:
    """Stream the body into a temporary file in ``dest``; removed again on any error.

    Returns:
        ``(temporary path, sha256 hex digest, size in bytes)``.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=".download-", suffix=".part")
    tmp = Path(tmp_name)
    size = 0
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in resp.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(
                        f"{redact(url)} sent more than {max_bytes:,} bytes; aborted,"
                        " raise max_bytes to accept it",
                        url=url,
                    )
                digest.update(chunk)
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if length is not None and not encoded and size != length:
            raise DownloadError(_truncated(url, size, length), url=url)
    except DownloadError:
        tmp.unlink(missing_ok=True)
        raise
    except (requests.RequestException, Urllib3Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
            raise DownloadError(
                f"cannot write {redact(url)} into {dest}: {exc.strerror or exc}; free disk space or fix permissions",
                url=url,
            ) from exc
        raise DownloadError(_truncated(url, size, length), url=url) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size
