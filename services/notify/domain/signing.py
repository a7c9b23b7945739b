"""Webhook signatures (HMAC-SHA256), the same scheme on both sides.

The sender signs ``f"{timestamp}.{body}"`` with the subscription's secret and sends
``X-Vcredit-Timestamp: <unix seconds>`` and ``X-Vcredit-Signature: v1=<hex>``. Signing the
timestamp with the body is what makes replay protection possible: a receiver rejects a
request whose timestamp is more than ``tolerance`` (5 minutes) away from its clock, and an
attacker cannot move the timestamp without the secret. Receivers should also deduplicate on
``X-Vcredit-Event-Id``: delivery is at-least-once.
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed with the secret."""
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
    timestamp is within ``tolerance`` seconds of ``now``.

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
