"""The web service: the REST API and the offline web page, served by one FastAPI app.

``aiornot serve`` runs ``uvicorn aiornot.service:create_app --factory``. Every photo is scored by
the same :class:`aiornot.detector.Detector` as ``aiornot scan`` and the notebooks, so the page,
the API and the CLI always agree.

Privacy and safety, by construction:

* Uploads are never written to disk. Starlette's own form parser spools file parts into a
  ``SpooledTemporaryFile`` that rolls over to a real temporary file above 1 MB, and it reads the
  whole body whatever its size. So the endpoints here never touch ``request.form()`` nor declare
  ``UploadFile`` parameters (FastAPI would call the same parser); :func:`read_form` streams the body
  through python-multipart's low-level parser straight into memory, counting bytes as they arrive
  and stopping at the first byte over the limit (``tests/test_service.py`` checks that no temporary
  file is created).
* Nothing about an upload is logged: no file name, no bytes, no client address (the CLI also
  turns uvicorn's access log off). The only per-request log line is an unexpected server error.
* Limits: upload size (checked while reading), pixel count (the decoder rejects bombs before
  decoding), formats (the decoder's list), batch size, multipart parts, memory held by bodies in
  flight (with a per-client share of it), decoded megapixels in flight and per batch, a per-client
  token bucket (failed API-key attempts spend it too), an optional API key, and a semaphore around
  the CPU-bound model call (which runs in a worker thread so the event loop keeps answering).
* Slow clients: a body must arrive within a deadline, without long pauses and above a minimum
  rate, or it gets 408 and the connection is closed; the header timeout and the JSON shape of
  protocol errors live in :mod:`aiornot.server` (the uvicorn side).

Every user mistake gets a 4xx JSON ``{"error": {"code", "message", "message_ko"}}``, never a
traceback.
"""

from __future__ import annotations

import base64
import codecs
import hmac
import io
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from aiornot import __version__, paths
from aiornot.imageio import ALLOWED_FORMATS, DEFAULT_MAX_PIXELS

logger = logging.getLogger("aiornot.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"
MB = 1024 * 1024
#: Room for the multipart framing and the small text fields around the image itself.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_TEXT_FIELD_BYTES = 1024
#: Longest multipart part header line (Content-Disposition with a long file name fits easily).
MAX_PART_HEADER_BYTES = 8 * 1024
MEGAPIXEL = 1_000_000
MAX_EXTERNAL_ID = 200
#: Longest side of the heatmap overlay sent back (display only; the model saw full resolution).
OVERLAY_MAX_SIDE = 512

CAUTION_EN = (
    "An 'AI' verdict is a reason for a person to check the photo and the applicant, not proof. "
    "A 'real' verdict is not a guarantee either."
)
CAUTION_KO = (
    "'AI 생성' 판정은 담당자가 사진과 신청인을 직접 확인해야 할 이유일 뿐, 증거가 아닙니다. "
    "'실제 사진' 판정도 진본임을 보증하지 않습니다."
)


# ============================================================================================
# Settings
# ============================================================================================


@dataclass(frozen=True)
class Settings:
    """Service limits; :meth:`from_env` reads them from ``AIORNOT_*`` environment variables.

    ``rate_per_minute = 0`` turns the rate limit off; ``api_key = None`` leaves the API open.
    """

    model_dir: str | None = None
    max_upload_bytes: int = 20 * MB
    max_batch_files: int = 32
    max_batch_bytes: int = 64 * MB
    max_buffer_bytes: int = 256 * MB
    api_key: str | None = None
    rate_per_minute: float = 120.0
    rate_burst: int = 40
    max_concurrency: int = 2
    queue_timeout_s: float = 10.0
    #: One client's share of ``max_buffer_bytes``: stalled uploads from one address cannot fill it all.
    #: None: a quarter of it, and at least the largest request.
    max_client_buffer_bytes: int | None = None
    #: Multipart parts per request (files and text fields together).
    max_parts: int = 64
    #: The whole body must arrive within this many seconds ...
    body_timeout_s: float = 60.0
    #: ... with no pause longer than this ...
    body_idle_timeout_s: float = 10.0
    #: ... and, after the first ``body_grace_s``, at this average rate at least (bytes per second).
    min_upload_bytes_per_s: int = 16 * 1024
    body_grace_s: float = 5.0
    #: Decoded megapixels all requests may have in the model at once, and one batch may hold.
    max_inflight_megapixels: float = 128.0
    max_batch_megapixels: float = 256.0
    #: Comma-separated proxy addresses whose X-Forwarded-For is believed (None: nobody's).
    trusted_proxies: str | None = None
    #: Seconds a connection may take to send its request headers, and may stay idle between requests.
    header_timeout_s: float = 10.0
    keep_alive_s: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; a malformed value is a clear startup error."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (variable, convert) in _ENV_VARIABLES.items():
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    values[name] = convert(raw)
                except ValueError:
                    raise ValueError(f"{variable} must be a number, not {raw!r}") from None
        return cls(**values)

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"setting {item.name} must not be negative, got {value}")
        if self.max_concurrency < 1 or self.max_batch_files < 1 or self.max_upload_bytes < 1:
            raise ValueError("max_concurrency, max_batch_files and max_upload_bytes must be at least 1")
        one_request = max(self.max_batch_bytes, self.max_upload_bytes + FORM_OVERHEAD_BYTES)
        if self.max_buffer_bytes < one_request:
            raise ValueError("AIORNOT_MAX_BUFFER_MB must be at least AIORNOT_MAX_BATCH_MB and AIORNOT_MAX_UPLOAD_MB "
                             "(the memory for bodies in flight must hold at least one of each)")
        if self.max_client_buffer_bytes is None:  # frozen: set once, here
            object.__setattr__(self, "max_client_buffer_bytes", max(one_request, self.max_buffer_bytes // 4))
        if not one_request <= self.max_client_buffer_bytes <= self.max_buffer_bytes:
            raise ValueError("AIORNOT_MAX_CLIENT_BUFFER_MB must lie between the largest request "
                             "(AIORNOT_MAX_BATCH_MB, AIORNOT_MAX_UPLOAD_MB) and AIORNOT_MAX_BUFFER_MB")
        if self.max_parts < 2 or self.max_inflight_megapixels <= 0 or self.max_batch_megapixels <= 0:
            raise ValueError("AIORNOT_MAX_PARTS must be at least 2 and the megapixel limits above 0")
        if min(self.body_timeout_s, self.body_idle_timeout_s, self.header_timeout_s) <= 0:
            raise ValueError("AIORNOT_BODY_TIMEOUT_S, AIORNOT_BODY_IDLE_TIMEOUT_S and AIORNOT_HEADER_TIMEOUT_S must be above 0")

    @property
    def proxies(self) -> list[str]:
        """The trusted proxy addresses as a list (empty: X-Forwarded-For is ignored)."""
        return [item.strip() for item in (self.trusted_proxies or "").split(",") if item.strip()]


def _megabytes(raw: str) -> int:
    return int(float(raw) * MB)


_ENV_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "model_dir": ("AIORNOT_MODEL_DIR", str),
    "max_upload_bytes": ("AIORNOT_MAX_UPLOAD_MB", _megabytes),
    "max_batch_files": ("AIORNOT_MAX_BATCH_FILES", int),
    "max_batch_bytes": ("AIORNOT_MAX_BATCH_MB", _megabytes),
    "max_buffer_bytes": ("AIORNOT_MAX_BUFFER_MB", _megabytes),
    "api_key": ("AIORNOT_API_KEY", str),
    "rate_per_minute": ("AIORNOT_RATE_PER_MINUTE", float),
    "rate_burst": ("AIORNOT_RATE_BURST", int),
    "max_concurrency": ("AIORNOT_MAX_CONCURRENCY", int),
    "queue_timeout_s": ("AIORNOT_QUEUE_TIMEOUT_S", float),
    "max_client_buffer_bytes": ("AIORNOT_MAX_CLIENT_BUFFER_MB", _megabytes),
    "max_parts": ("AIORNOT_MAX_PARTS", int),
    "body_timeout_s": ("AIORNOT_BODY_TIMEOUT_S", float),
    "body_idle_timeout_s": ("AIORNOT_BODY_IDLE_TIMEOUT_S", float),
    "min_upload_bytes_per_s": ("AIORNOT_MIN_UPLOAD_KBPS", lambda raw: int(float(raw) * 1024)),
    "body_grace_s": ("AIORNOT_BODY_GRACE_S", float),
    "max_inflight_megapixels": ("AIORNOT_MAX_INFLIGHT_MP", float),
    "max_batch_megapixels": ("AIORNOT_MAX_BATCH_MP", float),
    "trusted_proxies": ("AIORNOT_TRUSTED_PROXIES", str),
    "header_timeout_s": ("AIORNOT_HEADER_TIMEOUT_S", float),
    "keep_alive_s": ("AIORNOT_KEEP_ALIVE_S", int),
}


# ============================================================================================
# Errors
# ============================================================================================


class ApiError(Exception):
    """A request the service refuses, with a stable code and messages in English and Korean."""

    def __init__(self, status: int, code: str, message: str, message_ko: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_ko = status, code, message, message_ko
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "message_ko": self.message_ko}}


_FORMATS = ", ".join(ALLOWED_FORMATS)
#: Decoder error code → (HTTP status, Korean message). The English message comes from the decoder.
_DECODE_ERRORS: dict[str, tuple[int, str]] = {
    "empty": (400, "빈 파일입니다(0바이트). 사진 파일을 다시 선택해 주세요."),
    "not_an_image": (415, f"이미지 파일이 아닙니다. 사진 파일({_FORMATS})을 올려 주세요."),
    "unsupported_format": (415, f"지원하지 않는 이미지 형식입니다. {_FORMATS} 중 하나로 변환해 올려 주세요."),
    "file_too_large": (413, "파일이 너무 큽니다. 더 작은 파일을 올려 주세요."),
    "too_many_pixels": (413, "이미지의 픽셀 수가 너무 많습니다(압축 폭탄이거나 지나치게 큰 스캔). 크기를 줄여 올려 주세요."),
    "too_small": (422, "이미지가 너무 작습니다. 가로·세로 모두 16픽셀 이상이어야 합니다."),
    "corrupt": (422, "이미지 파일이 손상되었거나 일부만 전송되었습니다. 원본 파일을 다시 올려 주세요."),
}


def decode_error(code: str, message: str) -> ApiError:
    """The API error for a decoder failure (``Result.error_code`` / ``ImageDecodeError.code``)."""
    status, message_ko = _DECODE_ERRORS.get(code, (422, "이미지를 읽을 수 없습니다. 다른 파일로 다시 시도해 주세요."))
    return ApiError(status, code, message, message_ko)


def _too_large(what: str, limit: int) -> ApiError:
    megabytes = f"{limit / MB:g}"
    return ApiError(413, "file_too_large" if what == "file" else "request_too_large",
                    f"the {what} is larger than the limit of {megabytes} MB",
                    f"{'파일' if what == 'file' else '요청'}이 너무 큽니다. 최대 {megabytes} MB까지 보낼 수 있습니다.")


def _missing(name: str) -> ApiError:
    return ApiError(422, "missing_field", f"the form field '{name}' is missing; send the photo as a file field '{name}'",
                    f"'{name}' 항목이 없습니다. 사진 파일을 '{name}' 필드로 보내 주세요.")


def _invalid(name: str, expected: str, expected_ko: str) -> ApiError:
    return ApiError(422, "invalid_field", f"the form field '{name}' must be {expected}",
                    f"'{name}' 항목의 값이 올바르지 않습니다. {expected_ko}")


def _busy(retry_after: int) -> ApiError:
    return ApiError(503, "busy", "the server is busy; try again in a few seconds",
                    "서버가 바쁩니다. 잠시 후 다시 시도해 주세요.", {"Retry-After": str(retry_after)})


def _too_slow(why: str) -> ApiError:
    # Connection: close — the rest of a stalled body must not keep the connection (and its slot) alive.
    return ApiError(408, "upload_too_slow", f"the upload was too slow ({why}); check the connection and send it again",
                    "업로드가 너무 느립니다. 네트워크 연결을 확인한 뒤 다시 보내 주세요.", {"Connection": "close"})


class ClientGone(ApiError):
    """The client closed the connection before its body arrived: nobody is left to answer."""

    def __init__(self) -> None:
        super().__init__(400, "client_disconnected", "the client disconnected before the upload was complete",
                         "업로드가 끝나기 전에 연결이 끊겼습니다.")


# ============================================================================================
# Reading the body: bounded, in memory, never spooled to disk
# ============================================================================================


@dataclass
class Part:
    """One multipart field held in memory. ``overflow`` is set when it exceeded its own limit
    (its bytes were dropped, so a batch can report that one file without failing the rest)."""

    name: str
    filename: str | None
    data: bytearray = field(default_factory=bytearray)
    overflow: bool = False


@dataclass
class Form:
    """The parsed fields of a request, in the order they arrived."""

    parts: list[Part]

    def files(self, name: str) -> list[Part]:
        """Every part called ``name`` (a field sent without a file name counts too)."""
        return [part for part in self.parts if part.name == name]

    def text(self, name: str) -> str | None:
        """The last text value of ``name``, or None when absent."""
        values = [part for part in self.parts if part.name == name]
        if not values:
            return None
        part = values[-1]
        if part.overflow:
            raise _invalid(name, f"at most {MAX_TEXT_FIELD_BYTES} bytes", f"{MAX_TEXT_FIELD_BYTES}바이트 이하로 보내 주세요.")
        try:
            return part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(name, "UTF-8 text", "UTF-8 문자열로 보내 주세요.") from None

    def flag(self, name: str) -> bool:
        """A boolean form field: true/false, 1/0, on/off, yes/no; absent means false."""
        value = self.text(name)
        if value is None or value.strip() == "":
            return False
        lowered = value.strip().lower()
        if lowered in ("true", "1", "on", "yes"):
            return True
        if lowered in ("false", "0", "off", "no"):
            return False
        raise _invalid(name, "true or false", "true 또는 false로 보내 주세요.")


class _PartCollector:
    """python-multipart callbacks that build :class:`Part` objects with per-part limits."""

    def __init__(self, charset: str, max_file_bytes: int, max_files: int, file_field: str, max_parts: int = 64) -> None:
        self.charset, self.max_file_bytes, self.max_files, self.file_field = charset, max_file_bytes, max_files, file_field
        self.max_parts = max_parts
        self.parts: list[Part] = []
        self.finished = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._current: Part | None = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_val, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        # Counted as parts begin: 250,000 tiny parts would otherwise keep the event loop parsing for seconds.
        if len(self.parts) >= self.max_parts:
            raise ApiError(413, "too_many_parts", f"at most {self.max_parts} form fields can be sent in one request",
                           f"한 요청에 최대 {self.max_parts}개의 항목만 보낼 수 있습니다.")
        self._disposition, self._current = b"", None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        self._check_header_size()

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._check_header_size()

    def _check_header_size(self) -> None:
        if len(self._header_name) + len(self._header_value) > MAX_PART_HEADER_BYTES:
            raise FormParserError(f"a multipart part header is longer than {MAX_PART_HEADER_BYTES} bytes")

    def _header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise FormParserError("a multipart part has no name in its Content-Disposition header")
        name = options[b"name"].decode(self.charset, "replace")
        filename = options[b"filename"].decode(self.charset, "replace") if b"filename" in options else None
        self._current = Part(name, filename)
        self.parts.append(self._current)
        if name == self.file_field and len(self.files()) > self.max_files:
            raise ApiError(413, "too_many_files", f"at most {self.max_files} files can be sent in one request",
                           f"한 번에 최대 {self.max_files}개의 파일만 보낼 수 있습니다.")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current
        if part is None or part.overflow:
            return
        limit = self.max_file_bytes if part.name == self.file_field else MAX_TEXT_FIELD_BYTES
        if len(part.data) + (end - start) > limit:
            part.overflow = True
            part.data = bytearray()  # free it now: an oversized file is reported, not kept
            return
        part.data += data[start:end]

    def _end(self) -> None:
        self.finished = True

    def files(self) -> list[Part]:
        return [part for part in self.parts if part.name == self.file_field]


@dataclass(frozen=True)
class BodyPace:
    """How fast a body must arrive: a total deadline, a longest pause, a minimum average rate."""

    deadline_s: float = 60.0
    idle_s: float = 10.0
    min_bytes_per_s: float = 16 * 1024
    grace_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyPace:
        return cls(settings.body_timeout_s, settings.body_idle_timeout_s, settings.min_upload_bytes_per_s, settings.body_grace_s)

    def wait_allowed(self, elapsed: float, received: int) -> tuple[float, str]:
        """Seconds the next chunk may take, and what is broken when it does not come in time."""
        # The rate rule: after the grace period, ``received`` bytes buy received/rate seconds in all.
        rate_until = max(self.grace_s, received / self.min_bytes_per_s) if self.min_bytes_per_s else math.inf
        limits = [(self.idle_s, f"nothing arrived for {self.idle_s:g} s"),
                  (self.deadline_s - elapsed, f"the body took longer than {self.deadline_s:g} s"),
                  (rate_until - elapsed, f"below {self.min_bytes_per_s / 1024:g} KB/s")]
        return min(limits, key=lambda item: item[0])


async def paced_chunks(request: Request, pace: BodyPace) -> AsyncIterator[bytes]:
    """The body's chunks, ending the upload with 408 when it stalls or trickles (see :class:`BodyPace`).

    Without this, a client that sends half a body and stops holds its share of the upload budget
    (and a connection) for as long as it likes.
    """
    stream = request.stream().__aiter__()
    started, received = anyio.current_time(), 0
    while True:
        wait, why = pace.wait_allowed(anyio.current_time() - started, received)
        if wait <= 0:
            raise _too_slow(why)
        with anyio.move_on_after(wait) as timer:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except ClientDisconnect:
                raise ClientGone() from None
        if timer.cancelled_caught:
            raise _too_slow(why)
        received += len(chunk)
        yield chunk


async def read_form(request: Request, *, file_field: str, max_body: int, max_file_bytes: int, max_files: int,
                    holding: Holding, max_parts: int = 64, pace: BodyPace | None = None) -> Form:
    """Parse a ``multipart/form-data`` body into memory without ever reading past ``max_body``.

    Bytes are charged to ``holding`` (the memory all bodies in flight may hold) as they arrive,
    so a flood of uploads is refused with 503 instead of exhausting memory; the body must keep
    to ``pace`` (408 otherwise) and hold at most ``max_parts`` parts (413).
    """
    boundary, charset = _multipart_boundary(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise _too_large("request", max_body)  # refused before a single byte is read
    collector = _PartCollector(charset, max_file_bytes, max_files, file_field, max_parts)
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        received = 0
        async for chunk in paced_chunks(request, pace or BodyPace()):
            received += len(chunk)
            if received > max_body:
                raise _too_large("request", max_body)
            holding.charge(len(chunk))
            parser.write(chunk)
        parser.finalize()
    except FormParserError as error:
        raise ApiError(400, "bad_multipart", f"the multipart body could not be parsed: {error}",
                       "요청 본문을 읽을 수 없습니다. multipart/form-data 형식이 올바른지 확인해 주세요.") from None
    if not collector.finished:
        raise ApiError(400, "bad_multipart", "the multipart body ended early (the upload was cut off)",
                       "요청 본문이 중간에 끊겼습니다. 다시 보내 주세요.")
    return Form(collector.parts)


def _multipart_boundary(request: Request) -> tuple[bytes, str]:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(415, "not_multipart", "send the photo as multipart/form-data (a file upload form)",
                       "요청 형식이 올바르지 않습니다. 사진을 multipart/form-data(파일 업로드) 형식으로 보내 주세요.")
    charset = options.get(b"charset", b"utf-8").decode("latin-1")
    try:
        return boundary, codecs.lookup(charset).name
    except LookupError:
        return boundary, "utf-8"


class BufferBudget:
    """How many bytes of request bodies the whole server may hold at once, and one client of it.

    ``per_client`` (default: all of it) keeps one address with many stalled uploads from taking
    the whole budget: its next upload gets 503 while everyone else's still fits.
    All charges happen on the event loop, but the lock keeps the counters right if that changes.
    """

    def __init__(self, limit: int, per_client: int | None = None) -> None:
        self.limit, self.used = limit, 0
        self.per_client = per_client or limit
        self.by_client: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, client: str = "") -> Iterator[Holding]:
        """Charges made inside the block are released when it ends."""
        holding = Holding(self, client)
        try:
            yield holding
        finally:
            with self._lock:
                self.used -= holding.total
                left = self.by_client.get(client, 0) - holding.total
                if left > 0:
                    self.by_client[client] = left
                else:
                    self.by_client.pop(client, None)  # bounded: only clients with bytes in flight are kept

    def _charge(self, holding: Holding, size: int) -> None:
        with self._lock:
            mine = self.by_client.get(holding.client, 0)
            if self.used + size > self.limit or mine + size > self.per_client:
                raise _busy(5)
            self.used += size
            self.by_client[holding.client] = mine + size
            holding.total += size


class Holding:
    """One request's share of a :class:`BufferBudget`."""

    def __init__(self, budget: BufferBudget, client: str = "") -> None:
        self.budget, self.client, self.total = budget, client, 0

    def charge(self, size: int) -> None:
        self.budget._charge(self, size)


# ============================================================================================
# Rate limit, API key, concurrency
# ============================================================================================


class RateLimiter:
    """A token bucket per client, in memory: ``burst`` requests at once, refilled at ``per_minute``."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str, cost: int = 1, now: float | None = None) -> float:
        """Take ``cost`` tokens; returns 0 when allowed, else the seconds until they would be there."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        cost = min(cost, self.burst)  # a request bigger than the bucket could otherwise never pass
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= cost else (cost - tokens) / self.rate
            self._buckets[client] = (tokens - cost if not wait else tokens, now)  # re-inserted: newest last
            self._forget_oldest()
        return wait

    def _forget_oldest(self) -> None:
        # Bounded memory: the least recently seen clients go first (their buckets are refilled anyway).
        while len(self._buckets) > self.max_clients:
            self._buckets.pop(next(iter(self._buckets)))


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Needed only when the server sets AIORNOT_API_KEY.")


def require_api_key(request: Request, key: str | None = Depends(_api_key_header)) -> None:
    """401 unless the request's ``X-API-Key`` matches the server's key (used only when one is set).

    A wrong or missing key spends one of the client's rate-limit tokens, so guessing ends in 429
    like any other flood (a right key pays in :func:`check_rate` instead, never twice).
    """
    expected = request.app.state.settings.api_key
    # compare_digest: the time taken must not reveal how much of the key was right.
    if key is None or not hmac.compare_digest(key.encode("utf-8", "replace"), expected.encode("utf-8")):
        _rate_limit(request)
        raise ApiError(401, "unauthorized", "a valid API key is required in the X-API-Key header",
                       "API 키가 없거나 올바르지 않습니다. X-API-Key 헤더에 발급받은 키를 넣어 주세요.")


def _client_id(request: Request) -> str:
    # The peer address. uvicorn replaces it by X-Forwarded-For only when the peer is one of
    # AIORNOT_TRUSTED_PROXIES (aiornot.server), so a client cannot pick its own identity.
    return request.client.host if request.client else "unknown"


def _rate_limit(request: Request, cost: int = 1) -> None:
    wait = request.app.state.limiter.take(_client_id(request), cost)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(429, "rate_limited", f"too many requests; try again in {seconds} s",
                       f"요청이 너무 많습니다. {seconds}초 후에 다시 시도해 주세요.", {"Retry-After": str(seconds)})


def check_rate(request: Request) -> None:
    """Dependency: one token per request before the body is read."""
    _rate_limit(request)


class PixelBudget:
    """Decoded pixels the model calls may hold at once (a 186 KB PNG can decode to 64 megapixels).

    A call waits until its image's declared pixel count fits; one image larger than the whole
    budget is let through alone. ``peak`` records the most ever held (for tests and the soak).
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.peak = limit, 0, 0
        self._changed: anyio.Condition | None = None  # made lazily: it binds to the running event loop

    async def acquire(self, pixels: int) -> int:
        """Wait until ``pixels`` fit; returns what was taken (hand it to :meth:`release`)."""
        pixels = min(max(0, pixels), self.limit)
        self._changed = self._changed or anyio.Condition()
        async with self._changed:
            while self.used + pixels > self.limit:
                await self._changed.wait()
            self.used += pixels
            self.peak = max(self.peak, self.used)
        return pixels

    async def release(self, pixels: int) -> None:
        assert self._changed is not None
        with anyio.CancelScope(shield=True):  # the release must happen even when the request is cancelled
            async with self._changed:
                self.used -= pixels
                self._changed.notify_all()


def declared_pixels(data: bytes | bytearray) -> int:
    """Width × height from the image header alone (0 when unreadable: the decoder will say why)."""
    from aiornot.imageio import ImageDecodeError, open_header

    try:
        with open_header(bytes(data)) as image:
            width, height = image.size
    except (ImageDecodeError, OSError, ValueError):
        return 0
    return int(width) * int(height)


T = TypeVar("T")


async def run_model(request: Request, function: Callable[..., T], *args: Any, pixels: int = 0) -> T:
    """Run the CPU-bound ``function`` in a worker thread, at most ``max_concurrency`` at a time,
    and only once its ``pixels`` fit the server's :class:`PixelBudget`.

    A request that cannot get a slot within ``queue_timeout_s`` gets 503 with Retry-After, so
    memory and latency stay bounded under load instead of queueing without end.
    """
    state = request.app.state
    timeout = state.settings.queue_timeout_s
    busy = _busy(max(1, math.ceil(timeout / 2)))
    with anyio.move_on_after(timeout) as waiting:
        await state.model_slots.acquire()
    if waiting.cancelled_caught:
        raise busy
    try:
        # Taken while holding a slot: every holder of pixels is running, so the wait always ends.
        with anyio.move_on_after(timeout) as waiting:
            granted = await state.pixels.acquire(pixels)
        if waiting.cancelled_caught:
            raise busy
        try:
            return await anyio.to_thread.run_sync(function, *args)
        finally:
            await state.pixels.release(granted)
    finally:
        state.model_slots.release()


# ============================================================================================
# Response models (they are the OpenAPI documentation)
# ============================================================================================

Verdict = Literal["ai", "real", "inconclusive"]


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. not_an_image, file_too_large")
    message: str = Field(description="what was wrong and what to do, in English")
    message_ko: str = Field(description="the same, in Korean")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Signal(BaseModel):
    """One piece of provenance evidence read from the file (see aiornot.provenance)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="c2pa, xmp_source_type, generator_metadata, sd_watermark or camera_exif")
    # Plain strings, not enums: a status the provenance module adds later must not become a 500.
    status: str = Field(description="found, not_found, invalid or error")
    strength: str = Field(description="strong_ai, weak_ai, weak_camera or none")
    summary: str
    summary_ko: str
    details: dict[str, Any] = Field(default_factory=dict)


class Face(BaseModel):
    """The main face box in pixels of the decoded image (EXIF orientation applied)."""

    x: int
    y: int
    w: int
    h: int
    confidence: float
    eyes: list[list[int]] = Field(default_factory=list)


class Check(BaseModel):
    """One ID-photo rule. It measures usability as an ID photo, not AI generation."""

    name: str
    value: float | int | None = None
    passed: bool
    reason: str
    reason_ko: str
    threshold: str


class ThresholdsOut(BaseModel):
    ai: float = Field(description="score at or above which the pixel verdict is 'ai'")
    real: float = Field(description="score below which the pixel verdict is 'real'; between: 'inconclusive'")
    target_fpr: float
    target_fnr: float


class DetectResult(BaseModel):
    """The verdict on one photo."""

    verdict: Verdict = Field(description="final verdict after provenance evidence is combined by `rule`")
    score: float = Field(ge=0, le=1, description="calibrated P(AI) from the pixels")
    pixel_verdict: Verdict = Field(description="the verdict of the pixels alone")
    experts: dict[str, float] = Field(description="each expert's calibrated P(AI): `semantic` (frozen CLIP features + head), `forensic` (CNN on native-resolution tiles)")
    fusion: str = Field(description="the stated rule that combined the experts' scores into `score`")
    fusion_ko: str
    rule: str = Field(description="the sentence of the combination rule that decided the verdict")
    rule_ko: str
    model: str
    thresholds: ThresholdsOut
    signals: list[Signal] = Field(description="provenance evidence: C2PA, IPTC/XMP, generator metadata, watermark, camera EXIF")
    face: Face | None = Field(None, description="ID-photo mode: the main face box (null when none was found)")
    face_score: float | None = Field(None, description="ID-photo mode: P(AI) of the face crop alone")
    checks: list[Check] | None = Field(None, description="ID-photo mode: the ID-photo checks")
    md5: str
    width: int
    height: int
    format: str
    elapsed_ms: float = Field(description="time spent scoring, in milliseconds")
    notes: list[str] = Field(default_factory=list, description="what the decoder changed, e.g. EXIF orientation applied")
    external_id: str | None = Field(None, description="the caller's own reference, echoed back unchanged")
    heatmap: str | None = Field(None, description="with heatmap=true: a PNG data URL of P(AI) per tile over the image")
    caution: str = CAUTION_EN
    caution_ko: str = CAUTION_KO


class BatchItem(BaseModel):
    """One file of a batch: ``result`` when it was scored, ``error`` when it could not be."""

    index: int = Field(description="position of the file in the request, from 0")
    filename: str | None = Field(None, description="the file name the client sent, echoed back (never stored)")
    status: int = Field(description="the HTTP status this file alone would have had")
    result: DetectResult | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    count: int
    scored: int
    failed: int
    external_id: str | None = None
    items: list[BatchItem]


class HealthResponse(BaseModel):
    status: Literal["ok", "no_model"]
    detail: str | None = Field(None, description="why there is no model, and what to do")
    detail_ko: str | None = None
    model: str | None = None
    version: str = __version__
    api_key_required: bool
    max_upload_bytes: int
    max_batch_files: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    formats: list[str] = Field(default_factory=lambda: list(ALLOWED_FORMATS))


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    name: str
    crop_size: int | None = None
    crops_per_image: int | None = None
    max_tiles: int | None = Field(None, description="the forensic expert scores up to this many native-resolution tiles")
    experts: list[str] = Field(default_factory=list, description="the experts whose calibrated scores are fused")
    fusion: str | None = Field(None, description="the stated rule that fuses the experts' scores")
    thresholds: ThresholdsOut
    calibration: dict[str, float] = Field(description="the forensic expert's Platt calibration")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


def _error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "empty file or malformed form", 401: "API key missing or wrong", 413: "file, request or pixel count too large",
        415: "not an image, unsupported format, or not multipart/form-data", 422: "missing or invalid field, damaged image",
        429: "rate limit; see Retry-After", 503: "no model loaded, or busy; see Retry-After",
    }
    return {status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses}


def _form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


_OPTION_FIELDS: dict[str, Any] = {
    "id_photo": {"type": "boolean", "default": False, "description": "ID-photo (증명사진) mode: face box, face score, ID checks"},
    "external_id": {"type": "string", "maxLength": MAX_EXTERNAL_ID, "description": "your reference, echoed back"},
}
_DETECT_BODY = _form_body({
    "image": {"type": "string", "format": "binary", "description": f"the photo ({_FORMATS})"},
    **_OPTION_FIELDS,
    "heatmap": {"type": "boolean", "default": False, "description": "add a PNG data URL of the heatmap overlay"},
}, ["image"])


def _batch_body(max_files: int) -> dict[str, Any]:
    images = {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1, "maxItems": max_files,
              "description": f"up to {max_files} photos; a bad file gets its own error, the rest are scored"}
    return _form_body({"images": images, **_OPTION_FIELDS}, ["images"])


# ============================================================================================
# Scoring
# ============================================================================================


def _score(detector: Any, data: bytes, id_photo: bool, heatmap: bool) -> tuple[Any, str | None]:
    """Score one upload in a worker thread; returns the Result and the overlay data URL."""
    started = time.perf_counter()
    result = detector.predict(data, id_photo=id_photo, explain=heatmap)
    overlay = _overlay_data_url(data, result.heatmap) if result.ok and result.heatmap is not None else None
    if result.ok:
        result.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return result, overlay


def _overlay_data_url(data: bytes, heatmap: Any) -> str:
    """The heatmap over a display-size copy of the photo, as a PNG data URL (never saved)."""
    from PIL import Image

    from aiornot import plots, transforms
    from aiornot.imageio import open_image

    pixels = open_image(data).pixels
    height, width = pixels.shape[:2]
    scale = min(1.0, OVERLAY_MAX_SIDE / max(height, width))
    if scale < 1.0:
        pixels = transforms.resize(pixels, (max(1, round(width * scale)), max(1, round(height * scale))))
    buffer = io.BytesIO()
    # Fast compression: zlib's default level spends 0.3 s on a noisy photo for a one-off display image.
    Image.fromarray(plots.overlay(pixels, heatmap)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _to_response(result: Any, overlay: str | None, external_id: str | None) -> DetectResult:
    """A successful Result as the API's typed response; a failed one raises the matching 4xx."""
    if not result.ok:
        raise decode_error(result.error_code or "unreadable", result.error or "the image could not be read")
    data = result.to_dict(include_empty=True)
    for key in ("path", "error", "error_code", "heatmap"):
        data.pop(key, None)
    return DetectResult(**data, external_id=external_id, heatmap=overlay)


def _external_id(form: Form) -> str | None:
    value = form.text("external_id")
    if value is not None and len(value) > MAX_EXTERNAL_ID:
        raise _invalid("external_id", f"at most {MAX_EXTERNAL_ID} characters", f"{MAX_EXTERNAL_ID}자 이하로 보내 주세요.")
    return value


def _detector(request: Request) -> Any:
    state = request.app.state
    if state.detector is None:
        raise ApiError(503, "no_model", state.load_error or "no model is loaded",
                       "판별 모델이 준비되지 않았습니다. 관리자에게 문의해 주세요.", {"Retry-After": "60"})
    return state.detector


# ============================================================================================
# Routes
# ============================================================================================


def _register_routes(app: FastAPI, settings: Settings) -> None:
    # The key check (and its OpenAPI security scheme) exists only when a key is configured, so the
    # schema never claims a key is needed when it is not.
    keyed = [Depends(require_api_key)] if settings.api_key else []
    guarded = [*keyed, Depends(check_rate)]

    @app.post("/v1/detect", response_model=DetectResult, tags=["detect"], dependencies=guarded,
              summary="Is this photo AI-generated? / AI 생성 사진 판별",
              responses=_error_responses(400, 401, 413, 415, 422, 429, 503), openapi_extra=_DETECT_BODY)
    async def detect(request: Request) -> DetectResult:
        """Score one photo (multipart field ``image``). ``id_photo=true`` adds the face box, the
        face score and the ID-photo checks; ``heatmap=true`` adds the overlay image."""
        detector = _detector(request)
        with request.app.state.buffers.hold(_client_id(request)) as holding:
            form = await read_form(request, file_field="image", max_body=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
                                   max_file_bytes=settings.max_upload_bytes, max_files=1, holding=holding,
                                   max_parts=settings.max_parts, pace=BodyPace.from_settings(settings))
            image = _single_image(form, settings)
            id_photo, heatmap, external_id = form.flag("id_photo"), form.flag("heatmap"), _external_id(form)
            del form  # only the image bytes are needed from here on
            result, overlay = await run_model(request, _score, detector, image, id_photo, heatmap, pixels=declared_pixels(image))
        return _to_response(result, overlay, external_id)

    @app.post("/v1/detect/batch", response_model=BatchResponse, tags=["detect"], dependencies=guarded,
              summary="Score several photos / 여러 장 판별",
              responses=_error_responses(400, 401, 413, 415, 422, 429, 503), openapi_extra=_batch_body(settings.max_batch_files))
    async def detect_batch(request: Request) -> BatchResponse:
        """Score up to ``max_batch_files`` photos (field ``images``, repeated). One bad file gets an
        error entry with its own status; the others are still scored."""
        detector = _detector(request)
        with request.app.state.buffers.hold(_client_id(request)) as holding:
            form = await read_form(request, file_field="images", max_body=settings.max_batch_bytes,
                                   max_file_bytes=settings.max_upload_bytes, max_files=settings.max_batch_files, holding=holding,
                                   max_parts=settings.max_parts, pace=BodyPace.from_settings(settings))
            files = form.files("images")
            if not files:
                raise _missing("images")
            _rate_limit(request, cost=batch_cost(len(files), request.app.state.limiter.burst))
            _check_batch_pixels(files, settings)
            id_photo, external_id = form.flag("id_photo"), _external_id(form)
            items = [await _batch_item(request, detector, index, part, id_photo, settings) for index, part in enumerate(files)]
        scored = sum(item.result is not None for item in items)
        return BatchResponse(count=len(items), scored=scored, failed=len(items) - scored, external_id=external_id, items=items)

    @app.get("/healthz", response_model=HealthResponse, tags=["service"], responses={503: {"model": HealthResponse}},
             summary="Is the service ready?")
    async def healthz(request: Request) -> JSONResponse:
        """``ok`` with the model name, or 503 ``no_model`` with the reason; also what the page needs to know."""
        state = request.app.state
        ready = state.detector is not None
        health = HealthResponse(
            status="ok" if ready else "no_model", model=state.detector.name if ready else None,
            detail=None if ready else state.load_error, detail_ko=None if ready else "판별 모델이 준비되지 않았습니다.",
            api_key_required=bool(settings.api_key), max_upload_bytes=settings.max_upload_bytes,
            max_batch_files=settings.max_batch_files,
        )
        return JSONResponse(health.model_dump(), status_code=200 if ready else 503)

    # HEAD for load balancers' probes (same status, no body); kept out of the schema, one operation per path.
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)

    @app.get("/v1/models", response_model=ModelsResponse, tags=["service"], dependencies=keyed,
             responses=_error_responses(401, 503), summary="The loaded model, its thresholds and metrics")
    async def models(request: Request) -> ModelsResponse:
        """What the loaded model is: name, crop size, thresholds, calibration, metrics, training data."""
        return ModelsResponse(models=[ModelInfo(**_detector(request).info())])

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _register_docs(app)


def _register_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from files served here, never from a CDN (offline, nothing leaks to a third party).

    The assets come from the pinned ``fastapi-offline`` wheel (only its static files are used).
    Without it ``/docs`` says where the schema is instead of loading anything from elsewhere.
    """
    assets = _swagger_assets()
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        if assets is None:
            return JSONResponse({"openapi": "/openapi.json", "note": "Swagger UI assets are not installed (pip install fastapi-offline)"})
        return get_swagger_ui_html(openapi_url="/openapi.json", title="aiornot API", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/docs-assets/favicon.png")


def _swagger_assets() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def batch_cost(files: int, burst: int) -> int:
    """Tokens a batch takes beyond the one :func:`check_rate` took: one per file, the whole burst at most.

    Capped, because a batch larger than the burst could otherwise never pass (429 for ever); such
    a batch needs a full bucket, i.e. it counts as ``burst`` requests.
    """
    return max(0, min(files, burst) - 1)


def _check_batch_pixels(files: list[Part], settings: Settings) -> None:
    """413 before any decoding when the batch's declared pixels exceed ``max_batch_megapixels``."""
    total = sum(declared_pixels(part.data) for part in files if not part.overflow)
    limit = settings.max_batch_megapixels * MEGAPIXEL
    if total > limit:
        raise ApiError(413, "batch_too_many_pixels",
                       f"the batch holds {total / MEGAPIXEL:,.0f} megapixels, over the limit of {limit / MEGAPIXEL:g}; "
                       "send fewer or smaller photos per request",
                       f"한 번에 보낸 사진의 픽셀 수가 너무 많습니다(최대 {limit / MEGAPIXEL:g}메가픽셀). 사진을 나누어 보내 주세요.")


def _single_image(form: Form, settings: Settings) -> bytes:
    parts = form.files("image")
    if not parts:
        raise _missing("image")
    if parts[0].overflow:
        raise _too_large("file", settings.max_upload_bytes)
    return bytes(parts[0].data)


async def _batch_item(request: Request, detector: Any, index: int, part: Part, id_photo: bool, settings: Settings) -> BatchItem:
    """Score one file of a batch; its failure becomes this item's error, not the request's."""
    try:
        if part.overflow:
            raise _too_large("file", settings.max_upload_bytes)
        data = bytes(part.data)
        result, _ = await run_model(request, _score, detector, data, id_photo, False, pixels=declared_pixels(data))
        return BatchItem(index=index, filename=part.filename, status=200, result=_to_response(result, None, None))
    except ApiError as error:
        if error.code == "busy":
            raise  # the server, not the file, is the problem: the whole request should be retried
        return _batch_error(index, part, error)
    except Exception as error:  # noqa: BLE001 - a bug met on one file must not cost the caller the other results
        logger.error("unexpected error while scoring one file of a batch", exc_info=error)
        return _batch_error(index, part, _internal_error())


def _batch_error(index: int, part: Part, error: ApiError) -> BatchItem:
    return BatchItem(index=index, filename=part.filename, status=error.status, error=ErrorBody(**error.body()["error"]))


# ============================================================================================
# The app
# ============================================================================================


def _load_detector(model_dir: str | None) -> tuple[Any, str | None]:
    """The detector, or None and the reason; a missing model must not stop the page from loading."""
    from aiornot.detector import Detector, ModelNotFoundError

    directory = model_dir or str(paths.DEFAULT_MODEL_DIR)
    # The public reason (on the open /healthz) names the folder, never its absolute path: that is
    # the operator's business and goes to the server log.
    folder = Path(directory).name or "models"
    try:
        detector = Detector.load(directory)
        _warm_up(detector)
    except ModelNotFoundError as error:
        logger.warning("%s", error)
        return None, f"no trained model in the model folder '{folder}'; the server log says where it looked"
    except Exception as error:  # noqa: BLE001 - a damaged model file: report it, keep serving the page
        logger.error("could not load the model in %s: %s", directory, error)
        return None, f"the model in '{folder}' could not be loaded ({type(error).__name__}); see the server log"
    logger.info("model %s loaded from %s", detector.name, directory)
    return detector, None


def _warm_up(detector: Any) -> None:
    """Score a synthetic image once, so the first user does not wait for graph tracing."""
    import numpy as np

    from aiornot.imageio import DecodedImage

    pixels = np.full((96, 96, 3), 128, np.uint8)
    detector.predict(DecodedImage(pixels=pixels, format="PNG", original_mode="RGB"), provenance=False)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.detector, app.state.load_error = await anyio.to_thread.run_sync(_load_detector, settings.model_dir)
    if app.state.detector is None:
        logger.warning("no model: %s", app.state.load_error)
    yield


async def _on_api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    if isinstance(error, ClientGone):
        logger.debug("a client disconnected during its upload")  # routine on mobile networks: no traceback
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _on_disconnect(_request: Request, _error: Exception) -> JSONResponse:
    # A disconnect met outside the body reader (e.g. a handler that reads the body itself).
    return await _on_api_error(_request, ClientGone())


async def _on_http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    texts = {404: ("not_found", "no such page or endpoint", "요청한 주소가 없습니다."),
             405: ("method_not_allowed", "this endpoint does not accept that method", "이 주소는 해당 요청 방식을 지원하지 않습니다.")}
    code, message, message_ko = texts.get(error.status_code, ("http_error", str(error.detail), "요청을 처리할 수 없습니다."))
    return JSONResponse(ApiError(error.status_code, code, message, message_ko).body(), status_code=error.status_code,
                        headers=getattr(error, "headers", None))


async def _on_validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    where = ", ".join(".".join(str(p) for p in item.get("loc", ())) for item in error.errors()) or "request"
    body = ApiError(422, "invalid_request", f"invalid request: {where}", f"요청 값이 올바르지 않습니다: {where}").body()
    return JSONResponse(body, status_code=422)


async def _on_unexpected_error(_request: Request, error: Exception) -> JSONResponse:
    # The traceback goes to the operator's log (it holds code, never the upload); the user gets JSON.
    logger.error("unexpected error while handling a request", exc_info=error)
    return JSONResponse(_internal_error().body(), status_code=500)


def _internal_error() -> ApiError:
    return ApiError(500, "internal_error", "an unexpected error occurred; the photo was not stored",
                    "예상하지 못한 오류가 발생했습니다. 사진은 저장되지 않았습니다. 관리자에게 문의해 주세요.")


_PAGE_HEADERS = {
    # The page loads nothing from elsewhere: no CDN, no fonts, no analytics (it must work offline).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Pure ASGI middleware adding headers to every response (it never touches the body stream)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _headers_for(scope.get("path", ""))

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                added = [(name.lower().encode(), value.encode()) for name, value in extra.items()]
                message = {**message, "headers": headers + [item for item in added if item[0] not in present]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _headers_for(path: str) -> dict[str, str]:
    headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if path == "/" or path.startswith("/static"):
        headers.update(_PAGE_HEADERS)
    elif path.startswith("/v1/"):
        headers["Cache-Control"] = "no-store"  # results describe a person's photo
    return headers


def create_app(model_dir: str | None = None, *, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app; the model comes from ``model_dir``, ``AIORNOT_MODEL_DIR`` or models/default.

    The model is loaded once, at startup. Without one the page and ``/healthz`` still answer and
    the detect endpoints return 503 ``no_model``.
    """
    settings = settings or Settings.from_env()
    if model_dir is not None:
        settings = replace(settings, model_dir=str(model_dir))
    app = FastAPI(
        title="aiornot", version=__version__, lifespan=_lifespan, docs_url=None, redoc_url=None,  # /docs: see _register_docs
        description="Tell AI-generated photos (above all ID photos, 증명사진) from camera photos. "
                    "An 'AI' verdict is a reason for a human check, not proof. Photos are analysed in memory and never stored.",
    )
    app.state.settings = settings
    app.state.detector, app.state.load_error = None, "the service is starting"
    app.state.limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
    app.state.buffers = BufferBudget(settings.max_buffer_bytes, settings.max_client_buffer_bytes)
    app.state.pixels = PixelBudget(int(settings.max_inflight_megapixels * MEGAPIXEL))
    # anyio binds the semaphore to the event loop lazily, at first use: safe to create here.
    app.state.model_slots = anyio.Semaphore(settings.max_concurrency)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(ClientDisconnect, _on_disconnect)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
    app.add_middleware(SecurityHeaders)
    _register_routes(app, settings)
    return app
