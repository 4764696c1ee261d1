"""The JSONL results file of ``aiornot scan`` and the Ray engine (aiornot.io.jsonl): resume without losing or
repeating a line, a torn last line repaired, one path under many spellings, non-UTF-8 names, the lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aiornot.apps import cli
from aiornot.io import jsonl
from conftest import encode, photo_like, scan


def test_scan_resumes_without_repeating(odd_folder, tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "out.jsonl"
    arguments = ["scan", str(odd_folder), "--output", str(output), "--model", str(tiny_model_dir), "--quiet"]
    cli.main(arguments)
    first = output.read_text().splitlines()
    assert cli.main(arguments) == 0
    assert output.read_text().splitlines() == first
    assert "already" in capsys.readouterr().err


@pytest.mark.parametrize("writer", ["scan", "sink"])
def test_a_torn_last_line_is_cut_and_its_image_written_again(writer, tiny_model_dir, tmp_path, capsys):
    """Power loss in the middle of line 3: on resume the torn line goes, the whole lines stay, line 3 is written anew.

    ``scan`` is the local ``aiornot scan``; ``sink`` is the results file as the Ray engine opens it
    (:func:`aiornot.io.jsonl.open_jsonl_output`)."""
    import pandas as pd

    photos = [str(tmp_path / f"{n}.jpg") for n in range(3)]
    for n, photo in enumerate(photos):
        photo_like(n).save(photo)
    output = tmp_path / "out.jsonl"
    assert scan(*photos, "-o", str(output), "--model", str(tiny_model_dir)) == 0
    whole = output.read_bytes()
    output.write_bytes(whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 20])  # power loss in the middle of line 3
    kept = output.read_text().splitlines(keepends=True)[:2]
    capsys.readouterr()
    if writer == "scan":
        assert scan(*photos, "-o", str(output), "--model", str(tiny_model_dir)) == 0
        err = capsys.readouterr().err
        assert "resuming: 2 of 3 already in" in err and "a torn last line was removed" in err, err
    else:
        with jsonl.open_jsonl_output(output) as sink:
            sink.write(jsonl.json_line({"path": photos[2], "score": 0.5}))
    lines = output.read_text().splitlines(keepends=True)
    assert lines[:2] == kept  # the whole lines are kept as they were, not scored again
    assert [json.loads(line)["path"] for line in lines] == photos  # the torn line is gone: every line parses, each path once
    frame = pd.read_json(output, lines=True)  # raised ValueError on the torn line before
    assert sorted(frame["path"]) == sorted(photos)
    assert jsonl.already_scanned(output) == set(photos)


def test_a_file_name_that_is_not_utf8_is_scored_and_resumed(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "names"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"caf\xe9-\xff.jpg")  # Latin-1 bytes: not UTF-8
    with open(odd, "wb") as handle:
        handle.write(encode(photo_like(2), "JPEG"))
    photo_like(3).save(folder / "z-after.jpg")  # scored after the odd name: nothing aborts
    output = tmp_path / "out.jsonl"
    arguments = [str(folder), "-o", str(output), "--model", str(tiny_model_dir)]
    assert scan(*arguments) == 0
    text = output.read_bytes().decode("utf-8")  # the file stays valid UTF-8 (the name is escaped)
    records = [json.loads(line) for line in text.splitlines()]
    assert {os.fsencode(r["path"]) for r in records} == {odd, os.fsencode(folder / "z-after.jpg")}
    assert all("score" in r for r in records)
    assert scan(*arguments) == 0 and output.read_text() == text  # resumed: nothing scored twice
    assert "skipped 2 already done" in capsys.readouterr().err


def test_a_second_scan_into_the_same_output_refuses(tiny_model_dir, tmp_path, capsys):
    photo_like(0).save(tmp_path / "a.jpg")
    output = tmp_path / "out.jsonl"
    first = jsonl.ResultFile(output)  # a scan in progress holds the lock
    try:
        assert scan(str(tmp_path / "a.jpg"), "-o", str(output), "--model", str(tiny_model_dir)) == cli.EXIT_USAGE
        assert "another aiornot scan is writing to" in capsys.readouterr().err
        assert output.read_bytes() == b""
    finally:
        first.close()
    assert scan(str(tmp_path / "a.jpg"), "-o", str(output), "--model", str(tiny_model_dir)) == 0  # the lock went with it


def folder_of_photos(parent: Path, name: str, count: int) -> Path:
    """A folder ``parent/name`` of ``count`` small JPEG photos."""
    folder = parent / name
    folder.mkdir()
    for n in range(count):
        photo_like(n).save(folder / f"{n}.jpg")
    return folder


def test_relative_then_absolute_paths_resume_without_rescoring(tiny_model_dir, tmp_path, monkeypatch, capsys):
    folder = folder_of_photos(tmp_path, "photos", 4)
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "out.jsonl"
    assert scan("photos", "-o", str(output), "--model", str(tiny_model_dir)) == 0
    before = output.read_text()
    capsys.readouterr()
    assert scan(str(folder), "photos/0.jpg", "-o", str(output), "--model", str(tiny_model_dir)) == 0
    assert output.read_text() == before
    assert "skipped 4 already done" in capsys.readouterr().err  # the file named twice is one file, counted once


def test_one_folder_under_two_spellings_resumes_as_one(tiny_model_dir, tmp_path, monkeypatch, capsys):
    folder_of_photos(tmp_path, "dir", 3)
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "out.jsonl"
    assert scan("dir", "./dir/../dir", "-o", str(output), "--model", str(tiny_model_dir)) == 0
    assert len(output.read_text().splitlines()) == 3
    capsys.readouterr()
    assert scan("dir", "./dir/../dir", "-o", str(output), "--model", str(tiny_model_dir)) == 0
    err = capsys.readouterr().err
    assert "resuming: 3 of 3 already in" in err and "skipped 3 already done" in err, err  # was "6 of 6" for 3 files
    assert len(output.read_text().splitlines()) == 3




def test_scan_counts_add_up_the_lines_and_their_verdicts():
    first, second = jsonl.ScanCounts(), jsonl.ScanCounts(skipped=2)
    for record in ({"verdict": "ai"}, {"verdict": "real"}, {"error": "not an image", "error_code": "not_an_image"}):
        first.add(record)
    second.add({"verdict": "real"})
    total = first + second
    assert (total.scored, total.failed, total.skipped) == (3, 1, 2)
    assert total.summary() == "scored 3, failed 1, skipped 2 already done; verdicts: ai 1, real 2"
    assert jsonl.ScanCounts(failed=2).summary() == "scored 0, failed 2"  # no verdict to count
