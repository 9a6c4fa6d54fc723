"""What an exact resume carries besides the weights: the loop's counters and the random
number generators' states (torch, NumPy, Python, CUDA), in a form ``torch.save`` keeps with
``weights_only`` loading (NumPy's key array as a tensor, tuples as lists)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import numpy as np
import torch


@dataclass
class FitState:
    """What an exact resume needs besides model, optimiser and scheduler."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_score: float | None = None
    best_epoch: int = -1
    es_best: float | None = None  # best early-stopping score so far
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)

    def to_resume(self) -> dict:
        """The counters as a last.pt's ``resume`` block keeps them."""
        return asdict(self)

    @classmethod
    def from_resume(cls, resume: dict) -> FitState:
        """The counters of a last.pt's ``resume`` block (older ones lack ``es_best``, ``history``)."""
        return cls(
            epoch=int(resume["epoch"]),
            global_step=int(resume["global_step"]),
            best_score=resume["best_score"],
            best_epoch=int(resume["best_epoch"]),
            es_best=resume.get("es_best"),
            bad_epochs=int(resume["bad_epochs"]),
            history=list(resume.get("history", [])),
        )


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_tuplify(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, list | tuple) else x
