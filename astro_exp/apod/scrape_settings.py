"""What a scrape is asked to do and what it reports: the settings read from
``conf/source/apod.yaml``, :class:`ScrapeRequest`, :class:`ScrapeSummary` and the HTTP session
built from ``source.http``.

Why apart from the scraper: the sources, the watcher and the archive recipe need the request
and its defaults without the scraping machinery; :mod:`astro_exp.apod.scrape` re-exports them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from astro_exp.errors import ConfigError
from astro_exp.net.session import PoliteSession

CONF_FILE = "source/apod.yaml"  # in conf/, the package astro_exp.conf (a wheel has it too)
# keys of conf/source/apod.yaml that are scrape settings -> ScrapeRequest fields
_REQUEST_KEYS = {
    "name": "source",
    "kind": "kind",
    "base_url": "base_url",
    "api_url": "api_url",
    "api_key": "api_key",
    "start_date": "start_date",
    "end_date": "end_date",
    "last_days": "last_days",
    "picture": "picture",
    "max_bytes": "max_bytes",
    "max_pixels": "max_pixels",
    "chunk_days": "chunk_days",
}


def parse_date(value: Any, name: str) -> dt.date | None:
    """A config date (``2024-01-01``; YAML may already have made it a date) or None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD") from None


def load_defaults(conf_file: str | Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scrape settings' defaults as ``conf/source/apod.yaml`` writes them: (request, http).

    Why read the YAML: it is the one place these defaults live, so ``ScrapeRequest()``,
    ``ApodCatalogSource()`` and ``scripts/scrape.py source=apod`` cannot drift apart. The
    request part is keyed by :class:`ScrapeRequest` field (``name`` becomes ``source``); http
    values that are interpolations (``${paths.data_dir}/http_cache``) are left out, they only
    mean something inside a composed config (:func:`build_session` has its own cache rule).
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from astro_exp.config import read_conf

    try:
        # the package's conf/source/apod.yaml, unless a file is given (tests)
        text = (
            read_conf(CONF_FILE)
            if conf_file is None
            else Path(conf_file).read_text(encoding="utf-8")
        )
        raw = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
    except (OmegaConfBaseException, OSError) as e:
        raise ConfigError(
            f"cannot read the scrape defaults ({e}); check {conf_file or 'conf/' + CONF_FILE}"
        ) from None
    missing = sorted(set(_REQUEST_KEYS) - set(raw if isinstance(raw, dict) else {}))
    if missing:
        raise ConfigError(
            f"{conf_file or 'conf/' + CONF_FILE} lacks the scrape settings {missing}; put them back"
        )
    assert isinstance(raw, dict)  # not missing keys, so a mapping
    request = {field_name: raw[key] for key, field_name in _REQUEST_KEYS.items()}
    for key in ("start_date", "end_date"):
        request[key] = parse_date(request[key], f"source.{key}")
    http = {
        k: v
        for k, v in dict(raw.get("http") or {}).items()
        if not (isinstance(v, str) and "${" in v)
    }
    return request, http


_request_defaults, _http_defaults = load_defaults()
REQUEST_DEFAULTS: Mapping[str, Any] = MappingProxyType(_request_defaults)
HTTP_DEFAULTS: Mapping[str, Any] = MappingProxyType(_http_defaults)


@dataclass
class ScrapeRequest:
    """What to scrape: one source's days (a date range or the newest ``last_days``).

    The defaults are ``conf/source/apod.yaml``'s (:data:`REQUEST_DEFAULTS`), never written here.
    """

    source: str = REQUEST_DEFAULTS["source"]  # catalog source name; (source, date) is the row key
    kind: str = REQUEST_DEFAULTS["kind"]  # html: the web site's pages | api: api.nasa.gov JSON
    base_url: str = REQUEST_DEFAULTS["base_url"]
    api_url: str = REQUEST_DEFAULTS["api_url"]
    api_key: str | None = REQUEST_DEFAULTS["api_key"]  # None: $NASA_API_KEY, else DEMO_KEY
    start_date: dt.date | None = REQUEST_DEFAULTS["start_date"]
    end_date: dt.date | None = REQUEST_DEFAULTS["end_date"]
    last_days: int | None = REQUEST_DEFAULTS["last_days"]
    picture: str = REQUEST_DEFAULTS["picture"]  # image: the page's picture | hd: the full-size file
    max_bytes: int = REQUEST_DEFAULTS["max_bytes"]
    max_pixels: int = REQUEST_DEFAULTS["max_pixels"]
    chunk_days: int = REQUEST_DEFAULTS["chunk_days"]

    def __post_init__(self) -> None:
        if self.kind not in ("html", "api"):
            raise ConfigError(f"source.kind={self.kind!r} must be html or api")
        if self.picture not in ("image", "hd"):
            raise ConfigError(f"source.picture={self.picture!r} must be image or hd")
        if self.last_days is None and self.start_date is None and self.end_date is None:
            raise ConfigError(
                "say which days to scrape: source.last_days=30, or source.start_date=2024-01-01 "
                "source.end_date=2024-12-31"
            )
        if self.last_days is not None and (self.start_date or self.end_date):
            raise ConfigError(
                "give either source.last_days or source.start_date/end_date, not both"
            )
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ConfigError(
                f"source.start_date {self.start_date} is after source.end_date {self.end_date}; swap them"
            )

    def describe(self) -> str:
        if self.last_days is not None:
            return f"last {self.last_days} days"
        return f"{self.start_date or '...'}..{self.end_date or 'newest'}"


@dataclass
class ScrapeSummary:
    """Counts of one scrape run; ``line()`` is what the script prints at the end."""

    source: str
    span: str
    days: int = 0
    new: int = 0  # pictures stored by this run
    skipped: int = 0  # days done by an earlier run
    videos: int = 0
    no_image: int = 0
    failed: Counter = field(default_factory=Counter)  # status -> count
    not_started: int = 0  # left for the next run (rate limit, interrupt)
    bytes_downloaded: int = 0
    requests: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    swept: tuple[int, int] = (0, 0)

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def line(self) -> str:
        failed = f"{self.n_failed} failed"
        if self.failed:
            failed += " (" + ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) + ")"
        parts = [
            f"{self.new} new",
            f"{self.skipped} skipped (done before)",
            _plural(self.videos, "video"),
            f"{self.no_image} without picture",
            failed,
        ]
        if self.not_started:
            parts.append(f"{self.not_started} not started")
        tail = (
            f"{_human_bytes(self.bytes_downloaded)} in {_plural(self.requests, 'request')} "
            f"({self.cache_hits} from cache), {self.seconds:.1f} s"
        )
        hint = "; run again to retry the failed days" if self.failed or self.not_started else ""
        return (
            f"{self.source} {self.span}: {_plural(self.days, 'day')}: "
            + ", ".join(parts)
            + f"; {tail}{hint}"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def build_session(http: Mapping[str, Any] | None, data_dir: str | Path) -> PoliteSession:
    """A PoliteSession from ``source.http`` (cache under ``data_dir/http_cache`` unless set)."""
    opts = {**HTTP_DEFAULTS, **{k: v for k, v in dict(http or {}).items() if v is not None}}
    opts.setdefault("cache_dir", Path(data_dir) / "http_cache")
    if opts.get("cache_dir") in ("", False):
        opts["cache_dir"] = None
    allowed = {
        "user_agent",
        "rate_limit_per_host",
        "max_concurrency",
        "timeout",
        "retries",
        "backoff_factor",
        "cache_dir",
        "respect_robots",
        "max_retry_after",
    }
    unknown = set(opts) - allowed
    if unknown:
        raise ConfigError(
            f"unknown source.http settings {sorted(unknown)}; known: {sorted(allowed)}"
        )
    return PoliteSession(**opts)
