"""Nothing personal in the logs, in-process (issue 9): registry and scoring on both backends,
every logger captured at DEBUG, grepped for the ID numbers, names and tokens the flow used
(tests/support/pii_flow.py); tests/e2e/test_log_redaction.py does the same with `vcredit serve`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.registry.schemas import HouseholdIn
from tests.conftest import TOKEN, Infra
from tests.support import pii_flow
from tests.support.system import System
from vcredit.cluster import eventually


async def test_no_id_number_name_or_token_in_any_log_line(infra: Infra, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with System(infra, ["registry", "scoring"]) as system:
        # A handler failing on personal data it validates itself: the problem handler logs
        # the traceback (with pydantic's input_value) at ERROR.
        registry_app = system.apps["registry"]

        @registry_app.post("/v1/diagnostics/fail")
        async def fail() -> dict[str, str]:
            HouseholdIn.model_validate({"id_number": pii_flow.BROKEN_ID, "name": "x", "village_code": "v"})
            return {}

        async def wait(request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
            return await eventually(request, lambda r: r.is_success, what="a success", seconds=60)

        credentials = system.common.credentials_path
        exposure = await pii_flow.run(system["registry"], system["scoring"], TOKEN, credentials, wait)
        transport = httpx.ASGITransport(app=registry_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as raw:
            r = await raw.post("/v1/diagnostics/fail", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 500
        exposure.responses.append(r)
        exposure.id_numbers.add(pii_flow.BROKEN_ID)

    text = caplog.text
    messages = "\n".join(r.getMessage() for r in caplog.records)
    # The capture is real: request lines of the flow, the services' own records, the traceback.
    assert "HTTP Request: POST http://registry/v1/households" in text
    assert "HTTP Request: GET http://registry/v1/households?id_number=[REDACTED]" in text
    assert '401 Unauthorized"' in text
    assert "unhandled error on POST /v1/diagnostics/fail" in text and "ValidationError" in text
    assert "input_value='" + pii_flow.BROKEN_ID[:3] + "***********" in text
    found = pii_flow.leaks(text + messages, exposure)
    assert not found, "\n".join(found + pii_flow.lines_with(text, [f.split(" ", 2)[-1] for f in found])[:20])
    assert not pii_flow.response_leaks(exposure)
