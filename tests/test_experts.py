"""The experts and the fitting of their calibration, heads and fusion rule (aiornot.model.experts).

Applying the fitted rules is tested in test_scoring.py, the feature store and the encoders in
test_encoders.py, a detector with experts in test_detector.py, the leave-out protocol in test_protocol.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from aiornot.model import encoders
from aiornot.model.experts import (
    Calibration, LinearHead, SemanticExpert, balanced_weights, fit_calibration, fit_fusion, fit_linear_head,
)


# ------------------------------------------------------------------------ calibration, head and fusion
def test_calibration_on_a_one_class_validation_set_is_a_clear_error():
    with pytest.raises(ValueError, match="both classes, got only real photos .label 0. .40 images."):
        fit_calibration(np.linspace(-2, 2, 40), np.zeros(40, int))
    with pytest.raises(ValueError, match="got only AI images"):
        fit_calibration(np.linspace(-2, 2, 5), np.ones(5, int))


def test_calibration_is_monotonic_and_fits_the_data():
    rng = np.random.default_rng(1)
    true_log_odds = rng.normal(0, 2, 3000)
    labels = (rng.random(3000) < 1 / (1 + np.exp(-true_log_odds))).astype(int)
    calibration = fit_calibration(true_log_odds * 3, labels)  # an over-confident model's logits are shrunk back
    assert 0.25 < calibration.slope < 0.42 and abs(calibration.intercept) < 0.2
    probabilities = calibration(np.array([-6.0, 0.0, 6.0]))  # true log-odds -2, 0, 2
    assert np.allclose(probabilities, [0.119, 0.5, 0.881], atol=0.05) and np.all(np.diff(probabilities) > 0)


def test_linear_head_separates_and_round_trips():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 60)
    features = rng.normal(0, 1, (120, 8)) + labels[:, None] * np.linspace(0, 2, 8)
    head = fit_linear_head(features, labels, C=1.0)
    logits = head.logits(features)
    assert logits[labels == 1].mean() > logits[labels == 0].mean() + 2
    again = LinearHead.model_validate(json.loads(json.dumps(head.model_dump())))  # as detector.json holds it
    assert again == head and np.allclose(again.logits(features), logits, atol=1e-4)


def test_balanced_weights_give_each_class_and_stratum_the_same_total():
    labels = np.array([0] * 10 + [1] * 30)
    strata = np.array([1] * 2 + [0] * 8 + [1] * 27 + [0] * 3)
    weights = balanced_weights(labels, strata)
    cells = {(l, s): weights[(labels == l) & (strata == s)].sum() for l in (0, 1) for s in (0, 1)}
    assert np.allclose(list(cells.values()), cells[(0, 1)])
    assert np.isclose(weights.sum(), len(labels))


def test_fusion_weighs_the_informative_expert_and_states_its_rule():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 100)
    good = np.clip(0.5 + (labels - 0.5) * 0.6 + rng.normal(0, 0.15, 200), 0.01, 0.99)
    noise = rng.uniform(0.05, 0.95, 200)
    fusion = fit_fusion({"forensic": noise, "semantic": good}, labels)
    assert fusion.weights["semantic"] > 5 * max(fusion.weights["forensic"], 1e-3)
    assert fusion.fitted_on == 200 and "logit(semantic)" in fusion.rule and "200 validation images" in fusion.rule
    assert "의미" in fusion.rule_ko
    fused = fusion({"forensic": noise, "semantic": good})
    assert fused[labels == 1].mean() > fused[labels == 0].mean() + 0.3


def test_fusion_drops_an_expert_that_would_get_a_negative_weight():
    labels = np.repeat([0, 1], 50)
    good = np.where(labels == 1, 0.8, 0.2) + np.linspace(-0.1, 0.1, 100)
    inverted = 1 - good * 0.9
    fusion = fit_fusion({"forensic": inverted, "semantic": good}, labels)
    assert fusion.weights["forensic"] == 0.0 and fusion.weights["semantic"] > 0
    assert "0.00·logit(forensic)" in fusion.rule  # a dropped expert is still named


def test_a_semantic_head_fitted_on_other_weights_is_refused():
    expert = SemanticExpert(LinearHead(mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0), encoder_id="another-encoder-000000000000")
    try:
        with pytest.raises(RuntimeError, match="fitted on another-encoder"):
            expert.encoder
    except encoders.EncoderUnavailable as error:
        pytest.skip(str(error))


def test_the_semantic_section_round_trips_and_names_only_a_custom_encoder():
    head = LinearHead(mean=[0.0, 1.0], scale=[1.0, 2.0], coef=[0.5, -0.5], intercept=0.1, C=0.2)
    expert = SemanticExpert(head, Calibration(slope=2.0, intercept=-1.0), feature="blocks", encoder_id="clip-x")
    section = expert.to_config()
    assert list(section) == ["encoder", "feature", "head", "calibration"]  # the default encoder needs no spec
    again = SemanticExpert.from_config(json.loads(json.dumps(section)))
    assert (again.head, again.calibration, again.feature, again.encoder_id) == (head, expert.calibration, "blocks", "clip-x")


def test_the_semantic_section_records_which_offline_backbone_it_reads():
    head = LinearHead(mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0)
    for name, encoder_id in encoders.OFFLINE_BACKBONE_IDS.items():
        section = SemanticExpert(head, encoder_id=encoder_id).to_config()
        assert section["backbone"] == name and list(section)[:2] == ["encoder", "backbone"]
    # The ids are the ones the specs give when opened (the CLIP one without deriving the float tower).
    assert encoders.OFFLINE_BACKBONE_IDS["clip_vit_b16"] == encoders.weights_id(encoders.CLIP_NAME, encoders.CLIP_SHA256)
    assert "backbone" not in SemanticExpert(head, encoder_id="clip-vit-b16-float-000000000000").to_config()
