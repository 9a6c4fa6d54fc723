"""Rank the runs of run/multirun folders: ``python scripts/compare.py outputs/multirun/<date>/<time>``.

The same as ``astro-exp compare ...``; the code is in astro_exp/cli/compare.py (``--help`` lists the settings).
"""

import sys

from astro_exp.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
