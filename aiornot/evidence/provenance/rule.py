"""The rule that combines the pixel verdict with the provenance report (:func:`combine_verdict`).

1. **The file declares it was generated → AI.** A valid C2PA manifest or an XMP
   ``DigitalSourceType`` declaring trained algorithmic media (``trainedAlgorithmicMedia``,
   ``compositeWithTrainedAlgorithmicMedia``, ``algorithmicMedia``), generator text chunks or
   EXIF/XMP fields naming a generator, or a decoded Stable Diffusion watermark make the verdict
   ``ai`` whatever the pixels say. A C2PA signer need not be on a trust list for this: a file
   that declares itself generated gives a forger nothing.
2. **Otherwise the pixel verdict stands** (``inconclusive`` when there is no pixel verdict).
3. An *invalid* C2PA manifest is shown but does not change the verdict on its own.
4. Camera EXIF is shown as context only and moves nothing: EXIF is trivially forged, so it never
   turns an ``ai`` pixel verdict into ``real`` (nor ``inconclusive`` into ``real``).
5. Absence is never evidence: no manifest, no metadata and no watermark say nothing about a file,
   because re-saving, screenshots and messengers strip all of them.

The UI shows the whole rule (:data:`RULE_EN`, :data:`RULE_KO`) and, per result, the sentence that decided it.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

from aiornot.contract.result import VERDICTS
from aiornot.evidence.provenance.signals import (INVALID, SIGNAL_LABELS, STRONG_AI, WEAK_AI, WEAK_CAMERA,
                                                 ProvenanceReport)
from aiornot.evidence.wording import Message, bilingual, message

#: The complete combination rule, as shown to users.
RULE_EN, RULE_KO = message("provenance.rule.whole").en, message("provenance.rule.whole").ko


def combine_verdict(pixel_verdict: str | None, pixel_score: float | None,
                    report: ProvenanceReport) -> tuple[str, str, str]:
    """Combine the pixel model's verdict with the provenance report by the stated rule.

    Returns ``(final_verdict, rule_en, rule_ko)``: the verdict (``ai``, ``real`` or
    ``inconclusive``) and the sentence of the rule that decided it, for display. See
    :data:`RULE_EN` for the whole rule.
    """
    _check_pixel_inputs(pixel_verdict, pixel_score)
    declared = [s for s in report.signals if s.strength == STRONG_AI]
    if declared:
        labels = [SIGNAL_LABELS.get(s.name, Message(s.name, s.name)) for s in declared]
        names = Message(", ".join(label.en for label in labels), ", ".join(label.ko for label in labels))
        sentence = bilingual("provenance.rule.declared", signals=names)
        return "ai", sentence.en, sentence.ko
    verdict, sentence = _pixel_rule(pixel_verdict, pixel_score)
    notes = list(_context_notes(report))
    return verdict, " ".join([sentence.en, *(n.en for n in notes)]), " ".join([sentence.ko, *(n.ko for n in notes)])


def _check_pixel_inputs(pixel_verdict: str | None, pixel_score: float | None) -> None:
    if pixel_verdict is not None and pixel_verdict not in VERDICTS:
        raise ValueError(f"pixel_verdict must be one of {VERDICTS} or None, not {pixel_verdict!r}")
    if pixel_score is not None and not (isinstance(pixel_score, numbers.Real) and 0.0 <= pixel_score <= 1.0):
        raise ValueError(f"pixel_score must be a probability in [0, 1] or None, not {pixel_score!r}")


def _pixel_rule(pixel_verdict: str | None, pixel_score: float | None) -> tuple[str, Message]:
    if pixel_verdict is None:
        return "inconclusive", message("provenance.rule.no_pixel_verdict")
    # English names the verdict as the API does (``ai``); Korean uses its label.
    verdict = Message(pixel_verdict, message(f"verdict.{pixel_verdict}.label").ko)
    score = Message("", "") if pixel_score is None else message("provenance.rule.score", score=float(pixel_score))
    return pixel_verdict, bilingual("provenance.rule.pixels_stand", verdict=verdict, score=score)


def _context_notes(report: ProvenanceReport) -> Iterator[Message]:
    """Sentences for evidence that is shown but, by the rule, changes nothing."""
    if any(s.name == "c2pa" and s.status == INVALID for s in report.signals):
        yield message("provenance.rule.note.invalid_c2pa")
    if any(s.strength == WEAK_AI for s in report.signals if s.name != "c2pa"):
        yield message("provenance.rule.note.weak_ai")
    if any(s.strength == WEAK_CAMERA for s in report.signals):
        yield message("provenance.rule.note.camera")
