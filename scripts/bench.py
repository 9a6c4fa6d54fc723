"""Throughput figures as JSON: ``python scripts/bench.py model=tiny bench.steps=10``.

The same as ``astro-exp bench ...``; the code is in astro_exp/bench/ (``--help`` lists the
settings). ``scrape`` runs the scraper's benchmark instead (``astro-exp bench-scrape``,
scripts/bench_scrape.py).
"""

import sys

if __name__ == "__main__":
    args = sys.argv[1:]
    if "scrape" in args:
        from astro_exp.cli.bench.scrape import main

        main([a for a in args if a != "scrape"])
    else:
        from astro_exp.cli.bench import main

        main(args)
