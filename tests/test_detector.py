"""The detector (aiornot.detector): the result contract, batches, saving and the runtimes.

``aiornot scan`` is tested in test_cli.py, its results file and resume in test_jsonl.py.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from aiornot.detector import CONFIG_NAME, Calibration, Detector, ModelNotFoundError, update_config
from aiornot.model.experts import LinearHead, SemanticExpert
from conftest import encode, photo_like


def test_detector_round_trip_and_result_contract(tiny_model_dir):
    detector = Detector.load(tiny_model_dir)
    assert detector.name == "tiny-test" and detector.thresholds.ai == 0.6
    result = detector.predict(encode(photo_like(0), "JPEG"), path="upload.jpg", explain=True)
    assert result.ok and 0.0 <= result.score <= 1.0 and result.verdict in ("ai", "real", "inconclusive")
    assert result.md5 and result.format == "JPEG" and (result.width, result.height) == (120, 90)
    assert result.heatmap is not None and result.heatmap.ndim == 2
    assert {"path", "score", "verdict", "model"} <= set(result.to_dict())
    json.dumps(result.to_dict())


def test_batch_scores_equal_single_scores(tiny_model_dir):
    detector = Detector.load(tiny_model_dir)
    images = [encode(photo_like(i, (100 + 10 * i, 80)), "PNG") for i in range(5)]
    single = [detector.predict(image, provenance=False).score for image in images]
    batched = [r.score for r in detector.predict_many(images, batch_size=2, provenance=False)]
    assert np.allclose(single, batched, atol=1e-5)


def test_a_bad_image_is_a_result_with_an_error(tiny_model_dir):
    result = Detector.load(tiny_model_dir).predict(b"not an image at all", path="x.jpg")
    assert not result.ok and result.error_code == "not_an_image" and result.score is None


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="make reports"):
        Detector.load(tmp_path)


def test_update_config_adds_entries_and_keeps_the_rest(tiny_model_dir, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    before = json.loads((copy / "detector.json").read_text())
    update_config(copy, id_photo_case_study={"portraits": 3, "real_flagged": {"whole photo": 0.5}})
    after = json.loads((copy / "detector.json").read_text())
    assert after == {**before, "id_photo_case_study": {"portraits": 3, "real_flagged": {"whole photo": 0.5}}}
    assert Detector.load(copy).thresholds == Detector.load(tiny_model_dir).thresholds
    with pytest.raises(ModelNotFoundError):
        update_config(tmp_path / "nothing-here", x=1)


def test_saving_the_committed_model_rewrites_its_config_byte_for_byte(tmp_path):
    """The detector scores with its config's own sections, so loading and saving changes nothing in detector.json."""
    default = Path(__file__).resolve().parents[1] / "models" / "default"
    detector = Detector.load(default)
    detector.save(tmp_path / "copy")
    written, committed = ((folder / CONFIG_NAME).read_text() for folder in (tmp_path / "copy", default))
    if detector.runtime == "keras":  # the network itself was saved again: its file's size may differ by a few bytes
        written, committed = (re.sub(r'"size_mb": [0-9.]+', "", text) for text in (written, committed))
    assert written == committed


def test_save_drops_optimizer_state_and_records_the_size(tmp_path):
    import keras

    from aiornot.model import networks

    model = networks.forensic_detector(widths=(8, 16))
    model.compile(optimizer=keras.optimizers.Adam(), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(np.zeros((4, 32, 32, 3), np.float32), np.array([[0.0], [1.0], [0.0], [1.0]]), verbose=0)
    detector = Detector(model, {"name": "trained", "crop_size": 32})
    detector.save(tmp_path)
    with zipfile.ZipFile(tmp_path / "model.keras") as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        stored = []
        weights.visititems(lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    assert stored and not [name for name in stored if name.startswith("optimizer")], stored
    reloaded = Detector.load(tmp_path)
    assert reloaded.config["size_mb"] == round((tmp_path / "model.keras").stat().st_size / 1e6, 3)
    assert Detector.load(tmp_path, runtime="keras").model.name == model.name
    image = [np.asarray(photo_like(0))]
    assert np.allclose(reloaded.logits(image), detector.logits(image), atol=1e-5)


def test_tflite_runtime_matches_keras_and_can_be_resaved(tiny_model_dir, tmp_path):
    keras_detector = Detector.load(tiny_model_dir, runtime="keras")
    lite = Detector.load(tiny_model_dir, runtime="tflite")
    assert (tiny_model_dir / "model.tflite").is_file() and lite.runtime == "tflite" and keras_detector.runtime == "keras"
    images = [np.asarray(photo_like(i, (90 + 7 * i, 70))) for i in range(5)]
    assert np.allclose(lite.logits(images), keras_detector.logits(images), atol=1e-4)
    assert Detector.load(tiny_model_dir).runtime == "tflite"  # auto picks the measured-faster runtime
    from aiornot.model.tflite_runtime import usable_cpus

    assert lite.model.threads == usable_cpus()  # TFLite's own default, one thread, lost to Keras on big batches
    single = Detector.load(tiny_model_dir, runtime="tflite", threads=1)
    assert single.model.threads == 1 and np.allclose(single.logits(images), lite.logits(images), atol=1e-5)
    lite.save(tmp_path / "copy")
    assert Detector.load(tmp_path / "copy", runtime="keras").name == "tiny-test"
    with pytest.raises(ValueError, match="runtime"):
        Detector.load(tiny_model_dir, runtime="onnx")


class TableEncoder:
    """'Features' that make the AI images (bright) separable from the real ones (dark)."""

    id = "table"

    def embed(self, images):
        return {"embeds": np.array([[p.mean() / 255.0, 1.0 - p.mean() / 255.0] for p in images])}


def test_detector_result_carries_each_expert_and_the_fusion_rule(tiny_model_dir, tmp_path):
    detector = Detector.load(tiny_model_dir, runtime="keras")
    head = LinearHead(mean=[0.5, 0.5], scale=[0.1, 0.1], coef=[4.0, -4.0], intercept=0.0)
    detector.semantic = SemanticExpert(head, Calibration(), encoder=TableEncoder(), encoder_id="table")
    bright, dark = np.full((80, 80, 3), 230, np.uint8), np.full((80, 80, 3), 20, np.uint8)
    detector.calibrate([bright, dark] * 10, np.array([1, 0] * 10))
    bright_png, dark_png = (encode(Image.fromarray(p), "PNG") for p in (bright, dark))
    result = detector.predict(bright_png)
    assert set(result.experts) == {"semantic", "forensic"} and result.fusion == detector.fusion.rule and result.fusion_ko
    assert result.experts["semantic"] > 0.9 and result.verdict == "ai"
    assert detector.predict(dark_png).experts["semantic"] < 0.1
    assert detector.scores([bright])[0] == pytest.approx(result.score, abs=1e-6)
    detector.save(tmp_path / "saved")
    reloaded = Detector.load(tmp_path / "saved", runtime="keras")
    reloaded.semantic._encoder = TableEncoder()
    assert reloaded.fusion == detector.fusion and reloaded.predict(bright_png).score == pytest.approx(result.score, abs=1e-6)


def _two_expert_detector(tiny_model_dir) -> Detector:
    """The tiny model with a semantic expert beside its forensic one, both calibrated and fused on toy photos."""
    detector = Detector.load(tiny_model_dir, runtime="keras")
    head = LinearHead(mean=[0.5, 0.5], scale=[0.1, 0.1], coef=[4.0, -4.0], intercept=0.0)
    detector.semantic = SemanticExpert(head, Calibration(), encoder=TableEncoder(), encoder_id="table")
    detector.calibrate([np.full((80, 80, 3), v, np.uint8) for v in (230, 20)] * 10, np.array([1, 0] * 10))
    return detector


def test_an_expert_the_fusion_weighs_0_is_not_run_when_predicting(tiny_model_dir, monkeypatch):
    """The shipped fusion gives the forensic expert weight 0: predict must not run its CNN, and
    must give the very score of the full computation; evaluation still gets every expert."""
    detector = _two_expert_detector(tiny_model_dir)
    detector.fusion = detector.fusion.model_copy(update={"weights": {"semantic": 0.97, "forensic": 0.0},
                                                         "excluded": {"forensic": "out-of-source ROC AUC 0.50 < 0.60"}})
    photos = [np.asarray(photo_like(i, (90, 70))) for i in range(3)]
    full = detector.fuse(detector.expert_scores(photos))  # every expert, as evaluation asks
    assert detector.used_experts == ("semantic",)

    def forensic_must_not_run(*args, **kwargs):
        raise AssertionError("the forensic CNN ran although the fusion weighs it 0")

    monkeypatch.setattr(detector, "crop_logits", forensic_must_not_run)
    assert set(detector.expert_scores(photos, used_only=True)) == {"semantic"}
    results = list(detector.predict_many([encode(Image.fromarray(p), "PNG") for p in photos], batch_size=3))
    assert [r.score for r in results] == [round(float(score), 6) for score in full]
    assert [r.pixel_verdict for r in results] == [detector.thresholds.verdict(float(score)) for score in full]
    # Not reported with a made-up score: left out of `experts`, and the fusion rule says why.
    assert all(set(r.experts) == {"semantic"} for r in results)
    assert "forensic: weight 0 (out-of-source ROC AUC 0.50 < 0.60)" in results[0].fusion
    with pytest.raises(AssertionError, match="forensic CNN ran"):
        detector.expert_scores(photos)  # the default still runs every expert (calibration, AUC per expert)


def test_experts_of_non_zero_weight_still_run_and_explain_runs_the_forensic_cnn(tiny_model_dir, monkeypatch):
    detector = _two_expert_detector(tiny_model_dir)
    assert all(weight != 0 for weight in detector.fusion.weights.values())
    assert detector.used_experts == ("semantic", "forensic")
    photo = encode(photo_like(1, (90, 70)), "PNG")
    assert set(detector.predict(photo).experts) == {"semantic", "forensic"}
    detector.fusion = detector.fusion.model_copy(update={"weights": {"semantic": 1.0, "forensic": 0.0}})
    calls: list[int] = []
    original = detector.crop_logits
    monkeypatch.setattr(detector, "crop_logits", lambda crops, *a, **k: calls.append(len(crops)) or original(crops, *a, **k))
    explained = detector.predict(photo, explain=True)  # the heatmap is an explicit request: the CNN runs for it
    assert calls and explained.heatmap is not None and set(explained.experts) == {"semantic"}
    # A rule that weighs no expert is a constant; every expert still runs, so the Result has scores to show.
    detector.fusion = detector.fusion.model_copy(update={"weights": {"semantic": 0.0, "forensic": 0.0}})
    assert detector.used_experts == detector.expert_names
    assert set(detector.predict(photo).experts) == {"semantic", "forensic"}


def test_scan_cuts_batches_by_decoded_pixels(tiny_model_dir, tmp_path, monkeypatch):
    from aiornot import predict

    for n in range(7):
        photo_like(n, (200, 200)).save(tmp_path / f"{n}.png")  # 40,000 pixels each
    detector = Detector.load(tiny_model_dir)
    sizes: list[int] = []
    real = predict.score_batch

    def recording(scorer, batch, *args):
        sizes.append(len(batch))
        return real(scorer, batch, *args)

    monkeypatch.setattr(predict, "score_batch", recording)
    results = list(detector.predict_many(sorted(tmp_path.glob("*.png")), batch_size=32, max_batch_pixels=100_000))
    assert len(results) == 7 and all(r.ok for r in results)
    assert sizes == [3, 3, 1]  # 120,000 pixels close a batch; 32 images would have gone in one