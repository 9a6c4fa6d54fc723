"""The person-in-the-loop pages, on the pages' blueprint (CSRF-protected forms): **Review**
(label the pictures the model learns most from, keyboard-first; ``static/review.js`` talks
to ``/api/review``) and **Anomalies** (the flagged pictures ranked with the person's
"interesting" / "not interesting" marks, which a plain form stores, no script needed)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for

from astro_exp.data.catalog import Catalog
from astro_exp.errors import DataError
from astro_exp.review.queue import QUEUE_ORDERS as ORDERS
from astro_exp.web import queries
from astro_exp.web.review_data import anomaly_ranking, review_task
from astro_exp.web.state import state
from astro_exp.web.views import ANOMALIES_PER_PAGE, _pages, _safe_next, bp, picture_analysis

SCRAPE_HINT = "python scripts/scrape.py source=apod source.last_days=30"
PREDICT_HINT = "python scripts/predict.py ckpt_path=outputs/.../checkpoints/best.pt catalog=true"
KEYED = 9  # classes with a number key (1..9)


def _who() -> str:
    return session.get("who") or state().settings.default_who


# -- review -----------------------------------------------------------------------------------------
@bp.get("/review")
def review() -> str:
    """The page shell: the first pictures arrive from ``/api/review`` (one round trip per
    batch, never per picture). Without a catalog or predictions, one line says what to run."""
    st = state()
    order = request.args.get("order") or st.review.order
    order = order if order in ORDERS else st.review.order
    ctx: dict[str, Any] = {
        "order": order,
        "orders": ORDERS,
        "run_id": None,
        "classes": [],
        "task": "multiclass",
        "missing": None,
        "keyed": KEYED,
    }
    if not st.has_catalog:
        ctx["missing"] = ("No catalog yet", "Gather pictures first:", SCRAPE_HINT)
    else:
        run_id = st.run_id(request.args.get("run"))
        task = review_task(st, run_id) if run_id else None
        if run_id not in st.run_ids() or task is None or not task.classes:
            ctx["missing"] = (
                "No predictions to review",
                "Classify the catalog first:",
                PREDICT_HINT,
            )
        else:
            ctx.update(run_id=run_id, run_ids=st.run_ids(), classes=task.classes, task=task.task)
    return render_template("review.html", **ctx)


# -- anomalies ------------------------------------------------------------------------------------
@bp.get("/anomalies")
def anomalies() -> str:
    """Flagged pictures (``?all=1``: every scored one, so an unflagged picture like the
    interesting ones can rise) in the order the detector and the person's marks give them."""
    st = state()
    f = queries.Filters.from_args(request.args, ANOMALIES_PER_PAGE)
    every = request.args.get("all", "") in ("1", "true", "yes", "on")
    run_id = st.run_id(request.args.get("run"))
    ranked, n_marks = anomaly_ranking(st, run_id, every)
    page = ranked[(f.page - 1) * f.per_page : f.page * f.per_page]
    items: list[dict[str, Any]] = []
    if page:
        with st.connect() as conn:
            rows = {
                r["id"]: r for r in queries.rows_by_id(conn, [c.picture_id for c in page], run_id)
            }
        for c in page:
            row = rows.get(c.picture_id)
            if row is None:  # gone since the ranking was read
                continue
            analysis = picture_analysis(st, row, views=False)
            neigh = (
                st.neighbour_refs(analysis.prediction.get("neighbours") or []) if analysis else []
            )
            items.append({"row": row, "neighbours": neigh, "rank": c.rank_score, "mark": c.mark})
    return render_template(
        "anomalies.html",
        items=items,
        total=len(ranked),
        f=f,
        run_id=run_id,
        every=every,
        n_marks=n_marks,
        pages=_pages(len(ranked), f.per_page),
        threshold=st.model.info().get("threshold"),
    )


@bp.post("/anomalies/<int:picture_id>/mark")
def mark_anomaly(picture_id: int):  # noqa: ANN201 - a redirect
    """The card's "Interesting" / "Not interesting" buttons (a form: works without a script)."""
    st = state()
    st.picture(picture_id, None)  # 404 for an unknown picture
    back = _safe_next(request.form.get("next"), url_for(".anomalies"))
    flag = request.form.get("interesting")
    if flag not in ("0", "1"):
        flash("Mark a picture interesting (1) or not interesting (0).", "error")
        return redirect(back, code=303)
    who = _who()
    try:
        with Catalog(st.catalog_path, timeout=10.0) as cat:
            when = cat.add_anomaly_mark(picture_id, flag == "1", who)
    except DataError as e:
        flash(f"The mark was not saved: {e}", "error")
        return redirect(back, code=303)
    verdict = "interesting" if flag == "1" else "not interesting"
    flash(f"Picture {picture_id} marked {verdict} (by {who}, {when}); the ranking uses it.", "ok")
    return redirect(back, code=303)
