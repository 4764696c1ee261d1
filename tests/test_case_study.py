"""The ID-photo case study's stored summary (aiornot.evaluation.case_study, notebook 04)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from aiornot.contract.config import load_config
from aiornot.evaluation import case_study, metrics
from aiornot.reporting import model_card


def measured() -> dict:
    """Notebook 04's tables, tiny: four portraits, two views, two life conditions, one padded photo per class."""
    labels = np.array([0, 0, 1, 1])
    views = {"whole photo": np.array([0.1, 0.7, 0.9, 0.8]), "face crop (whole if none)": np.array([0.2, 0.3, 0.4, 0.9])}
    comparison = pd.concat({name: metrics.metrics_with_intervals(labels, s, rounds=20, seed=0) for name, s in views.items()}, axis=1)
    life = pd.DataFrame({"condition": ["as submitted", "as submitted", "JPEG q70", "JPEG q70"], "class": ["real", "AI", "real", "AI"],
                         "flagged ai": [0.5, 1.0, 0.25, np.float64(0.75)]})
    padding = pd.DataFrame({"label": ["real", "AI"], "forensic, edge-padded": [0.61234, 0.9], "forensic, cut to the image": [0.4, 0.8]})
    face_audit = pd.DataFrame({"portraits": [10], "none": [1], "one": [8], "more": [1]}, index=["all"])
    training = pd.DataFrame({"label": [0, 0, 0, 0, 1, 1], "portrait": [True, False, False, False, True, True]})
    return dict(labels=labels, has_face=np.array([True, False, True, True]), views=views, comparison=comparison, life=life,
                warning="only 2 real", fusion_rule="P(AI) = σ(…)", padding=padding, face_audit=face_audit,
                training_split=training, threshold=0.6)


def test_the_summary_holds_each_view_the_shares_flagged_and_the_portrait_gap_in_training():
    summary = case_study.case_study_summary(**measured())
    assert (summary["portraits"], summary["real"], summary["ai"], summary["faces_found"]) == (4, 2, 2, 3)
    assert summary["best_view"] == "whole photo"
    assert set(summary["views"]["whole photo"]) == {"ROC AUC", "TPR @ 5% FPR"} and summary["views"]["whole photo"]["ROC AUC"]["value"] == 1.0
    assert summary["real_flagged"] == {"whole photo": 0.5, "face crop (whole if none)": 0.0}
    assert summary["ai_flagged"] == {"whole photo": 1.0, "face crop (whole if none)": 0.5}
    assert summary["id_frame_life"] == {"as submitted": {"real_flagged": 0.5, "ai_flagged": 1.0},
                                        "JPEG q70": {"real_flagged": 0.25, "ai_flagged": 0.75}}
    assert summary["padding"]["real"] == {"forensic, edge-padded": 0.6123, "forensic, cut to the image": 0.4, "photos": 1}
    assert summary["face_detection"] == {"portraits": 10, "none": 1, "one": 8, "more": 1}
    assert summary["training_portrait_share"] == {"real": 0.25, "ai": 1.0}
    assert case_study.case_study_summary(**(measured() | {"padding": None}))["padding"] is None


def test_the_stored_summary_reaches_detector_json_and_the_card(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    case_study.store_case_study(model_dir, case_study.case_study_summary(**measured()))
    config = load_config(model_dir / "detector.json")[0]
    assert config.id_photo_case_study.real_flagged["whole photo"] == 0.5
    card = model_card.render(config)
    assert "4 held-out portraits (2 real, 2 AI); a face was found in 3" in card
    assert "100% of the AI images are portraits against 25% of the real photos" in card
