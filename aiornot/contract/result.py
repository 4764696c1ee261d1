"""The result contract: what one image gets, defined once for every product.

:class:`Result` is what :meth:`aiornot.Detector.predict` returns. The ``aiornot scan`` JSON lines
are its :meth:`Result.to_dict`, Ray's Arrow schema is derived from its fields
(:mod:`aiornot.apps.batch`), and the API's response model is derived from it by :func:`derived_model`
(:mod:`aiornot.apps.service.responses`). The verdict names (:data:`VERDICTS`) and their English and
Korean messages (:data:`VERDICT_TEXTS`, from the catalogue :mod:`aiornot.contract.messages`) live here
too; the web page gets them from the server (``GET /v1/catalogue``).

The parts of a result are named ``…Record``: the JSON form of :class:`aiornot.evidence.provenance.Signal`,
:class:`aiornot.evidence.faces.Face` and :class:`aiornot.evidence.faces.Check`. The thresholds are the
model's own :class:`aiornot.contract.scoring.Thresholds`, as ``detector.json`` stores them.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Collection
from typing import Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticUndefined

from aiornot.contract.messages import message
from aiornot.contract.scoring import Thresholds

Verdict = Literal["ai", "real", "inconclusive"]
#: The verdict names, in display order.
VERDICTS: tuple[str, ...] = typing.get_args(Verdict)


# ------------------------------------------------------------------------------ verdict messages
class VerdictText(BaseModel):
    """How a verdict is named and explained to a person, in English and Korean."""

    name: Verdict
    label: str
    label_ko: str
    explanation: str
    explanation_ko: str


def _verdict_text(name: str) -> VerdictText:
    label, explanation = message(f"verdict.{name}.label"), message(f"verdict.{name}.explanation")
    return VerdictText(name=name, label=label.en, label_ko=label.ko, explanation=explanation.en, explanation_ko=explanation.ko)


#: The messages for each verdict, keyed by name (one entry per name in :data:`VERDICTS`), from the catalogue.
VERDICT_TEXTS: dict[str, VerdictText] = {name: _verdict_text(name) for name in VERDICTS}


class Catalogue(BaseModel):
    """The names and messages a client needs to show results (the page reads it at start)."""

    verdicts: list[VerdictText] = Field(description="every verdict the service can return, with its messages")


def catalogue() -> Catalogue:
    """The catalogue of verdict messages, in the order of :data:`VERDICTS`."""
    return Catalogue(verdicts=[VERDICT_TEXTS[name] for name in VERDICTS])


# ------------------------------------------------------------------------------ the parts of a result
class SignalRecord(BaseModel):
    """One piece of provenance evidence read from the file (see :mod:`aiornot.evidence.provenance`)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="c2pa, xmp_source_type, generator_metadata, sd_watermark or camera_exif")
    # Plain strings, not enums: a status the provenance module adds later must not become an error here.
    status: str = Field(description="found, not_found, invalid, error or unavailable (an optional check that is not installed)")
    strength: str = Field(description="strong_ai, weak_ai, weak_camera or none")
    summary: str
    summary_ko: str
    details: dict[str, Any] = Field(default_factory=dict)


class FaceRecord(BaseModel):
    """The main face box in pixels of the decoded image (EXIF orientation applied)."""

    x: int
    y: int
    w: int
    h: int
    confidence: float
    eyes: list[list[int]] = Field(default_factory=list)


class CheckRecord(BaseModel):
    """One ID-photo rule. It measures usability as an ID photo, not AI generation."""

    name: str
    value: float | int | None = None
    passed: bool
    reason: str
    reason_ko: str
    threshold: str


class CaveatRecord(BaseModel):
    """Something about the file that weakens its verdict without changing it, in both languages."""

    code: str = Field(description="stable code, e.g. strong_jpeg")
    text: str
    text_ko: str


# ------------------------------------------------------------------------------ the result
class Result(BaseModel):
    """One image's outcome — the contract of ``aiornot scan`` lines, Ray rows and the API's JSON.

    ``score`` is the pixel evidence, calibrated P(AI): each expert's calibrated P(AI) is in
    ``experts``, combined by the rule in ``fusion``. ``verdict`` is the final word after provenance
    evidence is combined by the stated ``rule``; ``pixel_verdict`` is the pixels' alone.
    ``error`` is set (and ``score``/``verdict`` are ``None``) when the image could not be read.
    """

    # Frozen: a Result is built once, from finished evidence (aiornot.predict.build_result), and
    # every product shows that same object; a changed copy is `result.model_copy(update=...)`.
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    path: str | None = Field(None, description="the file as given on the command line (scan and batch only)")
    score: float | None = Field(None, ge=0, le=1, description="calibrated P(AI) from the pixels")
    verdict: Verdict | None = Field(None, description="final verdict after provenance evidence is combined by `rule`")
    model: str | None = Field(None, description="the name of the model that scored the image")
    pixel_verdict: Verdict | None = Field(None, description="the verdict of the pixels alone")
    experts: dict[str, float] | None = Field(
        None, description="each expert's calibrated P(AI): `semantic` (frozen CLIP features + head), "
                          "`forensic` (CNN on native-resolution tiles). An expert the fusion rule weighs 0 is not "
                          "run and not listed: `fusion` states its weight 0 and why")
    fusion: str | None = Field(None, description="the stated rule that combined the experts' scores into `score`")
    fusion_ko: str | None = None
    rule: str | None = Field(None, description="the sentence of the combination rule that decided the verdict")
    rule_ko: str | None = None
    error: str | None = Field(None, description="why the image could not be scored")
    error_code: str | None = Field(None, description="stable code of the error, e.g. not_an_image, corrupt")
    width: int | None = None
    height: int | None = None
    format: str | None = None
    md5: str | None = None
    notes: list[str] = Field(default_factory=list, description="what the decoder changed, e.g. EXIF orientation applied")
    signals: list[SignalRecord] = Field(
        default_factory=list, description="provenance evidence: C2PA, IPTC/XMP, generator metadata, watermark, camera EXIF")
    caveats: list[CaveatRecord] = Field(
        default_factory=list, description="what weakens this verdict without changing it, e.g. strong_jpeg: a `real` or "
                                          "`inconclusive` verdict on a strongly compressed JPEG (compression lowers AI scores)")
    face: FaceRecord | None = Field(None, description="ID-photo mode: the main face box (null when none was found)")
    face_score: float | None = Field(None, description="P(AI) of the face crop alone, filled only when face_score was asked "
                                     "(with ID-photo mode) and a face was found; information only, never part of the verdict "
                                     "(the whole photo's score decides)")
    checks: list[CheckRecord] | None = Field(None, description="ID-photo mode: the ID-photo checks")
    thresholds: Thresholds | None = None
    elapsed_ms: float | None = Field(None, description="time spent on this image, in milliseconds: reading and decoding it, "
                                     "its evidence, and its share of its batch's expert pass")
    #: The forensic expert's P(AI) per tile (``explain=True``); an array, never serialised.
    heatmap: np.ndarray | None = Field(None, exclude=True, repr=False)

    @property
    def ok(self) -> bool:
        """True when the image was scored."""
        return self.error is None

    def to_dict(self, *, include_empty: bool = False) -> dict[str, Any]:
        """JSON-safe dict (the heatmap is left out); empty fields too with ``include_empty``."""
        data = self.model_dump()
        if not include_empty:
            data = {key: value for key, value in data.items() if value not in (None, [], {})}
        return data

    @classmethod
    def failure(cls, path: str | None, error: Any, model: str | None = None) -> Result:
        """The result for an image that could not be read (``error``: an ``ImageDecodeError``)."""
        return cls(path=path, error=error.message, error_code=error.code, model=model)


# ------------------------------------------------------------------------------ derived models
def without_none(annotation: Any) -> Any:
    """``X | None`` → ``X`` (any other annotation unchanged)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return kept[0] if len(kept) == 1 else Union[tuple(kept)]
    return annotation


def derived_model(name: str, doc: str, *, drop: Collection[str] = (), required: Collection[str] = (),
                  **extra: tuple[Any, Any]) -> type[BaseModel]:
    """A model for one product, derived from :class:`Result`: some fields left out, some made
    required (no longer ``None``), ``extra`` fields added (``name=(type, Field(...))``).

    The fields it keeps have Result's types, constraints and descriptions: the contract stays written once.
    """
    fields: dict[str, Any] = {}
    for field_name, info in Result.model_fields.items():
        if field_name in drop:
            continue
        annotation, kept = info.annotation, copy.copy(info)
        if field_name in required:
            annotation, kept.default, kept.default_factory = without_none(annotation), PydanticUndefined, None
        fields[field_name] = (annotation, kept)
    return create_model(name, __doc__=doc, **fields, **extra)


__all__ = [
    "VERDICTS", "VERDICT_TEXTS", "CaveatRecord", "Catalogue", "CheckRecord", "FaceRecord", "Result", "SignalRecord",
    "Verdict", "VerdictText", "catalogue", "derived_model", "without_none",
]
