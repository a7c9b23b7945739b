"""Webhook signatures: Standard Webhooks 1.0, and the deprecated ``X-Vcredit`` scheme sent
beside it for one release (docs/webhooks.md).

**Standard Webhooks** (spec 1.0.0, standardwebhooks.com), what receivers should verify, with
any of its libraries (Python: ``standardwebhooks.Webhook(secret).verify(body, headers)``):

- ``webhook-id``: the event id. The same on every retry and redelivery, and the same for
  every subscription the event goes to: the receiver's idempotency key (at-least-once).
- ``webhook-timestamp``: this attempt's unix seconds. Receivers reject one more than 5
  minutes from their clock (replay protection).
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``.

**The key** is a subscription's secret, as the spec serialises secrets: ``whsec_`` followed
by base64 of the key bytes (new subscriptions should send such a secret, of at least 24
random bytes, the spec's minimum; schemas.py refuses a ``whsec_`` secret that is not one).
Any other secret, which every subscription made before had, is used as it is: the key is its
UTF-8 bytes, the key the old scheme uses, so an existing subscription keeps its secret (the
spec allows reusing a legacy secret) and its receiver configures ``whsec_`` + base64 of it
(``standard_secret``).

**Deprecated** ``X-Vcredit-Timestamp: <unix seconds>`` and ``X-Vcredit-Signature:
v1=<hex HMAC-SHA256(secret's UTF-8 bytes, "{timestamp}.{body}")>``, with ``X-Vcredit-Event-Id``
and ``X-Vcredit-Event-Type``: still sent this release, removed in the next.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
# Standard Webhooks 1.0, "Signing secret": random, at least 24 bytes.
MIN_KEY_BYTES = 24


# --- Standard Webhooks ---------------------------------------------------------------------


def decode_standard_secret(secret: str) -> bytes | None:
    """The key bytes of a ``whsec_<base64>`` secret (padding optional, as the reference
    libraries read it); None if ``secret`` is not in that form."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def signing_key(secret: str) -> bytes:
    """The HMAC key of a subscription's secret (the module's docstring says why)."""
    return decode_standard_secret(secret) or secret.encode()


def standard_secret(secret: str) -> str:
    """The ``whsec_`` secret a receiver gives a Standard Webhooks library for ``secret``."""
    return SECRET_PREFIX + base64.b64encode(signing_key(secret)).decode()


def standard_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return f"{SCHEME},{base64.b64encode(digest).decode()}"


def standard_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, webhook_id, timestamp, body),
    }


# --- deprecated: X-Vcredit-Signature ---------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed with the secret (deprecated scheme)."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"{SCHEME}={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True iff ``header`` carries a v1 signature of (timestamp, body) with ``secret`` and the
    timestamp is within ``tolerance`` seconds of ``now`` (deprecated scheme).

    The header may hold several comma-separated signatures (e.g. while a secret is rotated);
    one valid v1 signature suffices. Comparison is constant-time.
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    expected = signature(secret, sent_at, body)
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value.strip(), expected):
            return True
    return False
