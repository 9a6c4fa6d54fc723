"""The web app: explore the catalog's pictures, predictions, anomalies and runs.

``create_app(config)`` builds a Flask app from a mapping (``conf/serve.yaml``'s keys, see
:class:`~astro_exp.web.settings.WebSettings`); ``scripts/serve.py`` serves it with waitress.
Pages are server-rendered Jinja with plain CSS/JS; the JSON endpoints under ``/api`` give
scripts the same data.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from astro_exp.web.settings import WebSettings

log = logging.getLogger(__name__)

# what the browser may do with our pages: our own scripts/styles only, pictures inline too
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
FRIENDLY = {
    400: "The request was not understood.",
    403: "That is not allowed here.",
    404: "There is nothing at this address.",
    405: "This address does not take that kind of request.",
    413: "The upload is too large.",
    500: "Something went wrong on our side. The details are in the server log.",
    503: "This needs a model: start the server with ckpt_path=.../checkpoints/best.pt.",
}


def create_app(config: Mapping[str, Any] | WebSettings | None = None) -> Flask:
    """Build the app; a bad setting or checkpoint fails here, with a one-line error."""
    # review_api, review_views: imported for their routes (on json_api.bp and views.bp)
    from astro_exp.web import filters, json_api, review_api, review_views, views  # noqa: F401
    from astro_exp.web.state import build_state

    settings = WebSettings.from_mapping(config)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes
        + 64 * 1024,  # room for the form's other fields
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        WTF_CSRF_ENABLED=settings.csrf,
        WTF_CSRF_TIME_LIMIT=None,  # tokens live as long as the session (a long labelling session)
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        JSON_SORT_KEYS=False,
        PROPAGATE_EXCEPTIONS=False,  # even under TESTING, errors become the friendly page
    )
    app.extensions["astro_exp"] = build_state(settings)
    csrf = CSRFProtect(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(json_api.bp, url_prefix="/api")
    csrf.exempt(json_api.bp)  # JSON for scripts: no cookies are trusted there, nothing to forge
    filters.register(app)
    _error_handlers(app)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        st = app.extensions["astro_exp"]
        return {"model_info": st.model.info(), "settings": st.settings}

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    return app


def warm(app: Flask) -> None:
    """Compute the app's whole-catalog rankings before the first visitor (``serve`` runs
    it in a background thread; see :meth:`~astro_exp.web.state.WebState.warm`)."""
    with app.test_request_context("/"):
        app.extensions["astro_exp"].warm()


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(code: int, message: str | None = None, title: str | None = None):  # noqa: ANN201
    """A JSON error under /api, else the friendly error page; never a traceback."""
    message = message or FRIENDLY.get(code, "Something went wrong.")
    if _wants_json():
        return jsonify({"error": message, "status": code}), code
    return render_template(
        "error.html", code=code, title=title or _title(code), message=message
    ), code


def _title(code: int) -> str:
    return {
        400: "Bad request",
        403: "Not allowed",
        404: "Not found",
        405: "Method not allowed",
        413: "Too large",
        500: "Server error",
        503: "No model loaded",
    }.get(code, "Error")


def _error_handlers(app: Flask) -> None:
    from astro_exp.web.state import NotFound

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
        path = app.extensions["astro_exp"].catalog_path
        return error_response(
            500,
            f"The catalog at {path} could not be read; is it one that scripts/scrape.py made "
            "with this version of astro-exp?",
            "Catalog unreadable",
        )

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):  # noqa: ANN202
        code = e.code or 500
        if code == 413:
            limit = app.extensions["astro_exp"].settings.max_upload_bytes
            return error_response(413, f"The upload is over the {limit:,}-byte limit.")
        return error_response(code, FRIENDLY.get(code, e.description))

    @app.errorhandler(Exception)
    def _any(e: Exception):  # noqa: ANN202
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)


__all__ = ["create_app", "warm", "WebSettings"]
