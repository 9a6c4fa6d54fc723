"""Model construction (timm factory, offline weights) and checkpoint bundles."""

from astro_exp.models.factory import MODEL_ALIASES, create_model

__all__ = ["MODEL_ALIASES", "create_model"]
