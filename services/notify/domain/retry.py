"""When a failed webhook call is tried again, and when a delivery gives up."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Status = Literal["pending", "delivered", "dead"]


def is_success(status_code: int | None) -> bool:
    """Any 2xx acknowledges the event; redirects are not followed (a webhook URL that moved
    is a configuration error the operator should see, not something to chase)."""
    return status_code is not None and 200 <= status_code < 300


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before try ``attempt + 1`` after ``attempt`` failed tries: "full jitter"
    (uniform between 0 and min(cap, base * 2^(attempt-1))), so subscribers that recover at
    the same moment are not hit by every sender's retries in lockstep."""
    if attempt < 1:
        raise ValueError("attempt counts failed tries, starting at 1")
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return (rng or random).uniform(0.0, ceiling)


@dataclass(frozen=True)
class Outcome:
    status: Status
    attempts: int
    retry_in: float | None  # seconds until the next try; None when no further try


def after_attempt(
    attempts_before: int,
    status_code: int | None,
    *,
    max_attempts: int,
    base: float,
    cap: float,
    rng: random.Random | None = None,
) -> Outcome:
    """The delivery's state after one more try that answered ``status_code`` (None: no
    answer, e.g. a timeout or a refused connection)."""
    attempts = attempts_before + 1
    if is_success(status_code):
        return Outcome("delivered", attempts, None)
    if attempts >= max_attempts:
        return Outcome("dead", attempts, None)
    return Outcome("pending", attempts, backoff_seconds(attempts, base, cap, rng))
