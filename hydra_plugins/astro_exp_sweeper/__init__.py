"""Registers astro-exp's Optuna sweeper with Hydra (``hydra/sweeper=optuna``).

Hydra instantiates sweepers only from the ``hydra_plugins`` namespace and imports every
module there at start-up, so this shim is all that lives here: the code (and its optuna
import, the ``sweep`` extra) is in :mod:`astro_exp.sweep.sweeper`, loaded only when a search
actually starts.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class AstroOptunaSweeper(Sweeper):
    """Delegates to :class:`astro_exp.sweep.sweeper.OptunaSweeper`."""

    def __init__(self, **kwargs: Any) -> None:
        from astro_exp.sweep.sweeper import OptunaSweeper

        self.sweeper = OptunaSweeper(**kwargs)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.sweeper.sweep(arguments)
