"""The error catalogue: every refusal as ``{"error": {"code", "message", "message_ko"}}``, never a traceback.

:class:`ApiError` carries a stable code and the messages in English and Korean (their words are the
``service.error.*`` entries of :mod:`aiornot.contract.messages`; :meth:`ApiError.of` builds one from its
entry); the functions below build the errors more than one room raises, and :func:`register_handlers`
turns every exception an app can meet into that JSON shape.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from aiornot.contract.messages import message
from aiornot.io.decode import ALLOWED_FORMATS, HEIC_ADVICE
from aiornot.apps.service.responses import display_name
from aiornot.apps.service.settings import MB

logger = logging.getLogger(__name__)
#: Longest unknown form-field name quoted back in an error (characters).
MAX_FIELD_NAME_SHOWN = 64


class ApiError(Exception):
    """A request the service refuses, with a stable code and messages in English and Korean."""

    def __init__(self, status: int, code: str, message: str, message_ko: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_ko = status, code, message, message_ko
        self.headers = headers or {}

    @classmethod
    def of(cls, status: int, code: str, headers: dict[str, str] | None = None, **fields: Any) -> "ApiError":
        """The error ``code`` with the words of the catalogue's entry ``service.error.<code>``, ``fields`` filled in."""
        words = message(f"service.error.{code}", **fields)
        return cls(status, code, words.en, words.ko, headers)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "message_ko": self.message_ko}}


FORMATS_TEXT = ", ".join(ALLOWED_FORMATS)
#: Decoder error code → HTTP status. The English message comes from the decoder (it names the detail), the
#: Korean from the catalogue (``service.error.decode.<code>``).
_DECODE_STATUS: dict[str, int] = {
    "empty": 400, "not_an_image": 415, "unsupported_format": 415, "file_too_large": 413, "too_many_pixels": 413,
    "too_much_metadata": 413, "too_small": 422, "corrupt": 422,
}


def decode_error(code: str, detail: str) -> ApiError:
    """The API error for a decoder failure (``Result.error_code`` / ``ImageDecodeError.code``) and its message."""
    entry = code if code in _DECODE_STATUS else "other"
    if code == "unsupported_format" and detail.startswith(HEIC_ADVICE):
        entry = "unsupported_heic"  # the iPhone's own setting, in Korean too
    korean = message(f"service.error.decode.{entry}", formats=FORMATS_TEXT).ko
    return ApiError(_DECODE_STATUS.get(code, 422), code, detail, korean)


def too_large(what: str, limit: int) -> ApiError:
    return ApiError.of(413, "file_too_large" if what == "file" else "request_too_large", megabytes=f"{limit / MB:g}")


def unknown_field(name: str, known: Sequence[str]) -> ApiError:
    """A form field the endpoint does not read: a misspelt ``id_photo`` must not silently turn a check off."""
    near = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    listed = ", ".join(known)
    name = display_name(name[:MAX_FIELD_NAME_SHOWN]) or ""  # the client's words: shown safely, and not at any length
    words = (message("service.error.unknown_field_near", name=name, near=near[0], known=listed) if near
             else message("service.error.unknown_field", name=name, known=listed))
    return ApiError(422, "unknown_field", words.en, words.ko)


def missing_field(name: str) -> ApiError:
    return ApiError.of(422, "missing_field", name=name)


def invalid_field(name: str, expected: str, **fields: Any) -> ApiError:
    """The field ``name`` is not what the catalogue's ``service.expected.<expected>`` (``fields`` filled in) says."""
    words, wanted = message("service.error.invalid_field"), message(f"service.expected.{expected}", **fields)
    return ApiError(422, "invalid_field", words.en.format(name=name, expected=wanted.en),
                    words.ko.format(name=name, expected=wanted.ko))


def busy(retry_after: int) -> ApiError:
    return ApiError.of(503, "busy", {"Retry-After": str(retry_after)})


def too_slow(why: str) -> ApiError:
    # Connection: close — the rest of a stalled body must not keep the connection (and its slot) alive.
    return ApiError.of(408, "upload_too_slow", {"Connection": "close"}, why=why)


class ClientGone(ApiError):
    """The client closed the connection before its body arrived: nobody is left to answer."""

    def __init__(self) -> None:
        words = message("service.error.client_disconnected")
        super().__init__(400, "client_disconnected", words.en, words.ko)


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
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    body = ApiError.of(error.status_code, code, detail=str(error.detail)).body()
    return JSONResponse(body, status_code=error.status_code, headers=getattr(error, "headers", None))


async def _on_validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    where = ", ".join(".".join(str(p) for p in item.get("loc", ())) for item in error.errors()) or "request"
    body = ApiError.of(422, "invalid_request", where=where).body()
    return JSONResponse(body, status_code=422)


async def _on_unexpected_error(_request: Request, error: Exception) -> JSONResponse:
    # The traceback goes to the operator's log (it holds code, never the upload); the user gets JSON.
    logger.error("unexpected error while handling a request", exc_info=error)
    return JSONResponse(internal_error().body(), status_code=500)


def internal_error() -> ApiError:
    return ApiError.of(500, "internal_error")


def register_handlers(app: FastAPI) -> None:
    """Answer every exception the app can meet with the error JSON (a bug too: 500, logged, no traceback sent)."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(ClientDisconnect, _on_disconnect)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
