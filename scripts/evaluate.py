"""Score a checkpoint against a labelled folder: ``python scripts/evaluate.py ckpt_path=... labels=x.csv root=pics/``.

The same as ``astro-exp evaluate ...``; the code is in astro_exp/cli/evaluate.py (``--help`` lists the settings).
"""

from astro_exp.cli.evaluate import main

if __name__ == "__main__":
    main()
