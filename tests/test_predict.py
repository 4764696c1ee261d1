"""The predict pipeline (aiornot/predict.py): evidence first, one expert pass per batch, the Result built once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from aiornot import predict
from aiornot.detector import Detector
from aiornot.io.decode import open_image, read_header
from conftest import encode, photo_like


@pytest.fixture(scope="module")
def detector(tiny_model_dir) -> Detector:
    return Detector.load(tiny_model_dir)


@pytest.fixture(scope="module")
def portrait() -> bytes:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()


@pytest.fixture(scope="module")
def landscape() -> bytes:
    return encode(photo_like(3, (160, 120)), "JPEG", quality=90)  # no face in it


@pytest.fixture
def expert_calls(detector, monkeypatch) -> list[int]:
    """The number of images of each ``expert_scores`` call (the experts' forward passes)."""
    calls: list[int] = []
    original = detector.expert_scores

    def counting(images, **options):
        calls.append(len(images))
        return original(images, **options)

    monkeypatch.setattr(detector, "expert_scores", counting)
    return calls


def without_time(result) -> dict:
    return {key: value for key, value in result.to_dict().items() if key != "elapsed_ms"}


def test_a_result_is_frozen_once_built(detector, landscape):
    result = detector.predict(landscape)
    assert result.ok and result.elapsed_ms > 0
    for field, value in (("elapsed_ms", 1.0), ("verdict", "ai"), ("face_score", 0.5), ("path", "x.jpg")):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(result, field, value)


@pytest.fixture
def expert_images(detector, monkeypatch) -> list[list[tuple[int, ...]]]:
    """The shapes of the images each ``expert_scores`` call was given (whole photos vs face crops)."""
    calls: list[list[tuple[int, ...]]] = []
    original = detector.expert_scores

    def recording(images, **options):
        calls.append([tuple(image.shape) for image in images])
        return original(images, **options)

    monkeypatch.setattr(detector, "expert_scores", recording)
    return calls


def test_id_photo_mode_alone_frames_the_face_but_never_scores_the_crop(detector, portrait, landscape, expert_images):
    """The face box and the checks come with id_photo; the crop's score (a second expert pass) only on request."""
    results = list(detector.predict_many([portrait, landscape, portrait], batch_size=3, id_photo=True))
    photos = [tuple(open_image(data).pixels.shape) for data in (portrait, landscape, portrait)]
    assert expert_images == [photos]  # the whole photos only: no crop was put through the experts
    assert [r.face is not None for r in results] == [True, False, True]
    assert all(r.checks for r in results) and all(r.face_score is None for r in results)
    assert "face_score" not in results[0].to_dict()
    single = detector.predict(portrait, id_photo=True)
    assert expert_images[-1] == [photos[0]] and single.face is not None and single.face_score is None


def test_face_score_without_id_photo_is_refused_at_the_call(detector, landscape, expert_calls):
    """The crop is found in ID-photo mode only: asking for its score alone is an error, not a silent None."""
    with pytest.raises(ValueError, match="face_score=True needs id_photo=True"):
        detector.predict_many([landscape], face_score=True)  # raised here, before any iteration
    with pytest.raises(ValueError, match="needs id_photo"):
        detector.predict(landscape, face_score=True)
    with pytest.raises(ValueError, match="needs id_photo"):
        predict.PredictOptions(face_score=True)
    assert expert_calls == []


def test_face_crops_join_the_batchs_one_expert_pass(detector, portrait, landscape, expert_calls):
    results = list(detector.predict_many([portrait, landscape, portrait], batch_size=3, id_photo=True, face_score=True))
    assert expert_calls == [3 + 2]  # the three photos and the two face crops, in one call
    assert [r.face is not None for r in results] == [True, False, True]
    assert results[0].face_score is not None and results[1].face_score is None
    assert results[0].face_score == pytest.approx(results[2].face_score, abs=1e-6)

    # The same numbers as scoring the crop on its own (what the pipeline did before, in a second pass).
    crop = predict._portrait(open_image(portrait).pixels).crop
    assert results[0].face_score == pytest.approx(float(detector.scores([crop])[0]), abs=1e-6)
    # And the crops change nothing of the whole photos' scores, nor the face box or the checks.
    plain = list(detector.predict_many([portrait, landscape, portrait], batch_size=3))
    assert [r.score for r in results] == pytest.approx([r.score for r in plain], abs=1e-6)
    framed = list(detector.predict_many([portrait, landscape, portrait], batch_size=3, id_photo=True))
    assert [without_time(r) for r in framed] == [{k: v for k, v in without_time(r).items() if k != "face_score"} for r in results]


def test_predict_is_predict_many_of_one(detector, portrait, expert_calls):
    single = detector.predict(portrait, id_photo=True, face_score=True, path="p.jpg")
    assert expert_calls == [2]  # the photo and its face crop together
    [batched] = detector.predict_many([portrait], labels=["p.jpg"], id_photo=True, face_score=True)
    assert without_time(single) == without_time(batched)
    assert single.face_score is not None and single.signals and single.checks


def test_a_header_already_parsed_is_not_parsed_again(detector, landscape, monkeypatch):
    import aiornot.io.decode
    import aiornot.evidence.provenance.inspection

    expected = without_time(detector.predict(open_image(landscape), data=landscape))
    header = read_header(landscape)
    parses: list[int] = []
    for module in (aiornot.io.decode, aiornot.evidence.provenance.inspection):  # every module that parses headers
        monkeypatch.setattr(module, "open_header", lambda *a, **k: parses.append(1))  # would break the decode
    result = detector.predict(header)
    assert result.ok and parses == [] and result.path is None
    assert without_time(result) == expected


def test_labels_name_the_results_and_failures_keep_their_place(detector, landscape):
    results = list(detector.predict_many([landscape, b"not an image", landscape], labels=["a", "b", "c"], batch_size=2))
    assert [r.path for r in results] == ["a", "b", "c"]
    assert [r.ok for r in results] == [True, False, True] and results[1].error_code == "not_an_image"
    assert [r.path for r in detector.predict_many([landscape, "missing.jpg"])] == ["<bytes>", "missing.jpg"]
    with pytest.raises(ValueError):  # a label per source, no fewer
        list(detector.predict_many([landscape, landscape], labels=["a"]))


def test_pixels_in_memory_score_as_their_file_does(detector, landscape):
    from PIL import Image

    from_file = detector.predict(landscape)
    pixels = open_image(landscape).pixels
    for same in (pixels, pixels / 255.0, Image.fromarray(pixels), np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])):
        in_memory = detector.predict(same)
        assert in_memory.score == from_file.score and in_memory.verdict == from_file.verdict and in_memory.path is None
        assert in_memory.signals == []  # no file, so no provenance to read
    results = list(detector.predict_many([pixels, pixels.transpose(2, 0, 1), pixels * 1.0], labels=["a", "chw", "0-255"]))
    assert results[0].ok and [r.error_code for r in results[1:]] == ["invalid_pixels", "invalid_pixels"]
    assert "channels-first" in results[1].error and "astype(np.uint8)" in results[2].error
    with pytest.raises(TypeError, match="a numpy array or a Pillow image"):
        detector.predict([[1, 2, 3]])


def test_a_pillow_image_opened_from_a_rotated_file_scores_as_the_file(detector, tmp_path):
    from PIL import Image

    rotated = Image.Exif()
    rotated[0x0112] = 6
    photo_like(4, (160, 120)).save(tmp_path / "rotated.jpg", exif=rotated, quality=92)
    from_file, from_pillow = detector.predict(tmp_path / "rotated.jpg"), detector.predict(Image.open(tmp_path / "rotated.jpg"))
    assert (from_pillow.width, from_pillow.height) == (from_file.width, from_file.height) == (120, 160)
    assert from_pillow.score == from_file.score and "EXIF orientation 6 applied" in from_pillow.notes


def test_build_result_states_the_evidence_it_was_given(detector, landscape):
    """The Result says what its evidence says: provenance decides the rule, pixels alone say so."""
    item = predict.read_input(landscape, "x.jpg")
    experts = {"forensic": 0.7}
    alone = predict.build_result(detector, item, experts, 0.7, predict.Evidence(), elapsed_ms=12.34)
    assert alone.verdict == alone.pixel_verdict == "ai" and alone.rule == predict.PIXELS_ONLY_RULE[0]
    assert alone.elapsed_ms == 12.3 and alone.signals == [] and alone.face is None and alone.checks is None
    report = predict._provenance(item, predict.PredictOptions())
    checked = predict.build_result(detector, item, experts, 0.7, predict.Evidence(provenance=report), elapsed_ms=1.0)
    assert [s.name for s in checked.signals] == [s.name for s in report.signals] and "pixel verdict stands" in checked.rule
    assert checked.md5 == alone.md5 and (checked.width, checked.height) == (160, 120)


def test_elapsed_time_counts_reading_the_image(detector, landscape, monkeypatch):
    """elapsed_ms is measured before the Result is built: reading included, nothing set afterwards."""
    import time

    import aiornot.predict as pipeline

    original = pipeline.open_image

    def slow_open_image(*args, **kwargs):
        time.sleep(0.05)
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "open_image", slow_open_image)
    assert detector.predict(landscape).elapsed_ms >= 50
    assert np.isfinite(detector.predict(open_image(landscape)).elapsed_ms)


@pytest.mark.parametrize(("quality", "verdict", "warned"), [(60, "real", True), (60, "inconclusive", True), (60, "ai", False),
                                                            (90, "real", False)])
def test_a_strongly_compressed_jpeg_not_called_ai_gets_the_caveat(quality, verdict, warned):
    """Compression lowers AI scores (notebook 04): a `real` on a q≤75 JPEG is said to be weaker evidence, in both languages."""
    decoded = open_image(encode(photo_like(4), "JPEG", quality=quality))
    caveats = predict.verdict_caveats(decoded, verdict)
    assert [c.code for c in caveats] == (["strong_jpeg"] if warned else [])
    if warned:
        assert f"quality about {decoded.jpeg_quality}" in caveats[0].text
        assert f"JPEG 품질 약 {decoded.jpeg_quality}" in caveats[0].text_ko


def test_only_a_jpeg_file_can_get_the_compression_caveat():
    assert predict.verdict_caveats(open_image(encode(photo_like(4), "PNG")), "real") == []


def test_the_caveat_comes_with_the_result_unless_the_verdict_is_ai(detector):
    result = detector.predict(encode(photo_like(5, (160, 120)), "JPEG", quality=50))
    assert result.ok
    assert [c.code for c in result.caveats] == ([] if result.verdict == "ai" else ["strong_jpeg"])
    assert ("caveats" in result.to_dict()) == (result.verdict != "ai")
