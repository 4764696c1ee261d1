"""Property-based tests of the API against its own OpenAPI schema (schemathesis 4).

Schemathesis reads ``/openapi.json`` and generates requests for every operation, including
multipart uploads of arbitrary bytes and form values. Every response must be a documented status
with a body matching its documented schema, and never a 5xx. Bounded to a few examples per
operation; still marked slow (the schema is built and every operation called, under hypothesis).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from aiornot.apps.service import Settings, create_app

# Schema-valid bytes are rarely a decodable photo (422/415 is the right answer for them), and form
# fields are text, so "0" is a fine boolean: these two checks judge the wrong thing for an image API.
# Every other default check runs: no 5xx, documented status codes, response bodies and headers
# that match their schemas, content types.
NOT_APPLICABLE = [positive_data_acceptance, negative_data_rejection]

pytestmark = pytest.mark.slow

# Built at import: schemathesis needs the schema when tests are collected. (Its lazy
# `schemathesis.pytest.from_fixture` loader fails under pytest 9 — it sets `Function._nodeid`.)
app = create_app(settings=Settings(rate_per_minute=0))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def loaded_model(tiny_model_dir):
    """Point the app at the tiny model and run its startup, which loads it into app.state."""
    app.state.settings = app.state.settings.model_copy(update={"model_dir": str(tiny_model_dir)})
    with TestClient(app):
        assert app.state.detector is not None
        yield


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_generated_request_gets_a_documented_non_5xx_answer(case):
    response = case.call_and_validate(excluded_checks=NOT_APPLICABLE)
    assert response.status_code < 500
