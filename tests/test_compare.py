"""scripts/compare.py on run folders laid out as Hydra and the JSONL logger write them
(metrics.json, .hydra/overrides.yaml, .hydra/config.yaml), run as a user runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from astro_exp.tracking.run_table import find_runs, load_run, rank_runs
from tests.conftest import ROOT, run_script

SCRIPT = str(ROOT / "scripts" / "compare.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# job: (overrides, metrics) -- test/acc and test/f1_macro rank the runs differently
JOBS = {
    "0": (
        ["model=resnet", "seed=1", "trainer.max_epochs=5"],
        {"test/acc": 0.90, "test/f1_macro": 0.70, "test/ece": 0.05, "time/total_s": 12.0},
    ),
    "1": (
        ["model=vit", "seed=1", "trainer.max_epochs=5"],
        {"test/acc": 0.80, "test/f1_macro": 0.82, "test/ece": 0.08, "time/total_s": 30.5},
    ),
    "2": (
        ["model=resnet", "seed=2", "trainer.max_epochs=5"],
        {"test/acc": 0.85, "test/f1_macro": 0.75, "test/ece": 0.02, "time/total_s": 11.0},
    ),
    "3": (
        ["model=vit", "seed=2", "trainer.max_epochs=5"],
        {"test/acc": 0.70, "test/f1_macro": 0.80, "time/total_s": 29.0},
    ),  # no test/ece
}


def make_sweep(
    root: Path, optimized_metric: str | None = "test/f1_macro", hydra: bool = True
) -> Path:
    """A multirun folder: one numbered job folder per run, plus the sweep's own files."""
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    for job, (overrides, metrics) in JOBS.items():
        run = root / job
        (run / ".hydra").mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(metrics, indent=1))
        (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/loss": 1.0}) + "\n")
        if hydra:
            (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            config = {
                "seed": int(overrides[1].split("=")[1]),
                "model": {"name": overrides[0].split("=")[1]},
            }
            if optimized_metric:
                config["optimized_metric"] = optimized_metric
            (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()  # checks the chunks' CRCs
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 100 and im.height > 100


def test_ranks_by_optimized_metric_with_differing_override_columns(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "multirun" / "2026-11-24" / "15-30-00")
    done = run_script([SCRIPT, str(sweep)])
    assert done.returncode == 0, done.stderr

    rows = read_csv(sweep / "comparison.csv")
    assert list(rows[0]) == [
        "rank",
        "run",
        "model",
        "seed",
        "test/f1_macro",
        "test/acc",
        "test/ece",
        "time_s",
    ]
    assert [r["run"] for r in rows] == ["1", "3", "2", "0"]  # f1: .82 > .80 > .75 > .70
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0] == {
        "rank": "1",
        "run": "1",
        "model": "vit",
        "seed": "1",
        "test/f1_macro": "0.8200",
        "test/acc": "0.8000",
        "test/ece": "0.0800",
        "time_s": "30.5",
    }
    assert rows[1]["test/ece"] == "-"  # missing in metrics.json
    assert "trainer.max_epochs" not in rows[0]  # the same in every run: not an axis

    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "rank",
        "run",
        "model",
        "seed",
        "test/f1_macro",
        "test/acc",
        "test/ece",
        "time_s",
    ]
    assert [line.split()[1] for line in lines[1:5]] == ["1", "3", "2", "0"]
    assert "ranked by test/f1_macro (max)" in done.stdout
    assert_valid_png(sweep / "comparison.png")


def test_optimized_metric_from_config_picks_the_ranking(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "sweep", optimized_metric="test/acc")
    done = run_script([SCRIPT, str(sweep), f"out={tmp_path / 'report'}"])
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "report" / "comparison.csv")
    assert [r["run"] for r in rows] == ["0", "2", "1", "3"]  # acc: .90 > .85 > .80 > .70
    assert list(rows[0])[4] == "test/acc"  # the ranking metric comes first, once
    assert list(rows[0]).count("test/acc") == 1
    assert not (sweep / "comparison.csv").exists()
    assert_valid_png(tmp_path / "report" / "comparison.png")


def test_explicit_metric_lower_is_better_and_runs_without_it_go_last(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "sweep", hydra=False)  # no .hydra: no axes, f1 by default
    done = run_script([SCRIPT, str(sweep), "metric=test/ece"])
    assert done.returncode == 0, done.stderr
    rows = read_csv(sweep / "comparison.csv")
    assert list(rows[0]) == ["rank", "run", "test/ece", "test/acc", "test/f1_macro", "time_s"]
    assert [r["run"] for r in rows] == [
        "2",
        "0",
        "1",
        "3",
    ]  # ece ascending (auto -> min), missing last
    assert "(min)" in done.stdout

    forced = run_script([SCRIPT, str(sweep), "metric=test/ece", "mode=max"])
    assert [r["run"] for r in read_csv(sweep / "comparison.csv")] == ["1", "0", "2", "3"], (
        forced.stderr
    )


def test_several_folders_and_nested_runs_are_found(tmp_path: Path) -> None:
    a = make_sweep(tmp_path / "a")
    b = tmp_path / "b" / "runs" / "single"
    b.mkdir(parents=True)
    (b / "metrics.json").write_text(json.dumps({"test/f1_macro": 0.99, "test/acc": 0.99}))
    (b / "wandb" / "offline-run-x" / "files").mkdir(parents=True)  # W&B's folder is no run
    (b / "wandb" / "offline-run-x" / "files" / "metrics.json").write_text("{}")
    assert len(find_runs(a, tmp_path / "b")) == 5
    done = run_script([SCRIPT, str(a), str(tmp_path / "b")])
    assert done.returncode == 0, done.stderr
    rows = read_csv(a / "comparison.csv")
    assert (
        rows[0]["run"] == "b/runs/single" and rows[0]["model"] == "-"
    )  # relative to the common root
    assert [r["run"] for r in rows[1:]] == ["a/1", "a/3", "a/2", "a/0"]


def test_no_metrics_anywhere_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "0" / ".hydra").mkdir(parents=True)
    done = run_script([SCRIPT, str(tmp_path / "empty")])
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error:")
    assert "Traceback" not in done.stderr and not (tmp_path / "empty" / "comparison.csv").exists()

    missing = run_script([SCRIPT, str(tmp_path / "nowhere")])
    assert missing.returncode == 2 and missing.stderr.startswith("error:")

    sweep = make_sweep(tmp_path / "sweep")
    unknown = run_script([SCRIPT, str(sweep), "metric=test/auroc"])
    assert (
        unknown.returncode == 2
        and "test/auroc" in unknown.stderr
        and "Traceback" not in unknown.stderr
    )


def test_help_works() -> None:
    done = run_script([SCRIPT, "--help"])
    assert done.returncode == 0 and "metric" in done.stdout and "out" in done.stdout


def test_library_functions_rank_and_skip_broken_runs(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "sweep")
    (sweep / "0" / "metrics.json").write_text('{"test/f1_macro": NaN}')  # Python's json accepts NaN
    runs = [load_run(p) for p in find_runs(sweep)]
    assert runs[0].get("test/f1_macro") is None and runs[0].overrides["model"] == "resnet"
    assert [r.path.name for r in rank_runs(runs, "test/f1_macro", "max")] == ["1", "3", "2", "0"]
    (sweep / "2" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="metrics.json"):
        load_run(sweep / "2")
    done = run_script([SCRIPT, str(sweep)])
    assert done.returncode == 0 and "warning: skipping" in done.stderr
    assert len(read_csv(sweep / "comparison.csv")) == 3
