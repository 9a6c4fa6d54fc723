"""``astro-exp bench``'s figures put together from the composed config (conf/bench.yaml: the
train config plus the bench's own keys under ``bench.``): the training pipelines and the
real-size figures, and with ``bench.predict`` (or only them: ``bench.predict_only``) predict's
latency and the detectors' times.

Why the training figures come first: their datamodule's pictures are what the predict
figures classify, so a ``predict_only`` run builds that datamodule alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def detector_names(value: object) -> list[str] | None:
    """``bench.detectors`` as a list of names (a list or ``knn,iforest``); None: all of them.

    >>> detector_names("knn, iforest"), detector_names(""), detector_names(None)
    (['knn', 'iforest'], None, None)
    """
    if isinstance(value, ListConfig):
        names = [str(v) for v in OmegaConf.to_container(value)]
    else:
        names = [n.strip() for n in str(value or "").split(",") if n.strip()]
    return names or None


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """Every top-level group of ``cfg`` but ``bench``, resolved to plain dicts."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in cfg
        if k != "bench"
    }


def bench_figures(cfg: DictConfig) -> dict[str, Any]:
    """All figures ``cfg.bench`` asks for, in the order the JSON report lists them.

    Args:
        cfg: the composed conf/bench.yaml.

    Returns:
        The figures as a flat dict (``train_parts_ms`` and the predict parts nested).
    """
    b = cfg.bench
    config = plain_config(cfg)
    if b.predict_only:
        result: dict[str, Any] = {}
        dm = _datamodule(cfg, config)
    else:
        result, dm = _training_figures(cfg, config)
    if b.predict or b.predict_only:
        result.update(_predict_figures(cfg, config, dm))
    return result


def _datamodule(cfg: DictConfig, config: dict[str, Any]) -> Any:
    """The datamodule alone (``predict_only``): its pictures and classes feed predict."""
    from astro_exp.data.datamodule import build_datamodule
    from astro_exp.sources import build_imageset

    return build_datamodule(
        build_imageset(config["source"]),
        config["data"],
        config["preprocess"],
        seed=int(config["seed"]),
        cache_dir=cfg.paths.cache_dir,
    )


def _training_figures(cfg: DictConfig, config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The training pipelines' throughputs; with ``bench.real_pictures``, real-size JPEGs
    feed the naive baseline at real sizes and the cache-build figures."""
    import torch

    from astro_exp.bench.pipelines import pipeline_figures
    from astro_exp.bench.real_size import cache_build_figures, real_jpegs

    b = cfg.bench
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
    return result, dm


def _predict_figures(cfg: DictConfig, config: dict[str, Any], dm: Any) -> dict[str, Any]:
    """Predict's latency and throughput on ``dm``'s pictures, then the detectors' times on
    embeddings of the model's width."""
    from astro_exp.bench.latency import detector_figures, predict_figures

    b = cfg.bench
    out = predict_figures(config["model"], config["preprocess"], dm.classes, dm.images)
    out.update(
        detector_figures(
            out["embedding_dim"],
            out["model_batch_img_s"],
            int(b.n_embeddings),
            detector_names(b.detectors),
        )
    )
    return out
