"""The pure close-of-business rules (services/loans/domain/close_of_business.py and
loan_state.py) on hand-written loans, with every amount worked out by hand: daily accrual
rounded cumulatively over a period, billing on the close of the day before the due date,
ageing into the DOMAIN.md §4 classes, and the overdue event on the first day past due.

The loan of these cases: 1,200.00 at 10% a year, 30/360, no subsidy, disbursed 2026-01-01,
2 monthly instalments of 600.00 principal due 2026-02-01 and 2026-03-01. Period 1's interest
is 1,200.00 × 10% × 30/360 = 10.00, accrued over January's 31 actual days."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

from services.loans.domain.close_of_business import Accruals, billing_today, close_loan_day, needs_schedule
from services.loans.domain.loan_state import InstalmentDay, LoanDay, age
from services.loans.domain.penalty import OverduePolicy
from services.loans.domain.repayment import apply_repayment
from shared.events import Envelope

D = Decimal
ZERO = D("0.00")
DAY = timedelta(days=1)
DISBURSED = date(2026, 1, 1)
FIRST_DUE = date(2026, 2, 1)
SECOND_DUE = date(2026, 3, 1)


def _loan() -> LoanDay:
    """The loan as the drawdown leaves it: nothing closed, period 1 not priced yet."""
    return LoanDay(
        id="L1",
        subject_id="S1",
        subject_kind="household",
        village_code="V1",
        township_code="T1",
        principal=D("1200.00"),
        annual_rate=D("0.10"),
        subsidy_rate=D("0"),
        day_count="30/360",
        term_months=2,
        disbursed_on=DISBURSED,
        status="active",
        principal_outstanding=D("1200.00"),
        interest_outstanding=ZERO,
        subsidy_accrued=ZERO,
        subsidy_forfeited=ZERO,
        principal_billed=ZERO,
        interest_billed=ZERO,
        principal_paid=ZERO,
        interest_paid=ZERO,
        period_number=1,
        period_start=DISBURSED,
        period_end=FIRST_DUE,
        period_interest=ZERO,
        period_subsidy=ZERO,
        period_accrued=ZERO,
        period_subsidy_accrued=ZERO,
        overdue_since=None,
        days_past_due=0,
        ever_overdue=False,
        classification="normal",
        closed_through=DISBURSED - DAY,
    )


def _instalments() -> list[InstalmentDay]:
    return [
        InstalmentDay("L1", 1, FIRST_DUE, D("600.00"), None),
        InstalmentDay("L1", 2, SECOND_DUE, D("600.00"), None),
    ]


def _close(loan: LoanDay, day: date, instalments: list[InstalmentDay], accruals: Accruals) -> list[Envelope]:
    """As services/loans/cob.py does: the instalments only when ``needs_schedule``."""
    schedule = instalments if needs_schedule(loan, day) else None
    return close_loan_day(loan, day, accruals, schedule=schedule)


def _close_through(loan: LoanDay, last: date, instalments: list[InstalmentDay]) -> list[Envelope]:
    events: list[Envelope] = []
    day = loan.closed_through + DAY
    while day <= last:
        events += _close(loan, day, instalments, Accruals())
        day += DAY
    return events


# --- accrual ----------------------------------------------------------------------------------


def test_interest_accrues_rounded_cumulatively_so_the_period_adds_up_to_the_fen() -> None:
    """Day k recognises round(10.00 × k / 31) less what is already accrued: 0.32 (0.3226),
    0.33 (0.6452 → 0.65), 0.32 (0.9677 → 0.97), 0.32 (1.2903 → 1.29); the 31 days add up to
    10.00, where rounding each day alone (0.32 a day) would give 9.92."""
    loan, instalments = _loan(), _instalments()
    daily: list[Decimal] = []
    for k in range(31):
        accruals = Accruals()
        _close(loan, DISBURSED + k * DAY, instalments, accruals)
        daily.append(accruals.gross)
        assert accruals.subsidy == ZERO and accruals.net_up == accruals.gross and accruals.net_down == ZERO
    assert daily[:4] == [D("0.32"), D("0.33"), D("0.32"), D("0.32")]
    assert sum(daily, ZERO) == D("10.00")
    assert set(daily) == {D("0.32"), D("0.33")}
    assert loan.interest_billed == D("10.00"), "the period's accrued interest is what it bills"


def test_the_period_is_priced_on_its_first_day_and_the_loan_is_closed_once_a_day() -> None:
    loan, instalments = _loan(), _instalments()
    accruals = Accruals()
    assert _close(loan, DISBURSED, instalments, accruals) == []
    assert (loan.period_interest, loan.period_accrued, loan.interest_outstanding) == (D("10.00"), D("0.32"), D("0.32"))
    assert loan.closed_through == DISBURSED
    again = Accruals()
    assert _close(loan, DISBURSED, instalments, again) == [] and again.gross == ZERO, "idempotent per day"
    assert loan.period_accrued == D("0.32")


# --- billing ----------------------------------------------------------------------------------


def test_a_period_bills_on_the_close_of_the_day_before_its_due_date() -> None:
    assert not billing_today(_loan(), date(2026, 1, 30)) and billing_today(_loan(), date(2026, 1, 31))
    loan, instalments = _loan(), _instalments()
    _close_through(loan, date(2026, 1, 30), instalments)
    assert (loan.principal_billed, loan.interest_billed, instalments[0].billed) == (ZERO, ZERO, None)
    assert loan.period_accrued == D("9.68")  # round(10.00 × 30 / 31) = round(9.677)

    assert billing_today(loan, date(2026, 1, 31))
    _close(loan, date(2026, 1, 31), instalments, Accruals())
    # Instalment 1: its 600.00 of principal and January's 10.00 of interest, due 2026-02-01.
    assert (loan.principal_billed, loan.interest_billed) == (D("600.00"), D("10.00"))
    assert instalments[0].billed == D("610.00") and instalments[1].billed is None
    assert (loan.period_number, loan.period_start, loan.period_end) == (2, FIRST_DUE, SECOND_DUE)
    assert (loan.period_interest, loan.period_accrued) == (ZERO, ZERO), "priced when its first day closes"
    # Billed and unpaid: its oldest unpaid due date is known, but as of the due date it is not late.
    assert (loan.overdue_since, loan.days_past_due, loan.classification) == (FIRST_DUE, 0, "normal")


def test_the_last_period_bills_all_the_principal_left() -> None:
    loan, instalments = _loan(), _instalments()
    instalments[1].principal = D("500.00")  # whatever the schedule says, the last bill clears the loan
    _close_through(loan, date(2026, 1, 31), instalments)
    apply_repayment(loan, D("610.00"), FIRST_DUE)
    _close_through(loan, date(2026, 2, 28), instalments)
    # Period 2: 600.00 × 10% × 30/360 = 5.00 over February's 28 days.
    assert (loan.principal_billed, loan.interest_billed) == (D("1200.00"), D("15.00"))
    assert instalments[1].billed == D("605.00")
    assert loan.period_number == 3 and loan.period_end == SECOND_DUE, "matured: nothing more accrues"


# --- ageing and the overdue event ------------------------------------------------------------------


def test_an_instalment_unpaid_at_the_end_of_its_due_date_is_overdue_on_day_1() -> None:
    loan, instalments = _loan(), _instalments()
    assert _close_through(loan, date(2026, 1, 31), instalments) == [], "billed, not due: no event"
    events = _close(loan, FIRST_DUE, instalments, Accruals())
    assert [e.type for e in events] == ["loans.loan.classified", "loans.instalment.overdue"]
    classified, overdue = (e.payload for e in events)
    assert (classified["days_past_due"], classified["classification"]) == (1, "special_mention")
    assert (classified["previous_classification"], classified["business_date"]) == ("normal", "2026-02-02")
    assert classified["non_performing"] is False
    assert overdue == {
        "loan_id": "L1",
        "subject_kind": "household",
        "subject_id": "S1",
        "village_code": "V1",
        "township_code": "T1",
        "instalment": 1,
        "due_on": "2026-02-01",
        "amount_overdue": "610.00",
    }
    assert (loan.overdue_since, loan.days_past_due, loan.ever_overdue) == (FIRST_DUE, 1, True)
    # Day 2: one more day past due, the same class: no event.
    assert _close(loan, FIRST_DUE + DAY, instalments, Accruals()) == []
    assert loan.days_past_due == 2


def test_an_instalment_paid_on_its_due_date_is_not_overdue() -> None:
    loan, instalments = _loan(), _instalments()
    _close_through(loan, date(2026, 1, 31), instalments)
    applied = apply_repayment(loan, D("610.00"), FIRST_DUE)
    assert (applied.interest, applied.principal, applied.events) == (D("10.00"), D("600.00"), [])
    assert _close(loan, FIRST_DUE, instalments, Accruals()) == []
    assert (loan.overdue_since, loan.days_past_due, loan.classification) == (None, 0, "normal")
    # Period 2 is priced on the principal left after the due date's payment: 600.00 → 5.00.
    assert loan.period_interest == D("5.00")


def test_a_loan_ages_into_the_five_classes_by_days_past_due() -> None:
    """DOMAIN.md §4 bands from the oldest unpaid due date: 1-90 special mention, 91-270
    substandard, 271-360 doubtful, 361 on loss; an event each time the class changes."""
    loan = _loan()
    loan.overdue_since = FIRST_DUE
    seen: list[tuple[int, str, str]] = []
    for dpd in (0, 1, 2, 90, 91, 270, 271, 360, 361, 400):
        for event in age(loan, FIRST_DUE + dpd * DAY):
            p = event.payload
            seen.append((p["days_past_due"], p["previous_classification"], p["classification"]))
        assert loan.days_past_due == dpd
    assert seen == [
        (1, "normal", "special_mention"),
        (91, "special_mention", "substandard"),
        (271, "substandard", "doubtful"),
        (361, "doubtful", "loss"),
    ]
    assert loan.classification == "loss" and loan.ever_overdue


def test_an_extended_loan_is_classified_no_better_than_its_floor() -> None:
    """DOMAIN.md §7: with a special-mention floor a loan not past due is special mention, and
    ageing still makes it substandard on day 91."""
    loan = _loan()
    loan.classification_floor = "special_mention"
    events = age(loan, FIRST_DUE)
    assert (loan.days_past_due, loan.classification) == (0, "special_mention")
    assert [(e.payload["previous_classification"], e.payload["classification"]) for e in events] == [
        ("normal", "special_mention")
    ]
    loan.overdue_since = FIRST_DUE
    assert age(loan, FIRST_DUE + 90 * DAY) == [] and loan.classification == "special_mention"
    age(loan, FIRST_DUE + 91 * DAY)
    assert loan.classification == "substandard"
    loan.overdue_since = None
    age(loan, FIRST_DUE + 92 * DAY)
    assert (loan.days_past_due, loan.classification) == (0, "special_mention")


def test_no_subsidy_for_periods_from_the_day_it_ends() -> None:
    """An extension the district does not subsidise (VCREDIT_LOANS_EXTENSION_SUBSIDY=none):
    fully subsidised at 10%, period 1 (from 2026-01-01) earns 10.00 of subsidy; with
    subsidy_ends_on 2026-02-01, period 2 (from 2026-02-01, after the bill of 600.00 + 10.00
    − 10.00 is paid) earns none: the borrower owes its 600.00 × 10% / 12 = 5.00 in full."""
    loan, instalments = _loan(), _instalments()
    loan.subsidy_rate = D("0.10")
    loan.subsidy_ends_on = FIRST_DUE
    _close_through(loan, FIRST_DUE - DAY, instalments)
    assert instalments[0].billed == D("600.00")
    apply_repayment(loan, D("600.00"), FIRST_DUE)
    _close_through(loan, SECOND_DUE - 2 * DAY, instalments)
    assert (loan.period_interest, loan.period_subsidy, loan.subsidy_accrued) == (D("5.00"), ZERO, D("10.00"))
    _close_through(loan, SECOND_DUE - DAY, instalments)
    assert instalments[1].billed == D("605.00")


def test_ageing_through_close_of_business_reaches_substandard_on_day_91() -> None:
    loan, instalments = _loan(), _instalments()
    _close_through(loan, date(2026, 1, 31), instalments)
    _close_through(loan, FIRST_DUE + 89 * DAY, instalments)  # as of 2026-05-02: 90 days past due
    assert loan.classification == "special_mention" and loan.days_past_due == 90
    events = _close(loan, FIRST_DUE + 90 * DAY, instalments, Accruals())  # as of 91 days past due
    assert [(e.type, e.payload["classification"]) for e in events] == [("loans.loan.classified", "substandard")]
    assert events[0].payload["non_performing"] is True


# --- purity -------------------------------------------------------------------------------------


def test_the_rules_import_no_database_or_messaging() -> None:
    """The domain modules are pure: importing them loads no database, web or broker client."""
    code = (
        "import sys\n"
        "import services.loans.domain.close_of_business, services.loans.domain.repayment\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'asyncpg', 'aiokafka', 'fastapi', 'httpx') or m == 'services.loans.models')\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_grace_longer_than_a_period_names_the_oldest_unpaid_instalment() -> None:
    """35 days of grace: instalment 1 (due 2026-02-01, 610.00) unpaid is 1 day past due on
    2026-02-01 + 35 + 1 days = 2026-03-09 (the close of 03-08), when instalment 2 has billed
    too (605.00: 600.00 + 600.00 × 10% × 30/360). The event names instalment 1 and its due date,
    with both in arrears."""
    loan, instalments = _loan(), _instalments()
    policy = OverduePolicy(grace_days=35)
    events: list[Envelope] = []
    day = DISBURSED
    while day <= date(2026, 3, 8):
        schedule = instalments if needs_schedule(loan, day) else None
        events += close_loan_day(loan, day, Accruals(), schedule=schedule, policy=policy)
        day += DAY
    overdue = [e.payload for e in events if e.type == "loans.instalment.overdue"]
    assert overdue == [
        {
            "loan_id": "L1",
            "subject_kind": "household",
            "subject_id": "S1",
            "village_code": "V1",
            "township_code": "T1",
            "instalment": 1,
            "due_on": "2026-02-01",
            "amount_overdue": "1215.00",
        }
    ]
    assert loan.days_past_due == 1 and loan.period_number == 3


def test_days_accrued_and_days_forfeited_are_counted_for_subsidy_claims() -> None:
    """Issue 25 (domain/subsidy_claims.py): each day that accrues contract interest counts, and
    of those each day on the black list; a matured loan counts no more. January's 31 days, 10
    of them (01-10..01-19) blacklisted; February's 28; then nothing (matured, nothing accrues)."""
    loan, instalments, accruals = _loan(), _instalments(), Accruals()
    day = DISBURSED
    while day < SECOND_DUE + 5 * DAY:
        listed = date(2026, 1, 10) <= day < date(2026, 1, 20)
        schedule = instalments if needs_schedule(loan, day) else None
        close_loan_day(loan, day, accruals, subsidised=not listed, schedule=schedule)
        day += DAY
    assert (loan.accrual_days, loan.forfeited_days) == (31 + 28, 10)
