"""``astro-exp bench`` (``python scripts/bench.py``): throughput figures, each against a baseline
measured in the same run, as JSON on stdout.

    python scripts/bench.py                              # the default config (conf/train.yaml)
    python scripts/bench.py model=tiny bench.steps=10    # any train.py override, the bench's keys under bench.
    python scripts/bench.py bench.predict=true           # also predict latency and the detectors (latency.py)
    python scripts/bench.py trainer.accelerator=cuda trainer.precision=bf16 trainer.channels_last=true
    python scripts/bench_predict.py model=tiny           # only those (bench.predict_only=true)

The figures are the stage :mod:`astro_exp.bench`'s (:mod:`~astro_exp.bench.figures` puts them
together); this module only composes the config and reports. The web app's figures are
``astro-exp bench-web`` (:mod:`astro_exp.cli.bench.web`), the scraper's
``astro-exp bench-scrape`` (:mod:`astro_exp.cli.bench.scrape`).
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from astro_exp.cli.command import command
from astro_exp.errors import ConfigError


def _prepare(args: list[str]) -> list[str]:
    if "scrape" in args:
        raise ConfigError(
            "the scraper benchmark is its own command: astro-exp bench-scrape "
            "(python scripts/bench_scrape.py, or python scripts/bench.py scrape)"
        )
    return args


@command("bench", prepare=_prepare)
def main(cfg: DictConfig) -> dict:
    """Measure, print the JSON (and write ``bench.out``); returns the figures."""
    from astro_exp.bench.figures import bench_figures

    result = bench_figures(cfg)
    text = json.dumps(result, indent=2)
    print(text)
    if cfg.bench.out:
        Path(cfg.bench.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
