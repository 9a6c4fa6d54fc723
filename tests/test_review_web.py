"""The person in the loop in the web app: the Review queue and its answers (``/api/review``),
the anomaly marks and the ranking they give (``/anomalies``, ``/api/anomalies``), over a copy
of the demo catalog with a run whose probabilities, scores and embeddings the tests craft."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from astro_exp.data.catalog import Catalog, catalog_path
from astro_exp.review.queue import QUEUE_ORDERS as ORDERS
from astro_exp.review.queue import shuffle_key
from astro_exp.web import create_app

CLASSES = ["galaxy", "nebula", "planet", "star"]
RUN = "crafted"


@dataclass
class Crafted:
    """A catalog copy with run ``crafted``: per picture id its probs, weak label, score."""

    data_dir: Path
    outputs: Path
    probs: dict[int, dict[str, float]]
    weak: dict[int, str]
    score: dict[int, float]
    sha: dict[int, str]

    def app(self, **changes):
        settings = {
            "data_dir": self.data_dir,
            "outputs_dir": self.outputs,
            "run_id": RUN,
            **changes,
        }
        return create_app(settings)

    def history(self) -> dict[int, list[dict]]:
        with Catalog(catalog_path(self.data_dir)) as cat:
            return cat.correction_history()


def _copy_catalog(env, tmp_path: Path) -> tuple[Path, list[tuple[int, str, str]]]:
    data = tmp_path / "data"
    shutil.copytree(env.data_dir, data, ignore=shutil.ignore_patterns("thumbs", "uploads"))
    with sqlite3.connect(catalog_path(data)) as conn:
        rows = conn.execute(
            "SELECT id, sha256, json_extract(labels, '$.primary') FROM pictures ORDER BY id"
        ).fetchall()
    return data, [(int(i), str(s), str(w)) for i, s, w in rows]


def craft(
    env,
    tmp_path: Path,
    seed: int = 1,
    embeddings: dict[int, np.ndarray] | None = None,
    scores: dict[int, float] | None = None,
    flagged=None,
) -> Crafted:
    """Predictions of run ``crafted`` with random (distinct) probabilities and scores."""
    data, rows = _copy_catalog(env, tmp_path)
    rng = np.random.default_rng(seed)
    probs, weak, score, sha = {}, {}, {}, {}
    preds = []
    for pid, s, w in rows:
        p = rng.dirichlet(np.ones(len(CLASSES)))
        probs[pid] = {k: float(v) for k, v in zip(CLASSES, p, strict=True)}
        weak[pid], sha[pid] = w, s
        score[pid] = float(scores[pid]) if scores else float(rng.normal())
        top = max(probs[pid], key=probs[pid].get)
        preds.append(
            {
                "sha256": s,
                "label": top,
                "confidence": probs[pid][top],
                "probs": probs[pid],
                "anomaly_score": score[pid],
                "is_anomaly": bool(flagged(pid)) if flagged else score[pid] > 0.5,
            }
        )
    with Catalog(catalog_path(data)) as cat:
        cat.add_predictions(RUN, preds)
        if embeddings:
            cat.add_embeddings(RUN, {sha[pid]: v for pid, v in embeddings.items()})
    return Crafted(data, tmp_path / "outputs", probs, weak, score, sha)


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory):
    from test_web import web_env  # the session's trained bundle and demo catalog

    return web_env(tmp_path_factory)


@pytest.fixture
def crafted(env, tmp_path: Path) -> Crafted:
    return craft(env, tmp_path)


def expected_order(c: Crafted, order: str, ids: list[int]) -> list[int]:
    """Each order written out from its definition (conf/review/default.yaml), not the code."""

    def margin(pid: int) -> float:
        top = sorted(c.probs[pid].values(), reverse=True)
        return top[0] - top[1]

    def disagrees(pid: int) -> bool:
        return max(c.probs[pid], key=c.probs[pid].get) != c.weak[pid]

    if order == "uncertainty":
        return sorted(ids, key=margin)  # least sure (smallest margin) first
    if order == "disagreement":  # surest disagreements first, then the least sure agreements
        dis = sorted((i for i in ids if disagrees(i)), key=lambda i: -max(c.probs[i].values()))
        return dis + sorted((i for i in ids if not disagrees(i)), key=margin)
    if order == "anomaly":
        return sorted(ids, key=lambda i: -c.score[i])
    # random, and text_picture without texts (no text: every picture last, in random order)
    return sorted(ids, key=lambda i: shuffle_key(c.sha[i], 0))


def queue(client, **args) -> dict:
    resp = client.get("/api/review", query_string={"n": 200, **args})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def answer(client, pid: int, **body):
    return client.post(f"/api/review/{pid}", json=body)


# -- the queue ---------------------------------------------------------------------------------------
def test_queue_follows_each_order_and_leaves_out_corrected_pictures(crafted):
    client = crafted.app().test_client()
    ids = sorted(crafted.probs)
    first = queue(client)
    assert first["order"] == "uncertainty" and first["orders"] == list(ORDERS)
    assert first["classes"] == CLASSES and first["task"] == "multiclass"
    assert first["total"] == len(ids) and first["corrected"] == 0 and first["run_id"] == RUN
    for order in ORDERS:
        got = [it["id"] for it in queue(client, order=order)["items"]]
        assert got == expected_order(crafted, order, ids), order
    head = queue(client, order="disagreement")["items"][0]
    assert head["weak_label"] == crafted.weak[head["id"]] and head["label"] != head["weak_label"]
    assert [t["label"] for t in head["top_k"]][0] == head["label"] and head["suggested"] == [
        head["label"]
    ]
    assert head["thumb_url"] == f"/media/thumb/{head['id']}.jpg"
    assert (
        head["image_url"] == f"/media/original/{head['id']}"
        and head["url"] == f"/pictures/{head['id']}"
    )
    page = queue(client, order="anomaly", n=5, offset=5)
    assert [it["id"] for it in page["items"]] == expected_order(crafted, "anomaly", ids)[5:10]

    done = expected_order(crafted, "uncertainty", ids)[:3]
    for pid in done:
        assert answer(client, pid, label="star", who="ada").status_code == 200
    left = [i for i in ids if i not in done]
    for order in ORDERS:
        data = queue(client, order=order)
        assert data["total"] == len(left) and data["corrected"] == 3
        assert [it["id"] for it in data["items"]] == expected_order(crafted, order, left), order
    bad = client.get("/api/review?order=newest")
    assert bad.status_code == 400 and "must be one of" in bad.get_json()["error"]


def test_the_default_order_comes_from_the_review_settings(crafted):
    client = crafted.app(review={"order": "anomaly"}).test_client()
    data = queue(client)
    assert data["order"] == "anomaly"
    assert [it["id"] for it in data["items"]] == expected_order(
        crafted, "anomaly", sorted(crafted.probs)
    )
    html = client.get("/review").get_data(as_text=True)
    assert '<option value="anomaly" selected>' in html
    assert 'src="/static/review.js"' in html and "<script>" not in html  # no inline script (CSP)
    for k, c in enumerate(CLASSES, 1):
        assert f'data-label="{c}" data-key="{k}"' in html and f"<kbd>{k}</kbd> {c}" in html


# -- answers ---------------------------------------------------------------------------------------
def test_an_answer_is_stored_with_who_and_when_and_leaves_the_queue(crafted):
    client = crafted.app().test_client()
    pid = queue(client)["items"][0]["id"]
    resp = answer(client, pid, label="nebula", who="  ada ")
    assert resp.status_code == 200
    got = resp.get_json()
    assert (
        got["id"] == pid and got["label"] == "nebula" and got["who"] == "ada" and got["created_at"]
    )
    assert crafted.history()[pid] == [
        {"label": "nebula", "who": "ada", "created_at": got["created_at"]}
    ]
    assert pid not in [it["id"] for it in queue(client)["items"]]
    other = queue(client)["items"][0]["id"]
    assert answer(client, other, label="galaxy").get_json()["who"] == "web"  # default_who
    assert client.get(f"/api/pictures/{pid}").get_json()["catalog_label"] == "nebula"


def test_answers_must_be_json_with_a_known_label(crafted):
    client = crafted.app().test_client()
    pid = sorted(crafted.probs)[0]
    form = client.post(
        f"/api/review/{pid}", data={"label": "galaxy"}
    )  # what a cross-site form sends
    assert form.status_code == 415 and form.get_json()["error"].startswith("send JSON")
    plain = client.post(
        f"/api/review/{pid}", data=json.dumps({"label": "galaxy"}), content_type="text/plain"
    )
    assert plain.status_code == 415
    broken = client.post(f"/api/review/{pid}", data="{label", content_type="application/json")
    assert broken.status_code == 400
    unknown = answer(client, pid, label="comet")
    assert unknown.status_code == 400 and "unknown label 'comet'" in unknown.get_json()["error"]
    assert answer(client, pid, labels=["galaxy", "star"]).status_code == 400  # one label here
    assert answer(client, pid, label="galaxy", who=7).status_code == 400
    assert answer(client, pid).status_code == 400
    missing = answer(client, 99999, label="galaxy")
    assert missing.status_code == 404 and "no picture 99999" in missing.get_json()["error"]
    assert crafted.history() == {}  # nothing was stored


def test_multilabel_answers_round_trip(env, tmp_path):
    c = craft(env, tmp_path)
    run_dir = c.outputs / "runs" / "2026-01-03" / "00-00-00_multi"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"test/f1_macro": 0.5}))
    (run_dir / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"task": {"name": "multilabel"}})
    )
    multi = "runs/2026-01-03/00-00-00_multi"
    with Catalog(catalog_path(c.data_dir)) as cat:  # independent per-class probabilities
        cat.add_predictions(
            multi,
            [
                {
                    "sha256": c.sha[pid],
                    "label": "galaxy",
                    "confidence": 0.9,
                    "probs": {"galaxy": 0.9, "nebula": 0.2, "planet": 0.1, "star": 0.7},
                    "anomaly_score": 0.0,
                    "is_anomaly": False,
                }
                for pid in c.probs
            ],
        )
    client = c.app(run_id=multi).test_client()
    data = queue(client)
    assert data["task"] == "multilabel" and data["run_id"] == multi
    assert data["items"][0]["suggested"] == ["galaxy", "star"]  # over 0.5: what Enter agrees with
    pid = data["items"][0]["id"]
    got = answer(client, pid, labels=["star", "galaxy"], who="ada").get_json()
    assert got["label"] == "galaxy|star"
    assert crafted_labels(c, pid) == ["galaxy|star"]
    assert answer(client, pid + 1, label="planet").get_json()["label"] == "planet"
    assert answer(client, pid, labels=[]).status_code == 400
    assert answer(client, pid, labels=["galaxy", "ufo"]).status_code == 400
    assert pid not in [it["id"] for it in queue(client)["items"]]
    assert "Your labels (keys toggle, Enter stores)" in client.get("/review").get_data(as_text=True)


def crafted_labels(c: Crafted, pid: int) -> list[str]:
    return [h["label"] for h in c.history().get(pid, [])]


def test_the_review_page_says_what_to_run_without_a_catalog_or_predictions(env, tmp_path):
    none = create_app({"data_dir": tmp_path / "none", "outputs_dir": tmp_path / "none"})
    html = none.test_client().get("/review").get_data(as_text=True)
    assert "No catalog yet" in html and "scripts/scrape.py" in html and 'id="review"' not in html
    assert none.test_client().get("/api/review").status_code == 404
    data, _ = _copy_catalog(env, tmp_path)
    with sqlite3.connect(catalog_path(data)) as conn:
        conn.execute("DELETE FROM predictions")
    empty = create_app({"data_dir": data, "outputs_dir": tmp_path / "none"}).test_client()
    html = empty.get("/review").get_data(as_text=True)
    assert "No predictions to review" in html and "scripts/predict.py" in html
    nav = empty.get("/").get_data(as_text=True)
    assert '<a href="/review"' in nav


# -- anomaly marks ---------------------------------------------------------------------------------
def clusters(
    ids: list[int], dim: int = 16, seed: int = 0
) -> tuple[dict[int, np.ndarray], list[list[int]]]:
    """Three tight, mutually orthogonal clusters of embeddings: ids split in thirds."""
    rng = np.random.default_rng(seed)
    groups = [
        ids[: len(ids) // 3],
        ids[len(ids) // 3 : 2 * len(ids) // 3],
        ids[2 * len(ids) // 3 :],
    ]
    out = {}
    for g, members in enumerate(groups):
        centre = np.zeros(dim)
        centre[g] = 1.0
        for pid in members:
            out[pid] = (centre + 0.03 * rng.normal(size=dim)).astype(np.float32)
    return out, groups


def ranking(client, every: bool = True) -> dict:
    resp = client.get("/api/anomalies", query_string={"all": int(every)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_boring_marks_sink_the_pictures_near_them_and_interesting_ones_lift(env, tmp_path):
    _, rows = _copy_catalog(env, tmp_path / "probe")
    ids = [pid for pid, _, _ in rows]
    emb, (a, b, c) = clusters(ids)
    # the detector puts cluster a on top, then b, then c
    order = a + b + c
    scores = {pid: float(len(order) - k) for k, pid in enumerate(order)}
    crafted = craft(env, tmp_path, embeddings=emb, scores=scores, flagged=lambda pid: pid in a + b)
    # the kernel spans a cluster (its 10 members), not the next one
    client = crafted.app(review={"feedback": {"neighbours": 9}}).test_client()

    before = ranking(client)
    assert before["n_marks"] == 0 and [it["id"] for it in before["items"]] == order
    assert [it["id"] for it in ranking(client, every=False)["items"]] == a + b  # flagged only
    assert "Ranked with 0 of your marks" in client.get("/anomalies").get_data(as_text=True)

    for pid in a[:2]:  # two of the top cluster are boring
        resp = client.post(f"/api/anomalies/{pid}/mark", json={"interesting": False, "who": "ada"})
        assert resp.status_code == 200 and resp.get_json()["interesting"] is False
    after = ranking(client)
    assert after["n_marks"] == 2
    pos_before = {it["id"]: k for k, it in enumerate(before["items"])}
    pos_after = {it["id"]: k for k, it in enumerate(after["items"])}
    rank_before = {it["id"]: it["rank_score"] for it in before["items"]}
    rank_after = {it["id"]: it["rank_score"] for it in after["items"]}
    for pid in a:
        assert pos_after[pid] > pos_before[pid] and rank_after[pid] < rank_before[pid] - 1.0, pid
    for pid in b + c:  # far from every mark: the detector's rank
        assert rank_after[pid] == pytest.approx(rank_before[pid], abs=1e-6)
    assert after["items"][0]["id"] == b[0]
    assert {it["id"]: it["mark"] for it in after["items"]}[a[0]] is False

    # one interesting mark in the bottom cluster lifts its (unflagged) neighbours
    resp = client.post(f"/api/anomalies/{c[-1]}/mark", json={"interesting": True})
    assert resp.status_code == 200 and resp.get_json()["who"] == "web"
    lifted = ranking(client)
    assert lifted["n_marks"] == 3
    lifted_rank = {it["id"]: it["rank_score"] for it in lifted["items"]}
    lift = [lifted_rank[pid] - rank_after[pid] for pid in c]
    assert min(lift) > 0.0 and float(np.median(lift)) > 0.5
    pos = {it["id"]: k for k, it in enumerate(lifted["items"])}
    assert min(pos[pid] for pid in c) < max(pos[pid] for pid in b)  # unflagged over flagged

    html = client.get("/anomalies?all=1&per_page=30").get_data(as_text=True)
    assert "Ranked with 3 of your marks" in html
    titles = [int(x) for x in re.findall(r'<li class="anomaly" id="a(\d+)">', html)]
    assert titles == [it["id"] for it in lifted["items"]]
    assert (
        html.count("marked not interesting</span>") == 2
        and html.count("marked interesting</span>") == 1
    )


def test_marks_from_the_page_form_need_csrf_and_redirect_back(env, tmp_path):
    from test_web import csrf_token

    ids = list(range(1, 31))
    emb, _ = clusters(ids)
    crafted = craft(env, tmp_path, embeddings=emb, flagged=lambda pid: True)
    client = crafted.app().test_client()
    token = csrf_token(client, "/anomalies")
    pid = ranking(client, every=False)["items"][0]["id"]
    resp = client.post(
        f"/anomalies/{pid}/mark",
        data={"csrf_token": token, "interesting": "1", "next": "/anomalies?page=1"},
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/anomalies?page=1"
    with Catalog(catalog_path(crafted.data_dir)) as cat:
        assert cat.anomaly_marks() == {pid: True}
    html = client.get("/anomalies?page=1").get_data(as_text=True)
    assert f"Picture {pid} marked interesting" in html and "marked interesting</span>" in html
    assert "Ranked with 1 of your marks" in html
    assert client.post(f"/anomalies/{pid}/mark", data={"interesting": "0"}).status_code == 400
    assert client.post(f"/api/anomalies/{pid}/mark", data={"interesting": "0"}).status_code == 415
    assert client.post(f"/api/anomalies/{pid}/mark", json={"interesting": "no"}).status_code == 400
    assert client.post("/api/anomalies/99999/mark", json={"interesting": True}).status_code == 404
    with Catalog(catalog_path(crafted.data_dir)) as cat:
        assert cat.anomaly_marks() == {pid: True}  # the refused ones stored nothing
