"""astro-exp: config-driven experiments for classifying astronomical pictures."""

from __future__ import annotations

from typing import Any

from astro_exp import config as _config  # noqa: F401  (registers OmegaConf resolvers)

__version__ = "0.1.0"
__all__ = ["Classifier", "Prediction", "__version__"]


def __getattr__(name: str) -> Any:
    """``from astro_exp import Classifier`` without importing torch for every submodule."""
    if name in ("Classifier", "Prediction"):
        from astro_exp import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'astro_exp' has no attribute {name!r}")
