"""Face detection, the ID-photo crop and the ID-photo checks (aiornot.evidence.faces).

Fixtures are built here from matplotlib's grace_hopper.jpg, a real 512×600 camera portrait: a
group photo (portraits side by side), a synthetic ID photo (her head on a plain light canvas at
ID-photo scale), an EXIF-rotated JPEG, and faceless images.
"""

from __future__ import annotations

import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
from PIL import Image

from aiornot.evidence.faces import (
    Check,
    Face,
    PortraitAnalysis,
    analyse_portrait,
    crop_to_id_frame,
    detect_faces,
    id_photo_checks,
)
from aiornot.io.decode import open_image

GRACE_PATH = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
# Where her face is, read off the image by eye: nose bridge ≈ (265, 215), chin ≈ y 340.
GRACE_FACE_CENTRE = (265, 215)
CHECK_NAMES = [
    "single_face",
    "face_height",
    "face_centred",
    "background_light",
    "background_uniform",
    "image_resolution",
    "face_resolution",
    "head_roll",
]
HANGUL = re.compile("[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    return open_image(GRACE_PATH).pixels


@pytest.fixture(scope="module")
def grace_face(grace: np.ndarray) -> Face:
    faces = detect_faces(grace)
    assert len(faces) == 1
    return faces[0]


def make_id_photo(grace: np.ndarray, background: np.ndarray | int = 238, scale: float = 1.5) -> np.ndarray:
    """Grace Hopper's head and shoulders on a plain canvas, framed like a 35×45 mm ID photo.

    The left half of her portrait has a flag behind it, so the flag-free right half is mirrored
    to make a whole person; the light-blue wall is masked out. Crown (under the cap) at y≈40 and
    chin at y≈340 were read off the image by eye, so the head is placed at 75 % of the frame
    height with a 10 % top margin independently of the module's own geometry factors.
    """
    right = grace[:, 265:]
    person = np.concatenate([right[:, ::-1], right], axis=1)
    crown, chin, centre_x = 40, 340, right.shape[1]
    r, b = person[..., 0].astype(int), person[..., 2].astype(int)
    rows = np.arange(person.shape[0])[:, None]
    keep = ~((b > r + 25) & (b > 120) & (rows < 360))
    person = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    mask = cv2.resize(keep.astype(np.float32), person.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    mask = cv2.GaussianBlur(mask, (5, 5), 0)[..., None]
    height = round((chin - crown) * scale / 0.75)
    width = round(height * 7 / 9)
    canvas = np.broadcast_to(np.asarray(background, np.float64), (height, width, 3)).copy()
    off_x, off_y = round(width / 2 - centre_x * scale), round(0.10 * height - crown * scale)
    src_y, src_x, dst_y, dst_x = max(0, -off_y), max(0, -off_x), max(0, off_y), max(0, off_x)
    h = min(person.shape[0] - src_y, height - dst_y)
    w = min(person.shape[1] - src_x, width - dst_x)
    m = mask[src_y : src_y + h, src_x : src_x + w]
    region = canvas[dst_y : dst_y + h, dst_x : dst_x + w]
    region[:] = region * (1 - m) + person[src_y : src_y + h, src_x : src_x + w] * m
    return canvas.round().astype(np.uint8)


def by_name(checks: list[Check] | tuple[Check, ...]) -> dict[str, Check]:
    return {check.name: check for check in checks}


# --- detection -------------------------------------------------------------------------------


def test_single_portrait_has_one_face_over_her_face(grace_face: Face) -> None:
    cx, cy = grace_face.centre
    assert abs(cx - GRACE_FACE_CENTRE[0]) < 30 and abs(cy - GRACE_FACE_CENTRE[1]) < 40
    assert 180 <= grace_face.w <= 280 and grace_face.w == grace_face.h
    assert 0.5 < grace_face.confidence < 1.0
    # Both eyes are found here (on other photos glasses can hide them): in the upper part of the box, left to right.
    assert len(grace_face.eyes) == 2
    for ex, ey in grace_face.eyes:
        assert grace_face.x < ex < grace_face.x + grace_face.w
        assert grace_face.y < ey < grace_face.y + 0.6 * grace_face.h
    assert [ex for ex, _ in grace_face.eyes] == sorted(ex for ex, _ in grace_face.eyes)
    data = json.loads(json.dumps(grace_face.to_dict()))
    assert data["x"] == grace_face.x and data["w"] == grace_face.w and len(data["eyes"]) == len(grace_face.eyes)


def test_group_photo_finds_every_face_largest_first(grace: np.ndarray) -> None:
    canvas = np.full((600, 3 * 512, 3), 200, np.uint8)
    canvas[:, :512] = grace
    canvas[:, 512:1024] = grace[:, ::-1]
    canvas[60:540, 1075:1485] = cv2.resize(grace, (410, 480), interpolation=cv2.INTER_AREA)
    analysis = analyse_portrait(canvas)
    faces = list(analysis.faces)
    assert len(faces) == 3
    assert [f.w * f.h for f in faces] == sorted((f.w * f.h for f in faces), reverse=True)
    assert sorted(int(f.centre[0] // 512) for f in faces) == [0, 1, 2]  # one per portrait
    single = by_name(analysis.checks)["single_face"]
    assert not single.passed and single.value == 3 and "3" in single.reason and "3" in single.reason_ko
    assert analysis.primary == faces[0] and analysis.crop.shape[1] * 9 == analysis.crop.shape[0] * 7
    assert any("3 faces" in note for note in analysis.notes)


def test_no_face_fails_every_check_without_raising() -> None:
    horizontal = np.tile(np.linspace(0, 255, 640), (480, 1))
    vertical = np.tile(np.linspace(0, 255, 480)[:, None], (1, 640))
    noise = np.random.default_rng(0).normal(0, 8, (480, 640, 3))
    image = np.clip(np.dstack([horizontal, vertical, 255 - horizontal]) + noise, 0, 255).astype(np.uint8)
    assert detect_faces(image) == []
    analysis = analyse_portrait(image)
    assert analysis.faces == () and analysis.primary is None and analysis.crop is None
    checks = by_name(analysis.checks)
    assert [c.name for c in analysis.checks] == CHECK_NAMES
    assert checks["single_face"].value == 0 and not checks["single_face"].passed
    for name in CHECK_NAMES[1:5] + CHECK_NAMES[6:]:
        assert checks[name].value is None and not checks[name].passed
        assert "no face" in checks[name].reason and HANGUL.search(checks[name].reason_ko)
    summary = json.loads(json.dumps(analysis.to_dict(), ensure_ascii=False))
    assert summary["face"] is None and summary["n_faces"] == 0 and summary["crop_size"] is None
    assert summary["passed"] is False and len(summary["checks"]) == len(CHECK_NAMES)


@pytest.mark.parametrize("size", [16, 20, 40])
def test_tiny_images_do_not_crash(size: int) -> None:
    image = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    assert detect_faces(image) == []
    analysis = analyse_portrait(image)
    checks = by_name(analysis.checks)
    assert analysis.crop is None and not checks["single_face"].passed
    assert not checks["image_resolution"].passed and f"{size}×{size}" in checks["image_resolution"].reason


def test_exif_orientation_matters(grace: np.ndarray) -> None:
    # Stored sideways (rotated 90° counter-clockwise) with Orientation=6 ("rotate 90° clockwise
    # to display"), as phones do.
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(grace).transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    data = buffer.getvalue()

    decoded = open_image(data)
    assert decoded.exif_orientation == 6 and (decoded.width, decoded.height) == (512, 600)
    faces = detect_faces(decoded.pixels)
    assert len(faces) == 1
    assert abs(faces[0].centre[0] - GRACE_FACE_CENTRE[0]) < 30

    raw = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # orientation ignored
    assert raw.shape[:2] == (512, 600)
    assert detect_faces(raw) == []


def test_large_images_are_searched_downscaled_and_mapped_back(grace: np.ndarray, grace_face: Face) -> None:
    big = cv2.resize(grace, (512 * 3, 600 * 3), interpolation=cv2.INTER_CUBIC)
    analysis = analyse_portrait(big)
    assert len(analysis.faces) == 1
    face = analysis.faces[0]
    for got, small in zip((face.x, face.y, face.w), (grace_face.x, grace_face.y, grace_face.w), strict=True):
        assert abs(got - 3 * small) <= 0.1 * 3 * grace_face.w
    assert any("downscaled" in note for note in analysis.notes)


def test_grey_and_rgba_input_accepted_other_dtypes_refused(grace: np.ndarray) -> None:
    half = cv2.resize(grace, (256, 300), interpolation=cv2.INTER_AREA)  # half size: faster, same face
    expected = detect_faces(half)
    assert len(expected) == 1
    grey = cv2.cvtColor(half, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([half, np.full(half.shape[:2], 255, np.uint8)])
    for pixels in (grey, rgba):
        faces = detect_faces(pixels)
        assert len(faces) == 1 and abs(faces[0].x - expected[0].x) <= 3
    with pytest.raises(ValueError, match="uint8"):
        detect_faces(grace.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        detect_faces(np.zeros((10, 10, 2), np.uint8))


def test_detection_is_thread_safe(grace: np.ndarray) -> None:
    # Cascades keep scratch state; each thread must get its own and the same answer.
    half = np.ascontiguousarray(cv2.resize(grace, (256, 300), interpolation=cv2.INTER_AREA))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(detect_faces, [half, half, half, half]))
    assert len(results[0]) == 1 and all(result == results[0] for result in results)


# --- the ID frame ----------------------------------------------------------------------------


def test_id_crop_is_7_by_9_and_frames_the_face(grace: np.ndarray, grace_face: Face) -> None:
    crop = crop_to_id_frame(grace, grace_face, level=False)
    height, width = crop.shape[:2]
    assert crop.dtype == np.uint8 and crop.shape[2] == 3
    assert width * 9 == height * 7
    # The crop is itself a well-framed ID photo: one face, the right size, centred.
    faces = detect_faces(crop)
    assert len(faces) == 1
    checks = by_name(id_photo_checks(crop, faces))
    assert checks["face_height"].passed and checks["face_centred"].passed


def test_crop_keeps_native_pixels(grace: np.ndarray, grace_face: Face) -> None:
    # Each pixel stores its own coordinates, so the crop shows exactly which pixels it took.
    rows, cols = np.mgrid[: grace.shape[0], : grace.shape[1]]
    coords = np.dstack([cols % 256, rows % 256, (cols // 256) * 16 + rows // 256]).astype(np.uint8)
    crop = crop_to_id_frame(coords, grace_face, level=False)
    x = crop[..., 0].astype(int) + 256 * (crop[..., 2].astype(int) // 16)
    y = crop[..., 1].astype(int) + 256 * (crop[..., 2].astype(int) % 16)
    # Her frame reaches above the photo: those rows repeat the first image row, the rest is a
    # plain slice of the source — no resampling, no resizing.
    padded = crop.shape[0] - (y[-1, 0] - y[0, 0] + 1)
    assert 0 < padded < 0.1 * crop.shape[0]
    assert np.all(y[: padded + 1] == 0)
    source = coords[y[padded, 0] : y[-1, 0] + 1, x[0, 0] : x[0, -1] + 1]
    assert np.array_equal(crop[padded:], source)


def test_output_size_must_be_7_by_9(grace: np.ndarray, grace_face: Face) -> None:
    assert crop_to_id_frame(grace, grace_face, output_size=(413, 531)).shape == (531, 413, 3)
    with pytest.raises(ValueError, match="7:9"):
        crop_to_id_frame(grace, grace_face, output_size=(400, 400))


def test_frame_leaving_the_image_is_padded_and_noted(grace: np.ndarray) -> None:
    cut = np.ascontiguousarray(grace[70:])  # her cap is cut off: the frame must reach above the image
    face = detect_faces(cut)[0]
    white = crop_to_id_frame(cut, face, pad="white", level=False)
    edge = crop_to_id_frame(cut, face, pad="edge", level=False)
    assert white.shape == edge.shape
    assert np.all(white[0] == 255)
    assert not np.all(edge[0] == 255)
    notes = analyse_portrait(cut).notes  # levelled or not, the note names the side
    assert any("extends past the image" in note and "top" in note for note in notes)


def test_tilted_head_is_levelled(grace: np.ndarray) -> None:
    matrix = cv2.getRotationMatrix2D((256, 300), 9, 1.0)  # tilt her 9° counter-clockwise
    tilted = cv2.warpAffine(grace, matrix, (512, 600), borderMode=cv2.BORDER_REPLICATE)
    analysis = analyse_portrait(tilted)
    assert analysis.primary is not None and len(analysis.primary.eyes) == 2
    before = analysis.primary.roll_degrees
    assert abs(before) > 6
    assert any(note.startswith("rotated by") for note in analysis.notes)
    after = detect_faces(analysis.crop)[0].roll_degrees
    assert abs(after) < abs(before) / 2  # None (no eyes found on the crop) fails here too
    # level=False leaves the tilt alone.
    unlevelled = crop_to_id_frame(tilted, analysis.primary, level=False)
    assert unlevelled.shape[1] * 9 == unlevelled.shape[0] * 7


def test_rotation_is_exact_about_the_eye_line() -> None:
    # Pure geometry: eyes given, no detection involved. A bright dot on each eye must end up on
    # the same row after levelling.
    image = np.full((600, 500, 3), 128, np.uint8)
    eyes = ((200, 250), (300, 270))  # 11.3° tilt
    for ex, ey in eyes:
        cv2.circle(image, (ex, ey), 4, (255, 255, 255), -1)
    face = Face(x=150, y=180, w=200, h=200, confidence=1.0, eyes=eyes)
    crop = crop_to_id_frame(image, face)
    bright = np.argwhere(crop[..., 0] > 200)
    left, right = bright[bright[:, 1] < crop.shape[1] / 2], bright[bright[:, 1] >= crop.shape[1] / 2]
    assert abs(left[:, 0].mean() - right[:, 0].mean()) < 1.5
    assert abs(face.roll_degrees - 11.31) < 0.01


# --- the checks ------------------------------------------------------------------------------


def test_synthetic_id_photo_passes_and_raw_portrait_fails(grace: np.ndarray) -> None:
    id_photo = make_id_photo(grace)
    analysis = analyse_portrait(id_photo)
    assert isinstance(analysis, PortraitAnalysis)
    checks = by_name(analysis.checks)
    assert [c.name for c in analysis.checks] == CHECK_NAMES
    for name in (n for n in CHECK_NAMES if n != "head_roll"):
        assert checks[name].passed, (name, checks[name].reason)
    assert 0.70 <= checks["face_height"].value <= 0.80
    assert abs(checks["face_centred"].value) < 0.03
    assert checks["background_light"].value > 230

    raw = by_name(analyse_portrait(grace).checks)
    assert not raw["face_height"].passed and raw["face_height"].value < 0.66  # a half-length portrait
    assert not raw["background_uniform"].passed  # the flag behind her
    assert "crop closer" in raw["face_height"].reason and HANGUL.search(raw["face_height"].reason_ko)


def test_dark_or_busy_background_fails_only_the_background_checks(grace: np.ndarray) -> None:
    dark = by_name(analyse_portrait(make_id_photo(grace, background=70)).checks)
    assert not dark["background_light"].passed and dark["background_uniform"].passed
    assert dark["face_height"].passed and dark["face_centred"].passed

    stripes = np.zeros((600, 467, 3))
    stripes[:, (np.arange(467) // 20) % 2 == 1] = 255
    busy = by_name(analyse_portrait(make_id_photo(grace, background=stripes)).checks)
    assert not busy["background_uniform"].passed and busy["background_uniform"].value > 60
    assert busy["face_height"].passed


def test_off_centre_face_fails_centring(grace: np.ndarray) -> None:
    id_photo = make_id_photo(grace)
    shifted = np.concatenate([np.full((600, 80, 3), 238, np.uint8), id_photo[:, :-80]], axis=1)
    check = by_name(analyse_portrait(shifted).checks)["face_centred"]
    assert not check.passed and check.value > 0.1 and "right" in check.reason and "오른쪽" in check.reason_ko


def test_checks_are_json_safe_and_bilingual(grace: np.ndarray, grace_face: Face) -> None:
    analysis = analyse_portrait(grace)
    summary = analysis.to_dict()
    text = json.dumps(summary, ensure_ascii=False)
    assert "crop" not in summary  # the crop is described by its size, never by its pixels
    restored = json.loads(text)
    assert restored["face"] == json.loads(json.dumps(grace_face.to_dict()))
    assert restored["crop_size"] == [analysis.crop.shape[1], analysis.crop.shape[0]]
    assert restored["crop_size"][0] * 9 == restored["crop_size"][1] * 7
    for check in restored["checks"]:
        assert set(check) == {"name", "value", "passed", "reason", "reason_ko", "threshold"}
        assert check["reason"] and HANGUL.search(check["reason_ko"]) and check["threshold"]
    assert any("not evidence" in note for note in restored["notes"])
