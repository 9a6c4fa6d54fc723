"""The SQLite catalog (upserts, transactions, migrations, corrections, predictions) and the
content-addressed image store (atomic commits, bad pictures, orphan sweep)."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from astro_exp.data.catalog import (
    SCHEMA_VERSION,
    Catalog,
    PictureRecord,
    catalog_path,
    connect_read_only,
)
from astro_exp.data.store import ImageStore, check_image
from astro_exp.errors import DataError
from astro_exp.imageio import BadImage


def jpeg_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8  # after the signature: length(4) type(4) data(13) crc(4)
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4 : ihdr + 21])) & 0xFFFFFFFF
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", crc)
    return bytes(data)


@pytest.fixture
def cat(tmp_path: Path):
    with Catalog(catalog_path(tmp_path)) as c:
        yield c


def rec(date: str = "2024-03-01", status: str = "ok", **kw) -> PictureRecord:
    return PictureRecord(
        source="apod", date=date, status=status, title=kw.pop("title", f"Day {date}"), **kw
    )


# ------------------------------------------------------------------------------------ catalog


def test_upsert_updates_in_place(cat: Catalog) -> None:
    first = cat.upsert(rec(status="http_error", error="HTTP 500"))
    labels = {
        "primary": "nebula",
        "all": ["nebula"],
        "scores": {"nebula": 3.0},
        "version": "apod4-x",
    }
    again = cat.upsert(rec(status="ok", sha256="ab" * 32, path="images/ab/ab/x.jpg", labels=labels))
    assert again == first and cat.count() == 1
    row = cat.get("apod", "2024-03-01")
    assert row["status"] == "ok" and row["error"] is None and row["labels"] == labels
    # a record without labels keeps the stored ones; a failed re-fetch clears the old path
    cat.upsert(rec(status="http_error", error="timeout"))
    row = cat.get("apod", "2024-03-01")
    assert row["labels"] == labels and row["path"] is None and row["status"] == "http_error"
    cat.upsert(PictureRecord(source="apod_api", date="2024-03-01", status="ok"))
    assert cat.count() == 2  # the key is (source, date)
    dup = cat.conn.execute(
        "SELECT COUNT(*) FROM pictures GROUP BY source, date HAVING COUNT(*) > 1"
    ).fetchall()
    assert dup == []


def test_transaction_rolls_back_everything(cat: Catalog) -> None:
    cat.upsert(rec("2024-03-01"))
    with pytest.raises(RuntimeError), cat.transaction():
        cat.upsert(rec("2024-03-02"))
        cat.upsert(rec("2024-03-03"))
        raise RuntimeError("killed half-way")
    assert [r["date"] for r in cat.rows()] == ["2024-03-01"]


def test_other_connections_see_only_committed_rows(cat: Catalog) -> None:
    reader = sqlite3.connect(cat.path)
    try:
        with cat.transaction():
            cat.upsert(rec("2024-03-01"))
            assert (
                reader.execute("SELECT COUNT(*) FROM pictures").fetchone()[0] == 0
            )  # WAL: readers go on
        assert reader.execute("SELECT COUNT(*) FROM pictures").fetchone()[0] == 1
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        reader.close()


def test_migrates_an_old_catalog_and_refuses_a_newer_one(tmp_path: Path) -> None:
    path = catalog_path(tmp_path)
    from astro_exp.data.catalog import MIGRATIONS

    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0])  # a version-0 file with the design's tables (the web demo's)
    old.execute("INSERT INTO pictures (source, date, status) VALUES ('demo', '2020-01-01', 'ok')")
    old.commit()
    old.close()
    with Catalog(path) as c:
        assert c.version == SCHEMA_VERSION
        cols = {r[1] for r in c.conn.execute("PRAGMA table_info(pictures)")}
        assert {"thumbnail_url", "bytes"} <= cols and c.count() == 1
        tables = {r[0] for r in c.conn.execute("SELECT name FROM sqlite_master")}
        assert {"embeddings", "anomaly_marks", "watched_days"} <= tables
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DataError, match="newer than this astro-exp"):
        Catalog(path)


def test_embeddings_and_anomaly_marks(cat: Catalog) -> None:
    import numpy as np

    pid = cat.upsert(rec())
    v = np.arange(6, dtype=np.float64) / 7  # stored as float32, read back as such
    assert cat.add_embeddings("runs/a", {"s1": v, "s2": -v}) == 2
    got = cat.embeddings("runs/a")
    assert set(got) == {"s1", "s2"} and got["s1"].dtype == np.float32
    assert np.allclose(got["s2"], -v, atol=1e-7) and cat.embeddings("runs/b") == {}
    cat.add_embeddings("runs/a", {"s1": v * 2})  # a re-run replaces
    assert np.allclose(cat.embeddings("runs/a")["s1"], v * 2, atol=1e-6)

    cat.add_anomaly_mark(pid, True, "ada")
    cat.add_anomaly_mark(pid, False, "bob")  # the newest mark of a picture wins
    assert cat.anomaly_marks() == {pid: False}
    with pytest.raises(DataError, match="no picture 999"):
        cat.add_anomaly_mark(999, True, "ada")
    with pytest.raises(DataError, match="who made it"):
        cat.add_anomaly_mark(pid, True, " ")
    assert cat.anomaly_marks() == {pid: False}  # the refused ones stored nothing


def test_corrections_newest_wins(cat: Catalog) -> None:
    pid = cat.upsert(rec(labels={"primary": "star", "all": ["star"], "scores": {}, "version": "v"}))
    cat.add_correction(pid, "nebula", "ada")
    cat.add_correction(pid, "galaxy", "grace")
    assert cat.corrections() == {pid: "galaxy"}
    who = cat.conn.execute("SELECT who FROM label_corrections ORDER BY id").fetchall()
    assert [w[0] for w in who] == ["ada", "grace"]
    with pytest.raises(DataError, match="no picture 999"):
        cat.add_correction(999, "galaxy", "ada")
    stats = cat.stats()
    assert ("galaxy", 1) in stats["label (ok pictures; corrections first)"]


def test_predictions_keyed_by_run_and_sha(cat: Catalog) -> None:
    rows = [
        {
            "sha256": "a" * 64,
            "label": "galaxy",
            "confidence": 0.9,
            "probs": {"galaxy": 0.9, "star": 0.1},
            "anomaly_score": 0.2,
            "is_anomaly": False,
        },
        {
            "sha256": "b" * 64,
            "label": "star",
            "confidence": 0.6,
            "probs": None,
            "anomaly_score": None,
            "is_anomaly": None,
        },
    ]
    assert cat.add_predictions("run-1", rows) == 2
    cat.add_predictions("run-1", [{**rows[0], "label": "nebula"}])  # predict again: replaced
    cat.add_predictions("run-2", rows[:1])
    got = cat.predictions("run-1")
    assert set(got) == {"a" * 64, "b" * 64} and got["a" * 64]["label"] == "nebula"
    assert (
        got["a" * 64]["probs"] == {"galaxy": 0.9, "star": 0.1}
        and got["a" * 64]["is_anomaly"] is False
    )
    assert len(cat.predictions("run-2")) == 1
    assert cat.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 3


def test_web_app_queries_read_the_catalog(cat: Catalog, tmp_path: Path) -> None:
    """The web app's read side (astro_exp.web.queries) works on a catalog this module wrote."""
    queries = pytest.importorskip("astro_exp.data.catalog.gallery")
    store = ImageStore(tmp_path)
    stored = store.add_bytes(jpeg_bytes())
    pid = cat.upsert(
        rec(
            sha256=stored.sha256,
            path=stored.path,
            media_type="image",
            labels={"primary": "star", "all": ["star"], "scores": {}, "version": "v"},
        )
    )
    cat.add_correction(pid, "nebula", "ada")
    cat.add_predictions("r", [{"sha256": stored.sha256, "label": "galaxy", "confidence": 0.7}])
    with connect_read_only(cat.path) as conn:
        rows, total = queries.list_pictures(conn, queries.Filters(), "r")
    assert total == 1 and rows[0]["truth"] == "nebula" and rows[0]["pred_label"] == "galaxy"


# ------------------------------------------------------------------------------------ store


def test_commit_is_content_addressed(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = jpeg_bytes()
    sha = hashlib.sha256(data).hexdigest()
    s1 = store.add_bytes(data)
    assert s1.sha256 == sha and s1.path == f"images/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert (s1.width, s1.height, s1.format, s1.bytes) == (32, 24, "JPEG", len(data))
    assert store.abspath(s1.path).read_bytes() == data
    s2 = store.add_bytes(data)  # the same picture again: one file
    assert s2.path == s1.path and list(store.tmp_dir.iterdir()) == []
    assert len([p for p in store.root.rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (jpeg_bytes()[:200], "not a readable picture"),
        (b"<html><body>Please log in</body></html>", "not a readable picture"),
        (b"", "empty file"),
        (png_with_header_size(60_000, 60_000), "decompression bomb"),
    ],
    ids=["truncated", "not-an-image", "empty", "bomb-header"],
)
def test_bad_pictures_leave_nothing(tmp_path: Path, data: bytes, reason: str) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(BadImage, match=reason):
        store.add_bytes(data)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_size_limits(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, max_bytes=1000)
    with pytest.raises(BadImage, match="over the 1,000-byte limit"):
        store.add_bytes(jpeg_bytes(size=(400, 400)) + b"\0" * 2000)
    f = tmp_path / "x.jpg"
    f.write_bytes(jpeg_bytes(size=(100, 100)))
    with pytest.raises(BadImage, match="pixel limit"):
        check_image(f, max_pixels=5000, max_bytes=10**6)
    assert check_image(f, max_pixels=10**4, max_bytes=10**6) == ("JPEG", 100, 100)


def test_sweep_removes_temp_and_unreferenced_files(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    kept = store.add_bytes(jpeg_bytes((1, 2, 3)))
    orphan = store.add_bytes(jpeg_bytes((9, 9, 9)))
    (store.tmp_dir / ".download-abc.part").write_bytes(b"partial")
    stray = store.root / "notes.txt"  # not a store entry: left alone
    stray.write_text("mine")
    temps, orphans = store.sweep({kept.path})
    assert (temps, orphans) == (1, 1)
    assert store.abspath(kept.path).is_file() and not store.abspath(orphan.path).exists()
    assert stray.is_file() and list(store.tmp_dir.iterdir()) == []
    # paths relative to the store (as older web demo catalogs hold them) count as references too
    assert store.sweep({kept.path.removeprefix("images/")}) == (0, 0)
