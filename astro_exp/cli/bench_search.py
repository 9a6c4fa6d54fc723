"""``astro-exp bench-search``: what pruning saves. The same Optuna search (same seed, same
space: learning rate and augmentation) is run twice on the synthetic source, once without
pruning and once with ``bench_search.pruner``; JSON on stdout (and in ``out``): each search's
best validation metric and the epochs it trained, and the two ratios the target names
(best within 0.01, at most half the epochs).

    astro-exp bench-search                                   # 24 trials each, 8 epochs a trial
    astro-exp bench-search bench_search.n_trials=8 bench_search.max_epochs=4   # a quick look

Each search is a real ``astro-exp train -m hparams_search=optuna`` in a fresh interpreter,
with its own study under ``<out folder>/studies``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from astro_exp.cli.command import command


def run_search(cfg: DictConfig, pruner: str, root: Path) -> dict:
    """One search; its study's best value and the epochs its trials trained."""
    import optuna

    name = f"bench-{pruner}"
    storage = f"sqlite:///{root}/studies/{name}.db"
    args = [
        sys.executable,
        "-c",
        "import sys; from astro_exp.cli import main; main(sys.argv[1:])",
        "train",
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.params=null",
        f"trainer.optimizer.lr=tag(log, interval({cfg.lr_low}, {cfg.lr_high}))",
        "augment=choice(none, light, heavy)",
        f"hydra.sweeper.n_trials={cfg.n_trials}",
        f"hydra.sweeper.n_jobs={cfg.n_jobs}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.pruner={pruner}",
        f"trainer.max_epochs={cfg.max_epochs}",
        f"paths.log_dir={root}/outputs",
        f"seed={cfg.seed}",
        *cfg.overrides,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the {pruner} search failed: {proc.stderr[-2000:]}")
    study = optuna.load_study(study_name=name, storage=storage)
    states = [t.state.name.lower() for t in study.trials]
    return {
        "pruner": pruner,
        "best_value": study.best_value,
        "best_params": study.best_params,
        "epochs_trained": sum(len(t.intermediate_values) for t in study.trials),
        "trials": {s: states.count(s) for s in sorted(set(states))},
        "wall_s": round(time.perf_counter() - t0, 1),
    }


@command("bench_search")
def main(cfg: DictConfig) -> dict:
    """Both searches, then the comparison as JSON."""
    b = cfg.bench_search
    root = Path(b.root or f"outputs/bench_search/{time.strftime('%Y-%m-%d_%H-%M-%S')}").resolve()
    full = run_search(b, "none", root)
    pruned = run_search(b, str(b.pruner), root)
    result = {
        "settings": OmegaConf.to_container(b, resolve=True),
        "unpruned": full,
        "pruned": pruned,
        "best_gap": full["best_value"] - pruned["best_value"],
        "epoch_ratio": pruned["epochs_trained"] / max(1, full["epochs_trained"]),
    }
    result["meets_target"] = result["best_gap"] <= 0.01 and result["epoch_ratio"] <= 0.5
    text = json.dumps(result, indent=2)
    print(text)
    (root / "bench_search.json").write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
