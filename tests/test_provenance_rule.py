"""The rule that combines the pixel verdict with the provenance signals (aiornot.evidence.provenance.rule):
every branch, on hand-built reports."""

from __future__ import annotations

import pytest

from aiornot.evidence.provenance import ProvenanceReport, Signal
from aiornot.evidence.provenance.rule import RULE_EN, RULE_KO, combine_verdict


def make_report(*signals: tuple[str, str, str]) -> ProvenanceReport:
    return ProvenanceReport(tuple(Signal(n, status, strength, "s", "요약", {}) for n, status, strength in signals))


NOTHING = make_report(("c2pa", "not_found", "none"), ("sd_watermark", "not_found", "none"))
DECLARED = make_report(("c2pa", "not_found", "none"), ("generator_metadata", "found", "strong_ai"))
CAMERA = make_report(("camera_exif", "found", "weak_camera"))
INVALID_C2PA = make_report(("c2pa", "invalid", "weak_ai"))


@pytest.mark.parametrize("pixel_verdict", ["real", "inconclusive", "ai", None])
def test_a_declaration_of_generation_decides_ai_whatever_the_pixels(pixel_verdict):
    verdict, rule_en, rule_ko = combine_verdict(pixel_verdict, 0.01 if pixel_verdict else None, DECLARED)
    assert verdict == "ai"
    assert "declares it was generated" in rule_en and "generator metadata" in rule_en
    assert "AI" in rule_ko and "생성 도구 메타데이터" in rule_ko


@pytest.mark.parametrize("pixel_verdict", ["ai", "real", "inconclusive"])
def test_without_declaration_the_pixel_verdict_stands(pixel_verdict):
    verdict, rule_en, rule_ko = combine_verdict(pixel_verdict, 0.42, NOTHING)
    assert verdict == pixel_verdict
    assert "pixel verdict stands" in rule_en and "0.42" in rule_en
    assert "픽셀 분석 결과를 따릅니다" in rule_ko


def test_no_pixel_verdict_and_no_declaration_is_inconclusive():
    verdict, rule_en, _ = combine_verdict(None, None, NOTHING)
    assert verdict == "inconclusive" and "No pixel verdict" in rule_en


@pytest.mark.parametrize(("pixel_verdict", "expected"), [("ai", "ai"), ("inconclusive", "inconclusive"),
                                                         ("real", "real"), (None, "inconclusive")])
def test_camera_exif_moves_nothing(pixel_verdict, expected):
    verdict, rule_en, rule_ko = combine_verdict(pixel_verdict, None, CAMERA)
    assert verdict == expected
    assert "context only" in rule_en and "위조" in rule_ko


@pytest.mark.parametrize("pixel_verdict", ["real", "ai", "inconclusive"])
def test_an_invalid_c2pa_manifest_alone_changes_nothing(pixel_verdict):
    verdict, rule_en, _ = combine_verdict(pixel_verdict, 0.5, INVALID_C2PA)
    assert verdict == pixel_verdict
    assert "invalid C2PA manifest" in rule_en


@pytest.mark.parametrize(("pixel_verdict", "pixel_score"), [("fake", 0.5), ("real", 1.5), ("ai", float("nan"))])
def test_combine_verdict_rejects_bad_pixel_inputs(pixel_verdict, pixel_score):
    with pytest.raises(ValueError):
        combine_verdict(pixel_verdict, pixel_score, NOTHING)


def test_the_full_rule_text_names_every_branch():
    for phrase in ("declares it was generated", "pixel verdict stands", "invalid C2PA", "Camera EXIF",
                   "not evidence of a real photo"):
        assert phrase in RULE_EN
    assert "C2PA" in RULE_KO and "EXIF" in RULE_KO
