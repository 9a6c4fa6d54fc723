"""The archive study (issue #22): which label lever makes the APOD archive help the picture
model: ``python scripts/archive_study.py`` (``--help`` lists the settings; docs/archive.md
has the table and the protocol). The code is in astro_exp/crossval/archive_probe.py (the
command line) and the archive_*.py modules beside it.

One CPU thread on purpose: the study shares the machine with training runs, and a linear
probe on cached features needs no more.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from astro_exp.crossval.archive_probe import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
