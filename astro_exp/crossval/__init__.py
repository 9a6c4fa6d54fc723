"""Honest figures on real pictures: k-fold cross-validation of a recipe against a person's
labels (:mod:`.folds`), and the review loop played by retraining (:mod:`.review_rounds`)."""

from astro_exp.crossval.folds import cross_validate, held_out, train_fold
from astro_exp.crossval.review_rounds import RETRAIN_ORDERS, retrain_rounds

__all__ = ["RETRAIN_ORDERS", "cross_validate", "held_out", "retrain_rounds", "train_fold"]
