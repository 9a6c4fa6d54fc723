"""What a training source is, and the optional abilities some sources have, as protocols.

A source is any object built from ``conf/source`` whose ``imageset()`` returns the
:class:`~astro_exp.data.imageset.ImageSet` to train on. What only some sources can do is a
``runtime_checkable`` protocol here, so a stage asks ``isinstance(source, HasAnomalySet)``
(one name to grep, one signature to keep) instead of probing with ``hasattr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from astro_exp.data.imageset import ImageSet

if TYPE_CHECKING:
    from astro_exp.apod.mirror_import import ImportSummary
    from astro_exp.apod.scrape import ScrapeRequest, ScrapeSummary


@runtime_checkable
class ImageSource(Protocol):
    """Every training source (``conf/source/*.yaml`` ``_target_``)."""

    def imageset(self) -> ImageSet:
        """The pictures and targets to train on."""
        ...


@runtime_checkable
class HasAnomalySet(Protocol):
    """A source that can make pictures of kinds it keeps out of training (the synthetic
    renderer's comets, trails, flares): the anomaly stage scores them; sources without this
    ability get scikit-image's photos instead (``anomaly.photos``)."""

    def anomaly_set(self, per_kind: int, kinds: Sequence[str] | None) -> ImageSet:
        """``per_kind`` pictures of each of ``kinds`` (None: every kind the source knows)."""
        ...


@runtime_checkable
class CanScrape(Protocol):
    """A source whose pictures are fetched from the web into the catalog first: what
    ``scrape`` runs and ``watch`` polls (``source=apod`` / ``source=apod_api``)."""

    def request(self) -> ScrapeRequest:
        """The scrape this config describes."""
        ...

    def scrape(self, progress: bool | None = None) -> ScrapeSummary:
        """Fetch the missing days into the catalog."""
        ...


@runtime_checkable
class CanImport(Protocol):
    """A source whose days come from a local copy of APOD into the catalog: what ``scrape``
    runs for it instead of fetching (``source=apod_mirror``)."""

    def import_into_catalog(self, progress: bool | None = None) -> ImportSummary:
        """Import the days the catalog lacks."""
        ...
