"""The web app: explore the catalog's pictures, predictions, anomalies and runs.

``create_app(config)`` builds a Flask app from a mapping (``conf/serve.yaml``'s keys, see
:class:`~astro_exp.web.settings.WebSettings`); ``scripts/serve.py`` serves it with waitress.
Pages are server-rendered Jinja with plain CSS/JS; the JSON endpoints under ``/api`` give
scripts the same data. Each area is a blueprint of its own module, registered here:

- ``gallery_views``: the Gallery, a picture's page, the catalog's thumbnails and originals;
- ``classify_views``: Classify (an upload or a URL) and the uploads' files;
- ``label_views``: the Labels and Review pages (a person's label corrections);
- ``anomaly_views``: the Anomalies page and its marks;
- ``run_views``: the Runs pages;
- ``json_api`` and ``review_api``: the JSON endpoints under ``/api`` (CSRF-exempt).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response
from flask_wtf.csrf import CSRFProtect

from astro_exp.web.settings import WebSettings

# what the browser may do with our pages: our own scripts/styles only, pictures inline too
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def create_app(config: Mapping[str, Any] | WebSettings | None = None) -> Flask:
    """Build the app; a bad setting or checkpoint fails here, with a one-line error."""
    # the blueprints are imported here: ``import astro_exp.web`` stays free of torch (the model)
    from astro_exp.web import (
        anomaly_views,
        classify_views,
        error_pages,
        filters,
        gallery_views,
        json_api,
        label_views,
        review_api,
        run_views,
    )
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
    for pages in (gallery_views, classify_views, label_views, anomaly_views, run_views):
        app.register_blueprint(pages.bp)
    for api in (json_api, review_api):
        app.register_blueprint(api.bp, url_prefix="/api")
        csrf.exempt(api.bp)  # JSON for scripts: no cookies are trusted there, nothing to forge
    filters.register(app)
    error_pages.register(app)

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


__all__ = ["create_app", "warm", "WebSettings"]
