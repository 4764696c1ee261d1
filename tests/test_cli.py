"""aiornot.apps.cli: every tool an ``aiornot …`` subcommand with its --help; a user's mistake is one line and exit code 2;
``aiornot scan``: a JSON line per input, error lines for what cannot be scored, exit codes.

The results file's resume rules are in test_jsonl.py, folder walking in test_walk.py, the Ray engine
in test_batch.py.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from aiornot.apps import cli
from aiornot.io import jsonl
from conftest import bad_and_odd_files, photo_like, scan, write_shard


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
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    verdicts = Counter(line["verdict"] for line in lines if "verdict" in line)
    assert summary == "scored 6, failed 4; verdicts: " + ", ".join(f"{name} {verdicts[name]}" for name in sorted(verdicts))


def test_scan_exit_code_when_nothing_can_be_scored(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "a.jpg").write_bytes(b"")
    assert cli.main(["scan", str(tmp_path / "a.jpg"), "--model", str(tiny_model_dir), "--quiet"]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["scan", str(empty), "--model", str(tiny_model_dir)]) == 1
    assert "no image files" in capsys.readouterr().err


def test_scan_says_what_a_folder_held_but_did_not_try(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    photo_like(0).save(folder / "p.jpg")
    photo_like(1).save(folder / "sub" / "q.avif" if "AVIF" in cli_formats() else folder / "sub" / "q.png")
    (folder / "notes.txt").write_text("applicant list")
    (folder / "sub" / "IMG_0001.heic").write_bytes(b"\0\0\0\x24ftypheic\0\0\0\0mif1heic" + bytes(200))
    (folder / ".DS_Store").write_bytes(b"\0" * 64)
    output = tmp_path / "out.jsonl"
    assert cli.main(["scan", str(folder), "--output", str(output), "--model", str(tiny_model_dir), "--quiet"]) == 0
    lines = {Path(line["path"]).name: line for line in map(json.loads, output.read_text().splitlines())}
    assert set(lines) == {"p.jpg", "q.avif" if "AVIF" in cli_formats() else "q.png", "IMG_0001.heic"}
    assert lines["IMG_0001.heic"]["error_code"] == "unsupported_format"
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith("scored 2, failed 1; verdicts: ") and "; left out 2 files in the folders:" in summary
    assert "1 not named as images (notes.txt; --all-files tries them)" in summary and "1 hidden (.DS_Store)" in summary
    assert cli.main(["scan", str(folder), "--all-files", "--model", str(tiny_model_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("scored 2, failed 2; verdicts: ") and last.endswith("; left out 1 file in the folders: 1 hidden (.DS_Store)")


def cli_formats() -> tuple[str, ...]:
    from aiornot.io.decode import ALLOWED_FORMATS

    return ALLOWED_FORMATS


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
    code = cli.main(["scan", str(portrait), str(tmp_path / "landscape.jpg"), "--id-photo", "--face-score", "--model",
                     str(tiny_model_dir), "--quiet"])
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


def test_scan_id_photo_alone_gives_the_face_box_and_checks_without_the_face_score(tmp_path, tiny_model_dir, capsys, predict_options):
    import shutil

    from matplotlib import cbook

    portrait = tmp_path / "portrait.jpg"
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), portrait)
    assert scan(str(portrait), "--id-photo", "--model", str(tiny_model_dir)) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["face"]["w"] > 50 and line["checks"] and "face_score" not in line
    assert [(o.id_photo, o.face_score) for o in predict_options] == [(True, False)]
    predict_options.clear()
    assert scan(str(portrait), "--id-photo", "--face-score", "--model", str(tiny_model_dir)) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["face_score"] <= 1
    assert [(o.id_photo, o.face_score) for o in predict_options] == [(True, True)]


def test_scan_face_score_reaches_the_ray_engine(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from aiornot.apps import batch

    asked: list[dict] = []
    monkeypatch.setattr(batch, "scan_with_ray", lambda paths, **options: asked.append(options) or jsonl.ScanCounts(scored=len(paths)))
    photo_like(0).save(tmp_path / "a.jpg")
    assert scan(str(tmp_path / "a.jpg"), "--engine", "ray", "--id-photo", "--face-score", "--model", str(tiny_model_dir)) == 0
    assert scan(str(tmp_path / "a.jpg"), "--engine", "ray", "--id-photo", "--model", str(tiny_model_dir)) == 0
    assert [(o["id_photo"], o["face_score"]) for o in asked] == [(True, True), (True, False)]
    asked.clear()
    monkeypatch.setattr(batch, "scan_parquet_with_ray", lambda data, **options: asked.append(options) or jsonl.ScanCounts(scored=1))
    shard = write_shard(tmp_path / "train.parquet", ["a.jpg"], [(tmp_path / "a.jpg").read_bytes()])
    assert scan(str(shard), "--engine", "ray", "--id-photo", "--face-score", "--model", str(tiny_model_dir)) == 0
    assert [(o["id_photo"], o["face_score"]) for o in asked] == [(True, True)]


def test_scan_face_score_without_id_photo_is_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch):
    from aiornot import detector

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded for a scan that cannot run")

    monkeypatch.setattr(detector.Detector, "load", no_model)
    photo_like(0).save(tmp_path / "a.jpg")
    for engine in ("local", "ray"):
        assert scan(str(tmp_path / "a.jpg"), "--face-score", "--engine", engine, "-o", str(tmp_path / "o.jsonl")) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert err.strip() == "error: --face-score needs --id-photo: the face crop it scores is found in ID-photo mode only"
    assert not (tmp_path / "o.jsonl").exists()  # refused before the output was opened


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


# ------------------------------------------------------------------------------ one CLI (issue 19)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "default"
TOOLS = ("export", "describe", "model-card", "readme", "build-sample", "build-encoders", "full-run", "ray-embed")


def subcommands() -> list[str]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_every_tool_is_a_subcommand_of_the_one_parser():
    assert set(subcommands()) == {"scan", "serve", *TOOLS}


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_its_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: aiornot {command} ") and "options:" in out


def test_no_module_but_the_cli_has_a_main():
    """Tools are subcommands, not ``python -m aiornot.<module>`` scripts with their own argument parsing."""
    offenders = []
    for path in sorted((ROOT / "aiornot").rglob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        name, source = path.relative_to(ROOT), path.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                offenders.append(f"{name}: def main")
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                offenders.append(f"{name}: if __name__ == '__main__'")
        offenders += [f"{name}: {what}" for what in ("ArgumentParser(", "sys.argv") if what in source]
    assert offenders == []


def test_python_dash_m_aiornot_is_the_command():
    done = subprocess.run([sys.executable, "-m", "aiornot", "model-card", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: aiornot model-card")


def _folder_of_photos(root: Path) -> Path:
    for label, names in (("real", ("a", "b", "c")), ("ai", ("d", "e", "f"))):
        (root / label).mkdir(parents=True)
        for seed, name in enumerate(names):
            photo_like(seed).save(root / label / f"{name}.png")
    return root


@pytest.mark.parametrize(("arguments", "message"), [
    (["describe", "{tmp}/missing"], "does not exist"),
    (["describe", "{tmp}/notes.txt"], "expected a .csv manifest or a .parquet file"),
    (["model-card", "{tmp}/missing"], "{tmp}/missing: no such model folder"),
    (["model-card", "{tmp}/notes.txt"], "{tmp}/notes.txt is a file; give the model folder"),
    (["model-card", "{tmp}"], "{tmp}/detector.json not found"),
    (["model-card", "{tmp}/bad"], "no schema_version"),
    (["readme", "{tmp}/missing.md", str(DEFAULT_MODEL)], "{tmp}/missing.md: no such README file"),
    (["readme", "{tmp}/notes.txt", str(DEFAULT_MODEL)], "README has no <!-- results:start -->"),
    (["readme", "{tmp}/README.md", "{tmp}/missing"], "{tmp}/missing: no such model folder"),
    (["readme", "{tmp}/README.md", str(DEFAULT_MODEL), "{tmp}/notes.txt"], "{tmp}/notes.txt is not valid JSON"),
    (["describe", "{tmp}/two"], "too few images to split into training and validation: 1 camera and 1 AI images"),
    (["export", "{tmp}/missing.jsonl"], "no results file at {tmp}/missing.jsonl"),
    (["export", "{tmp}/notes.txt", "-o", "{tmp}/README.md"], "{tmp}/README.md already exists; pass --force"),
    (["export", "{tmp}/notes.txt", "-o", "{tmp}/notes.txt"], "is the results file itself"),
    (["export", "{tmp}/notes.txt", "-o", "{tmp}/notes.csv"], "{tmp}/notes.txt holds no scan lines"),
    (["full-run", "{tmp}/missing"], "{tmp}/missing: no such dataset"),
    (["full-run", "{tmp}", "--test", "{tmp}/missing"], "{tmp}/missing: no such test dataset"),
    (["ray-embed", "{tmp}/missing"], "{tmp}/missing: no such dataset"),
    (["build-sample", "--sources", "{tmp}/missing.toml", "--out", "{tmp}/sample"], "no source list at {tmp}/missing.toml"),
])
def test_a_users_mistake_is_one_line_and_exit_code_2(arguments, message, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not what was asked for\n")
    (tmp_path / "README.md").write_text("<!-- results:start -->\nold\n<!-- results:end -->\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "detector.json").write_text("{}")
    for label, seed in (("real", 0), ("ai", 1)):  # a dataset of two images: loads, but cannot be split
        (tmp_path / "two" / label).mkdir(parents=True)
        photo_like(seed).save(tmp_path / "two" / label / "only.png")
    code = cli.main([argument.replace("{tmp}", str(tmp_path)) for argument in arguments])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == cli.EXIT_USAGE and len(lines) == 1 and "Traceback" not in err, err
    assert message.replace("{tmp}", str(tmp_path)) in lines[0]
    assert not (tmp_path / "sample").exists()


def test_describe_prints_the_classes_and_the_split(tmp_path, capsys):
    assert cli.main(["describe", str(_folder_of_photos(tmp_path / "data"))]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "all" in out and "train" in out and "validation" in out and "class 1 (AI) %" in out


def test_model_card_and_readme_come_from_the_model_folder(tmp_path, capsys):
    assert cli.main(["model-card", str(DEFAULT_MODEL)]) == cli.EXIT_OK
    card = capsys.readouterr().out
    assert card.startswith("# Model card") and "`aiornot model-card`" in card
    assert card.strip() == (ROOT / "models" / "MODEL_CARD.md").read_text(encoding="utf-8").strip()  # make reports' card
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nstale\n<!-- results:end -->\nrest\n")
    assert cli.main(["readme", str(readme), str(DEFAULT_MODEL), str(tmp_path / "not-measured-yet.json")]) == cli.EXIT_OK
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n<!-- results:start -->\n") and text.endswith("<!-- results:end -->\nrest\n")


def test_build_sample_outside_a_checkout_says_where_the_builder_lives(monkeypatch, capsys):
    import importlib

    def no_tools(name, *args):
        raise ModuleNotFoundError(f"No module named {name!r}", name="tools")

    monkeypatch.setattr(importlib, "import_module", no_tools)
    assert cli.main(["build-sample"]) == cli.EXIT_USAGE
    assert "lives in the aiornot repository, not in the installed package" in capsys.readouterr().err
