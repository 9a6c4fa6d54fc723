"""The scraper end to end against the local APOD stand-in (no network): every fault becomes a
catalog row and a re-run fixes it, a SIGKILLed run resumes cleanly, a finished range is
re-run without a picture request; then dataset stats and the training sources."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
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

from astro_exp.apod.scrape import HTTP_DEFAULTS, ScrapeRequest, load_defaults, scrape
from astro_exp.data.catalog import DONE_STATUSES, Catalog, catalog_path
from astro_exp.data.labels import Labeller, load_label_config
from astro_exp.data.store import ImageStore
from astro_exp.errors import ConfigError, DataError
from astro_exp.sources.apod_catalog import ApodCatalogSource, ApodThumbsSource, field_value
from tests.support import SHARED_DATA
from tests.support.apod_site import FIXTURE_SITE
from tests.support.standin import ApodStandin

ROOT = Path(__file__).resolve().parents[1]
FAST_HTTP = {
    "rate_limit_per_host": 500.0,
    "retries": 2,
    "backoff_factor": 0.01,
    "timeout": 0.5,
    "max_retry_after": 5.0,
    "max_concurrency": 4,
}
ALL_DAYS = {
    "start_date": dt.date(1995, 6, 16),
    "end_date": dt.date(2024, 3, 8),
}  # the fixture site: 15 days
EXPECTED_CLEAN = {
    "1995-06-25": "ok",
    "1996-09-15": "ok",
    "2001-07-04": "ok",
    "2009-05-20": "video",
    "2010-04-01": "no_image",
    "2014-04-12": "ok",
    "2017-09-05": "video",
    "2024-03-01": "ok",
    "2024-03-02": "ok",
    "2024-03-03": "video",
    "2024-03-04": "ok",
    "2024-03-05": "video",
    "2024-03-06": "bad_image",
    "2024-03-07": "ok",
    "2024-03-08": "ok",
}


@pytest.fixture(scope="module")
def apod4() -> Labeller:
    return Labeller(load_label_config("apod4"))


def statuses(data_dir: Path, source: str = "apod") -> dict[str, str]:
    with Catalog(catalog_path(data_dir)) as cat:
        return {r["date"]: r["status"] for r in cat.rows([source])}


def check_store_consistent(data_dir: Path) -> None:
    """No temp files, no file without a row, every ok row's file present with its sha256."""
    store = ImageStore(data_dir)
    assert [p for p in store.tmp_dir.iterdir()] == []
    with Catalog(catalog_path(data_dir)) as cat:
        rows = cat.rows()
        n_distinct = cat.conn.execute(
            "SELECT COUNT(DISTINCT source || date) FROM pictures"
        ).fetchone()[0]
    assert n_distinct == len(rows)  # no duplicate (source, date)
    referenced = {store.abspath(r["path"]).resolve() for r in rows if r["path"]}
    files = {p.resolve() for p in store.root.rglob("*") if p.is_file()}
    assert files == referenced
    for r in rows:
        if r["status"] == "ok":
            data = store.abspath(r["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == r["sha256"] and len(data) == r["bytes"]


def picture_hits(standin: ApodStandin) -> list[tuple]:
    return [e for e in standin.requests_log if e[1].startswith("/apod/image/")]


BROKEN_PICTURE = "/apod/image/2403/Broken_1024.jpg"  # 2024-03-06 (bad_image): retried by every run


# --------------------------------------------------------------------------------- in-process


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory, apod4: Labeller):
    """The fixture site scraped once (clean), shared by the stats and training-source tests."""
    data = tmp_path_factory.mktemp("scraped")
    with ApodStandin([FIXTURE_SITE]) as s:
        summary = scrape(
            ScrapeRequest(base_url=s.base_url, **ALL_DAYS),
            data,
            labeller=apod4,
            http=FAST_HTTP,
            progress=False,
        )
        yield data, s, summary


def test_clean_scrape_records_every_day(scraped) -> None:
    data, _, summary = scraped
    assert statuses(data) == EXPECTED_CLEAN
    assert (summary.days, summary.new, summary.videos, summary.no_image) == (15, 9, 4, 1)
    assert dict(summary.failed) == {"bad_image": 1}
    assert (
        "15 days: 9 new, 0 skipped (done before), 4 videos, 1 without picture, 1 failed (bad_image 1)"
        in summary.line()
    )
    check_store_consistent(data)
    with Catalog(catalog_path(data)) as cat:
        video = cat.get("apod", "2024-03-03")
        html5 = cat.get("apod", "2024-03-05")
        ok = cat.get("apod", "2024-03-01")
        bad = cat.get("apod", "2024-03-06")
    assert video["image_url"].startswith("https://www.youtube.com/embed/") and video[
        "thumbnail_url"
    ].endswith("/0.jpg")
    assert html5["media_type"] == "video" and html5["thumbnail_url"].endswith(
        "AuroraTimelapse_poster.jpg"
    )
    assert ok["labels"]["primary"] == "nebula" and ok["labels"]["version"].startswith("apod4-")
    assert (ok["width"], ok["height"]) == Image.open(ImageStore(data).abspath(ok["path"])).size
    assert bad["path"] is None and "truncated" in bad["error"]


def test_faults_become_rows_and_a_rerun_fixes_them(tmp_path: Path, apod4: Labeller) -> None:
    faults = {
        "/apod/image/2403/Rosette_1024.jpg": ("429", {"times": 1, "retry_after": 1}),  # retried: ok
        "/apod/image/2403/Pillars_Webb_1080.jpg": ("500", {}),
        "/apod/image/2403/Zodiacal_960.jpg": ("truncate", {}),
        "/apod/image/2403/MoonCrescent_900.jpg": ("wrong_type", {}),
        "/apod/image/2403/CometPons_1200.gif": ("oversize", {"size": 300_000}),
        "/apod/image/0107/fireworks_sky.jpg": ("slow", {"delay": 1.0}),  # times out
        "/apod/ap140412.html": ("503", {"retry_after": 0}),  # the day page itself fails
    }
    req = ScrapeRequest(max_bytes=200_000, **ALL_DAYS)
    with ApodStandin([FIXTURE_SITE]) as s:
        for path, (kind, opts) in faults.items():
            s.fault(path, kind, **opts)
        req.base_url = s.base_url
        first = scrape(req, tmp_path, labeller=apod4, http=FAST_HTTP, progress=False)
        got = statuses(tmp_path)
        assert got["2024-03-01"] == "ok"
        for d in ("2024-03-02", "2024-03-04", "2024-03-07", "2024-03-08", "2001-07-04"):
            assert got[d] == "download_error", d
        assert got["2014-04-12"] == "http_error" and got["2024-03-06"] == "bad_image"
        with Catalog(catalog_path(tmp_path)) as cat:
            errors = {r["date"]: r["error"] for r in cat.rows()}
        assert "over the 200,000-byte limit" in errors["2024-03-08"]
        assert "text/html" in errors["2024-03-07"] and "timed out" in errors["2001-07-04"]
        assert "cut off" in errors["2024-03-04"]
        assert first.failed == {"download_error": 5, "http_error": 1, "bad_image": 1}
        check_store_consistent(tmp_path)

        s.faults.clear()
        second = scrape(req, tmp_path, labeller=apod4, http=FAST_HTTP, progress=False)
        assert statuses(tmp_path) == EXPECTED_CLEAN
        assert second.skipped == 8 and second.new == 6 and second.failed == {"bad_image": 1}
        check_store_consistent(tmp_path)


def test_rerun_transfers_no_picture_bytes(scraped, apod4: Labeller) -> None:
    data, s, _ = scraped
    s.clear_log()
    again = scrape(
        ScrapeRequest(base_url=s.base_url, **ALL_DAYS),
        data,
        labeller=apod4,
        http=FAST_HTTP,
        progress=False,
    )
    # no stored picture is asked for again (the catalog says so; pictures are not in the HTTP
    # cache), only the failed day's: the broken JPEG of 2024-03-06 is retried
    assert [e[1] for e in picture_hits(s)] == [BROKEN_PICTURE]
    assert again.new == 0 and again.skipped == 14 and again.bytes_downloaded < 5_000
    assert statuses(data) == EXPECTED_CLEAN


def test_api_source(tmp_path: Path, apod4: Labeller) -> None:
    with ApodStandin([FIXTURE_SITE]) as s:
        req = ScrapeRequest(
            source="apod_api",
            kind="api",
            base_url=s.base_url,
            api_url=s.api_url,
            start_date=dt.date(2024, 3, 1),
            end_date=dt.date(2024, 3, 8),
        )
        summary = scrape(req, tmp_path, labeller=apod4, http=FAST_HTTP, progress=False)
        api_calls = [e for e in s.requests_log if e[1].startswith("/planetary/apod?")]
    got = statuses(tmp_path, "apod_api")
    assert got["2024-03-05"] == "no_image"  # the API says media_type other (HTML5 video), no url
    assert (
        got["2024-03-03"] == "video"
        and got["2024-03-01"] == "ok"
        and got["2024-03-06"] == "bad_image"
    )
    assert summary.days == 8 and summary.new == 5
    assert len(api_calls) == 1 and "api_key=" in api_calls[0][1]  # one chunk of 60 days
    check_store_consistent(tmp_path)


def test_scrape_defaults_are_the_yaml(tmp_path: Path) -> None:
    """conf/source/apod.yaml is the one home of the scrape defaults: Python reads, never copies."""
    import inspect

    from omegaconf import OmegaConf

    yaml = OmegaConf.to_container(
        OmegaConf.load(ROOT / "conf" / "source" / "apod.yaml"), resolve=False
    )
    req = ScrapeRequest(last_days=1)
    assert (req.source, req.base_url, req.picture, req.max_bytes) == (
        yaml["name"],
        yaml["base_url"],
        yaml["picture"],
        yaml["max_bytes"],
    )
    assert dict(HTTP_DEFAULTS) == {k: v for k, v in yaml["http"].items() if k != "cache_dir"}
    params = inspect.signature(ApodCatalogSource).parameters
    request, _ = load_defaults()
    assert all(params[k if k != "source" else "name"].default == v for k, v in request.items())
    bad = tmp_path / "apod.yaml"
    bad.write_text("name: apod\n")
    with pytest.raises(ConfigError, match="lacks the scrape settings"):
        load_defaults(bad)


def test_settings_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source.last_days=30"):
        ScrapeRequest()
    with pytest.raises(ConfigError, match="not both"):
        ScrapeRequest(last_days=3, start_date=dt.date(2024, 1, 1))
    with pytest.raises(ConfigError, match="swap them"):
        ScrapeRequest(start_date=dt.date(2024, 2, 1), end_date=dt.date(2024, 1, 1))
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        ApodCatalogSource(start_date="first of may", data_dir=str(tmp_path))


# --------------------------------------------------------------------------------- subprocess


def _scrape_cmd(base_url: str, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "scripts" / "scrape.py"),
        "source=apod",
        f"source.base_url={base_url}",
        "source.start_date=1995-06-16",
        "source.end_date=2024-03-08",
        f"paths.data_dir={data}",
        "source.http.rate_limit_per_host=500",
        "source.http.backoff_factor=0.01",
        "source.http.timeout=5",
        "progress=false",
        "log_level=ERROR",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}


def check_store_consistent_after_kill(data: Path) -> None:
    """Right after a SIGKILL: rows are whole, and every ok row's file is complete."""
    store = ImageStore(data)
    with Catalog(catalog_path(data)) as cat:
        for r in cat.rows():
            if r["status"] == "ok":
                assert (
                    hashlib.sha256(store.abspath(r["path"]).read_bytes()).hexdigest() == r["sha256"]
                )


def _run_and_kill(cmd: list[str], data: Path, rows_wanted: int) -> int:
    """Start a scrape, SIGKILL it once the catalog holds ``rows_wanted`` rows; returns the rows seen."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, rows = time.monotonic() + 60, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if catalog_path(data).is_file():
                with sqlite3.connect(
                    f"file:{catalog_path(data)}?mode=ro", uri=True, timeout=5
                ) as conn:
                    try:
                        rows = conn.execute("SELECT COUNT(*) FROM pictures").fetchone()[0]
                    except sqlite3.OperationalError:  # tables not created yet
                        rows = 0
                if rows >= rows_wanted:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return rows


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ApodStandin([FIXTURE_SITE]) as s:
        pages = sorted(p.name for p in (FIXTURE_SITE / "apod").glob("ap*.html"))
        for name in pages:  # latency on every day page and picture: the kill lands mid-run
            s.fault(f"/apod/{name}", "slow", delay=0.3)
        for pic in (FIXTURE_SITE / "apod" / "image").rglob("*.*"):
            s.fault("/" + str(pic.relative_to(FIXTURE_SITE)), "slow", delay=0.3)
        killed_at = 0
        for wanted in (2, 6):  # killed twice, at different points of the range
            rows = _run_and_kill(
                _scrape_cmd(s.base_url, data, "source.http.max_concurrency=2"), data, wanted
            )
            assert wanted <= rows < 15
            assert len(statuses(data)) >= killed_at  # the catalog is intact after each kill
            killed_at = len(statuses(data))
            check_store_consistent_after_kill(data)
        assert killed_at < 15

        # what a kill at other moments leaves: a half-written download and a file whose row never came
        store = ImageStore(data)
        (store.tmp_dir / ".download-k1ll.part").write_bytes(b"\xff\xd8\xff partial")
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (5, 5, 5)).save(buf, "JPEG")
        orphan_sha = hashlib.sha256(buf.getvalue()).hexdigest()
        orphan = store.abspath(store.rel_path(orphan_sha, "jpg"))
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(buf.getvalue())

        done_before = sum(1 for st in statuses(data).values() if st in DONE_STATUSES)
        s.faults.clear()
        done = subprocess.run(
            _scrape_cmd(s.base_url, data), env=_env(), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert statuses(data) == EXPECTED_CLEAN
        assert f"{done_before} skipped (done before)" in done.stdout, done.stdout
        check_store_consistent(data)
        assert not orphan.exists()

        s.clear_log()
        again = subprocess.run(
            _scrape_cmd(s.base_url, data), env=_env(), capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0, again.stderr
        assert "0 new, 14 skipped (done before)" in again.stdout
        assert [e[1] for e in picture_hits(s)] == [BROKEN_PICTURE]  # the failed day is retried
        check_store_consistent(data)


def test_scrape_script_says_what_to_do(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "scrape.py"), f"paths.data_dir={tmp_path}"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: say which days to scrape: source.last_days=30, or source.start_date=2024-01-01 source.end_date=2024-12-31"
    ]


# --------------------------------------------------------------------------------- dataset stats


def _dataset_module():
    spec = importlib.util.spec_from_file_location("dataset_script", ROOT / "scripts" / "dataset.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dataset_stats(scraped, capsys: pytest.CaptureFixture[str]) -> None:
    data, _, _ = scraped
    mod = _dataset_module()
    assert mod.main(["stats", f"data_dir={data}"]) == 0
    out = capsys.readouterr().out
    assert f"catalog {catalog_path(data)}: 15 rows" in out
    for title in (
        "status",
        "media type",
        "label (ok pictures; corrections first)",
        "year",
        "failures",
    ):
        assert f"\n{title}\n" in out
    lines = out.splitlines()
    assert any(line.split() == ["ok", "9"] for line in lines)
    assert any(line.split() == ["video", "4"] for line in lines)
    assert any(line.split()[:3] == ["2024", "8", "5"] for line in lines)  # year, rows, ok pictures
    assert any(
        line.startswith("bad_image") and "truncated" in line and "<url>" in line for line in lines
    )
    assert mod.main(["stats", f"data_dir={data / 'nowhere'}"]) == 2
    assert capsys.readouterr().err.startswith("error: no catalog at ")


# --------------------------------------------------------------------------------- training sources


def test_catalog_source(scraped, tmp_path: Path) -> None:
    data, _, _ = scraped
    cfg = load_label_config("apod4")
    src = ApodCatalogSource(data_dir=str(data), labels=cfg)
    ims = src.imageset()
    assert ims.classes == ["galaxy", "nebula", "planet", "star"] and ims.task == "multiclass"
    labels = dict(zip(ims.ids, (ims.classes[t] for t in ims.targets), strict=True))
    assert (
        labels["2024-03-01"] == "nebula"
        and labels["2014-04-12"] == "galaxy"
        and labels["1995-06-25"] == "planet"
    )
    assert "2024-03-07" not in labels  # the Moon: "other", left out by default
    img = ims.load(ims.ids.index("2024-03-01"), 64)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3

    with_other = ApodCatalogSource(data_dir=str(data), labels=cfg, include_other=True).imageset()
    assert with_other.classes[-1] == "other" and len(with_other) > len(ims)
    multi = ApodCatalogSource(data_dir=str(data), labels=cfg, task="multilabel").imageset()
    assert multi.targets.shape == (len(multi), 4) and multi.targets.dtype == np.float32

    # a person's correction beats the weak label and changes the fingerprint (the cache key)
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    with (
        sqlite3.connect(catalog_path(data)) as src_conn,
        sqlite3.connect(catalog_path(copy_dir)) as dst,
    ):
        src_conn.backup(dst)
    (copy_dir / "images").symlink_to(data / "images")
    with Catalog(catalog_path(copy_dir)) as cat:
        cat.add_correction(cat.get("apod", "2024-03-01")["id"], "galaxy", "tester")
        cat.add_correction(cat.get("apod", "2014-04-12")["id"], "nebula|star", "tester")
    fixed = ApodCatalogSource(data_dir=str(copy_dir), labels=cfg).imageset()
    assert fixed.classes[fixed.targets[fixed.ids.index("2024-03-01")]] == "galaxy"
    assert fixed.fingerprint != ims.fingerprint
    # the run's summary reports these (data/n_corrections); a multi-label answer is "a|b"
    assert fixed.meta["n_corrections"] == 2 and ims.meta["n_corrections"] == 0
    assert fixed.classes[fixed.targets[fixed.ids.index("2014-04-12")]] == "nebula"
    multi_fixed = ApodCatalogSource(
        data_dir=str(copy_dir), labels=cfg, task="multilabel"
    ).imageset()
    row = multi_fixed.targets[multi_fixed.ids.index("2014-04-12")]
    assert [c for c, v in zip(multi_fixed.classes, row, strict=True) if v] == ["nebula", "star"]
    # another label config relabels on the fly (other version)
    ext = ApodCatalogSource(
        data_dir=str(data), labels=load_label_config("apod_extended"), include_other=True
    ).imageset()
    assert "moon" in ext.classes and ext.fingerprint != with_other.fingerprint


def test_catalog_source_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="scripts/scrape.py source=apod"):
        ApodCatalogSource(data_dir=str(tmp_path), labels=load_label_config("apod4")).imageset()
    with pytest.raises(ConfigError, match="labels: apod4"):
        ApodCatalogSource(data_dir=str(tmp_path)).imageset()


def test_catalog_source_refresh_scrapes_first(tmp_path: Path) -> None:
    with ApodStandin([FIXTURE_SITE]) as s:
        src = ApodCatalogSource(
            base_url=s.base_url,
            start_date="2014-04-12",
            end_date="2024-03-04",
            refresh=True,
            data_dir=str(tmp_path),
            labels=load_label_config("apod4"),
            http=FAST_HTTP,
            progress=False,
        )
        ims = src.imageset()
    assert sorted(ims.ids) == [
        "2014-04-12",
        "2024-03-01",
        "2024-03-02",
    ]  # 03-03 is a video, 03-04 "other"
    assert set(statuses(tmp_path)) == {
        "2014-04-12",
        "2017-09-05",
        "2024-03-01",
        "2024-03-02",
        "2024-03-03",
        "2024-03-04",
    }


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), color).save(buf, "JPEG")
    return buf.getvalue()


def test_thumbs_source_maps_fields(tmp_path: Path) -> None:
    rows = [
        ("images/a.jpg", (200, 0, 0), {"candidates": [{"title": "Spiral Galaxy NGC 1232"}]}),
        ("images/b.jpg", (0, 200, 0), {"candidates": [{"title_archivepix": "The Rosette Nebula"}]}),
        (
            "images/The_Rings_of_Saturn-0.jpg",
            (0, 0, 200),
            {"candidates": []},
        ),  # title from the file name
        (
            "images/The_Rings_of_Saturn-1.jpg",
            (0, 0, 190),
            {"candidates": []},
        ),  # another frame: dropped
        (
            "images/c.jpg",
            (200, 0, 0),
            {"candidates": [{"title": "Same bytes as a.jpg"}]},
        ),  # duplicate: dropped
        (
            "images/d.jpg",
            (9, 9, 9),
            {"candidates": [{"title": "Lunar Eclipse", "explanation": "The Moon."}]},
        ),
        ("images/e.jpg", (50, 50, 50), {"candidates": [{"title": "Open Cluster M35"}]}),
    ]
    (tmp_path / "images").mkdir()
    with (tmp_path / "meta.jsonl").open("w") as fh:
        for rel, color, meta in rows:
            (tmp_path / rel).write_bytes(_jpeg(color))
            fh.write(json.dumps({"path": rel, **meta}) + "\n")

    def source(**extra: object) -> ApodThumbsSource:
        return ApodThumbsSource(
            str(tmp_path),
            metadata="meta.jsonl",
            path_field="path",
            title_fields=["candidates.0.title", "candidates.0.title_archivepix"],
            explanation_fields=["candidates.0.explanation"],
            labels=load_label_config("apod4"),
            **extra,  # type: ignore[arg-type]
        )

    ims = source().imageset()
    got = {i: ims.classes[t] for i, t in zip(ims.ids, ims.targets, strict=True)}
    assert got == {
        "images/a.jpg": "galaxy",
        "images/b.jpg": "nebula",
        "images/The_Rings_of_Saturn-0.jpg": "planet",
        "images/e.jpg": "star",
    }
    assert field_value({"a": [{"b": 1}]}, "a.0.b") == 1 and field_value({"a": []}, "a.0.b") is None
    other_rules = ApodThumbsSource(
        str(tmp_path),
        metadata="meta.jsonl",
        path_field="path",
        title_fields=["candidates.0.title", "candidates.0.title_archivepix"],
        labels=load_label_config("apod_extended"),
    ).imageset()
    assert other_rules.fingerprint != ims.fingerprint

    # a person's labels file replaces the weak labels of the pictures it lists (and only those)
    (tmp_path / "mine.csv").write_text(
        "file,label\nimages/a.jpg,star\nimages/d.jpg,planet\nimages/missing.jpg,galaxy\n"
    )
    fixed_src = source(corrections="mine.csv")
    fixed = fixed_src.imageset()
    got_fixed = {i: fixed.classes[t] for i, t in zip(fixed.ids, fixed.targets, strict=True)}
    assert got_fixed == {**got, "images/a.jpg": "star", "images/d.jpg": "planet"}
    assert fixed.meta["n_corrections"] == 2 and ims.meta["n_corrections"] == 0
    assert fixed.fingerprint != ims.fingerprint  # the tensor cache follows the labels
    (tmp_path / "bad.csv").write_text("file,label\nimages/a.jpg,comet\n")
    fixed_src.corrections = tmp_path / "bad.csv"
    with pytest.raises(DataError, match="'comet'; use one of"):
        fixed_src.imageset()
    with pytest.raises(ConfigError, match="source.corrections='nope.csv' not found"):
        ApodThumbsSource(str(tmp_path), metadata="meta.jsonl", corrections="nope.csv")


def test_configs_compose() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="scrape",
            overrides=["source=apod_api", "source.last_days=30", "labels=apod_extended"],
        )
        assert (
            cfg.source.kind == "api"
            and cfg.source.name == "apod_api"
            and cfg.labels.name == "apod_extended"
        )
        assert cfg.source.api_key is None and cfg.source.labels.name == "apod_extended"
        cfg = compose(config_name="scrape")
        assert (
            cfg.source.name == "apod"
            and cfg.labels.name == "apod4"
            and cfg.source.task == "multiclass"
        )
        overrides = ["source=apod_thumbs"] + (
            [] if "labels" in compose(config_name="train") else ["+labels=apod4"]
        )
        cfg = compose(config_name="train", overrides=overrides)
        assert (
            cfg.source.labels.name == "apod4" and cfg.source.title_fields[0] == "candidates.0.title"
        )
    GlobalHydra.instance().clear()


@pytest.mark.skipif(
    not (SHARED_DATA / "apod-thumbs" / "metadata.jsonl").is_file(), reason="../shared/data absent"
)
def test_shared_thumbs_source() -> None:
    src = ApodThumbsSource(
        str(SHARED_DATA / "apod-thumbs"),
        title_fields=["candidates.0.title", "candidates.0.title_archivepix"],
        explanation_fields=["candidates.0.explanation"],
        labels=load_label_config("apod4"),
    )
    ims = src.imageset()
    counts = np.bincount(ims.targets, minlength=4)
    assert (
        len(ims) > 400
        and ims.classes == ["galaxy", "nebula", "planet", "star"]
        and counts.min() >= 20
    )
    assert len(set(ims.ids)) == len(ims)
    assert ims.load(0, 64).shape == (240, 320, 3)
