"""Throughput figures as JSON: ``python scripts/bench.py model=tiny bench.steps=10``
(``astro-exp bench ...``; the code is in astro_exp/cli/bench/). ``scrape``
runs the scraper's benchmark instead, scripts/bench_scrape.py, which needs the checkout's stand-in.
"""

import sys

if __name__ == "__main__":
    args = sys.argv[1:]
    if "scrape" in args:
        from bench_scrape import cli  # scripts/ is sys.path[0]

        cli([a for a in args if a != "scrape"])
    else:
        from astro_exp.cli.bench import main

        main(args)
