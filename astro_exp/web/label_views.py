"""Labelling, a person's corrections of the catalog's labels (training prefers them over the
weak ones): the **Labels** page (the least confident predictions first, a plain form per
picture, no script needed) and the **Review** page (the pictures the model learns most from,
keyboard-first; ``static/review.js`` talks to ``/api/review``, :mod:`~astro_exp.web.review_api`)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, render_template, request, session, url_for

from astro_exp.data.catalog import MAX_WHO, Filters
from astro_exp.errors import DataError
from astro_exp.review.queue import QUEUE_ORDERS as ORDERS
from astro_exp.web.page_utils import flash_back, page_count, safe_next
from astro_exp.web.review_data import review_task
from astro_exp.web.state import state

bp = Blueprint("labels", __name__)
LABEL_RE = re.compile(r"^[\w][\w \-/+.]{0,59}$")
LABELS_PER_PAGE = 24
SCRAPE_HINT = "python scripts/scrape.py source=apod source.last_days=30"
PREDICT_HINT = "python scripts/predict.py ckpt_path=outputs/.../checkpoints/best.pt catalog=true"
KEYED = 9  # classes with a number key (1..9)


# -- labels ---------------------------------------------------------------------------------------
@bp.get("/labels")
def labels() -> str:
    st = state()
    args = request.args.to_dict()
    args.setdefault("sort", "confidence")
    args.setdefault("order", "asc")  # least confident first: where corrections help most
    f = Filters.from_args(args, LABELS_PER_PAGE)
    rows: list[dict[str, Any]] = []
    total, run_id = 0, None
    if st.has_catalog:
        run_id = st.run_id(request.args.get("run"))
        with st.catalog() as cat:
            rows, total = cat.list_pictures(f, run_id, counts=st.counts)
    return render_template(
        "labels.html",
        rows=rows,
        total=total,
        f=f,
        run_id=run_id,
        options=st.label_options(),
        pages=page_count(total, f.per_page),
        who=session.get("who", ""),
    )


@bp.post("/labels/<int:picture_id>")
def correct_label(picture_id: int):  # noqa: ANN201 - a redirect
    st = state()
    st.picture(picture_id, None)  # 404 for an unknown picture
    label = (request.form.get("label") or "").strip()
    who = (request.form.get("who") or "").strip()[:MAX_WHO] or st.settings.default_who
    back = safe_next(request.form.get("next"), url_for("gallery.picture", picture_id=picture_id))
    if not LABEL_RE.match(label):
        return flash_back(
            back, "Pick a label (letters, digits, spaces, - / + .; at most 60 characters).", "error"
        )
    try:  # the catalog checks and records it
        when = st.write(lambda cat: cat.add_correction(picture_id, label, who))
    except DataError as e:
        return flash_back(back, f"The label was not saved: {e}", "error")
    st.forget_facets()
    session["who"] = who
    return flash_back(
        back, f"Picture {picture_id} is now labelled {label!r} (by {who}, {when}).", "ok"
    )


# -- review ---------------------------------------------------------------------------------------
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
