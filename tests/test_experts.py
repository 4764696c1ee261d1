"""The experts' heads and the fusion rule (aiornot.model.experts).

The feature store and the encoders are in test_encoders.py, a detector with experts in
test_detector.py, the leave-out protocol in test_protocol.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from aiornot.model import encoders
from aiornot.model.experts import Fusion, LinearHead, SemanticExpert, balanced_weights


# ------------------------------------------------------------------------ head and fusion
def test_linear_head_separates_and_round_trips():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 60)
    features = rng.normal(0, 1, (120, 8)) + labels[:, None] * np.linspace(0, 2, 8)
    head = LinearHead.fit(features, labels, C=1.0)
    logits = head.logits(features)
    assert logits[labels == 1].mean() > logits[labels == 0].mean() + 2
    again = LinearHead.from_dict(head.to_dict())
    assert np.allclose(again.logits(features), logits, atol=1e-4)


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
    fusion = Fusion.fit({"forensic": noise, "semantic": good}, labels)
    assert fusion.weights["semantic"] > 5 * max(fusion.weights["forensic"], 1e-3)
    assert fusion.fitted_on == 200 and "logit(semantic)" in fusion.rule and "200 validation images" in fusion.rule
    assert "의미" in fusion.rule_ko
    fused = fusion({"forensic": noise, "semantic": good})
    assert fused[labels == 1].mean() > fused[labels == 0].mean() + 0.3
    assert Fusion.from_config(fusion.to_config()) == fusion


def test_fusion_drops_an_expert_that_would_get_a_negative_weight():
    labels = np.repeat([0, 1], 50)
    good = np.where(labels == 1, 0.8, 0.2) + np.linspace(-0.1, 0.1, 100)
    inverted = 1 - good * 0.9
    fusion = Fusion.fit({"forensic": inverted, "semantic": good}, labels)
    assert fusion.weights["forensic"] == 0.0 and fusion.weights["semantic"] > 0
    assert "0.00·logit(forensic)" in fusion.rule  # a dropped expert is still named


def test_fusion_of_one_expert_is_that_expert():
    scores = np.array([0.1, 0.4, 0.9])
    assert np.allclose(Fusion({"forensic": 1.0})({"forensic": scores}), scores)
    with pytest.raises(KeyError, match="semantic"):
        Fusion({"semantic": 1.0})({"forensic": scores})


def test_a_semantic_head_fitted_on_other_weights_is_refused():
    expert = SemanticExpert(LinearHead((0.0,), (1.0,), (1.0,), 0.0), encoder_id="another-encoder-000000000000")
    try:
        with pytest.raises(RuntimeError, match="fitted on another-encoder"):
            expert.encoder
    except encoders.EncoderUnavailable as error:
        pytest.skip(str(error))
