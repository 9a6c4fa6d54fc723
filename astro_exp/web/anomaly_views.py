"""The **Anomalies** page: the flagged pictures ranked with a person's "interesting" / "not
interesting" marks (the detector's score, moved by the marks of similar pictures), which a
plain form on each card stores, no script needed."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, session, url_for

from astro_exp.data.catalog import Filters
from astro_exp.errors import DataError
from astro_exp.review.from_catalog import Candidate
from astro_exp.web.page_utils import flash_back, page_count, safe_next
from astro_exp.web.review_data import anomaly_ranking
from astro_exp.web.state import WebState, state

bp = Blueprint("anomalies", __name__)
ANOMALIES_PER_PAGE = 12


def _cards(st: WebState, run_id: str | None, page: list[Candidate]) -> list[dict[str, Any]]:
    """The page's ranked pictures as cards: the row, its neighbours, its rank and mark."""
    if not page:
        return []
    with st.catalog() as cat:
        rows = {r["id"]: r for r in cat.rows_by_id([c.picture_id for c in page], run_id)}
    items: list[dict[str, Any]] = []
    for c in page:
        row = rows.get(c.picture_id)
        if row is None:  # gone since the ranking was read
            continue
        analysis = st.analyse_row(row, views=False)
        neigh = st.neighbour_refs(analysis.prediction.get("neighbours") or []) if analysis else []
        items.append({"row": row, "neighbours": neigh, "rank": c.rank_score, "mark": c.mark})
    return items


@bp.get("/anomalies")
def anomalies() -> str:
    """Flagged pictures (``?all=1``: every scored one, so an unflagged picture like the
    interesting ones can rise) in the order the detector and the person's marks give them."""
    st = state()
    f = Filters.from_args(request.args, ANOMALIES_PER_PAGE)
    every = request.args.get("all", "") in ("1", "true", "yes", "on")
    run_id = st.run_id(request.args.get("run"))
    ranked, n_marks = anomaly_ranking(st, run_id, every)
    page = ranked[(f.page - 1) * f.per_page : f.page * f.per_page]
    return render_template(
        "anomalies.html",
        items=_cards(st, run_id, page),
        total=len(ranked),
        f=f,
        run_id=run_id,
        every=every,
        n_marks=n_marks,
        pages=page_count(len(ranked), f.per_page),
        threshold=st.model.info().get("threshold"),
    )


@bp.post("/anomalies/<int:picture_id>/mark")
def mark(picture_id: int):  # noqa: ANN201 - a redirect
    """The card's "Interesting" / "Not interesting" buttons (a form: works without a script)."""
    st = state()
    st.picture(picture_id, None)  # 404 for an unknown picture
    back = safe_next(request.form.get("next"), url_for(".anomalies"))
    flag = request.form.get("interesting")
    if flag not in ("0", "1"):
        return flash_back(back, "Mark a picture interesting (1) or not interesting (0).", "error")
    who = session.get("who") or st.settings.default_who
    try:
        when = st.write(lambda cat: cat.add_anomaly_mark(picture_id, flag == "1", who))
    except DataError as e:
        return flash_back(back, f"The mark was not saved: {e}", "error")
    verdict = "interesting" if flag == "1" else "not interesting"
    return flash_back(
        back,
        f"Picture {picture_id} marked {verdict} (by {who}, {when}); the ranking uses it.",
        "ok",
    )
