"""The catalog at the size users have: every hot query of the web app reads an index (a
test reads ``EXPLAIN QUERY PLAN`` of each one the pages run and fails on a full scan of
pictures or predictions), keyset pages equal OFFSET pages, the v4 -> v5 migration fills
the text+picture columns and the search index, predictions keep what the text and the
picture each said, and a predict killed mid-way resumes to exactly one row per picture.
(Timings are in ``astro-exp bench-web catalog=both``, not here.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astro_exp.data.catalog import MIGRATIONS, Catalog, CatalogReader, Filters, catalog_path
from astro_exp.predict.classifier import Prediction
from astro_exp.predict.into_catalog import prediction_row
from astro_exp.web import create_app
from astro_exp.web.demo import build_demo

RUN = "demo"
ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """A connection that notes every statement (and its parameters) the pages run."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.seen = conn, []

    def execute(self, sql: str, params=()):  # noqa: ANN201
        self.seen.append((sql, params))
        return self.conn.execute(sql, params)


def full_scans(conn: sqlite3.Connection, sql: str, params) -> list[str]:
    """The plan's steps that read every row of pictures or predictions (a ``SCAN`` with
    no index: an index walked in order, stopped by LIMIT, is fine)."""
    out = []
    for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params):
        detail = row[3]
        words = detail.split()
        if words[:1] == ["SCAN"] and "USING" not in detail:
            table = words[1]
            if table in ("p", "pr", "pictures", "predictions", "c2", "c3"):
                out.append(detail)
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("scale")
    build_demo(data, n=600, pool=16, size=48, run_id=RUN)
    with Catalog(catalog_path(data)) as cat:  # a few corrections and marks, as users leave
        cat.add_correction(3, "nebula", "tester")
        cat.add_correction(5, "star", "tester")
        cat.add_anomaly_mark(7, True, "tester")
        cat.conn.execute("ANALYZE")
    return data


GALLERY_ARGS = [
    {},
    {"sort": "date", "order": "asc"},
    {"sort": "title"},
    {"sort": "confidence", "order": "asc"},
    {"sort": "anomaly"},
    {"label": "galaxy"},
    {"truth": "nebula"},
    {"anomalies": "1"},
    {"anomalies": "1", "sort": "anomaly"},
    {"source": "demo"},
    {"date_from": "1995-07-01", "date_to": "1995-09-01"},
    {"conf_min": "0.4", "conf_max": "0.6"},
    {"q": "spiral galaxy"},
    {"q": "ring"},
    {"label": "star", "sort": "confidence", "page": "2"},
]


@pytest.mark.parametrize(
    "args", GALLERY_ARGS, ids=lambda a: "&".join(f"{k}={v}" for k, v in a.items()) or "first"
)
def test_every_gallery_query_reads_an_index(demo: Path, args: dict) -> None:
    conn = sqlite3.connect(catalog_path(demo))
    conn.row_factory = sqlite3.Row
    rec = Recorder(conn)
    reader = CatalogReader(rec)  # the web app's reader, on the recording connection
    rows, total = reader.list_pictures(Filters.from_args(args), RUN)
    assert rows and total >= len(rows), args
    # the Next page by keyset: the same statements with the cursor
    nxt = {**args, "page": "2", "after": str(rows[-1]["id"])}
    reader.list_pictures(Filters.from_args(nxt), RUN)
    for sql, params in rec.seen:
        if sql.lstrip().upper().startswith("SELECT COUNT(*)"):
            continue  # counts are kept until the catalog changes (gallery.CountCache)
        assert full_scans(conn, sql, params) == [], (args, sql)


def test_picture_page_review_page_and_anomaly_page_read_by_key(demo: Path) -> None:
    """The per-request statements of the picture page, the review queue's page of
    pictures and the anomaly page's rows (the rankings themselves are kept per catalog
    version: WebState.ranked)."""
    from astro_exp.review.from_catalog import candidates_by_id

    conn = sqlite3.connect(catalog_path(demo))
    conn.row_factory = sqlite3.Row
    rec = Recorder(conn)
    reader = CatalogReader(rec)
    assert reader.get_picture(10, RUN)["id"] == 10
    assert [c.picture_id for c in candidates_by_id(rec, RUN, [9, 4, 2])] == [9, 4, 2]
    assert [r["id"] for r in reader.rows_by_id([8, 1], RUN)] == [8, 1]
    assert reader.data_version()[0] == 600
    assert reader.marks_version() == 1
    for sql, params in rec.seen:
        assert full_scans(conn, sql, params) == [], sql


def test_keyset_pages_are_the_offset_pages(demo: Path) -> None:
    conn = sqlite3.connect(catalog_path(demo))
    conn.row_factory = sqlite3.Row
    for args in (
        {},
        {"sort": "title", "order": "asc"},
        {"sort": "confidence"},
        {"label": "galaxy", "sort": "anomaly"},
    ):
        base = {**args, "per_page": "7"}

        def page(base=base, **more):  # noqa: ANN202
            f = Filters.from_args({**base, **{k: str(v) for k, v in more.items()}})
            return [r["id"] for r in CatalogReader(conn).list_pictures(f, RUN)[0]]

        p2, p3, p4 = page(page=2), page(page=3), page(page=4)
        assert len(p3) == 7 and len(set(p2 + p3 + p4)) == 21, args
        assert page(page=3, after=p2[-1]) == p3, args
        assert page(page=3, before=p4[0]) == p3, args


def test_search_finds_words_and_stems_in_titles_and_explanations(demo: Path) -> None:
    conn = sqlite3.connect(catalog_path(demo))
    conn.row_factory = sqlite3.Row

    def search(q: str) -> tuple[list, int]:
        return CatalogReader(conn).list_pictures(
            Filters.from_args({"q": q, "per_page": "200"}), RUN
        )

    rows, total = search("rings")  # "Planet and Rings" titles: a quarter of the demo
    assert total == 150 and all("Rings" in r["title"] for r in rows)
    _, hydrogen = search("hydrogen")  # in the nebulae's explanations only
    assert hydrogen == 150
    assert search("ring")[1] == 150  # porter stems: ring = rings
    assert search('"); DROP TABLE pictures; --')[1] == 0  # typed operators are words
    assert search("%%%")[1] == 0


def test_migrating_a_v4_catalog_fills_the_new_columns_and_the_index(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    conn = sqlite3.connect(path)
    for version, script in enumerate(MIGRATIONS[:4]):
        for stmt in script.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    conn.execute(
        "INSERT INTO pictures (source, date, title, explanation, sha256, status) "
        "VALUES ('apod', '2001-01-01', 'Saturn at night', 'rings and moons', 'ab', 'ok')"
    )
    conn.execute(
        "INSERT INTO predictions (run_id, sha256, label, confidence, probs) "
        "VALUES ('r', 'ab', 'planet', 0.9, '{\"planet\": 0.9, \"star\": 0.1}')"
    )
    conn.commit()
    conn.close()
    with Catalog(path) as cat:
        assert cat.version == 5
        pred = cat.predictions("r")["ab"]
        assert pred["picture_label"] == "planet" and pred["evidence"] == "picture"
        assert pred["picture_probs"] == {"planet": 0.9, "star": 0.1} and pred["text_probs"] is None
        hits = cat.conn.execute("SELECT rowid FROM pictures_fts WHERE pictures_fts MATCH 'moons'")
        assert [r[0] for r in hits] == [1]
        assert cat.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _fused(text: dict | None) -> Prediction:
    picture = {"label": "galaxy", "confidence": 0.7, "probs": {"galaxy": 0.7, "star": 0.3}}
    if text is None:
        return Prediction(
            "x",
            "galaxy",
            0.7,
            [{"label": "galaxy", "probability": 0.7}, {"label": "star", "probability": 0.3}],
            picture=picture,
            text=None,
            evidence="picture",
        )
    return Prediction(
        "x",
        "star",
        0.6,
        [{"label": "star", "probability": 0.6}, {"label": "galaxy", "probability": 0.4}],
        picture=picture,
        text={"label": "star", "probs": text, "scores": {"star": 2.0}},
        evidence="picture+text",
    )


def test_predictions_keep_what_the_text_and_the_picture_each_said(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build_demo(data, n=4, pool=4, size=48, run_id="other")
    with Catalog(catalog_path(data)) as cat:
        rows = cat.rows()
        cat.add_predictions(
            "fused",
            [
                prediction_row(rows[0]["sha256"], _fused({"star": 0.9, "galaxy": 0.1})),
                prediction_row(rows[1]["sha256"], _fused(None)),
            ],
        )
        got = cat.predictions("fused")
    both, alone = got[rows[0]["sha256"]], got[rows[1]["sha256"]]
    assert both["label"] == "star" and both["picture_label"] == "galaxy"
    assert both["text_probs"] == {"star": 0.9, "galaxy": 0.1} and both["evidence"] == "picture+text"
    assert both["text_picture"] == pytest.approx(1 - (0.3 + 0.1))  # 1 - sum min(text, picture)
    assert (
        alone["text_probs"] is None
        and alone["evidence"] == "picture"
        and alone["text_picture"] is None
    )
    # the page and the API show both sides, and say when the picture stood alone
    app = create_app(
        {"data_dir": data, "outputs_dir": tmp_path / "out", "run_id": "fused", "csrf": False}
    )
    client = app.test_client()
    page = client.get(f"/pictures/{rows[0]['id']}").get_data(as_text=True)
    assert "text says" in page and "picture says" in page
    page = client.get(f"/pictures/{rows[1]['id']}").get_data(as_text=True)
    assert "picture alone" in page and "text says" not in page
    api = client.get(f"/api/pictures/{rows[0]['id']}").get_json()
    assert api["prediction"]["text"]["probs"] == {"star": 0.9, "galaxy": 0.1}
    assert (
        api["prediction"]["picture"]["label"] == "galaxy"
        and api["prediction"]["evidence"] == "picture+text"
    )
    queue = client.get("/api/review?order=text_picture&n=5").get_json()
    assert queue["items"][0]["id"] == rows[0]["id"]  # the one where text and picture disagree


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    from test_web import web_env  # the session's trained bundle

    return web_env(tmp_path_factory)


def test_a_killed_predict_resumes_to_one_answer_per_picture(env, tmp_path: Path) -> None:
    """A real subprocess classifying the catalog in batches of 4 is killed (SIGKILL) after
    its first commits; the re-run adds the rest, and the file passes integrity_check."""
    data = tmp_path / "data"
    build_demo(data, n=160, pool=160, size=48, run_id="demo")
    script = (
        "import sys, time\n"
        "from astro_exp.data.catalog import Catalog\n"
        "from astro_exp.predict.classifier import Classifier\n"
        "from astro_exp.predict import into_catalog\n"
        "clf = Classifier.from_checkpoint(sys.argv[1])\n"
        "slow = into_catalog.prediction_row\n"
        "def row(*a):\n"
        "    time.sleep(float(sys.argv[3]))\n"
        "    return slow(*a)\n"
        "into_catalog.prediction_row = row\n"
        "with Catalog(sys.argv[2] + '/catalog.sqlite') as cat:\n"
        "    into_catalog.predict_catalog(clf, cat, 'killed', sys.argv[2], batch_size=4, progress=False)\n"
    )
    cmd = [sys.executable, "-c", script, str(env.ckpt), str(data)]
    proc = subprocess.Popen([*cmd, "0.02"], cwd=ROOT)
    path = catalog_path(data)
    deadline = time.monotonic() + 120
    n = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(path) as conn:
            n = conn.execute("SELECT COUNT(*) FROM predictions WHERE run_id = 'killed'").fetchone()[
                0
            ]
        if n >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "predict ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(path) as conn:
        partial = conn.execute(
            "SELECT COUNT(*) FROM predictions WHERE run_id = 'killed'"
        ).fetchone()[0]
        assert 8 <= partial < 160 and partial % 4 == 0  # whole batches only
        emb = conn.execute("SELECT COUNT(*) FROM embeddings WHERE run_id = 'killed'").fetchone()[0]
        assert emb == partial  # predictions and embeddings committed together
    subprocess.run([*cmd, "0"], cwd=ROOT, check=True, timeout=300)
    with sqlite3.connect(path) as conn:
        shas = {r[0] for r in conn.execute("SELECT sha256 FROM pictures WHERE status = 'ok'")}
        got = [r[0] for r in conn.execute("SELECT sha256 FROM predictions WHERE run_id = 'killed'")]
        assert sorted(got) == sorted(shas)  # every picture once
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
