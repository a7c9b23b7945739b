from __future__ import annotations

import logging
import sys

import pytest
from uvicorn.logging import AccessFormatter

from services.registry.domain.identifiers import mask_resident_id, uscc_check_char
from shared.redaction import (
    install_log_redaction,
    mask,
    mask_resident_ids,
    redact,
    redact_record,
    register_secret,
)
from tests.support.system import resident_id

ID18 = resident_id(7)
ID_X = "11010519491231002X"
ID15 = "410102800101123"
USCC = "91410102MA" + "44T3K8E"  # 17 characters, then the check character
USCC += uscc_check_char(USCC)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiYW5rLWNvcmUifQ.c2lnbmF0dXJlLXBhcnQtaGVyZQ"
API_KEY = "vck_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"registered {ID18} in 东村", ID18, f"{ID18[:3]}***********{ID18[-4:]}"),
        (f"身份证{ID_X}号", ID_X, "110***********002X"),
        (f"id {ID_X.lower()}", ID_X.lower(), "110***********002x"),
        (f"old card {ID15}.", ID15, "410********1123"),
        (f"GET /v1/households?id_number={ID18}&limit=5 HTTP/1.1", ID18, "?id_number=[REDACTED]&limit=5"),
        (f"GET /v1/households/{ID18} HTTP/1.1", ID18, "/v1/households/410"),
        (f"/v1/x?q=%E5%8F%B7{ID18}%E5", ID18, "%B7410***"),
        (f"{{'id_number': '{ID18}', 'name': '张三'}}", ID18, "'410***********"),
        (f"business {USCC} registered", USCC, f"{USCC[:3]}***********{USCC[-4:]}"),
        (f"Authorization: Bearer {API_KEY}", API_KEY, "Authorization: Bearer [REDACTED]"),
        ("authorization='Bearer opaque-token-value'", "opaque-token-value", "authorization='Bearer [REDACTED]"),
        (f"token {API_KEY} refused", API_KEY, "token [REDACTED] refused"),
        ("client_secret=vcs_c2VjcmV0LWNsaWVudA&grant_type=x", "vcs_c2VjcmV0LWNsaWVudA", "client_secret=[REDACTED]&"),
        (f"jwt {JWT}", JWT, "jwt [REDACTED]"),
        ("bearer c2VjcmV0LXRva2VuLXZhbHVl", "c2VjcmV0LXRva2VuLXZhbHVl", "bearer [REDACTED]"),
        ("POST https://hook.example/in?token=abc123&x=1", "abc123", "?token=[REDACTED]&x=1"),
        ("postgresql+asyncpg://vcredit:s3cret-pw@db/vcredit", "s3cret-pw", "://vcredit:[REDACTED]@db"),
        ("X-Api-Key: plainsecretvalue", "plainsecretvalue", "X-Api-Key: [REDACTED]"),
        # Standard Webhooks: the comma after the scheme ended the header rule's value.
        ("webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", "K5oZfzN95Z9U", "signature: [REDACTED]"),
        (
            "{'webhook-signature': 'v1,Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA== v1,c2VjcmV0LXRva2VuLXZhbHVl'}",
            "c2VjcmV0LXRva2VuLXZhbHVl",
            "'webhook-signature': '[REDACTED]'",
        ),
    ],
)
def test_redacts(text: str, secret: str, kept: str) -> None:
    clean = redact(text)
    assert secret not in clean
    assert kept in clean


@pytest.mark.parametrize(
    "text",
    [
        "loan 8b880011-f32b-407c-947c-75bc7cdf6cc3 disbursed 50000.00",
        "village 410102001001 (12 digits), offset 1234567890123456 (16), ts 1795257287236324123 (19)",
        "sha256 3f5a9c0e41b7d2c8e6f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9",
        "WWW-Authenticate: Bearer error=invalid_token",
        "consumer scoring: batch of 500 failed; applying one by one",
        "Authentication required",
    ],
)
def test_leaves_other_text_alone(text: str) -> None:
    assert redact(text) == text


def test_the_mask_is_the_registry_s() -> None:
    assert mask(ID18) == mask_resident_id(ID18)
    assert mask_resident_ids(f"No household {ID18}; business {USCC}") == f"No household {mask(ID18)}; business {USCC}"


def test_registered_secrets_are_redacted_by_value() -> None:
    register_secret("a-bootstrap-token-without-shape")
    assert redact("token=a-bootstrap-token-without-shape!") == "token=[REDACTED]!"
    register_secret("short")  # too short to tell from ordinary words
    assert redact("a short word") == "a short word"


def _record(msg: str, args: tuple[object, ...] | None, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def test_records_keep_their_argument_tuple_for_uvicorn_s_access_formatter() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5000", "GET", f"/v1/households?id_number={ID18}", "1.1", 200)
    )
    redact_record(record)
    assert isinstance(record.args, tuple)
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s", use_colors=False).format(record)
    assert line == "127.0.0.1:5000 GET /v1/households?id_number=[REDACTED] HTTP/1.1 200 OK"


def test_records_with_numbers_or_objects_are_formatted_then_redacted() -> None:
    record = _record("person %d of %s", (int(ID18[:-1] + "0"), {"id": ID18}))
    redact_record(record)
    assert ID18[:-1] not in record.getMessage() and "person 410" in record.getMessage()
    assert record.args is None


def test_tracebacks_are_redacted() -> None:
    try:
        raise ValueError(f"bad input_value='{ID18}' with {API_KEY}")
    except ValueError:
        record = _record("unhandled error on %s", ("POST /v1/households",), exc_info=sys.exc_info())
    redact_record(record)
    text = logging.Formatter().format(record)
    assert "Traceback" in text and "ValueError: bad input_value='410" in text
    assert ID18 not in text and API_KEY not in text


def test_installed_for_every_logger(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # An earlier test's uvicorn may have configured its loggers: not propagating to the root,
    # where caplog listens, or above INFO.
    monkeypatch.setattr(logging.getLogger("uvicorn"), "propagate", True)
    install_log_redaction()
    install_log_redaction()  # idempotent: one wrapper
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    logging.getLogger("uvicorn.error").info("client sent %s", f"Bearer {JWT}")
    logging.getLogger("some.library").debug(f"row {ID18}")
    # A set: where an earlier test left uvicorn's handlers, a record may be captured twice.
    assert set(caplog.messages) == {"client sent Bearer [REDACTED]", f"row {mask(ID18)}"}


def test_event_payload_errors_name_the_field_not_the_value() -> None:
    from pydantic import ValidationError

    from shared.catalogue import HouseholdRegistered

    payload = {"household_id": "h", "village_code": "v", "township_code": "t", "poor_household": "maybe"}
    try:
        HouseholdRegistered.model_validate({**payload, "head_name": ["贾宝玉"], "id_number_masked": "x", "members": 1})
    except ValidationError as exc:
        text = str(exc)
    assert "poor_household" in text and "head_name" in text
    assert "贾宝玉" not in text and "maybe" not in text
