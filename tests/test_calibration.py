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
        t = fit_temperature(logits * true_t, targets, "multiclass")  # over- / under-confident by true_t
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
