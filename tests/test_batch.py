"""Batch scoring: Ray Data gives the same lines as the local engine, errors included, and resumes.

The Ray tests start local Ray instances in fresh interpreters (see ``run_python``): the scan
through ``aiornot scan --engine ray``, which starts and stops Ray itself, and a loopback probe;
everything else here runs without Ray.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aiornot.apps import batch, cli
from aiornot.io import jsonl
from aiornot.detector import Result
from conftest import encode, photo_like, write_shard

# Fields that legitimately differ between two runs of the same scan.
VOLATILE = ("elapsed_ms",)


def read_lines(path: Path) -> dict[str, dict]:
    """path → record, asserting one line per path."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    by_path = {record["path"]: record for record in records}
    assert len(by_path) == len(records), "a path was written twice"
    return by_path


@pytest.fixture(scope="module")
def scan_folder(tmp_path_factory) -> Path:
    """Three readable images, a truncated JPEG and a text file named .jpg."""
    folder = tmp_path_factory.mktemp("scan")
    (folder / "a.jpg").write_bytes(encode(photo_like(1), "JPEG", quality=90))
    (folder / "b.png").write_bytes(encode(photo_like(2, (80, 100)), "PNG"))
    (folder / "c.jpg").write_bytes(encode(photo_like(3).convert("L"), "JPEG"))
    (folder / "corrupt.jpg").write_bytes(encode(photo_like(4), "JPEG")[:200])
    (folder / "notes.jpg").write_text("this is not an image, just text\n" * 4)
    return folder


# ------------------------------------------------------------------------------ without Ray
def test_rows_round_trip_every_result_field() -> None:
    signal = {"name": "c2pa", "status": "not_found", "strength": "none", "summary": "s", "summary_ko": "요약", "details": {}}
    check = {"name": "face_height", "value": 0.5, "passed": True, "reason": "r", "reason_ko": "사유", "threshold": "0.4–0.7"}
    result = Result(path="x.jpg", score=0.25, verdict="real", model="m", pixel_verdict="real", experts={"forensic": 0.25},
                    fusion="f", fusion_ko="결합", rule="r", rule_ko="규칙", width=10, height=20, format="JPEG", md5="abc",
                    notes=["n"], caveats=[{"code": "strong_jpeg", "text": "t", "text_ko": "주의"}], signals=[signal],
                    face={"x": 1, "y": 2, "w": 3, "h": 4, "confidence": 0.9, "eyes": [[2, 3]]},
                    face_score=0.5, checks=[check], thresholds={"ai": 0.6, "real": 0.4, "target_fpr": 0.05, "target_fnr": 0.05},
                    elapsed_ms=1.5)
    assert set(result.to_dict()) == {name for name, _ in batch.ROW_FIELDS} - {"error", "error_code"}  # every field is set
    row = batch.result_to_row(result)
    assert all(not isinstance(value, (list, dict)) for value in row.values())  # Arrow-friendly
    assert batch.row_to_record(row) == result.to_dict()
    assert list(batch.row_to_record(row)) == list(result.to_dict())  # same key order as local lines
    failure = Result(path="bad.jpg", error="corrupt", error_code="corrupt", model="m")
    assert batch.row_to_record(batch.result_to_row(failure)) == failure.to_dict()


def test_row_schema_covers_the_result_fields() -> None:
    schema = batch.row_schema()
    assert "path" in schema.names and "heatmap" not in schema.names
    assert str(schema.field("score").type) == "double" and str(schema.field("signals").type) == "string"


def test_empty_path_list_does_not_start_ray(tmp_path: Path) -> None:
    assert batch.scan_with_ray([], output=tmp_path / "out.jsonl") == jsonl.ScanCounts()
    assert not (tmp_path / "out.jsonl").exists()


def test_unreachable_address_is_a_clear_error_in_seconds() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(batch.BatchError, match="cannot reach a Ray cluster"):
        batch._check_reachable(f"ray://127.0.0.1:{port}")


def test_worker_turns_an_unexpected_failure_into_an_error_line(scan_folder: Path, tiny_model_dir: Path, monkeypatch) -> None:
    import pyarrow as pa

    worker = batch._ScoreBatch(str(tiny_model_dir), id_photo=False, batch_size=4, base_dir=str(scan_folder))
    real_predict_many = worker.detector.predict_many

    def predict_many(files, **options):  # a bug that only one image triggers
        if any(str(f).endswith("b.png") for f in files):
            raise RuntimeError("boom")
        return real_predict_many(files, **options)

    monkeypatch.setattr(worker.detector, "predict_many", predict_many)
    table = worker(pa.table({"path": ["a.jpg", "b.png", "notes.jpg"]}))  # relative: resolved against base_dir
    assert table.schema == batch.row_schema()
    records = {r["path"]: r for r in map(batch.row_to_record, table.to_pylist())}
    assert set(records) == {"a.jpg", "b.png", "notes.jpg"}  # labels kept as given (the resume key)
    assert "score" in records["a.jpg"] and records["notes.jpg"]["error_code"] == "not_an_image"
    assert records["b.png"]["error_code"] == "scoring_failed" and "RuntimeError: boom" in records["b.png"]["error"]


def test_score_frame_adds_result_columns(scan_folder: Path, tiny_model_dir: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"path": [str(scan_folder / "a.jpg"), str(scan_folder / "corrupt.jpg")], "label": [0, 1]})
    scored = batch.score_frame(frame, model_dir=tiny_model_dir, batch_size=2)
    assert list(scored.columns[:2]) == ["path", "label"] and len(scored) == 2
    assert 0 <= scored.loc[0, "score"] <= 1 and pd.isna(scored.loc[0, "error"])
    assert pd.isna(scored.loc[1, "score"]) and scored.loc[1, "error_code"] == "corrupt"


@pytest.fixture(scope="module")
def portrait_file(tmp_path_factory) -> Path:
    import shutil

    from matplotlib import cbook

    path = tmp_path_factory.mktemp("portrait") / "portrait.jpg"
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), path)
    return path


def test_the_worker_scores_the_face_crop_only_when_face_score_is_asked(portrait_file: Path, tiny_model_dir: Path) -> None:
    import pyarrow as pa

    rows = {}
    for face_score in (False, True):
        worker = batch._ScoreBatch(str(tiny_model_dir), id_photo=True, batch_size=4, base_dir=str(portrait_file.parent),
                                   face_score=face_score)
        [rows[face_score]] = map(batch.row_to_record, worker(pa.table({"path": ["portrait.jpg"]})).to_pylist())
    assert rows[False]["face"] and rows[False]["checks"] and "face_score" not in rows[False]
    assert 0 <= rows[True]["face_score"] <= 1 and rows[True]["face"] == rows[False]["face"]


def test_score_frame_has_a_face_score_column_only_when_asked(portrait_file: Path, tiny_model_dir: Path) -> None:
    import pandas as pd

    from aiornot.detector import Detector

    detector = Detector.load(tiny_model_dir)
    frame = pd.DataFrame({"path": [str(portrait_file)]})
    assert "face_score" not in batch.score_frame(frame, detector=detector, id_photo=True).columns
    scored = batch.score_frame(frame, detector=detector, id_photo=True, face_score=True)
    assert 0 <= scored.loc[0, "face_score"] <= 1


def test_face_score_without_id_photo_is_refused_before_ray_or_the_model(tmp_path: Path, monkeypatch) -> None:
    import pandas as pd

    from aiornot.detector import Detector

    monkeypatch.setattr(Detector, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    monkeypatch.setattr(batch, "_require_ray", lambda: pytest.fail("Ray was started"))
    for call in (lambda: batch.scan_with_ray(["a.jpg"], output=tmp_path / "out.jsonl", face_score=True),
                 lambda: batch.scan_parquet_with_ray(tmp_path / "missing", output=None, face_score=True),
                 lambda: batch.score_dataset(None, face_score=True),
                 lambda: batch.score_frame(pd.DataFrame({"path": ["a.jpg"]}), face_score=True)):
        with pytest.raises(ValueError, match="face_score=True needs id_photo=True"):
            call()
    assert not (tmp_path / "out.jsonl").exists()


# --------------------------------------------------------------------------------- the CLI
@pytest.mark.slow
def test_cli_reports_a_wrong_ray_address(scan_folder: Path, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    code = cli.main(["scan", str(scan_folder), "--engine", "ray", "--ray-address", "no-such-address",
                     "--model", str(tiny_model_dir), "-o", str(tmp_path / "out.jsonl"), "-q"])
    assert code == cli.EXIT_USAGE
    error = capsys.readouterr().err
    assert "cannot connect to Ray at 'no-such-address'" in error and "Traceback" not in error


# Ray is started in a fresh Python process, never inside pytest's: Ray forks its helpers and runs
# Python in the child before exec (its preexec_fn), which can deadlock when the forking process
# already runs many threads (TensorFlow, TFLite and server threads of earlier tests): seen here as a
# suite that hung. A fresh process is also what a user's `aiornot scan --engine ray` is.
RAY_TIMEOUT_S = 300

SCAN_THEN_CHECK_SHUTDOWN = """
import sys, ray
from aiornot.apps import cli
code = cli.main(sys.argv[1:])
assert not ray.is_initialized(), "the scan must shut down the Ray instance it started"
sys.exit(code)
"""

LOOPBACK_PROBE = """
import json, psutil, ray
from aiornot.apps import batch
with batch.ray_session(None, num_cpus=1):
    listening = []
    for process in psutil.Process().children(recursive=True):
        try:
            listening += [c.laddr.ip for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        except psutil.Error:  # a helper that ended meanwhile
            continue
    print(json.dumps({"node_ip": ray.util.get_node_ip_address(), "listening": listening}))
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; a hang fails the test (and kills Ray's helpers) instead of the suite."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, start_new_session=True)
    try:
        out, err = process.communicate(timeout=RAY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the Ray run did not finish in {RAY_TIMEOUT_S} s; its last output: {err[-2000:]}")
    if "could not start a local instance" in err:  # the machine, not the code: see batch._start_local
        pytest.skip(f"Ray could not start here: {err.strip().splitlines()[-1]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.slow
def test_ray_engine_matches_local_engine_and_resumes(scan_folder: Path, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    common = [str(scan_folder), "--model", str(tiny_model_dir), "-q"]
    assert cli.main(["scan", *common, "-o", str(local_out)]) == cli.EXIT_OK

    run = run_python(SCAN_THEN_CHECK_SHUTDOWN, "scan", *common, "-o", str(ray_out), "--engine", "ray", "--workers", "2", "--batch-size", "2")
    assert run.returncode == cli.EXIT_OK, run.stderr
    assert "core_worker.cc" not in run.stderr and "Traceback" not in run.stderr, run.stderr  # a clean run is quiet

    local, remote = read_lines(local_out), read_lines(ray_out)
    assert set(remote) == {str(p) for p in scan_folder.iterdir()}  # one line per file, paths as given
    for path, expected in local.items():
        got = remote[path]
        if "error" in expected:
            assert got["error_code"] == expected["error_code"] and "score" not in got
        else:
            assert got["score"] == pytest.approx(expected["score"], abs=1e-5)
        strip = lambda record: {k: v for k, v in record.items() if k not in VOLATILE}  # noqa: E731
        assert strip(got) == strip(expected)  # not only the score: every field, in the same order
    assert {p for p, r in remote.items() if "error" in r} == {str(scan_folder / "corrupt.jpg"), str(scan_folder / "notes.jpg")}

    before = ray_out.read_text()
    capsys.readouterr()
    assert cli.main(["scan", *common, "-o", str(ray_out), "--engine", "ray"]) == cli.EXIT_OK
    assert ray_out.read_text() == before  # everything was done: nothing added, Ray not even started
    assert "skipped 5 already done" in capsys.readouterr().err


@pytest.mark.slow
def test_a_private_local_ray_listens_on_loopback_only() -> None:
    run = run_python(LOOPBACK_PROBE)
    assert run.returncode == 0, run.stderr
    probe = json.loads(run.stdout.strip().splitlines()[-1])

    def loopback(ip: str) -> bool:  # '::ffff:127.0.0.1' too (Python 3.11 does not count it as loopback)
        address = ipaddress.ip_address(ip)
        return (getattr(address, "ipv4_mapped", None) or address).is_loopback

    assert probe["node_ip"] == "127.0.0.1"
    assert probe["listening"], "Ray's processes listen on no port at all?"
    assert all(loopback(ip) for ip in probe["listening"]), probe["listening"]


# ------------------------------------------------------------------ Parquet image bytes
def hf_parquet(folder: Path, *, with_id: bool = True) -> Path:
    """Four images in the Hugging Face layout (id, image struct, label), the third one truncated."""
    images = [encode(photo_like(i, (90, 70)), "JPEG", quality=90) for i in range(4)]
    images[2] = images[2][:200]
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"row{i}" for i in range(4)]
    shard = write_shard(folder / "train-00000-of-00001.parquet", ids, images, [0, 1, 0, 1])
    if not with_id:
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(shard).drop_columns(["id"]), shard)
    return folder


def test_parquet_worker_scores_bytes_keyed_by_id_and_reports_bad_rows(tmp_path: Path, tiny_model_dir: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(hf_parquet(tmp_path / "hf") / "train-00000-of-00001.parquet", columns=["id", "image", "label"])
    worker = batch._ScoreImages(str(tiny_model_dir), id_photo=False, batch_size=4, base_dir=str(tmp_path))
    out = worker(table)
    assert out.column_names == [name for name, _ in batch.ROW_FIELDS] + ["id", "label"]
    assert out.column("id").to_pylist() == ["row0", "row1", "row2", "row3"] and out.column("label").to_pylist() == [0, 1, 0, 1]
    records = [batch.row_to_record(row) for row in out.to_pylist()]
    assert [r["path"] for r in records] == ["row0", "row1", "row2", "row3"]
    assert records[2]["error_code"] == "corrupt" and "score" not in records[2]
    expected = list(worker.detector.predict_many(table.column("image").combine_chunks().field("bytes").to_pylist()))
    assert [r.get("score") for r in records] == [e.score for e in expected]


def test_parquet_without_an_id_column_is_a_clear_error_before_ray_starts(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    data = hf_parquet(tmp_path / "hf", with_id=False)
    code = cli.main(["scan", str(data), "--engine", "ray", "--model", str(tiny_model_dir), "-q"])
    assert code == cli.EXIT_USAGE
    error = capsys.readouterr().err
    assert "no 'id' column" in error and "Traceback" not in error


def test_resumed_rows_are_dropped_by_id() -> None:
    import pyarrow as pa

    kept = batch._without_ids(pa.table({"id": ["a", "b", "c"], "label": [0, 1, 0]}), ["b"])
    assert kept.column("id").to_pylist() == ["a", "c"]


@pytest.mark.slow
def test_ray_scores_parquet_image_bytes_and_resumes_by_id(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    from aiornot.detector import Detector

    data, output = hf_parquet(tmp_path / "hf"), tmp_path / "scores.jsonl"
    import pyarrow.parquet as pq

    images = pq.read_table(data / "train-00000-of-00001.parquet").column("image").combine_chunks().field("bytes").to_pylist()
    local = list(Detector.load(tiny_model_dir).predict_many(images, labels=[f"row{index}" for index in range(len(images))]))
    output.write_text(jsonl.json_line(local[0].to_dict()))  # row0 was scored before: a re-run must skip it

    common = ["scan", str(data), "--engine", "ray", "--model", str(tiny_model_dir), "-o", str(output), "-q"]
    run = run_python(SCAN_THEN_CHECK_SHUTDOWN, *common, "--workers", "1", "--batch-size", "2")
    assert run.returncode == cli.EXIT_OK, run.stderr
    assert "scored 2, failed 1, skipped 1 already done" in run.stderr and "Traceback" not in run.stderr, run.stderr

    remote = read_lines(output)
    assert set(remote) == {"row0", "row1", "row2", "row3"}  # one line per row, keyed by id, the bad one included
    strip = lambda record: {k: v for k, v in record.items() if k not in VOLATILE}  # noqa: E731
    for result in local:
        assert strip(remote[result.path]) == strip(result.to_dict())  # every field, in the same order
    assert remote["row2"]["error_code"] == "corrupt"

    before = output.read_text()
    capsys.readouterr()
    assert cli.main(common) == cli.EXIT_OK
    assert output.read_text() == before and "skipped 4 already done" in capsys.readouterr().err


def test_ray_rows_carry_a_non_utf8_name_unchanged():
    """Arrow strings must be UTF-8: the Ray engine failed before scoring anything on such a name."""
    import pyarrow as pa

    from aiornot.apps import batch
    from aiornot.detector import Result

    name = os.fsdecode(b"/photos/caf\xe9.jpg")  # lone surrogates, as os.listdir gives them
    failure = Result(path=name, error_code="corrupt", error=f"cannot read {name}")
    table = pa.Table.from_pylist([batch.result_to_row(failure)], schema=batch.row_schema())
    record = batch.row_to_record(table.to_pylist()[0])
    assert os.fsencode(record["path"]) == b"/photos/caf\xe9.jpg" and "caf" in record["error"]
