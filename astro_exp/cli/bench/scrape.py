"""``astro-exp bench-scrape`` (``python scripts/bench_scrape.py``): the APOD scraper's figures,
page parsing and a first sync against a re-sync over the local stand-in, as a table and JSON;
``--help`` lists the settings (conf/bench_scrape.yaml).

    python scripts/bench_scrape.py                          # 30 days, 50 ms per answer
    python scripts/bench_scrape.py days=60 latency_ms=100 out=scrape.json

The figures are :mod:`astro_exp.bench.scraper`'s.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from omegaconf import DictConfig

from astro_exp.cli.command import command


@command("bench_scrape", name="bench-scrape")
def main(cfg: DictConfig) -> dict[str, Any]:
    """Measure; print the table, and the JSON or write it to ``out``; returns the figures."""
    from astro_exp.bench.scraper import SHARED_SITE, report

    return report(
        SimpleNamespace(
            days=int(cfg.days),
            latency_ms=float(cfg.latency_ms),
            rate=float(cfg.rate),
            concurrency=int(cfg.concurrency),
            parse_seconds=float(cfg.parse_seconds),
            site=Path(cfg.site) if cfg.site else SHARED_SITE,
            out=cfg.out,
        )
    )


if __name__ == "__main__":
    main()
