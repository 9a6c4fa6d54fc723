"""What a person's corrections and anomaly marks are worth: ``python scripts/simulate_review.py``.

The same as ``astro-exp simulate-review ...``; the code is in astro_exp/cli/simulate_review.py (``--help`` lists the settings).
"""

from astro_exp.cli.simulate_review import main

if __name__ == "__main__":
    main()
