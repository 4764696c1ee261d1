"""Finding faces: OpenCV's Haar cascades, two to agree on a face, and the eyes inside it.

The cascades ship inside ``opencv-python-headless`` 4.x (no downloads, CPU only). The "default"
cascade finds faces, the "alt2" cascade confirms them; eyes are looked for inside each face.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np
from PIL import Image

from aiornot.io import transforms
from aiornot.evidence.faces.face import Face, as_grey

if TYPE_CHECKING:
    import pandas as pd

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


def detect_faces(pixels: np.ndarray) -> list[Face]:
    """Find frontal faces, largest first, with eye centres where the eye cascade finds them.

    ``pixels`` is what :func:`aiornot.io.decode.open_image` returns (RGB ``uint8``, EXIF orientation
    applied — Haar cascades only find upright faces). Grey and RGBA arrays are accepted. Images
    larger than :data:`DETECT_MAX_SIDE` are searched on a downscaled copy; boxes and eyes are
    returned in original-pixel coordinates. Images too small to hold a face return ``[]``.
    """
    grey = as_grey(pixels)
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
