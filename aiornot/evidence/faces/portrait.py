"""One portrait, all together: faces, the ID-photo checks and the ID-frame crop (:func:`analyse_portrait`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aiornot.evidence.faces.checks import Check, id_photo_checks
from aiornot.evidence.faces.detection import DETECT_MAX_SIDE, detect_faces
from aiornot.evidence.faces.face import Face, as_rgb
from aiornot.evidence.faces.id_frame import PadMode, id_frame

NOT_EVIDENCE_NOTE = (
    "ID-photo checks measure whether the photo is usable as an ID photo; "
    "they are not evidence that it is AI-generated or genuine"
)


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


def analyse_portrait(pixels: np.ndarray, *, level: bool = True, pad: PadMode = "edge") -> PortraitAnalysis:
    """Detect faces, run the ID-photo checks and cut the ID frame around the largest face.

    Never raises for a photo without a face, with several faces or too small to search: the
    checks say what failed, ``crop`` is None without a face, and ``notes`` explain what was done
    (several faces, rotation, padding). The crop is at native resolution; ``level`` and ``pad``
    are passed to :func:`~aiornot.evidence.faces.id_frame.crop_to_id_frame`. Checks are quality checks, not evidence of AI.
    """
    rgb = as_rgb(pixels)
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
        crop, crop_notes = id_frame(rgb, primary, output_size=None, level=level, pad=pad)
        notes.extend(crop_notes)
    return PortraitAnalysis(tuple(faces), primary, tuple(checks), crop, tuple(notes))


def face_or_whole(pixels: np.ndarray, *, pad: PadMode = "none") -> np.ndarray:
    """The ID-frame crop around the largest face (not levelled, as the detector's ID-photo mode cuts
    it), or the whole photo when no face is found: what an ID-photo check scores."""
    crop = analyse_portrait(pixels, level=False, pad=pad).crop
    return pixels if crop is None else crop
