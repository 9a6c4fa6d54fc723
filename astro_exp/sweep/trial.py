"""The trial's side of a search, in the process that runs the trial's job.

Why the job and not the sweeper owns its trial: a trial must report every epoch (so the
pruner can stop it) and must be finished by whoever is still alive. The sweeper passes only
the trial's number (``hydra.sweeper.trial``, a Hydra override, so it is in no run folder
name); :class:`TrialReporter`, a Hydra callback that ``hparams_search=optuna`` installs, then

- on job start opens the study, finds the trial and starts its heartbeat (a worker that dies
  stops beating, and its trial is failed instead of RUNNING forever);
- gives the trainer :func:`epoch_hook`: each epoch's validation metric (``optimized_metric``)
  is reported to the trial, and the trainer stops when the pruner says so;
- on job end tells the study COMPLETE (the job's return value), PRUNED or FAIL, and writes
  ``trial.json`` into the run folder (study, trial number, state, value, pruned epoch).

Outside a search (a plain run, a sweep without Optuna) every function here does nothing, and
nothing imports optuna.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

TRIAL_FILE = "trial.json"

EpochHook = Callable[[int, dict[str, float]], bool]


class _Active:
    """The trial this process runs now."""

    def __init__(self, study: Any, trial: Any, metric: str, heartbeat: Any, pruner: str) -> None:
        self.study, self.trial, self.metric = study, trial, metric
        self.heartbeat, self.pruner = heartbeat, pruner
        self.pruned_epoch: int | None = None

    def report(self, epoch: int, metrics: dict[str, float]) -> bool:
        from astro_exp.sweep.study import finite

        value = finite(metrics.get(self.metric))
        if value is None:
            return False
        self.trial.report(value, step=int(epoch))
        if self.trial.should_prune():
            self.pruned_epoch = int(epoch)
            log.info(
                "trial %d pruned by the %s pruner after epoch %d (%s %.4f)",
                self.trial.number,
                self.pruner,
                epoch,
                self.metric,
                value,
            )
            return True
        return False


_active: _Active | None = None


def epoch_hook() -> EpochHook | None:
    """The trainer's per-epoch hook when this process runs a trial of a search, else None.

    ``hook(epoch, val_metrics)`` reports the epoch's ``optimized_metric`` and returns True when
    the trial should stop (pruned)."""
    return _active.report if _active is not None else None


def trial_number(config: DictConfig) -> int | None:
    """The trial this job runs (``hydra.sweeper.trial``), None outside an Optuna search."""
    sweeper = config.hydra.get("sweeper") if "hydra" in config else None
    if sweeper is None:
        return None
    number = OmegaConf.select(sweeper, "trial", default=None)
    return None if number is None else int(number)


class TrialReporter(Callback):
    """Opens this job's trial at job start and tells its result at job end (module doc)."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _active
        number = trial_number(config)
        if number is None:
            return
        from astro_exp.sweep.study import Heartbeat, load_study, open_storage

        sweeper = config.hydra.sweeper
        storage = open_storage(
            sweeper.storage, sweeper.get("heartbeat_interval"), sweeper.get("grace_period")
        )
        pruner = (
            OmegaConf.to_container(sweeper.get("pruner"), resolve=True)
            if OmegaConf.is_config(sweeper.get("pruner"))
            else sweeper.get("pruner")
        )
        study = load_study(storage, str(sweeper.study_name), pruner)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        import optuna

        trial = optuna.trial.Trial(study, trial_id)
        heartbeat = Heartbeat(storage, trial_id, sweeper.get("heartbeat_interval"))
        name = pruner.get("name", pruner.get("_target_")) if isinstance(pruner, dict) else pruner
        _active = _Active(study, trial, str(config.optimized_metric), heartbeat, str(name))
        log.info("trial %d of study %s (%s)", number, study.study_name, sweeper.storage)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        global _active
        active, _active = _active, None
        if active is None:
            return
        active.heartbeat.stop()
        from hydra.core.utils import JobStatus
        from optuna.trial import TrialState

        from astro_exp.sweep.study import PRUNED_EPOCH_ATTR, finite

        value = None
        if active.pruned_epoch is not None:
            state = TrialState.PRUNED
            active.trial.set_user_attr(PRUNED_EPOCH_ATTR, active.pruned_epoch)
        elif (
            job_return.status == JobStatus.COMPLETED
            and (value := finite(job_return._return_value)) is not None
        ):
            state = TrialState.COMPLETE
        else:
            state = TrialState.FAIL
        active.trial.set_user_attr("run_dir", str(config.hydra.runtime.output_dir))
        try:
            active.study.tell(active.trial, value, state=state)
        except Exception as e:  # noqa: BLE001 - failed meanwhile as stale: say so, keep the run
            log.warning("trial %d: could not record %s: %s", active.trial.number, state.name, e)
        write_trial_file(
            Path(str(config.hydra.runtime.output_dir)),
            study=active.study.study_name,
            trial=active.trial.number,
            state=state.name,
            value=value,
            pruned_epoch=active.pruned_epoch,
            params=active.trial.params,
        )


def write_trial_file(run_dir: Path, **fields: Any) -> Path:
    """``trial.json`` in the run folder: what the search made of this run (compare reads it)."""
    from astro_exp.files import atomic_write

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / TRIAL_FILE
    atomic_write(path, json.dumps(fields, indent=2, default=str) + "\n")
    return path
