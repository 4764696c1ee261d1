"""Reliability: each defect of issue 10, reproduced so that it stays fixed.

The service tests run the real HTTP server (``aiornot.server``'s uvicorn configuration, in a
thread of this process, on 127.0.0.1 only) or the in-process TestClient where the HTTP layer is
not the point. Every network wait has a bound; nothing asserts a duration. Timing and memory
figures belong to ``make bench`` (benchmarks/soak.py), not here.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from aiornot import cli, jsonl, server
from aiornot.imageio import ImageDecodeError, read_bytes
from aiornot.service import MB, BodyPace, PixelBudget, Settings, create_app
from conftest import deep_tree, encode, free_loopback_port, photo_like, png_declaring, remove_deep_tree

ATTACKER, VISITOR = "10.0.0.66", "10.0.0.7"  # addresses carried in X-Forwarded-For, never connected to
SOCKET_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(photo_like(3, (96, 96)), "JPEG", quality=90)


# ------------------------------------------------------------------------- a live server
@contextmanager
def serving(model_dir: Path, **overrides) -> Iterator[tuple[int, object]]:
    """The real uvicorn server with aiornot.server's configuration on 127.0.0.1; yields (port, app)."""
    import uvicorn

    settings = Settings(**{"rate_per_minute": 0.0, **overrides})
    app = create_app(model_dir, settings=settings)
    port = free_loopback_port()
    config = server.uvicorn_config(app, host="127.0.0.1", port=port, settings=settings, log_level="warning", log_config=None)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not instance.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    try:
        yield port, app
    finally:
        instance.should_exit = True
        thread.join(timeout=20)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the socket timeout)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    return b"".join(chunks)


def status_and_json(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {}


def upload_head(length: int, client: str | None = None, boundary: str = "B") -> bytes:
    """The request line, headers and first part header of a /v1/detect upload of ``length`` bytes."""
    forwarded = f"X-Forwarded-For: {client}\r\n" if client else ""
    return (f"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\n{forwarded}Content-Length: {length}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n\r\n').encode()


def http(port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=SOCKET_TIMEOUT_S, trust_env=False)


# ---------------------------------------------------------- 1. slow and stalled clients
def test_stalled_uploads_from_one_client_do_not_starve_the_others(tiny_model_dir, jpeg):
    limits = dict(max_upload_bytes=1 * MB, max_batch_bytes=2 * MB, max_client_buffer_bytes=2 * MB,
                  max_buffer_bytes=8 * MB, trusted_proxies="127.0.0.1")
    with serving(tiny_model_dir, **limits) as (port, app):
        stalled = []
        for _ in range(10):  # 10 × 1 MB held open would fill the whole 8 MB budget
            sock = connect(port)
            sock.sendall(upload_head(1 * MB + 1000, ATTACKER) + b"\0" * (1 * MB - 1000))
            stalled.append(sock)
        buffers = app.state.buffers
        _settle(lambda: buffers.used)
        with http(port) as client:
            response = client.post("/v1/detect", files={"image": ("v.jpg", jpeg)}, headers={"X-Forwarded-For": VISITOR})
        assert response.status_code == 200, response.text  # served while the attacker's sockets are still open
        assert buffers.by_client.get(ATTACKER, 0) <= 2 * MB  # one client's share, not the whole budget
        refused = []
        for sock in stalled:
            sock.settimeout(0.2)
            try:
                refused.append(status_and_json(sock.recv(65536))[0])
            except socket.timeout:
                pass
            sock.close()
        assert 503 in refused  # the attacker's own excess uploads are the ones refused


def _settle(value, polls: int = 4, every_s: float = 0.1, bound_s: float = 20.0) -> None:
    """Wait until ``value()`` stops changing (the server has read what was sent); bounded."""
    deadline, last, same = time.monotonic() + bound_s, None, 0
    while time.monotonic() < deadline and same < polls:
        current = value()
        same = same + 1 if current == last and current else 0
        last = current
        time.sleep(every_s)


def test_a_stalled_body_gets_408_and_frees_its_memory(tiny_model_dir):
    with serving(tiny_model_dir, body_idle_timeout_s=0.3) as (port, app):
        with connect(port) as sock:
            sock.sendall(upload_head(100_000) + b"\0" * 1000)  # …and then nothing
            status, body = status_and_json(read_all(sock))
        assert status == 408 and body["error"]["code"] == "upload_too_slow"
        assert app.state.buffers.used == 0


def test_a_trickled_body_gets_408_for_its_rate(tiny_model_dir):
    with serving(tiny_model_dir, min_upload_bytes_per_s=1 * MB, body_grace_s=0.2, body_idle_timeout_s=5.0) as (port, _):
        with connect(port) as sock:
            sock.sendall(upload_head(100_000))
            sock.settimeout(0.05)
            response = b""
            for _ in range(400):  # one byte at a time until the server gives up (bounded)
                try:
                    sock.send(b"\0")
                    response = sock.recv(65536)
                    if response:
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            sock.settimeout(SOCKET_TIMEOUT_S)
            status, body = status_and_json(response + read_all(sock))
        assert status == 408 and "KB/s" in body["error"]["message"]


def test_body_pace_arithmetic():
    pace = BodyPace(deadline_s=60, idle_s=10, min_bytes_per_s=1000, grace_s=5)
    assert pace.wait_allowed(0, 0) == (5, "below 0.976562 KB/s")  # the grace period comes first
    assert pace.wait_allowed(4, 50_000)[0] == 10  # plenty sent: only the pause limit applies
    wait, why = pace.wait_allowed(58, 10**9)
    assert wait == 2 and "60 s" in why


def test_the_client_share_defaults_to_a_quarter_of_the_buffer():
    assert Settings().max_client_buffer_bytes == 64 * MB  # of 256 MB
    assert Settings(max_batch_bytes=100 * MB).max_client_buffer_bytes == 100 * MB  # never less than one request
    with pytest.raises(ValueError, match="AIORNOT_MAX_CLIENT_BUFFER_MB"):
        Settings.from_env({"AIORNOT_MAX_CLIENT_BUFFER_MB": "1"})


def test_half_sent_headers_and_silent_connections_are_closed(tiny_model_dir):
    with serving(tiny_model_dir, header_timeout_s=0.3) as (port, _):
        partial = [connect(port) for _ in range(20)]
        for sock in partial:
            sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        silent = connect(port)
        answers = [status_and_json(read_all(sock)) for sock in partial]
        assert all(status == 408 and body["error"]["code"] == "header_timeout" for status, body in answers), answers[:3]
        assert read_all(silent) == b""  # closed without a word: it never asked anything
        for sock in [*partial, silent]:
            sock.close()
        with http(port) as client:
            assert client.get("/healthz").status_code == 200


def test_protocol_errors_get_the_json_error_shape_and_no_log_line(tiny_model_dir, caplog):
    with serving(tiny_model_dir) as (port, _):
        caplog.set_level("INFO")
        for _ in range(5):
            with connect(port) as sock:
                sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
                status, body = status_and_json(read_all(sock))
            assert status == 400 and body["error"]["code"] == "bad_request" and body["error"]["message_ko"]
    assert not [r for r in caplog.records if r.levelno >= 30], caplog.text


def test_an_http10_request_that_half_closes_still_gets_an_answer(tiny_model_dir):
    with serving(tiny_model_dir) as (port, _):
        for request in (b"GET /healthz HTTP/1.0\r\n\r\n",
                        b"POST /v1/detect HTTP/1.0\r\nContent-Type: multipart/form-data; boundary=B\r\n\r\n"):
            with connect(port) as sock:
                sock.sendall(request)
                sock.shutdown(socket.SHUT_WR)
                status, body = status_and_json(read_all(sock))
            assert status in (200, 400), (request, status)
            assert "status" in body or body["error"]["code"] == "bad_multipart"


def test_multipart_parts_are_capped(tiny_model_dir, jpeg):
    client = TestClient(create_app(tiny_model_dir, settings=Settings(rate_per_minute=0, max_parts=64)))
    tiny_parts = b"".join(b'--B\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n' for _ in range(5000)) + b"--B--\r\n"
    with client:
        response = client.post("/v1/detect", content=tiny_parts, headers={"content-type": "multipart/form-data; boundary=B"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_parts"


# --------------------------------------------------------------- 2. and 3. the rate limit
def test_key_guessing_ends_in_429(tiny_model_dir):
    settings = Settings(api_key="the-right-key", rate_per_minute=1, rate_burst=5)
    with TestClient(create_app(tiny_model_dir, settings=settings)) as client:
        codes = [client.post("/v1/detect", headers={"X-API-Key": f"guess-{n}"}).status_code for n in range(30)]
        models = client.get("/v1/models", headers={"X-API-Key": "another-guess"}).status_code
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429} and models == 429


def test_forwarded_for_rotation_does_not_bypass_the_limit(tiny_model_dir):
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 by default; `aiornot serve` trusts nobody unless told."""
    with serving(tiny_model_dir, rate_per_minute=1, rate_burst=5) as (port, _), http(port) as client:
        codes = [client.post("/v1/detect", content=b"x", headers={"X-Forwarded-For": f"10.1.{n // 250}.{n % 250}"}).status_code
                 for n in range(40)]
    assert codes.count(429) >= 35, codes  # 5 tokens for the one real client, whatever the header says


def test_trusted_proxy_forwarded_for_names_the_client(tiny_model_dir):
    with serving(tiny_model_dir, rate_per_minute=1, rate_burst=2, trusted_proxies="127.0.0.1") as (port, _), http(port) as client:
        codes = [client.post("/v1/detect", content=b"x", headers={"X-Forwarded-For": f"10.2.0.{n}"}).status_code for n in range(6)]
    assert 429 not in codes  # each forwarded client has its own bucket behind a named proxy


def test_a_batch_larger_than_the_burst_can_pass(tiny_model_dir, jpeg):
    settings = Settings(rate_per_minute=1, rate_burst=5)
    with TestClient(create_app(tiny_model_dir, settings=settings)) as client:
        files = [("images", (f"{n}.jpg", jpeg)) for n in range(6)]
        first = client.post("/v1/detect/batch", files=files)
        second = client.post("/v1/detect/batch", files=files)
    assert first.status_code == 200 and first.json()["scored"] == 6
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1


# ----------------------------------------------------------------------- 4. disconnects
def test_client_disconnects_mid_upload_leave_no_traceback(tiny_model_dir, jpeg, caplog):
    caplog.set_level("DEBUG")
    with serving(tiny_model_dir) as (port, app):
        for _ in range(20):
            with connect(port) as sock:
                sock.sendall(upload_head(500_000) + b"\0" * 20_000)
        _settle(lambda: app.state.buffers.used == 0 or None)
        with http(port) as client:
            assert client.post("/v1/detect", files={"image": ("v.jpg", jpeg)}).status_code == 200
    loud = [r for r in caplog.records if r.levelno >= 30 or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud][:3]
    assert "Traceback" not in caplog.text and app.state.buffers.used == 0


# --------------------------------------------------------- 7. decoded pixels are budgeted
def test_a_batch_of_64_megapixel_images_is_refused_before_decoding(tiny_model_dir):
    with TestClient(create_app(tiny_model_dir, settings=Settings(rate_per_minute=0))) as client:
        files = [("images", (f"{n}.png", png_declaring(8000, 8000))) for n in range(5)]  # 320 MP declared, ~100 bytes each
        response = client.post("/v1/detect/batch", files=files)
    assert response.status_code == 413 and response.json()["error"]["code"] == "batch_too_many_pixels"


def test_the_pixel_budget_bounds_what_is_in_flight():
    budget = PixelBudget(128_000_000)
    held = []

    async def one(pixels: int) -> None:
        granted = await budget.acquire(pixels)
        held.append(budget.used)
        await anyio.sleep(0.01)
        await budget.release(granted)

    async def many() -> None:
        async with anyio.create_task_group() as tasks:
            for pixels in [64_000_000] * 6 + [500_000_000]:  # the last is larger than the whole budget: let through alone
                tasks.start_soon(one, pixels)

    anyio.run(many)
    assert len(held) == 7 and budget.peak <= 128_000_000 and budget.used == 0


def test_scan_cuts_batches_by_decoded_pixels(tiny_model_dir, tmp_path, monkeypatch):
    from aiornot import predict
    from aiornot.detector import Detector

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


# -------------------------------------------------------------- 5. names and special files
def scan(*args: str) -> int:
    return cli.main(["scan", *args, "--quiet"])


def test_special_files_are_refused_without_being_read(tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    unix = tmp_path / "socket.jpg"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(unix))
    outcome: dict = {}

    def read_them() -> None:  # in a thread: if a FIFO were opened for reading this would hang, not the suite
        for path in (fifo, "/dev/zero", unix):
            try:
                read_bytes(path)
            except ImageDecodeError as error:
                outcome[str(path)] = error.code

    reader = threading.Thread(target=read_them, daemon=True)
    reader.start()
    reader.join(timeout=30)
    listener.close()
    assert not reader.is_alive(), "reading a special file blocked"
    assert outcome == {str(fifo): "not_a_file", "/dev/zero": "not_a_file", str(unix): "not_a_file"}


def test_scan_of_a_fifo_and_dev_zero_gives_error_lines_and_goes_on(tiny_model_dir, tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.jpg")
    photo_like(1).save(tmp_path / "ok.jpg")
    output = tmp_path / "out.jsonl"
    assert scan(str(tmp_path / "fifo.jpg"), "/dev/zero", str(tmp_path / "ok.jpg"), "-o", str(output), "--model", str(tiny_model_dir)) == 0
    lines = {Path(line["path"]).name: line for line in map(json.loads, output.read_text().splitlines())}
    assert lines["fifo.jpg"]["error_code"] == lines["zero"]["error_code"] == "not_a_file"
    assert "FIFO" in lines["fifo.jpg"]["error"] and "score" in lines["ok.jpg"]


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


# --------------------------------------------------------------------------- 6. resume
def test_a_torn_last_line_is_rewritten_and_the_file_reads_cleanly(tiny_model_dir, tmp_path):
    import pandas as pd

    for n in range(3):
        photo_like(n).save(tmp_path / f"{n}.jpg")
    output = tmp_path / "out.jsonl"
    arguments = [*(str(tmp_path / f"{n}.jpg") for n in range(3)), "-o", str(output), "--model", str(tiny_model_dir)]
    assert scan(*arguments) == 0
    whole = output.read_bytes()
    output.write_bytes(whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 20])  # power loss in the middle of line 3
    assert scan(*arguments) == 0
    frame = pd.read_json(output, lines=True)  # raised ValueError on the torn line before
    assert sorted(frame["path"]) == sorted(str(tmp_path / f"{n}.jpg") for n in range(3))  # each once


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


# ------------------------------------------------------------------- 13. rough edges
def test_ctrl_c_in_scan_is_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from aiornot import detector

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(detector.Detector, "predict_many", interrupted)
    photo_like(0).save(tmp_path / "a.jpg")
    assert scan(str(tmp_path / "a.jpg"), "-o", str(tmp_path / "o.jsonl"), "--model", str(tiny_model_dir)) == cli.EXIT_INTERRUPTED
    error = capsys.readouterr().err
    assert error.strip() == "interrupted; run the same command again to resume"


def test_healthz_head_docs_offline_and_no_absolute_paths(tiny_model_dir, tmp_path):
    with TestClient(create_app(tiny_model_dir, settings=Settings())) as client:
        head = client.head("/healthz")
        assert head.status_code == 200 and head.content == b""
        docs = client.get("/docs")
        assert docs.status_code == 200 and "cdn." not in docs.text and "https://" not in docs.text
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    missing = tmp_path / "secret-folder" / "model"
    with TestClient(create_app(missing, settings=Settings())) as client:
        health = client.get("/healthz")
        detect = client.post("/v1/detect")
    assert health.status_code == 503 and str(tmp_path) not in health.text and str(tmp_path) not in detect.text


def test_every_setting_is_documented_in_the_readme():
    from aiornot.service.settings import ENV_VARIABLES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [variable for variable, _ in ENV_VARIABLES.values() if variable not in readme]
    assert missing == [], missing


def test_ray_rows_carry_a_non_utf8_name_unchanged():
    """Arrow strings must be UTF-8: the Ray engine failed before scoring anything on such a name."""
    import pyarrow as pa

    from aiornot import batch
    from aiornot.detector import Result

    name = os.fsdecode(b"/photos/caf\xe9.jpg")  # lone surrogates, as os.listdir gives them
    failure = Result(path=name, error_code="corrupt", error=f"cannot read {name}")
    table = pa.Table.from_pylist([batch.result_to_row(failure)], schema=batch.row_schema())
    record = batch.row_to_record(table.to_pylist()[0])
    assert os.fsencode(record["path"]) == b"/photos/caf\xe9.jpg" and "caf" in record["error"]


# ------------------------------------------------------------------- issue 18
def _big_header_request(size: int) -> bytes:
    return (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * size + b"\r\nConnection: close\r\n\r\n")


def test_the_header_limit_holds_however_the_bytes_arrive(tiny_model_dir):
    request = _big_header_request(60_000)
    with serving(tiny_model_dir) as (port, _):
        with connect(port) as sock:  # one packet: h11's own limit only bounds *incomplete* heads (this got 200)
            sock.sendall(request)
            whole = status_and_json(read_all(sock))
        with connect(port) as sock:  # ten writes
            for start in range(0, len(request), len(request) // 10 + 1):
                try:
                    sock.sendall(request[start:start + len(request) // 10 + 1])
                except (BrokenPipeError, ConnectionResetError):
                    break  # refused and closed before the last pieces
                time.sleep(0.01)
            pieces = status_and_json(read_all(sock))
        with connect(port) as sock:  # under the limit, with a blank line split across two packets
            ordinary = _big_header_request(8_000)
            sock.sendall(ordinary[:-2])
            time.sleep(0.05)
            sock.sendall(ordinary[-2:])
            small = status_and_json(read_all(sock))
    assert whole[0] == 431 and whole[1]["error"]["code"] == "headers_too_large" and whole[1]["error"]["message_ko"]
    assert pieces[0] in (400, 431)
    assert small[0] == 200


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


def test_a_malformed_chunked_body_leaves_no_byte_of_it_in_the_log(tiny_model_dir, caplog):
    secret = b"SECRET-BODY-BYTES"
    with serving(tiny_model_dir) as (port, _):
        caplog.set_level("DEBUG")
        with connect(port) as sock:  # h11 refuses the chunk header and names it in its error
            sock.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: multipart/form-data; boundary=B\r\n\r\n" + secret + b"\r\n\r\n")
            status, _ = status_and_json(read_all(sock))
    assert status in (400, 0)
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert secret.decode() not in logged
