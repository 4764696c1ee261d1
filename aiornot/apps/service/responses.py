"""The typed responses of the API; they are its OpenAPI documentation.

The verdict on a photo is derived from the one result contract, :class:`aiornot.contract.result.Result`."""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiornot import __version__
from aiornot.io.decode import ALLOWED_FORMATS, DEFAULT_MAX_PIXELS
from aiornot.contract.messages import message
from aiornot.contract.result import derived_model
from aiornot.contract.scoring import Calibration, Thresholds

#: The caution every verdict carries (the catalogue's ``service.caution``).
CAUTION_EN, CAUTION_KO = message("service.caution").en, message("service.caution").ko


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. not_an_image, file_too_large")
    message: str = Field(description="what was wrong and what to do, in English")
    message_ko: str = Field(description="the same, in Korean")


class ErrorResponse(BaseModel):
    error: ErrorBody


#: The verdict on one photo: :class:`aiornot.contract.result.Result` without what only scan lines carry,
#: with what a scored photo always has made required, and the API's own fields added.
DetectResult = derived_model(
    "DetectResult", "The verdict on one photo.",
    drop=("path", "error", "error_code", "heatmap"),
    required=("verdict", "score", "pixel_verdict", "experts", "fusion", "fusion_ko", "rule", "rule_ko", "model", "signals",
              "thresholds", "md5", "width", "height", "format", "elapsed_ms"),
    external_id=(str | None, Field(None, description="the caller's own reference, echoed back unchanged")),
    heatmap=(str | None, Field(None, description="with heatmap=true: a PNG data URL of P(AI) per tile over the image")),
    caution=(str, Field(CAUTION_EN)),
    caution_ko=(str, Field(CAUTION_KO)),
)


#: Longest file name echoed back (in characters); a longer one is cut with an ellipsis.
MAX_DISPLAY_NAME = 255
# Characters that change how the text around them is shown or read: bidirectional embeddings,
# overrides and isolates (U+202E can make "gpj.exe" read as "exe.jpg"), marks, line and paragraph
# separators. Control characters (newlines, tabs, escapes) are caught by their Unicode category.
_DISPLAY_UNSAFE = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


def display_name(name: str | None) -> str | None:
    """A file name as it may be shown to a person: every control, bidirectional or separator
    character replaced by U+FFFD (visibly), at most :data:`MAX_DISPLAY_NAME` characters.

    The page applies the same rule to the names it shows (``displayName`` in ``static/app.js``).
    """
    if name is None:
        return None
    safe = "".join("\ufffd" if ch in _DISPLAY_UNSAFE or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
                   for ch in name)
    return safe if len(safe) <= MAX_DISPLAY_NAME else safe[:MAX_DISPLAY_NAME - 1] + "…"


class BatchItem(BaseModel):
    """One file of a batch: ``result`` when it was scored, ``error`` when it could not be."""

    index: int = Field(description="position of the file in the request, from 0")
    filename: str | None = Field(None, description="the file name the client sent, made safe to display (control and "
                                                   "bidirectional characters shown as U+FFFD); never stored")
    status: int = Field(description="the HTTP status this file alone would have had")
    result: DetectResult | None = None
    error: ErrorBody | None = None

    @field_validator("filename")
    @classmethod
    def _displayable(cls, value: str | None) -> str | None:
        return display_name(value)


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
    thresholds: Thresholds
    calibration: Calibration = Field(description="the forensic expert's Platt calibration")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
