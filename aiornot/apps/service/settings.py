"""The service's limits, read from ``AIORNOT_*`` environment variables into one frozen object.

:class:`Settings` is a ``pydantic-settings`` model: each field names its environment variable
(its validation alias) and, where the variable counts in larger units than the field (MB, KB/s),
that unit. ``Settings(...)`` is exactly what it is given (tests and ``create_app`` build it so);
:meth:`Settings.from_env` adds the environment, where a blank variable counts as unset and a
malformed one is a one-line error that names it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

MB = 1024 * 1024
#: Room for the multipart framing and the small text fields around the image itself.
FORM_OVERHEAD_BYTES = 64 * 1024
MEGAPIXEL = 1_000_000
MAX_EXTERNAL_ID = 200


def _variable(name: str, default: Any, *, unit: int = 1) -> Any:
    """A field read from the environment variable ``name``, whose value counts in ``unit`` s of the field's."""
    return Field(default, validation_alias=name, json_schema_extra={"unit": unit})


class Settings(BaseSettings):
    """Service limits; :meth:`from_env` reads them from ``AIORNOT_*`` environment variables.

    ``rate_per_minute = 0`` turns the rate limit off; ``api_key = None`` leaves the API open.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True,
                                      case_sensitive=True)

    model_dir: str | None = _variable("AIORNOT_MODEL_DIR", None)
    max_upload_bytes: int = _variable("AIORNOT_MAX_UPLOAD_MB", 20 * MB, unit=MB)
    max_batch_files: int = _variable("AIORNOT_MAX_BATCH_FILES", 32)
    max_batch_bytes: int = _variable("AIORNOT_MAX_BATCH_MB", 64 * MB, unit=MB)
    max_buffer_bytes: int = _variable("AIORNOT_MAX_BUFFER_MB", 256 * MB, unit=MB)
    api_key: str | None = _variable("AIORNOT_API_KEY", None)
    rate_per_minute: float = _variable("AIORNOT_RATE_PER_MINUTE", 120.0)
    rate_burst: int = _variable("AIORNOT_RATE_BURST", 40)
    max_concurrency: int = _variable("AIORNOT_MAX_CONCURRENCY", 2)
    queue_timeout_s: float = _variable("AIORNOT_QUEUE_TIMEOUT_S", 10.0)
    #: One client's share of ``max_buffer_bytes``: stalled uploads from one address cannot fill it all.
    #: None: a quarter of it, and at least the largest request.
    max_client_buffer_bytes: int | None = _variable("AIORNOT_MAX_CLIENT_BUFFER_MB", None, unit=MB)
    #: Multipart parts per request (files and text fields together).
    max_parts: int = _variable("AIORNOT_MAX_PARTS", 64)
    #: The whole body must arrive within this many seconds ...
    body_timeout_s: float = _variable("AIORNOT_BODY_TIMEOUT_S", 60.0)
    #: ... with no pause longer than this ...
    body_idle_timeout_s: float = _variable("AIORNOT_BODY_IDLE_TIMEOUT_S", 10.0)
    #: ... and, after the first ``body_grace_s``, at this average rate at least (bytes per second).
    min_upload_bytes_per_s: int = _variable("AIORNOT_MIN_UPLOAD_KBPS", 16 * 1024, unit=1024)
    body_grace_s: float = _variable("AIORNOT_BODY_GRACE_S", 5.0)
    #: Decoded megapixels all requests may have in the model at once, and one batch may hold.
    max_inflight_megapixels: float = _variable("AIORNOT_MAX_INFLIGHT_MP", 128.0)
    max_batch_megapixels: float = _variable("AIORNOT_MAX_BATCH_MP", 256.0)
    #: Comma-separated proxy addresses whose X-Forwarded-For is believed (None: nobody's).
    trusted_proxies: str | None = _variable("AIORNOT_TRUSTED_PROXIES", None)
    #: Seconds a connection may take to send its request headers, and may stay idle between requests.
    header_timeout_s: float = _variable("AIORNOT_HEADER_TIMEOUT_S", 10.0)
    keep_alive_s: int = _variable("AIORNOT_KEEP_ALIVE_S", 5)
    #: With an API key set: whether ``/docs`` and ``/openapi.json`` need it too. Off by default: they
    #: describe the public contract and hold no secret, and a browser cannot send ``X-API-Key`` to
    #: open ``/docs`` (turn it on to keep the API's surface private; fetch the schema with the header).
    docs_require_key: bool = _variable("AIORNOT_DOCS_REQUIRE_KEY", False)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:  # one line naming the variable, not pydantic's report
            raise ValueError(_describe(error)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        # Settings(...) holds what it is given and nothing else; from_env() is the one way in for the environment.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; a malformed value is a clear startup error."""
        return cls(**_Environment(cls, os.environ if environ is None else environ)())

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"setting {name} ({ENV_VARIABLES[name][0]}) must not be negative, got {value}")
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
        return self

    @property
    def proxies(self) -> list[str]:
        """The trusted proxy addresses as a list (empty: X-Forwarded-For is ignored)."""
        return [item.strip() for item in (self.trusted_proxies or "").split(",") if item.strip()]


#: Each setting's environment variable and the unit its value counts in (field name → (variable, unit)).
ENV_VARIABLES: dict[str, tuple[str, int]] = {
    name: (str(field.validation_alias), int(field.json_schema_extra["unit"]))  # type: ignore[index]
    for name, field in Settings.model_fields.items()
}


class _Environment(EnvSettingsSource):
    """The ``AIORNOT_*`` variables of ``environ``: names as written, blank values unset, MB and KB/s scaled to the field's unit."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value.strip() for name, value in self._environ.items() if name.startswith("AIORNOT_") and value.strip()}

    def prepare_field_value(self, field_name: str, field: Any, value: Any, value_is_complex: bool) -> Any:
        unit = ENV_VARIABLES[field_name][1]
        if unit != 1 and value is not None:
            try:
                return int(float(value) * unit)
            except (ValueError, OverflowError):  # left as it is: validation names the variable
                pass
        return super().prepare_field_value(field_name, field, value, value_is_complex)


#: What a value of each kind must look like, by pydantic's error type.
_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false"}


def _describe(error: ValidationError) -> str:
    """A pydantic report as one line: ``AIORNOT_X must be a number, not 'lots'``; a rule's own message as it is."""
    # The place pydantic names is the variable (from the environment) or the field (from Python).
    known = {key: pair for name, pair in ENV_VARIABLES.items() for key in (name, pair[0])}
    messages = []
    for item in error.errors(include_url=False):
        variable, unit = known.get(item["loc"][0], (item["loc"][0], 1)) if item["loc"] else (None, 1)
        kind = _KINDS.get(item["type"].split("_")[0])
        if kind and unit != 1:
            kind = _KINDS["float"]  # megabytes and KB/s may have a fraction
        if item["type"] == "value_error":
            messages.append(str(item["ctx"]["error"]))
        elif variable and kind:
            messages.append(f"{variable} must be {kind}, not {item['input']!r}")
        elif variable:
            messages.append(f"{variable}: {item['msg']} (got {item['input']!r})")
        else:
            messages.append(item["msg"])
    return "; ".join(messages)
