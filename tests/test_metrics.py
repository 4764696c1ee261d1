"""The evaluation's numbers (aiornot.evaluation.metrics, aiornot.evaluation.robustness): metrics, bootstrap intervals, the per-group and robustness tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiornot.evaluation import metrics, robustness
from conftest import pictures


# ------------------------------------------------------------------------------ metrics
def test_tpr_at_fpr_uses_the_real_photos_for_the_threshold():
    labels = np.array([0] * 100 + [1] * 10)
    scores = np.concatenate([np.linspace(0, 0.9, 100), np.array([0.95] * 5 + [0.5] * 5)])
    assert metrics.tpr_at_fpr(labels, scores, 0.01) == 0.5  # only the 0.95s beat the top real score
    assert metrics.tpr_at_fpr(labels, scores, 0.05) == 0.5


def test_ece_is_zero_for_perfect_calibration_and_large_for_overconfidence():
    rng = np.random.default_rng(0)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert metrics.expected_calibration_error(y, p) < 0.02
    assert metrics.expected_calibration_error(y, (p > 0.5).astype(float)) > 0.2


def test_ece_matches_its_bins_and_the_reliability_diagram_uses_the_same_bins() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.05, 0.15, 0.55, 0.95, 0.92])
    share, predicted, observed = metrics.calibration_bins(labels, scores, bins=10)
    assert np.allclose(share, [0.2, 0.2, 0.2, 0.4]) and np.allclose(predicted, [0.05, 0.15, 0.55, 0.935]) and np.allclose(observed, [0, 0, 1, 1])
    assert metrics.expected_calibration_error(labels, scores) == pytest.approx(0.2 * 0.05 + 0.2 * 0.15 + 0.2 * 0.45 + 0.4 * 0.065)


def test_small_sample_warning():
    assert "wide" in metrics.too_small_to_conclude(np.array([0] * 20 + [1] * 30))
    assert metrics.too_small_to_conclude(np.array([0] * 200 + [1] * 200)) is None


# ------------------------------------------------------------------------------ intervals
def test_bootstrap_interval_contains_the_point_and_narrows_with_data():
    rng = np.random.default_rng(1)
    def auc_interval(n):
        labels = np.array([0, 1] * (n // 2))
        scores = labels * 0.5 + rng.random(n)
        point, low, high = metrics.bootstrap(labels, scores, lambda y, s: metrics.summary(y, s)["roc_auc"], rounds=200)
        assert low <= point <= high
        return high - low
    assert auc_interval(2000) < auc_interval(60)


def test_bootstrap_of_a_one_class_share_has_an_interval():
    labels, scores = np.zeros(40, int), np.r_[np.ones(4), np.zeros(36)]
    share = lambda y, s: float(np.mean(s >= 0.5))  # noqa: E731
    point, low, high = metrics.bootstrap(labels, scores, share, rounds=200, seed=1, both_classes=False)
    assert point == pytest.approx(0.1) and 0.0 <= low < 0.1 < high <= 0.3
    assert np.isnan(metrics.bootstrap(labels, scores, share, rounds=50)[1])  # the AUC-style default needs both classes


@pytest.mark.slow  # about 5 s: two bootstraps of 300 rounds
def test_paired_difference_detects_a_real_gap_and_not_a_fake_one():
    rng = np.random.default_rng(2)
    labels = np.array([0, 1] * 300)
    good = labels * 1.0 + rng.normal(0, 0.5, 600)
    weak = labels * 0.3 + rng.normal(0, 0.5, 600)
    auc = lambda y, s: metrics.summary(y, s)["roc_auc"]
    point, low, high = metrics.paired_difference(labels, good, weak, auc, rounds=300)
    assert point > 0 and low > 0
    twin = good + rng.normal(0, 1e-3, 600)
    point, low, high = metrics.paired_difference(labels, good, twin, auc, rounds=300)
    assert low <= 0 <= high


def test_metrics_with_intervals_gives_each_headline_metric_a_point_inside_its_interval() -> None:
    rng = np.random.default_rng(3)
    labels = np.array([0] * 150 + [1] * 150)
    scores = np.clip(np.concatenate([rng.normal(0.3, 0.15, 150), rng.normal(0.7, 0.15, 150)]), 0, 1)
    table = metrics.metrics_with_intervals(labels, scores, rounds=200, seed=0)
    assert list(table.index) == ["ROC AUC", "accuracy", "TPR @ 1% FPR", "TPR @ 5% FPR", "ECE"]
    assert table.loc["ROC AUC", "value"] == pytest.approx(metrics.roc_auc(labels, scores))
    assert table.loc["TPR @ 5% FPR", "value"] == pytest.approx(metrics.tpr_at_fpr(labels, scores, 0.05))
    assert 0.9 < table.loc["ROC AUC", "value"] < 0.99 and table.loc["accuracy", "value"] == pytest.approx(np.mean((scores >= 0.5) == labels))
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    widths = table["ci_high"] - table["ci_low"]
    assert widths.gt(0.001).all() and widths["ROC AUC"] < 0.1 and widths["TPR @ 1% FPR"] > widths["TPR @ 5% FPR"]  # 1 % of 150 is one photo
    # Resampling whole groups (here 20 sources) widens the AUC interval over resampling images.
    grouped = metrics.metrics_with_intervals(labels, scores, groups=np.repeat(np.arange(20), 15), rounds=200, seed=0)
    width = lambda t: t.loc["ROC AUC", "ci_high"] - t.loc["ROC AUC", "ci_low"]  # noqa: E731
    assert grouped.loc["ROC AUC", "value"] == table.loc["ROC AUC", "value"] and width(grouped) != width(table)


# ------------------------------------------------------------------------------ tables
def test_per_group_reports_images_mean_score_and_the_share_flagged_per_class() -> None:
    frame = pd.DataFrame({"generator": ["camera", "camera", "camera", "sdxl", "sdxl", None],
                          "label": [0, 0, 0, 1, 1, 1]})
    scores = np.array([0.1, 0.8, 0.2, 0.9, 0.4, 0.7])
    table = metrics.per_group(frame, scores, "generator", threshold=0.5).set_index("generator")
    assert list(table.index) == ["camera", "sdxl", "unknown"]  # real first, then by size; a missing name is "unknown"
    assert table.loc["camera", "images"] == 3 and table.loc["camera", "flagged_ai"] == pytest.approx(1 / 3)
    assert table.loc["camera", "mean_score"] == pytest.approx(1.1 / 3)
    assert table.loc["sdxl", "flagged_ai"] == 0.5 and table.loc["unknown", "flagged_ai"] == 1.0


def test_robustness_scores_every_model_on_every_changed_copy() -> None:
    images = [np.full((8, 8, 3), value, np.uint8) for value in (10, 20, 200, 250)]
    labels = np.array([0, 0, 1, 1])
    brightness = lambda batch: np.array([p.mean() / 255 for p in batch])  # noqa: E731 - a scorer reading brightness
    inverted = lambda batch: 1 - brightness(batch)  # noqa: E731
    table = robustness.robustness(images, labels, {"bright": brightness, "inverted": inverted},
                                {"original": lambda p: p, "negative": lambda p: 255 - p}, {"bright": 0.5})
    auc = table.set_index(["model", "condition"])["roc_auc"]
    assert len(table) == 4 and table["n"].eq(4).all()
    assert auc["bright", "original"] == 1.0 and auc["bright", "negative"] == 0.0  # the transform reached the scorer
    assert auc["inverted", "original"] == 0.0 and auc["inverted", "negative"] == 1.0
    accuracy = table.set_index(["model", "condition"])["accuracy"]
    assert accuracy["bright", "original"] == 1.0  # at its own threshold 0.5; "inverted" at the default 0.5: all wrong
    assert accuracy["inverted", "original"] == 0.0


def test_shared_scorers_compute_once_per_image_list():
    calls = []

    def both(images):
        calls.append(len(images))
        return {"fused": np.full(len(images), 0.7), "forensic": np.full(len(images), 0.2)}

    scorer_for = robustness.shared_scorers(both)
    images = pictures(4)
    assert scorer_for("fused")(images).tolist() == [0.7] * 4 and scorer_for("forensic")(images).tolist() == [0.2] * 4
    assert calls == [4]
    scorer_for("forensic")(images[:2])  # a new list is scored anew
    assert calls == [4, 2]


def test_roc_auc_matches_scikit_learn_with_ties_and_refuses_what_it_cannot_score() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for size in (2, 7, 50, 400):
        labels = rng.integers(0, 2, size)
        labels[:2] = [0, 1]
        scores = np.round(rng.random(size), 1)  # coarse scores: many ties
        assert metrics.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert metrics.roc_auc(np.array([3, 7, 7]), np.array([0.9, 0.1, 0.2])) == 0.0  # the larger label is positive
    assert np.isnan(metrics.roc_auc(np.ones(4), np.linspace(0, 1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="one score per label"):
        metrics.roc_auc(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
