"""``astro-exp scrape`` (``python scripts/scrape.py``): fetch APOD days into the catalog and
image store under ``paths.data_dir``.

    python scripts/scrape.py source=apod source.start_date=2024-01-01 source.end_date=2024-12-31
    python scripts/scrape.py source=apod source.last_days=30          # the newest month
    python scripts/scrape.py source=apod_api source.last_days=30      # NASA_API_KEY, else DEMO_KEY
    python scripts/scrape.py source=apod source.last_days=7 labels=apod_extended
    python scripts/scrape.py source=apod_mirror source.root=~/apod-mirror  # a local copy, in minutes

Safe to kill at any time; run it again and it finishes the range. The last line on stdout
sums up the run (new, skipped, failed by reason; a failed day is retried by the next run).
Exit status: 0 when the run went through (even with failed days), 2 for a bad setting or an
unusable site (one line on stderr), 130 when interrupted.
"""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command
from astro_exp.errors import ConfigError


@command("scrape")
def main(cfg: DictConfig) -> None:
    """Scrape the configured source's range; the summary line on stdout."""
    # imported after Hydra parsed the command line, so --help stays fast
    from hydra.utils import get_class, instantiate

    from astro_exp.sources.protocols import CanImport, CanScrape

    logging.basicConfig(
        level=str(cfg.log_level).upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    source_cfg = OmegaConf.to_container(cfg.source, resolve=True)
    assert isinstance(source_cfg, dict)
    target = get_class(str(source_cfg.get("_target_", "")))
    if not issubclass(target, (CanScrape, CanImport)):
        raise ConfigError(
            f"source={cfg.source.name} cannot be scraped; use source=apod, source=apod_api "
            "or source=apod_mirror"
        )
    source = instantiate(source_cfg, _convert_="all")
    try:
        if isinstance(source, CanImport):  # a local archive or mirror: read, not fetched
            summary = source.import_into_catalog(progress=bool(cfg.progress))
        else:
            summary = source.scrape(progress=bool(cfg.progress))
    except KeyboardInterrupt:
        print("interrupted; run the same command again to finish the range", file=sys.stderr)
        sys.exit(130)
    print(summary.line(), flush=True)


if __name__ == "__main__":
    main()
