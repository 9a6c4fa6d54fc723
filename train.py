"""Train, evaluate and log one experiment: ``python train.py model=resnet augment=heavy``.

Sweeps: ``python train.py -m model=resnet,efficientnet_lite0 augment=light,heavy``.
The composed config: ``python train.py --cfg job``; a smoke test: ``python train.py debug=fast``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import astro_exp  # noqa: F401  (registers the ${cwd:} resolver the configs use)
from astro_exp.errors import AstroExpError

log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the metric named by ``optimized_metric`` so Hydra sweepers can optimise it."""
    from astro_exp.train import train  # imported here so --help and --cfg stay fast

    try:
        metrics = train(cfg)
    except AstroExpError as e:
        log.error("%s", e)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweeper records a failed job (Optuna: a FAIL trial) and goes on
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    value = metrics.get(cfg.optimized_metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        log.warning("optimized_metric %r not in the final metrics", cfg.optimized_metric)
        return None
    return float(value)


def _quiet_non_zero_ranks() -> None:
    """Under torchrun only rank 0 gets a Hydra run folder; the others write to a temp dir."""
    if int(os.environ.get("RANK", "0")) > 0:
        scratch = tempfile.mkdtemp(prefix=f"astro-exp-rank{os.environ['RANK']}-")
        sys.argv += [f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]


if __name__ == "__main__":
    _quiet_non_zero_ranks()
    main()
