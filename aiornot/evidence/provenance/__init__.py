"""Provenance evidence: what the file itself says about where it came from.

The CNN sees pixels only. Everything a file *declares* about its origin is read here, before the
pixels, and reported as named signals that the user can see and check. One module per check:

=====================  =============================================================  ===========
signal (module)        what is read                                                   strength
=====================  =============================================================  ===========
``c2pa``               C2PA manifest (c2pa-python): valid/invalid, claim generator,   strong_ai
(c2pa_manifest)        ``digitalSourceType`` of its actions/assertions
``xmp_source_type``    IPTC ``DigitalSourceType`` in XMP (Pillow ``getxmp()``, then a strong_ai
(xmp_source_type)      raw XMP packet scan for files where that finds nothing)
``generator_metadata`` PNG text chunks of AUTOMATIC1111 (``parameters``), ComfyUI     strong_ai
(generator_metadata)   (``prompt``, ``workflow``), InvokeAI …; EXIF Software /
                       ImageDescription / UserComment and XMP CreatorTool naming a
                       known generator (Stable Diffusion, Midjourney, DALL·E …)
``sd_watermark``       Stable Diffusion invisible watermark (DWT-DCT): SD v1 text     strong_ai
(watermark)            ``StableDiffusionV1``, SDXL 48 bits ``0xB3EC907BB19E``
``camera_exif``        Make, Model, exposure time, f-number, ISO, DateTimeOriginal    weak_camera
(camera_exif)
=====================  =============================================================  ===========

Beside them: ``signals`` (:class:`Signal`, :class:`ProvenanceReport`, statuses and strengths),
``metadata`` (the header's text chunks, EXIF and XMP, read once for every check), ``iptc`` (the
digital source type codes), ``inspection`` (:func:`inspect`: every check on one file) and ``rule``
(:func:`combine_verdict`, the rule that combines the signals with the pixel verdict: a file that
declares it was generated is ``ai`` whatever the pixels say; otherwise the pixels decide; camera
EXIF is context only; absence is never evidence). ``weak_ai`` is used for a C2PA manifest that
declares AI generation but fails verification, and for XMP declaring synthetic (not camera, not AI)
media; ``weak_camera`` for camera EXIF and for a declared digital capture.

The sentences of the signals and the rule, in English and Korean, are ``[provenance.*]`` in
``aiornot/contract/messages.toml``.
"""

from __future__ import annotations

from aiornot.evidence.provenance.inspection import inspect
from aiornot.evidence.provenance.rule import RULE_EN, RULE_KO, combine_verdict
from aiornot.evidence.provenance.signals import (ERROR, FOUND, INVALID, NONE, NOT_FOUND, SIGNAL_LABELS, STATUSES,
                                                 STRENGTHS, STRONG_AI, UNAVAILABLE, WEAK_AI, WEAK_CAMERA,
                                                 ProvenanceReport, Signal)
from aiornot.evidence.provenance.watermark import SD_V1_MARK, SDXL_MARK, WATERMARK_INSTALL

__all__ = [
    "inspect", "combine_verdict", "Signal", "ProvenanceReport", "SIGNAL_LABELS", "RULE_EN", "RULE_KO",
    "FOUND", "NOT_FOUND", "INVALID", "ERROR", "UNAVAILABLE", "STATUSES",
    "STRONG_AI", "WEAK_AI", "WEAK_CAMERA", "NONE", "STRENGTHS",
    "WATERMARK_INSTALL", "SD_V1_MARK", "SDXL_MARK",
]
