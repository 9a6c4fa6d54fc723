"""``astro-exp archive-study`` (``python scripts/archive_study.py``): which label lever makes the
APOD archive help the picture model (docs/archive.md has the table and the protocol). The code
is :mod:`astro_exp.crossval.archive_probe`; its command line is argparse's (``--help``), not
Hydra's.

One CPU thread on purpose: the study shares the machine with training runs, and a linear
probe on cached features needs no more; the thread settings are made before numpy and torch
are imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study with ``argv`` (default: the command line); its exit status."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    from astro_exp.crossval.archive_probe import main as study

    return study(argv)


if __name__ == "__main__":
    raise SystemExit(main())
