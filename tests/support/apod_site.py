"""Site trees for the APOD stand-in in the checkout: the fixture site and the shared real pages.

Why here and not in the package: both are the checkout's files (``tests/fixtures`` and
``../shared/data``). Generated sites are the package's
(:func:`astro_exp.apod.site_gen.write_site`, re-exported here for the tests).
"""

from __future__ import annotations

from pathlib import Path

from astro_exp.apod.site_gen import write_site
from tests.support import SHARED_DATA

__all__ = ["FIXTURE_SITE", "SHARED_SITE", "default_site_dirs", "write_site"]

FIXTURE_SITE = Path(__file__).resolve().parent.parent / "fixtures" / "apod_site"
SHARED_SITE = SHARED_DATA / "apod-site"


def default_site_dirs() -> list[Path]:
    """The project's fixture site, then ../shared/data/apod-site when it is there."""
    return [p for p in (FIXTURE_SITE, SHARED_SITE) if (p / "apod").is_dir()]
