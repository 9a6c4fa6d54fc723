"""The examples in the public API's docstrings run: what a user copies from ``help()`` works.

Kept fast: no training, no downloads (each example builds what it needs in memory or in a
temporary folder)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "astro_exp.config",
    "astro_exp.tables",
    "astro_exp.data.catalog",
    "astro_exp.sources",
    "astro_exp.anomaly.detectors",
    "astro_exp.anomaly.neighbours",
    "astro_exp.cli.command",
    "astro_exp.models.factory",
    "astro_exp.predict.classifier",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
