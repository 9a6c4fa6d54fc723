"""Training loop, evaluation and calibration."""
