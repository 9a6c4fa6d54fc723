"""Device, precision and memory-format choices: the fast path where it was measured."""

from __future__ import annotations

import contextlib

import torch

from astro_exp.errors import ConfigError


def resolve_device(accelerator: str = "auto") -> torch.device:
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "trainer.accelerator=cuda but no CUDA device is visible; use trainer.accelerator=auto"
        )
    if accelerator not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"trainer.accelerator={accelerator!r} must be auto, cpu, cuda or mps")
    return torch.device(accelerator)


def resolve_flag(value, device: torch.device) -> bool:
    """``auto`` -> on for CUDA only (bf16 autocast and channels_last help there, not on CPU)."""
    return device.type == "cuda" if value in ("auto", None) else bool(value)


def autocast(device: torch.device, precision: str):
    if precision not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"trainer.precision={precision!r} must be auto, bf16 or fp32")
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
