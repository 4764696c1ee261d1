"""The notebooks' metric figures (aiornot.reporting.plots): each draws from labels and scores alone."""

from __future__ import annotations

import matplotlib
import numpy as np

from aiornot.reporting import plots

matplotlib.use("Agg")


def test_the_metric_figures_draw_one_line_or_matrix_per_model():
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])
    roc = plots.plot_roc_pr({"a": (labels, scores), "b": (labels, scores[::-1])})
    assert "AUC 0.750" in roc.axes[0].get_legend_handles_labels()[1][0]
    reliability = plots.plot_reliability({"a": (labels, scores)})
    assert "ECE" in reliability.axes[0].get_legend_handles_labels()[1][0]
    confusion = plots.plot_confusion(labels, scores, 0.5, "at 0.5")
    assert confusion.axes[0].get_title() == "at 0.5"
