"""The ID frame: the 35×45 mm (7:9) frame an ID photo would have, cut around a face.

At native resolution unless a size is asked for, the eye line levelled when the eyes were found
and tilted 3–15°; where the frame leaves the image it is padded, or cut to the image (what the
detector scores: no made-up pixels).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from aiornot.evidence.faces.face import CHIN_BELOW_BOX_TOP, CROWN_ABOVE_BOX, Face, as_rgb

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

PadMode = Literal["edge", "white", "none"]


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
    :func:`~aiornot.evidence.faces.portrait.analyse_portrait` notes it.
    """
    crop, _ = id_frame(pixels, face, output_size=output_size, level=level, pad=pad)
    return crop


def id_frame(
    pixels: np.ndarray,
    face: Face,
    *,
    output_size: tuple[int, int] | None,
    level: bool,
    pad: PadMode,
) -> tuple[np.ndarray, list[str]]:
    """:func:`crop_to_id_frame`, also returning notes on levelling, padding and resizing."""
    rgb = as_rgb(pixels)
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
