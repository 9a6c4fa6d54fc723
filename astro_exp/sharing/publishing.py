"""A bundle through W&B end to end (``astro-exp dataset publish / pull``): export or verify a
bundle, then log it as a dataset artifact; download an artifact, then import its bundles.

Why apart from :mod:`~astro_exp.sharing.artifacts`: that module speaks to W&B only; these
steps join it to the bundle code, so that what is published is always a bundle an import
would accept, and what is pulled goes through the same all-or-nothing import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from astro_exp.sharing.artifacts import Published, check_name, parse_ref, publish, pull
from astro_exp.sharing.export import BundleFilter, export_bundle
from astro_exp.sharing.ingest import ImportResult, import_bundle
from astro_exp.sharing.settings import bundle_limits
from astro_exp.sharing.unpack import open_bundle

_META_KEYS = ("format_version", "created_at", "creator", "filter", "labels")  # of the manifest


def publish_data(
    name: str,
    data_dir: Path,
    settings: Mapping[str, Any],
    *,
    bundle: Path | None = None,
    out: Path | None = None,
    selection: BundleFilter | None = None,
    creator: str | None = None,
    aliases: Sequence[str] = (),
    offline: bool = False,
    say: Callable[[str], None] = print,
) -> Published:
    """Publish a bundle as the dataset artifact ``name``, its manifest's summary as metadata.

    Args:
        name: the artifact's name (checked before anything is written).
        data_dir: the data folder; the W&B run is kept there.
        settings: the share settings (``bundle`` limits, ``wandb`` project and entity).
        bundle: publish this bundle, verified first (never one an import would refuse);
            None: export one from ``data_dir`` first.
        out: where that export goes; None: ``data_dir/bundles/<name>.tar.gz``.
        selection: which rows that export takes.
        creator: who made the export; None: the default creator.
        aliases: W&B aliases for the version (``best``, ``2024``, ...).
        offline: log into an offline run instead (``wandb sync`` uploads it later).
        say: where the export's line goes (before the upload starts).

    Returns:
        What was logged (its ``line()`` says where).
    """
    name = check_name(name)
    if bundle:
        with open_bundle(bundle, bundle_limits(settings)) as vb:
            manifest = vb.manifest
    else:
        bundle = Path(out or data_dir / "bundles" / f"{name}.tar.gz")
        result = export_bundle(data_dir, bundle, selection, creator=creator)
        say(result.line())
        manifest = result.manifest
    meta = {k: manifest.get(k) for k in _META_KEYS}
    meta.update(pictures=len(manifest["pictures"]), files=len(manifest["files"]))
    return publish(
        bundle,
        name,
        settings.get("wandb") or {},
        metadata=meta,
        aliases=list(aliases),
        run_dir=data_dir,
        offline=offline,
    )


def pull_data(
    ref: str, data_dir: Path, settings: Mapping[str, Any], say: Callable[[str], None] = print
) -> list[ImportResult]:
    """Download the dataset artifact ``ref`` and import each bundle it holds into ``data_dir``.

    Args:
        ref: ``name[:alias]``, ``entity/name[:alias]`` or ``entity/project/name[:alias]``
            (project and entity default to the ``wandb`` settings).
        data_dir: the data folder; downloads go under ``bundles/pulled``.
        settings: the share settings (``bundle`` limits, ``wandb`` project and entity).
        say: where each import's line goes, as it is done.

    Returns:
        One import result per bundle.
    """
    wb = settings.get("wandb") or {}
    artifact = parse_ref(ref, str(wb.get("project") or "astro-exp"), wb.get("entity"))
    done = []
    for path in pull(artifact, data_dir / "bundles" / "pulled", wb):
        done.append(import_bundle(path, data_dir, bundle_limits(settings)))
        say(done[-1].line())
    return done
