"""Every anomaly detector on one run's cached embeddings: ``python scripts/compare_detectors.py RUN_DIR``.

The same as ``astro-exp compare-detectors ...``; the code is in astro_exp/cli/compare_detectors.py (``--help`` lists the settings).
"""

import sys

from astro_exp.cli.compare_detectors import main

if __name__ == "__main__":
    sys.exit(main())
