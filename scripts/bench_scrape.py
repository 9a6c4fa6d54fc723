"""APOD scraper figures, a table and JSON: ``python scripts/bench_scrape.py days=60 latency_ms=100 out=scrape.json``.

The same as ``astro-exp bench-scrape ...``; the code is in astro_exp/bench/scraper.py (``--help`` lists the settings).
"""

from astro_exp.cli.bench.scrape import main

if __name__ == "__main__":
    main()
