"""The person in the loop as JSON, on the ``/api`` blueprint: the review queue and its answers
(``/api/review``), the marks-ranked anomalies and their marks (``/api/anomalies``). The
Review page's script talks to these; so can any script. Writes take JSON bodies only (see
:mod:`~astro_exp.web.review_data`: that is what keeps the CSRF-exempt blueprint safe)."""

from __future__ import annotations

from flask import jsonify, request

from astro_exp.data.catalog import Catalog
from astro_exp.errors import DataError
from astro_exp.web import error_response
from astro_exp.web.json_api import bp
from astro_exp.web.review_data import (
    BadAnswer,
    anomaly_ranking,
    answer_interesting,
    answer_label,
    answer_who,
    item,
    json_body,
    parse_order,
    queue_payload,
    review_task,
)
from astro_exp.web.state import NotFound, state

MAX_ANOMALIES = 5000  # items one /api/anomalies request returns at most


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    try:
        return min(hi, max(lo, int(request.args.get(name, default))))
    except (TypeError, ValueError):
        raise BadAnswer(400, f"{name} must be a whole number") from None


@bp.errorhandler(BadAnswer)
def _bad_answer(e: BadAnswer):  # noqa: ANN202
    return error_response(e.status, str(e))


@bp.get("/review")
def review_queue():  # noqa: ANN201
    """``?order=&run=&n=&offset=``: the next pictures to label, the most useful first."""
    st = state()
    if not st.has_catalog:
        raise NotFound(f"no catalog at {st.catalog_path}")
    run_id = st.run_id(request.args.get("run"))
    order = parse_order(st, request.args.get("order"))
    n = _int_arg("n", st.review.batch, 1, 200)
    offset = _int_arg("offset", 0, 0, 10_000_000)
    return jsonify(queue_payload(st, run_id, order, n, offset))


@bp.post("/review/<int:picture_id>")
def review_answer(picture_id: int):  # noqa: ANN201
    """``{"label": "galaxy"}`` or ``{"labels": [...]}`` (+ ``"who"``): stored as a correction."""
    st = state()
    body = json_body()
    st.picture(picture_id, None)  # 404 for an unknown picture (or no catalog)
    label = answer_label(body, review_task(st, st.run_id(request.args.get("run"))))
    who = answer_who(body, st.settings.default_who)
    try:
        with Catalog(st.catalog_path, timeout=10.0) as cat:
            when = cat.add_correction(picture_id, label, who)
    except DataError as e:
        raise BadAnswer(400, f"not stored: {e}") from None
    st.forget_facets()
    return jsonify({"id": picture_id, "label": label, "who": who, "created_at": when})


@bp.get("/anomalies")
def anomalies():  # noqa: ANN201
    """``?run=&all=&n=&offset=``: flagged (``all=1``: every scored) pictures by their rank."""
    st = state()
    if not st.has_catalog:
        raise NotFound(f"no catalog at {st.catalog_path}")
    run_id = st.run_id(request.args.get("run"))
    every = request.args.get("all", "") in ("1", "true", "yes", "on")
    ranked, n_used = anomaly_ranking(st, run_id, every)
    n = _int_arg("n", 200, 1, MAX_ANOMALIES)
    offset = _int_arg("offset", 0, 0, 10_000_000)
    return jsonify(
        {
            "run_id": run_id,
            "all": every,
            "n_marks": n_used,
            "total": len(ranked),
            "offset": offset,
            "items": [item(c) for c in ranked[offset : offset + n]],
        }
    )


@bp.post("/anomalies/<int:picture_id>/mark")
def anomaly_mark(picture_id: int):  # noqa: ANN201
    """``{"interesting": true|false, "who": ...}``: the newest mark of a picture counts."""
    st = state()
    body = json_body()
    st.picture(picture_id, None)
    interesting = answer_interesting(body)
    who = answer_who(body, st.settings.default_who)
    try:
        with Catalog(st.catalog_path, timeout=10.0) as cat:
            when = cat.add_anomaly_mark(picture_id, interesting, who)
    except DataError as e:
        raise BadAnswer(400, f"not stored: {e}") from None
    return jsonify({"id": picture_id, "interesting": interesting, "who": who, "created_at": when})
