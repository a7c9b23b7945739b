"""A webhook request's headers: a CloudEvent in HTTP binary mode, signed per Standard Webhooks,
with the deprecated X-Vcredit headers still beside them."""

from __future__ import annotations

import json
import time
from datetime import date

from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from standardwebhooks import Webhook

from services.notify.dispatcher import signed_headers
from services.notify.domain.signing import standard_secret, verify_signature
from shared.catalogue import VillageFreeze
from shared.events import new_event

SECRET = "s3cret-of-the-subscriber"


def test_a_webhook_is_a_signed_binary_mode_cloudevent_and_keeps_the_old_headers_for_now() -> None:
    event = new_event(
        "risk.village.frozen",
        "410102003001",
        VillageFreeze(
            village_code="410102003001",
            township_code="410102003",
            npl_ratio="0.0500",
            outstanding="100000.00",
            non_performing="5000.00",
            manual=False,
            reason="npl_over_threshold",
            business_date=date(2026, 5, 1),
        ),
    )
    body = event.to_bytes()
    now = int(time.time())
    headers = signed_headers(SECRET, event, body, now)

    assert Webhook(standard_secret(SECRET)).verify(body, headers) == json.loads(body)
    assert headers["webhook-id"] == str(event.event_id) and headers["webhook-timestamp"] == str(now)

    ce = from_http(HTTPMessage(headers=headers, body=body), JSONFormat())
    assert (ce.get_id(), ce.get_type(), ce.get_source()) == (str(event.event_id), event.type, "/vcredit/risk")
    assert ce.get_time() == event.occurred_at and ce.get_data() == json.loads(body)

    # Deprecated, sent for one more release (docs/webhooks.md).
    assert headers["X-Vcredit-Event-Id"] == str(event.event_id)
    assert headers["X-Vcredit-Event-Type"] == event.type
    assert verify_signature(SECRET, headers["X-Vcredit-Timestamp"], body, headers["X-Vcredit-Signature"], now=now)
    assert headers["Content-Type"] == "application/json" and headers["User-Agent"].startswith("vcredit-notify/")
