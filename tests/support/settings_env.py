"""Service settings from the environment in a test: loans', risk's and scoring's ``settings()``
are read once per process (services/<name>/context.py), so a variable a test sets reaches a
service only if that cache is emptied first, and the next test sees its own only if it is
emptied again afterwards. Without both, a test passes or fails by which test ran before it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from services.loans import context as loans_context
from services.risk import context as risk_context
from services.scoring import context as scoring_context

_CACHED = (loans_context.settings, risk_context.settings, scoring_context.settings)


def _clear() -> None:
    for accessor in _CACHED:
        accessor.cache_clear()


@contextmanager
def service_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Iterator[None]:
    """Set ``VCREDIT_*`` variables for the services a test starts, for the ``with`` block only."""
    _clear()
    try:
        with monkeypatch.context() as patch:
            for name, value in variables.items():
                patch.setenv(name, value)
            yield
    finally:
        _clear()
