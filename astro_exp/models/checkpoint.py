"""The checkpoint bundle: one self-describing file that predict, the web app and the
watcher need nothing beside.

It holds plain types and tensors only, so ``torch.load(weights_only=True)`` reads it:
model state dict, timm model name and kwargs, versions, classes and task, preprocessing
config and image size, calibration temperature (and multilabel thresholds), the training
config, the dataset fingerprint, metrics, the test-time flips to apply, and (in ``last.pt``)
the resume state.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from astro_exp import __version__
from astro_exp.errors import CheckpointError
from astro_exp.files import atomic_write

BUNDLE_FORMAT = "astro-exp-bundle"
BUNDLE_VERSION = 1
REQUIRED_KEYS = ("format", "version", "state_dict", "model", "classes", "task", "preprocess")
# keys of the model group that describe the config or the pretrained weights, not the
# architecture: everything else in a bundle's "model" goes to timm.create_model
NOT_TIMM_KWARGS = ("name", "mean", "std", "pretrained", "input_size")


def make_bundle(
    model: nn.Module,
    *,
    model_cfg: dict,
    classes: list[str],
    task: str,
    preprocess: dict,
    image_size: int,
    temperature: float = 1.0,
    thresholds: list[float] | None = None,
    config: dict | None = None,
    dataset_fingerprint: str = "",
    epoch: int = 0,
    metrics: dict[str, float] | None = None,
    resume: dict | None = None,
    tta: dict | None = None,
) -> dict[str, Any]:
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "state_dict": state,
        "model": dict(model_cfg),
        "classes": list(classes),
        "task": task,
        "preprocess": dict(preprocess),
        "image_size": int(image_size),
        "temperature": float(temperature),
        "thresholds": None if thresholds is None else [float(t) for t in thresholds],
        # test-time augmentation predict applies as training evaluated: {"hflip": bool}
        "tta": dict(tta or {}),
        "config": config or {},
        "dataset_fingerprint": dataset_fingerprint,
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
        "versions": {
            "astro_exp": __version__,
            "torch": str(torch.__version__),
            "timm": str(timm.__version__),
        },
        "resume": resume,
    }


def save_bundle(bundle: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (temp file, fsync, rename): a kill never leaves half a checkpoint."""
    return atomic_write(Path(path), lambda tmp: torch.save(bundle, tmp))


def load_bundle(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a bundle; every failure is a one-line :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} not found; pass ckpt_path=outputs/.../checkpoints/best.pt"
        )
    try:
        bundle = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as e:
        unpickler = [ln.strip() for ln in str(e).splitlines() if "Unpickler error" in ln]
        detail = unpickler[0].rsplit("error:", 1)[-1].strip() if unpickler else ""
        first = detail or "not a torch checkpoint"  # torch's own texts are multi-paragraph advice
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a torch file ({first[:200]})"
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise CheckpointError(f"{path} is not an astro-exp checkpoint bundle (made by train.py)")
    missing = [k for k in REQUIRED_KEYS if k not in bundle]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {missing}; it is damaged or from another tool"
        )
    if bundle["version"] > BUNDLE_VERSION:
        raise CheckpointError(
            f"checkpoint {path} is bundle v{bundle['version']}; upgrade astro-exp to read it"
        )
    return bundle


def model_from_bundle(bundle: dict[str, Any]) -> nn.Module:
    """Rebuild the model with the bundle's weights (no download: pretrained weights are in it)."""
    from astro_exp.models.factory import create_model

    cfg = {k: v for k, v in bundle["model"].items() if k not in NOT_TIMM_KWARGS}
    model = create_model(
        num_classes=len(bundle["classes"]),
        pretrained=False,
        img_size=bundle.get("image_size"),
        **cfg,
    )
    try:
        model.load_state_dict(bundle["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(
            f"checkpoint weights do not fit {cfg.get('model_name')} with {len(bundle['classes'])} classes "
            f"({str(e).splitlines()[0][:160]})"
        ) from None
    return model.eval()
