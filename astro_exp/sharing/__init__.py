"""Sharing datasets between people: bundles (export / import), merges, W&B artifacts.

A bundle is one ``.tar.gz`` holding a catalog subset's pictures and a ``manifest.json``
(rows, labels, corrections with who/when, credits, and every file's sha256). Modules:

- :mod:`~astro_exp.sharing.export`: export a catalog subset;
- :mod:`~astro_exp.sharing.unpack`: open a bundle safely and verify it against its manifest;
- :mod:`~astro_exp.sharing.ingest`: import a verified bundle, all or nothing;
- :mod:`~astro_exp.sharing.dedupe` / :mod:`~astro_exp.sharing.label_rules` / :mod:`~astro_exp.sharing.merge`:
  merge several bundles without duplicates and settle label disagreements by rules;
- :mod:`~astro_exp.sharing.artifacts`: publish / pull bundles as W&B dataset artifacts;
- :mod:`~astro_exp.sharing.publishing`: ``dataset publish`` / ``pull`` end to end (export or
  verify, then upload; download, then import);
- :mod:`~astro_exp.sharing.settings`: ``conf/share/default.yaml`` (limits, merge rules, W&B project).
"""

from astro_exp.sharing.export import BundleFilter, ExportResult, export_bundle
from astro_exp.sharing.ingest import ImportResult, import_bundle
from astro_exp.sharing.merge import MergeReport, merge_bundles
from astro_exp.sharing.settings import (
    BundleLimits,
    MergeRules,
    bundle_limits,
    load_settings,
    merge_rules,
)
from astro_exp.sharing.unpack import BundleRefused, VerifiedBundle, open_bundle

__all__ = [
    "BundleFilter",
    "BundleLimits",
    "BundleRefused",
    "ExportResult",
    "ImportResult",
    "MergeReport",
    "MergeRules",
    "VerifiedBundle",
    "bundle_limits",
    "export_bundle",
    "import_bundle",
    "load_settings",
    "merge_bundles",
    "merge_rules",
    "open_bundle",
]
