"""Notebook 03's stored evaluation (aiornot.evaluation.summary): the folds, the variants and the section the card quotes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from aiornot.contract.config import ModelConfigError, load_config
from aiornot.detector import Detector
from aiornot.evaluation import metrics, summary
from aiornot.evaluation.protocol import HeldOut
from aiornot.reporting import model_card


def held_out(name: str, kind: str, label: int) -> HeldOut:
    return HeldOut(name, kind, label, np.zeros(3, dtype=bool))


def test_a_few_folds_keep_the_mix_of_kinds_and_none_means_every_group():
    groups = [held_out("gen a", "generator", 1), held_out("gen b", "generator", 1), held_out("diffusion", "family", 1),
              held_out("real pack", "package", 0), held_out("pair 1", "curation pair", -1), held_out("pair 2", "curation pair", -1),
              held_out("ai pack", "package", 1)]
    names = [g.name for g in summary.interleaved_folds(groups, 4)]
    assert names == ["pair 1", "diffusion", "real pack", "gen a"]
    assert [g.name for g in summary.interleaved_folds(groups, 100)] == ["pair 1", "diffusion", "real pack", "gen a", "ai pack",
                                                                        "pair 2", "gen b"]
    assert summary.interleaved_folds(groups, None) == groups


def test_a_tiling_variant_is_the_forensic_expert_alone_with_the_same_calibration(tiny_model_dir):
    detector = Detector.load(tiny_model_dir)
    variant = summary.forensic_variant(detector, max_tiles=16)
    assert variant.model is detector.model and variant.calibration == detector.calibration
    assert variant.max_tiles == 16 and variant.semantic is None
    assert "max_tiles" not in detector.config or detector.config["max_tiles"] != 16  # the shipped detector is left alone
    assert list(summary.TILE_POLICIES) == ["4 central crops", "up to 16 tiles", "up to 64 tiles"]


def test_the_comparison_and_laundering_sentences_state_the_numbers_and_whether_the_interval_excludes_0():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 4)
    ours = labels * 0.8 + 0.1
    seed_scores = np.linspace(0, 1, len(labels))[::-1].copy()
    tables = {name: metrics.metrics_with_intervals(labels, s, rounds=20, seed=0) for name, s in (("detector", ours), ("seed_cnn", seed_scores))}
    text = summary.comparison_text(labels, ours, seed_scores, tables, groups=None, rounds=20, seed=0)
    assert text.startswith("ROC AUC 1.000 vs ") and "; TPR @ 5% FPR 1.000 vs " in text and text.endswith("on 32 held-out images.")
    assert "paired 95 % CI [+" in text and "the interval excludes 0" in text
    laundered = pd.DataFrame({"roc_auc": [0.9, 0.8, 0.7]},
                             index=pd.MultiIndex.from_tuples([("detector", "original"), ("detector", "laundered"), ("detector", "re-encoded")]))
    assert summary.laundering_text(laundered, ["detector"]) == "detector: ROC AUC 0.900 → 0.800 laundered, → 0.700 re-encoded"


def test_real_portraits_flagged_counts_the_real_portraits_only_and_says_none_without_one():
    test = pd.DataFrame({"label": [0, 0, 0, 1], "portrait": [True, True, False, True]})
    labels = test["label"].to_numpy()
    scores = {"original": np.array([0.9, 0.1, 0.9, 0.9]), "re-encoded": np.array([0.9, 0.9, 0.1, 0.9])}
    flagged = summary.real_portraits_flagged(test, labels, scores, 0.5, groups=None, rounds=20, seed=0)
    assert list(flagged) == ["original", "re-encoded", "images"] and flagged["images"] == 2
    assert flagged["original"][0] == 0.5 and flagged["re-encoded"][0] == 1.0
    none = summary.real_portraits_flagged(test.assign(portrait=False), labels, scores, 0.5, groups=None, rounds=20, seed=0)
    assert none == {"original": None, "re-encoded": None, "images": 0}


def measured(**changes):
    """Notebook 03's tables, tiny: two models on four test images, one protocol fold, one backbone."""
    test = pd.DataFrame({"label": [0, 0, 1, 1], "generator": ["camera", "camera", "sd", "sd"]})
    scores = {"seed_cnn": np.array([0.2, 0.6, 0.7, 0.4]), "detector": np.array([0.1, 0.2, 0.9, 0.8])}
    row = pd.DataFrame({"value": [0.75], "ci_low": [0.5], "ci_high": [np.nan]}, index=["ROC AUC"])
    robust = pd.DataFrame({"model": ["detector", "detector"], "condition": ["original", "jpeg50"], "roc_auc": [1.0, 0.81234]})
    protocol_table = pd.DataFrame({"held out": ["generator: sd"], "kind": ["generator"], "class": ["AI"], "view": ["re-encoded"],
                                   "ROC AUC": [0.912345], "AUC low": [np.nan]})
    inputs = dict(test=test, metric_tables={"detector": row, "seed_cnn": row}, comparison="better", laundered="kept", warning=None,
                  robustness=robust, scores=scores, thresholds={"seed_cnn": 0.5, "detector": 0.6}, fusion_rule="P(AI) = σ(…)",
                  protocol_table=protocol_table, protocol_summary={"folds": 1, "modern_mean_auc": np.float64(0.9)},
                  fold_budget={"epochs": 1, "steps_per_epoch": 4}, real_portraits={"original": None, "re-encoded": None, "images": 0},
                  backbone_summary=pd.DataFrame({"clip (blocks)": {"modern generators: mean AUC": 0.9, "StyleGAN2": np.nan}}), folds=1)
    return inputs | changes


def test_the_evaluation_section_holds_the_measured_tables_in_the_stored_form():
    section = summary.evaluation_section(**measured())
    assert list(section)[:3] == ["test_images", "test_real", "test_ai"] and (section["test_real"], section["test_ai"]) == (2, 2)
    assert section["metrics"]["detector"]["ROC AUC"] == {"value": 0.75, "ci_low": 0.5, "ci_high": None}
    assert section["robustness"] == {"detector": {"jpeg50": 0.8123, "original": 1.0}}
    assert section["per_generator"]["detector"] == [{"generator": "camera", "label": 0, "images": 2, "flagged_ai": 0.0, "mean_score": 0.15},
                                                    {"generator": "sd", "label": 1, "images": 2, "flagged_ai": 1.0, "mean_score": 0.85}]
    assert section["protocol"]["rows"][0]["ROC AUC"] == 0.9123 and section["protocol"]["rows"][0]["AUC low"] is None
    assert section["backbones"] == {"summary": {"clip (blocks)": {"modern generators: mean AUC": 0.9, "StyleGAN2": None}}, "folds": 1}
    with pytest.raises(ModelConfigError, match="evaluation.protocol.fold_budget.steps"):  # a typo is named before anything is saved
        summary.evaluation_section(**measured(fold_budget={"epochs": 1, "steps": 4}))


def test_the_stored_evaluation_reaches_detector_json_evaluation_json_and_the_card(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    detector = Detector.load(model_dir)
    section = summary.evaluation_section(**measured(comparison="ROC AUC 0.9 vs 0.5"))
    written = summary.store_evaluation(detector, model_dir, section, tmp_path)
    assert json.loads(written.read_text())["comparison"] == "ROC AUC 0.9 vs 0.5"
    config = load_config(model_dir / "detector.json")[0]
    assert config.evaluation.comparison == "ROC AUC 0.9 vs 0.5" and config.evaluation.protocol.fold_budget.epochs == 1
    assert "**Compared with the seed's CNN.** ROC AUC 0.9 vs 0.5" in model_card.render(config)
