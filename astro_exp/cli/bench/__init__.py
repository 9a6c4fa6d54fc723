"""``astro-exp bench`` (``python scripts/bench.py``): throughput figures, each against a baseline
measured in the same run, as JSON on stdout.

    python scripts/bench.py                              # the default config (conf/train.yaml)
    python scripts/bench.py model=tiny bench.steps=10    # any train.py override, the bench's keys under bench.
    python scripts/bench.py bench.predict=true           # also predict latency and the detectors (latency.py)
    python scripts/bench.py trainer.accelerator=cuda trainer.precision=bf16 trainer.channels_last=true
    python scripts/bench_predict.py model=tiny           # only those (bench.predict_only=true)

:mod:`~astro_exp.cli.bench.pipelines` times the training pipelines, :mod:`~astro_exp.cli.bench.latency`
predict and the detectors, :mod:`~astro_exp.cli.bench.real_size` the tensor cache's build
from real-size JPEGs, :mod:`~astro_exp.cli.bench.gallery` the web app's gallery. The scraper's
benchmark runs over the test stand-in and so stays in the checkout (``scripts/bench_scrape.py``,
``python scripts/bench.py scrape``).
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from astro_exp.cli.command import command
from astro_exp.errors import ConfigError


def _names(value: object) -> list[str] | None:
    if isinstance(value, ListConfig):
        names = [str(v) for v in OmegaConf.to_container(value)]
    else:
        names = [n.strip() for n in str(value or "").split(",") if n.strip()]
    return names or None


def _prepare(args: list[str]) -> list[str]:
    if "scrape" in args:
        raise ConfigError(
            "the scraper benchmark runs over the checkout's test stand-in: "
            "python scripts/bench.py scrape (or scripts/bench_scrape.py) from the repository"
        )
    return args


@command("bench", prepare=_prepare)
def main(cfg: DictConfig) -> dict:
    """Measure, print the JSON (and write ``bench.out``); returns the figures."""
    import torch

    from astro_exp.cli.bench.latency import detector_figures, predict_figures

    b = cfg.bench
    config = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in cfg
        if k != "bench"
    }
    if b.predict_only:
        from astro_exp.data.datamodule import build_datamodule
        from astro_exp.sources import build_imageset

        dm = build_datamodule(
            build_imageset(config["source"]),
            config["data"],
            config["preprocess"],
            seed=int(config["seed"]),
            cache_dir=cfg.paths.cache_dir,
        )
        result: dict = {}
    else:
        import tempfile

        from astro_exp.cli.bench.pipelines import pipeline_figures
        from astro_exp.cli.bench.real_size import cache_build_figures, real_jpegs

        with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
            real_root = None
            if int(b.real_pictures) > 0:  # real-size JPEGs: the cache build and naive figures
                real_root = Path(tmp)
                lo, hi = (int(v) for v in b.real_sizes)
                real_jpegs(real_root, int(b.real_pictures), (lo, hi), ["a", "b", "c", "d"])
            torch.manual_seed(0)
            result, dm = pipeline_figures(cfg, config, real_root)
            if real_root is not None:
                pre = config["preprocess"]
                result.update(
                    cache_build_figures(real_root, int(pre["image_size"]), str(pre["resize"]))
                )
    if b.predict or b.predict_only:
        result.update(predict_figures(config["model"], config["preprocess"], dm.classes, dm.images))
        result.update(
            detector_figures(
                result["embedding_dim"],
                result["model_batch_img_s"],
                int(b.n_embeddings),
                _names(b.detectors),
            )
        )
    text = json.dumps(result, indent=2)
    print(text)
    if b.out:
        Path(b.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
