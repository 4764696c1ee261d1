"""The model card and the README's result blocks (aiornot.reporting.model_card), written from the typed detector.json."""

from __future__ import annotations

import pytest

from aiornot.reporting import model_card
from aiornot.contract.config import validate_config


def test_model_card_and_readme_block_come_from_the_config():
    row = {"value": 0.91, "ci_low": 0.85, "ci_high": 0.95}
    config = {"name": "m", "architecture": "forensic_detector", "parameters": 1234, "size_mb": 1.4, "crop_size": 64,
              "crops_per_image": 4, "thresholds": {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05},
              "training_data": {"images": 10, "train": 6, "validation": 1, "test": 3, "generators": ["stylegan2"]},
              "evaluation": {"test_images": 3, "test_real": 1, "test_ai": 2, "metrics": {"detector": {"ROC AUC": row}, "seed_cnn": {"ROC AUC": row}},
                             "comparison": "better by 0.1", "laundered": "0.9 → 0.8", "warning": "tiny"}}
    card = model_card.render(config)
    assert "0.910 [0.850, 0.950]" in card and "better by 0.1" in card and "1,234 parameters" in card and "0.700" in card
    readme = "intro\n<!-- results:start -->\nold\n<!-- results:end -->\nrest"
    updated = model_card.update_readme(readme, config, None)
    assert "old" not in updated and "better by 0.1" in updated and updated.endswith("rest")
    with pytest.raises(ValueError, match="markers"):
        model_card.update_readme("no markers", config, None)


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
    assert "88% of the AI images are portraits against 3% of the real photos" in card
    unexplained = {**config, "id_photo_case_study": {**study, "training_portrait_share": {"real": 0.4, "ai": 0.5}}}
    assert "do not show why" in model_card.render(unexplained) and "원인을 알 수 없습니다" in model_card.readme_block_ko(unexplained)
    assert "20% of the 5 held-out real portraits" in model_card.readme_block(config, None)
    korean = model_card.readme_block_ko(config)
    assert "전체 사진 20%" in korean and "목표 5%보다" in korean and "AI 이미지의 88%" in korean
    readme = "요약\n<!-- results-ko:start -->\n옛\n<!-- results-ko:end -->\n<!-- results:start -->\nold\n<!-- results:end -->"
    updated = model_card.update_readme(readme, config, None)
    assert "옛" not in updated and "전체 사진 20%" in updated.split("<!-- results:start -->")[0]
    calm = {**config, "id_photo_case_study": {**study, "real_flagged": {"whole photo": 0.0}}}
    assert "far more often" not in model_card.render(calm)


def test_readme_speed_lines_come_from_the_benchmark():
    rate = lambda b1, b32: {"batch1": {"images_per_second": b1}, "batch32": {"images_per_second": b32}}  # noqa: E731
    benchmark = {"machine": {"cpus": 2}, "default_runtime": "detector (TFLite)", "target_speedup": 10.0, "verdict": "PASS",
                 "speedup": {"batch1": 30.0, "batch32": 20.0}, "speedup_keras": {"batch1": 11.0, "batch32": 19.0},
                 "results": {"seed_cnn": {**rate(20, 30), "size_mb": 150.0}, "detector": {**rate(220, 570), "size_mb": 1.4},
                             "detector (TFLite)": rate(600, 600)}}
    block = model_card.readme_block({"evaluation": {"metrics": {}}}, benchmark)
    assert "on its default runtime, TFLite, scores 30.0× (batch 1) and 20.0× (batch 32)" in block and "PASS" in block
    assert "600 vs 220 images/s at batch 1" in block and "11.0× and 19.0×" in block and "1.4 MB vs 150 MB" in block


def test_the_backbone_comparison_reaches_the_card_and_both_readme_blocks():
    config = {"name": "m", "architecture": "a", "thresholds": {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05},
              "evaluation": {"backbones": {"folds": 18, "summary": {
                  "clip_vit_b16 (embeds)": {"modern generators: mean AUC": 0.966, "StyleGAN2 held out: TPR @ 5% FPR": 0.061},
                  "vgg16_hed (block3)": {"modern generators: mean AUC": 0.731, "StyleGAN2 held out: TPR @ 5% FPR": None}}}}}
    card = model_card.render(config)
    assert "## Backbones under the leave-out protocol" in card and "same 18 folds" in card
    assert "| StyleGAN2 held out: TPR @ 5% FPR | 0.061 | not measured |" in card
    assert "clip_vit_b16 (embeds) 0.966, vgg16_hed (block3) 0.731" in model_card.readme_block(config, None)
    assert "vgg16_hed (block3) 0.731" in model_card.readme_block_ko(config)
    assert "Backbones" not in model_card.readme_block({**config, "evaluation": {}}, None)


def test_the_cross_curation_headline_leads_the_readme_and_says_met_or_missed():
    def config_with(mean_auc: float, flagged: dict[str, float]) -> dict:
        summary = {"cross_curation_folds": 2, "cross_curation_mean_auc": mean_auc, "cross_curation_min_auc": mean_auc - 0.05,
                   "cross_curation_auc": {"ai-a + real-a": mean_auc - 0.05, "ai-b + real-b": mean_auc + 0.05},
                   "unseen_real_flagged": flagged, "unseen_real_flagged_mean": sum(flagged.values()) / len(flagged),
                   "unseen_real_flagged_max": max(flagged.values())}
        return {"name": "m", "architecture": "a", "thresholds": {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05},
                "evaluation": {"protocol": {"summary": summary, "rows": []}}}

    good = model_card.readme_block(config_with(0.93, {"real-a": 0.02, "real-b": 0.04}), None)
    assert "Cross-curation pairs" in good and "0.930 over 2 pairs" in good and good.count("— met") >= 2
    assert good.index("Cross-curation pairs") < good.index("Detail")
    bad = model_card.readme_block(config_with(0.71, {"real-a": 0.02, "real-b": 0.40}), None)
    assert "0.710 over 2 pairs (lowest 0.660) — **missed**" in bad and "worst 40% (real-b)" in bad and "human check" in bad
    korean = model_card.readme_block_ko(config_with(0.71, {"real-a": 0.02, "real-b": 0.40}))
    assert "출처 묶음 제외 검증" in korean and "미달" in korean


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
    assert "No expert reaches ROC AUC 0.60" in card and "semantic decides" in card and "nba 10%" in card
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
    assert "has not been evaluated yet" in model_card.readme_block({"name": "m"}, None)
