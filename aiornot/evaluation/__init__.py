"""Measuring: metrics with intervals, the leave-out and cross-curation protocol, robustness and
saliency, the held-out test set, and the audit of a dataset's format/size leaks."""
