"""The procedural sky renderer: API contract, determinism and an honest check that the
classes differ in shape and texture (not just in mean colour)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from astro_exp.sources import sky_render
from astro_exp.sources.sky_render import ANOMALY_KINDS, CLASSES, render, render_multilabel
from astro_exp.sources.sky_render.primitives import _grid

ALL_KINDS = CLASSES + ANOMALY_KINDS


def test_public_constants() -> None:
    assert CLASSES == ("galaxy", "nebula", "planet", "star")
    assert {"comet", "trail", "lens_flare", "non_sky"} <= set(ANOMALY_KINDS)
    assert not set(CLASSES) & set(ANOMALY_KINDS)
    assert isinstance(sky_render.RENDER_VERSION, str) and sky_render.RENDER_VERSION


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_renders_a_non_blank_uint8_picture(kind: str) -> None:
    img = render(kind, np.random.default_rng(0), 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert img.std() > 3, "a picture should have some structure"


@pytest.mark.parametrize("size", [32, 48, 65, 100, 128])
def test_shapes_for_several_sizes(size: int) -> None:
    for i, kind in enumerate(ALL_KINDS):
        img = render(kind, np.random.default_rng([size, i]), size)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
    ml = render_multilabel(CLASSES, np.random.default_rng(size), size)
    assert ml.shape == (size, size, 3) and ml.dtype == np.uint8


def test_large_size() -> None:
    img = render("galaxy", np.random.default_rng(1), 256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_deterministic_for_a_seed_and_different_across_seeds(kind: str) -> None:
    a = render(kind, np.random.default_rng([7, 1]), 48)
    b = render(kind, np.random.default_rng([7, 1]), 48)
    c = render(kind, np.random.default_rng([7, 2]), 48)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_multilabel_deterministic() -> None:
    a = render_multilabel(["planet", "star"], np.random.default_rng(3), 48)
    b = render_multilabel(["planet", "star"], np.random.default_rng(3), 48)
    c = render_multilabel(["planet", "star"], np.random.default_rng(4), 48)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()


def test_unknown_kind_raises_naming_valid_kinds() -> None:
    with pytest.raises(ValueError, match="galaxy") as err:
        render("quasar", np.random.default_rng(0))
    assert "quasar" in str(err.value) and "comet" in str(err.value)


def test_bad_size_raises() -> None:
    with pytest.raises(ValueError):
        render("star", np.random.default_rng(0), 4)


def test_multilabel_every_subset_renders() -> None:
    for k in range(1, len(CLASSES) + 1):
        for i, combo in enumerate(itertools.combinations(CLASSES, k)):
            img = render_multilabel(combo, np.random.default_rng([k, i]), 48)
            assert img.shape == (48, 48, 3) and img.dtype == np.uint8
            assert img.std() > 3


@pytest.mark.parametrize("kinds", [[], ["comet"], ["galaxy", "quasar"]])
def test_multilabel_rejects_bad_kinds(kinds: list[str]) -> None:
    with pytest.raises(ValueError, match="subset"):
        render_multilabel(kinds, np.random.default_rng(0), 32)


def test_the_coordinate_cache_is_not_modified() -> None:
    before = [a.copy() for a in _grid(96)]
    for kind in ALL_KINDS:
        render(kind, np.random.default_rng(5), 48)
    render_multilabel(CLASSES, np.random.default_rng(5), 48)
    after = _grid(96)
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))


# -- separability ---------------------------------------------------------------------------------
_SIZE = 64
_yy, _xx = np.mgrid[0:_SIZE, 0:_SIZE]
_RBIN = np.minimum((np.hypot(_yy - 31.5, _xx - 31.5) / 4).astype(int), 7).ravel()
_FB = np.minimum(
    (np.hypot(np.fft.fftfreq(_SIZE)[:, None], np.fft.rfftfreq(_SIZE)[None, :]) * 16).astype(int), 7
).ravel()


def _shape_texture_features(img: np.ndarray) -> np.ndarray:
    """Brightness-normalised radial profile, grey histogram, power spectrum and
    sharpness/saturation statistics: what a person uses, minus the mean colour."""
    c = img.astype(np.float32) / 255
    g = c.mean(-1)
    g = (g - g.mean()) / (g.std() + 1e-3)
    radial = np.bincount(_RBIN, g.ravel(), 8) / np.bincount(_RBIN, minlength=8)
    hist = np.histogram(g, bins=10, range=(-2, 6))[0] / g.size
    power = np.abs(np.fft.rfft2(g)).ravel() ** 2
    spec = np.log(np.bincount(_FB, power, 8) / np.bincount(_FB, minlength=8) + 1e-6)
    lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])
    sat = c.max(-1) - c.min(-1)
    return np.concatenate(
        [radial, hist, spec, [lap.mean(), np.percentile(lap, 90), sat.mean(), sat.std()]]
    )


@pytest.fixture(scope="module")
def class_renders() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """60 renders per class at the training size: (features, mean colours, labels)."""
    feats, colours, labels = [], [], []
    for ci, cls in enumerate(CLASSES):
        for i in range(60):
            img = render(cls, np.random.default_rng([2024, ci, i]), _SIZE)
            feats.append(_shape_texture_features(img))
            colours.append(img.reshape(-1, 3).mean(0) / 255)
            labels.append(ci)
    return np.array(feats), np.array(colours), np.array(labels)


def _held_out_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = np.arange(len(y)) % 2 == 0
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(x[train], y[train])
    return float(clf.score(x[~train], y[~train]))


def test_classes_are_separable_by_shape_and_texture(class_renders) -> None:
    feats, _, labels = class_renders
    acc = _held_out_accuracy(feats, labels)
    assert acc > 0.7, f"simple shape/texture features should separate the classes, got {acc:.2f}"


def test_mean_colour_alone_does_not_give_the_class_away(class_renders) -> None:
    _, colours, labels = class_renders
    acc = _held_out_accuracy(colours, labels)
    assert acc < 0.75, f"mean colour alone classifies {acc:.2f} of pictures: too easy a shortcut"
