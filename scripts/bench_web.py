"""Gallery response time with a large catalog: ``python scripts/bench_web.py rows=50000``
(the code is in astro_exp/cli/bench/gallery.py; ``--help`` lists the settings).
"""

from astro_exp.cli.bench.gallery import main

if __name__ == "__main__":
    main()
