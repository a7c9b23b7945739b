"""Standard Webhooks signatures, checked by the scheme's reference library (``standardwebhooks``),
for both kinds of subscription secret; and the rule for a ``whsec_`` secret at subscription."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notify.domain.signing import (
    decode_standard_secret,
    signing_key,
    standard_headers,
    standard_secret,
)
from services.notify.schemas import SubscriptionIn

BODY = b'{"event_id":"x","type":"risk.village.frozen"}'
WEBHOOK_ID = "0b9b1c47-53a1-4f0e-9d3e-1a6f3c1b2d4e"
LEGACY = "whsec-0123456789abcdef"  # what subscriptions had before: any text of 16+ characters
STANDARD = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def _headers(secret: str, body: bytes = BODY) -> dict[str, str]:
    return standard_headers(secret, WEBHOOK_ID, int(time.time()), body)


def test_a_standard_secret_verifies_with_the_reference_library_given_the_same_string() -> None:
    assert Webhook(STANDARD).verify(BODY, _headers(STANDARD)) == {"event_id": "x", "type": "risk.village.frozen"}
    assert signing_key(STANDARD) == bytes(range(32))


def test_a_legacy_secret_verifies_as_whsec_of_its_bytes() -> None:
    # The existing secret keeps working: the receiver's Standard Webhooks secret is derived.
    assert standard_secret(LEGACY) == "whsec_" + base64.b64encode(LEGACY.encode()).decode()
    Webhook(standard_secret(LEGACY)).verify(BODY, _headers(LEGACY))
    assert standard_secret(STANDARD) == STANDARD


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h: (BODY + b" ", h),
        lambda h: (BODY, h | {"webhook-id": WEBHOOK_ID[:-1] + "f"}),
        lambda h: (BODY, h | {"webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}),
        lambda h: (BODY, h | {"webhook-signature": h["webhook-signature"].replace("v1,", "v1a,")}),
    ],
    ids=["body", "id", "timestamp", "scheme"],
)
def test_a_changed_body_id_timestamp_or_scheme_fails(tamper: object) -> None:
    body, headers = tamper(_headers(STANDARD))  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError):
        Webhook(STANDARD).verify(body, headers)


def test_another_secret_fails() -> None:
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_secret("another-secret-xxxxxx")).verify(BODY, _headers(LEGACY))


def test_an_old_timestamp_is_refused_by_the_receiver() -> None:
    headers = standard_headers(STANDARD, WEBHOOK_ID, int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(STANDARD).verify(BODY, headers)


@given(key=st.binary(min_size=1, max_size=120), padded=st.booleans())
def test_a_whsec_secret_decodes_as_the_reference_library_decodes_it(key: bytes, padded: bool) -> None:
    encoded = base64.b64encode(key).decode()
    secret = "whsec_" + (encoded if padded else encoded.rstrip("="))
    assert decode_standard_secret(secret) == key
    # Signed with what the library derives from the same string, so it verifies.
    Webhook(secret).verify(BODY, _headers(secret))


@pytest.mark.parametrize(
    "secret", ["s3cret-of-the-subscriber", "whsec-0123456789abcdef", "whsec_not base64 at all!!", "whsec_a", "whsec_"]
)
def test_a_secret_not_in_whsec_form_is_used_as_its_bytes(secret: str) -> None:
    assert decode_standard_secret(secret) is None
    assert signing_key(secret) == secret.encode()


def _subscription(secret: str) -> SubscriptionIn:
    return SubscriptionIn.model_validate(
        {"url": "https://example.org/hook", "events": ["risk.village.frozen"], "secret": secret}
    )


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(bytes(23)).decode(),  # one byte short of the spec's 24
        "whsec_this is not base64!",
        "whsec_" + base64.b64encode(bytes(32)).decode()[:-2] + "*=",
    ],
)
def test_a_whsec_secret_that_is_not_base64_of_24_bytes_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="whsec_ is base64 of at least 24 bytes"):
        _subscription(secret)


@pytest.mark.parametrize(
    "secret", [STANDARD, STANDARD.rstrip("="), "whsec_" + base64.b64encode(bytes(24)).decode(), LEGACY]
)
def test_standard_and_legacy_secrets_are_accepted(secret: str) -> None:
    assert _subscription(secret).secret == secret
