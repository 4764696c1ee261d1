"""The endpoints: ``/v1/detect``, ``/v1/detect/batch``, ``/v1/models``, ``/v1/catalogue``, ``/healthz``, the page and ``/docs``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from aiornot.io.decode import DecodedImage, ImageDecodeError, ImageHeader, read_header
from aiornot.predict import read_input
from aiornot.contract.messages import message
from aiornot.contract.result import Catalogue, Result, catalogue
from aiornot.apps.service.errors import ApiError, decode_error, internal_error, invalid_field, missing_field, too_large
from aiornot.apps.service.limits import (batch_cost, check_batch_pixels, check_rate, client_id, rate_limit,
                                    require_api_key, run_model)
from aiornot.apps.service.multipart import BodyPace, Form, Part, read_form
from aiornot.apps.service.page import index_html
from aiornot.apps.service.openapi import DETECT_BODY, batch_body, bilingual, error_responses, register_docs
from aiornot.apps.service.render import overlay_data_url
from aiornot.apps.service.responses import (BatchItem, BatchResponse, DetectResult, ErrorBody, HealthResponse, ModelInfo,
                                       ModelsResponse)
from aiornot.apps.service.settings import FORM_OVERHEAD_BYTES, MAX_EXTERNAL_ID, Settings

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _score(detector: Any, header: ImageHeader, id_photo: bool, face_score: bool, heatmap: bool) -> tuple[Result, str | None]:
    """Score one upload in a worker thread; returns the Result and the overlay data URL.

    The header was parsed once, in :func:`read_headers`; the photo is decoded once, here, from that
    parse: the experts, the provenance checks and the overlay share the pixels. The Result comes
    back whole (its ``elapsed_ms`` counts the decoding too) and is sent as it is.
    """
    source = read_input(header)
    result = detector.predict(source, id_photo=id_photo, face_score=face_score, explain=heatmap)
    pixels = source.image.pixels if isinstance(source.image, DecodedImage) else None
    overlay = overlay_data_url(pixels, result.heatmap) if pixels is not None and result.heatmap is not None else None
    return result, overlay


def _score_batch(detector: Any, headers: list[ImageHeader], id_photo: bool, face_score: bool,
                 max_pixels: int) -> list[Result | Exception]:
    """Score a batch's readable uploads in one worker thread, one outcome per header, in order.

    ``predict_many`` gets the headers parsed once in :func:`read_headers` (never parsed again) and
    puts the photos, and their face crops when ``face_score`` asks for them, through the experts
    together, a pass closing once its decoded pixels reach ``max_pixels``. A bug met on one file must not cost the caller the
    others: when the batch raises, each file is scored alone from its bytes (its header parsed
    again, on this path only), and a file that still fails gets its exception as its outcome.
    """
    try:
        return list(detector.predict_many(headers, batch_size=max(1, len(headers)), id_photo=id_photo, face_score=face_score,
                                          max_batch_pixels=max_pixels))
    except Exception as error:  # noqa: BLE001 - find the file that broke the batch, keep the rest
        logger.error("unexpected error while scoring a batch; scoring its files one at a time", exc_info=error)
        return [_score_alone(detector, header.data, id_photo, face_score) for header in headers]
    finally:
        for header in headers:
            header.close()  # those the failed batch did not reach still hold Pillow's file


def _score_alone(detector: Any, data: bytes, id_photo: bool, face_score: bool) -> Result | Exception:
    try:
        return detector.predict(data, id_photo=id_photo, face_score=face_score)
    except Exception as error:  # noqa: BLE001 - reported as this file's 500, not the request's
        logger.error("unexpected error while scoring one file of a batch", exc_info=error)
        return error


def _header_or_error(data: bytes) -> ImageHeader | ApiError:
    try:
        return read_header(data)
    except ImageDecodeError as error:
        return decode_error(error.code, error.message)


async def read_headers(uploads: list[bytes]) -> list[ImageHeader | ApiError]:
    """Each upload's header, parsed in a worker thread (bounded by :mod:`aiornot.io.headers`, but
    still CPU work that must never hold the event loop); a file that fails gets its API error."""
    return await anyio.to_thread.run_sync(lambda: [_header_or_error(data) for data in uploads])


def _to_response(result: Result, overlay: str | None, external_id: str | None) -> DetectResult:
    """A successful Result as the API's typed response; a failed one raises the matching 4xx."""
    if not result.ok:
        raise decode_error(result.error_code or "unreadable", result.error or "the image could not be read")
    return DetectResult(**result.model_dump(exclude={"path", "error", "error_code"}), external_id=external_id, heatmap=overlay)


def _external_id(form: Form) -> str | None:
    value = form.text("external_id")
    if value is not None and len(value) > MAX_EXTERNAL_ID:
        raise invalid_field("external_id", "at_most_characters", limit=MAX_EXTERNAL_ID)
    return value


def _id_photo_options(form: Form) -> tuple[bool, bool]:
    """The form's ``id_photo`` and ``face_score`` flags; ``face_score`` alone is a 422 (the crop it scores
    is found in ID-photo mode only), answered before any scoring."""
    id_photo, face_score = form.flag("id_photo"), form.flag("face_score")
    if face_score and not id_photo:
        raise invalid_field("face_score", "needs_id_photo")
    return id_photo, face_score


def _detector(request: Request) -> Any:
    state = request.app.state
    if state.detector is None:
        no_model = message("service.error.no_model")
        raise ApiError(503, "no_model", state.load_error or no_model.en, no_model.ko, {"Retry-After": "60"})
    return state.detector


#: The form fields each endpoint reads; any other is refused, so a misspelt option cannot be ignored in silence.
DETECT_FIELDS = ("image", "id_photo", "face_score", "heatmap", "external_id")
BATCH_FIELDS = ("images", "id_photo", "face_score", "external_id")


def register_routes(app: FastAPI, settings: Settings) -> None:
    # The key check (and its OpenAPI security scheme) exists only when a key is configured, so the
    # schema never claims a key is needed when it is not.
    keyed = [Depends(require_api_key)] if settings.api_key else []
    guarded = [*keyed, Depends(check_rate)]

    @app.post("/v1/detect", response_model=DetectResult, tags=["detect"], dependencies=guarded,
              summary=bilingual("service.docs.detect"),
              responses=error_responses(400, 401, 413, 415, 422, 429, 503), openapi_extra=DETECT_BODY)
    async def detect(request: Request) -> DetectResult:
        """Score one photo (multipart field ``image``). ``id_photo=true`` adds the face box and the
        ID-photo checks; ``face_score=true`` (with ``id_photo``) also the face crop's own score,
        information only; ``heatmap=true`` adds the overlay image."""
        detector = _detector(request)
        with request.app.state.buffers.hold(client_id(request)) as holding:
            form = await read_form(request, file_field="image", max_body=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
                                   max_file_bytes=settings.max_upload_bytes, max_files=1, holding=holding,
                                   max_parts=settings.max_parts, pace=BodyPace.from_settings(settings))
            image = _single_image(form, settings)
            form.require_known(DETECT_FIELDS)
            (id_photo, face_score), heatmap, external_id = _id_photo_options(form), form.flag("heatmap"), _external_id(form)
            del form  # only the image bytes are needed from here on
            [header] = await read_headers([image])
            if isinstance(header, ApiError):
                raise header
            result, overlay = await run_model(request, _score, detector, header, id_photo, face_score, heatmap,
                                              pixels=header.pixels)
        return _to_response(result, overlay, external_id)

    @app.post("/v1/detect/batch", response_model=BatchResponse, tags=["detect"], dependencies=guarded,
              summary=bilingual("service.docs.detect_batch"),
              responses=error_responses(400, 401, 413, 415, 422, 429, 503), openapi_extra=batch_body(settings.max_batch_files))
    async def detect_batch(request: Request) -> BatchResponse:
        """Score up to ``max_batch_files`` photos (field ``images``, repeated). One bad file gets an
        error entry with its own status; the others are still scored."""
        detector = _detector(request)
        with request.app.state.buffers.hold(client_id(request)) as holding:
            form = await read_form(request, file_field="images", max_body=settings.max_batch_bytes,
                                   max_file_bytes=settings.max_upload_bytes, max_files=settings.max_batch_files, holding=holding,
                                   max_parts=settings.max_parts, pace=BodyPace.from_settings(settings))
            files = form.files("images")
            if not files:
                raise missing_field("images")
            form.require_known(BATCH_FIELDS)
            rate_limit(request, cost=batch_cost(len(files), request.app.state.limiter.burst))
            (id_photo, face_score), external_id = _id_photo_options(form), _external_id(form)
            headers = await read_headers([b"" if part.overflow else bytes(part.data) for part in files])
            check_batch_pixels(headers, settings)
            outcomes = await _score_readable(request, detector, files, headers, id_photo, face_score)
            items = [_batch_item(index, part, header, outcomes.get(index), settings)
                     for index, (part, header) in enumerate(zip(files, headers))]
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
            detail=None if ready else state.load_error, detail_ko=None if ready else message("service.health.no_model").ko,
            api_key_required=bool(settings.api_key), max_upload_bytes=settings.max_upload_bytes,
            max_batch_files=settings.max_batch_files,
        )
        return JSONResponse(health.model_dump(), status_code=200 if ready else 503)

    # HEAD for load balancers' probes (same status, no body); kept out of the schema, one operation per path.
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)

    @app.get("/v1/models", response_model=ModelsResponse, tags=["service"], dependencies=keyed,
             responses=error_responses(401, 503), summary="The loaded model, its thresholds and metrics")
    async def models(request: Request) -> ModelsResponse:
        """What the loaded model is: name, crop size, thresholds, calibration, metrics, training data."""
        return ModelsResponse(models=[ModelInfo(**_detector(request).info())])

    @app.get("/v1/catalogue", response_model=Catalogue, tags=["service"], summary="The verdict names and their messages")
    async def verdict_catalogue() -> Catalogue:
        """Every verdict the service returns, with its label and explanation in English and Korean
        (the page shows these; open like ``/healthz``, since it says nothing about a photo or the model)."""
        return catalogue()

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(index_html())

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    register_docs(app, settings)


def _single_image(form: Form, settings: Settings) -> bytes:
    parts = form.files("image")
    if not parts:
        raise missing_field("image")
    if parts[0].overflow:
        raise too_large("file", settings.max_upload_bytes)
    return bytes(parts[0].data)


async def _score_readable(request: Request, detector: Any, files: list[Part], headers: list[ImageHeader | ApiError],
                          id_photo: bool, face_score: bool) -> dict[int, Result | Exception]:
    """Score every file whose header could be read, as one ``predict_many`` call; outcomes by file index.

    One model slot for the batch, and its declared pixels from the server's budget (capped at the
    budget: a batch larger than it runs alone, as one large photo does).
    """
    readable = [index for index, (part, header) in enumerate(zip(files, headers))
                if not part.overflow and not isinstance(header, ApiError)]
    if not readable:
        return {}
    batch = [headers[index] for index in readable]
    declared = [header.pixels for header in batch]
    limit = request.app.state.pixels.limit
    # predict_many closes a pass once its pixels reach the cap, so a pass holds less than the cap
    # plus its largest photo: this cap keeps every pass within what the budget grants (at most `limit`).
    per_pass = max(1, limit - max(declared))
    outcomes = await run_model(request, _score_batch, detector, batch, id_photo, face_score, per_pass, pixels=sum(declared))
    return dict(zip(readable, outcomes))


def _batch_item(index: int, part: Part, header: ImageHeader | ApiError, outcome: Result | Exception | None,
                settings: Settings) -> BatchItem:
    """One file's entry: its result, or the error this file alone met (too large, unreadable, a bug)."""
    try:
        if part.overflow:
            raise too_large("file", settings.max_upload_bytes)
        if isinstance(header, ApiError):
            raise header
        if not isinstance(outcome, Result):
            return _batch_error(index, part, internal_error())  # a bug, already logged where it was met
        return BatchItem(index=index, filename=part.filename, status=200, result=_to_response(outcome, None, None))
    except ApiError as error:
        return _batch_error(index, part, error)
    except Exception as error:  # noqa: BLE001 - a bug met on one file must not cost the caller the other results
        logger.error("unexpected error while answering for one file of a batch", exc_info=error)
        return _batch_error(index, part, internal_error())


def _batch_error(index: int, part: Part, error: ApiError) -> BatchItem:
    return BatchItem(index=index, filename=part.filename, status=error.status, error=ErrorBody(**error.body()["error"]))
