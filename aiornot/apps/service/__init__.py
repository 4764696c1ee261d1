"""The web service: the REST API and the offline web page, served by one FastAPI app.

``aiornot serve`` runs ``uvicorn aiornot.apps.service:create_app --factory``. Every photo is scored by
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
* Limits: upload size (checked while reading), header structure (JPEG markers and PNG chunks
  walked with caps before Pillow parses them, :mod:`aiornot.io.headers`), pixel count (the decoder
  rejects bombs before decoding), formats (the decoder's list), batch size, multipart parts, memory held by bodies in
  flight (with a per-client share of it), decoded megapixels in flight and per batch, a token bucket
  per client address (failed API-key attempts spend it) and per known-good key, an optional API
  key, and a semaphore around the CPU-bound model call.
* Nothing CPU-heavy runs on the event loop: each upload's header is parsed once, in a worker
  thread (:func:`~aiornot.apps.service.routes.read_headers`), and that parse serves the pixel budget,
  the decoder and provenance, which run with the model in a worker thread too. A batch is one
  ``predict_many`` call (one model slot, one expert pass per pass of its pixels).
* Slow clients: a body must arrive within a deadline, without long pauses and above a minimum
  rate, or it gets 408 and the connection is closed; the header timeout and the JSON shape of
  protocol errors live in :mod:`aiornot.apps.server` (the uvicorn side).

Every user mistake gets a 4xx JSON ``{"error": {"code", "message", "message_ko"}}``, never a
traceback.

The rooms: :mod:`~aiornot.apps.service.settings` (limits from the environment), :mod:`~aiornot.apps.service.errors`
(the error catalogue and handlers), :mod:`~aiornot.apps.service.multipart` (the bounded body reader),
:mod:`~aiornot.apps.service.limits` (memory budget, rate limit, API key, pixels, concurrency),
:mod:`~aiornot.apps.service.responses` (typed responses), :mod:`~aiornot.apps.service.openapi` (request
bodies, ``/docs``), :mod:`~aiornot.apps.service.render` (the heatmap PNG), :mod:`~aiornot.apps.service.page`
(the page with the catalogue's words written in), :mod:`~aiornot.apps.service.routes`
and :mod:`~aiornot.apps.service.app` (middleware and :func:`create_app`).
"""

from __future__ import annotations

from aiornot.apps.service.app import SecurityHeaders, create_app
from aiornot.apps.service.errors import ApiError, ClientGone, decode_error
from aiornot.apps.service.limits import BufferBudget, Holding, PixelBudget, RateLimiter, batch_cost, declared_pixels, run_model
from aiornot.apps.service.multipart import BodyPace, Form, Part, read_form
from aiornot.apps.service.settings import MB, MEGAPIXEL, Settings

__all__ = [
    "MB", "MEGAPIXEL", "ApiError", "BodyPace", "BufferBudget", "ClientGone", "Form", "Holding", "Part", "PixelBudget",
    "RateLimiter", "SecurityHeaders", "Settings", "batch_cost", "create_app", "decode_error", "declared_pixels",
    "read_form", "run_model",
]
