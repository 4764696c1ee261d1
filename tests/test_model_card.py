"""The model card (aiornot.reporting.model_card), written from the typed detector.json; the README blocks are in test_readme.py."""

from __future__ import annotations

from aiornot.reporting import model_card
from aiornot.contract.config import validate_config


def test_model_card_comes_from_the_config():
    row = {"value": 0.91, "ci_low": 0.85, "ci_high": 0.95}
    config = {"name": "m", "architecture": "forensic_detector", "parameters": 1234, "size_mb": 1.4, "crop_size": 64,
              "crops_per_image": 4, "thresholds": {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05},
              "training_data": {"images": 10, "train": 6, "validation": 1, "test": 3, "generators": ["stylegan2"]},
              "evaluation": {"test_images": 3, "test_real": 1, "test_ai": 2, "metrics": {"detector": {"ROC AUC": row}, "seed_cnn": {"ROC AUC": row}},
                             "comparison": "better by 0.1", "laundered": "0.9 → 0.8", "warning": "tiny"}}
    card = model_card.render(config)
    assert "0.910 [0.850, 0.950]" in card and "better by 0.1" in card and "1,234 parameters" in card and "0.700" in card


def test_model_card_states_budgets_robustness_generators_and_the_id_photo_study():
    row = {"value": 0.8, "ci_low": 0.6, "ci_high": 0.9}
    study = {"portraits": 20, "real": 5, "ai": 15, "faces_found": 18, "best_view": "whole photo",
             "views": {"whole photo": {"ROC AUC": row}, "face crop (whole if none)": {"ROC AUC": row}},
             "real_flagged": {"whole photo": 0.2, "face crop (whole if none)": 0.6}, "ai_flagged": {"whole photo": 0.9},
             "id_frame_life": {"as submitted": {"real_flagged": 0.6, "ai_flagged": 0.9}, "JPEG q70": {"real_flagged": 0.4}},
             "warning": "only 5 real", "training_portrait_share": {"real": 0.03, "ai": 0.88},
             "face_detection": {"portraits": 250, "none": 11, "one": 237, "more": 2}}
    config = {"name": "m", "thresholds": {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05},
              "training": {"seconds": 120, "epochs_run": 10, "best_epoch": 7, "images_per_second": 30.0},
              "baseline_training": {"seconds": 600, "epochs_run": 2, "best_epoch": 1, "images_per_second": 1.5},
              "evaluation": {"metrics": {"detector": {"ROC AUC": row}},
                             "robustness": {"detector": {"original": 0.93, "jpeg50": 0.81}},
                             "per_generator": {"detector": [{"generator": "camera", "label": 0, "images": 9, "flagged_ai": 0.111},
                                                            {"generator": "stylegan2", "label": 1, "images": 4, "flagged_ai": 0.75}]},
                             "operating_thresholds": {"detector": 0.7}},
              "id_photo_case_study": study}
    card = model_card.render(config)
    assert "10 epochs (best 7), 2.0 min" in card and "2 epochs (best 1), 10.0 min" in card and "20× slower" in card
    assert "| original | 0.930 |" in card and "| jpeg50 | 0.810 |" in card
    assert "| camera | real | 9 | 11% |" in card and "| stylegan2 | AI | 4 | 75% |" in card
    assert "no face found on 11, more than one face (a false face, failing the one-face check) on 2" in card
    assert "20 held-out portraits (5 real, 15 AI)" in card and "| as submitted | 60% | 90% |" in card and "only 5 real" in card
    # The measured 20 % of real portraits flagged on the view the verdict uses (target 5 %) becomes a stated limit,
    # in the card and the README; the face crop's worse 60 % is information only, not the verdict.
    assert "20% of the 5 held-out real portraits are flagged `ai` on the whole photo view" in card
    assert "face crop's score is shown for information only" in card
    assert "88% of the AI images are portraits against 3.0% of the real photos" in card
    unexplained = {**config, "id_photo_case_study": {**study, "training_portrait_share": {"real": 0.4, "ai": 0.5}}}
    assert "do not show why" in model_card.render(unexplained)
    calm = {**config, "id_photo_case_study": {**study, "real_flagged": {"whole photo": 0.0}}}
    assert "far more often" not in model_card.render(calm)


def test_the_backbone_comparison_reaches_the_card():
    config = {"name": "m", "architecture": "a", "thresholds": {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05},
              "evaluation": {"backbones": {"folds": 18, "summary": {
                  "clip_vit_b16 (embeds)": {"modern generators: mean AUC": 0.966, "StyleGAN2 held out: TPR @ 5% FPR": 0.061},
                  "vgg16_hed (block3)": {"modern generators: mean AUC": 0.731, "StyleGAN2 held out: TPR @ 5% FPR": None}}}}}
    card = model_card.render(config)
    assert "## Backbones under the leave-out protocol" in card and "same 18 folds" in card
    assert "| StyleGAN2 held out: TPR @ 5% FPR | 0.061 | not measured |" in card


def test_the_card_names_the_shipped_backbone_and_where_another_measured_better():
    summary = {"clip_vit_b16 (blocks)": {"cross-curation pairs: mean AUC": 0.686, "unseen real sources: worst flagged": 0.076,
                                         "modern generators: mean AUC": 0.983},
               "clip_vit_b16 (embeds)": {"cross-curation pairs: mean AUC": 0.719, "unseen real sources: worst flagged": 0.023,
                                         "modern generators: mean AUC": 0.972}}
    config = {"name": "m", "architecture": "a", "thresholds": {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05},
              "semantic": {"encoder": "clip-vit-b16-float-1c3365a51414", "backbone": "clip_vit_b16", "feature": "blocks",
                           "head": {"mean": [0.0], "scale": [1.0], "coef": [1.0], "intercept": 0.0}},
              "evaluation": {"backbones": {"folds": 35, "summary": summary}}}
    card = model_card.render(config)
    assert "The shipped semantic expert reads **clip_vit_b16 (blocks)**." in card
    # The column is the recorded backbone, not a guess from the encoder id: an encoder that is none of them gets no line.
    online = {**config, "semantic": {**config["semantic"], "backbone": None}}
    assert "The shipped semantic expert reads" not in model_card.render(online)
    # Fewer real photos flagged is better; more AUC is better; the row where blocks lead is not listed.
    assert "cross-curation pairs: mean AUC: clip_vit_b16 (embeds) 0.719 against 0.686" in card
    assert "unseen real sources: worst flagged: clip_vit_b16 (embeds) 0.023 against 0.076" in card
    assert "modern generators: mean AUC: clip" not in card
    summary["clip_vit_b16 (blocks)"] = {"cross-curation pairs: mean AUC": 0.8, "unseen real sources: worst flagged": 0.01,
                                        "modern generators: mean AUC": 0.99}
    assert "the best column on every row" in model_card.render(config)


def test_the_card_says_what_the_out_of_source_fit_decided_and_when_no_expert_reaches_the_bar():
    base = {"name": "m", "architecture": "a", "thresholds": {"ai": 0.56, "real": 0.37, "target_fpr": 0.05, "target_fnr": 0.05},
            "recipe": {"fusion_min_auc": 0.6},
            "semantic": {"encoder": "clip", "feature": "blocks", "head": {"mean": [0.0], "scale": [1.0], "coef": [1.0], "intercept": 0.0}},
            "fusion": {"weights": {"semantic": 1.0, "forensic": 0.0}, "fitted_on": 1804, "basis": "out-of-source",
                       "excluded": {"forensic": "out-of-source ROC AUC 0.47 < 0.60"}, "rule": "P(AI) = σ(…)"}}
    weak = {**base, "out_of_source": {"expert_auc": {"semantic": 0.57, "forensic": 0.47}, "excluded": {"forensic": "…"},
                                      "predictions": 1804, "folds": 3, "real_flagged_by_curation": {"nba": 0.098, "stock-*": 0.074, "x": 0.0}}}
    card = model_card.render(weak)
    assert "1804 predictions" in card and "semantic 0.570, forensic 0.470" in card
    assert "No expert reaches ROC AUC 0.60" in card and "semantic decides" in card and "nba 9.8%" in card
    strong = {**weak, "out_of_source": {**weak["out_of_source"], "expert_auc": {"semantic": 0.81, "forensic": 0.47}}}
    assert "No expert reaches" not in model_card.render(strong) and "runs the wrong way" not in card
    reversed_forensic = {**weak, "calibration": {"slope": -0.079, "intercept": -0.18}}
    assert "forensic expert's out-of-source calibration runs the wrong way (slope -0.079)" in model_card.render(reversed_forensic)
    assert "in-sample" in model_card.render(base)


def test_sections_not_measured_say_so_in_the_card_and_never_print_a_question_mark() -> None:
    card = model_card.render(validate_config({"name": "fresh"}))
    assert "?" not in card
    assert "Architecture: `not measured`" in card and "Trained not measured" in card
    assert "no training-data summary is stored" in card and "Not measured: notebook 03 stores the evaluation" in card
    study = {"portraits": 4, "real": 1, "ai": 3, "faces_found": None}
    card = model_card.render(validate_config({"name": "m", "id_photo_case_study": study}))
    assert "4 held-out portraits (1 real, 3 AI); a face was found in not measured" in card


def test_the_card_says_whether_the_fusion_beats_its_best_expert_on_the_pairs() -> None:
    def pair(name: str, fused: float, semantic: float, forensic: float | None) -> dict:
        return {"held out": f"pair: {name}", "kind": "curation pair", "class": "pair", "view": "re-encoded",
                "ROC AUC": fused, "semantic AUC": semantic, "forensic AUC": forensic}

    def card(*rows: dict) -> str:
        summary = {"cross_curation_folds": len(rows), "cross_curation_mean_auc": 0.7, "cross_curation_auc": {}}
        return model_card.render(validate_config({"name": "m", "evaluation": {"protocol": {"rows": list(rows), "summary": summary}}}))

    better = card(pair("a + b", 0.9, 0.8, 0.6), pair("c + d", 0.7, 0.6, 0.7))
    assert "fused detector 0.800; semantic expert alone 0.700; forensic expert alone 0.650" in better
    assert "the fusion adds +0.100 over the semantic expert" in better
    worse = card(pair("a + b", 0.6, 0.8, 0.5))
    assert "**the fusion does worse than the semantic expert alone (-0.200)**" in worse
    # An expert never measured is left out, not averaged as 0; equal scores say the other expert added nothing.
    alone = card(pair("a + b", 0.8, 0.8, None))
    assert "forensic expert alone" not in alone and "the other expert adds nothing here" in alone


def test_shares_under_ten_percent_keep_one_decimal_where_the_targets_are_read():
    # 9.8 % must not read as the 10 % limit, nor a mean of 0.5 % as its worst source's 1.4 %.
    assert [model_card.percent(v) for v in (0.0, 0.005, 0.014, 0.098, 0.1, 0.876, 1.0)] == ["0%", "0.5%", "1.4%", "9.8%", "10%", "88%", "100%"]
    assert model_card.percent(None) == model_card.NOT_MEASURED and model_card.percent(float("nan")) == "n/a"


def test_a_model_trained_on_data_without_sources_or_folds_says_what_was_not_measured() -> None:
    config = validate_config({"name": "yours", "training_data": {"images": 80, "train": 50, "validation": 8, "test": 22,
                                                                 "grouped_by": None},
                              "evaluation": {"protocol": {"rows": []}}})
    card = model_card.render(config)
    assert "Split image by image" in card and "the in-sample figures below are optimistic" in card
    assert "**Not measured:** the dataset names no AI generator" in card and "| held out |" not in card
    grouped = model_card.render(validate_config({"name": "m", "training_data": {"images": 80}}))
    assert "Split grouped by `source`" in grouped  # a detector.json from before the field: the split was grouped


def test_the_card_names_the_low_resolution_side_the_model_recorded_not_todays_default() -> None:
    import json
    from pathlib import Path

    config = json.loads(Path("models/default/detector.json").read_text())
    config["recipe"] = {**config["recipe"], "lowres_views": True, "lowres_side": 96}
    assert "low-resolution copies (96 px short side" in model_card.render(validate_config(config))
    del config["recipe"]["lowres_side"]  # saved before the side was recorded: those models all trained at 128 px
    assert "low-resolution copies (128 px short side" in model_card.render(validate_config(config))
    config["recipe"]["lowres_views"] = False
    assert "low-resolution copies" not in model_card.render(validate_config(config))
