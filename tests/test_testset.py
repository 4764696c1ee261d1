"""The test set as the seed used it: its table and ROC AUC when labelled, a submission CSV when not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiornot.evaluation import testset
from aiornot.io.datasets import DatasetError


def test_labelled_test_set_gets_the_seeds_table_and_roc(tmp_path):
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    scores = np.array([0.1, 0.4, 0.6, 0.7, 0.9, 0.2, 0.8, np.nan])
    report = testset.seed_test_report([f"{i}.jpg" for i in range(8)], scores, labels, submission=tmp_path / "s.csv")
    assert report.labelled and report.submission is None and report.reason is None
    # 7 scored images; at 0.5: real 0.1, 0.4 right, 0.6 wrong; AI 0.7, 0.9, 0.8 right, 0.2 wrong.
    assert report.table.loc["real (0)", "precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert report.table.loc["AI (1)", "recall"] == pytest.approx(3 / 4, abs=1e-4)
    assert report.table.loc["accuracy", "f1-score"] == pytest.approx(5 / 7, abs=1e-4)
    assert report.roc_auc == pytest.approx(10 / 12)
    assert report.roc["tpr"].iloc[-1] == 1.0 and report.notes == ["1 images could not be scored (unreadable)"]
    assert not (tmp_path / "s.csv").exists()


def test_unlabelled_test_set_writes_the_submission_and_says_why(tmp_path):
    ids = ["a.jpg", "b.jpg", "c.jpg"]
    report = testset.seed_test_report(ids, [0.2, 0.5, np.nan], None, submission=tmp_path / "out" / "submission.csv")
    assert not report.labelled and "no labels" in report.reason and "no labels" in report.summary()
    written = pd.read_csv(report.submission)
    assert list(written.columns) == ["id", "label"]
    assert written.to_dict("list") == {"id": ids, "label": [0, 1, 0]}


def test_partly_labelled_is_not_reported_as_metrics(tmp_path):
    report = testset.seed_test_report(["a", "b"], [0.1, 0.9], [0, None], submission=tmp_path / "s.csv")
    assert not report.labelled and "1 of 2" in report.reason and report.submission.exists()


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        testset.seed_test_report([], [], None)
    with pytest.raises(ValueError, match="2 ids but 1 scores"):
        testset.seed_test_report(["a", "b"], [0.5])


def test_report_from_streamed_scores(tmp_path):
    folder = tmp_path / "scores"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["x", "y"], "label": [-1, -1], "score": [0.9, 0.1]}), folder / "part-000000000-1.parquet")
    report = testset.report_from_scores(folder)
    assert report.submission == tmp_path / "submission.csv"
    assert pd.read_csv(report.submission)["label"].tolist() == [1, 0]
