"""The app factory: settings, limits and the model on ``app.state``, error handlers, security headers, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI

from aiornot import __version__
from aiornot.contract import paths
from aiornot.contract.messages import text
from aiornot.apps.service.errors import register_handlers
from aiornot.apps.service.limits import BufferBudget, PixelBudget, RateLimiter
from aiornot.apps.service.openapi import docs_guarded
from aiornot.apps.service.routes import register_routes
from aiornot.apps.service.settings import MEGAPIXEL, Settings

logger = logging.getLogger(__name__)


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

    from aiornot.io.decode import DecodedImage

    pixels = np.full((96, 96, 3), 128, np.uint8)
    detector.predict(DecodedImage(pixels=pixels, format="PNG", original_mode="RGB"), provenance=False)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.detector, app.state.load_error = await anyio.to_thread.run_sync(_load_detector, settings.model_dir)
    if app.state.detector is None:
        logger.warning("no model: %s", app.state.load_error)
    yield


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


#: Every other answer (JSON, the docs' assets) is data, never a page to run or frame.
_DATA_HEADERS = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def _headers_for(path: str) -> dict[str, str]:
    # Headers a response sets itself win (the /docs page sets its own policy): see SecurityHeaders.
    headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if path == "/" or path.startswith("/static"):
        headers.update(_PAGE_HEADERS)
    else:
        headers.update(_DATA_HEADERS)
    if path.startswith("/v1/"):
        headers["Cache-Control"] = "no-store"  # results describe a person's photo
    return headers


def create_app(model_dir: str | None = None, *, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app; the model comes from ``model_dir``, ``AIORNOT_MODEL_DIR`` or models/default.

    The model is loaded once, at startup. Without one the page and ``/healthz`` still answer and
    the detect endpoints return 503 ``no_model``.
    """
    settings = settings or Settings.from_env()
    if model_dir is not None:
        settings = settings.model_copy(update={"model_dir": str(model_dir)})
    app = FastAPI(
        title="aiornot", version=__version__, lifespan=_lifespan, docs_url=None, redoc_url=None,  # /docs: see register_docs
        openapi_url=None if docs_guarded(settings) else "/openapi.json",  # a guarded schema has its own route
        description=f"Tell AI-generated photos (above all ID photos, {text('service.docs.id_photo', 'ko')}) from camera photos. "
                    "An 'AI' verdict is a reason for a human check, not proof. Photos are analysed in memory and never stored.",
    )
    app.state.settings = settings
    app.state.detector, app.state.load_error = None, "the service is starting"
    app.state.limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
    app.state.buffers = BufferBudget(settings.max_buffer_bytes, settings.max_client_buffer_bytes)
    app.state.pixels = PixelBudget(int(settings.max_inflight_megapixels * MEGAPIXEL))
    # anyio binds the semaphore to the event loop lazily, at first use: safe to create here.
    app.state.model_slots = anyio.Semaphore(settings.max_concurrency)
    register_handlers(app)
    app.add_middleware(SecurityHeaders)
    register_routes(app, settings)
    return app
