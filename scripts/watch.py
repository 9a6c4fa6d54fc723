"""Watch APOD for new days, classify them, alert: ``python scripts/watch.py ckpt_path=... --once``.

The same as ``astro-exp watch ...``; the code is in astro_exp/cli/watch.py (``--help`` lists the settings).
"""

from astro_exp.cli.watch import main

if __name__ == "__main__":
    main()
