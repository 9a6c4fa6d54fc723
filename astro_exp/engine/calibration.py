"""Post-hoc calibration fitted on validation data: temperature scaling (Guo et al. 2017)
and, for multilabel, per-label decision thresholds."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_temperature(
    logits: torch.Tensor, targets: torch.Tensor, task: str, max_iter: int = 100, prior_sigma: float = 1.0
) -> float:
    """The temperature T > 0 minimising validation NLL of ``logits / T`` plus a weak
    log-normal prior on T centred at 1 (``prior_sigma`` in log units, weighing like one
    picture against all of val).

    Why the prior: when the model makes no mistake on val, the NLL keeps falling as T -> 0
    and plain temperature scaling makes every prediction ~100% sure, of a picture from
    another domain too. The prior stops that where val gives no evidence (T stays well above
    the 0.01 bound) and barely moves a fit that val has evidence for.
    """
    logits = logits.detach().float()
    n = max(len(logits), 1)
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        opt.zero_grad()
        z = logits / log_t.exp()
        if task == "multiclass":
            loss = F.cross_entropy(z, targets.long())
        else:
            loss = F.binary_cross_entropy_with_logits(z, targets.float())
        loss = loss + (log_t**2).sum() / (2 * prior_sigma**2 * n)
        loss.backward()
        return loss

    opt.step(nll)
    t = float(log_t.exp().item())
    if t != t:  # NaN: a degenerate val set, keep the model as it is
        return 1.0
    return min(max(t, 0.01), 100.0)


def fit_thresholds(probs: torch.Tensor, targets: torch.Tensor, default: float = 0.5) -> torch.Tensor:
    """Per-label threshold maximising F1 on validation (multilabel)."""
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
