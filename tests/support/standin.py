"""The local APOD stand-in for the tests (:mod:`astro_exp.apod.standin`, re-exported here),
and its demo server over the checkout's sites.

Run ``python -m tests.support.standin --port 8000`` for a demo server (the fixture site, and
``../shared/data/apod-site`` unless ``--no-shared``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from astro_exp.apod.standin import (
    API_PATH,
    CONTENT_TYPES,
    DEFAULT_ROBOTS,
    FAULT_KINDS,
    ApodStandin,
    Fault,
    Faults,
    day_to_api_item,
)
from tests.support.apod_site import SHARED_SITE, default_site_dirs

__all__ = [
    "API_PATH",
    "CONTENT_TYPES",
    "DEFAULT_ROBOTS",
    "FAULT_KINDS",
    "ApodStandin",
    "Fault",
    "Faults",
    "day_to_api_item",
    "main",
]


def main(argv: list[str] | None = None) -> None:
    """Serve the stand-in until Ctrl-C (for demos: point source.base_url at it)."""
    ap = argparse.ArgumentParser(
        description="Serve a local APOD stand-in (site + API) on 127.0.0.1."
    )
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument(
        "--site", action="append", type=Path, help="a site root holding apod/ (repeatable)"
    )
    ap.add_argument(
        "--no-shared", action="store_true", help="do not serve ../shared/data/apod-site"
    )
    args = ap.parse_args(argv)
    sites = args.site or [
        p for p in default_site_dirs() if not (args.no_shared and p == SHARED_SITE)
    ]
    if not sites:
        raise SystemExit("error: no site folder found; pass --site DIR (a folder holding apod/)")
    with ApodStandin(sites, host=args.host, port=args.port) as s:
        print(f"APOD stand-in: {s.base_url}  (API: {s.api_url}?api_key=DEMO_KEY)", flush=True)
        print("serving " + ", ".join(str(p) for p in sites) + "; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
