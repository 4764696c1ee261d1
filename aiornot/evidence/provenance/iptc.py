"""The IPTC digital source type vocabulary, as C2PA manifests and XMP both declare it.

https://cv.iptc.org/newscodes/digitalsourcetype/ — only the codes the checks act on are listed.
"""

from __future__ import annotations

#: Media a trained model (or an algorithm) made: a file declaring one of these is ``strong_ai``.
AI_GENERATED = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"})
#: Synthetic, but not declared as AI: a weak hint only.
SYNTHETIC = frozenset({"compositeSynthetic", "digitalArt", "digitalCreation"})
#: Captured from the world (camera, film, a scanned print): weak camera evidence.
CAMERA = frozenset({"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print"})


def iptc_code(value: str) -> str:
    """``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` → the last part."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]
