"""Gallery response time with a large catalog: ``python scripts/bench_web.py rows=50000``.

The same as ``astro-exp bench-web ...``; the code is in astro_exp/bench/web_gallery.py (``--help`` lists the settings).
"""

from astro_exp.cli.bench.web import main

if __name__ == "__main__":
    main()
