"""The ``camera_exif`` signal: Make, Model, exposure time, f-number, ISO, DateTimeOriginal.

Camera EXIF is ``weak_camera`` and, by the rule, context only: EXIF is trivially forged, so it never
turns a verdict into ``real``.
"""

from __future__ import annotations

from aiornot.evidence.provenance.generator_metadata import named_generator
from aiornot.evidence.provenance.metadata import Metadata
from aiornot.evidence.provenance.signals import ERROR, FOUND, NONE, NOT_FOUND, WEAK_CAMERA, Signal, make_signal
from aiornot.evidence.wording import message, with_english_detail

_CAPTURE_FIELDS = ("ExposureTime", "FNumber", "ISOSpeedRatings", "DateTimeOriginal")


def check_camera(meta: Metadata) -> Signal:
    """The ``camera_exif`` signal of a file's metadata: a camera named and capture settings recorded."""
    camera = {k: meta.exif[k] for k in ("Make", "Model", "LensModel") if k in meta.exif}
    capture = {k: meta.exif[k] for k in _CAPTURE_FIELDS if k in meta.exif}
    names_generator = any(named_generator(str(v)) for v in camera.values())
    if camera and capture and not names_generator:
        device = _device_name(str(camera.get("Make", "")), str(camera.get("Model", "")))
        return make_signal("camera_exif", FOUND, WEAK_CAMERA, message("provenance.camera.found", device=device),
                           **camera, **capture)
    if "exif" in meta.errors:
        words = with_english_detail(message("provenance.camera.unreadable"), f": {meta.errors['exif']}")
        return make_signal("camera_exif", ERROR, NONE, words, error=meta.errors["exif"])
    return make_signal("camera_exif", NOT_FOUND, NONE, message("provenance.camera.not_found"),
                       fields_present=sorted(meta.exif))


def _device_name(make: str, model: str) -> str:
    # Many cameras repeat the maker in the model ("Canon" + "Canon EOS 5D"): show it once.
    if make and model.lower().startswith(make.lower()):
        return model
    return f"{make} {model}".strip() or "unknown camera"
