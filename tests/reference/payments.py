"""Borrowers' payment patterns, decided from the reference model's state (never the
service's), so the same amounts go to the model and to the code under test.

"The amount due" is everything billed and unpaid plus the penalty outstanding (罚息, 复利).
A pattern gives each instalment a behaviour ``(kind, parameter)``:
- ``on_time``: the amount due, in full, on the due date;
- ``early``: the instalment's scheduled net due, ``parameter`` (1-10) days before its due date
  (before it is billed: interest accrued so far, then principal ahead);
- ``ahead``: the instalment's scheduled net due ``parameter`` (0-3) days into its period (0: on
  the disbursement date for instalment 1, on the previous due date for the others, on top of
  what that day's own behaviour pays);
- ``partial``: ``parameter`` % (1-99) of the amount due, on the due date;
- ``late``: the amount due, in full, ``parameter`` (1-40) days after the due date;
- ``prepay``: the amount due plus ``parameter`` % (1-100) of the principal then outstanding
  (100: the loan paid off), on the due date;
- ``overpay``: one fen more than interest plus principal outstanding (refused), then the amount
  due, on the due date;
- ``never``: nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from fractions import Fraction

from tests.reference.loan_model import ReferenceLoan, fen

KINDS = ("on_time", "early", "ahead", "partial", "late", "prepay", "overpay", "never")
PARAMETER = {"early": (1, 10), "ahead": (0, 3), "partial": (1, 99), "late": (1, 40), "prepay": (1, 100)}
TAIL = timedelta(days=45)  # days simulated after the last due date (late payments land there)

Behaviour = tuple[str, int]


def plan_days(model: ReferenceLoan, behaviours: list[Behaviour]) -> dict[date, list[tuple[str, int, int]]]:
    """The days something is paid: day -> [(kind, parameter, instalment number)]."""
    days: dict[date, list[tuple[str, int, int]]] = defaultdict(list)
    for period, (kind, parameter) in zip(model.plan, behaviours, strict=True):
        if kind == "never":
            continue
        day = period.due
        if kind == "early":
            day -= timedelta(days=parameter)
        elif kind == "late":
            day += timedelta(days=parameter)
        elif kind == "ahead":
            day = period.start + timedelta(days=parameter)
        days[day].append((kind, parameter, period.number))
    return days


def attempts(model: ReferenceLoan, kind: str, parameter: int, number: int) -> list[Fraction]:
    """The amounts to try now (an overpayment first for ``overpay``): nothing when the loan
    is not active, or owes negative interest (a day's subsidy rounded above its interest)."""
    if model.status != "active" or model.interest_outstanding < 0:
        return []
    payable = model.penalty_outstanding + model.interest_outstanding + model.principal_outstanding
    due = model.arrears + model.penalty_outstanding
    if kind in ("early", "ahead"):
        period = model.plan[number - 1]
        amount = min(period.principal + period.interest - period.subsidy, payable)
    elif kind == "partial":
        amount = fen(due * parameter / 100)
    elif kind == "prepay":
        amount = min(due + fen(model.principal_outstanding * parameter / 100), payable)
    else:
        amount = due
    tries = [payable + Fraction(1, 100)] if kind == "overpay" else []
    return tries + ([amount] if amount > 0 else [])


def last_day(model: ReferenceLoan) -> date:
    return model.plan[-1].due + TAIL
