"""Classify new pictures with a checkpoint bundle (CLI, Python API, web app and watcher share it).

:mod:`.classifier` holds :class:`Classifier` and :class:`Prediction`; :mod:`.into_catalog`
writes a run's predictions for the catalog's pictures into its predictions table.
"""

from astro_exp.predict.classifier import Classifier, Prediction

__all__ = ["Classifier", "Prediction"]
