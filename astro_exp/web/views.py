"""The pages: Gallery, Picture, Classify, Runs, Labels, and the files they show (thumbnails,
originals, confusion matrices), each looked up by id, never by a path. Review and Anomalies
(the person in the loop) are in :mod:`~astro_exp.web.review_views`, on this blueprint."""

from __future__ import annotations

import math
import re
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from astro_exp.data.catalog import MAX_WHO, Catalog
from astro_exp.errors import DataError
from astro_exp.imageio import BadImage
from astro_exp.web import queries
from astro_exp.web import runs as runs_mod
from astro_exp.web.fetch import UrlRefused, fetch_picture
from astro_exp.web.media import decode_untrusted
from astro_exp.web.model import Analysis
from astro_exp.web.state import NotFound, WebState, state

bp = Blueprint("web", __name__)
LABEL_RE = re.compile(r"^[\w][\w \-/+.]{0,59}$")
ANOMALIES_PER_PAGE = 12  # the Anomalies page (review_views.py)
LABELS_PER_PAGE = 24


# -- shared with the JSON endpoints -----------------------------------------------------------
def stored_prediction(row: dict[str, Any], classes: list[str] | None) -> dict[str, Any] | None:
    """The catalog's stored prediction of a run as a Prediction-like dict (no neighbours)."""
    if row.get("pred_label") is None:
        return None
    probs = row.get("probs")
    top: list[dict[str, Any]] = []
    if isinstance(probs, dict):
        pairs = [(str(k), float(v)) for k, v in probs.items()]
    elif isinstance(probs, list) and classes and len(probs) == len(classes):
        pairs = list(zip(classes, map(float, probs), strict=True))
    else:
        pairs = []
    top = [{"label": k, "probability": v} for k, v in sorted(pairs, key=lambda kv: -kv[1])]
    picture_probs = row.get("picture_probs") if isinstance(row.get("picture_probs"), dict) else None
    text_probs = row.get("text_probs") if isinstance(row.get("text_probs"), dict) else None
    return {
        "label": row["pred_label"],
        "confidence": row.get("confidence"),
        "top_k": top,
        # the text+picture answer's parts (a picture-only row: the picture, no text)
        "picture": {
            "label": row.get("picture_label") or row["pred_label"],
            "confidence": row.get("picture_confidence", row.get("confidence")),
            "probs": picture_probs or dict(pairs),
        },
        "text": {"label": max(text_probs, key=text_probs.get), "probs": text_probs}
        if text_probs
        else None,
        "evidence": row.get("evidence") or ("picture+text" if text_probs else "picture"),
        "anomaly_score": row.get("anomaly_score"),
        "is_anomaly": None if row.get("is_anomaly") is None else bool(row["is_anomaly"]),
        "neighbours": [],
        "labels": [row["pred_label"]],
        "error": None,
        "stored": True,
    }


def picture_analysis(st: WebState, row: dict[str, Any], views: bool) -> Analysis | None:
    """Live analysis when a model is loaded and the file is there, else the stored row."""
    path = st.picture_file(row)
    text = (row.get("title") or "", row.get("explanation") or "")
    live = (
        st.analyse_file(row["sha256"], path, views=views, text=text if any(text) else None)
        if path is not None and row.get("sha256")
        else None
    )
    if live is not None:
        return live
    stored = stored_prediction(row, st.model.info().get("classes"))
    return Analysis(stored) if stored else None


def label_options(st: WebState, extra: list[str] | None = None) -> list[str]:
    """Labels a correction may choose: the model's classes and the catalog's labels."""
    options = list(st.model.info().get("classes") or [])
    if st.has_catalog:
        facets = st.facets(st.run_id())
        options += facets["predicted"] + facets["truths"]
    return list(dict.fromkeys([*options, *(extra or [])]))


def _pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


# -- gallery ------------------------------------------------------------------------------------
@bp.get("/")
def gallery() -> str:
    st = state()
    f = queries.Filters.from_args(request.args, st.settings.page_size)
    ctx: dict[str, Any] = {
        "f": f,
        "rows": [],
        "total": 0,
        "sources": [],
        "predicted": [],
        "truths": [],
        "run_ids": [],
        "run_id": None,
        "pages": 1,
    }
    if st.has_catalog:
        run_id = st.run_id(request.args.get("run"))
        with st.connect() as conn:
            rows, total = queries.list_pictures(conn, f, run_id, counts=st.counts)
        ctx.update(
            rows=rows,
            total=total,
            run_ids=st.run_ids(),
            run_id=run_id,
            pages=_pages(total, f.per_page),
            **st.facets(run_id),
        )
    return render_template("gallery.html", **ctx)


# -- one picture ----------------------------------------------------------------------------------
@bp.get("/pictures/<int:picture_id>")
def picture(picture_id: int) -> str:
    st = state()
    run_id = st.run_id(request.args.get("run"))
    row = st.picture(picture_id, run_id)
    analysis = picture_analysis(st, row, views=True)
    neighbours = st.neighbour_refs(analysis.prediction.get("neighbours") or []) if analysis else []
    return render_template(
        "picture.html",
        kind="catalog",
        row=row,
        analysis=analysis,
        neighbours=neighbours,
        run_id=run_id,
        original_url=url_for(".original", picture_id=picture_id),
        options=label_options(st, [row.get("truth") or ""]),
        who=session.get("who", ""),
    )


# -- classify -------------------------------------------------------------------------------------
@bp.get("/classify")
def classify_form() -> str:
    return render_template("classify.html", error=None, url="")


def read_submission(st: WebState, url: str | None = None) -> bytes:
    """The picture bytes of a classify request (an upload, else ``url`` or the form's URL)."""
    upload = request.files.get("file")
    url = (url if url is not None else request.form.get("url") or "").strip()
    if upload is not None and upload.filename:
        data = upload.stream.read(st.settings.max_upload_bytes + 1)
        if len(data) > st.settings.max_upload_bytes:
            abort(413)
        return data
    if url:
        if not st.settings.allow_url_classify:
            raise UrlRefused(
                "classifying by URL is switched off on this server (allow_url_classify=false)"
            )
        return fetch_picture(
            url,
            st.settings.max_upload_bytes,
            st.settings.url_allow_hosts,
            st.settings.url_timeout_s,
        )
    raise BadImage(
        "choose a picture to upload"
        + (" or give its URL" if st.settings.allow_url_classify else "")
    )


@bp.post("/classify")
def classify_submit():  # noqa: ANN201 - a redirect or the form again
    st = state()
    if not st.model.loaded:
        abort(503)
    url = (request.form.get("url") or "").strip()
    try:
        decoded = decode_untrusted(read_submission(st), st.settings.max_pixels)
    except UrlRefused as e:
        return render_template(
            "classify.html", error=str(e), url=url
        ), 403 if "switched off" in str(e) else 400
    except BadImage as e:
        return render_template(
            "classify.html", error=f"That picture cannot be classified: {e}.", url=url
        ), 400
    sha = st.uploads.save(decoded)
    return redirect(url_for(".upload", sha=sha), code=303)


@bp.get("/classify/<sha>")
def upload(sha: str) -> str:
    st = state()
    if not st.model.loaded:
        abort(503)
    path = st.uploads.path(sha)
    if path is None:
        raise NotFound("no uploaded picture with that id; upload it again")
    decoded = decode_untrusted(path.read_bytes(), st.settings.max_pixels)
    analysis = st.analyse_upload(decoded)
    neighbours = st.neighbour_refs(analysis.prediction.get("neighbours") or [])
    row = {
        "title": "Your picture",
        "sha256": sha,
        "width": decoded.size[0],
        "height": decoded.size[1],
    }
    return render_template(
        "picture.html",
        kind="upload",
        row=row,
        analysis=analysis,
        neighbours=neighbours,
        run_id=None,
        original_url=url_for(".upload_file", sha=sha),
        options=[],
        who="",
    )


# -- runs -----------------------------------------------------------------------------------------
@bp.get("/runs")
def runs() -> str:
    st = state()
    ranked, metric, mode, axes = st.runs.ranked(request.args.get("metric") or None)
    known = sorted(
        {k for e in st.runs.entries().values() for k in e.run.metrics if e.run.get(k) is not None}
    )
    rows = [runs_mod.summary(e, metric, axes) for e in ranked]
    return render_template(
        "runs.html",
        rows=rows,
        metric=metric,
        mode=mode,
        axes=axes,
        known=known,
        columns=runs_mod.metric_columns(metric),
        skipped=st.runs.skipped,
    )


@bp.get("/runs/compare")
def compare() -> str:
    st = state()
    ids = request.args.getlist("run")
    data = runs_mod.compare(st.runs, ids, request.args.get("metric") or None)
    if len(data["runs"]) < 1:
        raise NotFound("pick at least one run on the Runs page to compare")
    return render_template("compare.html", data=data)


@bp.get("/runs/<path:run_id>")
def run_detail(run_id: str) -> str:
    entry = state().runs.get(run_id)
    if entry is None:
        raise NotFound(f"no run {run_id!r} under the outputs folder")
    return render_template("run.html", run=runs_mod.details(entry))


# -- labels ---------------------------------------------------------------------------------------
@bp.get("/labels")
def labels() -> str:
    st = state()
    args = request.args.to_dict()
    args.setdefault("sort", "confidence")
    args.setdefault("order", "asc")  # least confident first: where corrections help most
    f = queries.Filters.from_args(args, LABELS_PER_PAGE)
    rows: list[dict[str, Any]] = []
    total, run_id = 0, None
    if st.has_catalog:
        run_id = st.run_id(request.args.get("run"))
        with st.connect() as conn:
            rows, total = queries.list_pictures(conn, f, run_id, counts=st.counts)
    return render_template(
        "labels.html",
        rows=rows,
        total=total,
        f=f,
        run_id=run_id,
        options=label_options(st),
        pages=_pages(total, f.per_page),
        who=session.get("who", ""),
    )


def _safe_next(target: str | None, fallback: str) -> str:
    """Only same-site relative paths (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


@bp.post("/labels/<int:picture_id>")
def correct_label(picture_id: int):  # noqa: ANN201 - a redirect
    st = state()
    st.picture(picture_id, None)  # 404 for an unknown picture
    label = (request.form.get("label") or "").strip()
    who = (request.form.get("who") or "").strip()[:MAX_WHO] or st.settings.default_who
    back = _safe_next(request.form.get("next"), url_for(".picture", picture_id=picture_id))
    if not LABEL_RE.match(label):
        flash("Pick a label (letters, digits, spaces, - / + .; at most 60 characters).", "error")
        return redirect(back, code=303)
    try:
        with Catalog(st.catalog_path, timeout=10.0) as cat:  # the catalog checks and records it
            when = cat.add_correction(picture_id, label, who)
    except DataError as e:
        flash(f"The label was not saved: {e}", "error")
        return redirect(back, code=303)
    st.forget_facets()
    session["who"] = who
    flash(f"Picture {picture_id} is now labelled {label!r} (by {who}, {when}).", "ok")
    return redirect(back, code=303)


# -- files ----------------------------------------------------------------------------------------
@bp.get("/media/thumb/<int:picture_id>.jpg")
def thumb(picture_id: int):  # noqa: ANN201
    st = state()
    row = st.picture(picture_id, None)
    path = st.picture_file(row)
    if path is None:
        raise NotFound(f"picture {picture_id} has no stored file")
    try:
        out = st.thumbs.get(str(row["sha256"]), path)
    except BadImage as e:
        raise NotFound(str(e)) from None
    return send_file(out, mimetype="image/jpeg", max_age=86400)


@bp.get("/media/original/<int:picture_id>")
def original(picture_id: int):  # noqa: ANN201
    st = state()
    path = st.picture_file(st.picture(picture_id, None))
    if path is None:
        raise NotFound(f"picture {picture_id} has no stored file")
    return send_file(path, max_age=86400)


@bp.get("/media/upload/<sha>")
def upload_file(sha: str):  # noqa: ANN201
    path = state().uploads.path(sha)
    if path is None:
        raise NotFound("no uploaded picture with that id")
    return send_file(path, max_age=86400)


@bp.get("/media/upload-thumb/<sha>.jpg")
def upload_thumb(sha: str):  # noqa: ANN201
    st = state()
    path = st.uploads.path(sha)
    if path is None:
        raise NotFound("no uploaded picture with that id")
    return send_file(st.thumbs.get(sha, path), mimetype="image/jpeg", max_age=86400)


@bp.get("/media/runs/<path:run_id>/confusion_matrix.png")
def run_confusion(run_id: str):  # noqa: ANN201
    path = state().runs.file(run_id, "confusion_matrix.png")
    if path is None:
        raise NotFound("this run has no confusion matrix")
    return send_file(path, mimetype="image/png", max_age=60)
