"""Web app through Flask's test client: every page and JSON endpoint, and the bad inputs the
safety rules are about (CSRF, uploads, decompression bombs, URLs, path traversal)."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from astro_exp.errors import CheckpointError, ConfigError
from astro_exp.imageio import BadImage
from astro_exp.web import create_app
from astro_exp.web.fetch import UrlRefused, check_url
from astro_exp.web.media import decode_untrusted, inside

ROOT = Path(__file__).resolve().parents[1]
TRAIN_OVERRIDES = [
    "model=tiny",
    "logger=none",
    "source.per_class=20",
    "preprocess.image_size=32",
    "trainer.max_epochs=1",
    # the fixture fits its own detector over the demo catalog (neighbours are catalog pictures)
    "anomaly.enabled=false",
]
RUN_ID = "runs/2026-01-01/00-00-00_tiny"
N_PICTURES = 30


@dataclass
class WebEnv:
    """A trained bundle, its run folder under outputs/, a second run, and a demo catalog."""

    root: Path
    data_dir: Path
    outputs: Path
    ckpt: Path
    classes: list[str]

    def settings(self, **changes) -> dict:
        base = {
            "data_dir": self.data_dir,
            "outputs_dir": self.outputs,
            "ckpt_path": self.ckpt,
            "run_id": "demo",
        }
        return {**base, **changes}


_ENV: dict[str, WebEnv] = {}


def _train(run_dir: Path, cache_dir: Path) -> None:
    """Train the tiny bundle the way conftest's make_cfg composes a config."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from astro_exp.train import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=TRAIN_OVERRIDES, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(run_dir.parents[3])
        cfg.paths.output_dir = str(run_dir)
        cfg.paths.cache_dir = str(cache_dir)
        cfg.trainer.progress = False
        del cfg["hydra"]
    GlobalHydra.instance().clear()
    train(cfg)
    # what a Hydra run folder also holds (compose-API runs write no .hydra/)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["augment=light"]))
    (run_dir / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump(
            {"optimized_metric": "test/f1_macro", "model": {"model_name": "test_resnet"}}
        )
    )


def _fit_detector(ckpt: Path, n: int = 24) -> None:
    """A detector and reference embeddings beside the bundle, as train.py leaves them, with
    the demo catalog's picture ids as reference ids (so neighbours are catalog pictures)."""
    import torch

    from astro_exp.anomaly.detectors import (
        DETECTOR_FILE,
        REFERENCE_FILE,
        AnomalyDetector,
        save_reference,
    )
    from astro_exp.anomaly.embeddings import model_digest
    from astro_exp.data.cache import resize_image
    from astro_exp.predict.classifier import Classifier
    from astro_exp.web.demo import render_pool

    if (ckpt.parent / DETECTOR_FILE).is_file():
        return  # train.py fitted one already
    clf = Classifier.from_checkpoint(ckpt, anomaly=False)
    pool = render_pool(n, 64)
    x = np.stack(
        [resize_image(px, clf.image_size, clf.resize).transpose(2, 0, 1) for _, px in pool]
    )
    emb = clf.forward(torch.from_numpy(x))[1].numpy()
    det = AnomalyDetector({"_target_": "pyod.models.knn.KNN", "name": "knn", "n_neighbors": 3}).fit(
        emb
    )
    det.calibrate(det.score(emb), 0.1)
    digest = model_digest(clf.model)
    det.meta = {"digest": digest, "n_neighbors": 3}
    det.save(ckpt.parent / DETECTOR_FILE)
    save_reference(
        ckpt.parent / REFERENCE_FILE,
        emb,
        [kind for kind, _ in pool],
        [str(i + 1) for i in range(n)],
        digest,
    )


def web_env(tmp_path_factory: pytest.TempPathFactory) -> WebEnv:
    """Built once per session (the browser tests share it)."""
    if "env" in _ENV:
        return _ENV["env"]
    from astro_exp.predict.classifier import Classifier
    from astro_exp.web.demo import build_demo

    root = tmp_path_factory.mktemp("web")
    outputs = root / "outputs"
    run_dir = outputs / RUN_ID
    _train(run_dir, root / "cache")
    other = outputs / "multirun" / "2026-01-02" / "10-00-00" / "0_augment=heavy"
    (other / ".hydra").mkdir(parents=True)
    (other / "metrics.json").write_text(
        json.dumps(
            {
                "test/acc": 0.9,
                "test/f1_macro": 0.88,
                "test/ece": 0.05,
                "test/f1/galaxy": 0.9,
                "test/f1/star": 0.86,
            }
        )
    )
    (other / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["augment=heavy"]))
    ckpt = run_dir / "checkpoints" / "best.pt"
    _fit_detector(ckpt)
    clf = Classifier.from_checkpoint(ckpt)
    assert clf.detector is not None and clf.index is not None
    data_dir = root / "data"
    build_demo(data_dir, n=N_PICTURES, size=64, classifier=clf, run_id="demo")
    _ENV["env"] = WebEnv(root, data_dir, outputs, ckpt, list(clf.classes))
    return _ENV["env"]


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> WebEnv:
    return web_env(tmp_path_factory)


@pytest.fixture(scope="session")
def app(env: WebEnv):
    return create_app(env.settings())


@pytest.fixture
def client(app):
    return app.test_client()


def png_bytes(
    size: tuple[int, int] = (48, 40), color: tuple[int, int, int] = (200, 120, 40)
) -> bytes:
    buf = io.BytesIO()
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[...] = color
    arr[size[1] // 3 : size[1] // 2, size[0] // 3 : size[0] // 2] = 255
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        buf, "JPEG"
    )
    return buf.getvalue()


def csrf_token(client, url: str = "/classify") -> str:
    html = client.get(url).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, f"no CSRF token on {url}"
    return m.group(1)


def assert_friendly(resp, code: int) -> str:
    assert resp.status_code == code
    text = resp.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    return text


# -- gallery and /api/pictures ------------------------------------------------------------------
def test_gallery_lists_pictures_with_predictions(client, env):
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.count('class="card') == N_PICTURES
    assert f"{N_PICTURES} pictures" in html
    assert "/media/thumb/1.jpg" in html
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_api_pictures_filters_and_paging(client, env):
    all_items = client.get("/api/pictures?per_page=200").get_json()
    assert all_items["total"] == N_PICTURES and all_items["run_id"] == "demo"
    item = all_items["items"][0]
    assert set(item) >= {
        "id",
        "date",
        "title",
        "label",
        "confidence",
        "anomaly_score",
        "is_anomaly",
        "catalog_label",
        "thumb_url",
    }
    label = item["label"]
    only = client.get(f"/api/pictures?label={label}&per_page=200").get_json()
    assert only["total"] == sum(i["label"] == label for i in all_items["items"])
    assert all(i["label"] == label for i in only["items"])
    truth = client.get("/api/pictures?truth=galaxy").get_json()
    assert truth["total"] == N_PICTURES // 4 + (N_PICTURES % 4 > 0) and all(
        i["catalog_label"] == "galaxy" for i in truth["items"]
    )
    page2 = client.get("/api/pictures?per_page=7&page=2").get_json()
    assert [i["id"] for i in page2["items"]] == [i["id"] for i in all_items["items"][7:14]]
    by_conf = client.get("/api/pictures?sort=confidence&order=asc&per_page=200").get_json()["items"]
    confs = [i["confidence"] for i in by_conf]
    assert confs == sorted(confs)
    dated = client.get("/api/pictures?date_from=1995-06-20&date_to=1995-06-24").get_json()
    assert dated["total"] == 5 and all(
        "1995-06-20" <= i["date"] <= "1995-06-24" for i in dated["items"]
    )
    text = client.get("/api/pictures?q=Rings").get_json()
    assert text["total"] == sum("Rings" in i["title"] for i in all_items["items"]) > 0
    lo = client.get("/api/pictures?conf_min=0.5&per_page=200").get_json()
    assert all(i["confidence"] >= 0.5 for i in lo["items"])
    anomalies = client.get("/api/pictures?anomalies=1&per_page=200").get_json()
    assert all(i["is_anomaly"] for i in anomalies["items"])


def test_gallery_bad_parameters_are_ignored_not_errors(client):
    resp = client.get(
        "/?date_from=not-a-date&conf_min=7&page=-3&per_page=100000&sort=evil;drop&order=sideways"
    )
    html = assert_friendly(resp, 200)
    assert "is not a date" in html and "is not a number in [0, 1]" in html
    api = client.get("/api/pictures?per_page=100000&q=%25_%27%22").get_json()
    assert api["per_page"] == 200 and api["total"] == 0  # % and _ are literal in the search
    assert client.get("/?page=999").status_code == 200
    assert "No pictures match" in client.get("/?q=nothing-like-this").get_data(as_text=True)


# -- picture page and /api/pictures/<id> --------------------------------------------------------
def test_picture_page_shows_prediction_views_and_source(client, env):
    html = client.get("/pictures/2").get_data(as_text=True)
    assert "Nebula 2" in html
    assert 'id="model-view"' in html and "data:image/png;base64," in html
    assert html.count("augmented sample") == 4
    assert 'class="bars"' in html and "https://apod.nasa.gov/apod/ap950617.html" in html
    assert 'rel="noopener noreferrer"' in html
    assert "Image Credit" in html
    # the live answer reads the day's title and explanation: text and picture, each shown
    assert "text says" in html and "picture says" in html and "picture + text" in html
    assert 'class="gauge"' in html and "threshold" in html  # anomaly score against the threshold
    near = html[html.index("Nearest training pictures") :]
    assert near.count('<img src="/media/thumb/') == 3  # neighbours are catalog pictures


def test_api_picture_has_the_prediction_fields(client, env):
    data = client.get("/api/pictures/3").get_json()
    assert data["id"] == 3 and data["title"].startswith("Planet")
    pred = data["prediction"]
    assert set(pred) >= {
        "label",
        "confidence",
        "top_k",
        "anomaly_score",
        "is_anomaly",
        "neighbours",
        "labels",
        "error",
    }
    assert pred["label"] in env.classes
    assert sum(t["probability"] for t in pred["top_k"]) == pytest.approx(
        1.0, abs=1e-4
    )  # all 4 classes shown
    assert data["original_url"] == "/media/original/3"
    assert isinstance(pred["anomaly_score"], float) and isinstance(pred["is_anomaly"], bool)
    assert isinstance(data["threshold"], float)
    assert len(pred["neighbours"]) == 3
    assert all(
        isinstance(n["picture_id"], int) and n["label"] in env.classes for n in pred["neighbours"]
    )


def test_unknown_pictures_are_friendly_404s(client):
    assert "no picture 9999" in assert_friendly(client.get("/pictures/9999"), 404)
    assert client.get("/api/pictures/9999").get_json()["status"] == 404
    assert_friendly(client.get("/pictures/abc"), 404)
    assert_friendly(client.get("/no/such/page"), 404)


# -- files: thumbnails once, originals, no traversal ------------------------------------------
def test_thumbnails_are_made_once_and_cached(client, env, app):
    st = app.extensions["astro_exp"]
    first = client.get("/media/thumb/5.jpg")
    assert first.status_code == 200 and first.mimetype == "image/jpeg"
    with sqlite3.connect(st.catalog_path) as conn:
        sha = conn.execute("SELECT sha256 FROM pictures WHERE id = 5").fetchone()[0]
    cached = st.thumbs.path_for(sha)
    assert cached.is_file()
    mtime = cached.stat().st_mtime_ns
    second = client.get("/media/thumb/5.jpg")
    assert second.data == first.data and cached.stat().st_mtime_ns == mtime
    assert Image.open(io.BytesIO(first.data)).size[0] <= st.settings.thumb_size
    assert client.get("/media/original/5").status_code == 200


def test_no_path_traversal(client, env, tmp_path):
    for url in (
        "/media/upload/..%2F..%2Fetc%2Fpasswd",
        "/media/upload/../../etc/passwd",
        "/media/upload/" + "g" * 64,
        "/media/runs/../../etc/confusion_matrix.png",
        "/runs/..%2F..%2Fetc",
        "/media/thumb/..%2F1.jpg",
        "/static/..%2F__init__.py",
    ):
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert b"root:" not in resp.data
    root = tmp_path / "store"
    (root / "ok").mkdir(parents=True)
    assert inside(root, "ok") == (root / "ok").resolve()
    assert (
        inside(root, "../x") is None
        and inside(root, "/etc/passwd") is None
        and inside(root, ".") is None
    )
    (root / "link").symlink_to("/etc")
    assert inside(root, "link/passwd") is None


def test_catalog_rows_cannot_point_outside_the_store(env, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(env.data_dir, data, ignore=shutil.ignore_patterns("thumbs"))
    with sqlite3.connect(data / "catalog.sqlite") as conn:
        conn.execute("UPDATE pictures SET path = '../../../../../../etc/passwd' WHERE id = 1")
    client = create_app({"data_dir": data, "outputs_dir": env.outputs}).test_client()
    for url in ("/media/original/1", "/media/thumb/1.jpg"):
        resp = client.get(url)
        assert resp.status_code == 404 and b"root:" not in resp.data


# -- classify -------------------------------------------------------------------------------------
def test_classify_upload_redirects_to_its_picture_page(client, env):
    token = csrf_token(client)
    resp = client.post(
        "/classify",
        data={"csrf_token": token, "file": (io.BytesIO(png_bytes()), "m31.png")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="confidence"' in html and 'id="model-view"' in html
    sha = resp.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/media/upload/{sha}").data == png_bytes()
    assert client.get(f"/media/upload-thumb/{sha}.jpg").mimetype == "image/jpeg"


def test_classify_needs_the_csrf_token(client):
    resp = client.post(
        "/classify",
        data={"file": (io.BytesIO(png_bytes()), "a.png")},
        content_type="multipart/form-data",
    )
    assert "reload the page" in assert_friendly(resp, 400)
    resp = client.post(
        "/classify",
        data={"csrf_token": "forged", "file": (io.BytesIO(png_bytes()), "a.png")},
        content_type="multipart/form-data",
    )
    assert_friendly(resp, 400)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "choose a picture"),
        (b"GIF89a not really", "not a readable picture"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a readable picture"),
        (None, "not a readable picture"),  # truncated JPEG
    ],
)
def test_classify_rejects_bad_files(client, payload, message):
    if payload is None:
        payload = jpeg_bytes()[:400]
    token = csrf_token(client)
    data = {"csrf_token": token}
    if payload:
        data["file"] = (io.BytesIO(payload), "x.jpg")
    resp = client.post("/classify", data=data, content_type="multipart/form-data")
    assert message in assert_friendly(resp, 400)


def test_decompression_bomb_and_size_limits(env):
    app = create_app(env.settings(max_pixels=100_000, max_upload_bytes=50_000))
    client = app.test_client()
    buf = io.BytesIO()
    Image.new("1", (4000, 4000)).save(buf, "PNG")  # 16 Mpx in a few kB: a small bomb
    token = csrf_token(client)
    resp = client.post(
        "/classify",
        data={"csrf_token": token, "file": (io.BytesIO(buf.getvalue()), "bomb.png")},
        content_type="multipart/form-data",
    )
    assert "pixel limit" in assert_friendly(resp, 400)
    big = np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    raw = io.BytesIO()
    Image.fromarray(big).save(raw, "PNG")
    assert len(raw.getvalue()) > 50_000
    resp = client.post(
        "/classify",
        data={"csrf_token": token, "file": (io.BytesIO(raw.getvalue()), "big.png")},
        content_type="multipart/form-data",
    )
    assert "50,000-byte limit" in assert_friendly(resp, 413)
    api = client.post("/api/classify", data={"file": (io.BytesIO(raw.getvalue()), "big.png")})
    assert api.status_code == 413 and api.get_json()["status"] == 413
    with pytest.raises(BadImage, match="decompression|pixel limit"):
        decode_untrusted(buf.getvalue(), 1_000_000)


def test_api_classify(client, env):
    resp = client.post("/api/classify", data={"file": (io.BytesIO(png_bytes()), "a.png")})
    data = resp.get_json()
    assert resp.status_code == 200 and data["prediction"]["label"] in env.classes
    assert data["url"].startswith("/classify/") and len(data["sha256"]) == 64
    assert client.post("/api/classify").get_json() == {
        "error": "not accepted: choose a picture to upload",
        "status": 400,
    }
    bad = client.post("/api/classify", data={"file": (io.BytesIO(b"nope"), "a.png")})
    assert bad.status_code == 400 and "not a readable picture" in bad.get_json()["error"]
    off = client.post("/api/classify", json={"url": "http://127.0.0.1/x.png"})
    assert off.status_code == 403 and "switched off" in off.get_json()["error"]
    assert client.post("/api/classify", json={"nope": 1}).status_code == 400
    assert client.get("/api/classify").status_code == 405


class _Pictures(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/pic.png":
            body, ctype, code = png_bytes((30, 30), (10, 200, 30)), "image/png", 200
        elif self.path == "/page":
            body, ctype, code = b"<html></html>", "text/html", 200
        elif self.path == "/redirect-out":
            self.send_response(302)
            self.send_header("Location", "http://10.1.2.3/secret.png")
            self.end_headers()
            return
        else:
            body, ctype, code = b"missing", "text/plain", 404
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def picture_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_classification_off_by_default_and_guarded(env, picture_server):
    off = create_app(env.settings()).test_client()
    token = csrf_token(off)
    assert 'name="url"' not in off.get("/classify").get_data(as_text=True)
    resp = off.post(
        "/classify", data={"csrf_token": token, "url": f"http://{picture_server}/pic.png"}
    )
    assert "switched off" in assert_friendly(resp, 403)

    on = create_app(env.settings(allow_url_classify=True)).test_client()
    token = csrf_token(on)
    resp = on.post(
        "/classify", data={"csrf_token": token, "url": f"http://{picture_server}/pic.png"}
    )
    assert "loopback" in assert_friendly(resp, 400)  # not on the allow-list

    allowed = create_app(
        env.settings(allow_url_classify=True, url_allow_hosts=[picture_server])
    ).test_client()
    token = csrf_token(allowed)
    resp = allowed.post(
        "/classify", data={"csrf_token": token, "url": f"http://{picture_server}/pic.png"}
    )
    assert resp.status_code == 303 and allowed.get(resp.headers["Location"]).status_code == 200
    for path, message in (
        ("/page", "not a picture"),
        ("/missing", "HTTP 404"),
        ("/redirect-out", "private"),
    ):
        resp = allowed.post(
            "/classify", data={"csrf_token": token, "url": f"http://{picture_server}{path}"}
        )
        assert message in assert_friendly(resp, 400), path
    api = allowed.post("/api/classify", json={"url": f"http://{picture_server}/pic.png"})
    assert api.status_code == 200 and api.get_json()["prediction"]["label"] in env.classes


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/x.png",
        "http://127.0.0.1/x.png",
        "http://localhost:8080/x",
        "http://10.0.0.8/x.png",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://user:pw@93.184.216.34/x",
        "http:///x.png",
        "http://100.64.0.1/x",
    ],
)
def test_check_url_refuses_non_public_targets(url):
    with pytest.raises(UrlRefused):
        check_url(url, [])


def test_check_url_accepts_public_addresses_and_the_allow_list():
    assert check_url("https://93.184.216.34/a.jpg", []) == (
        "https",
        "93.184.216.34",
        443,
        "93.184.216.34",
    )
    assert check_url("http://127.0.0.1:8123/a.jpg", ["127.0.0.1:8123"])[3] == "127.0.0.1"
    with pytest.raises(UrlRefused):
        check_url("http://127.0.0.1:9999/a.jpg", ["127.0.0.1:8123"])


def test_without_a_model_classify_says_so(env):
    client = create_app(env.settings(ckpt_path=None)).test_client()
    assert "No model is loaded" in client.get("/classify").get_data(as_text=True)
    token = csrf_token(client)
    resp = client.post(
        "/classify",
        data={"csrf_token": token, "file": (io.BytesIO(png_bytes()), "a.png")},
        content_type="multipart/form-data",
    )
    assert "ckpt_path" in assert_friendly(resp, 503)
    assert (
        client.post("/api/classify", data={"file": (io.BytesIO(png_bytes()), "a.png")}).status_code
        == 503
    )
    # pictures still show their stored prediction
    data = client.get("/api/pictures/4").get_json()
    assert data["prediction"]["label"] and data["prediction"]["stored"] is True
    assert "stored for run demo" in client.get("/pictures/4").get_data(as_text=True)


def test_without_a_catalog_pages_still_work(env, tmp_path):
    client = create_app(
        {"data_dir": tmp_path / "none", "outputs_dir": tmp_path / "none"}
    ).test_client()
    assert "No pictures yet" in client.get("/").get_data(as_text=True)
    for url in ("/anomalies", "/labels", "/runs", "/classify"):
        assert client.get(url).status_code == 200, url
    assert client.get("/api/pictures").status_code == 404
    assert client.get("/api/runs").get_json()["runs"] == []


# -- anomalies -------------------------------------------------------------------------------------
def test_anomalies_page_lists_flagged_pictures_most_unusual_first(client, app):
    st = app.extensions["astro_exp"]
    with sqlite3.connect(st.catalog_path) as conn:
        flagged = conn.execute(
            "SELECT p.title FROM pictures p JOIN predictions pr ON pr.sha256 = p.sha256 "
            "WHERE pr.is_anomaly = 1 ORDER BY pr.anomaly_score DESC"
        ).fetchall()
    html = client.get("/anomalies").get_data(as_text=True)
    titles = re.findall(r'<p class="title"><a href="/pictures/\d+">([^<]+)</a>', html)
    assert titles == [t[0] for t in flagged][: len(titles)]
    if flagged:
        assert html.count('class="neighbours"') == len(titles)
    else:
        assert "Nothing flagged" in html


# -- runs ------------------------------------------------------------------------------------------
def test_runs_table_detail_and_files(client, env):
    from astro_exp.tracking.run_table import find_runs, load_run, rank_runs

    data = client.get("/api/runs").get_json()
    ids = [r["id"] for r in data["runs"]]
    expected = [
        p.relative_to(env.outputs).as_posix()
        for p in (
            r.path for r in rank_runs([load_run(p) for p in find_runs(env.outputs)], data["metric"])
        )
    ]
    assert ids == expected and RUN_ID in ids and data["axes"] == ["augment"]
    html = client.get("/runs").get_data(as_text=True)
    assert 'id="runs-table"' in html and RUN_ID in html and "augment=heavy" in html
    assert client.get("/runs?metric=test/acc").status_code == 200
    detail = client.get(f"/runs/{RUN_ID}").get_data(as_text=True)
    assert "Confusion matrix" in detail and "F1 per class" in detail
    png = client.get(f"/media/runs/{RUN_ID}/confusion_matrix.png")
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
    assert client.get(f"/api/runs/{RUN_ID}").get_json()["f1"].keys() == set(env.classes)
    assert_friendly(client.get("/runs/runs/no-such-run"), 404)
    assert (
        client.get(
            "/media/runs/multirun/2026-01-02/10-00-00/0_augment=heavy/confusion_matrix.png"
        ).status_code
        == 404
    )


def test_compare_selected_runs(client):
    other = "multirun/2026-01-02/10-00-00/0_augment=heavy"
    html = client.get(f"/runs/compare?run={RUN_ID}&run={other}&run=bogus").get_data(as_text=True)
    assert "2 runs ranked by test/f1_macro" in html
    body = html[html.index("<tbody>") :]
    assert body.index("0_augment=heavy") < body.index("00-00-00_tiny")  # the better run first
    assert_friendly(client.get("/runs/compare"), 404)


# -- labels ----------------------------------------------------------------------------------------
def test_label_correction_is_stored_with_who_and_when(env, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(env.data_dir, data, ignore=shutil.ignore_patterns("thumbs"))
    client = create_app(
        {"data_dir": data, "outputs_dir": env.outputs, "run_id": "demo"}
    ).test_client()
    token = csrf_token(client, "/labels")
    resp = client.post(
        "/labels/6", data={"csrf_token": token, "label": "comet", "who": "ada", "next": "/labels"}
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/labels"
    pic = client.get("/api/pictures/6").get_json()
    assert pic["catalog_label"] == "comet"
    assert pic["corrections"][0]["who"] == "ada" and pic["corrections"][0]["created_at"]
    assert [i["id"] for i in client.get("/api/pictures?truth=comet").get_json()["items"]] == [6]
    page = client.get("/pictures/6").get_data(as_text=True)
    assert "corrected by ada" in page and 'value="ada"' in page  # who is remembered


def test_label_correction_bad_inputs(client):
    token = csrf_token(client, "/labels")
    resp = client.post(
        "/labels/6", data={"csrf_token": token, "label": "<script>", "next": "//evil.example/x"}
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/pictures/6"
    assert "Pick a label" in client.get("/pictures/6").get_data(as_text=True)
    assert_friendly(client.post("/labels/9999", data={"csrf_token": token, "label": "star"}), 404)
    assert_friendly(client.post("/labels/6", data={"label": "star"}), 400)
    assert client.get("/labels?sort=confidence&truth=star").status_code == 200


# -- errors ----------------------------------------------------------------------------------------
def test_unexpected_errors_render_a_friendly_page(env, monkeypatch):
    from astro_exp.data.catalog import CatalogReader

    app = create_app(env.settings())
    client = app.test_client()

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(CatalogReader, "list_pictures", boom)
    html = assert_friendly(client.get("/"), 500)
    assert "secret internals" not in html and "Something went wrong" in html
    api = client.get("/api/pictures")
    assert api.status_code == 500 and "secret" not in api.get_data(as_text=True)
    assert_friendly(client.post("/"), 405)


def test_a_foreign_sqlite_file_is_a_friendly_error(env, tmp_path):
    (tmp_path / "data").mkdir()
    with sqlite3.connect(tmp_path / "data" / "catalog.sqlite") as conn:
        conn.execute("CREATE TABLE something_else (x)")
    client = create_app({"data_dir": tmp_path / "data", "outputs_dir": env.outputs}).test_client()
    assert "could not be read" in assert_friendly(client.get("/"), 500)
    assert "could not be read" in client.get("/api/pictures").get_json()["error"]


def test_bad_settings_fail_at_start(env, tmp_path):
    with pytest.raises(ConfigError, match="unknown web setting"):
        create_app({"data_dir": tmp_path, "max_upload": 5})
    with pytest.raises(CheckpointError):
        create_app({"data_dir": tmp_path, "ckpt_path": tmp_path / "missing.pt"})
    with pytest.raises(ConfigError):
        create_app({"data_dir": tmp_path, "thumb_size": 5})


def test_serve_script_binds_localhost_with_waitress(env):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "scripts/serve.py",
            f"port={port}",
            f"data_dir={env.data_dir}",
            f"outputs_dir={env.outputs}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=2) as resp:
                    assert resp.status == 200 and json.load(resp)["runs"]
                    assert resp.headers["Server"] == "astro-exp"  # waitress's ident, not Werkzeug
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    proc.stdout.read() if proc.stdout else ""
                )
                time.sleep(0.3)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}" in out and "waitress" in out
    bad = subprocess.run(
        [sys.executable, "scripts/serve.py", "ckpt_path=/nonexistent/best.pt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        bad.returncode == 2
        and bad.stderr.strip().startswith("error: checkpoint")
        and "Traceback" not in bad.stderr
    )
