"""astro-exp: config-driven experiments for classifying astronomical pictures."""

__version__ = "0.1.0"
