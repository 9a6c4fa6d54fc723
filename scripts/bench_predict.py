"""Prediction and anomaly-detector timings as JSON: ``python scripts/bench_predict.py model=tiny``.

The same as ``astro-exp bench bench.predict_only=true ...``; the code is in
astro_exp/bench/latency.py (``--help`` lists the settings).
"""

import sys

from astro_exp.bench.latency import detector_figures, predict_figures
from astro_exp.cli.bench import main

__all__ = ["detector_figures", "predict_figures"]

if __name__ == "__main__":
    main(["bench.predict_only=true", *sys.argv[1:]])
