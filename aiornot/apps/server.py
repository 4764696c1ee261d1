"""How ``aiornot serve`` runs the app: uvicorn with the connection-level limits the app cannot set.

The FastAPI app (:mod:`aiornot.apps.service`) only sees a request once its headers are complete. What
happens before that belongs to the HTTP server, and uvicorn's defaults suit a trusted network,
not an open one:

* **Header timeout.** uvicorn waits for headers for ever: 50 connections with half-sent headers
  stay open indefinitely. :class:`GuardedH11Protocol` closes a connection whose request headers are
  not complete within ``AIORNOT_HEADER_TIMEOUT_S`` (with a JSON 408 if it sent anything).
  Idle keep-alive connections close after ``AIORNOT_KEEP_ALIVE_S`` (uvicorn's ``timeout_keep_alive``).
* **Header size.** uvicorn's ``h11_max_incomplete_event_size`` (set to ``H11_MAX_HEADER_BYTES``) only
  bounds headers that are still *incomplete*: h11 checks it while waiting for more bytes, so a
  60,000-byte header that arrived in one packet was parsed and answered 200. The protocol here
  counts the request head itself as it arrives, however it is split, and answers 431 above the limit.
* **Protocol errors in the JSON shape.** uvicorn answers a malformed request with a plain-text
  400; here it is ``{"error": {"code": "bad_request", ...}}`` like every other error.
* **Half-closed connections.** A client that sends its request and then shuts down its side
  (``shutdown(SHUT_WR)``, common with HTTP/1.0 tools) got no answer: asyncio closed the whole
  transport on EOF. Here the response is still written.
* **Proxy headers.** uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 by default, so anything on
  the same host could rotate its apparent address past the rate limit. Here proxy headers are
  used only when ``AIORNOT_TRUSTED_PROXIES`` names the proxy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from aiornot.apps.service import Settings
from aiornot.contract.messages import message

logger = logging.getLogger("aiornot.apps.server")

#: Request line plus headers; h11's default (16 KiB) written out so the limit is stated here.
H11_MAX_HEADER_BYTES = 16 * 1024


def error_bytes(status: int, reason: str, code: str, **fields: Any) -> bytes:
    """A complete HTTP/1.1 response in the API's JSON error shape (the words of the catalogue's
    ``service.error.<code>``, ``fields`` filled in), closing the connection."""
    words = message(f"service.error.{code}", **fields)
    body = json.dumps({"error": {"code": code, "message": words.en, "message_ko": words.ko}}, ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode("ascii") + body


BAD_REQUEST = error_bytes(400, "Bad Request", "bad_request")
HEADERS_TOO_LARGE = error_bytes(431, "Request Header Fields Too Large", "headers_too_large", kib=H11_MAX_HEADER_BYTES // 1024)
#: The blank line that ends a request head (h11 accepts a bare LF too).
_HEAD_END = re.compile(rb"\n\r?\n")
HEADER_TIMEOUT = error_bytes(408, "Request Timeout", "header_timeout")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout, JSON protocol errors and half-close support."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            self._send_raw(HEADERS_TOO_LARGE)
            return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in: the app's pace rules now
            self._disarm_header_timer()
            self._head_seen, self._head_tail = 0, b""

    def on_response_complete(self) -> None:
        self._head_seen, self._head_tail = 0, b""  # the next request's head is counted from zero
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        # True keeps the transport open for writing: the request in progress still gets its answer.
        # With nothing in progress there is nobody to answer; asyncio then closes the connection.
        in_progress = self.cycle is not None and not self.cycle.response_complete
        return True if in_progress else None

    def send_400_response(self, msg: str) -> None:
        # h11's reason can quote the offending bytes (an illegal chunk header is body data): not logged.
        logger.debug("invalid HTTP request (%d characters of parser detail not logged)", len(msg))
        self._send_raw(BAD_REQUEST)

    # ------------------------------------------------------------------------------ internals
    def _head_too_large(self, data: bytes) -> bool:
        """Whether the request head, counted across packets up to its blank line, exceeds the limit.

        The last bytes of the previous packet are searched with this one, so a blank line split
        between two packets is still found (and a body in the same packet is not counted).
        """
        seen, tail = getattr(self, "_head_seen", 0), getattr(self, "_head_tail", b"")
        end = _HEAD_END.search(tail + data)
        head = seen + (end.end() - len(tail) if end else len(data))
        self._head_seen, self._head_tail = seen + len(data), (tail + data)[-2:]
        return head > H11_MAX_HEADER_BYTES

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._on_header_timeout)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being written for the previous request
        # Bytes of a next request have arrived (partial headers): say why it is closed; else close quietly.
        partial = bool(self.conn.trailing_data[0])
        self._send_raw(HEADER_TIMEOUT if partial else b"")

    def _send_raw(self, response: bytes) -> None:
        # Written directly, not through h11: h11 refuses to send a response before a request arrived.
        if response and not self.transport.is_closing():
            self.transport.write(response)
        self.transport.close()


class QuietProtocolErrors(logging.Filter):
    """Drop uvicorn's WARNING per malformed request: a flood of garbage must not become a flood of log lines.

    The client still gets its JSON 400; :meth:`GuardedH11Protocol.send_400_response` logs it at DEBUG.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."


def _quiet_protocol_errors() -> None:
    target = logging.getLogger("uvicorn.error")
    if not any(isinstance(item, QuietProtocolErrors) for item in target.filters):
        target.addFilter(QuietProtocolErrors())


def protocol_class(settings: Settings) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` carrying this server's header timeout (uvicorn takes a class)."""
    return type("ConfiguredH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": settings.header_timeout_s})


def uvicorn_config(app: Any, *, host: str, port: int, settings: Settings | None = None, log_level: str = "info",
                   factory: bool = False, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration every ``aiornot serve`` uses (also the tests' and the soak's live servers).

    ``overrides`` go to :class:`uvicorn.Config` as they are (the tests pass ``log_config=None``).
    """
    settings = settings or Settings.from_env()
    proxies = settings.proxies
    config = uvicorn.Config(
        app, factory=factory, host=host, port=port, log_level=log_level, **overrides,
        access_log=False,  # access logs would record clients; uploads are never logged either
        http=protocol_class(settings), ws="none", lifespan="on",
        timeout_keep_alive=settings.keep_alive_s, h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
        # Proxy headers only from the named proxies; uvicorn's own default would trust 127.0.0.1.
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or [],
    )
    _quiet_protocol_errors()  # after Config: it (re)configures uvicorn's loggers
    return config


def run(*, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``aiornot.apps.service:create_app`` until interrupted."""
    settings = Settings.from_env()  # a malformed AIORNOT_* value stops the start with a clear message
    uvicorn.Server(uvicorn_config("aiornot.apps.service:create_app", factory=True, host=host, port=port,
                                  settings=settings, log_level=log_level)).run()
