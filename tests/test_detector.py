from __future__ import annotations

import io
import json
import zipfile

import h5py
import numpy as np
import pytest

from aiornot import cli
from aiornot.detector import Calibration, Detector, ModelNotFoundError, Thresholds, update_config
from conftest import bad_and_odd_files, encode, photo_like


def test_thresholds_respect_the_target_fpr_on_real_photos():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.beta(2, 5, 400), rng.beta(5, 2, 400)])
    labels = np.array([0] * 400 + [1] * 400)
    chosen = Thresholds.choose(scores, labels, target_fpr=0.05, target_fnr=0.05)
    assert np.mean(scores[labels == 0] >= chosen.ai) <= 0.05
    assert np.mean(scores[labels == 1] < chosen.real) <= 0.05
    # The classes overlap (Beta(2, 5) against Beta(5, 2)), so the band between the thresholds is open.
    assert 0.3 < chosen.real < chosen.ai < 0.7
    assert chosen.verdict(chosen.ai) == "ai" and chosen.verdict(chosen.real - 1e-6) == "real"
    assert chosen.verdict((chosen.ai + chosen.real) / 2) == "inconclusive"
    # One rule for "at a stated FPR": the stored `ai` threshold is the one the TPR evaluation uses.
    from aiornot import evaluate

    assert evaluate.tpr_at_fpr(labels, scores, 0.05) == np.mean(scores[labels == 1] >= chosen.ai)


def test_calibration_on_a_one_class_validation_set_is_a_clear_error():
    with pytest.raises(ValueError, match="both classes, got only real photos .label 0. .40 images."):
        Calibration.fit(np.linspace(-2, 2, 40), np.zeros(40, int))
    with pytest.raises(ValueError, match="got only AI images"):
        Calibration.fit(np.linspace(-2, 2, 5), np.ones(5, int))


def test_calibration_is_monotonic_and_fits_the_data():
    rng = np.random.default_rng(1)
    true_log_odds = rng.normal(0, 2, 3000)
    labels = (rng.random(3000) < 1 / (1 + np.exp(-true_log_odds))).astype(int)
    calibration = Calibration.fit(true_log_odds * 3, labels)  # an over-confident model's logits are shrunk back
    assert 0.25 < calibration.slope < 0.42 and abs(calibration.intercept) < 0.2
    probabilities = calibration(np.array([-6.0, 0.0, 6.0]))  # true log-odds -2, 0, 2
    assert np.allclose(probabilities, [0.119, 0.5, 0.881], atol=0.05) and np.all(np.diff(probabilities) > 0)


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


def test_scan_folder_of_odd_files_scores_every_real_image(odd_folder, tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "out.jsonl"
    code = cli.main(["scan", str(odd_folder), "--output", str(output), "--model", str(tiny_model_dir), "--quiet"])
    assert code == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    by_name = {line["path"].rsplit("/", 1)[-1]: line for line in lines}
    expected = bad_and_odd_files()
    assert set(by_name) == set(expected)
    for name, (_, readable) in expected.items():
        line = by_name[name]
        if readable:
            assert "error" not in line and 0 <= line["score"] <= 1 and line["verdict"] and line["model"] == "tiny-test", name
        else:
            assert line["error"] and "score" not in line, name
    assert "scored 6, failed 4" in capsys.readouterr().err


def test_scan_resumes_without_repeating(odd_folder, tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "out.jsonl"
    arguments = ["scan", str(odd_folder), "--output", str(output), "--model", str(tiny_model_dir), "--quiet"]
    cli.main(arguments)
    first = output.read_text().splitlines()
    assert cli.main(arguments) == 0
    assert output.read_text().splitlines() == first
    assert "already" in capsys.readouterr().err


def test_scan_exit_code_when_nothing_can_be_scored(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "a.jpg").write_bytes(b"")
    assert cli.main(["scan", str(tmp_path / "a.jpg"), "--model", str(tiny_model_dir), "--quiet"]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["scan", str(empty), "--model", str(tiny_model_dir)]) == 1
    assert "no image files" in capsys.readouterr().err


def test_scan_writes_json_lines_to_stdout(tmp_path, tiny_model_dir, capsys):
    photo_like(0).save(tmp_path / "p.jpg")
    assert cli.main(["scan", str(tmp_path / "p.jpg"), "--model", str(tiny_model_dir), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["path"].endswith("p.jpg") and "score" in line


def test_scan_id_photo_mode_on_a_portrait_and_on_a_photo_without_a_face(tmp_path, tiny_model_dir, capsys):
    import shutil

    from matplotlib import cbook

    portrait = tmp_path / "portrait.jpg"
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), portrait)
    photo_like(5, (300, 200)).save(tmp_path / "landscape.jpg")
    code = cli.main(["scan", str(portrait), str(tmp_path / "landscape.jpg"), "--id-photo", "--model", str(tiny_model_dir), "--quiet"])
    assert code == 0
    lines = {json.loads(l)["path"].rsplit("/", 1)[-1]: json.loads(l) for l in capsys.readouterr().out.splitlines()}
    face_line, empty_line = lines["portrait.jpg"], lines["landscape.jpg"]
    assert face_line["face"]["w"] > 50 and 0 <= face_line["face_score"] <= 1
    assert {check["name"] for check in face_line["checks"]} >= {"single_face", "face_height", "background_light"}
    single = next(c for c in face_line["checks"] if c["name"] == "single_face")
    assert single["passed"]
    assert "face" not in empty_line and "score" in empty_line
    failed = next(c for c in empty_line["checks"] if c["name"] == "single_face")
    assert not failed["passed"] and failed["reason"] and failed["reason_ko"]


def test_save_drops_optimizer_state_and_records_the_size(tmp_path):
    import keras

    from aiornot import models

    model = models.forensic_detector(widths=(8, 16))
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


def test_local_scan_resumes_after_a_line_cut_short(odd_folder, tiny_model_dir, tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps({"path": str(odd_folder / "ok.jpg"), "score": 0.5}) + "\n" + '{"path": "cut sh')
    assert cli.main(["scan", str(odd_folder), "--output", str(output), "--model", str(tiny_model_dir), "--quiet"]) == 0
    lines = output.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # the torn line is gone: every line parses (pandas can read it)
    assert len(parsed) == len(bad_and_odd_files()) and '{"path": "cut sh' not in lines


def test_tflite_runtime_matches_keras_and_can_be_resaved(tiny_model_dir, tmp_path):
    keras_detector = Detector.load(tiny_model_dir, runtime="keras")
    lite = Detector.load(tiny_model_dir, runtime="tflite")
    assert (tiny_model_dir / "model.tflite").is_file() and lite.runtime == "tflite" and keras_detector.runtime == "keras"
    images = [np.asarray(photo_like(i, (90 + 7 * i, 70))) for i in range(5)]
    assert np.allclose(lite.logits(images), keras_detector.logits(images), atol=1e-4)
    assert Detector.load(tiny_model_dir).runtime == "tflite"  # auto picks the measured-faster runtime
    from aiornot.tflite_runtime import usable_cpus

    assert lite.model.threads == usable_cpus()  # TFLite's own default, one thread, lost to Keras on big batches
    single = Detector.load(tiny_model_dir, runtime="tflite", threads=1)
    assert single.model.threads == 1 and np.allclose(single.logits(images), lite.logits(images), atol=1e-5)
    lite.save(tmp_path / "copy")
    assert Detector.load(tmp_path / "copy", runtime="keras").name == "tiny-test"
    with pytest.raises(ValueError, match="runtime"):
        Detector.load(tiny_model_dir, runtime="onnx")
