"""The real HTTP server (aiornot.apps.server): uvicorn with the service's connection limits, on 127.0.0.1 only.

Each test starts the server in a thread of this process, with aiornot.apps.server's uvicorn
configuration, and talks to it over sockets: slow and stalled clients, half-sent headers, protocol
errors, disconnects, forwarded addresses and header sizes — what the in-process TestClient of
test_service.py cannot reach. Every network wait has a bound; nothing asserts a duration. Timing and
memory figures belong to ``make bench`` (benchmarks/soak.py), not here.

Marked slow as a whole: each test starts and stops a real server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from aiornot.apps import server
from aiornot.apps.service import MB, Settings, create_app
from conftest import encode, free_loopback_port, photo_like

pytestmark = pytest.mark.slow

ATTACKER, VISITOR = "10.0.0.66", "10.0.0.7"  # addresses carried in X-Forwarded-For, never connected to
SOCKET_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(photo_like(3, (96, 96)), "JPEG", quality=90)


# ------------------------------------------------------------------------- a live server
@contextmanager
def serving(model_dir: Path, **overrides) -> Iterator[tuple[int, object]]:
    """The real uvicorn server with aiornot.apps.server's configuration on 127.0.0.1; yields (port, app)."""
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


# ---------------------------------------------------------------- slow and stalled clients
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


# ------------------------------------------------------------------ forwarded addresses
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


# -------------------------------------------------------------------- disconnects and logs
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


# ------------------------------------------------------------------------- header sizes
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
