"""``astro-exp train`` (``python train.py``): train, evaluate and log one experiment.

astro-exp train model=resnet augment=heavy
astro-exp train -m model=resnet,efficientnet_lite0 augment=light,heavy     # a sweep
astro-exp train --cfg job          # the composed config
astro-exp train debug=fast         # a smoke test in seconds
"""

from __future__ import annotations

import logging
import math
import os
import tempfile

from omegaconf import DictConfig

from astro_exp.cli.command import command

log = logging.getLogger("train")


def _quiet_non_zero_ranks(args: list[str]) -> list[str]:
    """Under torchrun only rank 0 gets a Hydra run folder; the others write to a temp dir."""
    if int(os.environ.get("RANK", "0")) > 0:
        scratch = tempfile.mkdtemp(prefix=f"astro-exp-rank{os.environ['RANK']}-")
        return [*args, f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]
    return args


@command("train", prepare=_quiet_non_zero_ranks)
def main(cfg: DictConfig) -> float | None:
    """Returns the metric named by ``optimized_metric`` so Hydra sweepers can optimise it."""
    from astro_exp.train import train  # imported here so --help and --cfg stay fast

    metrics = train(cfg)
    value = metrics.get(cfg.optimized_metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        log.warning("optimized_metric %r not in the final metrics", cfg.optimized_metric)
        return None
    return float(value)


if __name__ == "__main__":
    main()
