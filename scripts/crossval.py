"""k-fold cross-validation of a recipe against careful labels: ``python scripts/crossval.py``.

The same as ``astro-exp crossval ...``; the code is in astro_exp/cli/crossval.py (``--help`` lists the settings).
"""

from astro_exp.cli.crossval import main

if __name__ == "__main__":
    main()
