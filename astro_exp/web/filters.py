"""Jinja helpers: number formats and the query-string links of sortable, paged lists."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request


def pct(value: Any, digits: int = 0) -> str:
    """0.8734 -> '87%'; missing -> '–'."""
    if value is None:
        return "–"
    try:
        return f"{float(value) * 100:.{digits}f}%"
    except (TypeError, ValueError):
        return "–"


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "–"
    return f"{v:.{digits}g}" if abs(v) >= 1000 or (v and abs(v) < 1e-3) else f"{v:.{digits}f}"


def with_args(**changes: Any) -> str:
    """The current URL's query string with ``changes`` applied (None removes a key)."""
    args = {k: v for k, v in request.args.items()}
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = value
    return "?" + urlencode(args) if args else "?"


def bar_width(value: Any, full: float = 100.0) -> float:
    """A [0, 1] value as a bar length (0 for missing), clamped."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(v):
        return 0.0
    return round(max(0.0, min(1.0, v)) * full, 2)


def polyline(
    points: list[tuple[float, float]],
    width: float,
    height: float,
    pad: float = 4.0,
    y_range: tuple[float, float] | None = None,
) -> str:
    """SVG ``points`` of an (x, y) series scaled into a width x height box (y up)."""
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range else (min(ys), max(ys))
    if x1 == x0:  # one epoch: centred, not in a corner
        x0, x1 = x0 - 1.0, x0 + 1.0
    if y1 == y0:
        y0, y1 = y0 - 1.0, y0 + 1.0
    sx = (width - 2 * pad) / ((x1 - x0) or 1.0)
    sy = (height - 2 * pad) / ((y1 - y0) or 1.0)
    return " ".join(
        f"{pad + (x - x0) * sx:.1f},{height - pad - (y - y0) * sy:.1f}" for x, y in points
    )


def evidence_pair(item: tuple[str, Any]) -> dict[str, Any]:
    """A (class, probability) pair as a ``prob_bars`` row (the evidence bars)."""
    return {"label": item[0], "probability": item[1]}


def register(app: Flask) -> None:
    app.jinja_env.filters.update(pct=pct, num=num, bar_width=bar_width, evidence_pair=evidence_pair)
    app.jinja_env.globals.update(polyline=polyline)
    app.jinja_env.globals.update(with_args=with_args)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
