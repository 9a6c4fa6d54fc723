"""A contact sheet of the synthetic sky renderer: ``python scripts/contact_sheet.py out=sheet.png``.

The same as ``astro-exp contact-sheet ...``; the code is in astro_exp/cli/contact_sheet.py (``--help`` lists the settings).
"""

import sys

from astro_exp.cli.contact_sheet import main

if __name__ == "__main__":
    sys.exit(main())
