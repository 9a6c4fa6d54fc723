"""astro-exp: config-driven experiments for classifying astronomical pictures."""

from astro_exp import config as _config  # noqa: F401  (registers OmegaConf resolvers)

__version__ = "0.1.0"
