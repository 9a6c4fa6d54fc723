"""TPE whose proposals depend on (seed, trial number), so a continued study stays reproducible.

Optuna's ``TPESampler(seed=s)`` draws from one random stream that starts afresh in every
process: a second ``python train.py -m hparams_search=optuna`` on the same study would
propose its first trials exactly like the first invocation did (the random start-up trials
repeat). Here trial ``n`` is sampled by a TPE sampler seeded with ``seed + n``; TPE still
conditions on every finished trial of the study, whichever invocation ran it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


class TrialSeededTPESampler(BaseSampler):
    """A ``TPESampler`` per trial, seeded with ``seed + trial.number``; takes TPESampler's
    keyword arguments (``n_startup_trials``, ``multivariate``, ...)."""

    def __init__(self, seed: int | None = None, **tpe_kwargs: Any) -> None:
        self.seed = seed
        self.tpe_kwargs = tpe_kwargs
        self._per_trial: dict[int, TPESampler] = {}

    def _sampler(self, trial: FrozenTrial) -> TPESampler:
        sampler = self._per_trial.get(trial.number)
        if sampler is None:
            seed = None if self.seed is None else self.seed + trial.number
            sampler = self._per_trial[trial.number] = TPESampler(seed=seed, **self.tpe_kwargs)
        return sampler

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler(trial).after_trial(study, trial, state, values)
        self._per_trial.pop(trial.number, None)

    def reseed_rng(self) -> None:
        self.seed = None
        for sampler in self._per_trial.values():
            sampler.reseed_rng()
