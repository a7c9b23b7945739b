"""The bank's daily reconciliation file (对账文件) and the comparison with the bank's own: pure,
no I/O (services/loans/reconciliation.py reads the ledger and stores the differences).

The rules (DOMAIN.md §7: "the bank reconciles its core system with this ledger every business
date (对账) from a file of the day's movements with totals"; docs/settlement.md, "The bank's
daily reconciliation file"):

- A business date's file has one line per money movement posted to the ledger on that date:
  a disbursement, a repayment (with its allocation to principal, interest and penalty), a
  write-off (the loss: principal and contract interest) or a recovery; and the day's subsidy
  accrued (the accrual postings' debit to ``subsidy_receivable``), a district total only: the
  ledger's accrual entry is the chunk's sum, no movement of money with one loan.
- Per kind: the count of lines and the sums of their amounts and allocations.
- The checksum is SHA-256 (hex) of the canonical text: the date (ISO 8601) on the first line,
  then each movement as ``kind|loan_id|amount|principal|interest|penalty`` (money with two
  places, ``1234.50``), those lines sorted by code point, then ``subsidy_accrued|amount``;
  every line ends with LF, the text is UTF-8. A bank computes it from its own core system and
  compares without exchanging the file; the village is descriptive and not in it.
- The bank's file states its own per-kind counts and amounts, its subsidy accrued and its
  lines (loan, kind, amount). Its totals must be the sums of its lines (else the file
  contradicts itself and is refused); then each (loan, kind) whose count or amount differs
  from ours is a difference, and so is the subsidy accrued when it differs (no loan).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from shared.money import format_money

ZERO = Decimal("0.00")
Kind = Literal["disbursement", "repayment", "write_off", "recovery"]
KINDS: tuple[Kind, ...] = ("disbursement", "repayment", "write_off", "recovery")
SUBSIDY_ACCRUED = "subsidy_accrued"  # the kind of a difference in the day's subsidy accrued


@dataclass(frozen=True)
class Movement:
    """One line of the file: a ledger transaction of the day that moved money on a loan."""

    kind: Kind
    loan_id: str
    village_code: str
    amount: Decimal
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    penalty: Decimal = ZERO

    def canonical(self) -> str:
        return "|".join(
            (
                self.kind,
                self.loan_id,
                *(format_money(x) for x in (self.amount, self.principal, self.interest, self.penalty)),
            )
        )


@dataclass(frozen=True)
class KindTotal:
    kind: Kind
    count: int
    amount: Decimal
    principal: Decimal
    interest: Decimal
    penalty: Decimal


@dataclass(frozen=True)
class DayFile:
    business_date: date
    movements: tuple[Movement, ...]  # in canonical order
    totals: tuple[KindTotal, ...]  # one per kind, KINDS' order
    subsidy_accrued: Decimal
    checksum: str


def canonical_text(day: date, movements: Iterable[Movement], subsidy_accrued: Decimal) -> str:
    lines = [day.isoformat(), *sorted(m.canonical() for m in movements)]
    lines.append(f"{SUBSIDY_ACCRUED}|{format_money(subsidy_accrued)}")
    return "".join(f"{line}\n" for line in lines)


def checksum(day: date, movements: Iterable[Movement], subsidy_accrued: Decimal) -> str:
    return hashlib.sha256(canonical_text(day, movements, subsidy_accrued).encode("utf-8")).hexdigest()


def totals(movements: Iterable[Movement]) -> tuple[KindTotal, ...]:
    by_kind: dict[Kind, list[Movement]] = {kind: [] for kind in KINDS}
    for m in movements:
        by_kind[m.kind].append(m)
    return tuple(
        KindTotal(
            kind,
            len(lines),
            sum((m.amount for m in lines), ZERO),
            sum((m.principal for m in lines), ZERO),
            sum((m.interest for m in lines), ZERO),
            sum((m.penalty for m in lines), ZERO),
        )
        for kind, lines in by_kind.items()
    )


def day_file(day: date, movements: Iterable[Movement], subsidy_accrued: Decimal) -> DayFile:
    ordered = tuple(sorted(movements, key=Movement.canonical))
    return DayFile(day, ordered, totals(ordered), subsidy_accrued, checksum(day, ordered, subsidy_accrued))


# --- the bank's file -----------------------------------------------------------------------


@dataclass(frozen=True)
class BankLine:
    loan_id: str
    kind: Kind
    amount: Decimal


@dataclass(frozen=True)
class BankFile:
    totals: Mapping[Kind, tuple[int, Decimal]]  # kind -> (count, amount), every kind
    subsidy_accrued: Decimal
    lines: Sequence[BankLine]


def contradictions(bank: BankFile) -> list[str]:
    """Where the bank's totals are not the sums of its own lines, kind by kind (empty: none)."""
    found = []
    for kind in KINDS:
        lines = [line for line in bank.lines if line.kind == kind]
        count, amount = bank.totals[kind]
        summed = sum((line.amount for line in lines), ZERO)
        if (count, amount) != (len(lines), summed):
            found.append(
                f"{kind}: the totals say {count} for {format_money(amount)}, "
                f"the lines are {len(lines)} for {format_money(summed)}"
            )
    return found


@dataclass(frozen=True)
class Difference:
    """Ours and the bank's figures for one (loan, kind), or for the day's subsidy accrued
    (``loan_id`` None, counts None)."""

    kind: str
    loan_id: str | None
    ours_count: int | None
    ours_amount: Decimal
    theirs_count: int | None
    theirs_amount: Decimal


def _by_loan(pairs: Iterable[tuple[str, Kind, Decimal]]) -> dict[tuple[Kind, str], tuple[int, Decimal]]:
    grouped: dict[tuple[Kind, str], tuple[int, Decimal]] = defaultdict(lambda: (0, ZERO))
    for loan_id, kind, amount in pairs:
        count, total = grouped[(kind, loan_id)]
        grouped[(kind, loan_id)] = (count + 1, total + amount)
    return grouped


def compare(ours: DayFile, bank: BankFile) -> list[Difference]:
    """Each (loan, kind) whose count or amount differs between the two files, in (kind, loan)
    order, then the subsidy accrued if it differs. A loan's several movements of one kind on
    one day are compared as their count and sum: the bank's core system need not split or
    order them as this ledger does."""
    mine = _by_loan((m.loan_id, m.kind, m.amount) for m in ours.movements)
    theirs = _by_loan((line.loan_id, line.kind, line.amount) for line in bank.lines)
    found = []
    for kind, loan_id in sorted(mine.keys() | theirs.keys()):
        a = mine.get((kind, loan_id), (0, ZERO))
        b = theirs.get((kind, loan_id), (0, ZERO))
        if a != b:
            found.append(Difference(kind, loan_id, a[0], a[1], b[0], b[1]))
    if ours.subsidy_accrued != bank.subsidy_accrued:
        found.append(Difference(SUBSIDY_ACCRUED, None, None, ours.subsidy_accrued, None, bank.subsidy_accrued))
    return found
