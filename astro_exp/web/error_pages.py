"""How the app answers a failure: a JSON ``{"error", "status"}`` under ``/api``, else the
friendly error page with a one-line reason; never a traceback (the details go to the log)."""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from astro_exp.web.state import NotFound, state

log = logging.getLogger(__name__)

FRIENDLY = {
    400: "The request was not understood.",
    403: "That is not allowed here.",
    404: "There is nothing at this address.",
    405: "This address does not take that kind of request.",
    413: "The upload is too large.",
    500: "Something went wrong on our side. The details are in the server log.",
    503: "This needs a model: start the server with ckpt_path=.../checkpoints/best.pt.",
}
TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    500: "Server error",
    503: "No model loaded",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(code: int, message: str | None = None, title: str | None = None):  # noqa: ANN201
    """A JSON error under /api, else the friendly error page; never a traceback."""
    message = message or FRIENDLY.get(code, "Something went wrong.")
    if _wants_json():
        return jsonify({"error": message, "status": code}), code
    return render_template(
        "error.html", code=code, title=title or TITLES.get(code, "Error"), message=message
    ), code


def register(app: Flask) -> None:
    """The app's error handlers: an expired form, a missing thing, an unreadable catalog,
    an HTTP error and anything unexpected each get a friendly answer."""

    @app.errorhandler(CSRFError)
    def _csrf(e: CSRFError):  # noqa: ANN202
        return error_response(
            400,
            "The form has expired or did not come from this site; reload the page and try again.",
            "Form expired",
        )

    @app.errorhandler(NotFound)
    def _not_found(e: NotFound):  # noqa: ANN202
        return error_response(404, str(e))

    @app.errorhandler(sqlite3.Error)
    def _catalog(e: sqlite3.Error):  # noqa: ANN202
        log.error("catalog error on %s: %s", request.path, e)
        return error_response(
            500,
            f"The catalog at {state().catalog_path} could not be read; is it one that "
            "scripts/scrape.py made with this version of astro-exp?",
            "Catalog unreadable",
        )

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):  # noqa: ANN202
        code = e.code or 500
        if code == 413:
            limit = state().settings.max_upload_bytes
            return error_response(413, f"The upload is over the {limit:,}-byte limit.")
        return error_response(code, FRIENDLY.get(code, e.description))

    @app.errorhandler(Exception)
    def _any(e: Exception):  # noqa: ANN202
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)
