"""The web app's settings, one typed object built from ``conf/serve.yaml`` (or a plain dict
in tests), so views never reach into a loose mapping and a typo fails at start-up."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from astro_exp.errors import ConfigError
from astro_exp.review.settings import ReviewSettings


@dataclass
class WebSettings:
    """Everything :func:`astro_exp.web.create_app` needs; paths may be relative to the cwd."""

    data_dir: Path = Path("data")
    outputs_dir: Path = Path("outputs")
    # the catalog's SQLite file; null = the catalog's default place under data_dir
    catalog_path: Path | None = None
    ckpt_path: Path | None = None
    # predictions of which run the gallery shows; null = the newest run in the catalog
    run_id: str | None = None
    device: str = "auto"
    max_upload_bytes: int = 20_000_000
    # decoded pixels accepted (decompression-bomb guard for uploads and URL downloads)
    max_pixels: int = 60_000_000
    allow_url_classify: bool = False
    # host or host:port pairs URL classification may reach even when private/loopback (tests)
    url_allow_hosts: list[str] = field(default_factory=list)
    url_timeout_s: float = 15.0
    page_size: int = 48
    thumb_size: int = 256
    top_k: int = 5
    n_augmented: int = 4
    # default name stored with label corrections when the form leaves "who" empty
    default_who: str = "web"
    secret_key: str | None = None
    # Flask TESTING: exceptions still become friendly pages, but tests may switch CSRF off
    csrf: bool = True
    # the Review page's queue and the Anomalies page's re-ranking (conf/review/default.yaml);
    # a mapping (serve.yaml's review group, a test's partial dict) or None, kept typed
    review: ReviewSettings | Mapping[str, Any] | None = None

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | WebSettings | None) -> WebSettings:
        """Build from a dict/DictConfig, refusing unknown keys (a typo is a clear error)."""
        if isinstance(cfg, WebSettings):
            return cfg
        raw = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown web setting(s) {unknown}; known: {sorted(known)}")
        s = cls(**raw)
        s.data_dir = Path(s.data_dir)
        s.outputs_dir = Path(s.outputs_dir)
        s.catalog_path = Path(s.catalog_path) if s.catalog_path else None
        s.ckpt_path = Path(s.ckpt_path) if s.ckpt_path else None
        s.url_allow_hosts = [str(h).lower() for h in (s.url_allow_hosts or [])]
        s.review = ReviewSettings.from_config(s.review)  # a bad review.* fails at start
        for name in ("max_upload_bytes", "max_pixels", "page_size", "thumb_size", "top_k"):
            if int(getattr(s, name)) < 1:
                raise ConfigError(f"{name}={getattr(s, name)} must be a positive integer")
        if not 16 <= int(s.thumb_size) <= 1024:
            raise ConfigError(f"thumb_size={s.thumb_size} must be within 16..1024 pixels")
        s.secret_key = s.secret_key or secrets.token_hex(32)  # per start: sessions end with it
        return s
