"""The share-day factors close of business's plain accruals statement joins
(services/loans/cob_accrual.py): the same sums as ``domain.policies.subsidy_of_day`` uses, and
none where they are not exact decimals (those loans go through the rules in Python). The
statement itself is compared with the rules on PostgreSQL: tests/integration/test_cob_accrual.py."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from services.loans.cob_accrual import factors
from services.loans.domain.policies import SubsidyShare, shares_through, subsidy_of_day
from shared.money import to_fen

DAY = timedelta(days=1)
TODAY = date(2026, 4, 10)
POLICY = [SubsidyShare(date(2026, 3, 20), Decimal("0.7")), SubsidyShare(date(2026, 4, 5), Decimal("0.3333"))]


def test_without_a_policy_the_factors_are_the_days_elapsed() -> None:
    through, before = factors(TODAY - 31 * DAY, TODAY, [])
    assert len(through) == len(before) == 31
    # Indexed from 1 by the days since the period started: day k of the period is back + 1.
    assert through[:3] == [Decimal(2), Decimal(3), Decimal(4)] and before[:3] == [Decimal(1), Decimal(2), Decimal(3)]


def test_with_a_policy_the_factors_are_the_share_days_and_give_subsidy_of_day() -> None:
    through, before = factors(TODAY - 40 * DAY, TODAY, POLICY)
    for back in range(1, 41):
        start = TODAY - back * DAY
        a, b = through[back - 1], before[back - 1]
        assert (a, b) == shares_through(POLICY, start, TODAY)
        days = back + 5  # a period that goes on after today
        total = Decimal("123.47")
        fen = to_fen(total * a / days) - to_fen(total * b / days)  # the statement's rule
        assert fen == subsidy_of_day(total, POLICY, start, TODAY, days), back


def test_share_days_that_are_not_exact_decimals_are_left_to_python() -> None:
    long = [SubsidyShare(date(2026, 1, 1), Decimal("0." + "3" * 70))]
    through, before = factors(TODAY - 3 * DAY, TODAY, long)
    assert through == before == [None, None, None]
    assert shares_through(long, TODAY - DAY, TODAY)[0] == 2 * Fraction(Decimal("0." + "3" * 70))
