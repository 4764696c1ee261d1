"""Reading the body: bounded, in memory, never spooled to disk.

Starlette's own form parser spools file parts into a temporary file above 1 MB and reads the
whole body whatever its size, so the endpoints never call ``request.form()``: :func:`read_form`
streams the body through python-multipart's low-level parser straight into memory, counting
bytes as they arrive and stopping at the first byte over the limit.
"""

from __future__ import annotations

import codecs
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio
from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from aiornot.contract.messages import message
from aiornot.apps.service.errors import ApiError, ClientGone, invalid_field, too_large, too_slow, unknown_field
from aiornot.apps.service.limits import Holding
from aiornot.apps.service.settings import Settings

#: python-multipart logs a WARNING for every malformed body, with a byte of that body in it: one
#: line per hostile request, carrying the client's data. The parser's error is raised all the same
#: (and answered with 400 bad_multipart), so its log lines go to this logger, which drops them.
_QUIET = logging.getLogger("aiornot.apps.service.multipart.parser")
_QUIET.setLevel(logging.CRITICAL + 1)  # a level, not `disabled`: logging.config resets `disabled`
_QUIET.propagate = False

MAX_TEXT_FIELD_BYTES = 1024
#: Longest multipart part header line (Content-Disposition with a long file name fits easily).
MAX_PART_HEADER_BYTES = 8 * 1024


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
            raise invalid_field(name, "at_most_bytes", limit=MAX_TEXT_FIELD_BYTES)
        try:
            return part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_field(name, "utf8") from None

    def require_known(self, known: tuple[str, ...]) -> None:
        """Refuse (422 ``unknown_field``) a field the endpoint does not read, with the near name if one is close."""
        for part in self.parts:
            if part.name not in known:
                raise unknown_field(part.name, known)

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
        raise invalid_field(name, "boolean")


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
            raise ApiError.of(413, "too_many_parts", limit=self.max_parts)
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
            raise ApiError.of(413, "too_many_files", limit=self.max_files)

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
            raise too_slow(why)
        with anyio.move_on_after(wait) as timer:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except ClientDisconnect:
                raise ClientGone() from None
        if timer.cancelled_caught:
            raise too_slow(why)
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
        raise too_large("request", max_body)  # refused before a single byte is read
    collector = _PartCollector(charset, max_file_bytes, max_files, file_field, max_parts)
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        parser.logger = _QUIET  # its WARNING per malformed body names a byte of the body
        received = 0
        async for chunk in paced_chunks(request, pace or BodyPace()):
            received += len(chunk)
            if received > max_body:
                raise too_large("request", max_body)
            holding.charge(len(chunk))
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        # The parser's own message can quote a byte of the body: it is not repeated to anyone.
        raise ApiError.of(400, "bad_multipart") from None
    if not collector.finished:
        cut_off = message("service.error.multipart_cut_off")
        raise ApiError(400, "bad_multipart", cut_off.en, cut_off.ko)
    return Form(collector.parts)


def _multipart_boundary(request: Request) -> tuple[bytes, str]:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError.of(415, "not_multipart")
    charset = options.get(b"charset", b"utf-8").decode("latin-1")
    try:
        return boundary, codecs.lookup(charset).name
    except LookupError:
        return boundary, "utf-8"
