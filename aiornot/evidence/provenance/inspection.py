"""Every provenance check on one file's bytes (:func:`inspect`), one header parse shared by all of them."""

from __future__ import annotations

from collections.abc import Callable

from aiornot.io.decode import DecodedImage, ImageDecodeError, open_header, read_bytes
from aiornot.evidence.provenance import watermark
from aiornot.evidence.provenance.c2pa_manifest import check_c2pa
from aiornot.evidence.provenance.camera_exif import check_camera
from aiornot.evidence.provenance.generator_metadata import check_generator
from aiornot.evidence.provenance.metadata import HeaderView, Metadata
from aiornot.evidence.provenance.signals import (ERROR, NONE, SIGNAL_LABELS, ProvenanceReport, Signal, describe,
                                                 make_signal)
from aiornot.evidence.provenance.xmp_source_type import check_source_type
from aiornot.evidence.wording import message, with_english_detail


def inspect(data: bytes, *, check_watermark: bool = True, decoded: DecodedImage | None = None) -> ProvenanceReport:
    """Read every provenance signal from an image file's bytes.

    Never raises for bad input: a file that is not an image gives every signal the status
    ``error`` with the decoder's message, and a check that fails on a damaged container gives that
    one signal ``error`` (or ``invalid`` for a damaged C2PA manifest). The Stable Diffusion
    watermark needs the pixels: ``decoded`` (these bytes already through
    :func:`aiornot.io.decode.open_image`) saves decoding them again; ``check_watermark=False`` skips it.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"inspect() takes the file's bytes, not {type(data).__name__}")
    try:
        data = read_bytes(data)  # refuses empty and oversized input, as the decoder does
        # The decoder's own header parse, when it has run: a header is parsed once per photo.
        image = HeaderView(decoded) if decoded is not None and decoded.exif is not None else open_header(data)
    except ImageDecodeError as error:
        return _unreadable(error.code, error.message)
    except Exception as error:  # noqa: BLE001 - a hostile header must not escape inspect()
        return _unreadable("corrupt", f"the image header is damaged: {describe(error)}")
    meta = Metadata.read(image, data)
    checks: dict[str, Callable[[], Signal]] = {
        "c2pa": lambda: check_c2pa(data, str(image.format)),
        "xmp_source_type": lambda: check_source_type(meta),
        "generator_metadata": lambda: check_generator(meta),
        "sd_watermark": lambda: (watermark.check_watermark(data, decoded) if check_watermark
                                 else watermark.watermark_skipped()),
        "camera_exif": lambda: check_camera(meta),
    }
    return ProvenanceReport(tuple(_guarded(name, check) for name, check in checks.items()))


def _guarded(name: str, check: Callable[[], Signal]) -> Signal:
    # inspect() promises never to raise for bad input, and parsers of hostile files (Pillow,
    # c2pa's native library, XML) can fail in ways no one lists; any failure becomes an `error`
    # signal that names the problem instead of a traceback.
    try:
        return check()
    except Exception as error:  # noqa: BLE001 - see above
        words = with_english_detail(message("provenance.check_failed"), f": {describe(error)}")
        return make_signal(name, ERROR, NONE, words, error=describe(error))


def _unreadable(code: str, reason: str) -> ProvenanceReport:
    """The report for a file that is not a readable image: every signal says why it was not checked."""
    words = with_english_detail(message("provenance.not_an_image"), f": {reason}")
    return ProvenanceReport(tuple(make_signal(name, ERROR, NONE, words, code=code, error=reason)
                                  for name in SIGNAL_LABELS))
