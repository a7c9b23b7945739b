"""Personal data and credentials never reach a log line, and no response echoes a full ID
number (issue 9; DOMAIN.md §1: show ``410***********1234``, not the number).

``install_log_redaction()`` wraps the LogRecord factory, so every record of every logger
(ours, uvicorn's access log, SQLAlchemy, aiokafka, httpx), whatever handler or formatter
later writes it, carries text already redacted: resident ID numbers (18 characters with
the X check digit, and the 15-digit numbers issued before 1999) and unified social credit
codes are masked; bearer tokens, ``vck_`` API keys, ``vcs_`` client secrets, JWTs, URL
passwords and secret-bearing query parameters or headers are replaced, and so are secrets
registered by value (the bootstrap token, which has no recognisable shape).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

REDACTED = "[REDACTED]"

# Not preceded or followed by a letter or digit: a longer number is not an ID number. A
# preceding %XX escape counts as a boundary (a percent-encoded 号 ends in a digit).
_START = r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![0-9A-Za-z]))"
_END = r"(?![0-9A-Za-z])"
# GB 11643-1999: 17 digits and a check character, 0-9 or X; GB 11643-1989: 15 digits.
_RESIDENT_ID = rf"{_START}(?:[0-9]{{17}}[0-9Xx]|[0-9]{{15}}){_END}"
# GB 32100-2015: 18 characters without I, O, Z, S, V; characters 3-8 are an address code.
_USCC_CHAR = "[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]"
_USCC = rf"{_START}{_USCC_CHAR}{{2}}[0-9]{{6}}{_USCC_CHAR}{{10}}{_END}"
_SECRET_PARAMS = (
    "access_token|refresh_token|id_token|token|api_key|apikey|key|secret|client_secret|password|signature"
    "|id_number|credit_code"
)
_SECRET_HEADERS = "authorization|proxy-authorization|x-api-key|cookie|set-cookie|x-vcredit-signature"

# One alternation scanned once per string; each rule is a named group, and ``<name>_keep``
# is the part of the match kept in front of the replacement.
_RULES = {
    "jwt": r"eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]+){0,2}",
    # API keys and OAuth2 client secrets (shared/auth.py new_secret).
    "apikey": r"\bvc[ks]_[A-Za-z0-9_-]+",
    "header": rf"(?P<header_keep>(?i:\b(?:{_SECRET_HEADERS})[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic)\s+)?))"
    r"[^\s\"',;]+",
    # Standard Webhooks: `webhook-signature: v1,<base64> v1,<base64>` (space-separated while
    # a key rotates); the comma would end the header rule's value after "v1".
    "webhook_signature": r"(?P<webhook_signature_keep>(?i:\bwebhook-signature[\"']?\s*[:=]\s*[\"']?))"
    r"v1a?,[A-Za-z0-9+/=]+(?:\s+v1a?,[A-Za-z0-9+/=]+)*",
    # Not a challenge's parameters (WWW-Authenticate: Bearer error="invalid_token").
    "bearer": r"(?P<bearer_keep>(?i:\b(?:bearer|basic)\s+))(?!(?:error|realm|scope)=)[A-Za-z0-9._~+/=-]{8,}",
    "param": rf"(?P<param_keep>(?i:[?&;](?:{_SECRET_PARAMS})=))[^&#\s\"']+",
    "userinfo": r"(?P<userinfo_keep>://[^/\s:@]+:)[^/\s@]+(?=@)",
    "resident_id": _RESIDENT_ID,
    "uscc": _USCC,
}
_MASKED = frozenset({"resident_id", "uscc"})


def _compile(literals: Iterable[str]) -> re.Pattern[str]:
    rules = dict(_RULES)
    ordered = sorted(literals, key=len, reverse=True)
    if ordered:
        rules = {"literal": "|".join(map(re.escape, ordered)), **rules}
    return re.compile("|".join(f"(?P<{name}>{rule})" for name, rule in rules.items()))


_pattern = _compile(())
_literals: set[str] = set()
_RESIDENT_ID_PATTERN = re.compile(_RESIDENT_ID)


def mask(identifier: str) -> str:
    """``410***********1234``: region prefix and last four, enough to recognise, not to use."""
    return identifier[:3] + "*" * (len(identifier) - 7) + identifier[-4:]


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in _MASKED:
        return mask(match.group())
    keep = match.groupdict().get(f"{kind}_keep") or ""
    return keep + REDACTED


def redact(text: str) -> str:
    """The text as it may be logged."""
    return _pattern.sub(_replace, text)


def mask_resident_ids(text: str) -> str:
    """The text as it may be returned: ID numbers masked, the rest (credit codes of
    businesses, which are public) unchanged."""
    return _RESIDENT_ID_PATTERN.sub(lambda m: mask(m.group()), text)


def register_secret(value: str) -> None:
    """Redact this exact value wherever it appears (tokens without a recognisable shape)."""
    global _pattern
    if len(value) >= 8 and value not in _literals:
        _literals.add(value)
        _pattern = _compile(_literals)


def _arg(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value  # %d and %f need numbers; a number that needs redacting falls back below
    text = str(value)
    clean = redact(text)
    return value if clean == text else clean


def redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:
        return  # a malformed call; logging reports it when the record is emitted
    clean = redact(message)
    if clean != message:
        args = record.args
        # Formatters that read the arguments (uvicorn's access log) keep a tuple of them.
        if isinstance(args, tuple) and isinstance(record.msg, str) and redact(record.msg) == record.msg:
            scrubbed = tuple(_arg(a) for a in args)
            try:
                done = redact(record.msg % scrubbed) == record.msg % scrubbed
            except (TypeError, ValueError):
                done = False
            if done:
                record.args = scrubbed
            else:
                record.msg, record.args = clean, None
        else:
            record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # Formatters use exc_text when it is set: the traceback is formatted here, redacted.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


# Loggers whose DEBUG records dump data no pattern can recognise (names in SQL parameters):
# they stay at INFO however verbose the root logger is, as SQLAlchemy keeps its own at WARNING.
_DATA_DUMPING_LOGGERS = ("aiosqlite",)


def install_log_redaction(*secrets: str) -> None:
    """Redact every log record of this process from now on (idempotent)."""
    for secret in secrets:
        register_secret(secret)
    for name in _DATA_DUMPING_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    previous = logging.getLogRecordFactory()
    if getattr(previous, "vcredit_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory.vcredit_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    _redact_uncaught()


def _redact_uncaught() -> None:
    # A crash's traceback goes to stderr (the service's log) without passing through logging.
    previous: Callable[..., Any] = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        if kind is KeyboardInterrupt:
            previous(kind, exc, tb)
            return
        text = logging.Formatter().formatException((kind, exc, tb))
        print(redact(text), file=sys.stderr, flush=True)

    sys.excepthook = hook
