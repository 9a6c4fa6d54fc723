"""Loggers: the run folder's JSON record, the fan-out, W&B mode choice, and a real offline
W&B run read back with W&B's own reader (`wandb leet inspect --json`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astro_exp.tracking import JsonlLogger, MultiLogger, build_loggers
from astro_exp.tracking.wandb_logger import resolve_mode
from tests.conftest import ROOT


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- JSONL record


def test_jsonl_lines_are_flushed_with_step_and_time(tmp_path: Path) -> None:
    logger = JsonlLogger(tmp_path)
    logger.log_metrics({"train/loss": 1.5, "train/lr": 0.01, "epoch": 0}, step=1)
    logger.log_metrics({"val/f1_macro": np.float32(0.5), "val/nll": float("nan")}, step=2)
    lines = read_jsonl(tmp_path / "metrics.jsonl")  # read before finish: already on disk
    assert [line["step"] for line in lines] == [1, 2]
    assert lines[0]["train/loss"] == 1.5 and lines[0]["train/lr"] == 0.01
    assert (
        lines[1]["val/f1_macro"] == pytest.approx(0.5) and lines[1]["val/nll"] is None
    )  # strict JSON
    assert all(abs(line["time"] - time.time()) < 60 for line in lines)
    logger.finish()
    logger.finish()  # idempotent


def test_jsonl_resume_appends_and_repairs_a_torn_last_line(tmp_path: Path) -> None:
    first = JsonlLogger(tmp_path)
    first.log_metrics({"train/loss": 2.0}, step=1)
    first.finish()
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 2, "train/lo')  # killed mid-line
    second = JsonlLogger(tmp_path)
    second.log_metrics({"train/loss": 1.0}, step=3)
    second.finish()
    raw = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(raw) == 3 and json.loads(raw[0])["step"] == 1 and json.loads(raw[2])["step"] == 3


def test_jsonl_summary_merges_atomically_and_images_and_predictions_are_recorded(
    tmp_path: Path,
) -> None:
    logger = JsonlLogger(tmp_path)
    logger.log_config({"model": {"model_name": "resnet18"}, "seed": 1})
    logger.log_summary({"test/acc": 0.5, "epochs": 2.0})
    logger.log_summary({"test/acc": 0.75, "time/total_s": 3.0})
    logger.log_image("test/confusion_matrix", tmp_path / "confusion_matrix.png")
    rows = [
        {"id": "ap240301", "label": "star", "prediction": "galaxy", "confidence": np.float32(0.6)},
        {"id": "ap240302", "label": "nebula", "prediction": "nebula", "confidence": 0.9},
    ]
    images = np.zeros((2, 8, 8, 3), np.uint8)
    logger.log_predictions("test/predictions", images, rows)
    logger.log_predictions("test/predictions", images, rows[:1])  # replaces, not duplicates
    logger.finish()

    assert json.loads((tmp_path / "metrics.json").read_text()) == {
        "epochs": 2.0,
        "test/acc": 0.75,
        "time/total_s": 3.0,
    }
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    assert json.loads((tmp_path / "config.json").read_text())["model"]["model_name"] == "resnet18"
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert {
        "image": "test/confusion_matrix",
        "path": str(tmp_path / "confusion_matrix.png"),
    }.items() <= lines[0].items()
    assert lines[-1]["table"] == "test/predictions" and lines[-1]["rows"] == 1
    preds = read_jsonl(tmp_path / "predictions.jsonl")
    assert preds == [
        {
            "table": "test/predictions",
            "id": "ap240301",
            "label": "star",
            "prediction": "galaxy",
            "confidence": pytest.approx(0.6),
        }
    ]


def test_multilogger_fans_out_and_finishes_every_logger(tmp_path: Path) -> None:
    class Broken(JsonlLogger):
        def finish(self) -> None:
            raise RuntimeError("server gone")

    a, b = Broken(tmp_path / "a"), JsonlLogger(tmp_path / "b")
    multi = MultiLogger([a, b])
    multi.log_metrics({"train/loss": 1.0}, step=1)
    with pytest.raises(RuntimeError, match="server gone"):
        multi.finish()
    assert b._fh.closed  # the second logger was still finished
    assert read_jsonl(tmp_path / "a" / "metrics.jsonl")[0]["train/loss"] == 1.0
    assert multi.find(JsonlLogger) is a and MultiLogger([]).find(JsonlLogger) is None
    MultiLogger([]).log_metrics({"x": 1.0}, step=0)  # the null logger of DDP ranks > 0


def test_logger_none_never_imports_wandb(tmp_path: Path) -> None:
    code = (
        "import sys; from astro_exp.tracking import build_loggers\n"
        f"lg = build_loggers({{'name': 'none'}}, {str(tmp_path)!r})\n"
        "lg.log_metrics({'train/loss': 1.0}, step=1); lg.log_summary({'test/acc': 1.0}); lg.finish()\n"
        "assert 'wandb' not in sys.modules, 'wandb imported'\n"
        "print(len(lg.loggers))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1" and (tmp_path / "metrics.json").is_file()


# ---------------------------------------------------------------- W&B mode


@pytest.fixture
def no_wandb_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No key, no WANDB_MODE, an empty .netrc: what a fresh machine looks like."""
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "netrc").write_text("")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    return monkeypatch


def test_mode_auto_is_offline_without_credentials_and_online_with_them(
    no_wandb_env, tmp_path: Path
) -> None:
    assert resolve_mode("auto") == "offline"
    assert resolve_mode("online") == "offline"  # would prompt or fail: degrade, never hang
    assert resolve_mode("offline") == "offline" and resolve_mode("disabled") == "disabled"
    (tmp_path / "netrc").write_text(f"machine api.wandb.ai\n  login user\n  password {'a' * 40}\n")
    (tmp_path / "netrc").chmod(0o600)
    assert resolve_mode("auto") == "online"  # `wandb login` stores the key in .netrc
    (tmp_path / "netrc").write_text("")
    no_wandb_env.setenv("WANDB_API_KEY", "b" * 40)
    assert resolve_mode("auto") == "online"
    no_wandb_env.setenv("WANDB_MODE", "offline")  # an explicit WANDB_MODE wins
    assert resolve_mode("auto") == "offline" and resolve_mode("online") == "offline"
    no_wandb_env.setenv("WANDB_MODE", "dryrun")
    assert resolve_mode("auto") == "offline"
    with pytest.raises(ValueError, match="W&B mode"):
        no_wandb_env.delenv("WANDB_MODE")
        resolve_mode("sometimes")


def test_wandb_disabled_builds_only_the_jsonl_logger(tmp_path: Path) -> None:
    loggers = build_loggers({"name": "wandb", "mode": "disabled"}, tmp_path)
    assert [type(lg).__name__ for lg in loggers.loggers] == ["JsonlLogger"]
    loggers.finish()


# ---------------------------------------------------------------- a real offline W&B run
# (about 1 s on 2 CPU cores: init..finish ~0.5 s, the reader ~0.4 s; so not marked slow)


def wandb_records(run_dir: Path) -> list[dict]:
    """Every record of the run's .wandb log, as W&B's own reader prints them."""
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(offline)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_offline_wandb_run_records_metrics_image_table_and_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var, sub in (
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    run_dir = tmp_path / "run"
    cm = tmp_path / "confusion_matrix.png"
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(cm)

    t0 = time.perf_counter()
    multi = build_loggers(
        {"name": "wandb", "project": "astro-exp-test", "mode": "auto", "tags": ["ci"]},
        run_dir,
        group="sweep-1",
        name="job-0",
    )
    from astro_exp.tracking.wandb_logger import WandbLogger

    wb = multi.find(WandbLogger)
    assert wb is not None and wb.mode == "offline" and wb.run_dir.parent == run_dir / "wandb"
    multi.log_config({"model": {"model_name": "resnet18"}, "seed": 7})
    logged = [
        ({"train/loss": 1.25, "train/lr": 0.01, "epoch": 0}, 5),
        ({"val/f1_macro": 0.5, "val/acc": 0.625}, 5),  # same step as the train line
        ({"train/loss": 0.75, "train/lr": 0.005, "epoch": 1}, 10),
        ({"val/f1_macro": 0.75, "val/acc": 0.875}, 10),
    ]
    for metrics, step in logged:
        multi.log_metrics(metrics, step=step)
    multi.log_image("test/confusion_matrix", cm)
    rows = [
        {
            "id": f"ap24030{i}",
            "label": "star",
            "prediction": "galaxy" if i else "star",
            "confidence": 0.5 + i / 10,
        }
        for i in range(3)
    ]
    multi.log_predictions("test/predictions", np.zeros((3, 8, 8, 3), np.uint8), rows)
    multi.log_summary({"test/acc": 0.8, "test/f1_macro": 0.7})
    run_id = wb.run_id
    multi.finish()
    logging_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    records = wandb_records(run_dir)
    reading_s = time.perf_counter() - t1
    print(
        f"W&B offline run: init..finish {logging_s:.2f}s, `wandb leet inspect --json` {reading_s:.2f}s"
    )

    by_type: dict[str, list[dict]] = {}
    for r in records:
        by_type.setdefault(r["type"], []).append(r[r["type"]])
    history = {h["step"]["num"]: h["item"] for h in by_type["history"]}
    assert sorted(history) == [5, 10]  # the trainer's steps are W&B's steps: nothing dropped
    for metrics, step in logged:
        for key, value in metrics.items():
            assert history[int(step)][key] == pytest.approx(value), (key, step)
    assert history[10]["test/confusion_matrix._type"] == "image-file"
    assert history[10]["test/predictions._type"] == "table-file"
    assert history[10]["test/predictions.nrows"] == 3 and history[10]["test/predictions.ncols"] == 5

    (run,) = by_type["run"]
    assert run["run_id"] == run_id and run["project"] == "astro-exp-test"
    assert (
        run["run_group"] == "sweep-1" and run["display_name"] == "job-0" and run["tags"] == ["ci"]
    )
    config: dict = {}
    for c in [run["config"], *by_type.get("config", [])]:
        config.update(c.get("update", {}))
    assert config["model"] == {"model_name": "resnet18"} and config["seed"] == 7

    summary = {}
    for s in by_type["summary"]:
        summary.update(s.get("update", {}))
    assert summary["test/acc"] == pytest.approx(0.8) and summary["test/f1_macro"] == pytest.approx(
        0.7
    )

    # the table itself, from the artifact W&B staged for upload: an image column of real images
    (table_artifact,) = [a for a in by_type["artifact"] if a["type"] == "run_table"]
    entry = next(
        e for e in table_artifact["manifest"]["contents"] if e["path"].endswith(".table.json")
    )
    table = json.loads(Path(entry["local_path"]).read_text())
    assert table["columns"] == ["image", "id", "label", "prediction", "confidence"]
    assert [row[0]["_type"] for row in table["data"]] == ["image-file"] * 3
    assert [row[1] for row in table["data"]] == ["ap240300", "ap240301", "ap240302"]
    assert time.perf_counter() - t0 < 30
