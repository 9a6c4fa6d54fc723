"""End to end: train(cfg) on tiny settings, metrics.json, the bundle, exact resume, and the
real entry point as a subprocess (single run, multirun, one-line errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from astro_exp.errors import ConfigError
from astro_exp.models.checkpoint import load_bundle, model_from_bundle
from astro_exp.train import train
from tests.conftest import ROOT, run_script

TINY = [
    "model=tiny",
    "logger=none",
    "source.per_class=20",
    "preprocess.image_size=32",
    "data.batch_size=16",
    "trainer.max_epochs=2",
    "trainer.scheduler.warmup_epochs=0",
    "trainer.log_every_n_steps=2",
]

MULTICLASS_KEYS = [
    "test/acc",
    "test/acc_macro",
    "test/precision_macro",
    "test/recall_macro",
    "test/f1_macro",
    "test/f1/galaxy",
    "test/precision/star",
    "test/recall/planet",
    "test/ece",
    "test/ece_calibrated",
    "calibration/temperature",
    "time/total_s",
]


def test_tiny_run_writes_metrics_confusion_matrix_and_bundle(make_cfg, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    metrics = train(make_cfg(TINY, run_dir=run_dir))
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in MULTICLASS_KEYS:
        assert key in saved, key
        assert saved[key] == pytest.approx(metrics[key])
    assert 0.0 <= saved["test/f1_macro"] <= 1.0 and saved["calibration/temperature"] > 0
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("val/f1_macro" in line for line in lines) and any(
        "train/loss" in line for line in lines
    )
    assert (run_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("best.pt", "last.pt"):
        assert (run_dir / "checkpoints" / name).is_file()

    bundle = load_bundle(run_dir / "checkpoints" / "best.pt")  # weights_only=True inside
    assert (
        bundle["classes"] == ["galaxy", "nebula", "planet", "star"]
        and bundle["task"] == "multiclass"
    )
    assert bundle["temperature"] == pytest.approx(saved["calibration/temperature"])
    assert bundle["image_size"] == 32 and bundle["model"]["model_name"] == "test_resnet"
    assert bundle["config"]["trainer"]["max_epochs"] == 2 and bundle["dataset_fingerprint"]
    assert bundle["versions"]["torch"] == torch.__version__
    model = model_from_bundle(bundle)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 4)


def test_multilabel_run_reports_label_metrics(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg([*TINY, "task=multilabel"], run_dir=tmp_path / "ml"))
    for key in (
        "test/f1_macro",
        "test/f1/nebula",
        "test/map",
        "test/hamming",
        "test/ece",
        "test/ece_calibrated",
    ):
        assert key in metrics, key
    bundle = load_bundle(tmp_path / "ml" / "checkpoints" / "best.pt")
    assert bundle["task"] == "multilabel" and len(bundle["thresholds"]) == 4


def test_resume_gives_the_same_weights_as_not_stopping(make_cfg, tmp_path: Path) -> None:
    args = [*TINY, "trainer.max_epochs=3", "augment=heavy"]
    train(make_cfg(args, run_dir=tmp_path / "straight"))
    stopped = train(make_cfg([*args, "trainer.stop_after_epoch=1"], run_dir=tmp_path / "stopped"))
    assert stopped["interrupted"] == 1.0 and stopped["epochs"] == 1.0
    last = tmp_path / "stopped" / "checkpoints" / "last.pt"
    train(make_cfg([*args, f"ckpt_path={last}"], run_dir=tmp_path / "resumed"))
    a = load_bundle(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_bundle(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
    assert a["resume"]["global_step"] == b["resume"]["global_step"]


def test_weight_average_is_best_pt_and_resumes_exactly(make_cfg, tmp_path: Path) -> None:
    """trainer.ema_decay: best.pt holds the average, last.pt the live weights plus the average."""
    args = [
        *TINY,
        "trainer.max_epochs=3",
        "trainer.ema_decay=0.9",
        "trainer.checkpoint_monitor=epoch",
    ]
    train(make_cfg(args, run_dir=tmp_path / "straight"))
    best = load_bundle(tmp_path / "straight" / "checkpoints" / "best.pt")
    last = load_bundle(tmp_path / "straight" / "checkpoints" / "last.pt")
    average, live = last["resume"]["ema"], last["state_dict"]
    floats = [k for k, v in live.items() if v.is_floating_point()]
    assert all(torch.equal(best["state_dict"][k], average[k]) for k in floats)
    assert any(not torch.equal(average[k], live[k]) for k in floats)  # it is an average

    stopped = make_cfg([*args, "trainer.stop_after_epoch=1"], run_dir=tmp_path / "stopped")
    train(stopped)
    ckpt = tmp_path / "stopped" / "checkpoints" / "last.pt"
    train(make_cfg([*args, f"ckpt_path={ckpt}"], run_dir=tmp_path / "resumed"))
    resumed = load_bundle(tmp_path / "resumed" / "checkpoints" / "last.pt")
    for key, tensor in average.items():
        assert torch.equal(tensor, resumed["resume"]["ema"][key]), key
    with pytest.raises(ConfigError, match="ema_decay"):
        train(
            make_cfg([*TINY, "trainer.max_epochs=3", f"ckpt_path={ckpt}"], run_dir=tmp_path / "x")
        )


def test_train_py_runs_and_unknown_model_is_one_line(tmp_path: Path) -> None:
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    ok = run_script(["train.py", "debug=fast"], env=env)
    assert ok.returncode == 0, ok.stderr[-2000:]
    runs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert (
        len(runs) == 1
        and (runs[0] / "metrics.json").is_file()
        and (runs[0] / "train.log").is_file()
    )
    assert (runs[0] / ".hydra" / "config.yaml").is_file()

    bad = run_script(["train.py", "debug=fast", "model.model_name=resnet181"], env=env)
    assert bad.returncode == 2
    error_lines = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "resnet18" in error_lines[0], bad.stderr[-2000:]
    assert "Traceback" not in bad.stderr


def test_cfg_job_and_help_work() -> None:
    job = run_script(["train.py", "--cfg", "job", "model=vit", "augment=heavy"])
    assert (
        job.returncode == 0
        and "vit_tiny_patch16_224" in job.stdout
        and "RandomResizedCrop" in job.stdout
    )
    tree = run_script(["train.py", "--info", "defaults-tree"])
    assert tree.returncode == 0 and "model: efficientnet_lite0" in tree.stdout
    helped = run_script(["train.py", "--help"])
    assert helped.returncode == 0 and "model: convnext, efficientnet" in helped.stdout


@pytest.mark.slow
def test_multirun_sweep_then_compare_ranks_runs(tmp_path: Path) -> None:
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    sweep = run_script(["train.py", "-m", "debug=fast", "augment=none,light", "seed=1,2"], env=env)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    sweeps = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(sweeps) == 1
    jobs = sorted(p.parent for p in sweeps[0].glob("*/metrics.json"))
    assert len(jobs) == 4
    compared = run_script([str(ROOT / "scripts" / "compare.py"), str(sweeps[0])])
    assert compared.returncode == 0, compared.stderr
    assert (sweeps[0] / "comparison.csv").read_text().count("\n") == 5  # header + 4 runs
    assert "augment" in compared.stdout and "seed" in compared.stdout


def wandb_history(run_dir: Path) -> list[dict]:
    """The history a W&B run recorded, read back with W&B's own reader (`wandb leet inspect`)."""
    import shutil
    import subprocess

    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    wandb_cli = shutil.which("wandb") or str(Path(__import__("sys").executable).parent / "wandb")
    out = subprocess.run(
        [wandb_cli, "leet", "inspect", "--json", str(offline)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [r["history"]["item"] for r in records if r.get("type") == "history"]


def test_wandb_offline_run_records_the_logged_metrics(make_cfg, tmp_path: Path) -> None:
    run_dir = tmp_path / "wb"
    train(make_cfg([*TINY, "logger=wandb", "trainer.log_every_n_steps=1"], run_dir=run_dir))
    history = wandb_history(run_dir)
    keys = set().union(*history)
    for key in ("train/loss", "train/lr", "val/f1_macro", "val/acc", "train/epoch_loss"):
        assert key in keys, key
    assert any(k.startswith("test/confusion_matrix") for k in keys)
    assert any(k.startswith("test/predictions") for k in keys), "table of sample predictions"
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val_f1 = [r["val/f1_macro"] for r in logged if "val/f1_macro" in r]
    assert [h["val/f1_macro"] for h in history if "val/f1_macro" in h] == pytest.approx(val_f1)


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_match_one_process(tmp_path: Path) -> None:
    """torchrun with 2 gloo processes: one run folder, metrics close to a single process."""
    args = [
        "debug=fast",
        "trainer=ddp",
        "trainer.max_epochs=2",
        "source.limit=null",
        "source.per_class=40",
        "data.batch_size=16",
    ]
    single = run_script(
        ["train.py", *args, "hydra.run.dir=" + str(tmp_path / "single")],
        env={"ASTRO_EXP_ROOT": str(tmp_path)},
    )
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = run_script(
        [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "train.py",
            *args,
            "hydra.run.dir=" + str(tmp_path / "ddp"),
            "trainer.num_threads=1",
        ],
        env={"ASTRO_EXP_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"},
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    folders = [p for p in tmp_path.iterdir() if (p / "metrics.json").exists()]
    assert sorted(p.name for p in folders) == ["ddp", "single"], "one run folder for both ranks"
    a = json.loads((tmp_path / "single" / "metrics.json").read_text())
    b = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert b["world_size"] == 2 and a["world_size"] == 1
    assert b["data/n_test"] == a["data/n_test"], "the gathered test set is the whole test set"
    assert b["epochs"] == a["epochs"] == 2
    for key in ("test/acc", "test/f1_macro", "val/acc"):
        assert abs(a[key] - b[key]) <= 0.2, (key, a[key], b[key])
    assert len(list((tmp_path / "ddp" / "checkpoints").glob("*.pt"))) == 2
