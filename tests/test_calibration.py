"""Temperature scaling: recovers a known over-confidence, and stays finite (not ~0) when
val has no mistakes."""

from __future__ import annotations

import torch

from astro_exp.engine.calibration import fit_temperature


def _calibrated(n: int = 4000, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose softmax is the true class distribution (labels drawn from it)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 2.0
    targets = torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(1)
    return logits, targets


def test_recovers_a_known_temperature() -> None:
    logits, targets = _calibrated()
    for true_t in (0.5, 1.0, 3.0):
        t = fit_temperature(
            logits * true_t, targets, "multiclass"
        )  # over- / under-confident by true_t
        assert abs(t - true_t) / true_t < 0.1, (true_t, t)


def test_no_val_mistakes_does_not_collapse_to_certainty() -> None:
    g = torch.Generator().manual_seed(1)
    targets = torch.randint(0, 4, (360,), generator=g)
    logits = torch.randn(360, 4, generator=g)
    logits[torch.arange(360), targets] += 5.0  # every val prediction right, by a wide margin
    t = fit_temperature(logits, targets, "multiclass")
    plain = fit_temperature(logits, targets, "multiclass", prior_sigma=1e6)  # (almost) no prior
    assert 0.2 < t < 1.0 and plain < t / 2  # without the prior T runs to its bound
    probs = (logits / t).softmax(-1).max(-1).values
    assert probs.min() < 0.999  # not every prediction is "certain"


def test_checked_fit_keeps_a_temperature_that_holds_on_held_out_pictures() -> None:
    from astro_exp.engine.calibration import fit_temperature_checked

    logits, targets = _calibrated(n=600)
    fit = fit_temperature_checked(logits * 3.0, targets, "multiclass")  # over-confident by 3x
    assert not fit.fell_back and abs(fit.temperature - 3.0) / 3.0 < 0.15
    assert fit.heldout_nll < fit.heldout_nll_t1


def test_checked_fit_falls_back_to_one_when_the_fit_does_not_generalise(caplog) -> None:
    from astro_exp.engine.calibration import fit_temperature_checked

    fell_back = 0
    for seed in range(8):  # already calibrated, and few pictures: a fitted T is noise
        logits, targets = _calibrated(n=40, seed=seed)
        with caplog.at_level("INFO", logger="astro_exp.engine.calibration"):
            fit = fit_temperature_checked(logits, targets, "multiclass")
        if fit.fell_back:
            fell_back += 1
            assert fit.temperature == 1.0 and fit.heldout_nll >= fit.heldout_nll_t1
        else:  # kept only with held-out evidence
            assert fit.heldout_nll < fit.heldout_nll_t1 and fit.temperature == fit.fitted
    assert fell_back >= 6 and "using T=1" in caplog.text
    tiny = fit_temperature_checked(logits[:3], targets[:3], "multiclass")
    assert tiny.fell_back and tiny.temperature == 1.0


def test_multilabel_thresholds_start_from_task_threshold() -> None:
    """``task.threshold`` is the threshold of a label val never shows; metrics need one."""
    import pytest

    from astro_exp.engine.calibration import fit_thresholds
    from astro_exp.engine.metrics import classification_metrics

    g = torch.Generator().manual_seed(0)
    probs = torch.rand(40, 3, generator=g)
    targets = torch.zeros(40, 3)
    targets[:20, 0] = 1
    thr = fit_thresholds(probs, targets, default=0.3)
    assert thr[1].item() == thr[2].item() == pytest.approx(0.3) and 0.05 <= thr[0].item() <= 0.95
    metrics, _ = classification_metrics(
        probs.logit(), targets, "multilabel", ["a", "b", "c"], "val", thresholds=thr
    )
    assert 0.0 <= metrics["val/f1_macro"] <= 1.0
    with pytest.raises(ValueError, match="thresholds"):
        classification_metrics(probs.logit(), targets, "multilabel", ["a", "b", "c"], "val")


def _flip(targets: torch.Tensor, k: int, eps: float, seed: int = 3) -> torch.Tensor:
    """Weak labels: each label replaced by another class with probability ``eps``."""
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(targets), generator=g) < eps
    other = (targets + torch.randint(1, k, targets.shape, generator=g)) % k
    return torch.where(flip, other, targets)


def test_label_noise_fits_the_true_classes_not_the_labeller() -> None:
    import pytest

    from astro_exp.engine.calibration import fit_temperature_checked
    from astro_exp.errors import ConfigError

    logits, truth = _calibrated(n=6000, k=5)  # calibrated against the true classes: T = 1
    weak = _flip(truth, 5, 0.15)
    plain = fit_temperature(logits, weak, "multiclass")
    aware = fit_temperature(logits, weak, "multiclass", label_noise=0.15)
    # fitted to the labeller, the model looks over-confident and is softened (T > 1), which
    # makes it under-confident about the true classes; the noise-aware fit stays near 1
    assert plain > 1.25 and abs(aware - 1.0) < 0.1, (plain, aware)
    fit = fit_temperature_checked(logits * 2.0, weak, "multiclass", label_noise=0.15)
    assert not fit.fell_back and abs(fit.temperature - 2.0) / 2.0 < 0.15
    # multilabel: each label flipped
    g = torch.Generator().manual_seed(4)
    ml_logits = torch.randn(6000, 3, generator=g) * 2
    ml_truth = torch.bernoulli(ml_logits.sigmoid(), generator=g)
    ml_weak = torch.where(torch.rand(6000, 3, generator=g) < 0.1, 1 - ml_truth, ml_truth)
    t_ml = fit_temperature(ml_logits, ml_weak, "multilabel", label_noise=0.1)
    assert abs(t_ml - 1.0) < 0.15 and fit_temperature(ml_logits, ml_weak, "multilabel") > 1.2
    with pytest.raises(ConfigError, match="calibration_label_noise=0.6"):
        fit_temperature_checked(logits, weak, "multiclass", label_noise=0.6)
