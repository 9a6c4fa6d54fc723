"""``astro-exp serve`` (``python scripts/serve.py``): the web app: gallery, picture pages,
classify, anomalies, runs and labels.

    python scripts/serve.py ckpt_path=outputs/.../checkpoints/best.pt     # http://127.0.0.1:5000
    python scripts/serve.py ckpt_path=... port=8080 allow_url_classify=true
    python scripts/serve.py server.debug=true                            # Flask's dev server

Served by waitress (a production WSGI server) unless server.debug=true. Binds 127.0.0.1
unless host= says otherwise. A bad checkpoint or setting is a one-line error, exit 2.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command

log = logging.getLogger("astro_exp.serve")
SERVER_KEYS = (
    "host",
    "port",
    "server",
    "paths",
    "classify_catalog",
)  # the rest of serve.yaml is WebSettings


@command("serve")
def main(cfg: DictConfig) -> None:
    """Build the app from the settings and serve it until Ctrl+C."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from astro_exp.web import (
        create_app,
        warm,
    )  # after Hydra parsed the command line: --help stays fast

    settings = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(settings, dict)
    web = {k: v for k, v in settings.items() if k not in SERVER_KEYS}
    host, port = str(cfg.host), int(cfg.port)
    if cfg.ckpt_path and not cfg.run_id:
        web["run_id"] = _catalog_run(cfg)
    app = create_app(web)
    import threading

    # the review queue and anomaly ranking of a large catalog, computed before the first visitor
    threading.Thread(target=warm, args=(app,), daemon=True).start()
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach this address can use the app", host)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if cfg.server.debug:
        log.warning(
            "server.debug=true: Flask's development server with the debugger; never expose it"
        )
        app.run(host=host, port=port, debug=True, use_reloader=False)
        return
    from waitress import serve

    # "Task queue depth is N" on every gallery load (48 thumbnails at once) is no news
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    print(
        f"astro-exp web app on {url} (waitress, {int(cfg.server.threads)} threads); Ctrl+C stops it",
        flush=True,
    )
    serve(app, host=host, port=port, threads=int(cfg.server.threads), ident="astro-exp")


def _catalog_run(cfg: DictConfig) -> str | None:
    """The checkpoint's run id for the gallery; with ``classify_catalog=true`` its missing
    predictions are made first. None (the newest run in the catalog) when it has none."""
    from astro_exp.data.catalog import Catalog, catalog_path
    from astro_exp.predict.into_catalog import run_id_for

    path = Path(cfg.catalog_path) if cfg.catalog_path else catalog_path(cfg.data_dir)
    if not path.is_file():
        return None
    run_id = run_id_for(cfg.ckpt_path, cfg.outputs_dir)
    with Catalog(path) as cat:
        if cfg.classify_catalog:
            from astro_exp.predict.classifier import Classifier
            from astro_exp.predict.into_catalog import predict_catalog

            clf = Classifier.from_checkpoint(cfg.ckpt_path, device=cfg.device)
            done = predict_catalog(clf, cat, run_id, cfg.data_dir)
            log.info("classified %d catalog pictures as run %s", len(done), run_id)
        if cat.predictions(run_id):
            return run_id
    log.info(
        "the catalog has no predictions of %s yet: the gallery shows the newest run's; "
        "add classify_catalog=true (or run scripts/predict.py ckpt_path=... catalog=true)",
        run_id,
    )
    return None


if __name__ == "__main__":
    main()
