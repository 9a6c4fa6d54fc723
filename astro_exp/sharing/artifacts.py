"""Share bundles as versioned W&B dataset artifacts: publish one, pull one back.

Why artifacts: W&B versions each upload (``:v0``, ``:v1``, ``:latest``) and records which run
made it, so a team can say "trained on team/astro-apod:v3" and anyone can pull exactly that.
Both directions need W&B's server: without an API key, with ``WANDB_MODE=offline`` or
without a network the commands say so in one line before doing anything, and publish
leaves the bundle on disk. ``offline=True`` instead logs the artifact into an offline run
(``wandb sync`` uploads it later).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from astro_exp.errors import ConfigError, DataError
from astro_exp.tracking.wandb_logger import has_credentials

DEFAULT_HOST = "https://api.wandb.ai"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
NEEDS = "needs a connection to W&B (set WANDB_API_KEY, go online)"


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact lives: ``entity/project/name:alias``."""

    entity: str | None
    project: str
    name: str
    alias: str = "latest"

    def path(self) -> str:
        head = f"{self.entity}/{self.project}" if self.entity else self.project
        return f"{head}/{self.name}:{self.alias}"


def parse_ref(text: str, project: str, entity: str | None = None) -> ArtifactRef:
    """``name[:alias]``, ``entity/name[:alias]`` (project from the settings) or
    ``entity/project/name[:alias]``; the alias defaults to ``latest``."""
    body, _, alias = str(text).partition(":")
    parts = body.split("/")
    if len(parts) == 1:
        ent, proj, name = entity, project, parts[0]
    elif len(parts) == 2:
        ent, proj, name = parts[0], project, parts[1]
    elif len(parts) == 3:
        ent, proj, name = parts
    else:
        raise ConfigError(
            f"artifact={text} is not name[:alias], entity/name[:alias] or entity/project/name[:alias]"
        )
    check_name(name)
    if not all(p and _NAME_RE.match(p) for p in (ent or "x", proj, alias or "latest")):
        raise ConfigError(
            f"artifact={text}: entity, project and alias may hold letters, digits, '-', '_' and '.'"
        )
    return ArtifactRef(ent, proj, name, alias or "latest")


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise ConfigError(
            f"artifact name {name!r} may hold only letters, digits, '-', '_' and '.' (at most 128)"
        )
    return name


def host_url() -> str:
    """W&B's server: ``$WANDB_BASE_URL``, else the installed wandb's default."""
    try:
        from wandb.sdk.lib.urls import DEFAULT_BASE_URL as default
    except ImportError:  # older wandb: api.wandb.ai
        default = DEFAULT_HOST
    return os.environ.get("WANDB_BASE_URL", default).rstrip("/")


def connection_problem(timeout: float = 5.0) -> str | None:
    """Why W&B's server cannot be used now (one phrase), or None when it can."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in ("offline", "dryrun", "disabled"):
        return f"WANDB_MODE is {mode}"
    host = host_url()
    if not has_credentials(host):
        return "no W&B API key (WANDB_API_KEY or `wandb login`)"
    url = urlparse(host)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return None
    except OSError as e:
        return f"cannot reach {host} ({e.strerror or e})"


@dataclass
class Published:
    """What publish logged."""

    name: str
    project: str
    entity: str | None
    offline: bool
    run_dir: str
    url: str | None = None

    def line(self) -> str:
        if self.offline:
            return (
                f"logged dataset artifact {self.name} into the offline run {self.run_dir};"
                f" upload it with `wandb sync {self.run_dir}` when online"
            )
        where = f"{self.entity or '(default entity)'}/{self.project}"
        return f"published dataset artifact {self.name} to {where}" + (
            f": {self.url}" if self.url else ""
        )


def publish(
    bundle: Path,
    name: str,
    settings: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    aliases: list[str] | None = None,
    run_dir: Path | None = None,
    offline: bool = False,
) -> Published:
    """Log ``bundle`` as the dataset artifact ``name`` from a ``dataset-publish`` run.

    Raises DataError (the bundle untouched) when W&B cannot be reached and ``offline`` is False.
    """
    check_name(name)
    bundle = Path(bundle)
    if not bundle.is_file():
        raise DataError(f"no bundle at {bundle}; export one first")
    if not offline:
        why = connection_problem(float(settings.get("connect_timeout") or 5))
        if why:
            raise DataError(f"publish {NEEDS}; the bundle stays at {bundle} ({why})")
    import wandb

    project, entity = str(settings.get("project") or "astro-exp"), settings.get("entity") or None
    run_dir = Path(run_dir or bundle.parent)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(metadata or {})
    try:
        run = wandb.init(
            project=project,
            entity=entity,
            job_type="dataset-publish",
            dir=str(run_dir),
            mode="offline" if offline else "online",
            config={"bundle": bundle.name, **meta},
        )
        try:
            art = wandb.Artifact(
                name,
                type="dataset",
                description=f"astro-exp dataset bundle {bundle.name}",
                metadata=meta,
            )
            art.add_file(str(bundle), name=bundle.name)
            run.log_artifact(art, aliases=list(aliases or []) or None)
            if not offline:
                art.wait()
            out = Published(
                name, project, entity, offline, str(Path(run.dir).parent), getattr(run, "url", None)
            )
        finally:
            run.finish()
    except (wandb.errors.Error, OSError) as e:
        raise DataError(
            f"publish could not log the artifact ({_one_line(e)}); the bundle stays at {bundle}"
        ) from None
    return out


def pull(ref: ArtifactRef, dest: Path, settings: dict[str, Any]) -> list[Path]:
    """Download the dataset artifact ``ref`` under ``dest``; returns the bundle files it holds."""
    why = connection_problem(float(settings.get("connect_timeout") or 5))
    if why:
        raise DataError(f"pull {NEEDS}; nothing was imported ({why})")
    import wandb

    try:
        api = wandb.Api(timeout=60)
        art = api.artifact(ref.path(), type="dataset")
        folder = Path(art.download(root=str(dest / f"{ref.name}-{art.version}")))
    except (wandb.errors.Error, ValueError, OSError) as e:
        raise DataError(
            f"could not pull {ref.path()} ({_one_line(e)}); check the name on the W&B web page"
        ) from None
    bundles = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.name.endswith((".tar.gz", ".tgz"))
    )
    if not bundles:
        raise DataError(
            f"artifact {ref.path()} holds no .tar.gz bundle (downloaded to {folder}); was it published by astro-exp?"
        )
    return bundles


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
