"""The whole archive: import a local APOD copy (archive folder or mirror checkout) into the
catalog, resumably and safe to kill; the polite scraper then skips the imported days; train
straight from an archive folder, leaving out scored pictures and their copies."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astro_exp.apod.mirror import read_rows
from astro_exp.apod.mirror_import import import_mirror
from astro_exp.apod.scrape import ScrapeRequest, scrape
from astro_exp.data.catalog import Catalog, catalog_path
from astro_exp.data.labels import Labeller, load_label_config
from astro_exp.data.phash import hash_files, near_copies
from astro_exp.data.store import ImageStore
from astro_exp.errors import ConfigError
from astro_exp.sources.archive import ApodArchiveSource, find_copies
from tests.conftest import ROOT, SHARED_DATA  # noqa: E402
from tests.support.apod_site import FIXTURE_SITE
from tests.support.standin import ApodStandin

ARCHIVE = SHARED_DATA / "apod-archive"
FAST_HTTP = {
    "rate_limit_per_host": 500.0,
    "retries": 2,
    "backoff_factor": 0.01,
    "timeout": 0.5,
    "max_retry_after": 5.0,
    "max_concurrency": 4,
}
TOPICS = [
    ("Spiral Galaxy NGC {n}", "A grand design spiral galaxy with arms of young blue stars."),
    ("The Orion Nebula {n}", "Glowing hydrogen gas of an emission nebula."),
    ("Jupiter and Io {n}", "The giant planet Jupiter and its volcanic moon."),
    ("Star Cluster M{n}", "A rich open star cluster of bright young stars."),
]


@pytest.fixture(scope="module")
def apod4() -> Labeller:
    return Labeller(load_label_config("apod4"))


def picture(seed: int, size: tuple[int, int] = (48, 36)) -> bytes:
    """A small JPEG of smooth noise: distinct seeds give pictures whose pHashes are far apart."""
    rng = np.random.default_rng(seed)
    w, h = size
    coarse = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def letterboxed(data: bytes) -> bytes:
    """The picture as the shared thumbnails are: scaled into 320x240 on black bars."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    scale = min(320 / im.width, 240 / im.height)
    inner = im.resize((round(im.width * scale), round(im.height * scale)))
    out = Image.new("RGB", (320, 240))
    out.paste(inner, ((320 - inner.width) // 2, (240 - inner.height) // 2))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def day(i: int, start: dt.date = dt.date(2020, 1, 1)) -> dt.date:
    return start + dt.timedelta(days=i)


def write_archive(root: Path, n: int, start: dt.date = dt.date(2020, 1, 1)) -> list[dict]:
    """An archive-like folder: ``metadata.jsonl`` + ``images/YYYY/YYYY-MM-DD.jpg``."""
    rows = []
    for i in range(n):
        d = day(i, start)
        title, text = TOPICS[i % len(TOPICS)]
        rel = f"images/{d.year}/{d.isoformat()}.jpg"
        data = picture(i)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        rows.append(
            {
                "file": rel,
                "date": d.isoformat(),
                "title": title.format(n=i + 1),
                "explanation": text,
                "copyright": None if i % 2 else "Some Observer",
                "url": f"https://apod.nasa.gov/apod/image/{d:%y%m}/pic{i}.jpg",
                "hdurl": f"https://apod.nasa.gov/apod/image/{d:%y%m}/pic{i}_big.jpg",
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    write_metadata(root, rows)
    return rows


def write_metadata(root: Path, rows: list[dict], extra_lines: tuple[str, ...] = ()) -> None:
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def integrity(data_dir: Path) -> str:
    with sqlite3.connect(catalog_path(data_dir)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def rows_by_date(data_dir: Path, source: str = "apod") -> dict[str, dict]:
    with Catalog(catalog_path(data_dir)) as cat:
        rows = cat.rows([source])
    by_date = {r["date"]: r for r in rows}
    assert len(by_date) == len(rows)  # every day once
    return by_date


def check_store(data_dir: Path) -> None:
    """Every ok row's file holds its sha256; no file without a row; no temporary file."""
    store = ImageStore(data_dir)
    rows = list(rows_by_date(data_dir).values())
    referenced = {store.abspath(r["path"]).resolve() for r in rows if r["path"]}
    files = {p.resolve() for p in store.root.rglob("*") if p.is_file()}
    assert files == referenced
    for r in rows:
        if r["status"] == "ok":
            assert hashlib.sha256(store.abspath(r["path"]).read_bytes()).hexdigest() == r["sha256"]


# ----------------------------------------------------------------------------- archive import


def test_import_archive_folder_dedupes_reports_bad_rows_and_resumes(
    tmp_path: Path, apod4: Labeller, caplog: pytest.LogCaptureFixture
) -> None:
    src, data = tmp_path / "archive", tmp_path / "data"
    rows = write_archive(src, 8)
    # a rerun: another day with the very same picture bytes
    rerun = dict(rows[0], date="2020-02-01", file="images/2020/2020-02-01.jpg")
    (src / rerun["file"]).write_bytes((src / rows[0]["file"]).read_bytes())
    missing = dict(rows[1], date="2020-02-02", file="images/2020/2020-02-02.jpg")
    truncated = dict(rows[2], date="2020-02-03", file="images/2020/2020-02-03.jpg")
    whole = picture(99)
    (src / truncated["file"]).write_bytes(whole[: len(whole) // 2])
    write_metadata(src, [*rows, rerun, missing, truncated], ('{"date": "2020-02-04", "title"',))

    summary = import_mirror(src, data, labeller=apod4, progress=False)
    assert summary.layout == "archive"
    assert (summary.new, summary.shared, summary.skipped) == (9, 1, 0)
    assert len(summary.bad) == 3  # one line per bad row, naming where it is
    assert any("metadata.jsonl:12" in b and "not valid JSON" in b for b in summary.bad)
    assert any("(2020-02-02)" in b and "missing picture" in b for b in summary.bad)
    assert any("(2020-02-03)" in b and "truncated" in b.lower() for b in summary.bad)
    assert all("\n" not in b for b in summary.bad)
    assert sum("bad row" in r.getMessage() for r in caplog.records) == 3
    assert "9 new (1 pictures already in the store)" in summary.line()

    got = rows_by_date(data)
    assert sorted(got) == sorted([r["date"] for r in rows] + ["2020-02-01"])
    assert got["2020-02-01"]["sha256"] == got["2020-01-01"]["sha256"]
    assert got["2020-02-01"]["path"] == got["2020-01-01"]["path"]  # stored once
    first = got["2020-01-01"]
    assert first["status"] == "ok" and first["media_type"] == "image"
    assert first["title"] == "Spiral Galaxy NGC 1" and first["copyright"] == "Some Observer"
    assert first["page_url"] == "https://apod.nasa.gov/apod/ap200101.html"
    assert first["image_url"].endswith("/pic0.jpg") and (first["width"], first["height"]) == (
        48,
        36,
    )
    assert first["labels"]["primary"] == "galaxy"  # weak labels written
    assert got["2020-01-03"]["labels"]["primary"] == "planet"
    assert len({r["path"] for r in got.values()}) == 8
    check_store(data)
    assert integrity(data) == "ok"

    # the bad rows fixed: a re-run imports just them and skips the rest
    (src / missing["file"]).write_bytes(picture(77))
    (src / truncated["file"]).write_bytes(whole)
    again = import_mirror(src, data, labeller=apod4, progress=False)
    assert (again.new, again.skipped, len(again.bad)) == (2, 9, 1)
    assert len(rows_by_date(data)) == 11
    check_store(data)


def write_mirror(root: Path) -> None:
    """A mirror checkout: month lists of API records in json/, pictures under image/."""
    (root / "json").mkdir(parents=True)
    (root / "image" / "2403").mkdir(parents=True)
    (root / "image" / "flat.jpg").write_bytes(picture(1))
    (root / "image" / "2403" / "nested.jpg").write_bytes(picture(2))
    (root / "apod.nasa.gov" / "apod" / "image" / "2403").mkdir(parents=True)
    (root / "apod.nasa.gov" / "apod" / "image" / "2403" / "hosted.png").write_bytes(
        _png(picture(3))
    )
    month = [
        {
            "date": "2024-03-01",
            "title": "The Rosette Nebula",
            "explanation": "An emission nebula of glowing hydrogen gas.",
            "media_type": "image",
            "url": "https://apod.nasa.gov/apod/image/2403/flat.jpg",
            "hdurl": "https://apod.nasa.gov/apod/image/2403/flat_big.jpg",
            "copyright": "\nSome Observer\n",
            "service_version": "v1",
        },
        {
            "date": "2024-03-02",
            "title": "Spiral Galaxy M101",
            "explanation": "A spiral galaxy.",
            "media_type": "image",
            "url": "https://apod.nasa.gov/apod/image/2403/nested.jpg",
        },
        {
            "date": "2024-3-3",  # not zero-padded, as the 2015 API sent
            "title": "Saturn at Opposition",
            "explanation": "The ringed planet.",
            "url": "https://apod.nasa.gov/apod/image/2403/hosted.png",
        },
        {
            "date": "2024-03-04",
            "title": "A Video Day",
            "explanation": "Moving pictures.",
            "media_type": "video",
            "url": "https://www.youtube.com/embed/abc?rel=0",
        },
        {
            "date": "2024-03-05",
            "title": "Gone Missing",
            "explanation": "x",
            "media_type": "image",
            "url": "https://apod.nasa.gov/apod/image/2403/gone.jpg",
        },
        {"date": "2024-03-06"},  # a placeholder without text
    ]
    (root / "json" / "2024-03-01.json").write_text(json.dumps(month), encoding="utf-8")
    (root / "json" / "2024-02-01.json").write_text("[{not json", encoding="utf-8")


def _png(jpeg: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(buf, "PNG")
    return buf.getvalue()


def test_import_mirror_layout(tmp_path: Path, apod4: Labeller) -> None:
    src, data = tmp_path / "mirror", tmp_path / "data"
    write_mirror(src)
    summary = import_mirror(src, data, labeller=apod4, progress=False)
    assert summary.layout == "mirror"
    got = rows_by_date(data)
    assert {d: r["status"] for d, r in got.items()} == {
        "2024-03-01": "ok",
        "2024-03-02": "ok",
        "2024-03-03": "ok",
        "2024-03-04": "video",
    }
    assert got["2024-03-01"]["copyright"] == "Some Observer"
    assert got["2024-03-03"]["path"].endswith(".png")
    assert got["2024-03-01"]["labels"]["primary"] == "nebula"
    assert got["2024-03-04"]["labels"]["primary"]  # videos are labelled too (text only)
    assert (summary.new, summary.videos) == (3, 1)
    bad = "\n".join(summary.bad)
    assert len(summary.bad) == 3, bad
    assert "json/2024-02-01.json: not valid JSON" in bad
    assert "json/2024-03-01.json[4] (2024-03-05): missing picture" in bad
    assert "json/2024-03-01.json[5] (2024-03-06)" in bad and "no title" in bad
    assert integrity(data) == "ok"
    check_store(data)


def test_layout_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a folder"):
        list(read_rows(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="neither metadata.jsonl"):
        list(read_rows(tmp_path))
    with pytest.raises(ConfigError, match="must be one of"):
        list(read_rows(tmp_path, layout="zip"))


# ----------------------------------------------------------------------------- the command


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}


def _import_cmd(src: Path, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "scripts" / "scrape.py"),
        "source=apod_mirror",
        f"source.root={src}",
        f"paths.data_dir={data}",
        "progress=false",
        *extra,
    ]


@pytest.mark.slow
def test_killed_import_rerun_gives_every_day_once(tmp_path: Path) -> None:
    """A real ``astro-exp scrape source=apod_mirror`` SIGKILLed mid-way, then run again."""
    src, data = tmp_path / "archive", tmp_path / "data"
    n = 2500
    rows = write_archive(src, n)
    write_metadata(src, rows, ("not json at all",))
    proc = subprocess.Popen(
        _import_cmd(src, data, "source.batch=25", "source.workers=1"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline, seen = time.monotonic() + 120, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if catalog_path(data).is_file():
                with sqlite3.connect(f"file:{catalog_path(data)}?mode=ro", uri=True) as conn:
                    try:
                        seen = conn.execute("SELECT COUNT(*) FROM pictures").fetchone()[0]
                    except sqlite3.OperationalError:  # tables not created yet
                        seen = 0
                if seen >= 100:
                    break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert integrity(data) == "ok"
    at_kill = len(rows_by_date(data))
    assert 100 <= at_kill < n  # killed mid-way, whole batches only
    assert at_kill % 25 == 0

    done = subprocess.run(
        _import_cmd(src, data), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert f"{n - at_kill} new" in last and f"{at_kill} skipped (done before)" in last, last
    assert "1 bad rows skipped" in last
    bad_lines = [line for line in done.stderr.splitlines() if "bad row" in line]
    assert len(bad_lines) == 1 and f"metadata.jsonl:{n + 1}" in bad_lines[0]
    assert integrity(data) == "ok"
    got = rows_by_date(data)
    assert sorted(got) == sorted(r["date"] for r in rows)  # every day, once
    check_store(data)


def test_scrape_command_refuses_a_missing_root(tmp_path: Path) -> None:
    bad = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "scrape.py"),
            "source=apod_mirror",
            f"paths.data_dir={tmp_path}",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: say where the copy is: source.root=~/apod-mirror (an archive folder with "
        "metadata.jsonl, or a mirror checkout with json/YYYY-MM-01.json + image/)"
    ]


# ----------------------------------------------------------------------------- the scraper after


def test_scraper_skips_imported_days(tmp_path: Path, apod4: Labeller) -> None:
    src, data = tmp_path / "archive", tmp_path / "data"
    rows = write_archive(src, 2, start=dt.date(2024, 3, 1))  # two days the stand-in site has
    import_mirror(src, data, labeller=apod4, progress=False)
    imported = rows_by_date(data)
    with ApodStandin([FIXTURE_SITE]) as s:
        summary = scrape(
            ScrapeRequest(
                base_url=s.base_url, start_date=dt.date(2024, 3, 1), end_date=dt.date(2024, 3, 8)
            ),
            data,
            labeller=apod4,
            http=FAST_HTTP,
            progress=False,
        )
        asked = {e[1] for e in s.requests_log}
    assert summary.skipped == 2 and summary.days == 8
    assert "/apod/ap240301.html" not in asked and "/apod/ap240302.html" not in asked
    assert not any("Rosette" in path for path in asked)  # 2024-03-01's picture never fetched
    assert "/apod/ap240304.html" in asked  # the days the import did not have are scraped
    after = rows_by_date(data)
    for d in (r["date"] for r in rows):
        assert after[d]["sha256"] == imported[d]["sha256"]  # the imported rows stay as they were
    assert after["2024-03-07"]["status"] == "ok"
    assert integrity(data) == "ok"


# ----------------------------------------------------------------------------- training


def test_archive_source_trains_from_folder_and_leaves_scored_pictures_out(
    tmp_path: Path,
) -> None:
    src = tmp_path / "archive"
    rows = write_archive(src, 12)
    rows[1]["thumbs_file"] = "images/t1.jpg"  # the archive says: also a scored thumbnail
    rows[1]["thumbs_match"] = "date"
    write_metadata(src, rows)
    labels = load_label_config("apod4")

    full = ApodArchiveSource(str(src), labels=labels, progress=False).imageset()
    assert len(full) == 12  # dated files are not animation frames
    assert full.ids[0] == "images/2020/2020-01-01.jpg"
    assert sorted(full.classes) == ["galaxy", "nebula", "planet", "star"]
    assert list(full.targets[:4]) == [
        full.classes.index(c) for c in ("galaxy", "nebula", "planet", "star")
    ]
    img = full.load(0, 32)
    assert img.dtype == np.uint8 and img.shape[2] == 3

    honest = ApodArchiveSource(
        str(src), labels=labels, exclude_thumbs=True, progress=False
    ).imageset()
    assert len(honest) == 11 and "images/2020/2020-01-02.jpg" not in honest.ids
    assert honest.fingerprint != full.fingerprint

    # scored pictures elsewhere: one is training picture 5 letterboxed (a rerun the marks missed)
    scored = tmp_path / "thumbs" / "images"
    scored.mkdir(parents=True)
    (scored / "copy.jpg").write_bytes(letterboxed((src / rows[5]["file"]).read_bytes()))
    (scored / "unrelated.jpg").write_bytes(letterboxed(picture(1000)))
    source = ApodArchiveSource(
        str(src),
        labels=labels,
        exclude_thumbs=True,
        copies_of=str(tmp_path / "thumbs"),
        progress=False,
    )
    checked = source.imageset()
    assert len(checked) == 10 and rows[5]["file"] not in checked.ids
    assert [(a, b) for a, b, _ in source.copies] == [(rows[5]["file"], "images/copy.jpg")]

    with pytest.raises(ConfigError, match="copies_of"):
        ApodArchiveSource(str(src), labels=labels, copies_of=str(tmp_path / "nope"))


def test_copy_check_finds_letterboxed_reruns_only(tmp_path: Path) -> None:
    train = [tmp_path / f"t{i}.jpg" for i in range(20)]
    for i, p in enumerate(train):
        p.write_bytes(picture(i, size=(60, 40)))
    scored = [tmp_path / "s0.jpg", tmp_path / "s1.jpg", tmp_path / "s2.jpg"]
    scored[0].write_bytes(letterboxed(train[3].read_bytes()))
    scored[1].write_bytes(letterboxed(train[11].read_bytes()))
    scored[2].write_bytes(letterboxed(picture(500, size=(60, 40))))
    pairs, a, b = find_copies(train, scored, progress=False)
    assert [(p.i, p.j) for p in pairs] == [(3, 0), (11, 1)]
    assert all(p.distance <= 6 for p in pairs)
    assert near_copies(a, b, distance=6, aspect_tolerance=0.01)  # same shape after trimming
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a picture")
    hashed = hash_files([broken, train[0]], progress=False)
    assert list(hashed.bad) == [0] and hashed.hashes[1] != 0


# ----------------------------------------------------------------------------- the real archive


@pytest.mark.skipif(not (ARCHIVE / "metadata.jsonl").is_file(), reason=f"{ARCHIVE} is absent")
def test_shared_archive_metadata_reads_whole() -> None:
    rows = list(read_rows(ARCHIVE))
    assert len(rows) == 10_285
    assert [r.where for r in rows if r.error] == []
    assert len({r.date for r in rows}) == 10_285
    assert sum("thumbs_file" in r.extra for r in rows) == 1_254
    assert all(r.day is not None and r.day.media_type == "image" for r in rows)
    assert (
        rows[0].date == "1995-06-16" and rows[0].picture == ARCHIVE / "images/1995/1995-06-16.jpg"
    )
    for r in rows[:: len(rows) // 20]:  # a sample of the pictures are where the rows say
        assert r.picture is not None and r.picture.is_file()
        assert hashlib.sha256(r.picture.read_bytes()).hexdigest() == r.extra["sha256"]
    honest = ApodArchiveSource(str(ARCHIVE), exclude_thumbs=True, labels=load_label_config("apod4"))
    assert len(honest.records()) == 10_285 - 1_254
