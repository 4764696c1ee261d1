"""The README's results blocks (aiornot.reporting.readme): English and Korean, from the typed detector.json."""

from __future__ import annotations

import pytest

from aiornot.contract import messages
from aiornot.reporting import readme

THRESHOLDS = {"ai": 0.7, "real": 0.3, "target_fpr": 0.05, "target_fnr": 0.05}
ROW = {"value": 0.8, "ci_low": 0.6, "ci_high": 0.9}


def case_study_config(**study_changes) -> dict:
    """A model whose ID-photo case study flags 20 % of real portraits on the whole photo (target 5 %)."""
    study = {"portraits": 20, "real": 5, "ai": 15, "views": {"whole photo": {"ROC AUC": ROW}},
             "real_flagged": {"whole photo": 0.2, "face crop (whole if none)": 0.6}, "ai_flagged": {"whole photo": 0.9},
             "training_portrait_share": {"real": 0.03, "ai": 0.88}, **study_changes}
    return {"name": "m", "thresholds": THRESHOLDS, "evaluation": {"metrics": {"detector": {"ROC AUC": ROW}}}, "id_photo_case_study": study}


def test_the_results_block_replaces_the_text_between_its_markers():
    config = {"name": "m", "architecture": "forensic_detector", "thresholds": THRESHOLDS,
              "evaluation": {"test_images": 3, "test_real": 1, "test_ai": 2, "metrics": {"detector": {"ROC AUC": ROW}},
                             "comparison": "better by 0.1", "laundered": "0.9 → 0.8", "warning": "tiny"}}
    text = "intro\n<!-- results:start -->\nold\n<!-- results:end -->\nrest"
    updated = readme.update_readme(text, config, None)
    assert "old" not in updated and "better by 0.1" in updated and "0.800 [0.600, 0.900]" in updated and updated.endswith("rest")
    with pytest.raises(ValueError, match="markers"):
        readme.update_readme("no markers", config, None)


def test_the_real_portrait_limit_reaches_both_blocks_with_its_likely_cause():
    config = case_study_config()
    assert "20% of the 5 held-out real portraits" in readme.readme_block(config, None)
    korean = readme.readme_block_ko(config)
    assert "전체 사진 20%" in korean and "얼굴 영역 60%" in korean and "목표 5%보다" in korean and "AI 이미지의 88%" in korean
    text = "요약\n<!-- results-ko:start -->\n옛\n<!-- results-ko:end -->\n<!-- results:start -->\nold\n<!-- results:end -->"
    updated = readme.update_readme(text, config, None)
    assert "옛" not in updated and "전체 사진 20%" in updated.split("<!-- results:start -->")[0]
    unexplained = readme.readme_block_ko(case_study_config(training_portrait_share={"real": 0.4, "ai": 0.5}))
    assert "원인을 알 수 없습니다" in unexplained
    assert "목표 5%보다" not in readme.readme_block_ko(case_study_config(real_flagged={"whole photo": 0.0}))


def test_readme_speed_lines_come_from_the_benchmark():
    rate = lambda b1, b32: {"batch1": {"images_per_second": b1}, "batch32": {"images_per_second": b32}}  # noqa: E731
    benchmark = {"machine": {"cpus": 2}, "default_runtime": "detector (TFLite)", "target_speedup": 10.0, "verdict": "PASS",
                 "speedup": {"batch1": 30.0, "batch32": 20.0}, "speedup_keras": {"batch1": 11.0, "batch32": 19.0},
                 "results": {"seed_cnn": {**rate(20, 30), "size_mb": 150.0}, "detector": {**rate(220, 570), "size_mb": 1.4},
                             "detector (TFLite)": rate(600, 600)}}
    block = readme.readme_block({"evaluation": {"metrics": {}}}, benchmark)
    assert "on its default runtime, TFLite, scores 30.0× (batch 1) and 20.0× (batch 32)" in block and "PASS" in block
    assert "600 vs 220 images/s at batch 1" in block and "11.0× and 19.0×" in block and "1.4 MB vs 150 MB" in block


def test_the_whole_path_latency_line_names_the_experts_it_timed():
    benchmark = {"machine": {"cpus": 2}, "speedup": {}, "results": {"seed_cnn": {"size_mb": 150.0}, "detector": {"size_mb": 1.4}},
                 "pipeline": {"p50_ms": 471.0, "p95_ms": 764.0, "batch32_images_per_second": 1.9, "experts": ["semantic"],
                              "experts_not_run": ["forensic"]}}
    block = readme.readme_block({"evaluation": {"metrics": {}}}, benchmark)
    assert "(decode, the semantic expert, face, provenance" in block and "p50 471 ms" in block
    assert "The forensic expert has fusion weight 0, so it is not run." in block
    benchmark["pipeline"].update(experts=["semantic", "forensic"], experts_not_run=[])
    both = readme.readme_block({"evaluation": {"metrics": {}}}, benchmark)
    assert "(decode, both experts, face, provenance" in both and "not run" not in both
    assert "face-crop score" not in both  # a benchmark written before the option has no such figure


def test_the_whole_path_line_adds_the_opt_in_face_score_path():
    benchmark = {"machine": {"cpus": 2}, "speedup": {}, "results": {"seed_cnn": {"size_mb": 150.0}, "detector": {"size_mb": 1.4}},
                 "pipeline": {"p50_ms": 471.0, "p95_ms": 764.0, "batch32_images_per_second": 1.9, "experts": ["semantic"],
                              "experts_not_run": [], "with_face_score": {"p50_ms": 902.4, "photos": 8, "faces_scored": 6}}}
    block = readme.readme_block({"evaluation": {"metrics": {}}}, benchmark)
    assert "p50 471 ms" in block  # the default ID-photo path stays the headline figure
    assert ("With the opt-in face-crop score (`--face-score`, information only) the same path takes p50 902 ms "
            "(6 of 8 photos with a face scored).") in block


def test_the_backbone_comparison_reaches_both_blocks():
    config = {"name": "m", "architecture": "a", "thresholds": THRESHOLDS,
              "evaluation": {"backbones": {"folds": 18, "summary": {
                  "clip_vit_b16 (embeds)": {"modern generators: mean AUC": 0.966, "StyleGAN2 held out: TPR @ 5% FPR": 0.061},
                  "vgg16_hed (block3)": {"modern generators: mean AUC": 0.731, "StyleGAN2 held out: TPR @ 5% FPR": None}}}}}
    assert "clip_vit_b16 (embeds) 0.966, vgg16_hed (block3) 0.731" in readme.readme_block(config, None)
    assert "vgg16_hed (block3) 0.731" in readme.readme_block_ko(config)
    assert "Backbones" not in readme.readme_block({**config, "evaluation": {}}, None)


def test_the_cross_curation_headline_leads_the_readme_and_says_met_or_missed():
    def config_with(mean_auc: float, flagged: dict[str, float]) -> dict:
        summary = {"cross_curation_folds": 2, "cross_curation_mean_auc": mean_auc, "cross_curation_min_auc": mean_auc - 0.05,
                   "cross_curation_auc": {"ai-a + real-a": mean_auc - 0.05, "ai-b + real-b": mean_auc + 0.05},
                   "unseen_real_flagged": flagged, "unseen_real_flagged_mean": sum(flagged.values()) / len(flagged),
                   "unseen_real_flagged_max": max(flagged.values())}
        return {"name": "m", "architecture": "a", "thresholds": THRESHOLDS, "evaluation": {"protocol": {"summary": summary, "rows": []}}}

    good = readme.readme_block(config_with(0.93, {"real-a": 0.02, "real-b": 0.04}), None)
    assert "Cross-curation pairs" in good and "0.930 over 2 pairs" in good and good.count("— met") >= 2
    assert good.index("Cross-curation pairs") < good.index("Detail")
    assert "평균 ROC AUC 0.930(재인코딩 기준, 목표 0.90 달성)" in readme.readme_block_ko(config_with(0.93, {"real-a": 0.02, "real-b": 0.04}))
    bad = readme.readme_block(config_with(0.71, {"real-a": 0.02, "real-b": 0.40}), None)
    assert "0.710 over 2 pairs (lowest 0.660) — **missed**" in bad and "worst 40% (real-b)" in bad and "human check" in bad
    korean = readme.readme_block_ko(config_with(0.71, {"real-a": 0.02, "real-b": 0.40}))
    assert "출처 묶음 제외 검증" in korean and "미달" in korean and "증거가 아닙니다" in korean


def test_both_blocks_say_whether_held_out_stylegan2_faces_are_caught_and_warn_when_they_are_not():
    def config_with(tpr: float) -> dict:
        summary = {"cross_curation_folds": 1, "cross_curation_mean_auc": 0.9, "cross_curation_auc": {"ai-a + real-a": 0.9},
                   "stylegan2_tpr_at_5pct_fpr": tpr, "stylegan2_auc": 0.84}
        return {"name": "m", "architecture": "a", "thresholds": THRESHOLDS, "evaluation": {"protocol": {"summary": summary, "rows": []}}}

    missed, met = config_with(0.141), config_with(0.85)
    korean = readme.readme_block_ko(missed)
    assert "StyleGAN2 얼굴을 학습에서 뺐을 때" in korean and "탐지율 0.141(ROC AUC 0.840; 목표 0.8 미달)" in korean
    assert "검증이 끝난 것은 아닙니다" in korean
    assert "목표 0.8 달성" in readme.readme_block_ko(met) and "검증이 끝난 것은 아닙니다" not in readme.readme_block_ko(met)
    english = readme.readme_block(missed, None)
    assert "0.141 (ROC AUC 0.840) — **missed**" in english and "does not clear it" in english
    assert "does not clear it" not in readme.readme_block(met, None)
    assert "StyleGAN2" not in readme.readme_block_ko({"name": "m", "evaluation": {"protocol": {"summary": {}, "rows": []}}})


def test_the_korean_block_reads_its_sentences_from_the_catalogue():
    assert readme.readme_block_ko({"name": "m"}) == messages.text("card.summary.not_evaluated", "ko")
    assert "has not been evaluated yet" in readme.readme_block({"name": "m"}, None)
    # Every card.* entry is used by the README's Korean block: none is left behind when a sentence changes.
    source = open(readme.__file__, encoding="utf-8").read()
    unused = [key for key in messages.catalogue() if key.startswith("card.") and f'"{key.removeprefix("card.")}"' not in source]
    assert not unused, unused


def test_both_blocks_state_the_fusion_rule_and_the_korean_one_in_korean():
    fusion = {"weights": {"semantic": 1.0, "forensic": 0.0}, "intercept": 0.0, "fitted_on": 1804, "basis": "out-of-source",
              "excluded": {"forensic": "out-of-source ROC AUC 0.56 < 0.60"}}
    config = {**case_study_config(), "fusion": fusion}
    assert "Fusion rule of the default model: P(AI) = σ(1.00·logit(semantic) + 0.00·logit(forensic) + 0.00)" in readme.readme_block(config, None)
    korean = readme.readme_block_ko(config)
    assert "기본 모델의 결합 규칙" in korean and "logit(의미)" in korean and "포렌식: 가중치 0" in korean
    assert "기본 모델의 결합 규칙" not in readme.readme_block_ko(case_study_config())  # no fusion stored, no line


def test_both_blocks_say_what_the_verdicts_cost_the_office_on_the_files_as_submitted():
    outcomes = {"file as submitted": {"real_called_inconclusive": 0.17, "ai_called_real": 0.05},
                "re-saved as JPEG q70": {"real_called_inconclusive": 0.9, "ai_called_real": 0.6}}
    config = case_study_config(caveat_outcomes=outcomes)
    assert "17% of the real portraits go to a human check (`inconclusive`) and 5.0% of the AI portraits are called 'real'" \
        in readme.readme_block(config, None)
    assert "실제 인물 사진의 17%는 사람의 확인으로 넘어가고(판단 보류), AI 인물 사진의 5.0%는" in readme.readme_block_ko(config)
    # A case study stored before these shares were: no sentence, and no invented number.
    older = case_study_config(caveat_outcomes={"file as submitted": {"real_called_ai": 0.0}})
    assert "human check" not in readme.readme_block(older, None) and "사람의 확인으로" not in readme.readme_block_ko(older)
