"""The web app in a real browser: Debian's Chromium driven by Playwright against the app
served by waitress on 127.0.0.1. Screenshots go to each test's tmp folder."""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astro_exp.web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ASTRO_EXP_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on an ephemeral port, served by waitress in a thread (as serve.py does)."""
    from test_web import web_env  # the session's trained bundle and demo catalog
    from waitress import create_server

    env = web_env(tmp_path_factory)
    data = tmp_path_factory.mktemp("browser") / "data"
    shutil.copytree(env.data_dir, data, ignore=shutil.ignore_patterns("thumbs", "uploads"))
    app = create_app(env.settings(data_dir=data))
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        message = f"{CHROMIUM} missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a skip there would hide a broken set-up
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.set_default_timeout(15_000)
    pg.astro_errors = errors  # a test expecting an error response clears it
    yield pg
    context.close()
    assert not errors, f"browser errors: {errors}"


def test_gallery_filter_and_picture_page(page, base_url, tmp_path):
    page.goto(base_url + "/")
    cards = page.locator("#gallery li.card")
    assert cards.count() == 30
    page.wait_for_load_state("networkidle")
    first_row = page.locator("#gallery img").evaluate_all(
        "imgs => imgs.slice(0, 6).map(i => i.naturalWidth)"
    )
    assert all(w > 0 for w in first_row)  # thumbnails made and served
    page.screenshot(path=tmp_path / "gallery.png")

    select = page.locator("select[name=label]")
    labels = [v for v in select.locator("option").evaluate_all("os => os.map(o => o.value)") if v]
    chosen = labels[0]
    with page.expect_navigation():
        select.select_option(chosen)  # drop-downs apply at once
    assert f"label={chosen}" in page.url
    shown = page.locator("#gallery .chip.pred").all_inner_texts()
    assert shown and set(shown) == {chosen}
    page.screenshot(path=tmp_path / "gallery_filtered.png")

    title = page.locator("#gallery .card .title").first.inner_text()
    page.locator("#gallery .card a").first.click()
    page.wait_for_url("**/pictures/*")
    assert page.locator("h1").inner_text() == title
    assert page.locator("#prediction .chip.pred").first.inner_text() in labels
    assert page.locator("#model-view").evaluate("i => i.naturalWidth") > 0
    assert page.locator("#original").evaluate("i => i.complete && i.naturalWidth > 0")
    page.screenshot(path=tmp_path / "picture.png", full_page=True)


def test_upload_a_picture_and_see_its_prediction(page, base_url, tmp_path):
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[40:80, 60:100] = (240, 230, 200)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    upload = tmp_path / "my_picture.jpg"
    upload.write_bytes(buf.getvalue())

    page.goto(base_url + "/classify")
    page.locator("#classify input[type=file]").set_input_files(str(upload))
    assert page.locator("#classify .drop span").inner_text() == "my_picture.jpg"
    with page.expect_navigation():
        page.locator("#classify button[type=submit]").click()
    assert "/classify/" in page.url
    confidence = page.locator("#confidence").inner_text()
    assert confidence.endswith("%") and 0 < float(confidence.rstrip("%")) <= 100
    assert page.locator("#prediction svg.bars rect.bar").count() >= 2
    page.screenshot(path=tmp_path / "classified.png", full_page=True)

    page.goto(base_url + "/classify")
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    page.locator("#classify input[type=file]").set_input_files(str(bad))
    with page.expect_navigation():
        page.locator("#classify button[type=submit]").click()
    assert "cannot be classified" in page.locator(".flash.error").inner_text()
    page.astro_errors.clear()  # the 400 of the refused upload, as intended


def test_runs_page_sort_and_compare(page, base_url, tmp_path):
    page.goto(base_url + "/runs")
    rows = page.locator("#runs-table tbody tr")
    assert rows.count() == 2
    first_before = rows.first.locator("td").nth(2).inner_text()
    page.locator("#runs-table th", has_text="test/f1_macro").click()  # ascending: worst first
    assert rows.first.locator("td").nth(2).inner_text() != first_before
    page.screenshot(path=tmp_path / "runs.png")

    assert page.locator("#compare-btn").is_disabled()
    for box in page.locator("#runs-table input[name=run]").all():
        box.check()
    with page.expect_navigation():
        page.locator("#compare-btn").click()
    assert page.locator("h1").inner_text() == "2 runs ranked by test/f1_macro"
    page.screenshot(path=tmp_path / "compare.png", full_page=True)

    page.goto(base_url + "/runs")
    with page.expect_navigation():
        page.locator("#runs-table a", has_text="tiny").click()
    assert page.locator("img.cm").evaluate("i => i.complete && i.naturalWidth > 0")
    page.screenshot(path=tmp_path / "run.png", full_page=True)
