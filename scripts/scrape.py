"""Fetch APOD days into the catalog: ``python scripts/scrape.py source=apod source.last_days=30``.

The same as ``astro-exp scrape ...``; the code is in astro_exp/cli/scrape.py (``--help`` lists the settings).
"""

from astro_exp.cli.scrape import main

if __name__ == "__main__":
    main()
