"""Shared fixtures: compose configs with Hydra's compose API, keep W&B offline."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from tests.support import SHARED_DATA as SHARED_DATA  # the tests' one path to ../shared/data

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may talk to W&B's servers or prompt for a login."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tensor cache for the session: the same data is rendered once for all tests."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_cfg(tmp_path: Path, cache_dir: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/train.yaml`` with overrides, as ``python train.py <overrides>`` would."""

    def _make(overrides: list[str] | None = None, run_dir: Path | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_module(
            config_module="astro_exp.conf", version_base="1.3"
        ):  # conf/, as packaged
            cfg = compose(
                config_name="train", overrides=list(overrides or []), return_hydra_config=True
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.root_dir = str(tmp_path)
            cfg.paths.output_dir = str(run_dir or tmp_path / "run")
            cfg.paths.cache_dir = str(cache_dir)
            cfg.trainer.progress = False
            del cfg["hydra"]  # HydraConfig holds it now; train.py's cfg has no `hydra` node either
        GlobalHydra.instance().clear()
        return cfg

    return _make


def run_script(args: list[str], cwd: Path = ROOT, env: dict | None = None, timeout: int = 600):
    """Run an entry point in a fresh interpreter (the way a user does)."""
    import subprocess

    full_env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    full_env.pop("WANDB_API_KEY", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
