"""``aiornot export`` (aiornot.io.export): a scan's JSON lines as a CSV table an officer opens in Excel."""

from __future__ import annotations

import csv
import json

from aiornot.apps import cli
from aiornot.contract.result import VERDICT_TEXTS
from aiornot.io import export
from conftest import photo_like


def read_table(path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:  # Excel needs the BOM to show Hangul
        return list(csv.DictReader(handle))


def test_a_scan_exported_is_one_row_per_line_with_the_korean_verdict(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo_like(0).save(folder / "a.jpg")
    (folder / "bad.jpg").write_text("not a photo")
    results = tmp_path / "results.jsonl"
    assert cli.main(["scan", str(folder), "-o", str(results), "--model", str(tiny_model_dir), "--quiet"]) == 0
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    with results.open("a", encoding="utf-8") as handle:
        handle.write('{"path": "torn\n')  # what a killed scan can leave
    capsys.readouterr()
    assert cli.main(["export", str(results)]) == 0
    err = capsys.readouterr().err
    assert f"wrote 2 rows to {tmp_path / 'results.csv'}; 1 line not readable as a scan line, left out (line 3)" in err
    rows = read_table(tmp_path / "results.csv")
    assert [row["path"] for row in rows] == [line["path"] for line in lines]
    scored, failed = (next(row for row in rows if row["path"].endswith(name)) for name in ("a.jpg", "bad.jpg"))
    line = next(line for line in lines if line["path"].endswith("a.jpg"))
    assert scored["verdict"] == line["verdict"] and scored["verdict_ko"] == VERDICT_TEXTS[line["verdict"]].label_ko
    assert float(scored["score"]) == line["score"] and not scored["error_code"]
    assert failed["error_code"] == "not_an_image" and not failed["verdict"]
    assert cli.main(["export", str(results)]) == 2  # the CSV is there now: not replaced without --force
    assert cli.main(["export", str(results), "--force"]) == 0


def test_a_file_name_that_would_run_as_a_formula_reaches_the_table_quoted(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"path": "=HYPERLINK(\"http://x\")", "verdict": "real", "score": 0.1}) + "\n", encoding="utf-8")
    with (tmp_path / "out.csv").open("w", encoding="utf-8-sig", newline="") as sink:
        assert export.export_csv(results, sink).rows == 1
    assert read_table(tmp_path / "out.csv")[0]["path"] == "'=HYPERLINK(\"http://x\")"


def test_text_that_would_run_as_a_formula_is_quoted():
    assert export._cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert [export._cell(v) for v in ("+1", "-1", "@SUM(A1)", "photo.jpg", 0.5, None)] == ["'+1", "'-1", "'@SUM(A1)", "photo.jpg", 0.5, None]


def test_table_row_states_the_evidence_caveats_and_failed_checks():
    record = {"path": "p.jpg", "verdict": "ai", "score": 0.9, "experts": {"semantic": 0.8},
              "signals": [{"name": "c2pa", "status": "found", "summary_ko": "C2PA: AI 생성"},
                          {"name": "camera_exif", "status": "not_found", "summary_ko": "카메라 EXIF 없음"}],
              "caveats": [{"code": "strong_jpeg", "text_ko": "원본 파일을 요청하세요"}],
              "checks": [{"name": "single_face", "passed": True}, {"name": "face_height", "passed": False}]}
    row = export.table_row(record)
    assert row["verdict_ko"] == "AI 생성" and row["semantic"] == 0.8 and row["forensic"] is None
    assert row["evidence_ko"] == "C2PA: AI 생성" and row["caveats_ko"] == "원본 파일을 요청하세요"
    assert row["failed_checks"] == "face_height" and list(row) == list(export.COLUMNS)
