"""Faithful colour: what the decoder does so that one photo gives the same sRGB pixels in every form.

The detector was trained on sRGB pixels. Two things made the same photo look different to it:

* **An embedded ICC profile** (an iPhone's Display P3, a camera's Adobe RGB, a print shop's CMYK
  profile) says what the stored numbers mean. Read as if they were sRGB, P3 colours come out
  dull and CMYK through Pillow's naive formula comes out oversaturated. Here the pixels are
  converted from the embedded profile to sRGB with LittleCMS (Pillow's ``ImageCms``). A profile
  that maps colours as sRGB does (most embedded profiles are sRGB under some name) is left alone,
  so those files decode bit for bit as before.
* **CMYK polarity.** Photoshop writes CMYK JPEGs inverted and says so with an Adobe APP14 marker;
  other writers store plain ink values without that marker. Pillow assumes Adobe's inversion for
  every CMYK JPEG, so a plain one came out as a negative; here it is inverted back.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np
from PIL import Image, ImageCms

#: Modes a profile can be applied to (others: palettes, 16-bit grey … decode as before).
_MANAGED_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}
#: Largest difference (0–255) from the identity that still counts as "already sRGB".
_SRGB_TOLERANCE = 1


def fix_cmyk_polarity(image: Image.Image, info: dict[str, Any], source_format: str, notes: list[str]) -> Image.Image:
    """Undo Pillow's Adobe inversion for a CMYK JPEG that carries no Adobe APP14 marker."""
    if image.mode != "CMYK" or source_format not in ("JPEG", "MPO") or "adobe" in info:
        return image
    notes.append("CMYK without an Adobe marker read as plain (not inverted) ink values")
    return image.point(lambda value: 255 - value)


def to_srgb(image: Image.Image, info: dict[str, Any], notes: list[str]) -> Image.Image:
    """``image`` converted from its embedded ICC profile to sRGB; unchanged when it has none or it is sRGB already.

    A damaged or hostile profile is not fatal: the pixels are used as stored, with a note.
    """
    icc = info.get("icc_profile")
    output_mode = _MANAGED_MODES.get(image.mode)
    if not icc or output_mode is None:
        return image
    try:
        profile = _profile(bytes(icc))
        if image.mode != "CMYK" and _is_srgb(bytes(icc)):
            return image
        converted = ImageCms.profileToProfile(image, profile, _srgb(), outputMode=output_mode)
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as error:
        notes.append(f"embedded ICC profile not applied ({type(error).__name__}); colours used as stored")
        return image
    notes.append(f"{_description(profile)} ICC profile converted to sRGB")
    return converted if converted is not None else image


@functools.lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=64)
def _profile(icc: bytes) -> ImageCms.ImageCmsProfile:
    # Cached by content: a folder of one camera's photos carries the same profile every time.
    return ImageCms.ImageCmsProfile(io.BytesIO(icc))


@functools.lru_cache(maxsize=64)
def _is_srgb(icc: bytes) -> bool:
    """Whether an RGB profile maps a grid of colours to sRGB within :data:`_SRGB_TOLERANCE` (names lie; numbers do not)."""
    levels = np.linspace(0, 255, 6).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
    sample = Image.fromarray(np.ascontiguousarray(grid), mode="RGB")
    mapped = ImageCms.profileToProfile(sample, _profile(icc), _srgb(), outputMode="RGB")
    difference = np.abs(np.asarray(mapped, dtype=np.int16) - grid.astype(np.int16))
    return int(difference.max()) <= _SRGB_TOLERANCE


def _description(profile: ImageCms.ImageCmsProfile) -> str:
    try:
        name = ImageCms.getProfileDescription(profile).strip()
    except ImageCms.PyCMSError:
        name = ""
    # A profile's name is text from the file: keep it short and printable in a note.
    cleaned = "".join(ch for ch in name if ch.isprintable())[:60]
    return f"the '{cleaned}'" if cleaned else "the embedded"
