"""Faces in portraits: detection, an ID-photo crop and ID-photo quality checks.

Used by the ID-photo mode (증명사진) of the detector, the CLI (``--id-photo``), the service and
notebook 04. Three steps, each usable on its own, each in its own module:

* ``detection`` — :func:`detect_faces` finds frontal faces with the Haar cascades that ship inside
  ``opencv-python-headless`` 4.x (no downloads, CPU only), and the eyes inside each face;
  :func:`detection_audit` counts missed and false faces per source.
* ``id_frame`` — :func:`crop_to_id_frame` cuts the 35×45 mm (7:9) frame an ID photo would have
  around a face, at native resolution unless a size is asked for, levelling the eye line when the
  eyes were found.
* ``checks`` — :func:`id_photo_checks` measures the photo against ICAO 9303 / ISO/IEC 19794-5
  style rules (one face, face size, centring, plain light background, resolution, head roll).

``face`` holds the :class:`Face` box and the head geometry every step uses; ``portrait`` runs
all three on one photo (:func:`analyse_portrait`, :func:`face_or_whole`).

The checks are **quality checks, not evidence of AI generation**: a generated photo can pass all
of them and a genuine camera photo can fail them. They tell an officer whether a photo is usable
as an ID photo; whether it is real is the CNN's and the provenance signals' job.
"""

from __future__ import annotations

from aiornot.evidence.faces.checks import (HEAD_HEIGHT_RANGE, HEAD_HEIGHT_TOLERANCE, MAX_BACKGROUND_SPREAD,
                                           MAX_CENTRE_OFFSET, MAX_ROLL_DEGREES, MIN_BACKGROUND_FRACTION,
                                           MIN_BACKGROUND_LUMA, MIN_HEAD_HEIGHT_PX, MIN_IMAGE_SIZE, Check,
                                           id_photo_checks)
from aiornot.evidence.faces.detection import (DETECT_MAX_SIDE, MIN_FACE_FRACTION, MIN_FACE_PX,
                                              SINGLE_CASCADE_MIN_NEIGHBOURS, detect_faces, detection_audit)
from aiornot.evidence.faces.face import CHIN_BELOW_BOX_TOP, CROWN_ABOVE_BOX, Face
from aiornot.evidence.faces.id_frame import (ID_ASPECT, ID_HEAD_FRACTION, ID_TOP_MARGIN, MAX_LEVEL_ANGLE,
                                             MIN_LEVEL_ANGLE, PadMode, crop_to_id_frame)
from aiornot.evidence.faces.portrait import NOT_EVIDENCE_NOTE, PortraitAnalysis, analyse_portrait, face_or_whole

__all__ = [
    "Face", "Check", "PortraitAnalysis", "PadMode",
    "detect_faces", "detection_audit", "crop_to_id_frame", "id_photo_checks", "analyse_portrait", "face_or_whole",
    "NOT_EVIDENCE_NOTE", "DETECT_MAX_SIDE", "MIN_FACE_FRACTION", "MIN_FACE_PX", "SINGLE_CASCADE_MIN_NEIGHBOURS",
    "CROWN_ABOVE_BOX", "CHIN_BELOW_BOX_TOP", "ID_ASPECT", "ID_HEAD_FRACTION", "ID_TOP_MARGIN", "MIN_LEVEL_ANGLE",
    "MAX_LEVEL_ANGLE", "HEAD_HEIGHT_RANGE", "HEAD_HEIGHT_TOLERANCE", "MAX_CENTRE_OFFSET", "MIN_BACKGROUND_LUMA",
    "MAX_BACKGROUND_SPREAD", "MIN_BACKGROUND_FRACTION", "MIN_IMAGE_SIZE", "MIN_HEAD_HEIGHT_PX", "MAX_ROLL_DEGREES",
]
