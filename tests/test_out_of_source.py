"""Fusion, calibration and thresholds fitted on curations the experts never saw (aiornot.training.out_of_source)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiornot.evaluation import protocol
from aiornot.training import out_of_source, train
from aiornot.detector import Detector
from aiornot.contract.config import validate_config


def pool_names() -> tuple[np.ndarray, np.ndarray]:
    """Six curations: three AI packages and three real ones of different sizes."""
    sizes = {"ai-a": 40, "ai-b": 25, "ai-c": 10, "real-a": 60, "real-b": 30, "real-c": 12}
    names = np.concatenate([[name] * size for name, size in sizes.items()]).astype(object)
    labels = np.array([1 if name.startswith("ai") else 0 for name in names])
    return names, labels


def test_curation_folds_hold_out_whole_curations_once_each_and_leave_both_classes_to_train_on():
    names, labels = pool_names()
    folds = out_of_source.curation_folds(names, labels, 3)
    assert len(folds) == 3
    np.testing.assert_array_equal(np.sum(folds, axis=0), np.ones(len(names)))  # every row held out exactly once
    for held in folds:
        assert all(held[names == name].all() or not held[names == name].any() for name in set(names))  # whole curations
        assert set(labels[~held]) == {0, 1}


def test_a_class_from_one_curation_is_dealt_image_by_image():
    names = np.array(["only-ai"] * 9 + ["real-a"] * 6 + ["real-b"] * 6, dtype=object)
    labels = np.array([1] * 9 + [0] * 12)
    folds = out_of_source.curation_folds(names, labels, 3)
    assert [int(held[:9].sum()) for held in folds] == [3, 3, 3]
    assert all(set(labels[~held]) == {0, 1} for held in folds)


def test_curations_merge_the_stock_templates_and_fall_back_to_the_source():
    frame = pd.DataFrame({"collection": ["stock-a", "stock-b", "gcompris"], "source": ["1", "2", "3"]})
    assert list(out_of_source.curations(frame)) == ["stock-*", "stock-*", "gcompris"]
    assert list(out_of_source.curations(frame.drop(columns="collection"))) == ["1", "2", "3"]


def synthetic_scores(seed: int = 0) -> out_of_source.OutOfSourceScores:
    """A semantic expert that separates the classes out of source, a forensic one that does not."""
    rng = np.random.default_rng(seed)
    names, labels = pool_names()
    semantic = np.where(labels == 1, 1.5, -1.5) + rng.normal(0, 1.2, len(labels))
    semantic[names == "real-c"] += 1.5  # one real curation looks more "generated" than the rest
    forensic = rng.normal(0, 1, len(labels)) - 0.3 * labels  # below chance on sources it never saw
    return out_of_source.OutOfSourceScores({"semantic": semantic, "forensic": forensic}, labels, names, 3)


def test_an_expert_below_the_bar_gets_weight_zero_and_the_rule_says_why():
    detector = Detector(None, {"name": "test"})
    decision = out_of_source.decide(detector, synthetic_scores(), train.DetectorRecipe())
    assert decision.expert_auc["forensic"] < 0.6 <= decision.expert_auc["semantic"]
    assert detector.fusion.weights["forensic"] == 0 and detector.fusion.weights["semantic"] > 0
    assert "forensic" in decision.excluded and "< 0.60" in decision.excluded["forensic"]
    assert "out-of-source" in detector.fusion.rule and "forensic: weight 0" in detector.fusion.rule
    assert "가중치 0" in detector.fusion.rule_ko
    # What it decided is the config's own section: saved and read back, it names the same rule and the same decision.
    config = validate_config({"fusion": detector.fusion.model_dump(), "out_of_source": decision.model_dump()})
    assert config.fusion == detector.fusion and config.out_of_source == decision


def test_the_ai_threshold_holds_for_the_pool_and_for_each_real_curation():
    scores = synthetic_scores()
    recipe = train.DetectorRecipe(target_fpr=0.05, max_source_fpr=0.10, min_source_views=10)
    detector = Detector(None, {"name": "test"})
    decision = out_of_source.decide(detector, scores, recipe)
    flagged = decision.real_flagged_by_curation
    assert set(flagged) == {"real-a", "real-b", "real-c"}
    assert max(flagged.values()) <= 0.10
    # Without the per-curation bar the odd real curation would be flagged far more often.
    loose = Detector(None, {"name": "test"})
    loose_decision = out_of_source.decide(loose, scores, train.DetectorRecipe(max_source_fpr=1.0))
    assert loose_decision.real_flagged_by_curation["real-c"] > flagged["real-c"]
    assert detector.thresholds.ai >= loose.thresholds.ai


def test_overlapping_out_of_source_scores_leave_an_inconclusive_band():
    detector = Detector(None, {"name": "test"})
    out_of_source.decide(detector, synthetic_scores(), train.DetectorRecipe())
    assert detector.thresholds.real < detector.thresholds.ai
    assert detector.thresholds.verdict((detector.thresholds.real + detector.thresholds.ai) / 2) == "inconclusive"


def test_cross_curation_pairs_hold_out_an_ai_and_a_real_package_and_test_on_them_alone():
    names, labels = pool_names()
    frame = pd.DataFrame({"collection": names, "label": labels, "portrait": names == "ai-a",
                          "split": np.where(np.arange(len(names)) % 5 == 0, "validation", "train")})
    pairs = protocol.curation_pairs(frame, min_images=8, min_real_images=10)
    assert len(pairs) == 3 and pairs[0].name == "pair: ai-a + real-a"  # the portrait-heavy AI package first
    for pair in pairs:
        held_names = set(names[pair.rows])
        assert len(held_names) == 2 and {n.split("-")[0] for n in held_names} == {"ai", "real"}
        rows = protocol.fold_rows(frame, pair)
        np.testing.assert_array_equal(rows["test"], pair.rows)
        assert not (rows["train"] & pair.rows).any() and not (rows["validation"] & pair.rows).any()


def test_headline_leads_with_the_cross_curation_pairs_and_the_unseen_real_sources():
    table = pd.DataFrame([
        {"held out": "pair: ai-a + real-a", "kind": "curation pair", "class": "pair", "view": "re-encoded", "ROC AUC": 0.8, "flagged ai": 0.2},
        {"held out": "pair: ai-b + real-b", "kind": "curation pair", "class": "pair", "view": "re-encoded", "ROC AUC": 0.9, "flagged ai": 0.0},
        {"held out": "package: real-c", "kind": "package", "class": "real", "view": "re-encoded", "ROC AUC": 0.7, "flagged ai": 0.1,
         "flagged low": 0.0, "flagged high": 0.3},
        {"held out": "pair: ai-a + real-a", "kind": "curation pair", "class": "pair", "view": "raw", "ROC AUC": 0.1, "flagged ai": 0.9},
    ])
    summary = protocol.headline(table)
    assert summary["cross_curation_folds"] == 2 and summary["cross_curation_mean_auc"] == pytest.approx(0.85)
    assert summary["unseen_real_flagged_mean"] == pytest.approx(0.1) and summary["unseen_real_flagged_max"] == pytest.approx(0.2)


def test_entries_cut_from_one_registry_package_are_one_curation():
    frame = pd.DataFrame({"collection": ["comfyui-templates", "comfyui-edits", "fake-avatars", "stock-a"],
                          "origin": ["pypi:media-image@0.3", "pypi:media-image@0.3", "npm:fake-avatars@1.1", "npm:a@1"]})
    assert list(out_of_source.curations(frame)) == ["comfyui-edits+comfyui-templates", "comfyui-edits+comfyui-templates",
                                                    "fake-avatars", "stock-*"]


def test_a_calibration_never_reverses_an_expert():
    labels = np.array([0, 1] * 50)
    backwards = np.where(labels == 1, -1.0, 1.0) + np.random.default_rng(1).normal(0, 0.5, 100)
    calibration = out_of_source.monotone_calibration(backwards, labels)
    assert calibration.slope == 0 and calibration(np.array([-5.0, 5.0])) == pytest.approx([0.5, 0.5])
    forwards = out_of_source.monotone_calibration(-backwards, labels)
    assert forwards.slope > 0


def test_a_cross_fitting_fold_trains_on_nothing_that_shares_a_source_group_with_it():
    names, labels = pool_names()
    groups = np.array([f"photo-{i}" for i in range(len(names))], dtype=object)
    groups[:5] = groups[-5:]  # five ai-a rows are fakes made from real-c's last five photos
    folds = out_of_source.curation_folds(names, labels, 3)
    for held, trained in zip(folds, out_of_source.fold_training_masks(folds, groups), strict=True):
        assert not (trained & held).any() and not np.isin(groups[trained], groups[held]).any()
        assert (trained | held).sum() >= len(names) - 5  # only the shared group's rows are dropped besides the fold
    made_from_real_c = next(t for h, t in zip(folds, out_of_source.fold_training_masks(folds, groups)) if h[-1])
    assert not made_from_real_c[:5].any()
    assert all((t == ~h).all() for h, t in zip(folds, out_of_source.fold_training_masks(folds, None)))


def test_fit_detector_hands_the_cross_fitting_the_source_groups(monkeypatch):
    """The semantic head's cross-fitted folds train without the fakes made from a held-out curation's photos."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 12)
    images = [np.clip(rng.normal(60 + 120 * label, 20, (40, 40, 3)), 0, 255).astype(np.uint8) for label in labels]
    names = np.array([f"{'ai' if label else 'real'}-{i % 3}" for i, label in enumerate(labels)], dtype=object)
    groups = np.array([f"photo-{i}" for i in range(len(labels))], dtype=object)
    groups[1], groups[3] = groups[0], groups[2]  # two AI images made from two real photos (in other curations)
    seen = {}

    def capture(features, view_labels, strata, view_folds, recipe, view_training=None):
        seen.update(folds=view_folds, training=view_training)
        return np.zeros(len(view_labels))

    monkeypatch.setattr(out_of_source, "semantic_logits", capture)

    class MeanColour:
        id = "mean-colour"

        def embed(self, batch):
            return {"embeds": np.stack([p.reshape(-1, 3).mean(axis=0) / 255 for p in batch]).astype(np.float32)}

    recipe = train.DetectorRecipe(forensic=train.TrainConfig(epochs=1, batch_size=4, crop_size=32, steps_per_epoch=1),
                                  reencoded_views=False, max_tiles=4, fusion_experts=("semantic",), source_folds=3)
    train.fit_detector(images[:16], labels[:16], None, images[16:], labels[16:], recipe, encoder=MeanColour(), verbose=False,
                       train_curations=names[:16], val_curations=names[16:], train_groups=groups[:16], val_groups=groups[16:])
    dropped = 0
    for held, trained in zip(seen["folds"], seen["training"], strict=True):
        assert not np.isin(groups[trained], groups[held]).any()
        dropped += int((~held & ~trained).sum())
    assert dropped > 0  # the shared groups did keep something out


def test_the_shipped_head_is_fit_semantics_head_from_one_encoding_pass():
    """The out-of-source path encodes every view once; the shipped head is still the one fitted on the training views."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 12)
    images = [np.clip(rng.normal(60 + 120 * label, 20, (40, 40, 3)), 0, 255).astype(np.uint8) for label in labels]
    names = np.array([f"{'ai' if label else 'real'}-{i % 3}" for i, label in enumerate(labels)], dtype=object)

    class Counting:
        id, seen = "mean-colour", 0

        def embed(self, batch):
            self.seen += len(batch)
            return {"embeds": np.stack([p.reshape(-1, 3).mean(axis=0) / 255 for p in batch]).astype(np.float32)}

    recipe = train.DetectorRecipe(forensic=train.TrainConfig(epochs=1, batch_size=4, crop_size=32, steps_per_epoch=1),
                                  reencoded_views=False, max_tiles=4, fusion_experts=("semantic",), source_folds=3)
    encoder = Counting()
    detector, _ = train.fit_detector(images[:16], labels[:16], None, images[16:], labels[16:], recipe, encoder=encoder,
                                     verbose=False, train_curations=names[:16], val_curations=names[16:])
    assert encoder.seen == len(images)  # every view encoded once, training views not twice
    expected = train.fit_semantic(images[:16], labels[:16], None, recipe, encoder=Counting(), progress=False).head
    np.testing.assert_allclose(detector.semantic.head.coef, expected.coef)
    assert detector.semantic.head.intercept == pytest.approx(expected.intercept)
    assert detector.config["out_of_source"]["folds"] == 3


def test_an_expert_is_admitted_on_its_median_fold_auc_so_one_reversed_curation_does_not_shut_it_out():
    """Session 24's measurement: the semantic head separated two curation folds well and ran the wrong way on the
    third (GAN faces against real faces); pooled, it fell under the bar and the weaker forensic CNN decided alone."""
    rng = np.random.default_rng(1)
    names, labels = pool_names()
    scores = out_of_source.OutOfSourceScores({"semantic": np.zeros(len(labels)), "forensic": rng.normal(0, 1, len(labels))},
                                             labels, names, 3)
    masks = scores.fold_masks()
    semantic = np.where(labels == 1, 2.0, -2.0) + rng.normal(0, 1, len(labels))
    semantic[masks[2]] = np.where(labels[masks[2]] == 1, -4.0, 4.0) + rng.normal(0, 1, masks[2].sum())  # reversed
    scores.logits["semantic"] = semantic
    folds = scores.fold_aucs("semantic")
    assert folds[0] > 0.9 and folds[1] > 0.9 and folds[2] < 0.1
    assert scores.pooled_auc("semantic") < 0.6 <= scores.auc("semantic") == pytest.approx(np.median(folds))
    detector = Detector(None, {"name": "test"})
    decision = out_of_source.decide(detector, scores, train.DetectorRecipe())
    assert "semantic" not in decision.excluded and detector.fusion.weights["semantic"] > 0
    assert decision.expert_fold_auc["semantic"] == [round(v, 4) for v in folds]
    assert decision.expert_pooled_auc["semantic"] == round(scores.pooled_auc("semantic"), 4)


def test_when_no_expert_reaches_the_bar_the_fallback_expert_decides_not_the_one_ahead_by_noise():
    """Session 24's measurement: semantic 0.544, forensic 0.549 out of source; "the better one" handed a leave-out
    pair to the forensic CNN by 0.005 and its AUC fell from 0.80 to 0.36."""
    rng = np.random.default_rng(2)
    names, labels = pool_names()
    noise = {name: rng.normal(0, 1, len(labels)) for name in ("semantic", "forensic")}
    scores = out_of_source.OutOfSourceScores({"semantic": noise["semantic"] + 0.05 * labels, "forensic": noise["forensic"] + 0.25 * labels},
                                             labels, names, 3)
    assert scores.auc("semantic") < scores.auc("forensic") < 0.6
    detector = Detector(None, {"name": "test"})
    decision = out_of_source.decide(detector, scores, train.DetectorRecipe())
    assert detector.fusion.weights["forensic"] == 0 and "forensic" in decision.excluded
    assert "semantic" not in decision.excluded
    # Without a fallback named by the recipe, the better of the two decides, as before.
    other = Detector(None, {"name": "test"})
    out_of_source.decide(other, scores, train.DetectorRecipe(fusion_fallback="none"))
    assert other.fusion.weights.get("semantic", 0.0) == 0 and other.fusion.weights["forensic"] > 0
    # A fallback the recipe keeps out of the fusion never decides: the experts the recipe lets in are chosen from.
    kept_out = Detector(None, {"name": "test"})
    out_of_source.decide(kept_out, scores, train.DetectorRecipe(fusion_experts=("forensic",)))
    assert kept_out.fusion.weights["forensic"] > 0 and kept_out.fusion.weights.get("semantic", 0.0) == 0


def test_the_fold_aucs_read_the_folds_the_cross_fitting_used():
    names, labels = pool_names()
    logits = np.where(labels == 1, 1.0, -1.0)
    first = np.zeros(len(labels), bool)
    first[::2] = True
    scores = out_of_source.OutOfSourceScores({"semantic": logits}, labels, names, 2, view_folds=[first, ~first])
    assert [mask.sum() for mask in scores.fold_masks()] == [first.sum(), (~first).sum()]
    assert scores.fold_aucs("semantic") == [1.0, 1.0]


def test_low_resolution_views_train_every_semantic_head_and_are_never_scored(monkeypatch):
    """lowres_views (issue 17): the shipped head and each cross-fitted head train on the low-resolution copies too;
    only the scored views (raw here) are held out, calibrated on and counted in the thresholds."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 12)
    images = [np.clip(rng.normal(60 + 120 * label, 20, (300, 260, 3)), 0, 255).astype(np.uint8) for label in labels]
    names = np.array([f"{'ai' if label else 'real'}-{i % 3}" for i, label in enumerate(labels)], dtype=object)
    seen = {}
    original = out_of_source.semantic_logits

    def capture(features, view_labels, strata, view_folds, recipe, view_training=None):
        seen.update(rows=len(view_labels), folds=view_folds, training=view_training)
        return original(features, view_labels, strata, view_folds, recipe, view_training)

    monkeypatch.setattr(out_of_source, "semantic_logits", capture)

    class MeanColourAndSize:
        id = "mean-colour-size"

        def embed(self, batch):
            return {"embeds": np.stack([[*(p.reshape(-1, 3).mean(axis=0) / 255), p.shape[0] / 400] for p in batch]).astype(np.float32)}

    recipe = train.DetectorRecipe(forensic=train.TrainConfig(epochs=1, batch_size=4, crop_size=32, steps_per_epoch=1),
                                  reencoded_views=False, lowres_views=True, max_tiles=4, fusion_experts=("semantic",), source_folds=3)
    detector, _ = train.fit_detector(images[:16], labels[:16], None, images[16:], labels[16:], recipe,
                                     encoder=MeanColourAndSize(), verbose=False, train_curations=names[:16], val_curations=names[16:])
    assert seen["rows"] == 2 * len(images)  # every pool image, then its low-resolution copy
    low = np.arange(seen["rows"]) >= len(images)
    assert not any(held[low].any() for held in seen["folds"])  # a low-resolution view is never scored
    assert all(trained[low].any() for trained in seen["training"])  # ... but trains each cross-fitted head
    assert detector.config["out_of_source"]["predictions"] == len(images)  # calibration and thresholds: the scored views only
    expected = train.fit_semantic(images[:16], labels[:16], None, recipe, encoder=MeanColourAndSize(), progress=False).head
    np.testing.assert_allclose(detector.semantic.head.coef, expected.coef)  # the shipped head saw the copies too


def test_semantic_training_views_add_the_low_resolution_copies_when_the_recipe_says_so():
    images = [np.full((300, 200, 3), 40 * i, np.uint8) for i in range(3)]
    labels, strata = np.array([0, 1, 0]), np.array([1, 1, 0])
    views, view_labels, view_strata = train.semantic_training_views(images, labels, strata, recipe=train.DetectorRecipe(lowres_views=True))
    assert len(views) == 9 and list(view_labels) == [0, 1, 0] * 3 and list(view_strata) == [1, 1, 0] * 3
    assert views[6].shape == (384, 384, 3)  # re-encoded as an upload is, after the 128 px short side
    plain = train.semantic_training_views(images, labels, recipe=train.DetectorRecipe(lowres_views=False))
    assert len(plain[0]) == 6 and list(plain[1]) == [0, 1, 0] * 2


def test_the_low_resolution_view_has_the_side_the_recipe_records():
    from aiornot.io import transforms

    image = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    recipe = train.DetectorRecipe(lowres_views=True, reencoded_views=False, lowres_side=64)
    views, _ = train.semantic_training_views([image], np.array([1]), recipe=recipe)
    np.testing.assert_array_equal(views[1], transforms.low_resolution_like_upload(image, side=64))
    assert not np.array_equal(views[1], transforms.low_resolution_like_upload(image, side=128))
