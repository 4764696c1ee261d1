"""The service's limits, read from ``AIORNOT_*`` environment variables into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


MB = 1024 * 1024
#: Room for the multipart framing and the small text fields around the image itself.
FORM_OVERHEAD_BYTES = 64 * 1024
MEGAPIXEL = 1_000_000
MAX_EXTERNAL_ID = 200



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
    #: With an API key set: whether ``/docs`` and ``/openapi.json`` need it too. Off by default: they
    #: describe the public contract and hold no secret, and a browser cannot send ``X-API-Key`` to
    #: open ``/docs`` (turn it on to keep the API's surface private; fetch the schema with the header).
    docs_require_key: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; a malformed value is a clear startup error."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (variable, convert) in ENV_VARIABLES.items():
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    values[name] = convert(raw)
                except ValueError:
                    kind = "true or false" if convert is _flag else "a number"
                    raise ValueError(f"{variable} must be {kind}, not {raw!r}") from None
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


def _flag(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _megabytes(raw: str) -> int:
    return int(float(raw) * MB)


ENV_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
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
    "docs_require_key": ("AIORNOT_DOCS_REQUIRE_KEY", _flag),
}
