"""Serve the web app: ``python scripts/serve.py ckpt_path=outputs/.../checkpoints/best.pt``.

The same as ``astro-exp serve ...``; the code is in astro_exp/cli/serve.py (``--help`` lists the settings).
"""

from astro_exp.cli.serve import main

if __name__ == "__main__":
    main()
