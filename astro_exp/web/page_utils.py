"""What the page blueprints share: page counts, same-site redirect targets, the answer to a
form (a flashed line and a redirect back), and the picture page, which shows a catalog
picture (:mod:`~astro_exp.web.gallery_views`) and an upload
(:mod:`~astro_exp.web.classify_views`) alike."""

from __future__ import annotations

import math
from typing import Any

from flask import flash, redirect, render_template
from werkzeug.wrappers import Response

from astro_exp.web.model import Analysis
from astro_exp.web.state import state


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` items fill (at least one: an empty list is one page)."""
    return max(1, math.ceil(total / per_page))


def safe_next(target: str | None, fallback: str) -> str:
    """Only same-site relative paths (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def flash_back(back: str, message: str, category: str) -> Response:
    """A form's answer: one line shown on the next page, and a redirect back to it (303)."""
    flash(message, category)
    return redirect(back, code=303)


def render_picture(
    kind: str,
    row: dict[str, Any],
    analysis: Analysis | None,
    *,
    run_id: str | None,
    original_url: str,
    options: list[str],
    who: str,
) -> str:
    """The picture page of a catalog picture (``kind="catalog"``) or an upload, with the
    catalog pictures its prediction's neighbours name.

    Args:
        kind: ``catalog`` or ``upload`` (an upload has no corrections form).
        row: what the page says of the picture (a catalog row, or an upload's size).
        analysis: the prediction and the model's views (None: nothing to show).
        run_id: the run whose stored prediction is shown (None for an upload).
        original_url: where the full-size picture is.
        options: the labels the correction form offers.
        who: the name the correction form starts with.

    Returns:
        The rendered page.
    """
    neighbours = (analysis.prediction.get("neighbours") or []) if analysis else []
    return render_template(
        "picture.html",
        kind=kind,
        row=row,
        analysis=analysis,
        neighbours=state().neighbour_refs(neighbours),
        run_id=run_id,
        original_url=original_url,
        options=options,
        who=who,
    )
