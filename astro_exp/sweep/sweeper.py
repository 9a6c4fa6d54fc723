"""The Optuna sweeper behind ``hparams_search=optuna``: Hydra's Sweeper API over Optuna's
ask/tell, for current Optuna (>= 4) and SQLAlchemy 2.

Why our own: hydra-optuna-sweeper (last release 2022) pins optuna < 3 and SQLAlchemy < 2,
runs trials in batches (a batch waits for its slowest trial) and cannot prune. Here

- the search space is ``hydra.sweeper.params`` plus the command line's sweeps, in Hydra's
  override grammar (``choice``, ``interval``, ``tag(log, ...)``, ``range``), as before;
- ``n_jobs`` workers (threads of this process, each launching one job at a time through the
  configured launcher: joblib worker processes, SLURM jobs) each take the next trial as soon
  as theirs ends: no batches;
- a job reports each epoch to its trial and stops when the pruner says so
  (:mod:`astro_exp.sweep.trial`); it tells the study its own result, so a study stays right
  even if this process dies. What a job could not tell (it crashed, its worker was killed)
  this process marks FAIL; a trial whose worker stopped beating is failed by the next ask;
- several invocations (here, or on other machines against one database or journal file)
  share the study; each adds ``n_trials`` trials.

The ``hydra_plugins.astro_exp_sweeper`` shim registers the class with Hydra, which only
loads plugins from that namespace.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from astro_exp.errors import ConfigError
from astro_exp.sweep.study import (
    build_pruner,
    fail_stale_trials,
    finite,
    open_storage,
)

log = logging.getLogger(__name__)


def distribution(override: Override) -> BaseDistribution | str:
    """An Optuna distribution for a sweep override, or the fixed value of a plain one."""
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    key = override.get_key_element()
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(
            list(override.sweep_iterator(transformer=Transformer.encode))
        )
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if any(isinstance(v, float) for v in (start, stop, step)):
            # range() excludes stop; Optuna's high is inclusive
            n = int(round((float(stop) - float(start)) / float(step)))
            return FloatDistribution(
                float(start), float(start) + (n - 1) * float(step), step=float(step)
            )
        return IntDistribution(int(start), int(stop) - int(step), step=int(step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ConfigError(
        f"{key}: {override.input_line} is not a sweep Optuna can search; use choice, range or interval"
    )


def search_space(arguments: Sequence[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """(searched keys -> distributions, fixed keys -> values); a later override of a key wins,
    so the command line fixes or re-ranges a key of ``hydra.sweeper.params``."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        value = distribution(override)
        space.pop(key, None)
        fixed.pop(key, None)
        if isinstance(value, BaseDistribution):
            space[key] = value
        else:
            fixed[key] = value
    return space, fixed


def suggest(trial: optuna.trial.Trial, name: str, dist: BaseDistribution) -> Any:
    """Optuna's public suggest_* for a distribution."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=optuna`` (conf/hydra/sweeper/optuna.yaml documents every key)."""

    def __init__(
        self,
        sampler: Any = None,
        pruner: Any = "median",
        direction: str = "maximize",
        storage: str | None = None,
        study_name: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        max_failure_rate: float = 1.0,
        params: DictConfig | None = None,
        heartbeat_interval: int | None = 60,
        grace_period: int | None = None,
        trial: int | None = None,  # set for each job by this sweeper; unused here
    ) -> None:
        if int(n_trials) < 0:
            raise ConfigError(f"hydra.sweeper.n_trials={n_trials} must be >= 0")
        if int(n_jobs) < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs={n_jobs} must be >= 1")
        if not 0.0 <= float(max_failure_rate) <= 1.0:
            raise ConfigError(
                f"hydra.sweeper.max_failure_rate={max_failure_rate} must be in [0, 1]"
            )
        if str(direction) not in ("maximize", "minimize"):
            raise ConfigError(
                f"hydra.sweeper.direction={direction}: use maximize or minimize (optimized_mode=max|min)"
            )
        self.sampler = sampler
        self.pruner_spec = (
            OmegaConf.to_container(pruner, resolve=True) if OmegaConf.is_config(pruner) else pruner
        )
        self.pruner = build_pruner(self.pruner_spec)
        self.direction = str(direction)
        self.storage_url = storage
        self.study_name = study_name
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.max_failure_rate = float(max_failure_rate)
        self.params = params
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self._lock = threading.Lock()
        self.outcomes: dict[int, str] = {}

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        if self.n_jobs > 1 and type(self.launcher).__name__ == "BasicLauncher":
            raise ConfigError(
                f"hydra.sweeper.n_jobs={self.n_jobs} needs a launcher that runs jobs in their own "
                "processes: hydra/launcher=parallel (this machine) or hydra/launcher=slurm"
            )

    # -- the search ---------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> Any:
        params = [f"{k}={v}" for k, v in (self.params or {}).items()]
        space, fixed = search_space([*params, *arguments])
        storage = open_storage(self.storage_url, self.heartbeat_interval, self.grace_period)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=self.sampler,
            pruner=self.pruner,
            direction=self.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != self.direction:
            raise ConfigError(
                f"study {self.study_name} {study.direction.name.lower()}s its metric, this search would "
                f"{self.direction} it; set hydra.sweeper.study_name to start a new study"
            )
        log.info(
            "study %s (%s): %d trials so far; %d more, %d at a time; sampler %s, pruner %s",
            study.study_name,
            self.storage_url,
            len(study.trials),
            self.n_trials,
            self.n_jobs,
            type(self.sampler).__name__,
            type(self.pruner).__name__,
        )
        self._study, self._space, self._fixed = study, space, fixed
        self._started = 0
        if self.n_jobs == 1:
            self._worker()
        else:
            workers = [
                threading.Thread(target=self._worker, name=f"trial-worker-{i}", daemon=True)
                for i in range(self.n_jobs)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        fail_stale_trials(study, self._grace())
        self._write_results(study)
        failed = sum(1 for s in self.outcomes.values() if s == TrialState.FAIL.name)
        if self.outcomes and failed / len(self.outcomes) > self.max_failure_rate:
            raise ConfigError(
                f"{failed} of {len(self.outcomes)} trials failed (more than "
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate}); see their train.log"
            )
        return study

    def _grace(self) -> int | None:
        if self.grace_period:
            return int(self.grace_period)
        return 2 * int(self.heartbeat_interval) if self.heartbeat_interval else None

    def _worker(self) -> None:
        """Take the next trial, run its job, settle it; until this invocation's budget is spent."""
        while True:
            with self._lock:
                if self._started >= self.n_trials or self._too_many_failures():
                    return
                self._started += 1
                fail_stale_trials(self._study, self._grace())
                trial = self._study.ask()
                for name, dist in self._space.items():
                    suggest(trial, name, dist)
                for name, value in self._fixed.items():
                    trial.set_user_attr(name, value)
            overrides = [
                *(f"{k}={v}" for k, v in trial.params.items()),
                *(f"{k}={v}" for k, v in self._fixed.items()),
                f"hydra.sweeper.trial={trial.number}",
            ]
            ret: JobReturn | None = None
            try:
                (ret,) = self.launcher.launch([overrides], initial_job_idx=trial.number)
            except Exception as e:  # noqa: BLE001 - the worker died (killed, out of memory, ...)
                log.warning(
                    "trial %d: its job did not return (%s: %s)", trial.number, type(e).__name__, e
                )
            self._settle(trial, ret)

    def _too_many_failures(self) -> bool:
        failed = sum(1 for s in self.outcomes.values() if s == TrialState.FAIL.name)
        return (
            self.max_failure_rate < 1.0
            and failed > 0
            and (failed / max(1, len(self.outcomes)) > self.max_failure_rate)
        )

    def _settle(self, trial: optuna.trial.Trial, ret: JobReturn | None) -> None:
        """Record the trial's end: as its job told the study, else from the job's return."""
        study = self._study
        state = study._storage.get_trial(trial._trial_id).state
        if state == TrialState.RUNNING:
            # the job could not tell: no TrialReporter callback, or it died before its end
            value = (
                finite(ret._return_value)
                if ret is not None and ret.status == JobStatus.COMPLETED
                else None
            )
            state = TrialState.COMPLETE if value is not None else TrialState.FAIL
            try:
                study.tell(trial, value, state=state)
            except Exception as e:  # noqa: BLE001 - failed as stale meanwhile
                log.warning("trial %d: %s", trial.number, e)
                state = study._storage.get_trial(trial._trial_id).state
        if ret is not None and ret.status == JobStatus.FAILED:
            log.warning("trial %d failed: %s", trial.number, ret._return_value)
        frozen = study._storage.get_trial(trial._trial_id)
        with self._lock:
            self.outcomes[trial.number] = frozen.state.name
        log.info(
            "trial %d %s%s %s",
            trial.number,
            frozen.state.name,
            f" {frozen.value:.4f}" if frozen.value is not None else "",
            dict(frozen.params),
        )

    def _write_results(self, study: optuna.study.Study) -> Path:
        """``optimization_results.yaml``: the best of the whole study so far, and how its
        trials ended (all invocations) and this invocation's."""
        counts = {s.name.lower(): 0 for s in TrialState}
        for t in study.get_trials(deepcopy=False):
            counts[t.state.name.lower()] += 1
        results: dict[str, Any] = {"name": "optuna", "study_name": study.study_name}
        try:
            best = study.best_trial
            results.update(
                best_params=dict(best.params), best_value=best.value, best_trial=best.number
            )
        except ValueError:  # no complete trial yet
            results.update(best_params=None, best_value=None)
        results["trials"] = {k: v for k, v in counts.items() if v}
        results["this_sweep"] = {
            s: sum(1 for v in self.outcomes.values() if v == s.upper())
            for s in ("complete", "pruned", "fail")
        }
        path = Path(str(self.config.hydra.sweep.dir)) / "optimization_results.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), path)
        log.info(
            "best %s of study %s: %s %s",
            study.direction.name.lower(),
            study.study_name,
            results.get("best_value"),
            results.get("best_params"),
        )
        return path
