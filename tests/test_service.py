"""The REST API and the page, through FastAPI's TestClient, with a tiny untrained model.

These tests check the contract (fields, status codes, error JSON, limits, privacy), not accuracy.
What needs a real socket (slow clients, forwarded addresses, header sizes) is in test_server.py; the
schema-driven requests are in test_api_schema.py.
"""

from __future__ import annotations

import base64
import io
import logging
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.requests import Request

from aiornot.apps.service import MB, ApiError, BodyPace, BufferBudget, PixelBudget, RateLimiter, Settings, create_app, read_form
from conftest import bad_and_odd_files, encode, marker_flood_jpeg, photo_like, png_declaring, text_chunk_flood_png

DETECT_FIELDS = {"verdict", "score", "pixel_verdict", "rule", "rule_ko", "model", "thresholds", "signals", "face", "face_score",
                 "checks", "md5", "width", "height", "format", "elapsed_ms", "notes", "external_id", "heatmap"}
OPEN = Settings(rate_per_minute=0)  # most tests send many requests from one client


@contextmanager
def client_for(model_dir, **overrides):
    """A TestClient whose app has run its startup (model loaded) and will run its shutdown."""
    settings = Settings(**{"rate_per_minute": 0, **overrides})
    with TestClient(create_app(str(model_dir), settings=settings)) as client:
        yield client


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    with client_for(tiny_model_dir) as client:
        yield client


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(photo_like(0), "JPEG", quality=90)


@pytest.fixture(scope="module")
def portrait() -> bytes:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()


def detect(client, data: bytes, name: str = "photo.jpg", **fields):
    return client.post("/v1/detect", files={"image": (name, data, "image/jpeg")}, data={k: str(v) for k, v in fields.items()})


def assert_error(response, status: int, code: str) -> dict:
    """The response is the documented error JSON with this status and code, in both languages."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and error["message_ko"] and error["message"] != error["message_ko"]
    assert "Traceback" not in response.text
    return error


# ------------------------------------------------------------------------------ detect
def test_detect_returns_every_documented_field(client, jpeg):
    response = detect(client, jpeg, external_id="case-2024-001")
    assert response.status_code == 200, response.text
    body = response.json()
    assert DETECT_FIELDS <= set(body)
    assert body["verdict"] in ("ai", "real", "inconclusive") and body["pixel_verdict"] in ("ai", "real", "inconclusive")
    assert 0.0 <= body["score"] <= 1.0 and body["model"] == "tiny-test"
    assert body["thresholds"]["ai"] == 0.6 and body["thresholds"]["real"] == 0.4
    assert (body["width"], body["height"], body["format"]) == (120, 90, "JPEG")
    assert len(body["md5"]) == 32 and body["elapsed_ms"] > 0
    assert body["external_id"] == "case-2024-001"
    assert body["rule"] and body["rule_ko"] and body["caution_ko"]
    assert {signal["name"] for signal in body["signals"]} >= {"c2pa", "camera_exif"}
    assert body["face"] is None and body["checks"] is None and body["heatmap"] is None
    assert response.headers["cache-control"] == "no-store"


def test_heatmap_is_a_png_data_url_of_the_overlay(client, jpeg):
    body = detect(client, jpeg, heatmap="true").json()
    prefix = "data:image/png;base64,"
    assert body["heatmap"].startswith(prefix)
    overlay = Image.open(io.BytesIO(base64.b64decode(body["heatmap"][len(prefix):])))
    assert overlay.format == "PNG" and overlay.size == (120, 90)


def test_one_request_decodes_the_photo_once(client, portrait, monkeypatch):
    """The detector, the provenance checks (watermark) and the overlay share one decode."""
    import aiornot.io.decode
    import aiornot.predict
    import aiornot.evidence.provenance.watermark

    decodes = []
    original = aiornot.io.decode.open_image

    def counting_open_image(*args, **kwargs):
        decodes.append(1)
        return original(*args, **kwargs)

    for module in (aiornot.io.decode, aiornot.predict, aiornot.evidence.provenance.watermark):  # every module that imports the decoder
        monkeypatch.setattr(module, "open_image", counting_open_image)
    body = detect(client, portrait, id_photo="true", heatmap="true").json()
    assert body["heatmap"] and body["checks"] and {s["name"] for s in body["signals"]} >= {"sd_watermark"}
    assert len(decodes) == 1


def test_the_header_is_parsed_once_per_photo_and_never_on_the_event_loop(client, jpeg, monkeypatch):
    """Pillow's header parse (Image.open) once per photo, in a worker thread: before, the pixel check
    parsed it on the event loop, and the decoder and provenance parsed it again."""
    calls: list[bool] = []
    original = Image.open

    def recording(*args, **kwargs):
        calls.append(_on_event_loop())
        return original(*args, **kwargs)

    monkeypatch.setattr(Image, "open", recording)
    assert detect(client, jpeg).status_code == 200
    assert calls == [False]
    calls.clear()
    batch = client.post("/v1/detect/batch", files=[("images", ("a.jpg", jpeg)), ("images", ("b.jpg", jpeg))])
    assert batch.json()["scored"] == 2 and calls == [False, False]


def _on_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_id_photo_mode_on_a_real_portrait_gives_face_and_checks(client, portrait):
    body = detect(client, portrait, name="hopper.jpg", id_photo="true").json()
    face = body["face"]
    assert face and face["w"] > 100 and 0 <= face["x"] < body["width"] and 0 <= face["y"] < body["height"]
    assert body["face_score"] is None  # opt-in: face_score=true
    names = {check["name"] for check in body["checks"]}
    assert {"single_face", "face_centred"} <= names
    assert all(check["reason_ko"] and isinstance(check["passed"], bool) for check in body["checks"])
    scored = detect(client, portrait, name="hopper.jpg", id_photo="true", face_score="true").json()
    assert 0.0 <= scored["face_score"] <= 1.0 and scored["face"] == face and scored["score"] == body["score"]


@pytest.mark.parametrize(("fields", "expected"), [({}, (False, False)), ({"id_photo": "true"}, (True, False)),
                                                  ({"id_photo": "true", "face_score": "true"}, (True, True)),
                                                  ({"id_photo": "on", "face_score": "false"}, (True, False))])
def test_the_form_flags_reach_the_predict_options(client, portrait, predict_options, fields, expected):
    assert detect(client, portrait, **fields).status_code == 200
    batch = client.post("/v1/detect/batch", files=[("images", ("p.jpg", portrait))], data=fields)
    assert batch.json()["scored"] == 1
    assert [(o.id_photo, o.face_score) for o in predict_options] == [expected, expected]
    assert (batch.json()["items"][0]["result"]["face_score"] is not None) == expected[1]


@pytest.mark.parametrize("fields", [{"face_score": "true"}, {"face_score": "1", "id_photo": "false"}])
def test_face_score_without_id_photo_is_a_422_before_any_scoring(client, portrait, predict_options, fields):
    error = assert_error(detect(client, portrait, **fields), 422, "invalid_field")
    assert "face_score" in error["message"] and "id_photo" in error["message"] and "face_score" in error["message_ko"]
    batch = client.post("/v1/detect/batch", files=[("images", ("p.jpg", portrait))], data=fields)
    assert_error(batch, 422, "invalid_field")
    assert predict_options == []


def test_the_verdict_does_not_depend_on_the_file_name(client, jpeg):
    assert detect(client, jpeg, name="a.jpg").json()["score"] == detect(client, jpeg, name="ai_generated.png").json()["score"]


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("name", "status", "code"), [
    ("empty.jpg", 400, "empty"),
    ("text.jpg", 415, "not_an_image"),
    ("corrupt.jpg", 422, "corrupt"),
    ("bomb.png", 413, "too_many_pixels"),
])
def test_each_bad_file_gets_its_own_4xx(client, name, status, code):
    data, _ = bad_and_odd_files()[name]
    assert_error(detect(client, data, name=name), status, code)


def test_a_bomb_just_over_the_decoder_limit_is_refused_before_decoding(client):
    assert_error(detect(client, png_declaring(9000, 9000)), 413, "too_many_pixels")  # 81 MP > 64 MP


def test_a_marker_flood_upload_is_413_in_both_languages(client):
    error = assert_error(detect(client, marker_flood_jpeg(20_000)), 413, "too_much_metadata")
    assert "markers" in error["message"] and "메타데이터" in error["message_ko"]
    batch = client.post("/v1/detect/batch", files=[("images", ("a.png", text_chunk_flood_png(5_000))),
                                                   ("images", ("b.jpg", encode(photo_like(1), "JPEG")))]).json()
    assert [item["status"] for item in batch["items"]] == [413, 200]
    assert batch["items"][0]["error"]["code"] == "too_much_metadata"


def test_unsupported_and_non_image_formats_are_415(client):
    icon = encode(photo_like(0, (64, 64)), "ICO")
    assert_error(detect(client, icon, name="x.ico"), 415, "unsupported_format")
    error = assert_error(detect(client, b"%PDF-1.7\n%binary\n" * 8, name="x.pdf"), 415, "not_an_image")
    assert "PDF" in error["message"]


def test_a_tiny_image_is_422(client):
    assert_error(detect(client, encode(photo_like(0, (8, 8)), "PNG")), 422, "too_small")


def test_missing_and_invalid_fields_are_422(client, jpeg):
    assert_error(client.post("/v1/detect", files={"photo": ("x.jpg", jpeg)}), 422, "missing_field")
    assert_error(detect(client, jpeg, id_photo="maybe"), 422, "invalid_field")
    assert_error(detect(client, jpeg, external_id="x" * 201), 422, "invalid_field")


def test_a_misspelt_option_is_refused_with_the_near_field_not_ignored(client, jpeg):
    error = assert_error(detect(client, jpeg, idphoto="true"), 422, "unknown_field")
    assert "did you mean 'id_photo'?" in error["message"] and "'id_photo' 항목을 보내려던" in error["message_ko"]
    error = assert_error(detect(client, jpeg, colour="red"), 422, "unknown_field")
    assert "send only image, id_photo, face_score, heatmap, external_id" in error["message"]
    batch = client.post("/v1/detect/batch", files=[("images", ("a.jpg", jpeg, "image/jpeg"))], data={"heatmap": "true"})
    assert "heatmap" in assert_error(batch, 422, "unknown_field")["message"]
    shown = assert_error(detect(client, jpeg, **{"x\u202e" + "y" * 200: "1"}), 422, "unknown_field")["message"]
    assert "\u202e" not in shown and "y" * 64 not in shown  # the client's field name: shown safely and cut short
    assert detect(client, jpeg, id_photo="true", face_score="true", heatmap="false", external_id="A-1").status_code == 200


def test_an_iphone_heic_photo_is_415_with_the_setting_to_change_in_both_languages(client):
    heic = b"\0\0\0\x24ftypheic\0\0\0\0mif1heic" + bytes(300)
    error = assert_error(detect(client, heic, name="IMG_0001.HEIC"), 415, "unsupported_format")
    assert "Most Compatible" in error["message"] and "높은 호환성" in error["message_ko"]


def test_a_request_that_is_not_multipart_is_415(client, jpeg):
    assert_error(client.post("/v1/detect", content=jpeg, headers={"content-type": "image/jpeg"}), 415, "not_multipart")
    assert_error(client.post("/v1/detect", json={"image": "abc"}), 415, "not_multipart")


def test_broken_multipart_is_400(client, jpeg):
    head = b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
    cut_off = client.post("/v1/detect", content=head + jpeg[:500], headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert_error(cut_off, 400, "bad_multipart")
    nameless = client.post("/v1/detect", content=b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--XyZ--\r\n",
                           headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert_error(nameless, 400, "bad_multipart")


def test_a_malformed_body_writes_no_third_party_warning_and_quotes_no_byte(client, caplog):
    with caplog.at_level(logging.DEBUG):
        response = client.post("/v1/detect", content=b"--Qoops\r\n" + b"Z" * 100,
                               headers={"content-type": "multipart/form-data; boundary=XyZ"})
    error = assert_error(response, 400, "bad_multipart")
    assert "'Q'" not in error["message"] and "Q" not in error["message"].replace("Quot", "")
    assert [record for record in caplog.records if record.name.startswith("python_multipart")] == []
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


def test_unknown_paths_and_methods_get_the_error_json(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.get("/v1/detect"), 405, "method_not_allowed")


# ------------------------------------------------------------------------------ size limits and memory budgets
def test_a_body_declared_too_large_is_refused_with_413(tiny_model_dir):
    with client_for(tiny_model_dir, max_upload_bytes=100_000) as small:
        big = encode(photo_like(1, (800, 600)), "PNG")
        assert len(big) > 170_000
        assert_error(detect(small, big), 413, "request_too_large")


def test_a_file_over_the_limit_inside_the_form_overhead_is_413(tiny_model_dir):
    with client_for(tiny_model_dir, max_upload_bytes=100_000) as small:
        assert_error(detect(small, b"\xff\xd8" + b"\0" * 120_000), 413, "file_too_large")


def test_a_chunked_upload_over_the_limit_is_413(tiny_model_dir):
    def body():  # a generator: sent without Content-Length
        yield b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536

    with client_for(tiny_model_dir, max_upload_bytes=100_000) as small:
        response = small.post("/v1/detect", content=body(), headers={"content-type": "multipart/form-data; boundary=B"})
    assert_error(response, 413, "request_too_large")


def test_the_body_is_read_only_up_to_the_limit():
    """The reader stops pulling at the first chunk over the limit (TestClient buffers bodies, so
    this drives the ASGI receive channel directly and counts what was pulled)."""
    pulled: list[int] = []

    async def receive() -> dict:
        pulled.append(1)
        if len(pulled) == 1:
            return {"type": "http.request", "body": b'--B\r\nContent-Disposition: form-data; name="image"\r\n\r\n', "more_body": True}
        return {"type": "http.request", "body": b"\0" * 65536, "more_body": len(pulled) < 200}  # 12.8 MB in all

    scope = {"type": "http", "method": "POST", "path": "/v1/detect", "query_string": b"",
             "headers": [(b"content-type", b"multipart/form-data; boundary=B")]}

    async def read() -> None:
        with BufferBudget(10**9).hold() as holding:
            await read_form(Request(scope, receive), file_field="image", max_body=100_000, max_file_bytes=90_000,
                            max_files=1, holding=holding)

    with pytest.raises(ApiError) as caught:
        anyio.run(read)
    assert caught.value.status == 413 and len(pulled) <= 3


def test_multipart_parts_are_capped(tiny_model_dir, jpeg):
    client = TestClient(create_app(tiny_model_dir, settings=Settings(rate_per_minute=0, max_parts=64)))
    tiny_parts = b"".join(b'--B\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n' for _ in range(5000)) + b"--B--\r\n"
    with client:
        response = client.post("/v1/detect", content=tiny_parts, headers={"content-type": "multipart/form-data; boundary=B"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_parts"


def test_the_memory_budget_refuses_uploads_beyond_it():
    budget = BufferBudget(1000)
    with budget.hold() as first:
        first.charge(800)
        with budget.hold() as second, pytest.raises(ApiError) as caught:
            second.charge(300)
        assert caught.value.status == 503 and budget.used == 800
    assert budget.used == 0


def test_the_client_share_defaults_to_a_quarter_of_the_buffer():
    assert Settings().max_client_buffer_bytes == 64 * MB  # of 256 MB
    assert Settings(max_batch_bytes=100 * MB).max_client_buffer_bytes == 100 * MB  # never less than one request
    with pytest.raises(ValueError, match="AIORNOT_MAX_CLIENT_BUFFER_MB"):
        Settings.from_env({"AIORNOT_MAX_CLIENT_BUFFER_MB": "1"})


def test_body_pace_arithmetic():
    pace = BodyPace(deadline_s=60, idle_s=10, min_bytes_per_s=1000, grace_s=5)
    assert pace.wait_allowed(0, 0) == (5, "below 0.976562 KB/s")  # the grace period comes first
    assert pace.wait_allowed(4, 50_000)[0] == 10  # plenty sent: only the pause limit applies
    wait, why = pace.wait_allowed(58, 10**9)
    assert wait == 2 and "60 s" in why


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


# ------------------------------------------------------------------------------ batch
def test_batch_scores_good_files_and_reports_bad_ones(client, jpeg):
    files = [("images", ("a.jpg", jpeg)), ("images", ("notes.txt", b"just some text, not a photo")),
             ("images", ("b.png", encode(photo_like(2), "PNG")))]
    response = client.post("/v1/detect/batch", files=files, data={"external_id": "batch-7"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["scored"], body["failed"], body["external_id"]) == (3, 2, 1, "batch-7")
    good, bad, other = body["items"]
    assert good["status"] == 200 and DETECT_FIELDS - {"external_id"} <= set(good["result"]) and good["error"] is None
    assert bad["status"] == 415 and bad["error"]["code"] == "not_an_image" and bad["result"] is None
    assert bad["filename"] == "notes.txt" and other["index"] == 2 and other["result"]["format"] == "PNG"


def test_batch_reports_an_oversized_file_without_failing_the_rest(tiny_model_dir, jpeg):
    with client_for(tiny_model_dir, max_upload_bytes=50_000) as small:
        files = [("images", ("big.bin", b"\0" * 80_000)), ("images", ("a.jpg", jpeg))]
        items = small.post("/v1/detect/batch", files=files).json()["items"]
    assert items[0]["status"] == 413 and items[0]["error"]["code"] == "file_too_large"
    assert items[1]["status"] == 200


def test_batch_count_is_capped(tiny_model_dir, jpeg):
    with client_for(tiny_model_dir, max_batch_files=2) as capped:
        response = capped.post("/v1/detect/batch", files=[("images", (f"{i}.jpg", jpeg)) for i in range(3)])
    assert_error(response, 413, "too_many_files")


def test_a_crash_on_one_batch_file_does_not_cost_the_others(tiny_model_dir, jpeg, monkeypatch):
    import aiornot.evidence.provenance

    odd = encode(photo_like(9), "JPEG", quality=80)
    original = aiornot.evidence.provenance.inspect

    def inspect(data, **kwargs):
        if data == odd:
            raise RuntimeError("a bug in a module, met on this one file")
        return original(data, **kwargs)

    monkeypatch.setattr(aiornot.evidence.provenance, "inspect", inspect)
    with client_for(tiny_model_dir) as crashing:
        files = [("images", ("a.jpg", jpeg)), ("images", ("b.jpg", odd)), ("images", ("c.jpg", jpeg))]
        items = crashing.post("/v1/detect/batch", files=files).json()["items"]
    assert [item["status"] for item in items] == [200, 500, 200]
    assert items[1]["error"]["code"] == "internal_error" and items[0]["result"]["signals"]


def test_an_unexpected_error_is_a_500_json_without_a_traceback(tiny_model_dir, jpeg, monkeypatch):
    app = create_app(str(tiny_model_dir), settings=OPEN)
    with TestClient(app, raise_server_exceptions=False) as crashing:
        monkeypatch.setattr(app.state.detector, "predict", lambda *a, **k: 1 / 0)
        assert_error(detect(crashing, jpeg), 500, "internal_error")


def test_batch_without_files_is_422(client):
    assert_error(client.post("/v1/detect/batch", files={"image": ("a.jpg", b"x")}), 422, "missing_field")


def test_batch_id_photo_mode(client, portrait):
    item = client.post("/v1/detect/batch", files=[("images", ("p.jpg", portrait))], data={"id_photo": "1"}).json()["items"][0]
    assert item["result"]["face"] and item["result"]["checks"] and item["result"]["face_score"] is None


def test_batch_file_names_are_safe_to_display(client, jpeg):
    names = ["cv\u202egpj.exe", "two\nlines.jpg", "tab\there\u2066.jpg", "사진.jpg"]
    # Written by hand: httpx would percent-encode the newline, and a hostile client sends raw bytes.
    body = b"".join(b'--B\r\nContent-Disposition: form-data; name="images"; filename="' + name.encode() + b'"\r\n\r\n'
                    + jpeg + b"\r\n" for name in names) + b"--B--\r\n"
    batch = client.post("/v1/detect/batch", content=body, headers={"content-type": "multipart/form-data; boundary=B"}).json()
    shown = [item["filename"] for item in batch["items"]]
    assert shown == ["cv\ufffdgpj.exe", "two\ufffdlines.jpg", "tab\ufffdhere\ufffd.jpg", "사진.jpg"]


# ------------------------------------------------------------------------------ API key, rate limit, busy
def test_api_key_when_set(tiny_model_dir, jpeg):
    with client_for(tiny_model_dir, api_key="s3cret-key") as guarded:
        assert_error(detect(guarded, jpeg), 401, "unauthorized")
        assert_error(guarded.post("/v1/detect", files={"image": ("a.jpg", jpeg)}, headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert guarded.post("/v1/detect", files={"image": ("a.jpg", jpeg)}, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert_error(guarded.get("/v1/models"), 401, "unauthorized")
        assert guarded.get("/v1/models", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        health = guarded.get("/healthz")  # open, so the page can learn that it must ask for a key
        assert health.status_code == 200 and health.json()["api_key_required"] is True
        assert guarded.get("/").status_code == 200
        assert guarded.get("/v1/catalogue").status_code == 200  # open too: the page names verdicts before a key is typed


def test_a_401_says_how_to_authenticate(tiny_model_dir, jpeg):
    with client_for(tiny_model_dir, api_key="s3cret-key") as guarded:
        for response in (detect(guarded, jpeg), guarded.get("/v1/models", headers={"X-API-Key": "wrong"})):
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("ApiKey") and "X-API-Key" in response.headers["www-authenticate"]


def test_api_key_not_needed_when_unset(client, jpeg):
    assert client.get("/healthz").json()["api_key_required"] is False
    assert detect(client, jpeg).status_code == 200


def test_key_guessing_ends_in_429_and_spends_no_budget_of_the_right_key(tiny_model_dir, jpeg):
    """Missing and wrong keys share the client's budget, whatever the key and the endpoint; the right key has its own."""
    # One address for both (the TestClient's): as behind a proxy, or an attacker on the same network.
    with client_for(tiny_model_dir, api_key="s3cret-key", rate_per_minute=1, rate_burst=3) as guarded:
        missing = [detect(guarded, jpeg).status_code for _ in range(2)]
        guessed = [guarded.post("/v1/detect", headers={"X-API-Key": f"guess-{n}"}).status_code for n in range(28)]
        wrong = missing + guessed
        assert wrong[:3] == [401, 401, 401] and set(wrong[3:]) == {429}  # key guessing ends in 429
        assert guarded.get("/v1/models", headers={"X-API-Key": "another-guess"}).status_code == 429
        right = [guarded.post("/v1/detect", files={"image": ("a.jpg", jpeg)}, headers={"X-API-Key": "s3cret-key"}).status_code
                 for _ in range(4)]
        assert right == [200, 200, 200, 429]  # the key's own budget: full, and still a limit


def test_rate_limit_gives_429_with_retry_after(tiny_model_dir, jpeg):
    with client_for(tiny_model_dir, rate_per_minute=6, rate_burst=2) as limited:
        assert detect(limited, jpeg).status_code == 200
        assert detect(limited, jpeg).status_code == 200
        response = detect(limited, jpeg)
        assert_error(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 10
        assert limited.get("/healthz").status_code == 200  # health checks are never limited


def test_a_batch_larger_than_the_burst_can_pass(tiny_model_dir, jpeg):
    settings = Settings(rate_per_minute=1, rate_burst=5)
    with TestClient(create_app(tiny_model_dir, settings=settings)) as client:
        files = [("images", (f"{n}.jpg", jpeg)) for n in range(6)]
        first = client.post("/v1/detect/batch", files=files)
        second = client.post("/v1/detect/batch", files=files)
    assert first.status_code == 200 and first.json()["scored"] == 6
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1


def test_rate_limiter_refills_and_forgets_old_clients():
    limiter = RateLimiter(per_minute=60, burst=2, max_clients=3)
    assert limiter.take("a", now=0) == 0 and limiter.take("a", now=0) == 0
    assert limiter.take("a", now=0) == pytest.approx(1.0)
    assert limiter.take("a", now=1.0) == 0  # one token back after a second
    for client in "bcd":
        limiter.take(client, now=2.0)
    assert len(limiter._buckets) == 3 and "a" not in limiter._buckets
    assert RateLimiter(per_minute=0, burst=1).take("x") == 0  # 0 turns it off


def test_a_full_model_queue_gives_503_and_the_loop_stays_responsive(tiny_model_dir, jpeg, monkeypatch):
    with client_for(tiny_model_dir, max_concurrency=1, queue_timeout_s=0.2) as busy:
        detector = busy.app.state.detector
        original = detector.predict
        entered, release = threading.Event(), threading.Event()

        held: dict = {}

        def held_predict(*args, **kwargs):
            entered.set()
            held["released"] = release.wait(20)  # holds the only model slot until the test lets go
            return original(*args, **kwargs)

        monkeypatch.setattr(detector, "predict", held_predict)
        first: dict = {}
        worker = threading.Thread(target=lambda: first.setdefault("response", detect(busy, jpeg)))
        worker.start()
        try:
            assert entered.wait(20)
            assert busy.get("/healthz").status_code == 200
            second = detect(busy, jpeg)
        finally:
            release.set()
            worker.join()
    # Both answers came while the model was held (the wait ended by release, not by its timeout):
    # the model runs in a worker thread, and the event loop kept answering.
    assert held["released"]
    error = assert_error(second, 503, "busy")
    assert second.headers["retry-after"] and error["message_ko"]
    assert first["response"].status_code == 200


# ------------------------------------------------------------------------------ service endpoints, the page and the docs
def test_healthz_and_models(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "tiny-test" and health["max_upload_bytes"] == 20 * 1024 * 1024
    assert "JPEG" in health["formats"]
    models = client.get("/v1/models").json()["models"]
    assert models[0]["name"] == "tiny-test" and models[0]["thresholds"]["ai"] == 0.6 and models[0]["crop_size"] == 32


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


def test_the_catalogue_names_every_verdict_in_both_languages(client, jpeg):
    from aiornot.contract.result import VERDICTS

    entries = client.get("/v1/catalogue").json()["verdicts"]
    assert [entry["name"] for entry in entries] == list(VERDICTS) == ["ai", "real", "inconclusive"]
    assert {entry["label_ko"] for entry in entries} == {"AI 생성", "실제 사진", "판단 보류"}
    assert all(entry["label"] != entry["label_ko"] and entry["explanation"] and entry["explanation_ko"] for entry in entries)
    assert detect(client, jpeg).json()["verdict"] in VERDICTS


def test_openapi_documents_the_endpoints_and_the_upload(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/detect", "/v1/detect/batch", "/healthz", "/v1/models"} <= set(schema["paths"])
    detect_op = schema["paths"]["/v1/detect"]["post"]
    form = detect_op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["image"]["format"] == "binary" and form["required"] == ["image"]
    assert {"200", "413", "415", "422", "429"} <= set(detect_op["responses"])
    assert "verdict" in schema["components"]["schemas"]["DetectResult"]["properties"]
    assert client.get("/docs").status_code == 200
    batch_form = schema["paths"]["/v1/detect/batch"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    for fields in (form["properties"], batch_form["properties"]):
        assert "face score" not in fields["id_photo"]["description"]
        assert fields["face_score"]["type"] == "boolean" and fields["face_score"]["default"] is False
        assert "information only" in fields["face_score"]["description"] and "id_photo" in fields["face_score"]["description"]


def test_docs_carry_a_policy_and_cannot_be_framed(client):
    import base64
    import hashlib
    import re

    docs = client.get("/docs")
    policy = docs.headers["content-security-policy"]
    assert docs.status_code == 200 and docs.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
    for script in re.findall(r"<script>(.*?)</script>", docs.text, flags=re.DOTALL):  # the inline start-up script, by hash
        assert base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() in policy
    schema = client.get("/openapi.json")
    assert schema.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in schema.headers["content-security-policy"]


def test_docs_and_schema_can_require_the_key(tiny_model_dir):
    with client_for(tiny_model_dir, api_key="s3cret-key") as open_docs:  # the default: the contract is public
        assert open_docs.get("/docs").status_code == 200 and open_docs.get("/openapi.json").status_code == 200
    with client_for(tiny_model_dir, api_key="s3cret-key", docs_require_key=True) as private:
        for path in ("/docs", "/openapi.json"):
            assert_error(private.get(path), 401, "unauthorized")
            assert private.get(path, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert "/v1/detect" in private.get("/openapi.json", headers={"X-API-Key": "s3cret-key"}).json()["paths"]
    assert Settings.from_env({"AIORNOT_DOCS_REQUIRE_KEY": "true"}).docs_require_key is True
    with pytest.raises(ValueError, match="AIORNOT_DOCS_REQUIRE_KEY"):
        Settings.from_env({"AIORNOT_DOCS_REQUIRE_KEY": "maybe"})


def test_the_page_and_its_assets_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'lang="ko"' in page.text and "/static/app.js" in page.text
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text  # nothing from a CDN: the page works offline


def test_the_page_script_names_no_verdict_itself():
    """The verdict labels live once, on the server: the page's script must not restate them."""
    from aiornot.contract.result import VERDICT_TEXTS

    script = (Path(__file__).resolve().parents[1] / "aiornot" / "apps" / "service" / "static" / "app.js").read_text()
    assert "/v1/catalogue" in script
    assert not [text.label_ko for text in VERDICT_TEXTS.values() if f'"{text.label_ko}"' in script]
    assert "verdict_ai" not in script and "VERDICTS" not in script


def test_the_page_takes_its_words_from_the_catalogue(client):
    """The page's words are the catalogue's [page] entries, written into index.html by the server."""
    import json
    import re

    from aiornot.apps.service.page import page_strings

    page = client.get("/").text
    inline = re.search(r'<script type="application/json" id="page-strings">(.*?)</script>', page, flags=re.DOTALL)
    assert inline and json.loads(inline[1]) == page_strings() and set(page_strings()) == {"en", "ko"}
    assert "{{" not in page and f"<title>{page_strings()['ko']['pageTitle']}</title>" in page  # Korean before any script runs
    script = (Path(__file__).resolve().parents[1] / "aiornot" / "apps" / "service" / "static" / "app.js").read_text()
    assert not re.search("[\uac00-\ud7a3]", script), "the page's script holds Korean: its words belong in the catalogue"


def test_the_page_shows_file_names_through_the_same_rule():
    script = (Path(__file__).resolve().parents[1] / "aiornot" / "apps" / "service" / "static" / "app.js").read_text()
    assert "textContent = file.name" not in script and "displayName(file.name)" in script
    assert "\\u202a-\\u202e" in script and "\\p{Cc}" in script


def test_without_a_model_the_api_says_so_and_the_page_still_loads(tmp_path, jpeg):
    with client_for(tmp_path / "no-model-here") as empty:
        health = empty.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "no_model" and "no trained model" in health.json()["detail"]
        assert_error(detect(empty, jpeg), 503, "no_model")
        assert_error(empty.get("/v1/models"), 503, "no_model")
        assert empty.get("/").status_code == 200


def test_settings_from_the_environment():
    settings = Settings.from_env({"AIORNOT_MAX_UPLOAD_MB": "5", "AIORNOT_API_KEY": "k", "AIORNOT_RATE_PER_MINUTE": "0",
                                  "AIORNOT_MAX_CONCURRENCY": "3", "AIORNOT_MODEL_DIR": "/models/x"})
    assert settings.max_upload_bytes == 5 * 1024 * 1024 and settings.api_key == "k" and settings.rate_per_minute == 0
    assert settings.max_concurrency == 3 and settings.model_dir == "/models/x"
    with pytest.raises(ValueError, match="AIORNOT_MAX_UPLOAD_MB"):
        Settings.from_env({"AIORNOT_MAX_UPLOAD_MB": "lots"})
    with pytest.raises(ValueError, match="negative"):
        Settings(rate_burst=-1)


def test_every_setting_is_documented_in_the_readme():
    from aiornot.apps.service.settings import ENV_VARIABLES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [variable for variable, _ in ENV_VARIABLES.values() if variable not in readme]
    assert missing == [], missing


# ------------------------------------------------------------------------------ privacy
@contextmanager
def file_writes() -> list:
    """Record every file opened for writing and every temporary file made, in this process.

    Python's audit hooks see ``open``/``os.open`` and ``tempfile.mkstemp`` wherever they are
    called (our code, Starlette, Pillow …). Hooks cannot be removed, so this one goes quiet after.
    """
    import os

    events: list = []
    active = [True]
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_TMPFILE", 0)

    def hook(event: str, args: tuple) -> None:
        if not active[0]:
            return
        if event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
            events.append((event, args))
        elif event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & write_flags)
            if writing and isinstance(path, (str, bytes, os.PathLike)):
                events.append((event, args))

    sys.addaudithook(hook)
    try:
        yield events
    finally:
        active[0] = False


def test_uploads_never_touch_the_disk(client, tiny_model_dir, tmp_path, monkeypatch):
    """A 3 MB upload is above Starlette's 1 MB spool threshold, so its parser would write a temp file."""
    big = encode(photo_like(5, (1600, 1200)), "PNG")
    assert len(big) > 2 * 1024 * 1024
    detect(client, big, heatmap="true")  # warm-up: first-use caches (fonts, colour maps) are not uploads
    # A temp directory of this test's own: other processes' files in the system one must not fail it.
    temp_dir = tmp_path / "temp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    before = set(temp_dir.iterdir())
    with file_writes() as writes:
        single = detect(client, big, name="applicant.png", id_photo="true", heatmap="true")
        batch = client.post("/v1/detect/batch", files=[("images", ("a.png", big)), ("images", ("b.png", big))])
        by_requests = list(writes)
        with tempfile.TemporaryFile():  # proves the probe works: a real temporary file is seen
            pass
    assert single.status_code == 200 and batch.json()["scored"] == 2
    assert by_requests == []
    assert len(writes) > len(by_requests)
    assert set(temp_dir.iterdir()) == before


def test_logs_carry_no_file_name_and_no_image_bytes(client, jpeg, caplog):
    marker = "Kim-Minji-passport-original"
    with caplog.at_level(logging.DEBUG):
        detect(client, jpeg, name=f"{marker}.jpg", id_photo="true")
        detect(client, b"not an image " * 10, name=f"{marker}.txt")
        client.post("/v1/detect/batch", files=[("images", (f"{marker}-2.jpg", jpeg))])
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert marker not in logged
    assert "not an image not an image" not in logged
    assert jpeg[:64].hex() not in logged and "JFIF" not in logged


# ------------------------------------------------------------------------------ one predict pipeline (issue 19)
def test_each_uploads_header_is_walked_and_parsed_once_in_every_mode(client, jpeg, portrait, monkeypatch):
    """The structure walk (aiornot.io.headers) and Pillow's header parse run once per upload, with the
    ID-photo mode, the heatmap and provenance on, on both routes: the parse travels with the upload."""
    import collections

    import aiornot.io.decode
    import aiornot.evidence.provenance.inspection

    counts: collections.Counter = collections.Counter()

    def counting(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in ((aiornot.io.decode, "check_structure"), (aiornot.io.decode, "open_header"),
                         (aiornot.evidence.provenance.inspection, "open_header")):
        counting(module, name)
    assert detect(client, portrait, id_photo="true", heatmap="true").status_code == 200
    assert counts == {"open_header": 1, "check_structure": 1}
    counts.clear()
    files = [("images", (f"{i}.jpg", data)) for i, data in enumerate((portrait, jpeg, portrait))]
    batch = client.post("/v1/detect/batch", files=files, data={"id_photo": "true"}).json()
    assert batch["scored"] == 3 and counts == {"open_header": 3, "check_structure": 3}


def test_the_batch_route_scores_its_files_with_one_predict_many_call(client, jpeg, portrait, monkeypatch):
    """One predict_many call for the batch's readable files, so one expert pass (face crops
    included); a file that cannot be read keeps its own error and is never passed on."""
    detector = client.app.state.detector
    many, experts, singles = [], [], []
    original_many, original_experts = detector.predict_many, detector.expert_scores

    def predict_many(sources, **options):
        sources = list(sources)
        many.append(len(sources))
        return original_many(sources, **options)

    def expert_scores(images, **options):
        experts.append(len(images))
        return original_experts(images, **options)

    monkeypatch.setattr(detector, "predict_many", predict_many)
    monkeypatch.setattr(detector, "expert_scores", expert_scores)
    monkeypatch.setattr(detector, "predict", lambda *a, **k: singles.append(1))
    files = [("images", ("a.jpg", jpeg)), ("images", ("notes.txt", b"just some text")), ("images", ("p.jpg", portrait))]
    batch = client.post("/v1/detect/batch", files=files, data={"id_photo": "true", "face_score": "true"}).json()
    assert [item["status"] for item in batch["items"]] == [200, 415, 200]
    assert batch["items"][1]["error"]["code"] == "not_an_image" and batch["items"][1]["filename"] == "notes.txt"
    faces = sum(item["result"].get("face_score") is not None for item in batch["items"] if item["result"])
    assert batch["items"][2]["result"]["face_score"] is not None
    assert many == [2] and experts == [2 + faces] and singles == []


def test_a_batch_holds_no_more_decoded_pixels_than_the_budget_grants(tiny_model_dir, jpeg, monkeypatch):
    """Three 10,800-pixel photos against a 25,000-pixel budget: the batch takes the whole budget
    and predict_many passes them two, then one, so no pass holds more pixels than were granted."""
    import aiornot.predict

    sizes: list[int] = []
    original = aiornot.predict.score_batch

    def recording(scorer, batch, options):
        sizes.append(sum(item.pixel_count for item in batch))
        return original(scorer, batch, options)

    monkeypatch.setattr(aiornot.predict, "score_batch", recording)
    with client_for(tiny_model_dir, max_inflight_megapixels=0.025) as small:
        sizes.clear()  # the start-up warm-up's image
        batch = small.post("/v1/detect/batch", files=[("images", (f"{i}.jpg", jpeg)) for i in range(3)]).json()
        peak = small.app.state.pixels.peak
    assert batch["scored"] == 3 and sizes == [21_600, 10_800] and peak == 25_000


def test_the_routes_send_the_result_as_the_pipeline_built_it(client, jpeg, monkeypatch):
    """Nothing after build_result changes a Result: the answer's elapsed_ms and scores are the built ones."""
    import aiornot.predict

    built = []
    original = aiornot.predict.build_result

    def recording(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(aiornot.predict, "build_result", recording)
    single = detect(client, jpeg).json()
    assert len(built) == 1 and single["elapsed_ms"] == built[0].elapsed_ms > 0 and single["score"] == built[0].score
    built.clear()
    batch = client.post("/v1/detect/batch", files=[("images", ("a.jpg", jpeg)), ("images", ("b.jpg", jpeg))]).json()
    assert [item["result"]["elapsed_ms"] for item in batch["items"]] == [result.elapsed_ms for result in built]
