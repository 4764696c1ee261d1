"""The error catalogue: every refusal as ``{"error": {"code", "message", "message_ko"}}``, never a traceback.

:class:`ApiError` carries a stable code and the messages in English and Korean; the functions
below build the errors more than one room raises, and :func:`register_handlers` turns every
exception an app can meet into that JSON shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from aiornot.io.decode import ALLOWED_FORMATS
from aiornot.apps.service.settings import MB

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the service refuses, with a stable code and messages in English and Korean."""

    def __init__(self, status: int, code: str, message: str, message_ko: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_ko = status, code, message, message_ko
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "message_ko": self.message_ko}}


FORMATS_TEXT = ", ".join(ALLOWED_FORMATS)
#: Decoder error code → (HTTP status, Korean message). The English message comes from the decoder.
_DECODE_ERRORS: dict[str, tuple[int, str]] = {
    "empty": (400, "빈 파일입니다(0바이트). 사진 파일을 다시 선택해 주세요."),
    "not_an_image": (415, f"이미지 파일이 아닙니다. 사진 파일({FORMATS_TEXT})을 올려 주세요."),
    "unsupported_format": (415, f"지원하지 않는 이미지 형식입니다. {FORMATS_TEXT} 중 하나로 변환해 올려 주세요."),
    "file_too_large": (413, "파일이 너무 큽니다. 더 작은 파일을 올려 주세요."),
    "too_many_pixels": (413, "이미지의 픽셀 수가 너무 많습니다(압축 폭탄이거나 지나치게 큰 스캔). 크기를 줄여 올려 주세요."),
    "too_much_metadata": (413, "이미지 파일 머리부(마커·청크·메타데이터)가 비정상적으로 많습니다. 일반 프로그램으로 다시 저장해 올려 주세요."),
    "too_small": (422, "이미지가 너무 작습니다. 가로·세로 모두 16픽셀 이상이어야 합니다."),
    "corrupt": (422, "이미지 파일이 손상되었거나 일부만 전송되었습니다. 원본 파일을 다시 올려 주세요."),
}


def decode_error(code: str, message: str) -> ApiError:
    """The API error for a decoder failure (``Result.error_code`` / ``ImageDecodeError.code``)."""
    status, message_ko = _DECODE_ERRORS.get(code, (422, "이미지를 읽을 수 없습니다. 다른 파일로 다시 시도해 주세요."))
    return ApiError(status, code, message, message_ko)


def too_large(what: str, limit: int) -> ApiError:
    megabytes = f"{limit / MB:g}"
    return ApiError(413, "file_too_large" if what == "file" else "request_too_large",
                    f"the {what} is larger than the limit of {megabytes} MB",
                    f"{'파일' if what == 'file' else '요청'}이 너무 큽니다. 최대 {megabytes} MB까지 보낼 수 있습니다.")


def missing_field(name: str) -> ApiError:
    return ApiError(422, "missing_field", f"the form field '{name}' is missing; send the photo as a file field '{name}'",
                    f"'{name}' 항목이 없습니다. 사진 파일을 '{name}' 필드로 보내 주세요.")


def invalid_field(name: str, expected: str, expected_ko: str) -> ApiError:
    return ApiError(422, "invalid_field", f"the form field '{name}' must be {expected}",
                    f"'{name}' 항목의 값이 올바르지 않습니다. {expected_ko}")


def busy(retry_after: int) -> ApiError:
    return ApiError(503, "busy", "the server is busy; try again in a few seconds",
                    "서버가 바쁩니다. 잠시 후 다시 시도해 주세요.", {"Retry-After": str(retry_after)})


def too_slow(why: str) -> ApiError:
    # Connection: close — the rest of a stalled body must not keep the connection (and its slot) alive.
    return ApiError(408, "upload_too_slow", f"the upload was too slow ({why}); check the connection and send it again",
                    "업로드가 너무 느립니다. 네트워크 연결을 확인한 뒤 다시 보내 주세요.", {"Connection": "close"})


class ClientGone(ApiError):
    """The client closed the connection before its body arrived: nobody is left to answer."""

    def __init__(self) -> None:
        super().__init__(400, "client_disconnected", "the client disconnected before the upload was complete",
                         "업로드가 끝나기 전에 연결이 끊겼습니다.")


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
    return JSONResponse(internal_error().body(), status_code=500)


def internal_error() -> ApiError:
    return ApiError(500, "internal_error", "an unexpected error occurred; the photo was not stored",
                    "예상하지 못한 오류가 발생했습니다. 사진은 저장되지 않았습니다. 관리자에게 문의해 주세요.")


def register_handlers(app: FastAPI) -> None:
    """Answer every exception the app can meet with the error JSON (a bug too: 500, logged, no traceback sent)."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(ClientDisconnect, _on_disconnect)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
