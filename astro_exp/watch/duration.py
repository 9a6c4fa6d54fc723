"""Durations in config as people write them: ``30s``, ``5m``, ``1h``, ``1.5h``, ``2d`` or seconds."""

from __future__ import annotations

import re

from astro_exp.errors import ConfigError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)?\s*$", re.IGNORECASE)


def parse_duration(value: object, name: str = "duration") -> float:
    """Seconds of ``value`` (a number is seconds); a one-line ConfigError otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not a duration; write e.g. 30s, 5m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _RE.match(str(value))
        if m is None:
            raise ConfigError(f"{name}={value!r} is not a duration; write e.g. 30s, 5m, 1h, 1d")
        seconds = float(m.group(1)) * _UNITS[(m.group(2) or "s").lower()]
    if seconds < 0:
        raise ConfigError(f"{name}={value!r} must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """``3600`` -> ``1h``, ``90`` -> ``1m30s``, ``0.25`` -> ``0.25s`` (for log lines)."""
    if seconds < 60:
        return f"{seconds:g}s"
    s = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts)
