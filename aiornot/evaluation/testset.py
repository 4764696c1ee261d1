"""The competition's test set, as the seed used it: its metrics when labels exist, a submission when not.

The seed study reports, on its held-out images, a per-class precision / recall / F1 table and a ROC
curve. The Hugging Face ``competitions/aiornot`` test split (43,442 images) ships without labels —
the competition kept them to score submissions — so on that split no metric can be computed, and
the honest output is the competition's own submission file (``id,label``) plus the reason.
:func:`seed_test_report` does whichever applies; :func:`report_from_scores` reads the scores that
:func:`aiornot.io.stream.score_table` streamed to Parquet, so the pixels are never loaded for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from aiornot.io.datasets import DatasetError

#: The seed's decision rule: the sigmoid output at 0.5.
SEED_THRESHOLD = 0.5
NO_LABELS = ("the test split has no labels (the competition keeps them to score submissions), so no metric "
             "can be shown; the predictions are written in the competition's submission form instead")


@dataclass
class TestReport:
    """The seed's test-set outputs: the metrics table and ROC when labelled, else a submission file."""

    n: int
    threshold: float
    table: pd.DataFrame | None = None  # per-class precision / recall / F1 / support (the seed's layout)
    roc_auc: float | None = None
    roc: pd.DataFrame | None = None  # fpr, tpr, threshold
    submission: Path | None = None
    reason: str | None = None  # why no metric is shown
    notes: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return self.table is not None

    def summary(self) -> str:
        """One line for a notebook or a log."""
        if self.labelled:
            return f"{self.n} test images: ROC AUC {self.roc_auc:.4f}, accuracy {self.table.loc['accuracy', 'f1-score']:.4f}"
        return f"{self.n} test images: {self.reason} ({self.submission})"


def seed_test_report(ids: Sequence[str], scores: Sequence[float], labels: Sequence[float] | None = None, *,
                     submission: str | Path = "submission.csv", threshold: float = SEED_THRESHOLD) -> TestReport:
    """The seed's table and ROC AUC when every image has a 0/1 label; otherwise write ``submission``.

    ``scores`` are P(AI); an image that could not be scored (NaN) is counted in ``notes``: it is
    left out of the metrics, and predicted 0 (real) in a submission, which must list every id.
    """
    ids, scores = np.asarray(ids, dtype=str), np.asarray(scores, dtype=np.float64)
    if len(ids) != len(scores):
        raise ValueError(f"{len(ids)} ids but {len(scores)} scores")
    if not len(ids):
        raise DatasetError("no test predictions: the score table is empty")
    report = TestReport(n=len(ids), threshold=threshold)
    missing = ~np.isfinite(scores)
    if missing.any():
        report.notes.append(f"{int(missing.sum())} images could not be scored (unreadable)")
    reason = _why_unlabelled(labels, len(ids))
    if reason is None:
        return _with_metrics(report, np.asarray(labels, dtype=np.float64)[~missing].astype(int), scores[~missing])
    report.reason, report.submission = reason, write_submission(ids, scores, submission, threshold=threshold)
    return report


def _why_unlabelled(labels: Sequence[float] | None, count: int) -> str | None:
    if labels is None:
        return NO_LABELS
    values = pd.to_numeric(pd.Series(np.asarray(labels, dtype=object)), errors="coerce")
    if len(values) != count:
        raise ValueError(f"{count} scores but {len(values)} labels")
    known = values.isin([0, 1])
    if not known.any():
        return NO_LABELS
    if not known.all():
        return f"{int((~known).sum())} of {count} test images have no 0/1 label, so the seed's metrics would be partial"
    return None


def _with_metrics(report: TestReport, labels: np.ndarray, scores: np.ndarray) -> TestReport:
    from sklearn.metrics import roc_curve

    from aiornot.evaluation.metrics import classification_table, roc_auc

    report.table = classification_table(labels, scores, threshold=report.threshold)
    report.roc_auc = roc_auc(labels, scores)
    if len(np.unique(labels)) == 2:
        fpr, tpr, cuts = roc_curve(labels, scores)
        report.roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": cuts})
    else:
        report.notes.append("one class only: ROC AUC is undefined")
    return report


def write_submission(ids: Sequence[str], scores: Sequence[float], path: str | Path, *, threshold: float = SEED_THRESHOLD) -> Path:
    """The competition's submission CSV: ``id,label`` with label 1 (AI) where P(AI) ≥ ``threshold``."""
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": list(ids), "label": (scores >= threshold).astype(int)}).to_csv(target, index=False)
    return target


def report_from_scores(scores_dir: str | Path, *, submission: str | Path | None = None,
                       threshold: float = SEED_THRESHOLD) -> TestReport:
    """:func:`seed_test_report` on scores streamed to Parquet by :func:`aiornot.io.stream.score_table`."""
    from aiornot.io.stream import UNLABELLED, read_scores

    frame = read_scores(scores_dir, columns=["id", "label", "score"])
    labels = frame["label"].where(frame["label"] != UNLABELLED)
    target = submission or Path(scores_dir).parent / "submission.csv"
    return seed_test_report(frame["id"], frame["score"], labels, submission=target, threshold=threshold)
