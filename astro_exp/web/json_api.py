"""JSON endpoints with the pages' data, for scripts: ``/api/pictures``, ``/api/pictures/<id>``,
``/api/classify`` and ``/api/runs`` (the app registers this blueprint under ``/api``, exempt
from CSRF tokens: no cookie is trusted here). Errors are ``{"error", "status"}`` with the
HTTP code (:func:`~astro_exp.web.error_pages.error_response`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, url_for

from astro_exp.data.catalog import Filters
from astro_exp.imageio import BadImage
from astro_exp.web import runs as runs_data
from astro_exp.web.error_pages import error_response
from astro_exp.web.fetch import UrlRefused
from astro_exp.web.media import decode_untrusted, read_submission
from astro_exp.web.state import WebState, state

bp = Blueprint("api", __name__)
PICTURE_FIELDS = (
    "id",
    "source",
    "date",
    "page_url",
    "image_url",
    "hd_url",
    "title",
    "explanation",
    "credit",
    "copyright",
    "media_type",
    "sha256",
    "width",
    "height",
    "fetched_at",
    "status",
)


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "date": row.get("date"),
        "title": row.get("title"),
        "source": row.get("source"),
        "sha256": row.get("sha256"),
        "label": row.get("pred_label"),
        "confidence": row.get("confidence"),
        "anomaly_score": row.get("anomaly_score"),
        "is_anomaly": None if row.get("is_anomaly") is None else bool(row["is_anomaly"]),
        "catalog_label": row.get("truth"),
        "weak_label": row.get("weak_label"),
        "url": url_for("gallery.picture", picture_id=row["id"]),
        "thumb_url": url_for("gallery.thumb", picture_id=row["id"]),
    }


def _with_neighbour_ids(st: WebState, prediction: dict[str, Any]) -> dict[str, Any]:
    """A prediction as JSON: each neighbour with the catalog picture it names as an id."""
    out = dict(prediction)
    out["neighbours"] = [
        {
            **{k: v for k, v in n.items() if k != "picture"},
            "picture_id": (n.get("picture") or {}).get("id"),
        }
        for n in st.neighbour_refs(out.get("neighbours") or [])
    ]
    return out


@bp.get("/pictures")
def pictures():  # noqa: ANN201
    st = state()
    f = Filters.from_args(request.args, st.settings.page_size)
    st.require_catalog()
    run_id = st.run_id(request.args.get("run"))
    with st.catalog() as cat:
        rows, total = cat.list_pictures(f, run_id, counts=st.counts)
    return jsonify(
        {
            "run_id": run_id,
            "total": total,
            "total_is_a_floor": f.more,  # more match than the count goes to (COUNT_CAP)
            # the next page by keyset: ?page=<page + 1>&after=<this>
            "next_after": rows[-1]["id"] if rows else None,
            "page": f.page,
            "per_page": f.per_page,
            "warnings": f.errors,
            "items": [_item(r) for r in rows],
        }
    )


@bp.get("/pictures/<int:picture_id>")
def picture(picture_id: int):  # noqa: ANN201
    st = state()
    run_id = st.run_id(request.args.get("run"))
    row = st.picture(picture_id, run_id)
    analysis = st.analyse_row(row, views=False)
    prediction = _with_neighbour_ids(st, analysis.prediction) if analysis is not None else None
    return jsonify(
        {
            **{k: row.get(k) for k in PICTURE_FIELDS},
            "labels": row.get("labels"),
            "catalog_label": row.get("truth"),
            "corrections": row.get("corrections", []),
            "run_id": run_id,
            "prediction": prediction,
            "threshold": analysis.threshold if analysis else None,
            "original_url": url_for("gallery.original", picture_id=picture_id),
        }
    )


@bp.post("/classify")
def classify():  # noqa: ANN201
    """multipart ``file=@pic.jpg`` or form/JSON ``url=...``: the prediction and its page."""
    st = state()
    if not st.model.loaded:
        return error_response(503)
    url = None
    if request.is_json:
        body = request.get_json(silent=True)
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.strip():
            return error_response(400, 'send {"url": "https://..."} or a multipart "file"')
    try:
        decoded = decode_untrusted(read_submission(st.settings, url), st.settings.max_pixels)
    except UrlRefused as e:
        return error_response(403 if "switched off" in str(e) else 400, str(e))
    except BadImage as e:
        return error_response(400, f"not accepted: {e}")
    sha = st.uploads.save(decoded)
    analysis = st.analyse_upload(decoded, views=False)
    return jsonify(
        {
            "sha256": sha,
            "width": decoded.size[0],
            "height": decoded.size[1],
            "prediction": _with_neighbour_ids(st, analysis.prediction),
            "threshold": analysis.threshold,
            "url": url_for("classify.upload", sha=sha),
        }
    )


@bp.get("/runs")
def runs():  # noqa: ANN201
    st = state()
    ranked, metric, mode, axes = st.runs.ranked(request.args.get("metric") or None)
    return jsonify(
        {
            "metric": metric,
            "mode": mode,
            "axes": axes,
            "runs": [runs_data.summary(e, metric, axes) for e in ranked],
        }
    )


@bp.get("/runs/<path:run_id>")
def run(run_id: str):  # noqa: ANN201
    return jsonify(runs_data.details(state().run_entry(run_id)))
