"""Answers' timestamps are RFC 3339 UTC with Z, whatever the database handed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pydantic import BaseModel

from shared.timestamps import UtcDateTime, rfc3339


class _Out(BaseModel):
    at: UtcDateTime
    maybe: UtcDateTime | None = None


def test_a_naive_value_is_the_utc_it_was_stored_as() -> None:
    # What SQLite returns for datetime.now(UTC) written through DateTime(timezone=True).
    out = _Out(at=datetime(2026, 12, 7, 4, 39, 35, 676250))
    assert out.model_dump_json() == '{"at":"2026-12-07T04:39:35.676250Z","maybe":null}'


def test_an_aware_value_is_converted_to_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    out = _Out(at=datetime(2026, 12, 7, 12, 39, 35, tzinfo=beijing), maybe=datetime(2026, 1, 1, tzinfo=UTC))
    assert out.model_dump(mode="json") == {"at": "2026-12-07T04:39:35Z", "maybe": "2026-01-01T00:00:00Z"}
    assert rfc3339(datetime(2026, 12, 7, 12, 39, 35, tzinfo=beijing)) == "2026-12-07T04:39:35Z"
    assert rfc3339(datetime(2026, 12, 7, 4, 39, 35)) == "2026-12-07T04:39:35Z"


def test_the_published_schema_is_date_time() -> None:
    schema = _Out.model_json_schema(mode="serialization")["properties"]["at"]
    assert schema["type"] == "string" and schema["format"] == "date-time"
