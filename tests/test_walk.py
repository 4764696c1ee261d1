"""Walking the folders ``aiornot scan`` is given (aiornot.io.walk): any depth, links followed once, and a line
for every folder or link that cannot be walked, through the scan that uses it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import deep_tree, photo_like, remove_deep_tree, scan


def test_broken_and_looping_links_and_unreadable_folders_get_error_lines(tiny_model_dir, tmp_path, monkeypatch):
    folder = tmp_path / "tree"
    (folder / "locked").mkdir(parents=True)
    photo_like(1).save(folder / "ok.jpg")
    (folder / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    (folder / "back").symlink_to(folder)  # a folder link to its own parent: must not recurse for ever
    real_scandir = os.scandir

    def scandir(path="."):  # what chmod 000 does to a non-root user (tests may run as root)
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    output = tmp_path / "out.jsonl"
    assert scan(str(folder), "-o", str(output), "--model", str(tiny_model_dir)) == 0
    lines = {Path(r["path"]).name: r for r in map(json.loads, output.read_text().splitlines())}
    assert "score" in lines["ok.jpg"]
    assert lines["dangling.jpg"]["error_code"] == "broken_symlink"
    assert lines["loop.jpg"]["error_code"] == "symlink_loop"
    assert lines["locked"]["error_code"] == "unreadable_folder" and "Permission denied" in lines["locked"]["error"]
    assert lines["back"]["error_code"] == "symlink_loop"


def test_a_1000_level_tree_scans_with_a_line_per_file(tiny_model_dir, tmp_path):
    top = tmp_path / "deep"
    top.mkdir()
    bottom = deep_tree(top, 1_000)
    try:
        photo_like(1).save(top / "top.jpg")
        photo_like(2).save(bottom / "bottom.jpg")  # ~2,000 characters of path: the OS accepts it
        output = tmp_path / "out.jsonl"
        assert scan(str(top), "-o", str(output), "--model", str(tiny_model_dir)) == 0  # was a RecursionError
        lines = [json.loads(line) for line in output.read_text().splitlines()]
        assert sorted(Path(line["path"]).name for line in lines) == ["bottom.jpg", "top.jpg"]
        assert all("score" in line for line in lines)
    finally:
        remove_deep_tree(top)


def test_a_path_the_os_refuses_gets_its_own_error_line(tiny_model_dir, tmp_path):
    top = tmp_path / "deeper"
    top.mkdir()
    deep_tree(top, 1_500, name="dd")  # 4,500+ characters: past PATH_MAX (4,096 on Linux)
    try:
        photo_like(1).save(top / "top.jpg")
        output = tmp_path / "out.jsonl"
        assert scan(str(top), "-o", str(output), "--model", str(tiny_model_dir)) == 0
        lines = [json.loads(line) for line in output.read_text().splitlines()]
        refused = [line for line in lines if line.get("error_code") == "unreadable_folder"]
        assert len(refused) == 1 and "longer than the operating system accepts" in refused[0]["error"]
        assert [Path(line["path"]).name for line in lines if "score" in line] == ["top.jpg"]
    finally:
        remove_deep_tree(top)
