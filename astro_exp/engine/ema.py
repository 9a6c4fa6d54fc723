"""An exponential moving average of the weights (``trainer.ema_decay``), on timm's ModelEmaV3.

Why: with weak labels every step also fits some wrong ones; the average over the last few
hundred steps smooths what single batches of wrong labels push the weights towards. It
starts when the backbone starts training (after ``trainer.freeze_backbone_epochs``): until
then it is a copy, so the random starting head is not in it. Decay 0.995 averages over
about 200 steps (two epochs of the archive at batch 64).

The average is what is scored and saved as the model: ``swapped_in`` puts it into the live
model for the val pass and best.pt, then puts the trained weights back to train on. last.pt
keeps the live weights with the average in its resume state, so a resumed run continues both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from timm.utils import ModelEmaV3
from torch import nn

from astro_exp.errors import ConfigError


def make_ema(model: nn.Module, decay: float, start_step: int = 0) -> ModelEmaV3 | None:
    """The weight average of ``model`` (None when ``decay`` is 0: off).

    Args:
        model: the model being trained (a copy is averaged; the model is not changed).
        decay: the per-step decay, in [0, 1); 0 turns the average off.
        start_step: the optimiser step the averaging starts after (a copy until then).

    Returns:
        timm's ``ModelEmaV3``, or None.

    Example:
        >>> from torch import nn
        >>> make_ema(nn.Linear(2, 2), 0.0) is None
        True
        >>> make_ema(nn.Linear(2, 2), 0.99).decay
        0.99
    """
    decay = float(decay)
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"trainer.ema_decay={decay} must be in [0, 1); 0 turns the average off")
    if decay == 0.0:
        return None
    return ModelEmaV3(model, decay=decay, update_after_step=int(start_step))


@contextmanager
def swapped_in(model: nn.Module, ema: ModelEmaV3 | None) -> Iterator[None]:
    """Inside the block ``model`` holds the average's weights; after it, its own again.

    Args:
        model: the live model.
        ema: its average (None: nothing is swapped).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Linear(1, 1, bias=False)
        >>> avg = make_ema(net, 0.9)
        >>> with torch.no_grad():
        ...     _ = net.weight.fill_(1.0)
        >>> with swapped_in(net, avg):
        ...     inside = net.weight.item() == avg.module.weight.item()
        >>> inside, net.weight.item()
        (True, 1.0)
    """
    if ema is None:
        yield
        return
    live = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(ema.module.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(live)
