"""The typed responses of the API; they are its OpenAPI documentation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiornot import __version__
from aiornot.imageio import ALLOWED_FORMATS, DEFAULT_MAX_PIXELS

CAUTION_EN = (
    "An 'AI' verdict is a reason for a person to check the photo and the applicant, not proof. "
    "A 'real' verdict is not a guarantee either."
)
CAUTION_KO = (
    "'AI 생성' 판정은 담당자가 사진과 신청인을 직접 확인해야 할 이유일 뿐, 증거가 아닙니다. "
    "'실제 사진' 판정도 진본임을 보증하지 않습니다."
)


Verdict = Literal["ai", "real", "inconclusive"]


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. not_an_image, file_too_large")
    message: str = Field(description="what was wrong and what to do, in English")
    message_ko: str = Field(description="the same, in Korean")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Signal(BaseModel):
    """One piece of provenance evidence read from the file (see aiornot.provenance)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="c2pa, xmp_source_type, generator_metadata, sd_watermark or camera_exif")
    # Plain strings, not enums: a status the provenance module adds later must not become a 500.
    status: str = Field(description="found, not_found, invalid or error")
    strength: str = Field(description="strong_ai, weak_ai, weak_camera or none")
    summary: str
    summary_ko: str
    details: dict[str, Any] = Field(default_factory=dict)


class Face(BaseModel):
    """The main face box in pixels of the decoded image (EXIF orientation applied)."""

    x: int
    y: int
    w: int
    h: int
    confidence: float
    eyes: list[list[int]] = Field(default_factory=list)


class Check(BaseModel):
    """One ID-photo rule. It measures usability as an ID photo, not AI generation."""

    name: str
    value: float | int | None = None
    passed: bool
    reason: str
    reason_ko: str
    threshold: str


class ThresholdsOut(BaseModel):
    ai: float = Field(description="score at or above which the pixel verdict is 'ai'")
    real: float = Field(description="score below which the pixel verdict is 'real'; between: 'inconclusive'")
    target_fpr: float
    target_fnr: float


class DetectResult(BaseModel):
    """The verdict on one photo."""

    verdict: Verdict = Field(description="final verdict after provenance evidence is combined by `rule`")
    score: float = Field(ge=0, le=1, description="calibrated P(AI) from the pixels")
    pixel_verdict: Verdict = Field(description="the verdict of the pixels alone")
    experts: dict[str, float] = Field(description="each expert's calibrated P(AI): `semantic` (frozen CLIP features + head), `forensic` (CNN on native-resolution tiles)")
    fusion: str = Field(description="the stated rule that combined the experts' scores into `score`")
    fusion_ko: str
    rule: str = Field(description="the sentence of the combination rule that decided the verdict")
    rule_ko: str
    model: str
    thresholds: ThresholdsOut
    signals: list[Signal] = Field(description="provenance evidence: C2PA, IPTC/XMP, generator metadata, watermark, camera EXIF")
    face: Face | None = Field(None, description="ID-photo mode: the main face box (null when none was found)")
    face_score: float | None = Field(None, description="ID-photo mode: P(AI) of the face crop alone")
    checks: list[Check] | None = Field(None, description="ID-photo mode: the ID-photo checks")
    md5: str
    width: int
    height: int
    format: str
    elapsed_ms: float = Field(description="time spent scoring, in milliseconds")
    notes: list[str] = Field(default_factory=list, description="what the decoder changed, e.g. EXIF orientation applied")
    external_id: str | None = Field(None, description="the caller's own reference, echoed back unchanged")
    heatmap: str | None = Field(None, description="with heatmap=true: a PNG data URL of P(AI) per tile over the image")
    caution: str = CAUTION_EN
    caution_ko: str = CAUTION_KO


class BatchItem(BaseModel):
    """One file of a batch: ``result`` when it was scored, ``error`` when it could not be."""

    index: int = Field(description="position of the file in the request, from 0")
    filename: str | None = Field(None, description="the file name the client sent, echoed back (never stored)")
    status: int = Field(description="the HTTP status this file alone would have had")
    result: DetectResult | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    count: int
    scored: int
    failed: int
    external_id: str | None = None
    items: list[BatchItem]


class HealthResponse(BaseModel):
    status: Literal["ok", "no_model"]
    detail: str | None = Field(None, description="why there is no model, and what to do")
    detail_ko: str | None = None
    model: str | None = None
    version: str = __version__
    api_key_required: bool
    max_upload_bytes: int
    max_batch_files: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    formats: list[str] = Field(default_factory=lambda: list(ALLOWED_FORMATS))


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    name: str
    crop_size: int | None = None
    crops_per_image: int | None = None
    max_tiles: int | None = Field(None, description="the forensic expert scores up to this many native-resolution tiles")
    experts: list[str] = Field(default_factory=list, description="the experts whose calibrated scores are fused")
    fusion: str | None = Field(None, description="the stated rule that fuses the experts' scores")
    thresholds: ThresholdsOut
    calibration: dict[str, float] = Field(description="the forensic expert's Platt calibration")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
