"""The ``xmp_source_type`` signal: the IPTC ``DigitalSourceType`` a file declares in its XMP.

An AI code (``trainedAlgorithmicMedia`` …) is ``strong_ai``; synthetic media that is not declared
as AI is ``weak_ai``; a declared capture (``digitalCapture`` …) is ``weak_camera``.
"""

from __future__ import annotations

from aiornot.evidence.provenance import iptc
from aiornot.evidence.provenance.metadata import Metadata
from aiornot.evidence.provenance.signals import (ERROR, FOUND, NONE, NOT_FOUND, STRONG_AI, WEAK_AI, WEAK_CAMERA,
                                                 Signal, make_signal)
from aiornot.evidence.wording import message, with_english_detail


def check_source_type(meta: Metadata) -> Signal:
    """The ``xmp_source_type`` signal of a file's metadata."""
    codes = sorted({iptc.iptc_code(v) for v in meta.xmp_source_types if v})
    details = {"digital_source_types": codes}
    if ai := sorted(set(codes) & iptc.AI_GENERATED):
        return make_signal("xmp_source_type", FOUND, STRONG_AI, message("provenance.xmp.declares_ai", code=ai[0]),
                           **details)
    if synthetic := sorted(set(codes) & iptc.SYNTHETIC):
        return make_signal("xmp_source_type", FOUND, WEAK_AI,
                           message("provenance.xmp.declares_synthetic", code=synthetic[0]), **details)
    if camera := sorted(set(codes) & iptc.CAMERA):
        return make_signal("xmp_source_type", FOUND, WEAK_CAMERA,
                           message("provenance.xmp.declares_camera", code=camera[0]), **details)
    if codes:
        return make_signal("xmp_source_type", FOUND, NONE, message("provenance.xmp.other_type", code=codes[0]),
                           **details)
    if "xmp" in meta.errors:
        words = with_english_detail(message("provenance.xmp.unreadable"), f": {meta.errors['xmp']}")
        return make_signal("xmp_source_type", ERROR, NONE, words, error=meta.errors["xmp"])
    return make_signal("xmp_source_type", NOT_FOUND, NONE, message("provenance.xmp.not_found"))
