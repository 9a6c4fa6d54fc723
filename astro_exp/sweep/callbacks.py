"""Hydra callbacks for sweeps, named in ``hydra.callbacks`` by the configs that need them.

- :class:`MakeStorageDir` (``hparams_search=optuna``): creates the folder of the study's
  SQLite file (``hydra.sweeper.storage``) before the sweeper opens it (SQLite creates the
  file, not its folder).
- :class:`OneGpuPerJob` (``hydra/launcher=parallel``): pins every parallel worker process to
  one GPU by setting ``CUDA_VISIBLE_DEVICES`` before its first job touches CUDA.

Neither imports torch; both do nothing on a machine without GPUs or without SQLite storage.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from astro_exp.errors import ConfigError

log = logging.getLogger(__name__)

_SQLITE = "sqlite:///"

# this process's GPU slot: (slot number, the open lock file that holds it until the process ends)
_claimed: tuple[int, IO[str]] | None = None


def sqlite_path(storage: str | None) -> Path | None:
    """The database file of an Optuna ``sqlite:///...`` storage URL; None for other storages."""
    if not storage or not str(storage).startswith(_SQLITE):
        return None
    return Path(str(storage)[len(_SQLITE) :])


class MakeStorageDir(Callback):
    """Creates the folder of the sweeper's SQLite storage at the start of a multirun."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = sqlite_path(config.hydra.sweeper.get("storage"))
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        log.info(
            "Optuna study %s in %s (%s)",
            config.hydra.sweeper.get("study_name"),
            path,
            "continued" if path.exists() else "new",
        )


def parse_gpus(gpus: Any) -> list[str]:
    """``"0,1"``, ``[0, 1]``, ``2`` (the first two) or ``"auto"`` -> CUDA device ids as strings."""
    if gpus is None or gpus == "auto":
        return detect_gpus()
    if isinstance(gpus, bool):
        raise ConfigError(f"gpus={gpus!r}: give 'auto', a count, or ids such as [0, 1] or '0,1'")
    if isinstance(gpus, int):
        return [str(i) for i in range(gpus)]
    items = gpus.split(",") if isinstance(gpus, str) else list(gpus)
    return [str(g).strip() for g in items if str(g).strip()]


def detect_gpus() -> list[str]:
    """The GPUs this process may use, without initialising CUDA (so a worker can still be
    pinned): ``CUDA_VISIBLE_DEVICES`` when set, else the devices ``nvidia-smi`` lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().isdigit()]


def claim_slot(lock_dir: str | Path) -> int:
    """The lowest slot no other live process holds; held until this process exits.

    Slots are ``flock``-ed files, so a worker that dies frees its slot and the next
    worker takes it over.
    """
    global _claimed
    if _claimed is not None:
        return _claimed[0]
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        fh = open(lock_dir / f"slot{slot}.lock", "a+")  # noqa: SIM115 (held open on purpose)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            slot += 1
            continue
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        _claimed = (slot, fh)
        return slot


class OneGpuPerJob(Callback):
    """Gives each worker process of a parallel launcher its own GPU.

    Joblib keeps its worker processes for several jobs, and CUDA reads
    ``CUDA_VISIBLE_DEVICES`` once per process, so the GPU goes with the worker, not the job
    number: worker k (the k-th live process to start a job) gets GPU ``gpus[k % len(gpus)]``.
    With n_jobs equal to the number of GPUs every job has a GPU to itself.
    """

    def __init__(self, gpus: Any = "auto") -> None:
        self.gpus = gpus
        self._ids: list[str] | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # resolved once, in the launching process; the workers get a pickled copy
        self._ids = parse_gpus(self.gpus)
        if self._ids:
            log.info("one GPU per parallel job, from CUDA devices %s", ",".join(self._ids))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        ids = self._ids if self._ids is not None else parse_gpus(self.gpus)
        if not ids:
            return
        slot = claim_slot(Path(str(config.hydra.sweep.dir)) / ".gpu_slots")
        gpu = ids[slot % len(ids)]
        if os.environ.get("CUDA_VISIBLE_DEVICES") != gpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        log.info(
            "job %s runs on GPU %s (worker slot %d, pid %d)",
            config.hydra.job.get("num"),
            gpu,
            slot,
            os.getpid(),
        )
