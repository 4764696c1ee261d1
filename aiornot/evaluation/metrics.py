"""Evaluation metrics: the seed's (ROC AUC, accuracy, per-class report), what an ID office needs (TPR at a low
FPR on real photos, calibration), per-source/generator tables and bootstrap confidence intervals.

Every function takes plain arrays (labels 0/1, scores = P(AI)), so the seed's CNN and our detector are
measured by the same code.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from aiornot.contract.scoring import threshold_at_fpr

FPR_TARGETS = (0.01, 0.05)


# ------------------------------------------------------------------------------ point metrics
def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, or NaN when only one class is present (a fold or a bootstrap draw can lack one).

    The Mann–Whitney form (average ranks for ties): the same value as ``sklearn.metrics.roc_auc_score``
    without its input validation, which dominated the bootstrap's thousands of calls per fold.
    The larger label is the positive class, as in scikit-learn.
    """
    from scipy.stats import rankdata

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or scores.ndim != 1:
        raise ValueError(f"roc_auc needs one score per label, got {labels.shape} labels and {scores.shape} scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError("roc_auc: the scores contain NaN or infinity")
    classes = np.unique(labels)
    if len(classes) != 2:
        return float("nan")
    positive = labels == classes[1]
    positives, negatives = int(positive.sum()), int((~positive).sum())
    rank_sum = float(rankdata(scores)[positive].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Share of AI images caught when at most ``fpr`` of real photos are flagged.

    The threshold is set on the real photos themselves (the strictest reading): the smallest
    score that no more than ``fpr`` of them reach.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    real, fake = scores[labels == 0], scores[labels == 1]
    if not len(real) or not len(fake):
        return float("nan")
    return float(np.mean(fake >= threshold_at_fpr(real, fpr)))


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """ECE: the gap between predicted P(AI) and the observed AI share, averaged over equal-width bins."""
    share, predicted, observed = calibration_bins(labels, scores, bins)
    return float(np.sum(share * np.abs(predicted - observed)))


def calibration_bins(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins of predicted P(AI): each non-empty bin's share of images, mean score and AI share."""
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    present = [b for b in range(bins) if np.any(which == b)]
    share = np.array([np.mean(which == b) for b in present])
    predicted = np.array([scores[which == b].mean() for b in present])
    observed = np.array([labels[which == b].mean() for b in present])
    return share, predicted, observed


def summary(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """ROC AUC, average precision, accuracy at ``threshold``, TPR at 1 %/5 % FPR, ECE, Brier."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    both = len(np.unique(labels)) == 2
    result = {
        "n": int(len(labels)),
        "roc_auc": roc_auc(labels, scores),
        "average_precision": float(skm.average_precision_score(labels, scores)) if both else float("nan"),
        "accuracy": float(np.mean((scores >= threshold) == labels)),
        "ece": expected_calibration_error(labels, scores),
        "brier": float(np.mean((scores - labels) ** 2)),
    }
    for fpr in FPR_TARGETS:
        result[f"tpr_at_fpr_{fpr:g}"] = tpr_at_fpr(labels, scores, fpr)
    return result


def classification_table(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> pd.DataFrame:
    """The seed's per-class table: precision, recall, F1, support; accuracy; macro/weighted avg."""
    report = skm.classification_report(
        labels, (np.asarray(scores) >= threshold).astype(int), labels=[0, 1],
        target_names=["real (0)", "AI (1)"], output_dict=True, zero_division=0,
    )
    table = pd.DataFrame(report).T
    table.loc["accuracy", ["precision", "recall", "support"]] = [np.nan, np.nan, table.loc["macro avg", "support"]]
    table["support"] = table["support"].astype(int)
    return table.round(4)


# --------------------------------------------------------------------------------- intervals
def bootstrap(
    labels: np.ndarray,
    scores: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    groups: np.ndarray | None = None,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    both_classes: bool = True,
) -> tuple[float, float, float]:
    """Point estimate and percentile interval of ``metric``, resampling whole groups if given.

    Resampling by source (photo/person) rather than by image gives honest intervals when one
    source contributed several images.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)  # scores may be 2-D (paired)
    point = float(metric(labels, scores))
    rng = np.random.default_rng(seed)
    units = np.unique(groups) if groups is not None else np.arange(len(labels))
    members = [np.flatnonzero(groups == u) for u in units] if groups is not None else [np.array([i]) for i in units]
    values = []
    for _ in range(rounds):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(units), len(units))])
        if both_classes and len(np.unique(labels[picked])) < 2:  # AUC-like metrics need both; a share of one class does not
            continue
        values.append(metric(labels[picked], scores[picked]))
    values = np.asarray([v for v in values if np.isfinite(v)])
    if not len(values):
        return point, float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    return point, float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def paired_difference(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    groups: np.ndarray | None = None,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """``metric(a) − metric(b)`` with a paired bootstrap interval: both models are scored on the
    same resampled groups each round, so the interval reflects the difference, not two noises.
    An interval that excludes 0 means the sample supports a real difference."""
    stacked = np.column_stack([scores_a, scores_b])

    def difference(y: np.ndarray, both: np.ndarray) -> float:
        return float(metric(y, both[:, 0]) - metric(y, both[:, 1]))

    return bootstrap(labels, stacked, difference, groups=groups, rounds=rounds, seed=seed, level=level)


def metrics_with_intervals(labels: np.ndarray, scores: np.ndarray, *, groups: np.ndarray | None = None,
                           threshold: float = 0.5, rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The headline metrics with 95 % bootstrap intervals, one row each."""
    named: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "ROC AUC": roc_auc,
        "accuracy": lambda y, s: float(np.mean((s >= threshold) == y)),
        "TPR @ 1% FPR": lambda y, s: tpr_at_fpr(y, s, 0.01),
        "TPR @ 5% FPR": lambda y, s: tpr_at_fpr(y, s, 0.05),
        "ECE": expected_calibration_error,
    }
    rows = []
    for name, metric in named.items():
        point, low, high = bootstrap(labels, scores, metric, groups=groups, rounds=rounds, seed=seed)
        rows.append({"metric": name, "value": point, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows).set_index("metric")


def too_small_to_conclude(labels: np.ndarray, *, minimum_per_class: int = 100) -> str | None:
    """A plain warning when a class has fewer than ``minimum_per_class`` images; ``None`` otherwise."""
    counts = np.bincount(np.asarray(labels), minlength=2)
    if counts.min() >= minimum_per_class:
        return None
    return (f"Only {counts[0]} real and {counts[1]} AI images are held out: the intervals are wide and "
            "the numbers describe this demo sample, not detection in general. TPR at 1 % FPR needs at "
            f"least 100 real photos to be measured at all; here one real photo is {100 / max(counts[0], 1):.1f} % FPR.")


# --------------------------------------------------------------------------- per group & sets
def per_group(frame: pd.DataFrame, scores: np.ndarray, column: str, threshold: float) -> pd.DataFrame:
    """Per generator/source: images, share flagged AI at ``threshold`` (detection rate for AI
    groups, false-positive rate for real ones) and mean score."""
    table = pd.DataFrame({column: frame[column].fillna("unknown").to_numpy(), "label": frame["label"].to_numpy(), "score": scores})
    grouped = table.groupby([column, "label"])
    result = grouped.agg(images=("score", "size"), mean_score=("score", "mean"))
    result["flagged_ai"] = grouped["score"].apply(lambda s: float(np.mean(s >= threshold)))
    return result.reset_index().sort_values(["label", "images"], ascending=[True, False]).reset_index(drop=True)
