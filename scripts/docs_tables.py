"""Render the docs' marked tables from the JSON the commands wrote: ``python scripts/docs_tables.py [check=true]``.

The same as ``astro-exp docs-tables ...``; the code is in astro_exp/cli/docs_tables.py (``--help`` lists the settings).
"""

import sys

from astro_exp.cli.docs_tables import main

if __name__ == "__main__":
    sys.exit(main())
