"""``astro-exp bench-web`` (``python scripts/bench_web.py``): the web app's response times as
JSON on stdout; ``--help`` lists the settings (conf/bench_web.yaml).

    python scripts/bench_web.py                          # a 20,000-row demo catalog
    python scripts/bench_web.py rows=50000 repeat=30
    python scripts/bench_web.py catalog=both out=bench_web.json   # the APOD archive under load

The figures are :mod:`astro_exp.bench.web_gallery`'s (``catalog=demo``) and
:mod:`astro_exp.bench.web_load`'s (``catalog=10k|100k|both|predict``).
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from astro_exp.cli.command import command


@command("bench_web", name="bench-web")
def main(cfg: DictConfig) -> dict:
    """Time the web app (``catalog=``: demo, 10k, 100k, both); the JSON report on stdout."""
    from astro_exp.bench.web_gallery import demo_report, scale_report

    if str(cfg.catalog) != "demo":
        report = scale_report(
            Path(str(cfg.archive)).expanduser(),
            str(cfg.catalog),
            int(cfg.big_rows),
            int(cfg.requests),
            int(cfg.clients),
            int(cfg.server_threads),
            int(cfg.predict_pictures),
        )
        text = json.dumps(report, indent=1)
        print(text)
        if cfg.out:
            Path(str(cfg.out)).write_text(text + "\n", encoding="utf-8")
        return report
    report = demo_report(
        int(cfg.rows), int(cfg.repeat), int(cfg.review_rows), int(cfg.review_repeat)
    )
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
