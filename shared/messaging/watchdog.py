"""The consumer's stall rule (issue 21): when a group member that has events to take has taken
none for VCREDIT_CONSUMER_STALL_SECONDS, or a call of it to the bus has not returned in that
time, the member is stalled. The consumer (shared/messaging/consumer.py) replaces a stalled
member with a fresh one; members that keep stalling make the process not live.

Pure: the clock and the member's figures are given, so the rule is tested without a bus."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stall:
    """The facts of a stall, for the log line and the health check."""

    seconds: float  # since the member last moved (or started)
    behind: int | None  # events waiting in the member's partitions; None: the bus did not say
    waiting_in: str | None  # the bus call that has not returned, if that is the stall

    def describe(self) -> str:
        if self.waiting_in is not None:
            return f"its {self.waiting_in} call to the bus has not returned for {self.seconds:.0f}s"
        return f"{self.behind} events waiting and none taken for {self.seconds:.0f}s"


class StallWatch:
    """Watches one group member from its start: ``observe`` at intervals what the consumer loop
    reports, and it answers the stall once there is one."""

    def __init__(self, limit: float, now: float, moved: int) -> None:
        self.limit = limit
        self._moved = moved
        self._since = now

    def observe(
        self,
        now: float,
        *,
        moved: int,
        behind: int | None,
        waiting_in: str | None = None,
        waiting_since: float | None = None,
        handling: bool = False,
    ) -> Stall | None:
        """``moved``: the member's count of events taken and handled, which only grows;
        ``behind``: events in its partitions it has not read (None when the bus did not
        answer: an unreachable broker is /readyz's finding, not a stall); ``waiting_in`` and
        ``waiting_since``: the bus call under way (start, getmany, commit) and when it began;
        ``handling``: the loop is in the handlers, whose time the database's timeouts bound."""
        if moved != self._moved or handling or behind == 0:
            # Progress, work under way, or nothing to do: the clock starts again.
            self._moved = moved
            self._since = now
        # A bus call longer than the limit is stuck whatever the lag says: a member stuck
        # joining the group holds no partitions, so it has no lag to show.
        if waiting_in is not None and waiting_since is not None and now - waiting_since >= self.limit:
            return Stall(now - waiting_since, behind, waiting_in)
        if behind is not None and behind > 0 and now - self._since >= self.limit:
            return Stall(now - self._since, behind, None)
        return None
