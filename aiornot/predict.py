"""The predict pipeline: from an image source to its :class:`~aiornot.contract.result.Result`, built once.

:meth:`aiornot.Detector.predict_many` runs it batch by batch, and :meth:`~aiornot.Detector.predict`
is ``predict_many`` of one image, so the CLI, the service, Ray batch and the notebooks all get
their Results made the same way:

1. **read** (:func:`read_input`): the bytes, decoded by :func:`aiornot.io.decode.open_image`. A
   header the caller already parsed (the service's :class:`~aiornot.io.decode.ImageHeader`) is
   passed along and never parsed again;
2. **ID-photo evidence** (``id_photo``): face box, ID checks and the face crop (:mod:`aiornot.evidence.faces`);
3. **one expert pass** over the batch's whole images and, only when ``face_score`` is asked too, their
   face crops: a single :meth:`~aiornot.Detector.expert_scores` call over the experts the fusion rule
   uses (one it weighs 0 is not run), then the fusion rule;
4. **provenance evidence** from the file's bytes (:mod:`aiornot.evidence.provenance`) and, on request, the
   forensic expert's tile heatmap;
5. :func:`build_result`: the one place a scored image's Result is constructed, from that finished
   evidence. Result is frozen: nothing sets a field afterwards (``elapsed_ms`` included).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image

from aiornot.evidence import provenance
from aiornot.io.decode import DecodedImage, ImageDecodeError, ImageHeader, ImageSource, from_pixels, open_image, read_bytes
from aiornot.evidence.provenance import ProvenanceReport
from aiornot.contract.messages import message
from aiornot.contract.result import CaveatRecord, Result

if TYPE_CHECKING:
    from aiornot.detector import Detector
    from aiornot.evidence.faces import PortraitAnalysis

__all__ = ["Evidence", "ImageInput", "PredictOptions", "Source", "batches", "build_result", "read_input", "score_batch",
           "verdict_caveats"]

#: The rule sentence of a result whose file's provenance was not read (en, ko).
PIXELS_ONLY_RULE = (message("verdict.rule.pixels_only").en, message("verdict.rule.pixels_only").ko)
#: A JPEG at or below this estimated quality gets the ``strong_jpeg`` caveat when it is not called ``ai``. Measured:
#: re-compressing held-out AI portraits at q70 took those flagged ``ai`` from 92 % to 8 % (notebook 04, "What an ID
#: photo's ordinary life does"), because compression shifts every score down (tools/experiments/jpeg_views.py); the
#: independent check's q90 copies are not affected that much, so the line sits between the two.
STRONG_JPEG_QUALITY = 75
#: Why ``face_score`` alone is refused: the face crop it scores is found in ID-photo mode only.
FACE_SCORE_NEEDS_ID_PHOTO = "face_score=True needs id_photo=True: the face crop it scores is found in ID-photo mode only"


@dataclass(frozen=True)
class PredictOptions:
    """What to gather besides the pixel score (the keyword arguments of ``predict``/``predict_many``).

    ``id_photo``: the face box and the ID checks. ``face_score``: also the face crop's own P(AI),
    information only, never part of the verdict; each crop goes through the experts like a second
    photo (about double an ID photo's CPU time, most of it the semantic expert's CLIP tower), so it
    is off unless asked.
    It needs ``id_photo`` (the crop is found there): asked alone it raises :class:`ValueError`
    rather than silently giving nothing.
    """

    id_photo: bool = False
    face_score: bool = False
    provenance: bool = True
    explain: bool = False

    def __post_init__(self) -> None:
        if self.face_score and not self.id_photo:
            raise ValueError(FACE_SCORE_NEEDS_ID_PHOTO)


@dataclass(frozen=True)
class ImageInput:
    """One source as the pipeline holds it once read: the label its Result carries, the file's
    bytes (for provenance and the md5; None when only pixels were given), the decoded image or
    why it could not be decoded, and the milliseconds reading it took (counted in ``elapsed_ms``)."""

    label: str | None
    data: bytes | None
    image: DecodedImage | ImageDecodeError
    read_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return isinstance(self.image, DecodedImage)

    @property
    def pixel_count(self) -> int:
        """Decoded pixels this input holds (0 when it could not be decoded)."""
        return self.image.width * self.image.height if isinstance(self.image, DecodedImage) else 0


#: What ``predict``/``predict_many`` accept: a path, bytes or a file object; a header already parsed
#: (:func:`aiornot.io.decode.read_header`); pixels already decoded; or an :class:`ImageInput`.
Source = Union[ImageSource, ImageHeader, DecodedImage, ImageInput, np.ndarray, Image.Image]


@dataclass(frozen=True)
class Evidence:
    """What one image's Result states besides its pixel score, all gathered before the Result exists."""

    #: ID-photo mode: the faces, the checks and the crop (None outside ID-photo mode).
    portrait: PortraitAnalysis | None = None
    #: ``face_score``: the fused P(AI) of the face crop, from the batch's one expert pass (None without a face,
    #: or when it was not asked).
    face_score: float | None = None
    #: The file's provenance signals (None when provenance was not read, or only pixels were given).
    provenance: ProvenanceReport | None = None
    #: ``explain``: the forensic expert's P(AI) per tile.
    heatmap: np.ndarray | None = None


# ------------------------------------------------------------------------------------- 1. read
def default_label(source: Source) -> str | None:
    """The ``path`` a Result of ``predict_many`` carries when no label is given: a path as given,
    ``<bytes>`` for bytes and file objects, none for an upload's header or pixels in memory."""
    if isinstance(source, ImageInput):
        return source.label
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (ImageHeader, DecodedImage, np.ndarray, Image.Image)):
        return None
    return "<bytes>"


def read_input(source: Source, label: str | None = None, *, data: bytes | None = None) -> ImageInput:
    """Read and decode one source; never raises for a bad image (the input then holds the error).

    ``data``: the file's bytes when ``source`` is a :class:`DecodedImage` (for provenance and the
    md5). An :class:`ImageHeader` is decoded from its own parse, and Pillow's copy of the pixels is
    freed once they live in the decoded image (a batch may hold many headers).
    """
    if isinstance(source, ImageInput):
        return source if label is None else replace(source, label=label)
    if isinstance(source, DecodedImage):
        return ImageInput(label, data, source)
    if isinstance(source, (np.ndarray, Image.Image)):  # pixels in memory (a notebook's array): no file, no provenance
        try:
            return ImageInput(label, None, from_pixels(source))
        except ImageDecodeError as error:
            return ImageInput(label, None, error)
    started = time.perf_counter()
    try:
        if isinstance(source, ImageHeader):
            data = source.data
            try:
                image: DecodedImage | ImageDecodeError = open_image(data, header=source)
            finally:
                source.close()
        else:
            data = read_bytes(source)
            image = open_image(data)
    except ImageDecodeError as error:
        image = error
    return ImageInput(label, data if isinstance(image, DecodedImage) else None, image, _ms_since(started))


def batches(inputs: Iterable[ImageInput], batch_size: int, max_pixels: int | None) -> Iterator[list[ImageInput]]:
    """Group inputs into batches of at most ``batch_size``; a batch also ends once its decoded
    pixels reach ``max_pixels`` (32 images of 64 megapixels would otherwise hold ~6 GB)."""
    batch: list[ImageInput] = []
    pixels = 0
    for item in inputs:
        batch.append(item)
        pixels += item.pixel_count
        if len(batch) >= batch_size or (max_pixels and pixels >= max_pixels):
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


# --------------------------------------------------------------------------- 2–5. score a batch
def score_batch(detector: Detector, batch: Sequence[ImageInput], options: PredictOptions) -> list[Result]:
    """One Result per input, in order: evidence first, one expert pass, then each Result built once.

    ``elapsed_ms`` of an image is its own reading and evidence time plus an equal share of the
    batch's expert pass (the pass scores the batch's images, and their face crops when
    ``options.face_score`` asks for them, together).
    """
    scored = [item for item in batch if item.ok]
    own_ms = {id(item): item.read_ms for item in scored}
    portraits: list[PortraitAnalysis | None] = []
    for item in scored:
        started = time.perf_counter()
        portraits.append(_portrait(item.image.pixels) if options.id_photo else None)
        own_ms[id(item)] += _ms_since(started)

    started = time.perf_counter()
    # The crops join the pass only on request: each one costs as much as a whole photo.
    crops = [portrait.crop for portrait in portraits if _scores_face(portrait, options)]
    experts, fused = _expert_pass(detector, [item.image.pixels for item in scored] + crops)
    shared_ms = _ms_since(started) / max(1, len(scored))

    results: dict[int, Result] = {}
    crop_index = len(scored)  # the face crops follow the whole images in the pass
    for index, (item, portrait) in enumerate(zip(scored, portraits)):
        face_score = None
        if _scores_face(portrait, options):
            face_score, crop_index = round(float(fused[crop_index]), 6), crop_index + 1
        started = time.perf_counter()
        evidence = Evidence(portrait=portrait, face_score=face_score, provenance=_provenance(item, options),
                            heatmap=detector.heatmap(item.image.pixels) if options.explain else None)
        elapsed = own_ms[id(item)] + shared_ms + _ms_since(started)
        image_experts = {name: float(values[index]) for name, values in experts.items()}
        results[id(item)] = build_result(detector, item, image_experts, float(fused[index]), evidence, elapsed)
    return [results[id(item)] if item.ok else Result.failure(item.label, item.image, detector.name) for item in batch]


def build_result(detector: Detector, item: ImageInput, experts: dict[str, float], score: float, evidence: Evidence,
                 elapsed_ms: float) -> Result:
    """The Result of one scored image, constructed once from its finished evidence.

    ``experts``: each run expert's calibrated P(AI) (those the fusion uses); ``score``: their fusion by the detector's rule.
    The pixel verdict comes from the thresholds; the final verdict from the provenance rule
    (:func:`aiornot.evidence.provenance.combine_verdict`), or the pixels alone when provenance was not read.
    """
    decoded = item.image
    assert isinstance(decoded, DecodedImage), "build_result needs a decoded image; a failure is Result.failure"
    pixel_verdict = detector.thresholds.verdict(score)
    rounded = round(score, 6)
    if evidence.provenance is not None:
        # The rounded score, as the Result shows it: the rule's sentence quotes it.
        verdict, rule, rule_ko = provenance.combine_verdict(pixel_verdict, rounded, evidence.provenance)
        signals = evidence.provenance.to_dict()["signals"]
    else:
        (rule, rule_ko), verdict, signals = PIXELS_ONLY_RULE, pixel_verdict, []
    portrait = evidence.portrait.to_dict() if evidence.portrait is not None else {}
    return Result(
        path=item.label, score=rounded, verdict=verdict, pixel_verdict=pixel_verdict, model=detector.name,
        experts={name: round(value, 6) for name, value in experts.items()},
        fusion=detector.fusion.rule, fusion_ko=detector.fusion.rule_ko, rule=rule, rule_ko=rule_ko,
        width=decoded.width, height=decoded.height, format=decoded.format,
        md5=hashlib.md5(item.data).hexdigest() if item.data is not None else None,
        notes=list(decoded.notes), caveats=verdict_caveats(decoded, verdict), signals=signals, thresholds=detector.thresholds,
        face=portrait.get("face"), checks=portrait.get("checks"), face_score=evidence.face_score,
        heatmap=evidence.heatmap, elapsed_ms=round(elapsed_ms, 1),
    )


def verdict_caveats(decoded: DecodedImage, verdict: str) -> list[CaveatRecord]:
    """What weakens a verdict without changing it: a strongly compressed JPEG that is not called ``ai``."""
    quality = decoded.jpeg_quality
    if verdict == "ai" or quality is None or quality > STRONG_JPEG_QUALITY:
        return []
    code = "strong_jpeg"
    words = message(f"verdict.caveat.{code}", quality=quality)
    return [CaveatRecord(code=code, text=words.en, text_ko=words.ko)]


# ------------------------------------------------------------------------------------ internals
def _expert_pass(detector: Detector, images: list[np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The calibrated P(AI) of each expert the fusion uses, and the fused score, for every image, in one call.

    An expert the fusion weighs 0 is not run (its score could not change the fused one), so the
    Result leaves it out of ``experts``; the ``fusion`` rule states its weight 0 and why.
    """
    if not images:
        return {}, np.zeros(0)
    experts = detector.expert_scores(images, used_only=True)
    return experts, detector.fuse(experts)


def _scores_face(portrait: PortraitAnalysis | None, options: PredictOptions) -> bool:
    """Whether this image's face crop goes through the expert pass (asked for, and a face was framed)."""
    return options.face_score and portrait is not None and portrait.crop is not None


def _portrait(pixels: np.ndarray) -> PortraitAnalysis:
    from aiornot.evidence import faces  # OpenCV loads only when ID-photo mode is used

    # level=False: rotating to level the eyes resamples every pixel and blurs the traces scored.
    # pad="none": filled-in rows carry no camera or generator traces, so they are not scored.
    return faces.analyse_portrait(pixels, level=False, pad="none")


def _provenance(item: ImageInput, options: PredictOptions) -> ProvenanceReport | None:
    """The file's provenance signals; they need its bytes, so pixels given alone have none."""
    if not options.provenance or item.data is None:
        return None
    return provenance.inspect(item.data, decoded=item.image)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
