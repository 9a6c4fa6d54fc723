"""The person in the loop as JSON (registered under ``/api``, exempt from CSRF tokens like
:mod:`~astro_exp.web.json_api`): the review queue and its answers (``/api/review``), the
marks-ranked anomalies and their marks (``/api/anomalies``). The Review page's script talks
to these; so can any script. Writes take JSON bodies only (see
:mod:`~astro_exp.web.review_data`: that is what keeps the CSRF-exempt blueprint safe)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, jsonify, request

from astro_exp.data.catalog import Catalog
from astro_exp.errors import DataError
from astro_exp.web.error_pages import error_response
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
from astro_exp.web.state import WebState, state

bp = Blueprint("review_api", __name__)
MAX_ANOMALIES = 5000  # items one /api/anomalies request returns at most


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    try:
        return min(hi, max(lo, int(request.args.get(name, default))))
    except (TypeError, ValueError):
        raise BadAnswer(400, f"{name} must be a whole number") from None


def _catalog_run() -> tuple[WebState, str | None]:
    """The app's state and the run a read names (``?run=``, else the default one); no
    catalog is a 404."""
    st = state()
    st.require_catalog()
    return st, st.run_id(request.args.get("run"))


def _stored(st: WebState, change: Callable[[Catalog], str]) -> str:
    """Store a person's answer (:meth:`WebState.write`); a refused one is a 400 saying why."""
    try:
        return st.write(change)
    except DataError as e:
        raise BadAnswer(400, f"not stored: {e}") from None


@bp.errorhandler(BadAnswer)
def _bad_answer(e: BadAnswer):  # noqa: ANN202
    return error_response(e.status, str(e))


@bp.get("/review")
def review_queue():  # noqa: ANN201
    """``?order=&run=&n=&offset=``: the next pictures to label, the most useful first."""
    st, run_id = _catalog_run()
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
    when = _stored(st, lambda cat: cat.add_correction(picture_id, label, who))
    st.forget_facets()
    return jsonify({"id": picture_id, "label": label, "who": who, "created_at": when})


@bp.get("/anomalies")
def anomalies():  # noqa: ANN201
    """``?run=&all=&n=&offset=``: flagged (``all=1``: every scored) pictures by their rank."""
    st, run_id = _catalog_run()
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
    when = _stored(st, lambda cat: cat.add_anomaly_mark(picture_id, interesting, who))
    return jsonify({"id": picture_id, "interesting": interesting, "who": who, "created_at": when})
