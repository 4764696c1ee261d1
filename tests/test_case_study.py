"""The ID-photo case study's stored summary (aiornot.evaluation.case_study, notebook 04)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aiornot.contract.config import load_config
from aiornot.contract.result import CaveatRecord, Result
from aiornot.evaluation import case_study, metrics
from aiornot.io.decode import open_image
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
                caveats=case_study.caveat_outcomes({"file as submitted": served(["real", "ai", "ai", "real"], [False, False, False, True])},
                                                   labels),
                warning="only 2 real", fusion_rule="P(AI) = σ(…)", padding=padding, face_audit=face_audit,
                training_split=training, threshold=0.6)


def served(verdicts: list[str], caveated: list[bool]) -> list[Result]:
    """The service's Results with these verdicts, the caveated ones carrying the strong-JPEG caveat."""
    caveat = CaveatRecord(code="strong_jpeg", text="compressed", text_ko="압축")
    return [Result(path=f"{i}.jpg", score=0.5, verdict=verdict, model="m", caveats=[caveat] if shown else [])
            for i, (verdict, shown) in enumerate(zip(verdicts, caveated))]


def test_caveat_outcomes_count_per_class_what_the_officer_sees():
    labels = np.array([0, 0, 1, 1, 1, 1])
    outcomes = case_study.caveat_outcomes(
        {"q70": served(["real", "inconclusive", "ai", "real", "real", "inconclusive"], [True, False, False, True, False, True])}, labels)
    by_class = outcomes.set_index("class")
    assert by_class.loc["real", ["photos", "called ai", "caveat shown", "neither"]].tolist() == [2, 0.0, 0.5, 0.5]
    # Of four AI photos: one called ai, two shown the caveat, one passing without a word.
    assert by_class.loc["AI", ["photos", "called ai", "caveat shown", "neither"]].tolist() == [4, 0.25, 0.5, 0.25]
    # The verdicts add up per class: one real photo goes to a human check; two fakes are called real.
    assert by_class.loc["real", ["called ai", "called inconclusive", "called real"]].tolist() == [0.0, 0.5, 0.5]
    assert by_class.loc["AI", ["called ai", "called inconclusive", "called real"]].tolist() == [0.25, 0.25, 0.5]


def test_caveat_outcomes_refuse_unread_photos_and_a_count_that_does_not_match():
    labels = np.array([0, 1])
    failure = Result(path="bad.jpg", error="cannot read bad.jpg", error_code="corrupt")
    with pytest.raises(ValueError, match="1 photos could not be read"):
        case_study.caveat_outcomes({"as submitted": [*served(["real"], [False]), failure]}, labels)
    with pytest.raises(ValueError, match="1 results for 2 photos"):
        case_study.caveat_outcomes({"as submitted": served(["real"], [False])}, labels)


def test_the_summary_holds_each_view_the_shares_flagged_and_the_portrait_gap_in_training():
    summary = case_study.case_study_summary(**measured())
    assert (summary["portraits"], summary["real"], summary["ai"], summary["faces_found"]) == (4, 2, 2, 3)
    assert summary["best_view"] == "whole photo"
    assert set(summary["views"]["whole photo"]) == {"ROC AUC", "TPR @ 5% FPR"} and summary["views"]["whole photo"]["ROC AUC"]["value"] == 1.0
    assert summary["real_flagged"] == {"whole photo": 0.5, "face crop (whole if none)": 0.0}
    assert summary["ai_flagged"] == {"whole photo": 1.0, "face crop (whole if none)": 0.5}
    assert summary["id_frame_life"] == {"as submitted": {"real_flagged": 0.5, "ai_flagged": 1.0},
                                        "JPEG q70": {"real_flagged": 0.25, "ai_flagged": 0.75}}
    assert summary["caveat_outcomes"] == {"file as submitted": {
        "real_called_ai": 0.5, "real_called_inconclusive": 0.0, "real_called_real": 0.5, "real_caveat_shown": 0.0, "real_neither": 0.5,
        "ai_called_ai": 0.5, "ai_called_inconclusive": 0.0, "ai_called_real": 0.5, "ai_caveat_shown": 0.5, "ai_neither": 0.0}}
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
    assert "| file as submitted | 50% | 0% | 0% | 50% | 50% | 50% | 0% |" in card
    assert "100% of the AI images are portraits against 25% of the real photos" in card


def test_received_files_are_each_file_as_submitted_and_each_photo_re_saved(tmp_path):
    photos = [np.full((40, 30, 3), shade, np.uint8) for shade in (60, 200)]
    paths = [tmp_path / f"{i}.png" for i in range(2)]
    for path, pixels in zip(paths, photos):
        Image.fromarray(pixels).save(path)
    received = case_study.received_files(pd.DataFrame({"path": [str(p) for p in paths]}), photos)
    assert list(received) == ["file as submitted", "re-saved as JPEG q70"]
    assert list(received["file as submitted"]) == [str(p) for p in paths]
    resaved = [open_image(data) for data in received["re-saved as JPEG q70"]]
    assert [d.format for d in resaved] == ["JPEG", "JPEG"] and all(abs(d.jpeg_quality - 70) <= 3 for d in resaved)
    assert [round(float(d.pixels.mean()) / 10) for d in resaved] == [6, 20]  # the photos, in their order
