"""Batched preprocessing and augmentation on the model's device (Kornia)."""

from astro_exp.vision.augment import build_augment
from astro_exp.vision.preprocess import Preprocess, build_preprocess

__all__ = ["Preprocess", "build_preprocess", "build_augment"]
