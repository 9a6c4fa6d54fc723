"""Classify pictures with a trained bundle: ``python scripts/predict.py ckpt_path=... inputs=[a.jpg,pics/]``.

The same as ``astro-exp predict ...``; the code is in astro_exp/cli/predict.py (``--help`` lists the settings).
"""

from astro_exp.cli.predict import main

if __name__ == "__main__":
    main()
