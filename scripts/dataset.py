"""The data set: ``python scripts/dataset.py stats``, ``export out=x.tar.gz``, ``import bundle=...``, ...

The same as ``astro-exp dataset ...``; the code is in astro_exp/cli/dataset.py (``--help`` lists the settings).
"""

import sys

from astro_exp.cli.dataset import main

if __name__ == "__main__":
    sys.exit(main())
