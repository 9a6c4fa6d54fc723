"""Fetch APOD days into the catalog and image store under ``paths.data_dir``.

    python scripts/scrape.py source=apod source.start_date=2024-01-01 source.end_date=2024-12-31
    python scripts/scrape.py source=apod source.last_days=30          # the newest month
    python scripts/scrape.py source=apod_api source.last_days=30      # NASA_API_KEY, else DEMO_KEY
    python scripts/scrape.py source=apod source.last_days=7 labels=apod_extended

Safe to kill at any time; run it again and it finishes the range. The last line on stdout
sums up the run (new, skipped, failed by reason; a failed day is retried by the next run).
Exit status: 0 when the run went through (even with failed days), 2 for a bad setting or an
unusable site (one line on stderr), 130 when interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astro_exp.errors import AstroExpError  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="scrape")
def main(cfg: DictConfig) -> None:
    # imported after Hydra parsed the command line, so --help stays fast
    from hydra.utils import instantiate

    logging.basicConfig(level=str(cfg.log_level).upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        source_cfg = OmegaConf.to_container(cfg.source, resolve=True)
        if "scrape" not in dir(_target_class(source_cfg)):
            raise AstroExpError(f"source={cfg.source.name} cannot be scraped; use source=apod or source=apod_api")
        source = instantiate(source_cfg, _convert_="all")
        summary = source.scrape(progress=bool(cfg.progress))
    except AstroExpError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to finish the range", file=sys.stderr)
        sys.exit(130)
    print(summary.line(), flush=True)


def _target_class(source_cfg: dict) -> type:
    from hydra.utils import get_class

    return get_class(str(source_cfg.get("_target_", "")))


if __name__ == "__main__":
    main()
