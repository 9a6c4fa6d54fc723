"""Weights & Biases: every run is a W&B run, online with an API key and offline without.

Imported only when ``logger=wandb``, so ``logger=none`` needs no W&B at all. The logger
never prompts for a login (CI has no stdin): without credentials it records offline, and
``wandb sync <run>/wandb/offline-run-*`` uploads the run later.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_MODES = {"online", "offline", "disabled", "shared"}
_ALIASES = {"run": "online", "dryrun": "offline"}  # the WANDB_MODE spellings W&B accepts
INIT_TIMEOUT_S = 60.0  # W&B's default is 90 s; an unreachable server should not stall a job longer


def has_credentials(host: str | None = None) -> bool:
    """Whether W&B would find credentials without prompting (the one check: runs and dataset
    artifacts both ask it): the environment, the stdlib ``.netrc`` entry of the host
    (``$NETRC``, else ``~/.netrc``; what ``wandb login`` writes), W&B's settings file, then
    W&B's own lookup for the versions that keep keys elsewhere.

    Args:
        host: W&B's server URL; default ``$WANDB_BASE_URL``, else ``https://api.wandb.ai``.
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    import configparser
    import netrc
    from urllib.parse import urlsplit

    url = host or os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        if netrc.netrc(path).authenticators(urlsplit(url).hostname or ""):
            return True
    except (OSError, netrc.NetrcParseError):
        pass
    settings = configparser.ConfigParser()
    config_dir = os.environ.get("WANDB_CONFIG_DIR") or os.path.join(
        os.path.expanduser("~"), ".config", "wandb"
    )
    try:
        settings.read(os.path.join(config_dir, "settings"))
        if settings.get("default", "api_key", fallback=""):
            return True
    except configparser.Error:
        pass
    try:
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib.wbauth import authenticate_session

        base = wandb_setup.singleton().settings.base_url
        found = authenticate_session(
            host=base, source="astro_exp", prompt=False, update_session=False
        )
        return found is not None
    except Exception as e:  # noqa: BLE001 - an older wandb, a malformed key: go offline
        log.debug("W&B's own credential lookup failed (%s)", e)
        return False


def resolve_mode(mode: str = "auto") -> str:
    """The mode wandb.init gets: an explicit WANDB_MODE wins (CI forces offline that way),
    then the config's mode; ``auto`` is online only when credentials exist. Online without
    credentials would prompt or fail, so it degrades to offline with a warning."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    chosen = _ALIASES.get(env, env) if env else _ALIASES.get(mode, mode)
    if chosen == "auto":
        return "online" if has_credentials() else "offline"
    if chosen not in _MODES:
        raise ValueError(f"W&B mode {chosen!r}: use auto, online, offline or disabled")
    if chosen in ("online", "shared") and not has_credentials():
        log.warning(
            "W&B mode %s but no API key (WANDB_API_KEY or `wandb login`); logging offline", chosen
        )
        return "offline"
    return chosen


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


class WandbLogger:
    """One W&B run in ``<run_dir>/wandb``; keeps the trainer's step as W&B's step."""

    def __init__(
        self,
        run_dir: str | Path,
        project: str = "astro-exp",
        entity: str | None = None,
        group: str | None = None,
        name: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        mode: str = "auto",
        job_type: str = "train",
        resume_id: str | None = None,
    ) -> None:
        import wandb

        self.wandb = wandb
        self.mode = resolve_mode(mode)
        self._step = 0
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        kwargs = {
            "dir": str(run_dir),
            "project": project,
            "entity": entity,
            "group": group,
            "name": name,
            "tags": list(tags),
            "job_type": job_type,
            "id": resume_id,
            "resume": "allow" if resume_id else None,
            "reinit": "finish_previous",
        }
        try:
            self.run = wandb.init(mode=self.mode, settings=self._settings(), **kwargs)
        except Exception as e:  # server down / timeout: keep training, record offline
            if self.mode != "online":
                raise
            log.warning("W&B online init failed (%s); logging this run offline", e)
            self.mode = "offline"
            self.run = wandb.init(mode="offline", settings=self._settings(), **kwargs)
        self._finished = False

    def _settings(self):
        # console off: Hydra already writes the run's log file, and wrapping stdout fights tqdm.
        # No system-stats sampler: it costs a process and CPU on small machines.
        return self.wandb.Settings(
            console="off", silent=True, x_disable_stats=True, init_timeout=INIT_TIMEOUT_S
        )

    @property
    def run_id(self) -> str:
        """Pass back as ``resume_id`` to continue this W&B run."""
        return self.run.id

    @property
    def run_path(self) -> str:
        """``entity/project/run_id`` (entity is empty offline)."""
        return str(self.run.path)

    @property
    def run_dir(self) -> Path:
        """W&B's folder for this run (holds the .wandb log; ``wandb sync`` takes it)."""
        return Path(self.run.dir).parent

    @property
    def url(self) -> str | None:
        return self.run.url if self.mode == "online" else None

    def log_config(self, config: dict) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._step = max(self._step, int(step))
        self.run.log({k: _scalar(v) for k, v in metrics.items()}, step=int(step))

    def log_image(self, key: str, path: str | Path) -> None:
        # at the last step seen: logging without a step would advance W&B's step past the
        # trainer's and W&B would drop the next metrics logged at that step
        self.run.log({key: self.wandb.Image(str(path))}, step=self._step)

    def log_predictions(self, key: str, images: np.ndarray, rows: list[dict]) -> None:
        """A Table with an ``image`` column (the picture) and one column per row key."""
        if not rows:
            return
        columns = list(dict.fromkeys(k for row in rows for k in row))
        picture = "image" if "image" not in columns else "picture"
        table = self.wandb.Table(columns=[picture, *columns])
        for img, row in zip(images, rows, strict=False):
            caption = " / ".join(str(row[k]) for k in ("label", "prediction") if k in row) or None
            table.add_data(
                self.wandb.Image(np.asarray(img), caption=caption),
                *[_scalar(row.get(c)) for c in columns],
            )
        self.run.log({key: table}, step=self._step)

    def log_summary(self, summary: dict[str, float]) -> None:
        self.run.summary.update({k: _scalar(v) for k, v in summary.items()})

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.run.finish()
        if self.mode == "offline":
            log.info("W&B offline run %s: upload with `wandb sync %s`", self.run_id, self.run_dir)
