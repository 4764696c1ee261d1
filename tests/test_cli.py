"""``aiornot scan`` (aiornot.cli): a JSON line per input, error lines for what cannot be scored, exit codes.

The results file's resume rules are in test_jsonl.py, folder walking in test_walk.py, the Ray engine
in test_batch.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aiornot import cli
from conftest import bad_and_odd_files, photo_like, scan


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


def test_scan_exit_code_when_nothing_can_be_scored(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "a.jpg").write_bytes(b"")
    assert cli.main(["scan", str(tmp_path / "a.jpg"), "--model", str(tiny_model_dir), "--quiet"]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["scan", str(empty), "--model", str(tiny_model_dir)]) == 1
    assert "no image files" in capsys.readouterr().err


def test_scan_writes_one_json_line_to_stdout_with_each_expert_and_the_rule(tmp_path, tiny_model_dir, capsys):
    photo_like(0).save(tmp_path / "p.jpg")
    assert cli.main(["scan", str(tmp_path / "p.jpg"), "--model", str(tiny_model_dir), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip())  # one line, and nothing else on stdout
    assert line["path"].endswith("p.jpg") and "score" in line
    assert set(line["experts"]) == {"forensic"} and 0 <= line["experts"]["forensic"] <= 1
    assert line["fusion"].startswith("P(AI) = σ(1.00·logit(forensic)") and line["fusion_ko"]


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


def test_scan_of_a_fifo_and_dev_zero_gives_error_lines_and_goes_on(tiny_model_dir, tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.jpg")
    photo_like(1).save(tmp_path / "ok.jpg")
    output = tmp_path / "out.jsonl"
    assert scan(str(tmp_path / "fifo.jpg"), "/dev/zero", str(tmp_path / "ok.jpg"), "-o", str(output), "--model", str(tiny_model_dir)) == 0
    lines = {Path(line["path"]).name: line for line in map(json.loads, output.read_text().splitlines())}
    assert lines["fifo.jpg"]["error_code"] == lines["zero"]["error_code"] == "not_a_file"
    assert "FIFO" in lines["fifo.jpg"]["error"] and "score" in lines["ok.jpg"]


@pytest.mark.parametrize("case", ["folder", "parent_is_a_file", "proc", "proc_folder"])
def test_output_problems_are_one_line_before_the_model_loads(case, tmp_path, capsys, monkeypatch):
    from aiornot import detector

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(detector.Detector, "load", no_model)
    photo_like(0).save(tmp_path / "a.jpg")
    (tmp_path / "file").write_text("x")
    target = {"folder": tmp_path, "parent_is_a_file": tmp_path / "file" / "out.jsonl",
              "proc": Path("/proc/version"), "proc_folder": Path("/proc/aiornot-test/out.jsonl")}[case]
    assert scan(str(tmp_path / "a.jpg"), "-o", str(target)) == cli.EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: cannot ") and str(target) in error and len(error.splitlines()) == 1, error
    assert "Traceback" not in error


def test_ctrl_c_in_scan_is_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from aiornot import detector

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(detector.Detector, "predict_many", interrupted)
    photo_like(0).save(tmp_path / "a.jpg")
    assert scan(str(tmp_path / "a.jpg"), "-o", str(tmp_path / "o.jsonl"), "--model", str(tiny_model_dir)) == cli.EXIT_INTERRUPTED
    error = capsys.readouterr().err
    assert error.strip() == "interrupted; run the same command again to resume"
