"""What FastAPI cannot derive: the multipart request bodies (read by hand, see
:mod:`aiornot.apps.service.multipart`), the error responses, and ``/docs`` served offline."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from aiornot.contract.messages import message, text
from aiornot.apps.service.errors import FORMATS_TEXT
from aiornot.apps.service.limits import require_api_key
from aiornot.apps.service.responses import ErrorResponse
from aiornot.apps.service.settings import MAX_EXTERNAL_ID, Settings


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "empty file or malformed form", 401: "API key missing or wrong", 413: "file, request or pixel count too large",
        415: "not an image, unsupported format, or not multipart/form-data", 422: "missing or invalid field, damaged image",
        429: "rate limit; see Retry-After", 503: "no model loaded, or busy; see Retry-After",
    }
    return {status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses}


def _form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def bilingual(key: str) -> str:
    """The catalogue's entry ``key`` as the docs show it: ``English / Korean``."""
    words = message(key)
    return f"{words.en} / {words.ko}"


_OPTION_FIELDS: dict[str, Any] = {
    "id_photo": {"type": "boolean", "default": False, "description": f"ID-photo ({text('service.docs.id_photo', 'ko')}) mode: face box and ID checks"},
    "face_score": {"type": "boolean", "default": False,
                   "description": "with id_photo: also score the face crop alone (face_score); information only, never part of "
                                  "the verdict, about twice the scoring time; without id_photo: 422 invalid_field"},
    "external_id": {"type": "string", "maxLength": MAX_EXTERNAL_ID, "description": "your reference, echoed back"},
}
DETECT_BODY = _form_body({
    "image": {"type": "string", "format": "binary", "description": f"the photo ({FORMATS_TEXT})"},
    **_OPTION_FIELDS,
    "heatmap": {"type": "boolean", "default": False, "description": "add a PNG data URL of the heatmap overlay"},
}, ["image"])


def batch_body(max_files: int) -> dict[str, Any]:
    images = {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1, "maxItems": max_files,
              "description": f"up to {max_files} photos; a bad file gets its own error, the rest are scored"}
    return _form_body({"images": images, **_OPTION_FIELDS}, ["images"])


def register_docs(app: FastAPI, settings: Settings) -> None:
    """``/docs``: Swagger UI from files served here, never from a CDN (offline, nothing leaks to a third party).

    The assets come from the pinned ``fastapi-offline`` wheel (only its static files are used).
    Without it ``/docs`` says where the schema is instead of loading anything from elsewhere.
    The page gets its own Content-Security-Policy (its one inline script allowed by hash) and
    may not be framed. With ``AIORNOT_DOCS_REQUIRE_KEY`` and a key set, ``/docs`` and
    ``/openapi.json`` answer only with the key (the app is then made with ``openapi_url=None``).
    """
    assets = _swagger_assets()
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
    guard = [Depends(require_api_key)] if docs_guarded(settings) else []
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="aiornot API", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/docs-assets/favicon.png")
    headers = docs_headers(bytes(page.body))

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def docs() -> Any:
        if assets is None:
            return JSONResponse({"openapi": "/openapi.json", "note": "Swagger UI assets are not installed (pip install fastapi-offline)"})
        return HTMLResponse(bytes(page.body), headers=headers)

    if guard:
        @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
        async def openapi_schema() -> JSONResponse:
            return JSONResponse(app.openapi())


def docs_guarded(settings: Settings) -> bool:
    """Whether ``/docs`` and ``/openapi.json`` need the API key."""
    return bool(settings.api_key and settings.docs_require_key)


def docs_headers(page: bytes) -> dict[str, str]:
    """The Swagger page's policy: scripts from here plus its inline start-up script by hash, no framing."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
                      for script in re.findall(rb"<script>(.*?)</script>", page, flags=re.DOTALL))
    # Swagger UI sets inline styles from its script; 'unsafe-inline' for styles only (no script runs from a style).
    policy = (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
              "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    return {"Content-Security-Policy": policy, "X-Frame-Options": "DENY"}


def _swagger_assets() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None
