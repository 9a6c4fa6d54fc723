"""The watcher against the local APOD stand-in with a fast clock: new day -> one alert,
restart -> no duplicate, outage -> days caught up, webhook to a local server (and its
failures retried), site errors -> back-off without a crash; SIGTERM and --once via the CLI;
predict_catalog filling the catalog's predictions table."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from astro_exp.apod.scrape import ScrapeRequest, scrape
from astro_exp.data.catalog import OK, Catalog, catalog_path
from astro_exp.errors import ConfigError
from astro_exp.predict.classifier import Classifier
from astro_exp.predict.into_catalog import predict_catalog, run_id_for
from astro_exp.watch.alerts import AlertRules
from astro_exp.watch.duration import format_duration, parse_duration
from astro_exp.watch.watcher import MISSING, Watcher, WatchSettings
from tests.conftest import ROOT
from tests.support.apod_site import write_site
from tests.support.standin import ApodStandin
from tests.test_predict import CLASSES, handmade_bundle

D0 = dt.date(2024, 5, 10)
FAST_HTTP = {
    "rate_limit_per_host": 500.0,
    "retries": 0,
    "backoff_factor": 0.01,
    "timeout": 5.0,
    "max_concurrency": 2,
}
PIC = (120, 90)  # small pictures: the test is about the loop, not the bytes


class Hooks:
    """A real webhook receiver on 127.0.0.1: records JSON bodies; fails the first ``fail`` POSTs."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.fail = 0
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hooks.fail > 0:
                    hooks.fail -= 1
                    self.send_response(500)
                else:
                    hooks.bodies.append(json.loads(body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FastClock:
    """Time that moves only when the watcher sleeps; ``on_sleep`` runs between polls."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.now += seconds
        return bool(self.on_sleep and self.on_sleep())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return handmade_bundle(tmp_path_factory.mktemp("watch-bundle"))


@pytest.fixture(scope="module")
def clf(bundle: Path) -> Classifier:
    return Classifier.from_checkpoint(bundle, device="cpu")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, ApodStandin]]:
    root = tmp_path / "site"
    write_site(root, end=D0, n_days=5, picture_size=PIC)
    with ApodStandin([root]) as standin:
        yield root, standin


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.close()


def publish(root: Path, end: dt.date) -> None:
    """New days appear on the stand-in (pages, archive, front page, feed)."""
    write_site(root, end=end, n_days=5 + (end - D0).days, picture_size=PIC)


def make_watcher(
    standin: ApodStandin,
    data: Path,
    clf: Classifier,
    hook_url: str | None = None,
    clock: FastClock | None = None,
    **settings,
) -> Watcher:
    req = ScrapeRequest(source="apod", base_url=standin.base_url, last_days=1)
    rules = AlertRules(
        labels=list(CLASSES), anomalies=False, webhook_url=hook_url
    )  # every new day alerts
    opts = {"interval_s": 3600.0, "heartbeat_s": 600.0, "backoff_initial_s": 30.0, **settings}
    clock = clock or FastClock()
    return Watcher(
        req,
        data,
        clf,
        "runs/test",
        WatchSettings(**opts),
        rules,
        http={**FAST_HTTP, "cache_dir": str(data / "http_cache")},
        clock=clock,
        sleep=clock.sleep,
    )


def test_new_day_alerts_once_and_restart_does_not_repeat(site, clf, hooks, tmp_path: Path) -> None:
    root, standin = site
    data = tmp_path / "data"
    w = make_watcher(standin, data, clf, hooks.url)
    first = w.poll()
    assert first.newest == D0 and first.handled == {
        D0.isoformat(): OK
    }  # backfill_days=1: the newest only
    assert [a["payload"]["date"] for a in first.alerts] == [D0.isoformat()]
    assert first.delivered == 1 and [b["date"] for b in hooks.bodies] == [D0.isoformat()]
    body = hooks.bodies[0]
    assert body["reason"] == f"label:{body['label']}" and body["label"] in CLASSES
    assert (
        body["page_url"].endswith(f"ap{D0:%y%m%d}.html")
        and body["alert_id"] == first.alerts[0]["id"]
    )
    assert abs(sum(t["probability"] for t in body["top_k"]) - 1) < 1e-5
    w.close()

    # restart: a fresh watcher on the same catalog sees nothing new and alerts nothing
    w2 = make_watcher(standin, data, clf, hooks.url)
    again = w2.poll()
    assert again.due == [] and again.alerts == [] and len(hooks.bodies) == 1

    # a new day is published: exactly one more alert
    publish(root, D0 + dt.timedelta(days=1))
    third = w2.poll()
    assert list(third.handled) == [(D0 + dt.timedelta(days=1)).isoformat()]
    assert len(third.alerts) == 1 and len(hooks.bodies) == 2
    w2.close()
    with Catalog(catalog_path(data)) as cat:
        assert len(cat.alerts()) == 2 and all(a["delivered_at"] for a in cat.alerts())
        preds = cat.predictions("runs/test")
        rows = cat.rows(status=OK)
    # the watcher's predictions are in the catalog (what the web gallery shows)
    watched = [r for r in rows if r["date"] >= D0.isoformat()]
    assert {r["sha256"] for r in watched} <= set(preds)


def test_outage_catches_up_every_missed_day(site, clf, hooks, tmp_path: Path) -> None:
    root, standin = site
    data = tmp_path / "data"
    w = make_watcher(standin, data, clf, hooks.url)
    w.poll()
    w.close()
    publish(root, D0 + dt.timedelta(days=2))  # down for two days
    w = make_watcher(standin, data, clf, hooks.url)
    res = w.poll()
    w.close()
    days = [(D0 + dt.timedelta(days=i)).isoformat() for i in (1, 2)]
    assert list(res.handled) == days and [a["payload"]["date"] for a in res.alerts] == days
    assert [b["date"] for b in hooks.bodies] == [D0.isoformat(), *days]


def test_catchup_is_capped_and_calendar_gaps_are_marked(site, clf, tmp_path: Path) -> None:
    root, standin = site
    data = tmp_path / "data"
    w = make_watcher(standin, data, clf, backfill_days=3)
    res = w.poll()
    assert list(res.handled) == [(D0 - dt.timedelta(days=i)).isoformat() for i in (2, 1, 0)]
    publish(root, D0 + dt.timedelta(days=6))
    w.settings.max_catchup_days = 3
    res = w.poll()  # six days missed, only the newest three are caught up
    assert list(res.handled) == [(D0 + dt.timedelta(days=i)).isoformat() for i in (4, 5, 6)]
    w.close()
    # a day the site does not list is marked missing, not retried forever
    gap_root = tmp_path / "gap"
    write_site(gap_root, end=D0, n_days=3, picture_size=PIC)
    (gap_root / "apod" / f"ap{D0 - dt.timedelta(days=1):%y%m%d}.html").unlink()
    archive = gap_root / "apod" / "archivepix.html"
    archive.write_text(
        "\n".join(
            line
            for line in archive.read_text().splitlines()
            if f"ap{D0 - dt.timedelta(days=1):%y%m%d}" not in line
        )
    )
    with ApodStandin([gap_root]) as gap:
        w = make_watcher(gap, tmp_path / "gapdata", clf, backfill_days=3)
        res = w.poll()
        w.close()
    assert res.handled[(D0 - dt.timedelta(days=1)).isoformat()] == MISSING
    assert res.handled[D0.isoformat()] == OK and len(res.alerts) == 2


def test_site_errors_back_off_then_recover(site, clf, hooks, tmp_path: Path) -> None:
    _, standin = site
    data = tmp_path / "data"
    clock = FastClock()
    w = make_watcher(
        standin, data, clf, hooks.url, clock=clock, backoff_initial_s=30.0, heartbeat_s=7200.0
    )
    standin.fault("/apod/", "500", times=3)  # the front page fails three polls in a row
    code = w.run(max_polls=5)
    w.close()
    assert code == 0 and w.polls == 5
    # waits: 30, 60, 120 after the failures, then the normal interval
    assert clock.sleeps[:4] == [30.0, 60.0, 120.0, 3600.0]
    assert [b["date"] for b in hooks.bodies] == [D0.isoformat()]  # recovered: one alert, no crash
    with Catalog(catalog_path(data)) as cat:
        assert cat.watched_days("apod") == {D0.isoformat(): OK}


def test_failed_picture_is_retried_next_poll(site, clf, tmp_path: Path) -> None:
    _, standin = site
    data = tmp_path / "data"
    w = make_watcher(standin, data, clf)
    standin.fault(f"/apod/image/{D0:%y%m}/Standin_{D0:%y%m%d}.jpg", "500", times=1)
    first = w.poll()
    assert first.handled == {} and first.pending == [D0.isoformat()] and first.alerts == []
    second = w.poll()
    w.close()
    assert second.handled == {D0.isoformat(): OK} and len(second.alerts) == 1


def test_failed_webhook_is_retried_without_duplicates(site, clf, hooks, tmp_path: Path) -> None:
    _, standin = site
    data = tmp_path / "data"
    hooks.fail = 1
    w = make_watcher(standin, data, clf, hooks.url)
    first = w.poll()
    assert first.delivered == 0 and first.delivery_failed == 1 and hooks.bodies == []
    assert "1 alerts (1 undelivered)" in w.heartbeat(60.0)
    second = w.poll()  # nothing new, but the queued alert goes out now
    w.close()
    assert second.alerts == [] and second.delivered == 1
    assert len(hooks.bodies) == 1 and hooks.bodies[0]["alert_id"] == first.alerts[0]["id"]
    assert "1 alerts" in w.heartbeat(60.0) and "undelivered" not in w.heartbeat(60.0)
    with Catalog(catalog_path(data)) as cat:
        (alert,) = cat.alerts()
    assert (
        alert["attempts"] == 2 and alert["delivered_at"] is not None and alert["last_error"] is None
    )


def test_anomaly_alerts_and_label_rules(site, clf, bundle: Path, tmp_path: Path) -> None:
    _, standin = site
    flagged = Classifier.from_checkpoint(bundle, device="cpu")
    flagged.detector.threshold = float("-inf")  # every picture is stranger than this
    req = ScrapeRequest(source="apod", base_url=standin.base_url, last_days=1)
    w = Watcher(
        req,
        tmp_path / "data",
        flagged,
        "runs/test",
        WatchSettings(),
        AlertRules(labels=[], anomalies=True),
        http={**FAST_HTTP, "cache_dir": str(tmp_path / "hc")},
    )
    res = w.poll()
    w.close()
    assert [a["reason"] for a in res.alerts] == ["anomaly"] and res.alerts[0]["payload"][
        "is_anomaly"
    ] is True
    assert res.alerts[0]["payload"]["neighbours"], (
        "an anomaly alert lists the nearest training pictures"
    )
    # no rule matches: the day is handled without an alert
    w = make_watcher(standin, tmp_path / "quiet", clf)
    w.rules = AlertRules(labels=[], anomalies=False)
    res = w.poll()
    w.close()
    assert res.handled == {D0.isoformat(): OK} and res.alerts == []


def test_rss_poll_and_settings_errors(site, clf, tmp_path: Path) -> None:
    _, standin = site
    w = make_watcher(standin, tmp_path / "data", clf, poll="rss")
    assert w.newest_date() == D0
    assert [e[2] for e in standin.hits("/apod.rss")] == [200] and standin.hits(
        "/apod/"
    ) == []  # the feed, not the page
    w.close()
    with pytest.raises(ConfigError, match="watch.poll"):
        WatchSettings.from_config({"poll": "email"})
    with pytest.raises(ConfigError, match="not a duration"):
        WatchSettings.from_config({"interval": "soon"})
    with pytest.raises(ConfigError, match="not classes of the model"):
        AlertRules.from_config({"labels": ["unicorn"]}, CLASSES)
    with pytest.raises(ConfigError, match="http"):
        AlertRules.from_config({"webhook_url": "ftp://x"}, CLASSES)
    assert (
        parse_duration("1.5h") == 5400 and parse_duration("30s") == 30 and parse_duration(90) == 90
    )
    assert format_duration(3600) == "1h" and format_duration(90) == "1m30s"


def test_predict_catalog_fills_predictions_once(site, clf, tmp_path: Path) -> None:
    _, standin = site
    data = tmp_path / "data"
    scrape(
        ScrapeRequest(source="apod", base_url=standin.base_url, last_days=5),
        data,
        http={**FAST_HTTP, "cache_dir": str(data / "hc")},
        progress=False,
    )
    with Catalog(catalog_path(data)) as cat:
        first = predict_catalog(clf, cat, "runs/x", data, progress=False)
        again = predict_catalog(clf, cat, "runs/x", data, progress=False)
        stored = cat.predictions("runs/x")
        vectors = cat.embeddings("runs/x")
        sha_of = {r["id"]: r["sha256"] for r in cat.rows(status=OK)}
        n_ok = len(sha_of)
    assert len(first) == n_ok == 5 and again == {}  # the second pass has nothing left to do
    assert len(stored) == 5
    # the detector's embedding of each picture lands beside its prediction (the anomaly marks
    # are spread over them), exactly what the classifier computed
    assert set(vectors) == set(stored)
    for pid, pred in first.items():
        got = vectors[sha_of[pid]]
        assert got.dtype == np.float32 and np.allclose(got, pred.embedding, atol=1e-6)
    for p in stored.values():
        assert set(p["probs"]) == set(CLASSES) and abs(sum(p["probs"].values()) - 1) < 1e-5
        assert p["label"] == max(p["probs"], key=p["probs"].get) and p["anomaly_score"] is not None
    out = tmp_path / "outputs"
    assert (
        run_id_for(out / "runs" / "2026-01-01" / "12-00-00_x" / "checkpoints" / "best.pt", out)
        == "runs/2026-01-01/12-00-00_x"
    )
    assert run_id_for(tmp_path / "elsewhere" / "checkpoints" / "best.pt", out) == "elsewhere"


def _cli(bundle: Path, standin: ApodStandin, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "scripts" / "watch.py"),
        f"ckpt_path={bundle}",
        f"source.base_url={standin.base_url}",
        f"paths.data_dir={data}",
        "device=cpu",
        "source.http.rate_limit_per_host=500",
        "source.http.retries=0",
        "source.http.timeout=5",
        *extra,
    ]


def test_cli_once_then_sigterm(site, bundle: Path, hooks, tmp_path: Path) -> None:
    _, standin = site
    data = tmp_path / "data"
    env = {**os.environ, "ASTRO_EXP_ROOT": str(tmp_path)}
    done = subprocess.run(
        _cli(
            bundle,
            standin,
            data,
            f"alerts.webhook_url={hooks.url}",
            "alerts.labels=[galaxy,nebula,planet,star]",
            "alerts.anomalies=false",
            "--once",
        ),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ALERT label:" in done.stderr and len(hooks.bodies) == 1
    with Catalog(catalog_path(data)) as cat:
        assert cat.watched_days("apod") == {D0.isoformat(): OK}

    # the loop: alive (heartbeat), then SIGTERM ends it cleanly
    proc = subprocess.Popen(
        _cli(bundle, standin, data, "watch.interval=1h", "watch.heartbeat=1h"),
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "heartbeat:" in line or not line:
                break
        assert any("heartbeat:" in x for x in lines), "".join(lines)[-2000:]
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopping" in rest and len(hooks.bodies) == 1  # no repeat alert


def test_cli_bad_checkpoint_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "watch.py"),
            f"ckpt_path={tmp_path / 'nope.pt'}",
            f"paths.data_dir={tmp_path}",
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) == 1


def test_predict_cli_fills_the_catalog(site, bundle: Path, tmp_path: Path) -> None:
    _, standin = site
    data = tmp_path / "data"
    scrape(
        ScrapeRequest(source="apod", base_url=standin.base_url, last_days=3),
        data,
        http={**FAST_HTTP, "cache_dir": str(data / "hc")},
        progress=False,
    )
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "predict.py"),
        f"ckpt_path={bundle}",
        "catalog=true",
        f"paths.data_dir={data}",
        "run_id=runs/cli",
        "device=cpu",
        "progress=false",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (
        "classified 3 new pictures" in first.stdout
        and "3 in the catalog for this run" in first.stdout
    )
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "classified 0 new pictures" in second.stdout  # nothing twice
    with Catalog(catalog_path(data)) as cat:
        assert len(cat.predictions("runs/cli")) == 3
    missing = subprocess.run(
        [*cmd[:4], f"paths.data_dir={tmp_path / 'empty'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error: no catalog")


def test_serve_classifies_the_catalog_for_the_gallery(site, bundle: Path, tmp_path: Path) -> None:
    import socket
    import urllib.request

    _, standin = site
    data = tmp_path / "data"
    scrape(
        ScrapeRequest(source="apod", base_url=standin.base_url, last_days=2),
        data,
        http={**FAST_HTTP, "cache_dir": str(data / "hc")},
        progress=False,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "scripts/serve.py",
            f"port={port}",
            f"data_dir={data}",
            f"outputs_dir={tmp_path / 'out'}",
            f"ckpt_path={bundle}",
            "classify_catalog=true",
            "device=cpu",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/pictures", timeout=2
                ) as resp:
                    listing = json.load(resp)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    proc.stdout.read() if proc.stdout else ""
                )
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert listing["run_id"] == bundle.parent.name and listing["total"] == 2
    rows = listing["items"]
    assert len(rows) == 2 and all(r["label"] in CLASSES and 0 < r["confidence"] <= 1 for r in rows)
    assert all(r["anomaly_score"] is not None for r in rows)


@pytest.mark.parametrize("script", ["watch.py", "predict.py"])
def test_cli_without_checkpoint_says_what_to_pass(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "inputs=[x.jpg]"]
        if script == "predict.py"
        else [sys.executable, str(ROOT / "scripts" / script), "--once"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: no checkpoint; pass ckpt_path=outputs/runs/<date>/<time>_<name>/checkpoints/best.pt"
    ]


def test_api_source_polls_the_api(site, clf, tmp_path: Path) -> None:
    _, standin = site
    data = tmp_path / "data"
    req = ScrapeRequest(
        source="apod_api",
        kind="api",
        api_url=standin.api_url,
        base_url=standin.base_url,
        api_key="TESTKEY",
        last_days=1,
    )
    w = Watcher(
        req,
        data,
        clf,
        "runs/test",
        WatchSettings(poll="api", backfill_days=2),
        AlertRules(labels=list(CLASSES), anomalies=False),
        http={**FAST_HTTP, "cache_dir": str(data / "hc")},
    )
    res = w.poll()
    w.close()
    assert res.newest == D0 and list(res.handled) == [
        (D0 - dt.timedelta(days=1)).isoformat(),
        D0.isoformat(),
    ]
    assert all(s == OK for s in res.handled.values()) and len(res.alerts) == 2
    assert any(
        path.startswith("/planetary/apod") for _, path, _, _ in standin.requests_log
    )  # the API, not the pages


def test_after_an_import_the_watcher_carries_on_from_the_newest_imported_day(
    site, clf, hooks, tmp_path: Path
) -> None:
    """A catalog filled by an import (here three days, as ``scrape source=apod_mirror``
    leaves them) up to two days before the newest: the first poll handles exactly the two
    days after it (not only the newest, not the imported ones), alerts each once with the
    answer's evidence, and a second poll adds nothing."""
    from astro_exp.data.catalog import PictureRecord

    _, standin = site
    data = tmp_path / "data"
    imported = [(D0 - dt.timedelta(days=k)).isoformat() for k in (4, 3, 2)]
    with Catalog(catalog_path(data)) as cat:
        cat.upsert_many(
            PictureRecord(source="apod", date=d, status="video", media_type="video", title=d)
            for d in imported
        )
        assert cat.newest_day("apod") == imported[-1]
    w = make_watcher(standin, data, clf, hooks.url)
    first = w.poll()
    after = [(D0 - dt.timedelta(days=1)).isoformat(), D0.isoformat()]
    assert sorted(first.handled) == after and first.due == [dt.date.fromisoformat(d) for d in after]
    assert sorted(a["payload"]["date"] for a in first.alerts) == after
    for alert in first.alerts:
        p = alert["payload"]
        assert p["evidence"] in ("picture", "picture+text") and p["label"] in CLASSES
        if p["evidence"] == "picture+text":  # the fused label, with what each side said
            assert p["text"]["label"] and p["picture"]["label"]
    again = w.poll()
    assert again.due == [] and again.alerts == [] and len(hooks.bodies) == 2
    w.close()
    with Catalog(catalog_path(data)) as cat:
        assert set(cat.watched_days("apod")) == set(after)  # the imported days untouched
        assert len(cat.alerts()) == 2
