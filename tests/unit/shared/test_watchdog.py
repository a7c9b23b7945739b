"""The consumer's stall rule (shared/messaging/watchdog.py), on a clock the test turns."""

from __future__ import annotations

import pytest

from shared.messaging.watchdog import Stall, StallWatch

LIMIT = 60.0


def test_a_member_with_events_waiting_that_takes_none_stalls_at_the_limit() -> None:
    watch = StallWatch(LIMIT, now=0.0, moved=10)
    assert watch.observe(30.0, moved=10, behind=5) is None
    assert watch.observe(59.9, moved=10, behind=5) is None
    assert watch.observe(60.0, moved=10, behind=5) == Stall(60.0, 5, None)


def test_progress_starts_the_clock_again() -> None:
    watch = StallWatch(LIMIT, now=0.0, moved=0)
    assert watch.observe(50.0, moved=3, behind=5) is None  # took three events at 50 s
    assert watch.observe(100.0, moved=3, behind=5) is None
    assert watch.observe(110.0, moved=3, behind=5) == Stall(60.0, 5, None)


def test_an_idle_member_with_nothing_waiting_never_stalls() -> None:
    watch = StallWatch(LIMIT, now=0.0, moved=0)
    for now in (30.0, 600.0, 3600.0):
        assert watch.observe(now, moved=0, behind=0) is None
    # Events arrive after an hour of idling: the member has the whole limit to take them.
    assert watch.observe(3610.0, moved=0, behind=7) is None
    assert watch.observe(3650.0, moved=0, behind=7) is None
    assert watch.observe(3660.0, moved=0, behind=7) == Stall(60.0, 7, None)


def test_an_unknown_lag_is_no_stall_but_does_not_reset_the_clock() -> None:
    """A broker that does not answer is /readyz's finding; the member did not move meanwhile."""
    watch = StallWatch(LIMIT, now=0.0, moved=0)
    assert watch.observe(10.0, moved=0, behind=3) is None
    assert watch.observe(200.0, moved=0, behind=None) is None
    assert watch.observe(205.0, moved=0, behind=3) == Stall(205.0, 3, None)


def test_time_in_the_handlers_is_not_a_stall() -> None:
    """A batch whose statements run long is bounded by the database's timeouts, not this rule."""
    watch = StallWatch(LIMIT, now=0.0, moved=0)
    for now in (50.0, 100.0, 400.0):
        assert watch.observe(now, moved=0, behind=500, handling=True) is None
    assert watch.observe(450.0, moved=0, behind=500) is None
    assert watch.observe(460.0, moved=0, behind=500) == Stall(60.0, 500, None)


@pytest.mark.parametrize("behind", [0, None, 4])
def test_a_bus_call_that_does_not_return_stalls_whatever_the_lag(behind: int | None) -> None:
    """A member stuck joining the group holds no partitions, so it shows no lag at all."""
    watch = StallWatch(LIMIT, now=0.0, moved=0)
    assert watch.observe(59.0, moved=0, behind=behind, waiting_in="getmany", waiting_since=1.0) is None
    stall = watch.observe(61.0, moved=0, behind=behind, waiting_in="getmany", waiting_since=1.0)
    assert stall == Stall(60.0, behind, "getmany")
    assert "getmany call to the bus has not returned for 60s" in stall.describe()


def test_short_bus_calls_one_after_another_are_no_stall() -> None:
    watch = StallWatch(LIMIT, now=0.0, moved=0)
    for now in range(1, 300):
        assert watch.observe(float(now), moved=0, behind=0, waiting_in="getmany", waiting_since=now - 0.5) is None


def test_the_description_gives_the_facts() -> None:
    assert Stall(75.4, 12, None).describe() == "12 events waiting and none taken for 75s"
