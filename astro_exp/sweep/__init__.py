"""Scaling out: the pieces Hydra's sweepers and launchers load from ``conf/hparams_search``
and ``conf/hydra/launcher`` (see docs/scaling.md).

- :mod:`astro_exp.sweep.callbacks`: Hydra callbacks (SQLite folder for an Optuna study,
  one GPU per parallel job); no torch, no optuna.
- :mod:`astro_exp.sweep.sampler`: the TPE sampler the Optuna search uses (needs the
  ``sweep`` extra: ``pip install -e ".[sweep]"``).
"""
