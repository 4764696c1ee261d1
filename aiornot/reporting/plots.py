"""Figures that show images: grids per class, galleries with scores (thumbnails and overlays: :mod:`aiornot.io.display`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from aiornot.io.display import overlay, thumbnail  # noqa: F401 (overlay: the notebooks call plots.overlay)
from aiornot.io.decode import ImageDecodeError, open_image

if TYPE_CHECKING:  # pandas and matplotlib load only where a figure is drawn
    import pandas as pd


def image_grid(frame: "pd.DataFrame", *, per_row: int = 6, rows: int = 2, title: str = "", caption_column: str | None = "generator"):
    """A grid of thumbnails from ``frame`` (first rows), captioned by ``caption_column``."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from aiornot.io.datasets import image_source

    count = min(len(frame), per_row * rows)
    figure, axes = plt.subplots(rows, per_row, figsize=(per_row * 1.9, rows * 2.1))
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, (_, row) in zip(np.ravel(axes), frame.head(count).iterrows()):
        try:
            axis.imshow(thumbnail(open_image(image_source(row)).pixels))
        except ImageDecodeError as error:
            axis.text(0.5, 0.5, f"unreadable:\n{error.code}", ha="center", va="center", fontsize=8)
        if caption_column and caption_column in row and pd.notna(row[caption_column]):
            axis.set_title(str(row[caption_column])[:22], fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save(figure, directory: str | Path, name: str) -> Path:
    """Save a figure as PNG under ``directory`` (created if needed); returns the path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def gallery_html(rows: Sequence[dict], thumbs: Sequence[np.ndarray]) -> str:
    """An HTML table with inline thumbnails (the seed's '실제 이미지 결과' table as a gallery)."""
    import base64
    import html
    import io

    from PIL import Image

    cells = []
    for row, thumb in zip(rows, thumbs):
        buffer = io.BytesIO()
        Image.fromarray(thumb).save(buffer, format="PNG")
        image = f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}" width="96">'
        values = "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values())
        cells.append(f"<tr><td>{image}</td>{values}</tr>")
    header = "".join(f"<th>{html.escape(str(k))}</th>" for k in (rows[0].keys() if rows else []))
    return f'<table><thead><tr><th>image</th>{header}</tr></thead><tbody>{"".join(cells)}</tbody></table>'


# ------------------------------------------------------------------- metric figures (notebook 03)
def plot_roc_pr(results: dict[str, tuple[np.ndarray, np.ndarray]]):
    """ROC (with the 1 %/5 % FPR lines) and precision–recall curves, one line per model."""
    import matplotlib.pyplot as plt
    from sklearn import metrics as skm

    from aiornot.evaluation.metrics import FPR_TARGETS

    figure, (roc_axis, pr_axis) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, (labels, scores) in results.items():
        fpr, tpr, _ = skm.roc_curve(labels, scores)
        roc_axis.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(labels, scores):.3f})")
        precision, recall, _ = skm.precision_recall_curve(labels, scores)
        pr_axis.plot(recall, precision, label=f"{name} (AP {skm.average_precision_score(labels, scores):.3f})")
    for target in FPR_TARGETS:
        roc_axis.axvline(target, color="grey", linestyle=":", linewidth=1)
    roc_axis.plot([0, 1], [0, 1], color="lightgrey", linestyle="--")
    roc_axis.set(xlabel="false-positive rate (real photos flagged)", ylabel="true-positive rate (AI caught)", title="ROC")
    pr_axis.set(xlabel="recall (AI caught)", ylabel="precision", title="Precision–recall")
    for axis in (roc_axis, pr_axis):
        axis.legend(loc="lower right" if axis is roc_axis else "lower left")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_confusion(labels: np.ndarray, scores: np.ndarray, threshold: float, title: str, axis=None):
    """Confusion matrix (counts and row shares) at ``threshold``."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from sklearn import metrics as skm

    matrix = skm.confusion_matrix(labels, (np.asarray(scores) >= threshold).astype(int), labels=[0, 1])
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    annotations = np.array([[f"{matrix[i, j]}\n{shares[i, j]:.0%}" for j in range(2)] for i in range(2)])
    if axis is None:
        _, axis = plt.subplots(figsize=(4, 3.5))
    sns.heatmap(shares, annot=annotations, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=axis,
                xticklabels=["real", "AI"], yticklabels=["real", "AI"])
    axis.set(xlabel="predicted", ylabel="actual", title=title)
    return axis.figure


def plot_reliability(results: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 10):
    """Reliability diagram: predicted P(AI) against the observed AI share, per model, with ECE."""
    import matplotlib.pyplot as plt

    from aiornot.evaluation.metrics import calibration_bins, expected_calibration_error

    figure, axis = plt.subplots(figsize=(5, 4.5))
    for name, (labels, scores) in results.items():
        _, predicted, observed = calibration_bins(labels, scores, bins)
        axis.plot(predicted, observed, marker="o", label=f"{name} (ECE {expected_calibration_error(labels, scores, bins):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    axis.set(xlabel="predicted P(AI)", ylabel="observed share of AI images", title="Reliability", xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="upper left")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_robustness(table: pd.DataFrame, metric: str = "roc_auc"):
    """One bar group per condition, one bar per model."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, axis = plt.subplots(figsize=(9, 3.8))
    sns.barplot(data=table, x="condition", y=metric, hue="model", ax=axis)
    axis.set(ylim=(0, 1), ylabel=metric.replace("_", " "), xlabel="")
    axis.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return figure
