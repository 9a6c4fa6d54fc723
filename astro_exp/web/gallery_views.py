"""The Gallery (the catalog's pictures filtered, searched, sorted and paged), one picture's
page, and the catalog files they show (thumbnails and originals), each looked up by id,
never by a path."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, send_file, session, url_for

from astro_exp.data.catalog import Filters
from astro_exp.imageio import BadImage
from astro_exp.web.page_utils import page_count, render_picture
from astro_exp.web.state import NotFound, state

bp = Blueprint("gallery", __name__)


@bp.get("/")
def gallery() -> str:
    st = state()
    f = Filters.from_args(request.args, st.settings.page_size)
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
        with st.catalog() as cat:
            rows, total = cat.list_pictures(f, run_id, counts=st.counts)
        ctx.update(
            rows=rows,
            total=total,
            run_ids=st.run_ids(),
            run_id=run_id,
            pages=page_count(total, f.per_page),
            **st.facets(run_id),
        )
    return render_template("gallery.html", **ctx)


@bp.get("/pictures/<int:picture_id>")
def picture(picture_id: int) -> str:
    st = state()
    run_id = st.run_id(request.args.get("run"))
    row = st.picture(picture_id, run_id)
    return render_picture(
        "catalog",
        row,
        st.analyse_row(row, views=True),
        run_id=run_id,
        original_url=url_for(".original", picture_id=picture_id),
        options=st.label_options([row.get("truth") or ""]),
        who=session.get("who", ""),
    )


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
