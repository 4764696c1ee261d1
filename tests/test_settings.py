"""The service's settings: AIORNOT_* variables through pydantic-settings, each error one line naming its variable."""

from __future__ import annotations

import pytest

from aiornot.apps.service.settings import ENV_VARIABLES, MB, Settings


def test_every_variable_is_read_in_its_own_unit():
    settings = Settings.from_env({"AIORNOT_MAX_BUFFER_MB": "300", "AIORNOT_MAX_UPLOAD_MB": "0.5", "AIORNOT_MIN_UPLOAD_KBPS": "8",
                                  "AIORNOT_MAX_INFLIGHT_MP": "64", "AIORNOT_DOCS_REQUIRE_KEY": "on", "AIORNOT_TRUSTED_PROXIES": "a, b"})
    assert settings.max_buffer_bytes == 300 * MB and settings.max_upload_bytes == MB // 2
    assert settings.min_upload_bytes_per_s == 8 * 1024 and settings.max_inflight_megapixels == 64.0
    assert settings.docs_require_key is True and settings.proxies == ["a", "b"]
    assert len({variable for variable, _ in ENV_VARIABLES.values()}) == len(ENV_VARIABLES) == len(Settings.model_fields)


def test_blank_and_differently_cased_variables_are_unset(monkeypatch):
    settings = Settings.from_env({"AIORNOT_RATE_BURST": "  ", "aiornot_max_parts": "1", "AIORNOT_API_KEY": ""})
    assert settings == Settings()
    # Settings(...) is what it is given; only from_env reads the process's environment.
    monkeypatch.setenv("AIORNOT_RATE_BURST", "7")
    assert Settings().rate_burst == 40 and Settings.from_env().rate_burst == 7


@pytest.mark.parametrize(("environ", "message"), [
    ({"AIORNOT_MAX_UPLOAD_MB": "lots"}, "AIORNOT_MAX_UPLOAD_MB must be a number, not 'lots'"),
    ({"AIORNOT_RATE_BURST": "5.5"}, "AIORNOT_RATE_BURST must be a whole number, not '5.5'"),
    ({"AIORNOT_DOCS_REQUIRE_KEY": "maybe"}, "AIORNOT_DOCS_REQUIRE_KEY must be true or false, not 'maybe'"),
    ({"AIORNOT_RATE_BURST": "-1"}, "setting rate_burst (AIORNOT_RATE_BURST) must not be negative, got -1"),
    ({"AIORNOT_MAX_BUFFER_MB": "1"}, "AIORNOT_MAX_BUFFER_MB must be at least AIORNOT_MAX_BATCH_MB"),
])
def test_a_bad_value_is_one_line_naming_the_variable(environ, message):
    with pytest.raises(ValueError) as caught:
        Settings.from_env(environ)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_settings_are_frozen():
    with pytest.raises(Exception, match="frozen"):
        Settings().api_key = "k"  # type: ignore[misc]
    assert Settings().model_copy(update={"model_dir": "m"}).model_dir == "m"
