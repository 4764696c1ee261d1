"""The fitted rules a model scores with (aiornot.contract.scoring): applying them, reading them back from
``detector.json``, and the verdict the thresholds give.

Fitting them is tested in test_experts.py; that the detector saves them unchanged in test_detector.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from aiornot.contract.config import ModelConfig, ModelConfigError, validate_config
from aiornot.contract.result import Result
from aiornot.contract.scoring import Calibration, Fusion, Thresholds


def test_thresholds_respect_the_target_fpr_on_real_photos():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.beta(2, 5, 400), rng.beta(5, 2, 400)])
    labels = np.array([0] * 400 + [1] * 400)
    chosen = Thresholds.choose(scores, labels, target_fpr=0.05, target_fnr=0.05)
    assert np.mean(scores[labels == 0] >= chosen.ai) <= 0.05
    assert np.mean(scores[labels == 1] < chosen.real) <= 0.05
    # The classes overlap (Beta(2, 5) against Beta(5, 2)), so the band between the thresholds is open.
    assert 0.3 < chosen.real < chosen.ai < 0.7
    assert chosen.verdict(chosen.ai) == "ai" and chosen.verdict(chosen.real - 1e-6) == "real"
    assert chosen.verdict((chosen.ai + chosen.real) / 2) == "inconclusive"
    # One rule for "at a stated FPR": the stored `ai` threshold is the one the TPR evaluation uses.
    from aiornot.evaluation import metrics

    assert metrics.tpr_at_fpr(labels, scores, 0.05) == np.mean(scores[labels == 1] >= chosen.ai)


def test_calibration_maps_logits_monotonically_to_probabilities():
    probabilities = Calibration(slope=2.0, intercept=-1.0)(np.array([-1.0, 0.5, 3.0]))
    assert np.allclose(probabilities, 1 / (1 + np.exp(-np.array([-3.0, 0.0, 5.0]))))
    assert Calibration()(np.array([0.0]))[0] == 0.5  # unfitted: the logit read as log-odds


def test_fusion_of_one_expert_is_that_expert():
    scores = np.array([0.1, 0.4, 0.9])
    assert np.allclose(Fusion.one_expert("forensic")({"forensic": scores}), scores)
    with pytest.raises(KeyError, match="semantic"):
        Fusion.one_expert("semantic")({"forensic": scores})


def test_fusion_needs_only_the_experts_it_weighs():
    """An expert at weight 0 is not among ``used_experts``, and the rule gives the same score without it."""
    fusion = Fusion(weights={"semantic": 0.97, "forensic": 0.0}, intercept=-0.01)
    semantic, forensic = np.array([0.2, 0.5, 0.8]), np.array([0.9, 0.1, 0.5])
    assert fusion.used_experts == ("semantic",) and Fusion.one_expert("forensic").used_experts == ("forensic",)
    assert np.array_equal(fusion({"semantic": semantic}), fusion({"semantic": semantic, "forensic": forensic}))
    with pytest.raises(KeyError, match="semantic"):
        fusion({"forensic": forensic})


def test_fusion_writes_its_rule_and_reads_back_the_same_rule():
    fusion = Fusion(weights={"semantic": 0.97, "forensic": 0.0}, intercept=-0.01, fitted_on=1804, basis="out-of-source",
                    excluded={"forensic": "out-of-source ROC AUC 0.50 < 0.60"})
    written = json.loads(json.dumps(fusion.model_dump()))
    assert list(written) == ["weights", "intercept", "fitted_on", "basis", "excluded", "rule"]
    assert written["rule"].startswith("P(AI) = σ(0.97·logit(semantic) + 0.00·logit(forensic) − 0.01); logistic stacking fitted on 1804")
    # The rule is derived from the weights: the text read back is not trusted over them.
    assert Fusion.model_validate({**written, "rule": "P(AI) = something else"}) == fusion
    assert "포렌식: 가중치 0 (처음 보는 출처에서 ROC AUC 0.50 < 0.60)" in fusion.rule_ko


def test_the_config_sections_are_the_rules_the_detector_and_the_api_use():
    config = validate_config({"thresholds": {"ai": 0.7, "real": 0.2}, "calibration": {"slope": 0.5},
                              "fusion": {"weights": {"forensic": 1.0}}})
    assert isinstance(config.thresholds, Thresholds) and isinstance(config.calibration, Calibration)
    assert config.thresholds.verdict(0.5) == "inconclusive" and config.fusion == Fusion.one_expert("forensic")
    result = Result(score=0.5, thresholds=config.thresholds)
    assert result.to_dict()["thresholds"] == {"ai": 0.7, "real": 0.2, "target_fpr": 0.05, "target_fnr": 0.05}
    assert ModelConfig.model_fields["thresholds"].annotation is Result.model_fields["thresholds"].annotation.__args__[0]


@pytest.mark.parametrize(("section", "named"), [
    ({"thresholds": {"ai": 0.5, "ia": 0.5}}, "unknown key 'thresholds.ia'"),
    ({"fusion": {"intercept": 0.0}}, "missing key 'fusion.weights'"),
    ({"fusion": {"weights": {"forensic": 1.0}, "basis": "test"}}, "fusion.basis"),
    ({"semantic": {"head": {"mean": [0.0], "scale": [1.0], "coef": [1.0]}}}, "missing key 'semantic.head.intercept'"),
])
def test_a_bad_rule_in_the_config_is_refused_with_its_key(section: dict, named: str):
    with pytest.raises(ModelConfigError, match=named.replace(".", r"\.")):
        validate_config(section)
