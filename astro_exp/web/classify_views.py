"""Classify: a person's own picture (an upload, or a URL where the server allows it), checked
as untrusted bytes, stored by content hash and shown on the picture page with the model's
answer; the uploads' files are served by hash only."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for

from astro_exp.imageio import BadImage
from astro_exp.web.fetch import UrlRefused
from astro_exp.web.media import decode_untrusted, read_submission
from astro_exp.web.page_utils import render_picture
from astro_exp.web.state import NotFound, state

bp = Blueprint("classify", __name__)


@bp.get("/classify")
def form() -> str:
    return render_template("classify.html", error=None, url="")


@bp.post("/classify")
def submit():  # noqa: ANN201 - a redirect or the form again
    st = state()
    if not st.model.loaded:
        abort(503)
    url = (request.form.get("url") or "").strip()
    try:
        decoded = decode_untrusted(read_submission(st.settings), st.settings.max_pixels)
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
    row = {
        "title": "Your picture",
        "sha256": sha,
        "width": decoded.size[0],
        "height": decoded.size[1],
    }
    return render_picture(
        "upload",
        row,
        st.analyse_upload(decoded),
        run_id=None,
        original_url=url_for(".upload_file", sha=sha),
        options=[],
        who="",
    )


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
