"""Fitting: the seed CNN and the experts, the streamed feed for full-size runs, and the out-of-source
fits (cross-fitted fusion, calibration and thresholds) that decide the verdict."""
