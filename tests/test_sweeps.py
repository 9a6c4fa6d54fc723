"""Scaling out: the Optuna search (a study that continues, failed trials tolerated), the
parallel (joblib) and submitit launchers, one GPU per parallel worker, and W&B groups.

The end-to-end tests run ``train.py -m`` as a user does, on the tiny model (``debug=fast``),
with every output under ``ASTRO_EXP_ROOT=<tmp_path>``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna  # the sweep extra: pip install -e ".[sweep]"
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import astro_exp  # noqa: F401  (registers the resolvers conf/ uses)
from astro_exp.sweep import callbacks
from astro_exp.sweep.callbacks import claim_slot, parse_gpus, sqlite_path
from tests.conftest import CONF, ROOT, run_script

FAST = ["debug=fast", "trainer.progress=false", "trainer.num_threads=1"]


def compose_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="train", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def sweep_dirs(root: Path) -> list[Path]:
    return sorted((root / "outputs" / "multirun").glob("*/*"))


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/metrics.json"))


def ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])


# ---------------------------------------------------------------- configs (fast)


def test_optuna_config_resolves_direction_storage_and_search_space(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ASTRO_EXP_ROOT", str(tmp_path))
    cfg = compose_hydra(["hparams_search=optuna"])
    sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
    assert sweeper["direction"] == "maximize"  # optimized_mode: max
    assert sweeper["study_name"] == "synthetic-multiclass"
    assert (
        sqlite_path(sweeper["storage"])
        == tmp_path / "outputs" / "optuna" / "synthetic-multiclass.db"
    )
    assert set(sweeper["params"]) == {
        "trainer.optimizer.lr",
        "trainer.optimizer.weight_decay",
        "augment",
        "model",
    }
    assert (
        sweeper["sampler"]["_target_"].endswith("TrialSeededTPESampler")
        and sweeper["sampler"]["seed"] == 42
    )
    assert sweeper["max_failure_rate"] == 1.0
    assert sweeper["_target_"] == "hydra_plugins.astro_exp_sweeper.AstroOptunaSweeper"
    assert sweeper["pruner"]["name"] == "median" and sweeper["n_jobs"] == 1
    assert cfg.hydra.callbacks.optuna_trial._target_ == "astro_exp.sweep.trial.TrialReporter"
    assert (
        compose_hydra(
            ["hparams_search=optuna", "hydra/sweeper/pruner=hyperband"]
        ).hydra.sweeper.pruner.name
        == "hyperband"
    )
    assert (
        compose_hydra(["hparams_search=optuna", "hydra.sweeper.pruner=none"]).hydra.sweeper.pruner
        == "none"
    )
    assert (
        compose_hydra(["hparams_search=optuna", "optimized_mode=min"]).hydra.sweeper.direction
        == "minimize"
    )
    # the plain samplers stay selectable
    assert (
        compose_hydra(
            ["hparams_search=optuna", "hydra/sweeper/sampler=random"]
        ).hydra.sweeper.sampler.seed
        is None
    )


def test_launcher_configs_compose() -> None:
    parallel = compose_hydra(["hydra/launcher=parallel"]).hydra
    assert parallel.launcher._target_.endswith("JoblibLauncher") and parallel.launcher.n_jobs == 2
    assert parallel.callbacks.one_gpu_per_job._target_ == "astro_exp.sweep.callbacks.OneGpuPerJob"
    plain = compose_hydra(["hydra/launcher=joblib"]).hydra  # the plugin's own config still works
    assert plain.launcher._target_.endswith("JoblibLauncher")
    local = compose_hydra(["hydra/launcher=slurm_local"]).hydra.launcher
    assert local._target_.endswith("LocalLauncher") and local.gpus_per_node == 0


def test_slurm_config_makes_a_valid_sbatch_script(tmp_path: Path, monkeypatch) -> None:
    """Every key of conf/hydra/launcher/slurm.yaml is a parameter submitit's SLURM executor takes."""
    submitit = pytest.importorskip("submitit")
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.slurm.slurm import _make_sbatch_string

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{Path(sys.executable).parent}:/usr/bin:/bin")
    launcher = compose_hydra(
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]
    ).hydra.launcher
    params = OmegaConf.to_container(launcher, resolve=False)
    for key in (
        "_target_",
        "submitit_folder",
        "max_num_timeout",
    ):  # what the plugin passes elsewhere
        params.pop(key)
    params["name"] = "train"
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor = submitit.AutoExecutor(folder=str(tmp_path / "submitit"), cluster="slurm")
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = _make_sbatch_string(
        command="python x", folder=str(tmp_path), **executor._executor.parameters
    )
    for line in (
        "--partition=gpu",
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--mem=32GB",
        "--time=240",
    ):
        assert f"#SBATCH {line}" in script, script


# ---------------------------------------------------------------- GPU pinning (fast)


def test_parse_gpus() -> None:
    assert (
        parse_gpus("0,1") == ["0", "1"]
        and parse_gpus([2, 3]) == ["2", "3"]
        and parse_gpus(2) == ["0", "1"]
    )
    with pytest.raises(ValueError, match="give 'auto', a count, or ids"):
        parse_gpus(True)


def test_parse_gpus_auto_follows_cuda_visible_devices(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert parse_gpus("auto") == ["3", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert parse_gpus("auto") == []


def test_each_live_process_claims_its_own_slot(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(callbacks, "_claimed", None)
    assert claim_slot(tmp_path) == 0
    assert claim_slot(tmp_path) == 0  # a process keeps its slot (and so its GPU)
    other = [
        sys.executable,
        "-c",
        f"from astro_exp.sweep.callbacks import claim_slot; print(claim_slot({str(tmp_path)!r}))",
    ]
    assert (
        subprocess.run(other, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        == "1"
    )
    callbacks._claimed[1].close()  # this process ends: its slot is free again
    assert (
        subprocess.run(other, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        == "0"
    )


# ---------------------------------------------------------------- the sampler (fast)


def test_trial_seeded_tpe_continues_a_study_without_repeating_it() -> None:
    from optuna.distributions import FloatDistribution

    from astro_exp.sweep.sampler import TrialSeededTPESampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    lr = FloatDistribution(1e-4, 1e-2, log=True)

    def invocation(n: int) -> list[float]:  # a fresh sampler per invocation, like a new process
        study = optuna.create_study(
            study_name="s",
            storage=storage,
            load_if_exists=True,
            sampler=TrialSeededTPESampler(seed=7),
            direction="maximize",
        )
        proposals = []
        for _ in range(n):
            trial = study.ask()
            proposals.append(trial._suggest("lr", lr))
            study.tell(trial, 1.0 - proposals[-1])
        return proposals

    first, second = invocation(3), invocation(3)
    assert len(set(first + second)) == 6  # Optuna's own TPESampler(seed=7) would repeat `first`
    fresh = optuna.create_study(sampler=TrialSeededTPESampler(seed=7))
    assert fresh.ask()._suggest("lr", lr) == first[0]  # and it stays reproducible


# ---------------------------------------------------------------- end to end (slow)


@pytest.mark.slow
def test_optuna_search_then_a_second_invocation_continues_the_study(tmp_path: Path) -> None:
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    search = [
        "train.py",
        "-m",
        "hparams_search=optuna",
        "model=tiny",
        "hydra.sweeper.n_trials=3",
        *FAST,
    ]
    ok(run_script(search, env=env))
    storage = f"sqlite:///{tmp_path}/outputs/optuna/synthetic-multiclass.db"
    study = optuna.load_study(study_name="synthetic-multiclass", storage=storage)
    assert len(study.trials) == 3
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE

    ok(run_script(search, env=env))
    study = optuna.load_study(study_name="synthetic-multiclass", storage=storage)
    trials = study.trials
    assert len(trials) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.params["trainer.optimizer.lr"] for t in trials}) == 6  # no trial repeated
    assert set(trials[0].params) == {
        "trainer.optimizer.lr",
        "trainer.optimizer.weight_decay",
        "augment",
    }

    first, second = sweep_dirs(tmp_path)
    assert len(job_dirs(first)) == len(job_dirs(second)) == 3
    for trial, job in zip(
        trials[3:], job_dirs(second), strict=True
    ):  # trial value = the job's metric
        assert trial.value == pytest.approx(
            json.loads((job / "metrics.json").read_text())["val/f1_macro"]
        )
    best = yaml.safe_load((second / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(study.best_value)  # the best of all 6 trials
    assert best["best_params"] == study.best_params

    ranked = run_script([str(ROOT / "scripts" / "compare.py"), str(second)])
    ok(ranked)
    assert (second / "comparison.csv").read_text().count("\n") == 4  # header + 3 trials


@pytest.mark.slow
def test_a_failed_trial_is_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    # seed 2: trial 0 draws lr=-1 (torch raises), trial 1 draws lr=0.001
    proc = run_script(
        [
            "train.py",
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.params=null",
            "trainer.optimizer.lr=choice(-1,0.001)",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.study_name=failing",
            "seed=2",
            *FAST,
        ],
        env=env,
    )
    ok(proc)
    study = optuna.load_study(
        study_name="failing", storage=f"sqlite:///{tmp_path}/outputs/optuna/failing.db"
    )
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE], states
    (sweep,) = sweep_dirs(tmp_path)
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_params"] == {
        "trainer.optimizer.lr": 0.001
    }


def wandb_run_record(run_dir: Path) -> dict:
    """The ``run`` record (name, group, ...) and the config of a job's offline W&B run, read
    with W&B's own reader."""
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    wandb_cli = Path(sys.executable).parent / "wandb"
    out = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(offline)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    summary = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--summary", "--json", str(offline)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return {**run, "config": json.loads(summary)["config"]}


@pytest.mark.slow
def test_parallel_launcher_runs_two_jobs_one_gpu_each_in_one_wandb_group(tmp_path: Path) -> None:
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    proc = run_script(
        [
            "train.py",
            "-m",
            "hydra/launcher=parallel",
            "logger=wandb",
            "trainer.optimizer.lr=0.001,0.003",
            "hydra.callbacks.one_gpu_per_job.gpus=[5,7]",
            *FAST,
        ],
        env=env,
    )
    ok(proc)
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    (sweep,) = sweep_dirs(tmp_path)
    jobs = job_dirs(sweep)
    assert len(jobs) == 2

    # one GPU per worker process: a pid always gets the same GPU, two pids never share one
    gpu_of: dict[str, set[str]] = {}
    for job in jobs:
        line = next(
            ln for ln in (job / "train.log").read_text().splitlines() if "runs on GPU" in ln
        )
        gpu, pid = (
            line.split("runs on GPU ")[1].split(" ")[0],
            line.rsplit("pid ", 1)[1].rstrip(")"),
        )
        gpu_of.setdefault(pid, set()).add(gpu)
    assert all(len(g) == 1 for g in gpu_of.values()) and len(set().union(*gpu_of.values())) == len(
        gpu_of
    )
    assert set().union(*gpu_of.values()) <= {"5", "7"}

    # W&B: the sweep is one group; each job's run is named after its overrides and carries them as config
    records = [wandb_run_record(job) for job in jobs]
    assert {r["run_group"] for r in records} == {f"sweep-{sweep.parent.name}-{sweep.name}"}
    for record, lr in zip(
        sorted(records, key=lambda r: r["display_name"]), (0.001, 0.003), strict=True
    ):
        assert f"trainer.optimizer.lr={lr}" in record["display_name"]
        assert record["config"]["trainer"]["optimizer"]["lr"] == lr


@pytest.mark.slow
def test_submitit_local_launcher_runs_one_job(tmp_path: Path) -> None:
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    ok(run_script(["train.py", "-m", "hydra/launcher=slurm_local", "seed=3", *FAST], env=env))
    (sweep,) = sweep_dirs(tmp_path)
    (job,) = job_dirs(sweep)
    assert "test/f1_macro" in json.loads((job / "metrics.json").read_text())
    assert any((sweep / ".submitit").glob("*/*_result.pkl"))  # it went through submitit


# ---------------------------------------------------------------- the sweeper's parts (fast)


def test_search_space_reads_hydra_grammar_and_the_command_line_wins() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from astro_exp.sweep.sweeper import search_space

    space, fixed = search_space(
        [
            "trainer.optimizer.lr=tag(log, interval(1e-4, 1e-2))",
            "augment=choice(none, light, heavy)",
            "model=choice(resnet, mobilenet)",
            "data.batch_size=range(16, 80, 16)",
            "model=tiny",  # the command line fixes a key of hydra.sweeper.params
        ]
    )
    assert space["trainer.optimizer.lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert space["augment"] == CategoricalDistribution(["none", "light", "heavy"])
    assert space["data.batch_size"] == IntDistribution(16, 64, step=16)  # range() excludes 80
    assert "model" not in space and fixed == {"model": "tiny"}


def test_pruner_settings_and_bad_ones() -> None:
    from astro_exp.errors import ConfigError
    from astro_exp.sweep.study import build_pruner

    median = build_pruner({"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1})
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_startup_trials == 2
    assert isinstance(build_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(build_pruner("none"), optuna.pruners.NopPruner)
    with pytest.raises(ConfigError, match="no such pruner; use one of none, median"):
        build_pruner("bogus")
    with pytest.raises(ConfigError, match="hydra.sweeper.pruner=median"):
        build_pruner({"name": "median", "n_startup": 2})


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_whose_worker_stops_beating_is_failed(tmp_path: Path, kind: str) -> None:
    """A real storage and a real heartbeat thread: a beating trial stays RUNNING, one whose
    beats stopped (its worker died) is FAIL after the grace period, one never started is
    left alone (its job may still wait in a queue)."""
    import time

    from astro_exp.sweep.study import Heartbeat, fail_stale_trials, open_storage

    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else f"journal:{tmp_path}/s.log"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="s", storage=storage)
    dead, alive, queued = study.ask(), study.ask(), study.ask()
    beats = [Heartbeat(storage, t._trial_id, 1) for t in (dead, alive)]
    time.sleep(0.5)
    beats[0].stop()  # the worker of `dead` dies
    time.sleep(3.2)
    assert fail_stale_trials(study, grace_period=2) == [dead.number]
    states = {t.number: t.state for t in study.get_trials()}
    beats[1].stop()
    assert states[dead.number] == optuna.trial.TrialState.FAIL
    assert states[alive.number] == states[queued.number] == optuna.trial.TrialState.RUNNING


def test_bad_sweeper_settings_are_one_line_errors(tmp_path: Path) -> None:
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    for override, message in (
        ("hydra.sweeper.pruner=bogus", "error: hydra.sweeper.pruner=bogus: no such pruner"),
        (
            "hydra.sweeper.storage=nowhere",
            "error: hydra.sweeper.storage=nowhere is not a storage URL",
        ),
    ):
        proc = run_script(["train.py", "-m", "hparams_search=optuna", override, *FAST], env=env)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr[-500:]


# ---------------------------------------------------------------- two workers + pruning (slow)


@pytest.mark.slow
def test_two_workers_share_a_study_and_prune_hopeless_trials(tmp_path: Path) -> None:
    """8 trials, 2 at a time in worker processes, median pruning from the first epoch: every
    trial runs once, none stays RUNNING, the workers overlap, pruned trials stop early and say
    so in their run folder, and compare lists them with their state."""
    env = {"ASTRO_EXP_ROOT": str(tmp_path)}
    proc = run_script(
        [
            "train.py",
            "-m",
            "hparams_search=optuna",
            "model=tiny",
            "hydra.sweeper.n_trials=8",
            "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.pruner.n_startup_trials=2",
            "hydra.sweeper.pruner.n_warmup_steps=1",
            "hydra.sweeper.study_name=two",
            "trainer.max_epochs=3",
            "anomaly.enabled=false",
            *FAST,
        ],
        env=env,
    )
    ok(proc)
    study = optuna.load_study(
        study_name="two", storage=f"sqlite:///{tmp_path}/outputs/optuna/two.db"
    )
    trials = study.trials
    states = [t.state for t in trials]
    assert len(trials) == 8 and optuna.trial.TrialState.RUNNING not in states, states
    assert len({t.params["trainer.optimizer.lr"] for t in trials}) == 8  # no trial run twice
    assert any(
        a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
        for a in trials
        for b in trials
        if a.number < b.number
    ), "two trials ran at the same time"
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [(t.number, t.state, t.intermediate_values) for t in trials]

    (sweep,) = sweep_dirs(tmp_path)
    folders = {
        int(p.name.split("_")[0]): p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit()
    }
    assert sorted(folders) == list(range(8))  # one run folder per trial, named by its number
    for t in trials:
        record = json.loads((folders[t.number] / "trial.json").read_text())
        metrics = json.loads((folders[t.number] / "metrics.json").read_text())
        assert record["trial"] == t.number and record["state"] == t.state.name
        if t.state == optuna.trial.TrialState.PRUNED:
            epoch = record["pruned_epoch"]
            assert metrics["pruned_epoch"] == epoch == max(t.intermediate_values) < 3
            assert metrics["epochs"] == epoch and "test/f1_macro" not in metrics
            assert (
                "pruned by the median pruner after epoch"
                in (folders[t.number] / "train.log").read_text()
            )
        else:
            assert sorted(t.intermediate_values) == [1, 2, 3]
            assert t.value == pytest.approx(metrics["val/f1_macro"])
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["this_sweep"]["pruned"] == len(pruned)
    assert results["best_value"] == pytest.approx(study.best_value)

    ranked = run_script([str(ROOT / "scripts" / "compare.py"), str(sweep)])
    ok(ranked)
    assert f"{len(pruned)} pruned" in ranked.stdout and "pruned@" in ranked.stdout
