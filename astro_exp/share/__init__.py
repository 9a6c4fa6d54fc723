"""Sharing datasets between people: bundles (export / import), merges, W&B artifacts.

A bundle is one ``.tar.gz`` holding a catalog subset's pictures and a ``manifest.json``
(rows, labels, corrections with who/when, credits, and every file's sha256). Modules:

- :mod:`~astro_exp.share.bundle`: export a catalog subset;
- :mod:`~astro_exp.share.unpack`: open a bundle safely and verify it against its manifest;
- :mod:`~astro_exp.share.ingest`: import a verified bundle, all or nothing;
- :mod:`~astro_exp.share.dedupe` / :mod:`~astro_exp.share.label_rules` / :mod:`~astro_exp.share.merge`:
  merge several bundles without duplicates and settle label disagreements by rules;
- :mod:`~astro_exp.share.artifacts`: publish / pull bundles as W&B dataset artifacts;
- :mod:`~astro_exp.share.settings`: ``conf/share/default.yaml`` (limits, merge rules, W&B project).
"""

from astro_exp.share.bundle import BundleFilter, ExportResult, export_bundle
from astro_exp.share.ingest import ImportResult, import_bundle
from astro_exp.share.merge import MergeReport, merge_bundles
from astro_exp.share.settings import (
    BundleLimits,
    MergeRules,
    bundle_limits,
    load_settings,
    merge_rules,
)
from astro_exp.share.unpack import BundleRefused, VerifiedBundle, open_bundle

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
