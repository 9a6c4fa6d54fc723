"""The Review page in a real browser (Debian's Chromium, Playwright, waitress on 127.0.0.1):
three pictures labelled with one key each, stored without a page load, read back from the
catalog. The fixtures are test_browser_web's; the server here has its own catalog copy."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_browser_web import browser, page  # noqa: F401  (the Chromium fixtures)

from astro_exp.data.catalog import Catalog, catalog_path
from astro_exp.web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list]]:
    """(base URL, its data folder, the model's classes): the app with the trained bundle."""
    from test_web import web_env
    from waitress import create_server

    env = web_env(tmp_path_factory)
    data = tmp_path_factory.mktemp("browser-review") / "data"
    shutil.copytree(env.data_dir, data, ignore=shutil.ignore_patterns("thumbs", "uploads"))
    app = create_app(env.settings(data_dir=data))
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}", data, env.classes
    server.close()


def _history(data: Path) -> dict[int, list[dict]]:
    with Catalog(catalog_path(data)) as cat:
        return cat.correction_history()


def test_label_three_pictures_with_the_keyboard(page, review_server, tmp_path):  # noqa: F811
    base, data, classes = review_server
    with urllib.request.urlopen(f"{base}/api/review?n=3", timeout=10) as resp:
        first = json.load(resp)["items"]
    ids = [it["id"] for it in first]
    expected = {ids[0]: classes[0], ids[1]: classes[1], ids[2]: first[2]["label"]}

    page.goto(base + "/review")
    page.wait_for_function(f"document.getElementById('review').dataset.current === '{ids[0]}'")
    assert page.locator("#review-title").inner_text() == first[0]["title"]
    assert page.locator("#review-probs li").count() == min(3, len(classes))
    assert page.locator("#review-keys kbd").all_inner_texts()[: len(classes)] == [
        str(k) for k in range(1, len(classes) + 1)
    ]
    page.wait_for_function("document.getElementById('review-img').naturalWidth > 0")
    page.locator("#review-who").fill("ada")
    page.locator("#review-who").dispatch_event("change")
    page.evaluate("document.activeElement.blur(); window.__notReloaded = 42")
    page.screenshot(path=tmp_path / "review.png")

    for key, nxt in (("1", ids[1]), ("2", ids[2]), ("Enter", None)):
        page.keyboard.press(key)
        if nxt is not None:  # the next picture at once, from the prefetched queue
            page.wait_for_function(f"document.getElementById('review').dataset.current === '{nxt}'")
    deadline = time.monotonic() + 15
    while len([i for i in ids if i in _history(data)]) < 3:
        assert time.monotonic() < deadline, f"stored only {_history(data)}"
        time.sleep(0.1)
    page.wait_for_function(
        "document.getElementById('review-status').textContent.startsWith('Stored')"
    )
    history = _history(data)
    for pid, label in expected.items():
        assert [(h["label"], h["who"]) for h in history[pid]] == [(label, "ada")], pid
        assert history[pid][0]["created_at"]
    assert page.evaluate("window.__notReloaded") == 42  # no page load in between
    assert page.locator("#review").get_attribute("data-current") not in {str(i) for i in ids}
    page.screenshot(path=tmp_path / "review_after.png")

    page.reload()  # the stored pictures left the queue; "who" is remembered
    page.wait_for_function("document.getElementById('review').dataset.current !== undefined")
    assert page.locator("#review").get_attribute("data-current") not in {str(i) for i in ids}
    assert page.locator("#review-who").input_value() == "ada"
