"""``astro-exp watch`` (``python scripts/watch.py``): watch APOD for new days: fetch each into the
catalog, classify it, score anomalies, alert.

    python scripts/watch.py ckpt_path=outputs/.../checkpoints/best.pt watch.interval=1h
    python scripts/watch.py ckpt_path=... alerts.webhook_url=https://hooks.example/... alerts.labels=[planet]
    python scripts/watch.py ckpt_path=... --once        # one poll (cron); exit 1 when it failed

Stop it with Ctrl-C or SIGTERM (it finishes the step in progress). State lives in the
catalog, so a restart neither alerts twice nor misses the days it was down.
Exit status: 0, 1 for a failed ``--once`` poll, 2 for a bad setting or checkpoint.
"""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command
from astro_exp.errors import ConfigError


def _once(args: list[str]) -> list[str]:
    """``--once``, the cron-friendly spelling of ``watch.once=true``."""
    return [a for a in args if a != "--once"] + (["watch.once=true"] if "--once" in args else [])


@command("watch", prepare=_once)
def main(cfg: DictConfig) -> None:
    """Poll until stopped (or once); exit status 1 for a failed ``--once`` poll."""
    # imported after Hydra parsed the command line, so --help stays fast
    from hydra.utils import instantiate

    from astro_exp.data.labels import build_labeller
    from astro_exp.predict.classifier import Classifier
    from astro_exp.predict.into_catalog import run_id_for
    from astro_exp.sources.protocols import CanScrape
    from astro_exp.watch.alerts import AlertRules
    from astro_exp.watch.watcher import Watcher, WatchSettings

    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise ConfigError(
            "no checkpoint; pass ckpt_path=outputs/runs/<date>/<time>_<name>/checkpoints/best.pt"
        )
    logging.basicConfig(
        level=str(cfg.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = WatchSettings.from_config(OmegaConf.to_container(cfg.watch, resolve=True))
    source = instantiate(OmegaConf.to_container(cfg.source, resolve=True), _convert_="all")
    if not isinstance(source, CanScrape):
        raise ConfigError(
            f"source={cfg.source.name} cannot be watched; use source=apod or source=apod_api"
        )
    clf = Classifier.from_checkpoint(cfg.ckpt_path, device=cfg.device)
    rules = AlertRules.from_config(OmegaConf.to_container(cfg.alerts, resolve=True), clf.classes)
    request = _request(source)
    labeller = (
        build_labeller(OmegaConf.to_container(cfg.labels, resolve=True))
        if cfg.get("labels")
        else None
    )
    run_id = cfg.run_id or run_id_for(cfg.ckpt_path, cfg.paths.log_dir)
    watcher = Watcher(
        request,
        cfg.paths.data_dir,
        clf,
        run_id,
        settings,
        rules,
        labeller=labeller,
        http=OmegaConf.to_container(cfg.source.http, resolve=True),
    )
    logging.getLogger("astro_exp.watch").info(
        "watching %s every %ss (poll %s) with %s; predictions as run %r",
        source.name,
        settings.interval_s,
        settings.poll,
        cfg.ckpt_path,
        run_id,
    )
    try:
        code = watcher.run()
    finally:
        watcher.close()
    sys.exit(code)


def _request(source):
    """The source's scrape settings with a placeholder range (the watcher sets the days)."""
    source.last_days = 1
    return source.request()


if __name__ == "__main__":
    main()
