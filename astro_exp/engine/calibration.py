"""Post-hoc calibration fitted on validation data: temperature scaling (Guo et al. 2017)
and, for multilabel, per-label decision thresholds.

With weak labels, val's labels are themselves wrong on a fraction ``label_noise`` of the
pictures; plain temperature scaling then fits the model's confidence to how often it agrees
with the *labeller*, and the model comes out under-confident about what pictures really show.
``label_noise`` > 0 fits T under a symmetric noise model instead: the val label is the true
class with probability 1 - eps, each other class with eps / (C - 1) (multilabel: each label
flipped with probability eps), so T is what makes the model right about the true classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def _loss(
    z: torch.Tensor, targets: torch.Tensor, task: str, label_noise: float, reduction: str
) -> torch.Tensor:
    """NLL of the (possibly noisy) val labels under tempered logits ``z``."""
    if label_noise <= 0:
        if task == "multiclass":
            return F.cross_entropy(z, targets.long(), reduction=reduction)
        return F.binary_cross_entropy_with_logits(z, targets.float(), reduction=reduction)
    eps = float(label_noise)
    if task == "multiclass":
        p = z.softmax(-1)
        c = max(z.shape[-1], 2)
        p_y = p.gather(1, targets.long()[:, None])[:, 0]
        q = (1 - eps) * p_y + eps / (c - 1) * (1 - p_y)
        out = -q.clamp_min(1e-12).log()
    else:
        p = z.sigmoid()
        q = (1 - eps) * p + eps * (1 - p)  # P(label says 1)
        t = targets.float()
        out = -(t * q.clamp_min(1e-12).log() + (1 - t) * (1 - q).clamp_min(1e-12).log()).sum(-1)
    return out.sum() if reduction == "sum" else out.mean()


def fit_temperature(
    logits: torch.Tensor,
    targets: torch.Tensor,
    task: str,
    max_iter: int = 100,
    prior_sigma: float = 1.0,
    label_noise: float = 0.0,
) -> float:
    """The temperature T > 0 minimising validation NLL of ``logits / T`` plus a weak
    log-normal prior on T centred at 1 (``prior_sigma`` in log units, weighing like one
    picture against all of val).

    Why the prior: when the model makes no mistake on val, the NLL keeps falling as T -> 0
    and plain temperature scaling makes every prediction ~100% sure, of a picture from
    another domain too. The prior stops that where val gives no evidence (T stays well above
    the 0.01 bound) and barely moves a fit that val has evidence for. ``label_noise``: the
    share of wrong val labels the likelihood allows for (see the module's docstring).
    """
    logits = logits.detach().float()
    n = max(len(logits), 1)
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        opt.zero_grad()
        z = logits / log_t.exp()
        loss = _loss(z, targets, task, label_noise, "mean")
        loss = loss + (log_t**2).sum() / (2 * prior_sigma**2 * n)
        loss.backward()
        return loss

    opt.step(nll)
    t = float(log_t.exp().item())
    if t != t:  # NaN: a degenerate val set, keep the model as it is
        return 1.0
    return min(max(t, 0.01), 100.0)


def _nll(
    logits: torch.Tensor,
    targets: torch.Tensor,
    task: str,
    temperature: float,
    label_noise: float = 0.0,
) -> float:
    return float(_loss(logits.float() / temperature, targets, task, label_noise, "sum"))


@dataclass(frozen=True)
class TemperatureFit:
    """A checked temperature: what was fitted, what is used, and the evidence for it."""

    temperature: float  # the one to use (1.0 when the fit did not hold up)
    fitted: float  # the temperature fitted on all of val
    heldout_nll: float  # mean NLL of val pictures at temperatures fitted on the other fold
    heldout_nll_t1: float  # the same pictures at T = 1
    fell_back: bool


def fit_temperature_checked(
    logits: torch.Tensor,
    targets: torch.Tensor,
    task: str,
    folds: int = 2,
    seed: int = 0,
    label_noise: float = 0.0,
) -> TemperatureFit:
    """Fit T on all of val, but use it only if it helps pictures it was not fitted on.

    Why: on a small val split (75 real pictures) a fitted T can make the test ECE worse than
    no calibration. Cross-fitting checks that: val is split into ``folds`` parts; each part is
    scored at the T fitted on the others. If that held-out NLL is not lower than at T = 1, the
    fit is not evidence of anything and T = 1 is used, with a log line saying so.
    """
    n = len(logits)
    if not 0.0 <= label_noise < 0.5:
        from astro_exp.errors import ConfigError

        raise ConfigError(
            f"trainer.calibration_label_noise={label_noise} must be in [0, 0.5): the share of "
            "val labels that are wrong (1 - the labeller's agreement with your own labels)"
        )
    fitted = fit_temperature(logits, targets, task, label_noise=label_noise)
    if n < 2 * folds:
        log.info("calibration: %d val pictures are too few to check a temperature; using T=1", n)
        return TemperatureFit(1.0, fitted, float("nan"), float("nan"), True)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = order.chunk(folds)
    nll_fit = nll_one = 0.0
    for k, held in enumerate(parts):
        rest = torch.cat([p for j, p in enumerate(parts) if j != k])
        t_k = fit_temperature(logits[rest], targets[rest], task, label_noise=label_noise)
        nll_fit += _nll(logits[held], targets[held], task, t_k, label_noise)
        nll_one += _nll(logits[held], targets[held], task, 1.0, label_noise)
    nll_fit, nll_one = nll_fit / n, nll_one / n
    if nll_fit < nll_one:
        return TemperatureFit(fitted, fitted, nll_fit, nll_one, False)
    log.info(
        "calibration: T=%.2f fitted on val does not lower held-out NLL (%.4f vs %.4f at T=1); using T=1",
        fitted,
        nll_fit,
        nll_one,
    )
    return TemperatureFit(1.0, fitted, nll_fit, nll_one, True)


def fit_thresholds(probs: torch.Tensor, targets: torch.Tensor, default: float) -> torch.Tensor:
    """Per-label threshold maximising F1 on validation (multilabel); a label that val never
    shows keeps ``default`` (``task.threshold``)."""
    grid = torch.linspace(0.05, 0.95, 19)
    t = targets.bool()
    best = torch.full((probs.shape[1],), default)
    for k in range(probs.shape[1]):
        if not t[:, k].any():
            continue
        pred = probs[:, k : k + 1] >= grid  # (N, G)
        tp = (pred & t[:, k : k + 1]).sum(0).float()
        fp = (pred & ~t[:, k : k + 1]).sum(0).float()
        fn = (~pred & t[:, k : k + 1]).sum(0).float()
        f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
        best[k] = grid[int(f1.argmax())]
    return best
