"""The **Runs** pages: the run folders under outputs/ ranked by a metric (the numbers of
``scripts/compare.py``), a few side by side, one run's details, and its confusion matrix
(a known file of a known run, never a path from the request); the data is
:mod:`~astro_exp.web.runs`'s."""

from __future__ import annotations

from flask import Blueprint, render_template, request, send_file

from astro_exp.web import runs as runs_data
from astro_exp.web.state import NotFound, state

bp = Blueprint("runs", __name__)


@bp.get("/runs")
def runs() -> str:
    st = state()
    ranked, metric, mode, axes = st.runs.ranked(request.args.get("metric") or None)
    known = sorted(
        {k for e in st.runs.entries().values() for k in e.run.metrics if e.run.get(k) is not None}
    )
    rows = [runs_data.summary(e, metric, axes) for e in ranked]
    return render_template(
        "runs.html",
        rows=rows,
        metric=metric,
        mode=mode,
        axes=axes,
        known=known,
        columns=runs_data.metric_columns(metric),
        skipped=st.runs.skipped,
    )


@bp.get("/runs/compare")
def compare() -> str:
    st = state()
    ids = request.args.getlist("run")
    data = runs_data.compare(st.runs, ids, request.args.get("metric") or None)
    if len(data["runs"]) < 1:
        raise NotFound("pick at least one run on the Runs page to compare")
    return render_template("compare.html", data=data)


@bp.get("/runs/<path:run_id>")
def run_detail(run_id: str) -> str:
    return render_template("run.html", run=runs_data.details(state().run_entry(run_id)))


@bp.get("/media/runs/<path:run_id>/confusion_matrix.png")
def run_confusion(run_id: str):  # noqa: ANN201
    path = state().runs.file(run_id, "confusion_matrix.png")
    if path is None:
        raise NotFound("this run has no confusion matrix")
    return send_file(path, mimetype="image/png", max_age=60)
