"""The CUDA path: bf16 autocast, channels_last, pinned memory and torch.compile on a GPU.

CI has no GPU; these run wherever CUDA is visible (e.g. `pytest -m gpu` on a GPU box)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from astro_exp.train import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (CI has no GPU)"),
]


@pytest.mark.parametrize("compile_model", [False, True])
def test_train_on_cuda_with_amp_and_channels_last(
    make_cfg, tmp_path: Path, compile_model: bool
) -> None:
    cfg = make_cfg(
        [
            "debug=fast",
            "trainer.accelerator=cuda",
            "trainer.precision=bf16",
            "trainer.channels_last=true",
            "trainer.pin_memory=true",
            f"trainer.compile={compile_model}",
        ],
        run_dir=tmp_path / "gpu",
    )
    metrics = train(cfg)
    assert 0.0 <= metrics["test/f1_macro"] <= 1.0
    saved = json.loads((tmp_path / "gpu" / "metrics.json").read_text())
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"])
