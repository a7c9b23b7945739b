"""notify's pure rules: webhook signatures, retry back-off, the public allow-list."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

import shared.catalogue  # noqa: F401  (registers the event types)
from services.notify.domain.public import NOTICE_KINDS, STREAMED, is_streamed, subscription_matches
from services.notify.domain.retry import Outcome, after_attempt, backoff_seconds, is_success
from services.notify.domain.signing import signature_header, verify_signature
from shared.events import catalogue

SECRET = "s3cret-of-the-subscriber"
BODY = b'{"event_id": "x", "type": "risk.village.frozen"}'
NOW = 1_800_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, NOW, BODY) == f"v1={expected}"


def test_a_valid_signature_verifies() -> None:
    assert verify_signature(SECRET, str(NOW), BODY, signature_header(SECRET, NOW, BODY), now=NOW + 10)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body"),
    [("other-secret", NOW, BODY), (SECRET, NOW + 1, BODY), (SECRET, NOW, BODY + b" ")],
)
def test_a_changed_secret_timestamp_or_body_fails(secret: str, timestamp: int, body: bytes) -> None:
    header = signature_header(secret, NOW, BODY)
    assert not verify_signature(SECRET, str(timestamp), body, header, now=NOW)


def test_an_old_or_future_timestamp_is_a_replay() -> None:
    header = signature_header(SECRET, NOW, BODY)
    assert verify_signature(SECRET, str(NOW), BODY, header, now=NOW + 300)
    assert not verify_signature(SECRET, str(NOW), BODY, header, now=NOW + 301)
    assert not verify_signature(SECRET, str(NOW), BODY, header, now=NOW - 301)


def test_malformed_headers_fail_and_rotation_lists_pass() -> None:
    good = signature_header(SECRET, NOW, BODY)
    assert not verify_signature(SECRET, "not-a-number", BODY, good, now=NOW)
    assert not verify_signature(SECRET, str(NOW), BODY, good.replace("v1=", "v0="), now=NOW)
    assert not verify_signature(SECRET, str(NOW), BODY, "", now=NOW)
    assert verify_signature(SECRET, str(NOW), BODY, f"v1=deadbeef, {good}", now=NOW)


def test_only_2xx_is_success() -> None:
    codes = (200, 204, 299, 301, 404, 500, None)
    assert [is_success(c) for c in codes] == [True, True, True, False, False, False, False]


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(7)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)):
        delays = [backoff_seconds(attempt, 1.0, 10.0, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # it does use the whole range
    with pytest.raises(ValueError):
        backoff_seconds(0, 1.0, 10.0)


def test_attempts_end_delivered_or_dead() -> None:
    def step(before: int, code: int | None) -> Outcome:
        return after_attempt(before, code, max_attempts=3, base=1.0, cap=60.0)

    assert step(0, 200).status == "delivered"
    first = step(0, 500)
    assert (first.status, first.attempts) == ("pending", 1) and first.retry_in is not None
    assert step(1, None).status == "pending"
    last = step(2, 503)
    assert (last.status, last.attempts, last.retry_in) == ("dead", 3, None)
    assert step(2, 201).status == "delivered"


def test_the_allow_list_names_only_catalogued_types_without_personal_ids() -> None:
    known = catalogue()
    assert set(STREAMED) <= set(known) and set(NOTICE_KINDS) <= set(known)
    for name in STREAMED:
        fields = set(known[name].payload.model_fields)
        assert not fields & {"id_number", "id_number_masked", "profile"}, name
    assert not is_streamed("loans.loan.classified") and not is_streamed("registry.household.registered")
    assert is_streamed("risk.village.frozen")


def test_subscription_matching() -> None:
    assert subscription_matches(["risk.village.frozen"], "risk.village.frozen")
    assert not subscription_matches(["risk.village.frozen"], "risk.village.unfrozen")
    assert subscription_matches(["*"], "loans.loan.classified")


def test_township_trend_carries_each_villages_last_figures_forward() -> None:
    from datetime import date
    from decimal import Decimal as D

    from services.notify.domain.trend import DayFigures, township_trend

    villages = {
        "v1": [
            DayFigures(date(2026, 1, 1), D("100.00"), D("0.00")),
            DayFigures(date(2026, 1, 3), D("100.00"), D("5.00")),
        ],
        "v2": [DayFigures(date(2026, 1, 2), D("300.00"), D("0.00"))],
        "v3": [],
    }
    assert township_trend(villages) == [
        (date(2026, 1, 1), D("100.00"), D("0.00"), D("0.0000")),
        (date(2026, 1, 2), D("400.00"), D("0.00"), D("0.0000")),
        (date(2026, 1, 3), D("400.00"), D("5.00"), D("0.0125")),
    ]
    assert township_trend({}) == []
