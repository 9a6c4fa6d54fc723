"""Prediction and anomaly-detector timings as JSON: ``python scripts/bench_predict.py model=tiny``
(the same as ``astro-exp bench bench.predict_only=true ...``; the code is in astro_exp/cli/bench/latency.py).
"""

import sys

from astro_exp.cli.bench import main
from astro_exp.cli.bench.latency import detector_figures, predict_figures

__all__ = ["detector_figures", "predict_figures"]

if __name__ == "__main__":
    main(["bench.predict_only=true", *sys.argv[1:]])
